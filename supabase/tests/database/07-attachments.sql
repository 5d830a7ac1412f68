-- Attachments (issue 14): the private chat-attachments bucket and its storage
-- policies as supabase-js clients meet them, and the rule that a message's
-- storage path is of its own conversation.
begin;
\ir helpers.psql
select plan(11);

select tests.create_supabase_user('brand', 'brand_owner');
select tests.create_supabase_user('creator', 'influencer');
select tests.create_supabase_user('stranger', 'influencer');
insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type, chat_status)
values
  ('e7000000-0000-4000-8000-000000000001', tests.uid('brand'), tests.uid('creator'), 'direct',
   'active');

select is((select public from storage.buckets where id = 'chat-attachments'), false,
  'the attachments bucket is private');
select is(public.attachment_conversation('e7000000-0000-4000-8000-000000000001/x/a.png'),
  'e7000000-0000-4000-8000-000000000001'::uuid, 'a path names its conversation');
select is(public.attachment_conversation('../x/a.png'), null, 'anything else names none');

select tests.authenticate_as('creator');
select lives_ok(
  $$ insert into storage.objects (bucket_id, name, owner_id)
     values ('chat-attachments', 'e7000000-0000-4000-8000-000000000001/'
             || gen_random_uuid() || '/photo.png', auth.uid()::text) $$,
  'a participant adds a file to the conversation''s folder');
select throws_ok(
  $$ insert into storage.objects (bucket_id, name, owner_id)
     values ('chat-attachments', 'somewhere/else/photo.png', auth.uid()::text) $$,
  '42501', null, 'not outside a conversation''s folder');
select lives_ok(
  $$ insert into public.messages (conversation_id, sender_id, content, message_type, media_url)
     values ('e7000000-0000-4000-8000-000000000001', auth.uid(), '', 'image',
             'e7000000-0000-4000-8000-000000000001/' || gen_random_uuid() || '/photo.png') $$,
  'a message carries a path of its conversation');
select throws_ok(
  $$ insert into public.messages (conversation_id, sender_id, content, message_type, media_url)
     values ('e7000000-0000-4000-8000-000000000001', auth.uid(), '', 'image',
             'e7000000-0000-4000-8000-000000000002/' || gen_random_uuid() || '/photo.png') $$,
  '23514', null, 'not a path of another conversation');

select tests.authenticate_as('brand');
select is((select count(*)::int from storage.objects where bucket_id = 'chat-attachments'), 1,
  'the other participant reads the file');

select tests.authenticate_as('stranger');
select is_empty($$ select * from storage.objects where bucket_id = 'chat-attachments' $$,
  'someone else reads nothing');
select throws_ok(
  $$ insert into storage.objects (bucket_id, name, owner_id)
     values ('chat-attachments', 'e7000000-0000-4000-8000-000000000001/'
             || gen_random_uuid() || '/photo.png', auth.uid()::text) $$,
  '42501', null, 'nor adds to their folder');

select tests.authenticate_as('creator');
update storage.objects set name = name || '.x' where bucket_id = 'chat-attachments';
select is((select count(*)::int from storage.objects
           where bucket_id = 'chat-attachments' and name like '%.x'),
  0, 'no client replaces a file');

select * from finish();
rollback;
