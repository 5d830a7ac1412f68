-- Demo data: three people, loaded by `supabase db reset` and by the bridge's
-- embedded mode on a new database. Password for all three: password123.
--   Ava Brandt  (brand_owner) 11111111-1111-4111-8111-111111111111
--   Leo Creator (influencer)  22222222-2222-4222-8222-222222222222
--   Mia Maker   (influencer)  33333333-3333-4333-8333-333333333333
-- Ava and Leo share a bid and a campaign conversation; Ava and Mia a direct
-- one; Leo and Mia share none.

insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  raw_app_meta_data, raw_user_meta_data, confirmation_token, recovery_token,
  email_change_token_new, email_change, created_at, updated_at)
select '00000000-0000-0000-0000-000000000000', u.id, 'authenticated', 'authenticated',
  u.email, '$2b$10$WcQZtniXYeISysynYJImxu4zx53AK9W7nFOk6HTffJ5owp0dOmt6G', now(),
  '{"provider": "email", "providers": ["email"]}',
  jsonb_build_object('name', u.name, 'role', u.role), '', '', '', '',
  now() - interval '30 days', now() - interval '30 days'
from (values
  ('11111111-1111-4111-8111-111111111111'::uuid, 'ava@example.com', 'Ava Brandt', 'brand_owner'),
  ('22222222-2222-4222-8222-222222222222'::uuid, 'leo@example.com', 'Leo Creator', 'influencer'),
  ('33333333-3333-4333-8333-333333333333'::uuid, 'mia@example.com', 'Mia Maker', 'influencer')
) as u(id, email, name, role);

insert into auth.identities (provider_id, user_id, identity_data, provider, last_sign_in_at,
  created_at, updated_at)
select u.id::text, u.id,
  jsonb_build_object('sub', u.id::text, 'email', u.email, 'email_verified', true),
  'email', now(), now(), now()
from auth.users u
where u.id in ('11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222',
               '33333333-3333-4333-8333-333333333333');

-- Avatars: Leo has one in storage (a path, turned into a public URL by the
-- bridge), Mia an external URL, Ava none (clients show their default).
update public.users set profile_image_url = '22222222-2222-4222-8222-222222222222/leo.jpg'
where id = '22222222-2222-4222-8222-222222222222';
update public.users set profile_image_url = 'https://images.example.com/mia.png'
where id = '33333333-3333-4333-8333-333333333333';

insert into storage.objects (bucket_id, name, owner, owner_id, metadata)
values ('avatars', '22222222-2222-4222-8222-222222222222/leo.jpg',
  '22222222-2222-4222-8222-222222222222', '22222222-2222-4222-8222-222222222222',
  '{"mimetype": "image/jpeg", "size": 0}');

insert into public.campaigns (id, brand_owner_id, title) values
  ('aaaaaaaa-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
   'Summer Glow Launch'),
  ('aaaaaaaa-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'Autumn Collection');

insert into public.bids (id, campaign_id, brand_owner_id, influencer_id, title, amount) values
  ('bbbbbbbb-0000-4000-8000-000000000001', 'aaaaaaaa-0000-4000-8000-000000000002',
   '11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222',
   'Unboxing reel for the Autumn Collection', 450.00);

insert into public.conversations (id, brand_owner_id, influencer_id, conversation_type,
  bid_id, campaign_id, flow_state, awaiting_role, chat_status, created_at) values
  ('c0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
   '22222222-2222-4222-8222-222222222222', 'bid', 'bbbbbbbb-0000-4000-8000-000000000001',
   'aaaaaaaa-0000-4000-8000-000000000002', 'brand_owner_confirming', 'brand_owner',
   'automated', now() - interval '3 days'),
  ('c0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   '22222222-2222-4222-8222-222222222222', 'campaign', null,
   'aaaaaaaa-0000-4000-8000-000000000001', 'work_in_progress', 'influencer',
   'active', now() - interval '7 days'),
  ('c0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111',
   '33333333-3333-4333-8333-333333333333', 'direct', null, null, null, null,
   'active', now() - interval '2 days');

insert into public.messages (conversation_id, sender_id, content, message_type, media_url,
  is_read, read_at, created_at)
select m.conversation_id::uuid, m.sender_id::uuid, m.content, m.message_type::public.message_type,
  m.media_url, m.is_read, case when m.is_read then now() - m.age + interval '1 minute' end,
  now() - m.age
from (values
  ('c0000000-0000-4000-8000-000000000001', '11111111-1111-4111-8111-111111111111',
   'You have a new connection request', 'system', null, true, interval '3 days'),
  ('c0000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222',
   'The influencer accepted the connection request', 'system', null, true, interval '2 days'),
  ('c0000000-0000-4000-8000-000000000001', '22222222-2222-4222-8222-222222222222',
   'Happy to do the unboxing. Can you confirm the delivery date?', 'text', null, false,
   interval '47 hours'),
  ('c0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'You have a new connection request', 'system', null, true, interval '7 days'),
  ('c0000000-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222',
   'The influencer accepted the connection request', 'system', null, true, interval '6 days'),
  ('c0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'The brand owner confirmed the campaign. Work can start.', 'system', null, true,
   interval '5 days'),
  ('c0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'Here is the mood board for the shoot.', 'image',
   'https://images.example.com/moodboard.jpg', true, interval '5 days' - interval '1 hour'),
  ('c0000000-0000-4000-8000-000000000002', '22222222-2222-4222-8222-222222222222',
   'Love it! First draft by Friday.', 'text', null, true, interval '4 days'),
  ('c0000000-0000-4000-8000-000000000002', '11111111-1111-4111-8111-111111111111',
   'Perfect, thanks Leo.', 'text', null, false, interval '1 day'),
  ('c0000000-0000-4000-8000-000000000003', '33333333-3333-4333-8333-333333333333',
   'Hi Ava! I saw your brand at the expo.', 'text', null, true, interval '2 days'),
  ('c0000000-0000-4000-8000-000000000003', '11111111-1111-4111-8111-111111111111',
   'Hi Mia, great to hear from you. Shall we talk about a collaboration?', 'text', null,
   false, interval '20 hours')
) as m(conversation_id, sender_id, content, message_type, media_url, is_read, age)
order by m.age desc;

-- The demo history is not news: nobody should be sent it when the bridge starts.
select bridge.skip_pending();
