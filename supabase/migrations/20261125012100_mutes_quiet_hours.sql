-- Mute and quiet hours (issue 14 item 3).
--
-- A user mutes one conversation until a time (or until they unmute it), and
-- sets quiet hours (a daily window in their time zone). Either way events
-- still arrive on their sockets and unread counts still count; only the
-- alerting push is left out (bridge.push_silenced, asked when a push job
-- would be written). The chat list (public.get_conversations) shows the
-- mute state, and the block state of 20261125012000.

create table public.conversation_mutes (
  user_id uuid not null references public.users (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  muted_until timestamptz, -- null: until unmuted
  created_at timestamptz not null default now(),
  primary key (user_id, conversation_id)
);
alter table public.conversation_mutes enable row level security;
-- Explicit grants: each user keeps their own mutes (RLS picks the rows);
-- anon nothing, also where default privileges granted it everything.
revoke all on public.conversation_mutes from anon;
grant select, delete on public.conversation_mutes to authenticated;
grant insert (user_id, conversation_id, muted_until),
  update (muted_until, created_at) on public.conversation_mutes to authenticated;
grant select, insert, update, delete on public.conversation_mutes to service_role;

create policy "Users can see their own mutes"
  on public.conversation_mutes for select to authenticated
  using (user_id = (select auth.uid()));

create policy "Participants can mute their conversations"
  on public.conversation_mutes for insert to authenticated
  with check (user_id = (select auth.uid()) and public.is_conversation_participant(conversation_id));

create policy "Users can change their own mutes"
  on public.conversation_mutes for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

create policy "Users can unmute"
  on public.conversation_mutes for delete to authenticated
  using (user_id = (select auth.uid()));

create table public.quiet_hours (
  user_id uuid primary key references public.users (id) on delete cascade,
  starts_at time not null,
  ends_at time not null, -- before starts_at: the window spans midnight
  time_zone text not null check (char_length(time_zone) between 1 and 64),
  constraint quiet_hours_not_empty check (starts_at <> ends_at)
);
alter table public.quiet_hours enable row level security;
revoke all on public.quiet_hours from anon;
grant select, delete on public.quiet_hours to authenticated;
grant insert (user_id, starts_at, ends_at, time_zone),
  update (starts_at, ends_at, time_zone) on public.quiet_hours to authenticated;
grant select, insert, update, delete on public.quiet_hours to service_role;

create policy "Users can see their own quiet hours"
  on public.quiet_hours for select to authenticated
  using (user_id = (select auth.uid()));

create policy "Users can set their own quiet hours"
  on public.quiet_hours for insert to authenticated
  with check (user_id = (select auth.uid()));

create policy "Users can change their own quiet hours"
  on public.quiet_hours for update to authenticated
  using (user_id = (select auth.uid()))
  with check (user_id = (select auth.uid()));

create policy "Users can clear their own quiet hours"
  on public.quiet_hours for delete to authenticated
  using (user_id = (select auth.uid()));

-- A time zone Postgres does not know would make every later check fail:
-- refused when written (supabase-js too), with the reason.
create function public.quiet_hours_check_zone() returns trigger
language plpgsql set search_path = '' as $$
begin
  if not exists (select 1 from pg_catalog.pg_timezone_names where name = new.time_zone) then
    raise exception 'unknown time zone: %', new.time_zone using errcode = '22023';
  end if;
  return new;
end
$$;

create trigger quiet_hours_check_zone
  before insert or update on public.quiet_hours
  for each row execute function public.quiet_hours_check_zone();

-- Whether now falls in the window [starts, ends) of local time in `zone`.
create function public.quiet_hours_active(p_starts time, p_ends time, p_zone text)
returns boolean language sql stable set search_path = '' as $$
  select case when p_starts < p_ends
    then local >= p_starts and local < p_ends
    else local >= p_starts or local < p_ends end
  from (select (now() at time zone p_zone)::time as local) t
$$;
grant execute on function public.quiet_hours_active(time, time, text)
  to authenticated, service_role;

-- Why no alerting push goes to `p_user` about `p_conversation` now, or null:
-- a block between the participants, the user's mute, their quiet hours.
create or replace function bridge.push_silenced(p_user uuid, p_conversation uuid) returns text
language sql stable security definer set search_path = '' as $$
  select case
    when exists (select 1 from public.conversations c where c.id = p_conversation
                 and bridge.blocked_between(c.brand_owner_id, c.influencer_id))
      then 'blocked'
    when exists (select 1 from public.conversation_mutes m
                 where m.user_id = p_user and m.conversation_id = p_conversation
                   and (m.muted_until is null or m.muted_until > now()))
      then 'muted'
    when exists (select 1 from public.quiet_hours q where q.user_id = p_user
                 and public.quiet_hours_active(q.starts_at, q.ends_at, q.time_zone))
      then 'quiet_hours'
  end
$$;

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
        'last_message', case when m.id is null then null else to_jsonb(m.*) end,
        -- Issue 14: the caller's mute of this conversation, and blocks.
        'muted', mu.user_id is not null
          and (mu.muted_until is null or mu.muted_until > now()),
        'muted_until', case when mu.muted_until > now() then mu.muted_until end,
        'blocked_by_me', exists (select 1 from public.user_blocks b
          where b.blocker_id = auth.uid() and b.blocked_id = o.id),
        'blocked', public.blocked_with(o.id)
      ) as item
    from public.conversations c
    left join public.users o on o.id = case when c.brand_owner_id = auth.uid()
      then c.influencer_id else c.brand_owner_id end
    left join public.messages m on m.id = c.last_message_id
    left join public.conversation_mutes mu
      on mu.conversation_id = c.id and mu.user_id = auth.uid()
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
