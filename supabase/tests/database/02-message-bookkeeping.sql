-- Message bookkeeping done by triggers: each message's place in its
-- conversation (seq, with created_at increasing along it), the conversation's
-- last message, and each side's unread counter, through sends and reads.
begin;
\ir helpers.psql
select plan(24);

select tests.create_supabase_user('brand', 'brand_owner');
select tests.create_supabase_user('creator', 'influencer');
insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type, chat_status)
values
  ('e3000000-0000-4000-8000-000000000001', tests.uid('brand'), tests.uid('creator'), 'direct',
   'active');

-- Three messages from the creator, in one transaction (so one now()).
select tests.authenticate_as('creator');
insert into public.messages (conversation_id, sender_id, content) values
  ('e3000000-0000-4000-8000-000000000001', auth.uid(), 'one');
insert into public.messages (conversation_id, sender_id, content) values
  ('e3000000-0000-4000-8000-000000000001', auth.uid(), 'two');
insert into public.messages (conversation_id, sender_id, content) values
  ('e3000000-0000-4000-8000-000000000001', auth.uid(), 'three');

select results_eq(
  $$ select content, seq from public.messages
     where conversation_id = 'e3000000-0000-4000-8000-000000000001' order by seq $$,
  $$ values ('one', 1::bigint), ('two', 2::bigint), ('three', 3::bigint) $$,
  'messages are numbered 1, 2, 3 in the order they were written');
select ok(
  (select bool_and(created_at > prev) from (
     select created_at, lag(created_at) over (order by seq) as prev from public.messages
     where conversation_id = 'e3000000-0000-4000-8000-000000000001') t where prev is not null),
  'created_at increases along seq, even within one transaction');
select is(
  (select last_message_id from public.conversations
   where id = 'e3000000-0000-4000-8000-000000000001'),
  (select id from public.messages where content = 'three'), 'the chat list shows the latest message');
select is(
  (select last_message_at from public.conversations
   where id = 'e3000000-0000-4000-8000-000000000001'),
  (select created_at from public.messages where content = 'three'),
  'the conversation''s last_message_at is that message''s time');
select results_eq(
  $$ select brand_owner_unread_count, influencer_unread_count from public.conversations
     where id = 'e3000000-0000-4000-8000-000000000001' $$,
  $$ values (3, 0) $$, 'the brand has 3 unread, the sender none');

-- The brand answers.
select tests.authenticate_as('brand');
insert into public.messages (conversation_id, sender_id, content) values
  ('e3000000-0000-4000-8000-000000000001', auth.uid(), 'reply');
select is((select seq from public.messages where content = 'reply'),
  4::bigint, 'the reply is message 4');
select results_eq(
  $$ select brand_owner_unread_count, influencer_unread_count from public.conversations
     where id = 'e3000000-0000-4000-8000-000000000001' $$,
  $$ values (3, 1) $$, 'the creator now has 1 unread; the brand still 3');

-- Reading up to a message, then the rest.
select is(public.mark_conversation_read('e3000000-0000-4000-8000-000000000001',
    (select id from public.messages where content = 'two')), 2, 'the brand reads up to message 2: 2 marked');
select is((select brand_owner_unread_count from public.conversations
    where id = 'e3000000-0000-4000-8000-000000000001'), 1, 'the brand has 1 unread left');
select ok((select read_at is not null from public.messages
    where content = 'one'), 'a read message gets its read time');
select ok((select not is_read from public.messages
    where content = 'three'), 'message 3 is still unread');
select is(public.mark_conversation_read('e3000000-0000-4000-8000-000000000001'), 1,
  'reading everything marks the one left');
select is(public.mark_conversation_read('e3000000-0000-4000-8000-000000000001'), 0,
  'reading again marks nothing');
select results_eq(
  $$ select brand_owner_unread_count, influencer_unread_count from public.conversations
     where id = 'e3000000-0000-4000-8000-000000000001' $$,
  $$ values (0, 1) $$, 'the brand''s badge clears; the creator''s unread stays');
select throws_ok($$ select public.mark_conversation_read('e3000000-0000-4000-8000-000000000001',
    gen_random_uuid()) $$, 'P0002', null, 'reading up to a message not in the conversation fails');

-- Read stays read.
select tests.authenticate_as_service_role();
select throws_ok($$ update public.messages set is_read = false
    where content = 'one' $$,
  '23514', 'a read message cannot become unread', 'a read message cannot become unread');

-- A multi-row insert numbers its rows in order; another conversation has its own numbers.
select tests.clear_authentication();
insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type, chat_status)
select 'e3000000-0000-4000-8000-000000000002', tests.uid('brand'), u.id, 'direct', 'active'
from (select tests.create_supabase_user('second', 'influencer') as id) u;
insert into public.messages (conversation_id, sender_id, content)
select 'e3000000-0000-4000-8000-000000000002', tests.uid('brand'), 'batch ' || n
from generate_series(1, 3) n;
select results_eq(
  $$ select content, seq from public.messages
     where conversation_id = 'e3000000-0000-4000-8000-000000000002' order by seq $$,
  $$ values ('batch 1', 1::bigint), ('batch 2', 2::bigint), ('batch 3', 3::bigint) $$,
  'one statement''s rows are numbered in order, from 1 in each conversation');
select is((select influencer_unread_count from public.conversations
    where id = 'e3000000-0000-4000-8000-000000000002'), 3, 'each row of the batch counts unread');
select is((select max(seq) from public.messages
    where conversation_id = 'e3000000-0000-4000-8000-000000000001'), 4::bigint,
  'the first conversation''s numbering is untouched');

-- Closed conversations take no user messages, still system messages.
update public.conversations set chat_status = 'closed'
where id = 'e3000000-0000-4000-8000-000000000001';
select tests.authenticate_as('creator');
select throws_ok($$ insert into public.messages (conversation_id, sender_id, content)
    values ('e3000000-0000-4000-8000-000000000001', auth.uid(), 'anyone there?') $$,
  '23514', null, 'a closed conversation refuses user messages');
select tests.clear_authentication();
select lives_ok($$ insert into public.messages (conversation_id, sender_id, content, message_type)
    values ('e3000000-0000-4000-8000-000000000001', tests.uid('brand'), 'Closed.', 'system') $$,
  'a closed conversation still takes system messages');
select is((select seq from public.messages where content = 'Closed.'
    and conversation_id = 'e3000000-0000-4000-8000-000000000001'), 5::bigint,
  'the system message takes the next number');

-- A message into a conversation that does not exist.
select tests.authenticate_as('creator');
select throws_ok(format($$ insert into public.messages (conversation_id, sender_id, content)
    values (%L, auth.uid(), 'hello?') $$, gen_random_uuid()),
  'P0002', 'conversation not found', 'a missing conversation is "not found"');
select is((select count(*) from public.messages
    where conversation_id = 'e3000000-0000-4000-8000-000000000001'), 5::bigint,
  'refused sends wrote nothing');

select * from finish();
rollback;
