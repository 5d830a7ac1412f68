-- A message's life after sending, as the database enforces it for every
-- client: the sender edits and unsends within the window (a tombstone
-- stays), never a system message, nobody else; unsending an unread message
-- lowers the receiver's counter; each change writes its outbox row; the
-- receiver's device acknowledges delivery, distinct from reading.
begin;
\ir helpers.psql
select plan(22);

select tests.create_supabase_user('brand', 'brand_owner');
select tests.create_supabase_user('creator', 'influencer');
select tests.create_supabase_user('outsider', 'influencer');
insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type, chat_status)
values
  ('e5000000-0000-4000-8000-000000000001', tests.uid('brand'), tests.uid('creator'), 'direct',
   'active');
insert into public.messages (id, conversation_id, sender_id, content, message_type) values
  ('e5100000-0000-4000-8000-000000000001', 'e5000000-0000-4000-8000-000000000001',
   tests.uid('creator'), 'first draft', 'text'),
  ('e5100000-0000-4000-8000-000000000002', 'e5000000-0000-4000-8000-000000000001',
   tests.uid('creator'), 'wrong file', 'text'),
  ('e5100000-0000-4000-8000-000000000003', 'e5000000-0000-4000-8000-000000000001',
   tests.uid('creator'), 'Work was submitted for review', 'system'),
  ('e5100000-0000-4000-8000-000000000004', 'e5000000-0000-4000-8000-000000000001',
   tests.uid('creator'), 'sent long ago', 'text');
update public.messages set created_at = now() - interval '1 hour'
where id = 'e5100000-0000-4000-8000-000000000004';

-- ------------------------------------------------------------------ edits
select tests.authenticate_as('creator');
select is(tests.affected($$ update public.messages set content = 'final draft'
    where id = 'e5100000-0000-4000-8000-000000000001' $$),
  1, 'the sender edits their message');
select ok((select edited_at is not null and content = 'final draft' from public.messages
    where id = 'e5100000-0000-4000-8000-000000000001'), 'the edit is stamped edited_at');
select throws_ok($$ update public.messages set content = 'rewritten'
    where id = 'e5100000-0000-4000-8000-000000000003' $$,
  '23514', null, 'a system (flow) message cannot be edited');
select throws_ok($$ select public.edit_message('e5100000-0000-4000-8000-000000000004', 'late') $$,
  '23514', null, 'a message older than the window cannot be edited');
select throws_ok($$ select public.unsend_message('e5100000-0000-4000-8000-000000000004') $$,
  '23514', null, 'nor unsent');
select is(tests.affected($$ update public.messages set is_read = true
    where id = 'e5100000-0000-4000-8000-000000000001' $$),
  0, 'the sender still cannot mark their own message read');

select tests.authenticate_as('brand');
select throws_ok($$ update public.messages set content = 'mine now'
    where id = 'e5100000-0000-4000-8000-000000000001' $$,
  '42501', null, 'the receiver cannot edit the message');
select throws_ok($$ select public.unsend_message('e5100000-0000-4000-8000-000000000002') $$,
  '42501', null, 'nor unsend it');

select tests.authenticate_as('outsider');
select throws_ok($$ select public.edit_message('e5100000-0000-4000-8000-000000000001', 'x') $$,
  'P0002', null, 'someone outside the conversation finds no such message');
select is(tests.affected($$ update public.messages set deleted_at = now()
    where id = 'e5100000-0000-4000-8000-000000000002' $$),
  0, 'nor can they unsend it');

-- ---------------------------------------------------------------- unsends
select tests.clear_authentication();
select is((select brand_owner_unread_count from public.conversations
    where id = 'e5000000-0000-4000-8000-000000000001'), 4, 'the brand has 4 unread');
select tests.authenticate_as('creator');
select lives_ok($$ select public.unsend_message('e5100000-0000-4000-8000-000000000002') $$,
  'the sender unsends a message');
select tests.clear_authentication();
select results_eq($$ select content, media_url, deleted_at is not null from public.messages
    where id = 'e5100000-0000-4000-8000-000000000002' $$,
  $$ values (''::text, null::text, true) $$, 'a tombstone stays: no text, deleted_at');
select is((select brand_owner_unread_count from public.conversations
    where id = 'e5000000-0000-4000-8000-000000000001'), 3,
  'unsending an unread message lowers the receiver''s count');
select results_eq($$ select topic, payload -> 'was_unread' from bridge.outbox
    where conversation_id = 'e5000000-0000-4000-8000-000000000001'
      and topic in ('message.updated', 'message.deleted') order by id $$,
  $$ values ('message.updated', 'false'::jsonb), ('message.deleted', 'true'::jsonb) $$,
  'the edit and the unsend each wrote their outbox row');
select tests.authenticate_as('creator');
select lives_ok($$ select public.unsend_message('e5100000-0000-4000-8000-000000000002') $$,
  'unsending again is a no-op');
select throws_ok($$ select public.edit_message('e5100000-0000-4000-8000-000000000002', 'back') $$,
  '23514', null, 'a tombstone cannot be edited back');
select tests.authenticate_as('brand');
select is(public.mark_conversation_read('e5000000-0000-4000-8000-000000000001') >= 0, true,
  'the receiver reads everything');
select tests.clear_authentication();
select is((select brand_owner_unread_count from public.conversations
    where id = 'e5000000-0000-4000-8000-000000000001'), 0,
  'the tombstone is not counted twice');

-- ------------------------------------------------------- delivery receipts
insert into public.messages (id, conversation_id, sender_id, content) values
  ('e5100000-0000-4000-8000-000000000005', 'e5000000-0000-4000-8000-000000000001',
   tests.uid('creator'), 'did you get this?');
select tests.authenticate_as('creator');
select throws_ok(
  $$ select public.mark_messages_delivered(array['e5100000-0000-4000-8000-000000000005'::uuid]) $$,
  '42501', null, 'the sender cannot acknowledge delivery of their own message');
select tests.authenticate_as('brand');
select is(public.mark_messages_delivered(array['e5100000-0000-4000-8000-000000000005'::uuid]), 1,
  'the receiver''s device acknowledges it');
select tests.clear_authentication();
select results_eq($$ select delivered_at is not null, is_read, topic from public.messages m,
    bridge.outbox o where m.id = 'e5100000-0000-4000-8000-000000000005'
      and o.topic = 'messages.delivered' $$,
  $$ values (true, false, 'messages.delivered') $$,
  'delivered, not read, and the sender''s receipt is in the outbox');

select * from finish();
rollback;
