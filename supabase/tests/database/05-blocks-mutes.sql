-- Blocks, reports, mutes and quiet hours (issue 14): what a signed-in user
-- may do with each, and what a block does to messages and pushes.
begin;
\ir helpers.psql
select plan(16);

select tests.create_supabase_user('brand', 'brand_owner');
select tests.create_supabase_user('creator', 'influencer');
select tests.create_supabase_user('stranger', 'influencer');
insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type, chat_status)
values
  ('e5000000-0000-4000-8000-000000000001', tests.uid('brand'), tests.uid('creator'), 'direct',
   'active');

select tests.authenticate_as('creator');
insert into public.messages (conversation_id, sender_id, content) values
  ('e5000000-0000-4000-8000-000000000001', auth.uid(), 'before');

-- The brand blocks the creator.
select tests.authenticate_as('brand');
select lives_ok(
  $$ insert into public.user_blocks (blocker_id, blocked_id) values (auth.uid(), tests.uid('creator')) $$,
  'a user blocks another');
select throws_ok(
  $$ insert into public.user_blocks (blocker_id, blocked_id) values (tests.uid('creator'), tests.uid('stranger')) $$,
  '42501', null, 'nobody blocks in someone else''s name');

select tests.authenticate_as('creator');
select is_empty($$ select * from public.user_blocks $$, 'the blocked side cannot see the block');
select throws_ok(
  $$ insert into public.messages (conversation_id, sender_id, content)
     values ('e5000000-0000-4000-8000-000000000001', auth.uid(), 'after') $$,
  '42501', 'blocked: messages between these users are blocked',
  'the blocked side cannot send');
select is((select content from public.messages
  where conversation_id = 'e5000000-0000-4000-8000-000000000001'),
  'before', 'history stays readable');
select throws_ok(
  $$ update public.messages set content = 'edited across the block'
     where conversation_id = 'e5000000-0000-4000-8000-000000000001' $$,
  '42501', 'blocked: one of you blocked the other, so the message cannot be edited',
  'nor put new words in an earlier message');
select lives_ok(
  $$ update public.messages set deleted_at = now()
     where conversation_id = 'e5000000-0000-4000-8000-000000000001' $$,
  'unsending stays allowed');

select tests.authenticate_as('brand');
select throws_ok(
  $$ insert into public.messages (conversation_id, sender_id, content)
     values ('e5000000-0000-4000-8000-000000000001', auth.uid(), 'after') $$,
  '42501', 'blocked: messages between these users are blocked',
  'nor can the blocking side');

select tests.clear_authentication();
select is(bridge.push_silenced(tests.uid('creator'), 'e5000000-0000-4000-8000-000000000001'),
  'blocked', 'no pushes across a block');

-- Reports.
select tests.authenticate_as('creator');
select isnt(public.report_content('harassment', null, tests.uid('brand'), 'blocked me rudely'),
  null, 'a user reports a partner and gets the report''s id');
select is_empty($$ select * from public.reports $$, 'clients read no report, not even their own');
select throws_ok($$ select public.report_content('spam', null, tests.uid('stranger')) $$,
  'P0002', 'user not found', 'nobody reports a user they share no conversation with');
select tests.authenticate_as_service_role();
select is((select count(*)::int from public.reports), 1, 'moderators read the report');

-- Mutes and quiet hours.
select tests.authenticate_as('creator');
insert into public.conversation_mutes (user_id, conversation_id)
values (auth.uid(), 'e5000000-0000-4000-8000-000000000001');
select tests.clear_authentication();
delete from public.user_blocks;
select is(bridge.push_silenced(tests.uid('creator'), 'e5000000-0000-4000-8000-000000000001'),
  'muted', 'a muted conversation is not pushed');
select tests.authenticate_as('stranger');
select throws_ok(
  $$ insert into public.conversation_mutes (user_id, conversation_id)
     values (auth.uid(), 'e5000000-0000-4000-8000-000000000001') $$,
  '42501', null, 'nobody mutes a conversation they are not in');
select throws_ok(
  $$ insert into public.quiet_hours (user_id, starts_at, ends_at, time_zone)
     values (auth.uid(), '22:00', '07:00', 'Mars/Olympus') $$,
  '22023', null, 'an unknown time zone is refused');

select * from finish();
rollback;
