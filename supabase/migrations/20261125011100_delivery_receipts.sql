-- Delivery receipts, distinct from "seen": `delivered_at` is when the
-- receiver's device first had the message (its client acknowledged
-- `new_message`, or fetched the message over REST or `sync`); `read_at`
-- stays when they saw it. Seen implies delivered: a message read before any
-- delivery acknowledgement gets delivered_at = read_at. Each acknowledgement
-- statement writes one `messages.delivered` outbox row per conversation and
-- sender, for the sender's ticks. Conversations are one-to-one (a brand
-- owner and an influencer), so one time per message is the whole story.

alter table public.messages add column delivered_at timestamptz;
comment on column public.messages.delivered_at is
  'When the receiver''s device first had the message; null until then.';

-- Messages read before receipts existed were delivered when they were read.
update public.messages set delivered_at = read_at where is_read and delivered_at is null;

-- Receivers set it (through their policy "Receivers can mark messages
-- read"), with supabase-js or public.mark_messages_delivered.
grant update (delivered_at) on public.messages to authenticated;

-- Before update: the first delivery counts, and it is the database's clock;
-- it is never unset; only the receiver's acknowledgement counts (the sender's
-- own rows stay as they were); a read message is delivered.
create function public.messages_receipts_before_update() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.delivered_at is distinct from old.delivered_at then
    if old.delivered_at is not null then
      new.delivered_at := old.delivered_at;
    elsif current_user in ('authenticated', 'anon') and auth.uid() = old.sender_id then
      new.delivered_at := null;
    elsif old.deleted_at is not null then
      new.delivered_at := null;
    else
      new.delivered_at := now();
    end if;
  end if;
  if new.is_read and new.delivered_at is null then
    new.delivered_at := coalesce(new.read_at, now());
  end if;
  return new;
end
$$;

create trigger messages_receipts_before_update
  before update on public.messages
  for each row execute function public.messages_receipts_before_update();

do $$
declare
  _topics text[];
begin
  select array_agg(distinct t[1]) into _topics
  from pg_constraint k,
    regexp_matches(pg_get_constraintdef(k.oid), '([a-z_]+\.[a-z_.]+)', 'g') t
  where k.conrelid = 'bridge.outbox'::regclass and k.conname = 'outbox_topic_check';
  _topics := array(select distinct unnest(
    coalesce(_topics, '{}') || array['messages.delivered']) order by 1);
  alter table bridge.outbox drop constraint if exists outbox_topic_check;
  execute format(
    'alter table bridge.outbox add constraint outbox_topic_check check (topic in (%s))',
    (select string_agg(quote_literal(x), ', ') from unnest(_topics) x));
end
$$;

-- messages.delivered: one row per conversation and sender per statement.
-- Messages that were read in the same statement are left out: their
-- `messages.read` row says more.
create function bridge.outbox_messages_delivered() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bridge.outbox (topic, conversation_id, recipients, payload)
  select 'messages.delivered', c.id, array[c.brand_owner_id, c.influencer_id],
    jsonb_build_object(
      'conversation_id', c.id,
      'receiver_id', case r.sender_id when c.brand_owner_id then c.influencer_id
                                      else c.brand_owner_id end,
      'sender_id', r.sender_id,
      'message_ids', r.ids,
      'delivered_at', r.delivered_at)
  from (
    select n.conversation_id, n.sender_id,
      jsonb_agg(n.id order by n.seq) as ids, max(n.delivered_at) as delivered_at
    from new_rows n join old_rows o on o.id = n.id
    where n.delivered_at is not null and o.delivered_at is null
      and not (n.is_read and not o.is_read)
    group by n.conversation_id, n.sender_id
  ) r
  join public.conversations c on c.id = r.conversation_id;
  return null;
end
$$;

create trigger messages_outbox_delivered
  after update on public.messages
  referencing old table as old_rows new table as new_rows
  for each statement execute function bridge.outbox_messages_delivered();

-- Marks messages the caller received as delivered; returns how many were
-- not delivered before. All or nothing: an id the caller cannot see is
-- "not found" (P0002) and one of their own messages is refused (42501),
-- and then nothing is marked. Unsent messages are skipped.
create function public.mark_messages_delivered(p_message_ids uuid[])
returns integer
language plpgsql security invoker set search_path = '' as $$
declare
  _wanted integer;
  _found integer;
  _own integer;
  _n integer;
begin
  select count(distinct x) into _wanted from unnest(p_message_ids) x;
  if _wanted = 0 then
    return 0;
  end if;
  select count(*), count(*) filter (where m.sender_id = auth.uid())
  into _found, _own
  from public.messages m where m.id = any(p_message_ids);
  if _found < _wanted then
    raise exception 'message not found' using errcode = 'P0002', hint = 'not_found';
  end if;
  if _own > 0 then
    raise exception 'only the receiver acknowledges delivery of a message'
      using errcode = '42501', hint = 'forbidden';
  end if;
  update public.messages m set delivered_at = now()
  where m.id = any(p_message_ids) and m.delivered_at is null and m.deleted_at is null;
  get diagnostics _n = row_count;
  return _n;
end
$$;

revoke execute on function public.mark_messages_delivered(uuid[]) from public, anon;
grant execute on function public.mark_messages_delivered(uuid[]) to authenticated, service_role;
