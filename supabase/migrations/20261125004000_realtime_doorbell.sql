-- The Realtime doorbell rings through Broadcast from Database instead of
-- postgres_changes (issue 15; figures in README "Realtime doorbell").
--
-- postgres_changes put every outbox INSERT, and every pruning DELETE, through
-- the project's `supabase_realtime` publication: Realtime's replication
-- poller decoded them in its 100-changes batches (one poll every 100-500 ms)
-- and counted each against the tenant's events per second, shared with the
-- app's own clients. `publish = 'insert'` cannot be set for one table: it is
-- the whole publication's, and the app's clients may listen to UPDATEs and
-- DELETEs of their own tables. So the outbox leaves the publication, and a
-- writer rings only while a bridge sleeps (`bridge.doorbell.armed`, as for
-- LISTEN): one `realtime.send` per ringing statement into the bridge's
-- private topic, which Realtime streams from its own replication connection
-- (no poll) to the bridge's private channel.

do $$
begin
  if exists (
    select 1 from pg_publication_tables
    where pubname = 'supabase_realtime' and schemaname = 'bridge' and tablename = 'outbox'
  ) then
    alter publication supabase_realtime drop table bridge.outbox;
  end if;
end
$$;

-- Which way an armed bell rings: NOTIFY (LISTEN doorbell) or realtime.send
-- (Realtime doorbell). Set by the doorbell the bridge runs, when it starts.
alter table bridge.doorbell add column via text not null default 'listen'
  check (via in ('listen', 'realtime'));
comment on column bridge.doorbell.via is
  'How writers ring an armed bell: listen (pg_notify) or realtime (realtime.send, private topic bridge:outbox).';

-- The topic the bridge's private channel joins ("realtime:bridge:outbox" on the wire).
create function bridge.realtime_topic() returns text
language sql immutable set search_path = '' as $$ select 'bridge:outbox' $$;

create or replace function bridge.ring_doorbell() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _armed boolean;
  _via text;
begin
  perform pg_advisory_xact_lock_shared(7406001);
  select armed, via into _armed, _via from bridge.doorbell;
  if not _armed then
    return null;
  end if;
  -- realtime.send exists only where Realtime created its schema; it never
  -- raises (a failed send is a warning), so a ring cannot fail the write.
  if _via = 'realtime'
     and to_regprocedure('realtime.send(jsonb,text,text,boolean)') is not null then
    perform realtime.send('{}'::jsonb, 'ring', bridge.realtime_topic(), true);
  else
    perform pg_notify('bridge_outbox', '');
  end if;
  return null;
end
$$;

-- Policies on realtime.messages, the table Realtime authorizes private
-- channels with (it inserts and reads back probe rows as the joining role).
-- Realtime creates that table itself, so databases without it (the embedded
-- one) get none; a stand-in that creates it later calls this again. A role
-- that may not create policies there gets a warning, not a failed migration.
-- The service role bypasses RLS, so the first policy only says what the
-- bridge relies on; the restrictive ones keep the app's own, often broad,
-- policies ("authenticated may read every topic") off the bridge's topic.
create function bridge.realtime_doorbell_policies() returns boolean
language plpgsql set search_path = '' as $$
begin
  if to_regclass('realtime.messages') is null then
    return false;
  end if;
  drop policy if exists "The bridge hears its outbox doorbell" on realtime.messages;
  create policy "The bridge hears its outbox doorbell" on realtime.messages
    for select to service_role
    using (topic = bridge.realtime_topic() and extension = 'broadcast');
  drop policy if exists "Writers ring the outbox doorbell through the bridge" on realtime.messages;
  -- bridge.ring_doorbell runs as its owner (security definer): the role
  -- running this migration.
  execute format(
    'create policy "Writers ring the outbox doorbell through the bridge" on realtime.messages'
    ' for insert to %I with check (topic = bridge.realtime_topic() and extension = %L)',
    current_user, 'broadcast');
  drop policy if exists "Only the bridge hears the outbox doorbell" on realtime.messages;
  create policy "Only the bridge hears the outbox doorbell" on realtime.messages
    as restrictive for select to anon, authenticated
    using (topic is distinct from bridge.realtime_topic());
  drop policy if exists "Only the bridge's trigger rings the outbox doorbell" on realtime.messages;
  create policy "Only the bridge's trigger rings the outbox doorbell" on realtime.messages
    as restrictive for insert to anon, authenticated
    with check (topic is distinct from bridge.realtime_topic());
  return true;
exception when insufficient_privilege then
  -- Policies need the table's owner (supabase_realtime_admin) or a member:
  -- the service role bypasses RLS anyway, so the doorbell still works.
  raise warning 'no policies on realtime.messages for the bridge doorbell: %', sqlerrm;
  return false;
end
$$;
revoke all on function bridge.realtime_doorbell_policies() from public;

select bridge.realtime_doorbell_policies();
