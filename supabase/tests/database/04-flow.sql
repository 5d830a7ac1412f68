-- The bid / campaign flow machine of docs/flow.md: the rules table, every
-- transition with its state, turn, chat status and system message, and the
-- refusals (not your role, not possible now, not yours) that write nothing.
begin;
\ir helpers.psql
select plan(43);

-- The rules, as docs/flow.md lists them (identical for bids and campaigns
-- apart from the confirm message).
select set_eq(
  $$ select conversation_type::text, from_state, action, actor_role::text, to_state,
       awaiting_role::text, chat_status::text from public.flow_transitions $$,
  $$ select t.*, s.* from (values ('bid'), ('campaign')) as t(conversation_type),
     (values
       ('new', 'connect', 'brand_owner', 'influencer_responding', 'influencer', 'automated'),
       ('influencer_responding', 'accept', 'influencer', 'brand_owner_confirming', 'brand_owner', 'automated'),
       ('influencer_responding', 'decline', 'influencer', 'declined', null, 'closed'),
       ('brand_owner_confirming', 'confirm', 'brand_owner', 'work_in_progress', 'influencer', 'active'),
       ('brand_owner_confirming', 'cancel', 'brand_owner', 'cancelled', null, 'closed'),
       ('work_in_progress', 'submit_work', 'influencer', 'work_review', 'brand_owner', 'active'),
       ('work_in_progress', 'cancel', 'brand_owner', 'cancelled', null, 'closed'),
       ('work_review', 'approve_work', 'brand_owner', 'completed', null, 'closed'),
       ('work_review', 'request_revision', 'brand_owner', 'work_in_progress', 'influencer', 'active')
     ) as s(from_state, action, actor_role, to_state, awaiting_role, chat_status) $$,
  'the transition table is the one docs/flow.md describes');

select tests.create_supabase_user('brand', 'brand_owner');
select tests.create_supabase_user('creator', 'influencer');
select tests.create_supabase_user('outsider', 'influencer');
insert into public.campaigns (id, brand_owner_id, title) values
  ('a1000000-0000-4000-8000-000000000001', tests.uid('brand'), 'Flow campaign');
insert into public.bids (id, campaign_id, brand_owner_id, influencer_id, title, amount) values
  ('a2000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001',
   tests.uid('brand'), tests.uid('creator'), 'Flow bid', 100);

-- Where a conversation stands: (flow_state, awaiting_role, chat_status).
create function tests.flow_of(p_bid uuid) returns text
language sql stable as $$
  select format('%s/%s/%s', flow_state, coalesce(awaiting_role::text, '-'), chat_status)
  from public.conversations where bid_id = p_bid and conversation_type = 'bid'
$$;
grant execute on function tests.flow_of(uuid) to authenticated;

-- ------------------------------------------------ starting a bid conversation
select tests.authenticate_as('creator');
select throws_ok($$ select public.start_bid_conversation('a2000000-0000-4000-8000-000000000001') $$,
  'P0002', null, 'the bidding influencer cannot start it: only the brand owner connects');
select tests.authenticate_as('outsider');
select throws_ok($$ select public.start_bid_conversation('a2000000-0000-4000-8000-000000000001') $$,
  'P0002', null, 'a stranger gets "not found" for someone else''s bid');

select tests.authenticate_as('brand');
select lives_ok($$ select public.start_bid_conversation('a2000000-0000-4000-8000-000000000001') $$,
  'the brand owner connects with the bidding influencer');
select is(tests.flow_of('a2000000-0000-4000-8000-000000000001'),
  'influencer_responding/influencer/automated', 'connect: the influencer is to respond');
select is((select public.start_bid_conversation('a2000000-0000-4000-8000-000000000001')).id,
  (select id from public.conversations where bid_id = 'a2000000-0000-4000-8000-000000000001'),
  'connecting again returns the same conversation');
select is((select count(*) from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 1::bigint,
  'one conversation per bid');
select results_eq(
  $$ select content, message_type::text, sender_id from public.messages m
     join public.conversations c on c.id = m.conversation_id
     where c.bid_id = 'a2000000-0000-4000-8000-000000000001' $$,
  $$ select 'You have a new connection request', 'system', tests.uid('brand') $$,
  'one system message, sent by the brand owner, also after the second connect');
select is((select influencer_unread_count from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 1,
  'the connection request is unread for the influencer');

-- ------------------------------------------------ turns
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'accept') $$,
  '42501', 'action "accept" is for the influencer; you are the brand_owner',
  'the brand owner cannot accept for the influencer');
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'confirm') $$,
  '22023', null, 'confirm is not possible before the influencer accepted');
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'connect') $$,
  '22023', null, '"connect" only starts a conversation');
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'teleport') $$,
  '22023', null, 'an unknown action is not possible');

select tests.authenticate_as('outsider');
select throws_ok(format($$ select public.apply_flow_action(%L, 'accept') $$,
    (select id from public.conversations where bid_id = 'a2000000-0000-4000-8000-000000000001')),
  'P0002', null, 'a stranger acting on the conversation hears "not found"');
select throws_ok(format($$ select public.apply_flow_action(%L, 'accept') $$, gen_random_uuid()),
  'P0002', null, 'as for a conversation that does not exist');

-- ------------------------------------------------ the whole way
select tests.authenticate_as('creator');
select is((public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'accept')).flow_state,
  'brand_owner_confirming', 'the influencer accepts; the answer is the conversation after it');
select is(tests.flow_of('a2000000-0000-4000-8000-000000000001'),
  'brand_owner_confirming/brand_owner/automated', 'accept: the brand owner is to confirm');
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'submit_work') $$,
  '22023', null, 'work cannot be submitted before it starts');

select tests.authenticate_as('brand');
select lives_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'confirm') $$,
  'the brand owner confirms');
select is(tests.flow_of('a2000000-0000-4000-8000-000000000001'),
  'work_in_progress/influencer/active', 'confirm: work runs, free chat');
select lives_ok($$ insert into public.messages (conversation_id, sender_id, content)
    select id, auth.uid(), 'Looking forward to it' from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001' $$,
  'participants chat while work runs');

select tests.authenticate_as('creator');
select lives_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'submit_work') $$,
  'the influencer submits work');
select is(tests.flow_of('a2000000-0000-4000-8000-000000000001'),
  'work_review/brand_owner/active', 'submit_work: the brand owner reviews');
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'approve_work') $$,
  '42501', 'action "approve_work" is for the brand_owner; you are the influencer',
  'the influencer cannot approve their own work');

select tests.authenticate_as('brand');
select lives_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'request_revision') $$,
  'the brand owner asks for a revision');
select is(tests.flow_of('a2000000-0000-4000-8000-000000000001'),
  'work_in_progress/influencer/active', 'request_revision: back to work');

select tests.authenticate_as('creator');
select lives_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'submit_work') $$,
  'the influencer submits the revision');

select tests.authenticate_as('brand');
select lives_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'approve_work') $$,
  'the brand owner approves');
select is(tests.flow_of('a2000000-0000-4000-8000-000000000001'),
  'completed/-/closed', 'approve_work: completed, nobody awaited, closed');
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'), 'cancel') $$,
  '22023', null, 'nothing follows completion');
select throws_ok($$ insert into public.messages (conversation_id, sender_id, content)
    select id, auth.uid(), 'One more thing' from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001' $$,
  '23514', null, 'a completed conversation takes no more user messages');

select results_eq(
  $$ select m.content, m.message_type::text, m.sender_id = c.brand_owner_id
     from public.messages m join public.conversations c on c.id = m.conversation_id
     where c.bid_id = 'a2000000-0000-4000-8000-000000000001' order by m.seq $$,
  $$ values
     ('You have a new connection request', 'system', true),
     ('The influencer accepted the connection request', 'system', false),
     ('The brand owner confirmed the bid. Work can start.', 'system', true),
     ('Looking forward to it', 'text', true),
     ('Work was submitted for review', 'system', false),
     ('The brand owner requested a revision of the work', 'system', true),
     ('Work was submitted for review', 'system', false),
     ('The work was approved. Collaboration completed.', 'system', true) $$,
  'each step posted its system message, sent by the actor, in order');
select results_eq(
  $$ select brand_owner_unread_count, influencer_unread_count from public.conversations
     where bid_id = 'a2000000-0000-4000-8000-000000000001' $$,
  $$ values (3, 5) $$, 'system messages count as unread for the other participant');
select is((select last_message_id from public.conversations
    where bid_id = 'a2000000-0000-4000-8000-000000000001'),
  (select m.id from public.messages m join public.conversations c on c.id = m.conversation_id
   where c.bid_id = 'a2000000-0000-4000-8000-000000000001' order by m.seq desc limit 1),
  'the last message is the approval');

-- ------------------------------------------------ campaign: decline, and cancel during work
select tests.authenticate_as('brand');
select is((public.start_campaign_conversation('a1000000-0000-4000-8000-000000000001',
    tests.uid('outsider'))).flow_state, 'influencer_responding',
  'the campaign owner connects with an influencer');
select tests.authenticate_as('outsider');
select is((public.apply_flow_action((select id from public.conversations
    where campaign_id = 'a1000000-0000-4000-8000-000000000001'
      and influencer_id = auth.uid()), 'decline')).chat_status,
  'closed'::public.chat_status, 'the influencer declines: closed');
select is((select flow_state from public.conversations
    where campaign_id = 'a1000000-0000-4000-8000-000000000001' and influencer_id = auth.uid()),
  'declined', 'declined is an end state');

select tests.authenticate_as('brand');
select lives_ok(format($$ select public.start_campaign_conversation(
    'a1000000-0000-4000-8000-000000000001', %L) $$, tests.uid('creator')),
  'a second influencer for the same campaign');
select tests.authenticate_as('creator');
select lives_ok($$ select public.apply_flow_action((select id from public.conversations
    where campaign_id = 'a1000000-0000-4000-8000-000000000001' and conversation_type = 'campaign'
      and influencer_id = auth.uid()), 'accept') $$, 'the influencer accepts the campaign');
select tests.authenticate_as('brand');
select lives_ok(format($$ select public.apply_flow_action((select id from public.conversations
    where campaign_id = 'a1000000-0000-4000-8000-000000000001' and conversation_type = 'campaign'
      and influencer_id = %L), 'confirm') $$, tests.uid('creator')),
  'the brand owner confirms the campaign');
select is((select content from public.messages m join public.conversations c
    on c.id = m.conversation_id
    where c.campaign_id = 'a1000000-0000-4000-8000-000000000001'
      and c.conversation_type = 'campaign' and c.influencer_id = tests.uid('creator')
    order by m.seq desc limit 1),
  'The brand owner confirmed the campaign. Work can start.', 'campaigns say "campaign"');
select is((public.apply_flow_action((select id from public.conversations
    where campaign_id = 'a1000000-0000-4000-8000-000000000001' and conversation_type = 'campaign'
      and influencer_id = tests.uid('creator')), 'cancel')).flow_state,
  'cancelled', 'the brand owner may cancel while the influencer is awaited');

-- ------------------------------------------------ direct conversations have no flow
select tests.clear_authentication();
insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type, chat_status)
values ('a3000000-0000-4000-8000-000000000001', tests.uid('brand'), tests.uid('creator'),
  'direct', 'active');
select tests.authenticate_as('brand');
select throws_ok($$ select public.apply_flow_action(
    'a3000000-0000-4000-8000-000000000001', 'cancel') $$,
  '22023', 'direct conversations have no flow', 'a direct conversation has no flow');

select * from finish();
rollback;
