-- The bridge's send path in one round trip. Writing "as the user" the way
-- PostgREST does takes BEGIN, set_config, INSERT and COMMIT: four round
-- trips per message. This function does the same in one statement: it
-- switches to the `authenticated` role and the user's JWT claims for the
-- rest of its (autocommit) transaction, then inserts, so grants, RLS and
-- the triggers decide exactly as they do for supabase-js. It is SECURITY
-- INVOKER on purpose: a definer function may not change role.
--
-- Only the bridge (the database owner) may call it: the claims it is given
-- are trusted, so neither anon nor authenticated can reach it (no usage on
-- schema bridge, and execute revoked from public).

create function bridge.send_message_as(
  p_claims jsonb,
  p_conversation_id uuid,
  p_content text,
  p_message_type public.message_type,
  p_media_url text,
  p_client_message_id text
) returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
  _sender uuid := (p_claims ->> 'sub')::uuid;
  _message jsonb;
begin
  perform set_config('role', 'authenticated', true),
          set_config('request.jwt.claims', p_claims::text, true);
  insert into public.messages
    (conversation_id, sender_id, content, message_type, media_url, client_message_id)
  values
    (p_conversation_id, _sender, p_content, p_message_type, p_media_url, p_client_message_id)
  on conflict (sender_id, client_message_id) do nothing
  returning to_jsonb(messages.*) into _message;
  if _message is not null then
    return jsonb_build_object('message', _message, 'created', true);
  end if;
  -- A retry of a send that was stored before: answer with the stored message.
  select to_jsonb(m.*) into _message
  from public.messages m
  where m.sender_id = _sender and m.client_message_id = p_client_message_id;
  return jsonb_build_object('message', _message, 'created', false);
end
$$;

revoke all on function bridge.send_message_as(jsonb, uuid, text, public.message_type, text, text)
  from public, anon, authenticated;
grant execute on function bridge.send_message_as(jsonb, uuid, text, public.message_type, text, text)
  to service_role;

-- Group commit: the sends that arrived while the previous batch was being
-- written, in one statement and one commit, each still written as its own
-- user under RLS (send_message_as switches the claims per message). Items:
-- {claims, conversation_id, content, message_type, media_url,
-- client_message_id}; the results come back in the same order. One refused
-- message fails the statement: the bridge then writes that batch one by one.
create function bridge.send_messages_as(p_batch jsonb) returns jsonb
language plpgsql security invoker set search_path = '' as $$
declare
  _item jsonb;
  _results jsonb[] := '{}';
begin
  for _item in select value from jsonb_array_elements(p_batch) loop
    _results := _results || bridge.send_message_as(
      _item -> 'claims',
      (_item ->> 'conversation_id')::uuid,
      _item ->> 'content',
      (_item ->> 'message_type')::public.message_type,
      _item ->> 'media_url',
      _item ->> 'client_message_id');
  end loop;
  return to_jsonb(_results);
end
$$;

revoke all on function bridge.send_messages_as(jsonb) from public, anon, authenticated;
grant execute on function bridge.send_messages_as(jsonb) to service_role;
