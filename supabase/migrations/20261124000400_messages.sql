-- Messages of a conversation. Bookkeeping on the conversation row (last
-- message, unread counters) happens in the same transaction as the insert or
-- the read, so the chat list is never out of step with the messages.

create type public.message_type as enum ('text', 'image', 'file', 'system');

create table public.messages (
  id uuid primary key default gen_random_uuid(),
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  sender_id uuid not null references public.users (id) on delete cascade,
  content text not null default '' check (char_length(content) <= 4000),
  message_type public.message_type not null default 'text',
  media_url text check (char_length(media_url) <= 2048),
  is_read boolean not null default false,
  read_at timestamptz,
  -- Chosen by the client per send attempt; a retry with the same id returns
  -- the message already stored instead of a duplicate.
  client_message_id text check (char_length(client_message_id) between 1 and 100),
  created_at timestamptz not null default now(),
  constraint messages_text_not_blank
    check (message_type not in ('text', 'system') or char_length(btrim(content)) > 0),
  constraint messages_media_has_url
    check (message_type not in ('image', 'file') or media_url is not null),
  constraint messages_client_message_id_unique unique (sender_id, client_message_id)
);
alter table public.messages enable row level security;
-- Explicit grants: participants read messages (also what `insert ...
-- returning` needs); what they may write is the column grants below.
grant select on public.messages to authenticated;
grant select, insert, update, delete on public.messages to service_role;

alter table public.conversations
  add constraint conversations_last_message_fk
  foreign key (last_message_id) references public.messages (id) on delete set null;

-- Message pages, newest first, with a stable (created_at, id) cursor.
create index messages_conversation_page_idx
  on public.messages (conversation_id, created_at desc, id desc);
-- Unread messages of a conversation by sender: mark-all-read and recounts.
create index messages_unread_idx
  on public.messages (conversation_id, sender_id) where not is_read;

-- Before insert: the sender takes part and the conversation is open for user
-- messages. (Clients cannot set id, created_at or is_read at all: see the
-- column grants below.)
create function public.messages_before_insert() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _conv public.conversations;
begin
  select * into _conv from public.conversations where id = new.conversation_id;
  if not found then
    raise exception 'conversation % does not exist', new.conversation_id
      using errcode = '23503';
  end if;
  if new.sender_id not in (_conv.brand_owner_id, _conv.influencer_id) then
    raise exception 'sender % is not a participant of conversation %',
      new.sender_id, new.conversation_id using errcode = '42501';
  end if;
  if _conv.chat_status = 'closed' and new.message_type <> 'system' then
    raise exception 'conversation % is closed', new.conversation_id
      using errcode = '23514';
  end if;
  return new;
end
$$;

create trigger messages_before_insert
  before insert on public.messages
  for each row execute function public.messages_before_insert();

-- After insert: the conversation's last message, recency and the receiver's
-- unread counter.
create function public.messages_bookkeeping_insert() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update public.conversations c
  set last_message_id = new.id,
      last_message_at = new.created_at,
      brand_owner_unread_count = c.brand_owner_unread_count
        + (case when new.sender_id = c.influencer_id and not new.is_read then 1 else 0 end),
      influencer_unread_count = c.influencer_unread_count
        + (case when new.sender_id = c.brand_owner_id and not new.is_read then 1 else 0 end)
  where c.id = new.conversation_id;
  return null;
end
$$;

create trigger messages_bookkeeping_insert
  after insert on public.messages
  for each row execute function public.messages_bookkeeping_insert();

-- Reading is one way: a read message stays read, and gets its read time.
create function public.messages_before_update() returns trigger
language plpgsql as $$
begin
  if old.is_read and not new.is_read then
    raise exception 'a read message cannot become unread' using errcode = '23514';
  end if;
  if new.is_read and not old.is_read then
    new.read_at := now();
  end if;
  return new;
end
$$;

create trigger messages_before_update
  before update on public.messages
  for each row execute function public.messages_before_update();

-- After a read (one message or many in one statement): lower the reader's
-- unread counter by what was read, per conversation.
create function public.messages_bookkeeping_read() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update public.conversations c
  set brand_owner_unread_count = greatest(0, c.brand_owner_unread_count
        - (case when r.sender_id = c.influencer_id then r.n else 0 end)),
      influencer_unread_count = greatest(0, c.influencer_unread_count
        - (case when r.sender_id = c.brand_owner_id then r.n else 0 end))
  from (
    select n.conversation_id, n.sender_id, count(*)::integer as n
    from new_rows n join old_rows o on o.id = n.id
    where n.is_read and not o.is_read
    group by n.conversation_id, n.sender_id
  ) r
  where c.id = r.conversation_id;
  return null;
end
$$;

create trigger messages_bookkeeping_read
  after update on public.messages
  referencing old table as old_rows new table as new_rows
  for each statement execute function public.messages_bookkeeping_read();

create policy "Participants can read the messages of their conversations"
  on public.messages for select to authenticated
  using (public.is_conversation_participant(conversation_id));

create policy "Participants can send messages as themselves"
  on public.messages for insert to authenticated
  with check (
    sender_id = auth.uid()
    and message_type <> 'system'
    and public.is_conversation_participant(conversation_id)
  );

create policy "Receivers can mark messages read"
  on public.messages for update to authenticated
  using (sender_id <> auth.uid() and public.is_conversation_participant(conversation_id))
  with check (sender_id <> auth.uid() and public.is_conversation_participant(conversation_id));

-- Clients choose what a message says, never its id, time or read state; the
-- only thing they may change afterwards is is_read.
revoke insert, update, delete, truncate on public.messages from anon, authenticated;
grant insert (conversation_id, sender_id, content, message_type, media_url, client_message_id)
  on public.messages to authenticated;
grant update (is_read) on public.messages to authenticated;

-- Marks the caller's unread messages of a conversation read, all of them or
-- those up to and including one message. Runs as the caller: RLS applies.
create function public.mark_conversation_read(
  p_conversation_id uuid,
  p_up_to_message_id uuid default null
) returns integer
language plpgsql security invoker set search_path = '' as $$
declare
  _n integer;
  _up_to timestamptz;
begin
  if p_up_to_message_id is not null then
    select created_at into _up_to from public.messages
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
    and (_up_to is null or m.created_at <= _up_to);
  get diagnostics _n = row_count;
  return _n;
end
$$;

revoke execute on function public.mark_conversation_read(uuid, uuid) from public, anon;
grant execute on function public.mark_conversation_read(uuid, uuid) to authenticated, service_role;
