-- The relay's read, planned once per session instead of on every call.
-- relay_peek was a SQL function with a search_path setting: Postgres never
-- inlines such a function nor keeps its plan, so every relay_step (one per
-- send on a quiet bridge) parsed and planned its body again: about half of
-- the 0.77 M instructions relay_step cost per call (counted under
-- callgrind). In PL/pgSQL the statement's plan is kept for the session
-- (0.56 M). Same signature, same rows; relay_step calls it unchanged.
create or replace function bridge.relay_peek(p_limit integer) returns table (
  done text, upto text, complete boolean,
  id bigint, topic text, conversation_id uuid, recipients uuid[], payload jsonb,
  created_at timestamptz
)
language plpgsql stable set search_path = '' as $$
begin
  return query
    select c.done::text, t.*
    from bridge.relay_cursor c,
      bridge.outbox_tail(c.done::text, c.upto::text, c.after_id, p_limit) t;
end
$$;
revoke all on function bridge.relay_peek(integer) from public;
