-- The relay in one round trip per page. It used to read a page
-- (relay_peek), emit it, then move its cursor (relay_advance): two
-- statements per page, and under steady traffic a page per message or two,
-- so the advance stood between every page and the next and cost Postgres a
-- statement of its own each time. relay_step moves the cursor past the page
-- the relay has just emitted and reads the next one, in one statement. The
-- cursor still moves only after the page went out (at-least-once), and a
-- page with push jobs still moves it in the transaction that writes them
-- (the relay then passes no page here).
create function bridge.relay_step(
  p_done text, p_upto text, p_complete boolean, p_last_id bigint, p_limit integer
) returns table (
  done text, upto text, complete boolean,
  id bigint, topic text, conversation_id uuid, recipients uuid[], payload jsonb,
  created_at timestamptz
)
language plpgsql set search_path = '' as $$
begin
  -- No page to move past (p_done null): only the read.
  if p_done is not null then
    perform bridge.relay_advance(p_done, p_upto, p_complete, p_last_id);
  end if;
  return query select * from bridge.relay_peek(p_limit);
end
$$;
revoke all on function bridge.relay_step(text, text, boolean, bigint, integer) from public;
