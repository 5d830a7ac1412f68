"""The outbox seam: how committed changes leave Postgres.

Every change the bridge must tell clients about is a row of `bridge.outbox`,
written by triggers in the writer's transaction. This package reads them:

- `store`: the outbox's SQL (pages by a PgQ-style snapshot cursor, replay,
  pruning, the doorbell's arming) and `to_change`, which reads one row;
- `relay`: the lease holder's consumer, which writes push jobs, keeps the
  stored cursor and prunes (and emits, with a single instance);
- `delivery`: one change out to the sockets (translated, emitted, its
  latency recorded), for the relay, the tails and bridge/early_emit.py;
- `lease`: which instance relays (a session advisory lock);
- `tail`: with several instances, each one's own reader that emits to its
  own sockets from a cursor kept in memory; `ring`: best-effort rings
  between instances over Redis (the only module here that imports redis);
- `replay`: what a reconnecting socket missed, for `sync`;
- `doorbells`: what wakes the relay (LISTEN, Supabase Realtime, or a poll).
"""
