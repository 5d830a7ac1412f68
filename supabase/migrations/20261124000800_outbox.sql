-- Transactional outbox: every change a client must hear about is written as
-- one row here, in the transaction that made the change. A rolled-back change
-- leaves no row; a committed one cannot be missed. Rows carry everything the
-- bridge needs to route and render them (conversation, both participants,
-- ids, unread counters) so it never queries back. The bridge marks rows
-- processed after emitting them and keeps them for a while for replay.

create schema if not exists bridge;
revoke all on schema bridge from public, anon, authenticated;
grant usage on schema bridge to service_role;

create table bridge.outbox (
  id bigint generated always as identity primary key,
  topic text not null check (topic in (
    'message.created', 'messages.read', 'conversation.created',
    'conversation.state_changed', 'profile.updated')),
  conversation_id uuid,
  -- Users who may hear of this change; nobody else is ever sent it.
  recipients uuid[] not null,
  payload jsonb not null,
  created_at timestamptz not null default now(),
  processed_at timestamptz
);
alter table bridge.outbox enable row level security;
-- No policies: only the bridge (service role / owner) reads the outbox.

comment on table bridge.outbox is
  'One row per committed change that clients must hear about; consumed by the bridge.';

create index outbox_pending_idx on bridge.outbox (id) where processed_at is null;
create index outbox_recipients_idx on bridge.outbox using gin (recipients);

grant select, update, delete on bridge.outbox to service_role;

-- Supabase Realtime can ring the bridge on outbox inserts (postgres_changes).
alter publication supabase_realtime add table bridge.outbox;

-- The LISTEN doorbell. A NOTIFY per transaction serialises commits on a
-- global lock, so writers ring only while a bridge sleeps: `armed` is set by
-- a bridge before it goes idle, cleared when it wakes. A writer holds a shared
-- advisory lock from its check until commit, and a bridge arming the bell
-- takes the same lock exclusively, so a writer that saw the bell unarmed has
-- committed before the bridge's last look at the outbox.
create table bridge.doorbell (
  id boolean primary key default true check (id),
  armed boolean not null default false
);
alter table bridge.doorbell enable row level security;
insert into bridge.doorbell (id, armed) values (true, false);
grant select, update on bridge.doorbell to service_role;

create function bridge.ring_doorbell() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform pg_advisory_xact_lock_shared(7406001);
  if (select armed from bridge.doorbell) then
    perform pg_notify('bridge_outbox', '');
  end if;
  return null;
end
$$;

create trigger outbox_ring_doorbell
  after insert on bridge.outbox
  for each statement execute function bridge.ring_doorbell();

-- Payload pieces.
create function bridge.conversation_json(c public.conversations) returns jsonb
language sql stable as $$
  select jsonb_build_object(
    'id', c.id,
    'conversation_type', c.conversation_type,
    'brand_owner_id', c.brand_owner_id,
    'influencer_id', c.influencer_id,
    'bid_id', c.bid_id,
    'campaign_id', c.campaign_id,
    'flow_state', c.flow_state,
    'awaiting_role', c.awaiting_role,
    'chat_status', c.chat_status,
    'last_message_id', c.last_message_id,
    'last_message_at', c.last_message_at,
    'brand_owner_unread_count', c.brand_owner_unread_count,
    'influencer_unread_count', c.influencer_unread_count,
    'created_at', c.created_at,
    'updated_at', c.updated_at)
$$;

create function bridge.user_json(p_user_id uuid) returns jsonb
language sql stable security definer set search_path = '' as $$
  select jsonb_build_object(
    'id', u.id, 'name', u.name, 'role', u.role, 'profile_image_url', u.profile_image_url)
  from public.users u where u.id = p_user_id
$$;

-- message.created: the message, its conversation after bookkeeping (so with
-- the receiver's unread counter), and the sender's profile for push texts.
create function bridge.outbox_message_created() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _c public.conversations;
begin
  select * into _c from public.conversations where id = new.conversation_id;
  insert into bridge.outbox (topic, conversation_id, recipients, payload)
  values ('message.created', new.conversation_id,
    array[_c.brand_owner_id, _c.influencer_id],
    jsonb_build_object(
      'message', to_jsonb(new),
      'conversation', bridge.conversation_json(_c),
      'sender', bridge.user_json(new.sender_id)));
  return null;
end
$$;

create trigger messages_outbox_insert
  after insert on public.messages
  for each row execute function bridge.outbox_message_created();

-- messages.read: one row per conversation and reader per statement, however
-- many messages it marked.
create function bridge.outbox_messages_read() returns trigger
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
      jsonb_agg(n.id order by n.created_at, n.id) as ids, max(n.read_at) as read_at
    from new_rows n join old_rows o on o.id = n.id
    where n.is_read and not o.is_read
    group by n.conversation_id, n.sender_id
  ) r
  join public.conversations c on c.id = r.conversation_id;
  return null;
end
$$;

create trigger messages_outbox_read
  after update on public.messages
  referencing old table as old_rows new table as new_rows
  for each statement execute function bridge.outbox_messages_read();

create function bridge.outbox_conversation_created() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bridge.outbox (topic, conversation_id, recipients, payload)
  values ('conversation.created', new.id, array[new.brand_owner_id, new.influencer_id],
    jsonb_build_object(
      'conversation', bridge.conversation_json(new),
      'brand_owner', bridge.user_json(new.brand_owner_id),
      'influencer', bridge.user_json(new.influencer_id)));
  return null;
end
$$;

create trigger conversations_outbox_insert
  after insert on public.conversations
  for each row execute function bridge.outbox_conversation_created();

create function bridge.outbox_conversation_state_changed() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bridge.outbox (topic, conversation_id, recipients, payload)
  values ('conversation.state_changed', new.id, array[new.brand_owner_id, new.influencer_id],
    jsonb_build_object(
      'conversation', bridge.conversation_json(new),
      'previous', jsonb_build_object(
        'flow_state', old.flow_state,
        'awaiting_role', old.awaiting_role,
        'chat_status', old.chat_status)));
  return null;
end
$$;

create trigger conversations_outbox_state_changed
  after update of flow_state, awaiting_role, chat_status on public.conversations
  for each row
  when ((old.flow_state, old.awaiting_role, old.chat_status)
        is distinct from (new.flow_state, new.awaiting_role, new.chat_status))
  execute function bridge.outbox_conversation_state_changed();

-- profile.updated: the user and everyone they share a conversation with.
create function bridge.outbox_profile_updated() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into bridge.outbox (topic, conversation_id, recipients, payload)
  select 'profile.updated', null,
    array[new.id] || coalesce(array_agg(distinct p.partner), '{}'),
    jsonb_build_object('user', jsonb_build_object(
      'id', new.id, 'name', new.name, 'role', new.role,
      'profile_image_url', new.profile_image_url))
  from (
    select case when c.brand_owner_id = new.id then c.influencer_id
                else c.brand_owner_id end as partner
    from public.conversations c
    where new.id in (c.brand_owner_id, c.influencer_id)
  ) p;
  return null;
end
$$;

create trigger users_outbox_profile_updated
  after update of name, profile_image_url on public.users
  for each row
  when ((old.name, old.profile_image_url) is distinct from (new.name, new.profile_image_url))
  execute function bridge.outbox_profile_updated();
