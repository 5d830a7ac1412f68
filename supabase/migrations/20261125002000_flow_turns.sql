-- Who may take a flow step is the transition table's `actor_role`, nothing
-- else. flow_step also required the conversation's `awaiting_role`, which
-- refused steps the table gives to the side that is not awaited: the brand
-- owner's `cancel` during `work_in_progress` (awaiting the influencer), as
-- docs/flow.md allows. Refusals now name the role the action needs and the
-- caller's. The answer is the conversation as committed, after the system
-- message's bookkeeping (last message, unread counters).
-- `create or replace` keeps the function's grants (EXECUTE revoked from
-- clients: only the security definer entry points call it).

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
  if _t.actor_role <> _role then
    raise exception 'action "%" is for the %; you are the %', p_action, _t.actor_role, _role
      using errcode = '42501';
  end if;
  update public.conversations
  set flow_state = _t.to_state,
      awaiting_role = _t.awaiting_role,
      chat_status = _t.chat_status
  where id = p_conversation.id;
  insert into public.messages (conversation_id, sender_id, content, message_type)
  values (p_conversation.id, p_actor, _t.message, 'system');
  select * into _row from public.conversations where id = p_conversation.id;
  return _row;
end
$$;
