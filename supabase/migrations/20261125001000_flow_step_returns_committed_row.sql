-- flow_step answered with the conversation as its UPDATE left it, before the
-- system message's bookkeeping trigger moved last_message_id,
-- last_message_at and the unread counters: the edge function's answer
-- (apply_flow_action, start_bid_conversation, start_campaign_conversation
-- all return flow_step's row) showed a stale last message and unread counts.
-- Same rules, same order (state first, so the message's outbox row carries
-- the new state); the row is read back after the message.
create or replace function public.flow_step(
  p_conversation public.conversations,
  p_action text,
  p_actor uuid
) returns public.conversations
language plpgsql security definer set search_path = '' as $$
declare
  _role public.user_role;
  _t public.flow_transitions;
  _row public.conversations;
begin
  _role := case p_actor
    when p_conversation.brand_owner_id then 'brand_owner'::public.user_role
    when p_conversation.influencer_id then 'influencer'::public.user_role
  end;
  if _role is null then
    raise exception 'you are not a participant of conversation %', p_conversation.id
      using errcode = '42501';
  end if;
  select * into _t from public.flow_transitions
  where conversation_type = p_conversation.conversation_type
    and from_state = coalesce(p_conversation.flow_state, 'new')
    and action = p_action;
  if not found then
    raise exception 'action "%" is not possible in state "%"', p_action,
      coalesce(p_conversation.flow_state, 'new')
      using errcode = '22023', hint = 'see public.flow_transitions';
  end if;
  if _t.actor_role <> _role
     or (p_conversation.awaiting_role is not null and p_conversation.awaiting_role <> _role) then
    raise exception 'action "%" belongs to the %, not the %', p_action, _t.actor_role, _role
      using errcode = '42501';
  end if;
  update public.conversations
  set flow_state = _t.to_state,
      awaiting_role = _t.awaiting_role,
      chat_status = _t.chat_status
  where id = p_conversation.id;
  insert into public.messages (conversation_id, sender_id, content, message_type)
  values (p_conversation.id, p_actor, _t.message, 'system');
  -- After the message: its triggers have updated the row by now.
  select * into _row from public.conversations where id = p_conversation.id;
  return _row;
end
$$;

-- create or replace keeps the privileges; restated so this file reads whole.
revoke execute on function public.flow_step(public.conversations, text, uuid)
  from public, anon, authenticated;
