-- Row level security, table by table: what a brand owner and an influencer
-- who share conversations, an influencer who shares none, anon and the
-- service role may read and write. Every statement runs the way PostgREST
-- runs a request (role and request.jwt.claims for the transaction).
begin;
\ir helpers.psql
select plan(63);

select is(
  array(select n.nspname || '.' || c.relname from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where n.nspname in ('public', 'bridge') and c.relkind = 'r' and not c.relrowsecurity
        order by 1),
  '{}'::text[], 'every table in public and bridge has row level security on');

-- Three people: `brand` and `creator` share a bid conversation and a direct
-- one; `outsider` takes part in nothing; `newcomer` is whom the brand writes to
-- next.
select tests.create_supabase_user('brand', 'brand_owner');
select tests.create_supabase_user('creator', 'influencer');
select tests.create_supabase_user('outsider', 'influencer');
select tests.create_supabase_user('newcomer', 'influencer');

insert into public.campaigns (id, brand_owner_id, title)
values ('d1000000-0000-4000-8000-000000000001', tests.uid('brand'), 'Spring drop');
insert into public.bids (id, campaign_id, brand_owner_id, influencer_id, title, amount)
values ('d2000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001',
  tests.uid('brand'), tests.uid('creator'), 'Two reels', 300);
insert into public.conversations
  (id, brand_owner_id, influencer_id, conversation_type, bid_id, campaign_id, flow_state,
   awaiting_role, chat_status)
values
  ('d3000000-0000-4000-8000-000000000001', tests.uid('brand'), tests.uid('creator'), 'bid',
   'd2000000-0000-4000-8000-000000000001', 'd1000000-0000-4000-8000-000000000001',
   'influencer_responding', 'influencer', 'automated'),
  ('d3000000-0000-4000-8000-000000000002', tests.uid('brand'), tests.uid('creator'), 'direct',
   null, null, null, null, 'active');
insert into public.messages (id, conversation_id, sender_id, content) values
  ('d4000000-0000-4000-8000-000000000001', 'd3000000-0000-4000-8000-000000000002',
   tests.uid('brand'), 'Hello from the brand'),
  ('d4000000-0000-4000-8000-000000000002', 'd3000000-0000-4000-8000-000000000002',
   tests.uid('creator'), 'Hello from the creator');
insert into public.fcm_tokens (user_id, token, platform) values
  (tests.uid('brand'), 'rls-token-brand', 'ios'),
  (tests.uid('creator'), 'rls-token-creator', 'android'),
  (tests.uid('outsider'), 'rls-token-outsider', 'web');

-- ---------------------------------------------------------------- brand
select tests.authenticate_as('brand');

select is(tests.visible('public.users'), 2::bigint,
  'brand reads their own profile and their partner''s');
select is(tests.visible('public.conversations'), 2::bigint, 'brand reads their 2 conversations');
select is(tests.visible('public.messages'), 2::bigint, 'brand reads the messages of them');
select is(tests.visible('public.campaigns'), 1::bigint, 'brand reads their campaign');
select is(tests.visible('public.bids'), 1::bigint, 'brand reads the bid addressed to them');
select is(tests.visible('public.fcm_tokens'), 1::bigint, 'brand reads only their own push token');
select is(tests.visible('public.flow_transitions'), 18::bigint, 'brand reads the flow rules');
select throws_ok($$ select count(*) from bridge.outbox $$, '42501', null,
  'brand cannot read the outbox');
select throws_ok($$ select count(*) from bridge.push_jobs $$, '42501', null,
  'brand cannot read push jobs');

select is(tests.affected($$ update public.users set name = 'Brand Co' where id = auth.uid() $$),
  1, 'brand renames themselves');
select is(tests.affected(format(
    $$ update public.users set name = 'Renamed' where id = %L $$, tests.uid('creator'))),
  0, 'brand cannot rename their partner (the row is readable, not writable)');
select throws_ok($$ update public.users set role = 'influencer' where id = auth.uid() $$,
  '42501', null, 'brand cannot change their own role');
select throws_ok(format($$ insert into public.users (id, role) values (%L, 'brand_owner') $$,
    gen_random_uuid()), '42501', null, 'profiles are never inserted by clients');

select lives_ok(format(
    $$ insert into public.conversations (brand_owner_id, influencer_id, conversation_type)
       values (auth.uid(), %L, 'direct') $$, tests.uid('newcomer')),
  'brand opens a direct conversation with another influencer');
select throws_ok(format(
    $$ insert into public.conversations (brand_owner_id, influencer_id, conversation_type)
       values (auth.uid(), %L, 'bid') $$, tests.uid('outsider')),
  '42501', null, 'bid conversations start through the flow functions only');
select throws_ok($$ update public.conversations set flow_state = 'completed'
    where id = 'd3000000-0000-4000-8000-000000000001' $$,
  '42501', null, 'brand cannot move the flow by hand');
select throws_ok($$ update public.conversations set brand_owner_unread_count = 0
    where id = 'd3000000-0000-4000-8000-000000000002' $$,
  '42501', null, 'brand cannot reset unread counters by hand');
select throws_ok($$ delete from public.conversations
    where id = 'd3000000-0000-4000-8000-000000000002' $$,
  '42501', null, 'brand cannot delete a conversation');

select is(tests.affected($$ update public.messages set is_read = true
    where id = 'd4000000-0000-4000-8000-000000000001' $$),
  0, 'brand cannot mark their own sent message read');
select throws_ok($$ update public.messages set content = 'edited'
    where id = 'd4000000-0000-4000-8000-000000000002' $$,
  '42501', null, 'brand cannot edit a message');

select lives_ok($$ insert into public.campaigns (brand_owner_id, title)
    values (auth.uid(), 'Summer drop') $$, 'brand creates a campaign as themselves');
select is(tests.affected($$ update public.campaigns set title = 'Spring drop II'
    where id = 'd1000000-0000-4000-8000-000000000001' $$),
  1, 'brand edits their own campaign');
select throws_ok($$ update public.bids set amount = 1
    where id = 'd2000000-0000-4000-8000-000000000001' $$,
  '42501', null, 'bids change only through the flow');
select throws_ok($$ insert into public.flow_transitions values
    ('bid', 'new', 'skip', 'brand_owner', 'completed', null, 'closed', 'done') $$,
  '42501', null, 'the flow rules are not writable by clients');

-- ---------------------------------------------------------------- creator
select tests.authenticate_as('creator');

select is(tests.visible('public.users'), 2::bigint,
  'creator reads their own profile and their partner''s');
select is(tests.visible('public.conversations'), 2::bigint,
  'creator reads their 2 conversations');
select is(tests.visible('public.messages'), 2::bigint, 'creator reads the messages of them');
select is(tests.visible('public.campaigns'), 1::bigint,
  'creator reads the campaign they are in conversation about');
select is(tests.visible('public.bids'), 1::bigint, 'creator reads their own bid');
select is(tests.visible('public.fcm_tokens'), 1::bigint,
  'creator reads only their own push token');

select lives_ok($$ insert into public.messages (conversation_id, sender_id, content)
    values ('d3000000-0000-4000-8000-000000000002', auth.uid(), 'hi') $$,
  'creator sends a message as themselves');
select throws_ok(format($$ insert into public.messages (conversation_id, sender_id, content)
    values ('d3000000-0000-4000-8000-000000000002', %L, 'hi') $$, tests.uid('brand')),
  '42501', null, 'creator cannot send as the brand');
select throws_ok($$ insert into public.messages (conversation_id, sender_id, content, message_type)
    values ('d3000000-0000-4000-8000-000000000002', auth.uid(), 'Work approved', 'system') $$,
  '42501', null, 'creator cannot forge a system message');
select throws_ok($$ insert into public.messages (conversation_id, sender_id, content, created_at)
    values ('d3000000-0000-4000-8000-000000000002', auth.uid(), 'hi', now() - interval '1 year') $$,
  '42501', null, 'creator cannot backdate a message');
select is(tests.affected($$ update public.messages set is_read = true
    where id = 'd4000000-0000-4000-8000-000000000001' $$),
  1, 'creator marks the brand''s message read');
select throws_ok($$ delete from public.messages
    where id = 'd4000000-0000-4000-8000-000000000002' $$,
  '42501', null, 'creator cannot delete a message');

select lives_ok(format($$ insert into public.bids (brand_owner_id, influencer_id, title)
    values (%L, auth.uid(), 'One story') $$, tests.uid('brand')),
  'creator places a bid as themselves');
select throws_ok(format($$ insert into public.bids (brand_owner_id, influencer_id, title)
    values (%L, %L, 'One story') $$, tests.uid('brand'), tests.uid('outsider')),
  '42501', null, 'creator cannot place a bid for someone else');
select throws_ok(format($$ insert into public.campaigns (brand_owner_id, title)
    values (%L, 'Fake') $$, tests.uid('brand')),
  '42501', null, 'creator cannot create a campaign in the brand''s name');
select is(tests.affected($$ update public.campaigns set title = 'Mine now'
    where id = 'd1000000-0000-4000-8000-000000000001' $$),
  0, 'creator cannot edit the brand''s campaign');

select lives_ok($$ insert into public.fcm_tokens (token, platform)
    values ('rls-token-creator-2', 'web') $$, 'creator registers a second device');
select throws_ok(format($$ insert into public.fcm_tokens (user_id, token, platform)
    values (%L, 'rls-token-planted', 'web') $$, tests.uid('brand')),
  '42501', null, 'creator cannot register a token for the brand');
select is(tests.affected($$ delete from public.fcm_tokens where token = 'rls-token-brand' $$),
  0, 'creator cannot delete the brand''s token');
select is(tests.affected($$ delete from public.fcm_tokens where token = 'rls-token-creator-2' $$),
  1, 'creator deletes their own token');

-- ---------------------------------------------------------------- outsider
select tests.authenticate_as('outsider');

select is(tests.visible('public.users'), 1::bigint, 'outsider reads only their own profile');
select is(tests.visible('public.conversations'), 0::bigint,
  'outsider reads no conversation of others');
select is(tests.visible('public.messages'), 0::bigint, 'outsider reads no message of others');
select is(tests.visible('public.bids'), 0::bigint, 'outsider reads no bid of others');
select is(tests.visible('public.campaigns'), 0::bigint, 'outsider reads no campaign of others');
select throws_ok($$ insert into public.messages (conversation_id, sender_id, content)
    values ('d3000000-0000-4000-8000-000000000002', auth.uid(), 'let me in') $$,
  'P0002', 'conversation not found',
  'outsider writing into a conversation hears "not found", as for a missing one');
select is(tests.affected($$ update public.messages set is_read = true
    where conversation_id = 'd3000000-0000-4000-8000-000000000002' $$),
  0, 'outsider cannot mark others'' messages read');
select throws_ok(format(
    $$ insert into public.conversations (brand_owner_id, influencer_id, conversation_type)
       values (%L, %L, 'direct') $$, tests.uid('brand'), tests.uid('creator')),
  '42501', null, 'outsider cannot open a conversation between two others');

-- ---------------------------------------------------------------- anon
select tests.authenticate_as_anon();

select ok(tests.sees_nothing('public.users'), 'anon reads no profile');
select ok(tests.sees_nothing('public.conversations'), 'anon reads no conversation');
select ok(tests.sees_nothing('public.messages'), 'anon reads no message');
select ok(tests.sees_nothing('public.fcm_tokens'), 'anon reads no push token');
select throws_ok($$ insert into public.messages (conversation_id, sender_id, content)
    values ('d3000000-0000-4000-8000-000000000002', gen_random_uuid(), 'spam') $$,
  '42501', null, 'anon cannot send');
select throws_ok($$ select public.apply_flow_action(
    'd3000000-0000-4000-8000-000000000001', 'accept') $$,
  '42501', null, 'anon cannot call the flow functions');

-- ---------------------------------------------------------------- service role
select tests.authenticate_as_service_role();

select is((select count(*) from public.conversations
    where id in ('d3000000-0000-4000-8000-000000000001', 'd3000000-0000-4000-8000-000000000002')),
  2::bigint, 'the service role reads every conversation');
select ok((select count(*) from bridge.outbox where conversation_id
    = 'd3000000-0000-4000-8000-000000000002') > 0, 'the service role reads the outbox');
select lives_ok(format($$ insert into public.messages (conversation_id, sender_id, content)
    values ('d3000000-0000-4000-8000-000000000002', %L, 'sent by an edge function') $$,
    tests.uid('creator')),
  'the service role writes a message on a user''s behalf');
select is(tests.affected($$ update public.conversations set chat_status = 'closed'
    where id = 'd3000000-0000-4000-8000-000000000002' $$),
  1, 'the service role may change a conversation');

select * from finish();
rollback;
