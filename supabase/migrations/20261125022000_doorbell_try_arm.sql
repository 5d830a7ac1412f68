-- Arming the doorbell no longer waits behind open writers.
--
-- A writer holds the DOORBELL advisory lock (7406001, bridge/locks.py)
-- shared from the moment bridge.ring_doorbell() looks at `armed` until it
-- commits. The relay used to arm by taking that lock exclusively, so its
-- arming waited for every writer still open: a supabase-js client in a
-- long transaction, or a stuck one, held up arming and so every delivery
-- behind it; and while the relay waited, every new writer queued behind its
-- exclusive request too (Postgres grants no shared lock past a waiting
-- exclusive one), so all writes stalled with it.
--
-- Now the relay only tries the lock (pg_try_advisory_xact_lock never
-- waits, and nobody queues behind it). Got it: every writer that saw the
-- bell unarmed has committed, so the relay's next read sees their rows and
-- it may sleep until a ring (the bell is "sealed"). Did not: the bell is
-- armed all the same (later writers ring), but an open writer may have seen
-- it unarmed and will not ring; the relay reads again after a short while,
-- and tries again, until it gets the lock. Nothing is lost either way: the
-- relay reads by its snapshot cursor, so a row shows up when its
-- transaction commits, whatever its id; only the ring is missing.
--
-- One round trip each, and the flag's commit does not wait for the disk: a
-- flag lost in a crash is set or cleared again by the relay's next turn.

create function bridge.arm_doorbell() returns boolean
language plpgsql set search_path = '' as $$
begin
  perform set_config('synchronous_commit', 'off', true);
  update bridge.doorbell set armed = true where not armed;
  -- Released at this statement's commit; true: no writer is open that may
  -- have seen the bell unarmed.
  return pg_try_advisory_xact_lock(7406001);
end
$$;
revoke all on function bridge.arm_doorbell() from public;
comment on function bridge.arm_doorbell() is
  'Asks writers to ring; true when no writer that may have seen the bell unarmed is still open.';

create function bridge.disarm_doorbell() returns void
language plpgsql set search_path = '' as $$
begin
  perform set_config('synchronous_commit', 'off', true);
  update bridge.doorbell set armed = false where armed;
end
$$;
revoke all on function bridge.disarm_doorbell() from public;
