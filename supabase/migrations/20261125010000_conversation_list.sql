-- The chat list as one read model, the way basejump exposes JSON functions:
-- the bridge's REST `GET /api/conversations` and supabase-js clients
-- (`supabase.rpc('get_conversations')`) read the same rows in the same
-- order. Security invoker, so RLS decides what the caller sees: a user only
-- ever gets the conversations they take part in.
--
-- What only the bridge knows is added by it over REST: `is_online` (presence
-- lives in the bridge), the public avatar URL (built from the Storage path
-- in `profile_image_url`) and the wire shape of `last_message`. supabase-js
-- callers get the stored path and the raw message row.

create or replace function public.get_conversations(p_role text default null)
returns jsonb
language sql
stable
security invoker
set search_path = ''
as $$
  select coalesce(jsonb_agg(item order by sort_at desc, id), '[]'::jsonb)
  from (
    select c.id, coalesce(c.last_message_at, c.created_at) as sort_at,
      jsonb_build_object(
        'id', c.id,
        'conversation_type', c.conversation_type,
        'brand_owner_id', c.brand_owner_id,
        'influencer_id', c.influencer_id,
        'other_user_id', o.id,
        'bid_id', c.bid_id,
        'campaign_id', c.campaign_id,
        'flow_state', c.flow_state,
        'awaiting_role', c.awaiting_role,
        'chat_status', c.chat_status,
        'unread_count', case when c.brand_owner_id = auth.uid()
          then c.brand_owner_unread_count else c.influencer_unread_count end,
        'last_message_at', c.last_message_at,
        'created_at', c.created_at,
        'updated_at', coalesce(c.last_message_at, c.created_at),
        'other_user', case when o.id is null then null else jsonb_build_object(
          'id', o.id, 'name', o.name, 'role', o.role,
          'profile_image_url', o.profile_image_url, 'last_seen_at', o.last_seen_at)
          end,
        'last_message', case when m.id is null then null else to_jsonb(m.*) end
      ) as item
    from public.conversations c
    left join public.users o on o.id = case when c.brand_owner_id = auth.uid()
      then c.influencer_id else c.brand_owner_id end
    left join public.messages m on m.id = c.last_message_id
    where auth.uid() in (c.brand_owner_id, c.influencer_id)
      and (p_role is null
           or (p_role = 'brand_owner' and c.brand_owner_id = auth.uid())
           or (p_role = 'influencer' and c.influencer_id = auth.uid()))
  ) rows
$$;

comment on function public.get_conversations(text) is
  'The signed-in user''s chat list, newest first; p_role narrows it to the conversations where they are brand_owner or influencer.';

-- Signed-in users only; anon has no chat list.
revoke execute on function public.get_conversations(text) from public, anon;
grant execute on function public.get_conversations(text) to authenticated, service_role;
