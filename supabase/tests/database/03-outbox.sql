-- The outbox: every change clients must hear about writes one row in its own
-- transaction, naming its recipients and carrying what the bridge needs to
-- render it; a refused change writes none.
begin;
\ir helpers.psql
select plan(22);

select tests.create_supabase_user('brand', 'brand_owner');
select tests.create_supabase_user('creator', 'influencer');
select tests.create_supabase_user('other', 'influencer');

-- conversation.created
insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type, chat_status)
values ('f3000000-0000-4000-8000-000000000001', tests.uid('brand'), tests.uid('creator'),
  'direct', 'active');
select is((select count(*) from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'
      and topic = 'conversation.created'), 1::bigint, 'a new conversation writes one row');
select is((select recipients from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'
      and topic = 'conversation.created'),
  array[tests.uid('brand'), tests.uid('creator')], 'its recipients are both participants');
select is((select payload -> 'influencer' ->> 'name' from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'
      and topic = 'conversation.created'),
  'Creator', 'it carries both profiles for the chat list');

-- message.created
select tests.authenticate_as('creator');
insert into public.messages (conversation_id, sender_id, content)
values ('f3000000-0000-4000-8000-000000000001', auth.uid(), 'first draft attached');
insert into public.messages (conversation_id, sender_id, content)
values ('f3000000-0000-4000-8000-000000000001', auth.uid(), 'and a second one');
select tests.clear_authentication();

select is((select count(*) from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'
      and topic = 'message.created'), 2::bigint, 'each message writes one row');
select is((select recipients from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'
      and topic = 'message.created' order by id limit 1),
  array[tests.uid('brand'), tests.uid('creator')], 'a message goes to both participants');
select results_eq(
  $$ select payload -> 'message' ->> 'content', (payload -> 'message' ->> 'seq')::bigint,
       (payload -> 'conversation' ->> 'brand_owner_unread_count')::int,
       payload -> 'sender' ->> 'name'
     from bridge.outbox
     where conversation_id = 'f3000000-0000-4000-8000-000000000001' and topic = 'message.created'
     order by id $$,
  $$ values ('first draft attached', 1::bigint, 1, 'Creator'),
            ('and a second one', 2::bigint, 2, 'Creator') $$,
  'rows carry the message with its seq, the unread count after it, and the sender');
select ok((select bool_and(id > (select max(id) from bridge.outbox
      where conversation_id = 'f3000000-0000-4000-8000-000000000001'
        and topic = 'conversation.created'))
    from bridge.outbox where conversation_id = 'f3000000-0000-4000-8000-000000000001'
      and topic = 'message.created'), 'rows follow the order of the changes');
select ok((select bool_and(xid = pg_current_xact_id()) from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'),
  'every row records the transaction that wrote it (the relay''s snapshot cursor)');
select is((select count(*) from bridge.outbox_pending
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'), 3::bigint,
  'the rows are pending for the relay');

-- messages.read: one row per read, however many messages it marks
select tests.authenticate_as('brand');
select is(public.mark_conversation_read('f3000000-0000-4000-8000-000000000001'), 2,
  'the brand reads both messages');
select tests.clear_authentication();
select is((select count(*) from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'
      and topic = 'messages.read'), 1::bigint, 'reading 2 messages writes one row');
select is((select payload -> 'message_ids' from bridge.outbox
    where conversation_id = 'f3000000-0000-4000-8000-000000000001' and topic = 'messages.read'),
  (select jsonb_agg(id order by seq) from public.messages
    where conversation_id = 'f3000000-0000-4000-8000-000000000001'),
  'it lists the messages read, in conversation order');
select results_eq(
  $$ select (payload ->> 'reader_id')::uuid, (payload ->> 'sender_id')::uuid,
       (payload -> 'conversation' ->> 'brand_owner_unread_count')::int
     from bridge.outbox
     where conversation_id = 'f3000000-0000-4000-8000-000000000001' and topic = 'messages.read' $$,
  $$ select tests.uid('brand'), tests.uid('creator'), 0 $$,
  'it names reader and sender, with the cleared counter (for read receipts and badges)');

-- conversation.state_changed, through a flow step
insert into public.campaigns (id, brand_owner_id, title)
values ('f1000000-0000-4000-8000-000000000001', tests.uid('brand'), 'Winter');
select tests.authenticate_as('brand');
select public.start_campaign_conversation('f1000000-0000-4000-8000-000000000001',
  tests.uid('creator'));
select tests.authenticate_as('creator');
select public.apply_flow_action((select id from public.conversations
  where campaign_id = 'f1000000-0000-4000-8000-000000000001'), 'accept');
select tests.clear_authentication();
select results_eq(
  $$ select topic from bridge.outbox where conversation_id = (select id from public.conversations
       where campaign_id = 'f1000000-0000-4000-8000-000000000001') order by id $$,
  $$ values ('conversation.created'), ('conversation.state_changed'), ('message.created'),
            ('conversation.state_changed'), ('message.created') $$,
  'a connect and an accept: created, then per step the state change before its system message');
select results_eq(
  $$ select payload -> 'previous' ->> 'flow_state', payload -> 'conversation' ->> 'flow_state',
       payload -> 'conversation' ->> 'awaiting_role'
     from bridge.outbox where topic = 'conversation.state_changed'
       and conversation_id = (select id from public.conversations
         where campaign_id = 'f1000000-0000-4000-8000-000000000001') order by id $$,
  $$ values (null, 'influencer_responding', 'influencer'),
            ('influencer_responding', 'brand_owner_confirming', 'brand_owner') $$,
  'state changes carry the previous and the new state');

-- profile.updated: the person and everyone they share a conversation with
update public.users set name = 'Brand & Co' where id = tests.uid('brand');
select is((select count(*) from bridge.outbox
    where topic = 'profile.updated' and payload -> 'user' ->> 'id' = tests.uid('brand')::text),
  1::bigint, 'a new name writes one row');
select set_eq(
  $$ select unnest(recipients) from bridge.outbox
     where topic = 'profile.updated' and payload -> 'user' ->> 'id' = tests.uid('brand')::text $$,
  $$ select tests.uid('brand') union select tests.uid('creator') $$,
  'it goes to the person and their conversation partners only');
update public.users set last_seen_at = now() where id = tests.uid('brand');
select is((select count(*) from bridge.outbox
    where topic = 'profile.updated' and payload -> 'user' ->> 'id' = tests.uid('brand')::text),
  1::bigint, 'last seen is not news: no row');

-- Refused changes write nothing
select tests.authenticate_as('other');
select throws_ok($$ insert into public.messages (conversation_id, sender_id, content)
    values ('f3000000-0000-4000-8000-000000000001', auth.uid(), 'spam') $$,
  'P0002', null, 'a stranger''s message is refused');
select tests.authenticate_as('brand');
select throws_ok($$ select public.apply_flow_action((select id from public.conversations
    where campaign_id = 'f1000000-0000-4000-8000-000000000001'), 'approve_work') $$,
  '22023', null, 'a flow step out of turn is refused');
select tests.clear_authentication();
select is((select count(*) from bridge.outbox
    where conversation_id in ('f3000000-0000-4000-8000-000000000001',
      (select id from public.conversations
       where campaign_id = 'f1000000-0000-4000-8000-000000000001'))), 9::bigint,
  'refused changes wrote no outbox row');

-- Clients never see the outbox
select tests.authenticate_as('creator');
select throws_ok($$ select count(*) from bridge.outbox $$, '42501', null,
  'a participant cannot read the outbox, not even their own rows');

select * from finish();
rollback;
