-- The socket send path's Postgres CPU (issue 9: daemon + Postgres CPU per
-- message at most the Node server's). Counted with valgrind (instructions of
-- the backend per message, one send per statement, the way sends go at
-- 500 msg/s; bench/send_instructions.py): the bridge's send statement cost
-- 2.61 M instructions where the Node server's INSERT + SELECT cost 1.58 M,
-- with the same triggers (after this migration: 2.35 M; 2.12 M at 8 sends
-- per statement, from 2.36 M). Of the
-- difference, reading the send's outbox rows back as one jsonb document
-- (each payload taken apart and built again inside jsonb_agg, then the
-- whole printed as text) was about 0.47 M, RLS about 0.32 M (three calls of
-- SECURITY DEFINER PL/pgSQL helpers per message, each with its own
-- search_path to set and restore: the insert's participant check, the
-- block check with its nested blocked_between, and the participant check
-- again for the SELECT policy that RETURNING applies), and the rest the
-- per-message role switch, a nested function call and the message printed
-- twice (in the answer and in the outbox row). README, "Third round on the
-- send path's CPU", has the method and what is left.
--
-- Same rules as before: every insert is still decided by RLS as the user
-- (the same policies, by name, with the same conditions), the block check
-- is still a restrictive policy, and the outbox rows still come back in id
-- order per conversation with the previous row's id.

-- The participant policies on messages as plain subqueries instead of
-- helper calls: planned with the statement, evaluated inline, and
-- `(select auth.uid())` read once per statement. The subquery reads
-- conversations under its own policy ("Participants can read their
-- conversations", the same condition), so no definer rights are needed.
drop policy "Participants can send messages as themselves" on public.messages;
create policy "Participants can send messages as themselves"
  on public.messages for insert to authenticated
  with check (
    sender_id = (select auth.uid())
    and message_type <> 'system'
    and exists (
      select 1 from public.conversations c
      where c.id = conversation_id
        and (select auth.uid()) in (c.brand_owner_id, c.influencer_id)));

drop policy "Participants can read the messages of their conversations" on public.messages;
create policy "Participants can read the messages of their conversations"
  on public.messages for select to authenticated
  using (exists (
    select 1 from public.conversations c
    where c.id = conversation_id
      and (select auth.uid()) in (c.brand_owner_id, c.influencer_id)));

-- The block check in one query instead of two nested definer calls. It
-- still needs definer rights: a user cannot see who blocked them.
create or replace function public.conversation_blocked(p_conversation uuid) returns boolean
language plpgsql stable security definer set search_path = '' as $$
begin
  return exists (
    select 1
    from public.conversations c
    join public.user_blocks b
      on (b.blocker_id = c.brand_owner_id and b.blocked_id = c.influencer_id)
      or (b.blocker_id = c.influencer_id and b.blocked_id = c.brand_owner_id)
    where c.id = p_conversation and auth.uid() in (c.brand_owner_id, c.influencer_id));
end
$$;

-- The single instance's send statement, as rows. First one row per item,
-- in order, with `result`: {id, created: true} for a new message (its
-- full row is in its message.created change below), or {message, created:
-- false} for a retry of a stored client_message_id. Then the changes the
-- statement wrote, in id order, each with `prev`, the id
-- of the conversation's previous outbox row (written before this
-- transaction). The role switches to `authenticated` once per batch; the
-- claims change per item, so each insert is decided by RLS as its own
-- user; the outbox is read back as the bridge (SET ROLE NONE) after the
-- last insert. One refused item fails the statement, as before.
create function bridge.send_messages_changes(p_batch jsonb)
returns table (
  result jsonb,
  conversation_id uuid, prev bigint,
  id bigint, topic text, recipients uuid[], payload jsonb, created_at timestamptz
)
language plpgsql security invoker set search_path = '' as $$
declare
  _item jsonb;
  _sender uuid;
  _id uuid;
  _results jsonb[] := '{}';
  _set text;
begin
  -- Assignments, not PERFORM: a simple expression skips the executor.
  _set := set_config('role', 'authenticated', true);
  for _item in select value from jsonb_array_elements(p_batch) loop
    _sender := (_item -> 'claims' ->> 'sub')::uuid;
    _set := set_config('request.jwt.claims', (_item -> 'claims')::text, true);
    insert into public.messages as m
      (conversation_id, sender_id, content, message_type, media_url, client_message_id)
    values
      ((_item ->> 'conversation_id')::uuid, _sender, _item ->> 'content',
       (_item ->> 'message_type')::public.message_type, _item ->> 'media_url',
       _item ->> 'client_message_id')
    on conflict (sender_id, client_message_id) do nothing
    returning m.id into _id;
    if _id is not null then
      _results := _results || jsonb_build_object('id', _id, 'created', true);
    else
      -- A retry of a send stored before: the stored message, read as the user.
      _results := _results || jsonb_build_object('created', false, 'message', (
        select to_jsonb(s.*) from public.messages s
        where s.sender_id = _sender and s.client_message_id = _item ->> 'client_message_id'));
    end if;
  end loop;
  _set := set_config('role', 'none', true);
  _set := set_config('request.jwt.claims', '', true);
  return query select r, null::uuid, null::bigint, null::bigint, null::text, null::uuid[],
    null::jsonb, null::timestamptz
  from unnest(_results) with ordinality as u (r, n) order by n;
  return query
    select null::jsonb, o.conversation_id,
      (select p.id from bridge.outbox p
       where p.conversation_id = o.conversation_id and p.xid <> pg_current_xact_id()
       order by p.id desc limit 1),
      o.id, o.topic, o.recipients, o.payload, o.created_at
    from bridge.outbox o
    where o.xid = pg_current_xact_id() and o.conversation_id is not null
    order by o.id;
end
$$;

revoke all on function bridge.send_messages_changes(jsonb) from public, anon, authenticated;
grant execute on function bridge.send_messages_changes(jsonb) to service_role;

-- Its jsonb-document predecessor (20261125009200) has no caller left.
drop function bridge.send_messages_emitting(jsonb);
