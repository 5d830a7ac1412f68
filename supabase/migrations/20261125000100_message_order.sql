-- One order per conversation. Every message gets `seq`, assigned while the
-- inserting transaction holds the conversation row's lock, so within a
-- conversation seq order is commit order is outbox order: live events (outbox
-- id order), history pages and `sync` (seq order) and the chat list's last
-- message all agree, whichever path wrote the message (socket, REST,
-- supabase-js, flow functions). `created_at` is kept strictly increasing in
-- the same order, so clients that sort by time see the same order too.

alter table public.messages add column seq bigint;

-- Existing messages: their order so far, (created_at, id).
update public.messages m
set seq = o.seq
from (
  select id, row_number() over (partition by conversation_id order by created_at, id) as seq
  from public.messages
) o
where o.id = m.id;

alter table public.messages alter column seq set not null;

-- Pages, the before-cursor, "read up to" and the next seq all walk this index.
create unique index messages_conversation_seq_idx
  on public.messages (conversation_id, seq desc);
drop index public.messages_conversation_page_idx;

-- Before insert: check the sender against the conversation, then lock its
-- row (concurrent writers of the same conversation queue here until the
-- holder commits), check the chat status on the locked row, and take the
-- next seq. Rows inserted earlier by the same statement are visible here, so
-- a multi-row insert numbers its rows in order. A conversation that does not
-- exist and one of someone else's get the same answer, "conversation not
-- found" (P0002), so ids cannot be probed; and strangers never take the lock.
create or replace function public.messages_before_insert() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _conv public.conversations;
  _last record;
begin
  select * into _conv from public.conversations where id = new.conversation_id;
  if not found or new.sender_id not in (_conv.brand_owner_id, _conv.influencer_id) then
    raise exception 'conversation not found' using errcode = 'P0002';
  end if;
  select * into _conv from public.conversations where id = new.conversation_id for update;
  if _conv.chat_status = 'closed' and new.message_type <> 'system' then
    raise exception 'conversation % is closed', new.conversation_id
      using errcode = '23514';
  end if;
  select m.seq, m.created_at into _last
  from public.messages m
  where m.conversation_id = new.conversation_id
  order by m.seq desc
  limit 1;
  new.seq := coalesce(_last.seq, 0) + 1;
  -- now() is the transaction's start: a writer that waited for the lock
  -- started earlier than the message it now follows.
  if _last.created_at is not null and new.created_at <= _last.created_at then
    new.created_at := _last.created_at + interval '1 microsecond';
  end if;
  return new;
end
$$;

-- Marks read up to a message by its place in the conversation (seq), not by
-- time.
create or replace function public.mark_conversation_read(
  p_conversation_id uuid,
  p_up_to_message_id uuid default null
) returns integer
language plpgsql security invoker set search_path = '' as $$
declare
  _n integer;
  _up_to bigint;
begin
  if p_up_to_message_id is not null then
    select seq into _up_to from public.messages
    where id = p_up_to_message_id and conversation_id = p_conversation_id;
    if not found then
      raise exception 'message % is not in conversation %', p_up_to_message_id, p_conversation_id
        using errcode = 'P0002';
    end if;
  end if;
  update public.messages m
  set is_read = true
  where m.conversation_id = p_conversation_id
    and m.sender_id <> auth.uid()
    and not m.is_read
    and (_up_to is null or m.seq <= _up_to);
  get diagnostics _n = row_count;
  return _n;
end
$$;

-- messages.read lists the ids in conversation order.
create or replace function bridge.outbox_messages_read() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bridge.outbox (topic, conversation_id, recipients, payload)
  select 'messages.read', c.id, array[c.brand_owner_id, c.influencer_id],
    jsonb_build_object(
      'conversation', bridge.conversation_json(c),
      'reader_id', case r.sender_id when c.brand_owner_id then c.influencer_id
                                    else c.brand_owner_id end,
      'sender_id', r.sender_id,
      'message_ids', r.ids,
      'read_at', r.read_at)
  from (
    select n.conversation_id, n.sender_id,
      jsonb_agg(n.id order by n.seq) as ids, max(n.read_at) as read_at
    from new_rows n join old_rows o on o.id = n.id
    where n.is_read and not o.is_read
    group by n.conversation_id, n.sender_id
  ) r
  join public.conversations c on c.id = r.conversation_id;
  return null;
end
$$;
