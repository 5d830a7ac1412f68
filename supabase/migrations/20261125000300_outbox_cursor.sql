-- The relay remembers where it is with a cursor instead of marking every
-- outbox row processed. Marking cost an UPDATE per change: a new row version
-- with new entries in every outbox index (the recipients GIN index too), and
-- one more change through the Realtime publication. Now each row records the
-- transaction that wrote it, and the relay keeps one snapshot, `done`: a
-- change has been relayed exactly when its transaction is visible in `done`.
-- This is how Skytools PgQ reads its event tables: ids of a sequence are
-- handed out in one order and committed in another, so "everything below
-- id N" has gaps, while "everything visible in snapshot S" has none.
--
-- A batch reads the changes visible in a newer snapshot `upto` but not in
-- `done`, in id order (within a conversation that is commit order: its
-- writers queue on the conversation row). Large windows are read in pages;
-- `after_id` is the last id of the window already relayed. The cursor moves
-- in the same transaction as the batch's push jobs, so a crash replays a
-- page at most, never skips one.

alter table bridge.outbox add column xid xid8;
-- Rows relayed so far count as done (an old transaction id); pending ones
-- belong to this transaction, which the initial cursor leaves pending.
update bridge.outbox
set xid = case when processed_at is null then pg_current_xact_id() else '3'::xid8 end;
alter table bridge.outbox
  alter column xid set default pg_current_xact_id(),
  alter column xid set not null;
comment on column bridge.outbox.xid is
  'The writing transaction; relayed once visible in bridge.relay_cursor.done.';

drop index bridge.outbox_pending_idx;
alter table bridge.outbox drop column processed_at;
-- A window's candidates: the transaction ids between two snapshots.
create index outbox_xid_idx on bridge.outbox (xid) include (id);

create table bridge.relay_cursor (
  id boolean primary key default true check (id),
  -- Every change whose transaction is visible in `done` has been relayed.
  done pg_snapshot not null,
  -- The window being relayed in pages, if one is open.
  upto pg_snapshot,
  after_id bigint not null default 0
);
alter table bridge.relay_cursor enable row level security;
-- No policies: only the bridge reads or moves the cursor.
grant select, update on bridge.relay_cursor to service_role;

-- Done: every transaction before this one. Rows still pending above were
-- given this transaction's id, so they are relayed next.
insert into bridge.relay_cursor (done)
values ((pg_current_xact_id()::text || ':' || pg_current_xact_id()::text || ':')::pg_snapshot);

-- Whether a change has been relayed.
create function bridge.is_relayed(p_xid xid8) returns boolean
language sql stable set search_path = '' as $$
  select pg_visible_in_snapshot(p_xid, c.done) from bridge.relay_cursor c
$$;

-- Changes not relayed yet (for operators, tests and the bench).
create view bridge.outbox_pending with (security_invoker = true) as
  select o.* from bridge.outbox o, bridge.relay_cursor c
  where not pg_visible_in_snapshot(o.xid, c.done);
grant select on bridge.outbox_pending to service_role;

-- Counts everything committed so far, and this transaction's own changes, as
-- relayed: for the demo seed, whose history is nobody's news.
create function bridge.skip_pending() returns void
language sql set search_path = '' as $$
  update bridge.relay_cursor
  set upto = null,
      after_id = 0,
      done = (
        select (
          pg_snapshot_xmin(s)::text || ':'
          || greatest(pg_snapshot_xmax(s)::text::bigint,
                      pg_current_xact_id()::text::bigint + 1)::text || ':'
          || coalesce((select string_agg(x::text, ',') from pg_snapshot_xip(s) x
                       where x <> pg_current_xact_id()), '')
        )::pg_snapshot
        from pg_current_snapshot() s)
$$;
revoke all on function bridge.skip_pending() from public;

-- The next page after a cursor, read without moving anything: the changes
-- visible in the window's snapshot `upto` (opened at this statement when
-- p_upto is null) and not in `done`, after `after_id`, in id order. Returns
-- the window, whether this page ends it, and the rows (no rows: one row of
-- nulls but for those). Stateless: the relay reads from its stored cursor
-- (relay_peek), each instance's own tail from one it keeps in memory.
create function bridge.outbox_tail(
  p_done text, p_upto text, p_after_id bigint, p_limit integer
) returns table (
  upto text, complete boolean,
  id bigint, topic text, conversation_id uuid, recipients uuid[], payload jsonb,
  created_at timestamptz
)
language plpgsql stable set search_path = '' as $$
declare
  _done pg_snapshot := p_done::pg_snapshot;
  _upto pg_snapshot := coalesce(p_upto::pg_snapshot, pg_current_snapshot());
  _ids bigint[];
begin
  -- Candidates through the xid index first (a window spans few
  -- transactions), then the page in id order.
  with candidates as materialized (
    select c.id, c.xid from bridge.outbox c
    where c.xid >= pg_snapshot_xmin(_done) and c.xid < pg_snapshot_xmax(_upto)
  )
  select array_agg(w.id order by w.id) into _ids
  from (
    select c.id from candidates c
    where pg_visible_in_snapshot(c.xid, _upto)
      and not pg_visible_in_snapshot(c.xid, _done)
      and c.id > (case when p_upto is null then 0 else p_after_id end)
    order by c.id
    limit p_limit
  ) w;
  if coalesce(cardinality(_ids), 0) = 0 then
    return query select _upto::text, true, null::bigint, null::text,
      null::uuid, null::uuid[], null::jsonb, null::timestamptz;
    return;
  end if;
  return query
    select _upto::text, cardinality(_ids) < p_limit,
      o.id, o.topic, o.conversation_id, o.recipients, o.payload, o.created_at
    from bridge.outbox o
    where o.id = any(_ids)
    order by o.id;
end
$$;
revoke all on function bridge.outbox_tail(text, text, bigint, integer) from public;

-- The relay's next page, from its stored cursor; it emits the page and then
-- moves the cursor with relay_advance, in the transaction that writes the
-- page's push jobs: a crash in between only means the page is relayed again.
create function bridge.relay_peek(p_limit integer) returns table (
  done text, upto text, complete boolean,
  id bigint, topic text, conversation_id uuid, recipients uuid[], payload jsonb,
  created_at timestamptz
)
language sql stable set search_path = '' as $$
  select c.done::text, t.*
  from bridge.relay_cursor c,
    bridge.outbox_tail(c.done::text, c.upto::text, c.after_id, p_limit) t
$$;
revoke all on function bridge.relay_peek(integer) from public;

-- Moves the cursor past a page read with relay_peek from cursor `p_done`:
-- to the window's end when the page completed it, else to its last id. The
-- commit need not wait for the disk: a lost move only means a page relayed
-- again. Refuses (P0001) when the cursor is no longer where the page was
-- read from: another relay moved it.
create function bridge.relay_advance(
  p_done text, p_upto text, p_complete boolean, p_last_id bigint
) returns void
language plpgsql set search_path = '' as $$
begin
  perform set_config('synchronous_commit', 'off', true);
  update bridge.relay_cursor
  set done = case when p_complete then p_upto::pg_snapshot else done end,
      upto = case when p_complete then null else p_upto::pg_snapshot end,
      after_id = case when p_complete then 0 else p_last_id end
  where done::text = p_done;
  if not found then
    raise exception 'the relay cursor moved under this relay' using errcode = 'P0001';
  end if;
end
$$;
revoke all on function bridge.relay_advance(text, text, boolean, bigint) from public;
