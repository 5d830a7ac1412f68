-- Delivery without waiting for the relay (single instance). The socket path
-- used to deliver a message only once the relay, woken by the writer's
-- commit, had read it back from the outbox: a second round trip after the
-- commit on every message's way to its receiver. Now the send statement also
-- returns the outbox rows it wrote, per conversation with the id of the
-- conversation's previous outbox row; the bridge emits them right after the
-- commit when that previous row has already gone out (so each conversation
-- keeps its one order), and the relay, which still reads every row (push
-- jobs, its cursor, at-least-once), skips the ones already emitted.

-- The previous row of a conversation: every writer of a conversation's
-- changes holds its row lock, so within a conversation ids follow commit
-- order and the previous row is the highest id below.
create index outbox_conversation_idx on bridge.outbox (conversation_id, id);

-- send_messages_as, plus the changes it wrote:
-- {results: [...as send_messages_as...], changes: [{conversation_id, prev,
-- rows: [{id, topic, recipients, payload, created_at}]}]}. The sends run as
-- their users (send_message_as switches role and claims); reading the outbox
-- back switches to the bridge's own role again (SET ROLE NONE, which any
-- session may do), after the last insert.
create function bridge.send_messages_emitting(p_batch jsonb) returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
  _results jsonb;
  _changes jsonb;
begin
  _results := bridge.send_messages_as(p_batch);
  perform set_config('role', 'none', true),
          set_config('request.jwt.claims', '', true);
  select coalesce(jsonb_agg(jsonb_build_object(
      'conversation_id', g.conversation_id, 'prev', g.prev, 'rows', g.rows)), '[]')
  into _changes
  from (
    select o.conversation_id,
      (select p.id from bridge.outbox p
       where p.conversation_id = o.conversation_id and p.xid <> pg_current_xact_id()
       order by p.id desc limit 1) as prev,
      jsonb_agg(jsonb_build_object(
        'id', o.id, 'topic', o.topic, 'recipients', o.recipients,
        'payload', o.payload, 'created_at', o.created_at) order by o.id) as rows
    from bridge.outbox o
    where o.xid = pg_current_xact_id() and o.conversation_id is not null
    group by o.conversation_id
  ) g;
  return jsonb_build_object('results', _results, 'changes', _changes);
end
$$;

revoke all on function bridge.send_messages_emitting(jsonb) from public, anon, authenticated;
grant execute on function bridge.send_messages_emitting(jsonb) to service_role;
