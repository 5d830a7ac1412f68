-- Edit and unsend. A sender may change the text of their own message, or
-- unsend it, within a window after sending (`server.edit_window`, 15 min by
-- default). Unsending is a soft delete: the content (text and media) is gone,
-- the row stays as a tombstone with `deleted_at`, so the conversation's order
-- (seq), its last message and clients' lists keep their place. The rules are
-- enforced here, by RLS and a trigger, so supabase-js clients
-- (`update messages set content = ...`, `set deleted_at = now()`, or the
-- `edit_message` / `unsend_message` functions) get exactly what the bridge's
-- socket and REST paths get. System (flow) messages cannot be edited or
-- unsent. Unsending a message the receiver has not read lowers their unread
-- counter. Each change writes one outbox row: `message.updated` or
-- `message.deleted`.

-- The window. One row; the bridge writes its setting here when it starts,
-- so SQL enforces the window the bridge documents; clients may read it to
-- show "Edit" only while it is open.
create table public.message_rules (
  id boolean primary key default true check (id),
  edit_window interval not null default interval '15 minutes'
    check (edit_window >= interval '0')
);
alter table public.message_rules enable row level security;
-- Explicit grants: clients read the rule, only the bridge (service role or
-- owner) changes it.
grant select on public.message_rules to authenticated;
grant select, insert, update on public.message_rules to service_role;
revoke insert, update, delete, truncate on public.message_rules from anon, authenticated;
insert into public.message_rules default values;

create policy "Signed-in users can read the message rules"
  on public.message_rules for select to authenticated
  using (true);

create function public.message_edit_window() returns interval
language sql stable security definer set search_path = '' as $$
  select coalesce((select r.edit_window from public.message_rules r), interval '15 minutes')
$$;
revoke execute on function public.message_edit_window() from public, anon;
grant execute on function public.message_edit_window() to authenticated, service_role;

alter table public.messages
  add column edited_at timestamptz,
  add column deleted_at timestamptz;

comment on column public.messages.edited_at is 'When the sender last changed the text; null if never.';
comment on column public.messages.deleted_at is
  'When the sender unsent the message: content and media_url are gone, the row is a tombstone.';

-- A tombstone has no text and no media, whatever its type.
alter table public.messages
  drop constraint messages_text_not_blank,
  add constraint messages_text_not_blank
    check (deleted_at is not null or message_type not in ('text', 'system')
           or char_length(btrim(content)) > 0),
  drop constraint messages_media_has_url,
  add constraint messages_media_has_url
    check (deleted_at is not null or message_type not in ('image', 'file')
           or media_url is not null),
  add constraint messages_tombstone_is_empty
    check (deleted_at is null or (content = '' and media_url is null));

-- Senders may now update their own rows; what they may change is the column
-- grant (content, deleted_at) and the trigger below. Receivers keep their
-- policy for is_read; the trigger refuses them the sender's columns.
create policy "Senders can edit and unsend their own messages"
  on public.messages for update to authenticated
  using (sender_id = auth.uid() and public.is_conversation_participant(conversation_id))
  with check (sender_id = auth.uid() and public.is_conversation_participant(conversation_id));

grant update (content, deleted_at) on public.messages to authenticated;

-- Before update: who may change what, and when. Security invoker on purpose:
-- `current_user` is then the role of the statement, so clients
-- (authenticated, anon) are held to the rules (sender only, window, no
-- system messages) while the service role and the owner (moderation,
-- maintenance) may unsend anything; a tombstone stays one for everybody. Refusals carry a machine-readable
-- code in HINT (`forbidden`, `not_editable`, `edit_window_closed`), which
-- PostgREST passes on to supabase-js and the bridge maps to its error codes.
create function public.messages_guard_update() returns trigger
language plpgsql set search_path = '' as $$
declare
  _client boolean := current_user in ('authenticated', 'anon');
  _uid uuid := auth.uid();
  _edit boolean := new.content is distinct from old.content
                   or new.media_url is distinct from old.media_url;
  _unsend boolean := new.deleted_at is distinct from old.deleted_at;
begin
  if (_edit or _unsend) and _client and _uid is distinct from old.sender_id then
    raise exception 'only the sender can % a message',
      case when _unsend then 'unsend' else 'edit' end
      using errcode = '42501', hint = 'forbidden';
  end if;
  if old.deleted_at is not null then
    if _edit or _unsend then
      -- Unsending again changes nothing (the row is skipped); a tombstone is
      -- never edited or restored, by anyone.
      if new.deleted_at is not null and new.content in (old.content, '')
         and new.media_url is not distinct from old.media_url then
        return null;
      end if;
      raise exception 'the message was unsent' using errcode = '23514', hint = 'not_editable';
    end if;
    -- A tombstone's read and delivery state are frozen for clients: the row
    -- is skipped, as rows a statement may not change are.
    if _client then
      return null;
    end if;
    return new;
  end if;
  if (_edit or _unsend) and _client then
    if old.message_type = 'system' then
      raise exception 'system and flow messages cannot be edited or unsent'
        using errcode = '23514', hint = 'not_editable';
    end if;
    if now() > old.created_at + public.message_edit_window() then
      raise exception 'the time to % this message is over (% min after sending)',
        case when _unsend then 'unsend' else 'edit' end,
        trim_scale(round(extract(epoch from public.message_edit_window()) / 60, 2))
        using errcode = '23514', hint = 'edit_window_closed';
    end if;
  end if;
  if _unsend then
    new.deleted_at := now();
    new.content := '';
    new.media_url := null;
    new.edited_at := old.edited_at;
  elsif _edit then
    new.edited_at := now();
  end if;
  -- Senders edit and unsend; anything else they try on their own rows (a
  -- read mark, a delivery) is skipped, as before they could update them.
  if _client and _uid = old.sender_id then
    if not (_edit or _unsend) then
      return null;
    end if;
    new.is_read := old.is_read;
    new.read_at := old.read_at;
  end if;
  return new;
end
$$;

create trigger messages_guard_update
  before update on public.messages
  for each row execute function public.messages_guard_update();

-- After unsending an unread message: the receiver's unread counter drops.
-- (The tombstone stays unread and frozen, so a later mark-read never counts
-- it again.) The conversation's last message stays the tombstone: the chat
-- list shows "unsent" in its place, as chat apps do.
create function public.messages_bookkeeping_unsend() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if not old.is_read then
    update public.conversations c
    set brand_owner_unread_count = greatest(0, c.brand_owner_unread_count
          - (case when new.sender_id = c.influencer_id then 1 else 0 end)),
        influencer_unread_count = greatest(0, c.influencer_unread_count
          - (case when new.sender_id = c.brand_owner_id then 1 else 0 end))
    where c.id = new.conversation_id;
  end if;
  return null;
end
$$;

create trigger messages_bookkeeping_unsend
  after update of deleted_at on public.messages
  for each row
  when (old.deleted_at is null and new.deleted_at is not null)
  execute function public.messages_bookkeeping_unsend();

-- Outbox topics: added to whatever the constraint allows now, so that other
-- migrations adding topics compose with this one in any order.
do $$
declare
  _topics text[];
begin
  select array_agg(distinct t[1]) into _topics
  from pg_constraint k,
    regexp_matches(pg_get_constraintdef(k.oid), '([a-z_]+\.[a-z_.]+)', 'g') t
  where k.conrelid = 'bridge.outbox'::regclass and k.conname = 'outbox_topic_check';
  _topics := array(select distinct unnest(
    coalesce(_topics, '{}') || array['message.updated', 'message.deleted']) order by 1);
  alter table bridge.outbox drop constraint if exists outbox_topic_check;
  execute format(
    'alter table bridge.outbox add constraint outbox_topic_check check (topic in (%s))',
    (select string_agg(quote_literal(x), ', ') from unnest(_topics) x));
end
$$;

-- message.updated / message.deleted: the message as it is now, its
-- conversation after bookkeeping (unread counters, last message), the
-- sender for push texts; for an unsend, whether the receiver had not read it
-- yet and the receiver's latest message from the sender still unread (what
-- a push shown for the unsent one is replaced with).
create function bridge.outbox_message_changed() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _c public.conversations;
  _unsent boolean := new.deleted_at is not null;
begin
  select * into _c from public.conversations where id = new.conversation_id;
  insert into bridge.outbox (topic, conversation_id, recipients, payload)
  values (case when _unsent then 'message.deleted' else 'message.updated' end,
    new.conversation_id,
    array[_c.brand_owner_id, _c.influencer_id],
    jsonb_build_object(
      'message', to_jsonb(new),
      'conversation', bridge.conversation_json(_c),
      'sender', bridge.user_json(new.sender_id),
      'was_unread', _unsent and not old.is_read,
      'latest_unread', case when _unsent and not old.is_read then (
        select to_jsonb(m) from public.messages m
        where m.conversation_id = new.conversation_id and m.sender_id = new.sender_id
          and not m.is_read and m.deleted_at is null and m.id <> new.id
        order by m.seq desc limit 1) end));
  return null;
end
$$;

create trigger messages_outbox_changed
  after update of content, deleted_at on public.messages
  for each row
  when ((old.content, old.deleted_at) is distinct from (new.content, new.deleted_at))
  execute function bridge.outbox_message_changed();

-- What clients call (supabase.rpc or the bridge, as the user): RLS and the
-- trigger decide. A message the caller cannot see is "not found", as a
-- missing one; the answer is the message as stored.
create function public.edit_message(p_message_id uuid, p_content text)
returns public.messages
language plpgsql security invoker set search_path = '' as $$
declare
  _m public.messages;
begin
  select * into _m from public.messages where id = p_message_id;
  if found and _m.content = p_content then
    -- The same text: nothing to write (the trigger would skip the row), but
    -- the same answer as for a change.
    if _m.sender_id is distinct from auth.uid() then
      raise exception 'only the sender can edit a message' using errcode = '42501', hint = 'forbidden';
    end if;
    if _m.deleted_at is not null or _m.message_type = 'system' then
      raise exception 'this message cannot be edited' using errcode = '23514', hint = 'not_editable';
    end if;
    if now() > _m.created_at + public.message_edit_window() then
      raise exception 'the time to edit this message is over' using errcode = '23514',
        hint = 'edit_window_closed';
    end if;
    return _m;
  end if;
  update public.messages set content = p_content where id = p_message_id returning * into _m;
  if not found then
    raise exception 'message not found' using errcode = 'P0002', hint = 'not_found';
  end if;
  return _m;
end
$$;

create function public.unsend_message(p_message_id uuid)
returns public.messages
language plpgsql security invoker set search_path = '' as $$
declare
  _m public.messages;
begin
  update public.messages set deleted_at = now() where id = p_message_id returning * into _m;
  if not found then
    -- Unsent before (the trigger skipped the row): the tombstone, if it is
    -- the caller's.
    select * into _m from public.messages
    where id = p_message_id and deleted_at is not null and sender_id = auth.uid();
  end if;
  if _m.id is null then
    raise exception 'message not found' using errcode = 'P0002', hint = 'not_found';
  end if;
  return _m;
end
$$;

revoke execute on function public.edit_message(uuid, text) from public, anon;
revoke execute on function public.unsend_message(uuid) from public, anon;
grant execute on function public.edit_message(uuid, text) to authenticated, service_role;
grant execute on function public.unsend_message(uuid) to authenticated, service_role;
