-- The flow machine of bid and campaign conversations (docs/flow.md has the
-- table in prose). The rules are data, so that clients can show the actions
-- open to them and the machine can change without new code. Every step is one
-- transaction: check the caller's turn, insert the system message, move
-- flow_state / awaiting_role / chat_status. Nothing is written on refusal.

create table public.flow_transitions (
  conversation_type public.conversation_type not null
    check (conversation_type in ('bid', 'campaign')),
  from_state text not null,
  action text not null check (action ~ '^[a-z_]{1,50}$'),
  actor_role public.user_role not null,
  to_state text not null check (to_state ~ '^[a-z_]{1,50}$'),
  awaiting_role public.user_role,
  chat_status public.chat_status not null,
  message text not null check (char_length(message) between 1 and 500),
  primary key (conversation_type, from_state, action)
);
alter table public.flow_transitions enable row level security;
-- Explicit grant: clients read the rules to show the actions open to them.
grant select on public.flow_transitions to authenticated;
grant select on public.flow_transitions to service_role;

create policy "Signed-in users can read the flow rules"
  on public.flow_transitions for select to authenticated
  using (true);

revoke insert, update, delete, truncate on public.flow_transitions from anon, authenticated;

-- 'new' is the state before a conversation exists; 'connect' starts it.
insert into public.flow_transitions
  (conversation_type, from_state, action, actor_role, to_state, awaiting_role, chat_status, message)
select t.*, m.message
from (values
  ('new', 'connect', 'brand_owner', 'influencer_responding', 'influencer', 'automated'),
  ('influencer_responding', 'accept', 'influencer', 'brand_owner_confirming', 'brand_owner', 'automated'),
  ('influencer_responding', 'decline', 'influencer', 'declined', null, 'closed'),
  ('brand_owner_confirming', 'confirm', 'brand_owner', 'work_in_progress', 'influencer', 'active'),
  ('brand_owner_confirming', 'cancel', 'brand_owner', 'cancelled', null, 'closed'),
  ('work_in_progress', 'submit_work', 'influencer', 'work_review', 'brand_owner', 'active'),
  ('work_in_progress', 'cancel', 'brand_owner', 'cancelled', null, 'closed'),
  ('work_review', 'approve_work', 'brand_owner', 'completed', null, 'closed'),
  ('work_review', 'request_revision', 'brand_owner', 'work_in_progress', 'influencer', 'active')
) as s(from_state, action, actor_role, to_state, awaiting_role, chat_status)
cross join (values ('bid'), ('campaign')) as ct(conversation_type)
cross join lateral (select
    ct.conversation_type::public.conversation_type,
    s.from_state, s.action, s.actor_role::public.user_role, s.to_state,
    s.awaiting_role::public.user_role, s.chat_status::public.chat_status) as t
cross join lateral (select case s.action
    when 'connect' then 'You have a new connection request'
    when 'accept' then 'The influencer accepted the connection request'
    when 'decline' then 'The influencer declined the connection request'
    when 'confirm' then case ct.conversation_type
      when 'bid' then 'The brand owner confirmed the bid. Work can start.'
      else 'The brand owner confirmed the campaign. Work can start.' end
    when 'cancel' then 'The brand owner cancelled the collaboration'
    when 'submit_work' then 'Work was submitted for review'
    when 'approve_work' then 'The work was approved. Collaboration completed.'
    when 'request_revision' then 'The brand owner requested a revision of the work'
  end as message) as m;

-- Applies one transition to a conversation row already locked by the caller:
-- state update first, then the system message, so the message's outbox row
-- carries the new state.
create function public.flow_step(
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
  where id = p_conversation.id
  returning * into _row;
  insert into public.messages (conversation_id, sender_id, content, message_type)
  values (p_conversation.id, p_actor, _t.message, 'system');
  return _row;
end
$$;

revoke execute on function public.flow_step(public.conversations, text, uuid)
  from public, anon, authenticated;

-- A participant acts on a bid or campaign conversation.
create function public.apply_flow_action(p_conversation_id uuid, p_action text)
returns public.conversations
language plpgsql security definer set search_path = '' as $$
declare
  _conv public.conversations;
begin
  select * into _conv from public.conversations where id = p_conversation_id for update;
  if not found or auth.uid() not in (_conv.brand_owner_id, _conv.influencer_id) then
    -- The same answer for "absent" and "not yours": ids of others' conversations leak nothing.
    raise exception 'conversation % not found', p_conversation_id using errcode = 'P0002';
  end if;
  if _conv.conversation_type = 'direct' then
    raise exception 'direct conversations have no flow' using errcode = '22023';
  end if;
  if p_action = 'connect' then
    raise exception 'action "connect" only starts a conversation' using errcode = '22023';
  end if;
  return public.flow_step(_conv, p_action, auth.uid());
end
$$;

-- The bid's brand owner connects with the bidding influencer. Idempotent:
-- a second call returns the existing conversation and writes nothing.
create function public.start_bid_conversation(p_bid_id uuid)
returns public.conversations
language plpgsql security definer set search_path = '' as $$
declare
  _bid public.bids;
  _conv public.conversations;
begin
  select * into _bid from public.bids where id = p_bid_id;
  if not found or _bid.brand_owner_id is distinct from auth.uid() then
    raise exception 'bid % not found', p_bid_id using errcode = 'P0002';
  end if;
  select * into _conv from public.conversations
  where conversation_type = 'bid' and bid_id = p_bid_id;
  if found then
    return _conv;
  end if;
  insert into public.conversations
    (brand_owner_id, influencer_id, conversation_type, bid_id, campaign_id)
  values (_bid.brand_owner_id, _bid.influencer_id, 'bid', _bid.id, _bid.campaign_id)
  returning * into _conv;
  return public.flow_step(_conv, 'connect', auth.uid());
end
$$;

-- A campaign's brand owner connects with an influencer about the campaign.
create function public.start_campaign_conversation(p_campaign_id uuid, p_influencer_id uuid)
returns public.conversations
language plpgsql security definer set search_path = '' as $$
declare
  _campaign public.campaigns;
  _conv public.conversations;
begin
  select * into _campaign from public.campaigns where id = p_campaign_id;
  if not found or _campaign.brand_owner_id is distinct from auth.uid() then
    raise exception 'campaign % not found', p_campaign_id using errcode = 'P0002';
  end if;
  select * into _conv from public.conversations
  where conversation_type = 'campaign' and campaign_id = p_campaign_id
    and influencer_id = p_influencer_id;
  if found then
    return _conv;
  end if;
  insert into public.conversations
    (brand_owner_id, influencer_id, conversation_type, campaign_id)
  values (_campaign.brand_owner_id, p_influencer_id, 'campaign', _campaign.id)
  returning * into _conv;
  return public.flow_step(_conv, 'connect', auth.uid());
end
$$;

revoke execute on function public.apply_flow_action(uuid, text) from public, anon;
revoke execute on function public.start_bid_conversation(uuid) from public, anon;
revoke execute on function public.start_campaign_conversation(uuid, uuid) from public, anon;
grant execute on function public.apply_flow_action(uuid, text) to authenticated, service_role;
grant execute on function public.start_bid_conversation(uuid) to authenticated, service_role;
grant execute on function public.start_campaign_conversation(uuid, uuid)
  to authenticated, service_role;
