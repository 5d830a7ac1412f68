-- Block and report (issue 14 item 2).
--
-- A block is one row (blocker, blocked). While one exists either way, no
-- user message goes into a conversation of the two (a before-insert trigger
-- names the reason, `blocked`, and a restrictive RLS policy refuses it too,
-- so supabase-js clients meet the same rule), no new direct conversation is
-- opened between them, and no push about their conversations is sent
-- (bridge.push_silenced). History stays readable. Typing and presence are
-- the bridge's: it shows neither of one to the other.
--
-- A report is stored for moderators: only the service role reads
-- public.reports; reporters write through public.report_content(), which
-- checks that what they report is theirs to see and answers the report's id.

create table public.user_blocks (
  blocker_id uuid not null references public.users (id) on delete cascade,
  blocked_id uuid not null references public.users (id) on delete cascade,
  created_at timestamptz not null default now(),
  primary key (blocker_id, blocked_id),
  constraint user_blocks_not_self check (blocker_id <> blocked_id)
);
alter table public.user_blocks enable row level security;
-- Explicit grants: a user lists, adds and removes their own blocks (RLS picks
-- the rows); the blocked side cannot read who blocked them. anon: nothing,
-- also where Supabase's default privileges granted it everything.
revoke all on public.user_blocks from anon;
grant select, delete on public.user_blocks to authenticated;
grant insert (blocker_id, blocked_id) on public.user_blocks to authenticated;
grant select, insert, update, delete on public.user_blocks to service_role;
-- Either direction is looked up on every user message.
create index user_blocks_blocked_idx on public.user_blocks (blocked_id, blocker_id);

create policy "Users can see whom they blocked"
  on public.user_blocks for select to authenticated
  using (blocker_id = (select auth.uid()));

create policy "Users can block others as themselves"
  on public.user_blocks for insert to authenticated
  with check (blocker_id = (select auth.uid()));

create policy "Users can unblock whom they blocked"
  on public.user_blocks for delete to authenticated
  using (blocker_id = (select auth.uid()));

-- Whether a block stands between two users, either way. Not granted to
-- clients: it would tell anyone who blocked whom.
create function bridge.blocked_between(p_a uuid, p_b uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.user_blocks
    where (blocker_id = p_a and blocked_id = p_b) or (blocker_id = p_b and blocked_id = p_a))
$$;
revoke all on function bridge.blocked_between(uuid, uuid) from public;
grant execute on function bridge.blocked_between(uuid, uuid) to service_role;

-- For policies (which run as the caller): whether the signed-in user and
-- `p_other` blocked one another. It tells a user only about themselves.
create function public.blocked_with(p_other uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select bridge.blocked_between((select auth.uid()), p_other)
$$;
revoke all on function public.blocked_with(uuid) from public, anon;
grant execute on function public.blocked_with(uuid) to authenticated, service_role;

-- The same for the other participant of one of the caller's conversations;
-- false for a conversation the caller is not in.
create function public.conversation_blocked(p_conversation uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce((
    select bridge.blocked_between(c.brand_owner_id, c.influencer_id)
    from public.conversations c
    where c.id = p_conversation and (select auth.uid()) in (c.brand_owner_id, c.influencer_id)
  ), false)
$$;
revoke all on function public.conversation_blocked(uuid) from public, anon;
grant execute on function public.conversation_blocked(uuid) to authenticated, service_role;

-- Restrictive: these hold on top of every permissive insert policy.
create policy "Nobody sends into a conversation where one side blocked the other"
  on public.messages as restrictive for insert to authenticated
  with check (message_type = 'system' or not public.conversation_blocked(conversation_id));

create policy "Nobody opens a conversation with someone blocked either way"
  on public.conversations as restrictive for insert to authenticated
  with check (not public.blocked_with(
    case when brand_owner_id = (select auth.uid()) then influencer_id else brand_owner_id end));

-- Before-insert triggers run before RLS checks the row: this one gives the
-- refusal its name on every path (the bridge answers `blocked`). Flow steps'
-- system messages are business events and still go in (not pushed).
create function public.messages_refuse_blocked() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _other uuid;
begin
  if new.message_type = 'system' then
    return new;
  end if;
  select case when c.brand_owner_id = new.sender_id then c.influencer_id else c.brand_owner_id end
    into _other from public.conversations c where c.id = new.conversation_id;
  if _other is not null and bridge.blocked_between(new.sender_id, _other) then
    raise exception 'blocked: messages between these users are blocked'
      using errcode = '42501', hint = 'blocked';
  end if;
  return new;
end
$$;

create trigger messages_refuse_blocked
  before insert on public.messages
  for each row execute function public.messages_refuse_blocked();

-- Pushes: none about a conversation whose participants blocked one another.
-- (20261125012100 adds mutes and quiet hours.) Returns why, or null.
create function bridge.push_silenced(p_user uuid, p_conversation uuid) returns text
language sql stable security definer set search_path = '' as $$
  select case when exists (
    select 1 from public.conversations c
    where c.id = p_conversation and bridge.blocked_between(c.brand_owner_id, c.influencer_id))
  then 'blocked' end
$$;
revoke all on function bridge.push_silenced(uuid, uuid) from public;
grant execute on function bridge.push_silenced(uuid, uuid) to service_role;

create type public.report_reason as enum
  ('spam', 'harassment', 'scam', 'inappropriate', 'impersonation', 'other');

create table public.reports (
  id uuid primary key default gen_random_uuid(),
  reporter_id uuid not null references public.users (id) on delete cascade,
  reported_user_id uuid not null references public.users (id) on delete cascade,
  -- Kept when the message goes: moderators still see what was said.
  message_id uuid references public.messages (id) on delete set null,
  message_content text,
  conversation_id uuid references public.conversations (id) on delete set null,
  reason public.report_reason not null,
  details text check (char_length(details) <= 1000),
  status text not null default 'open' check (status in ('open', 'reviewed', 'dismissed')),
  created_at timestamptz not null default now(),
  constraint reports_not_self check (reporter_id <> reported_user_id)
);
alter table public.reports enable row level security;
-- Moderators only (the service role). Clients write through report_content()
-- and read nothing: select is granted as on every public table (RLS picks
-- the rows) but no policy lets a client see a row, so neither the reporter
-- nor the reported user ever reads a report.
revoke all on public.reports from public, anon, authenticated;
grant select on public.reports to authenticated;
grant select, insert, update, delete on public.reports to service_role;
-- One open report per reporter and message, and per reporter and user.
create unique index reports_one_per_message on public.reports (reporter_id, message_id)
  where message_id is not null and status = 'open';
create unique index reports_one_per_user on public.reports (reporter_id, reported_user_id)
  where message_id is null and status = 'open';

-- Reports a message (of a conversation the caller is in, not their own) or a
-- user (someone they share a conversation with). Reporting the same thing
-- again while the report is open answers the same id.
create function public.report_content(
  p_reason text,
  p_message_id uuid default null,
  p_user_id uuid default null,
  p_details text default null
) returns uuid
language plpgsql security definer set search_path = '' as $$
declare
  _me uuid := (select auth.uid());
  _reason public.report_reason;
  _message public.messages;
  _reported uuid;
  _conversation uuid;
  _id uuid;
begin
  if _me is null then
    raise exception 'sign in to report' using errcode = '42501';
  end if;
  if (p_message_id is null) = (p_user_id is null) then
    raise exception 'report either a message or a user' using errcode = '22023';
  end if;
  if p_reason is null or p_reason not in (select unnest(enum_range(null::public.report_reason))::text) then
    raise exception 'reason must be one of %',
      array_to_string(enum_range(null::public.report_reason)::text[], ', ') using errcode = '22023';
  end if;
  _reason := p_reason::public.report_reason;
  if char_length(p_details) > 1000 then
    raise exception 'details are longer than 1000 characters' using errcode = '22001';
  end if;
  if p_message_id is not null then
    select m.* into _message from public.messages m
    join public.conversations c on c.id = m.conversation_id
    where m.id = p_message_id and _me in (c.brand_owner_id, c.influencer_id);
    if not found then
      raise exception 'message not found' using errcode = 'P0002';
    end if;
    if _message.sender_id = _me then
      raise exception 'you cannot report your own message' using errcode = '22023';
    end if;
    _reported := _message.sender_id;
    _conversation := _message.conversation_id;
  else
    if p_user_id = _me then
      raise exception 'you cannot report yourself' using errcode = '22023';
    end if;
    if not exists (select 1 from public.conversations c
                   where (c.brand_owner_id = _me and c.influencer_id = p_user_id)
                      or (c.influencer_id = _me and c.brand_owner_id = p_user_id)) then
      raise exception 'user not found' using errcode = 'P0002';
    end if;
    _reported := p_user_id;
  end if;
  insert into public.reports
    (reporter_id, reported_user_id, message_id, message_content, conversation_id, reason, details)
  values (_me, _reported, p_message_id, _message.content, _conversation, _reason, p_details)
  on conflict do nothing
  returning id into _id;
  if _id is null then
    select r.id into _id from public.reports r
    where r.reporter_id = _me and r.status = 'open'
      and (r.message_id = p_message_id
           or (p_message_id is null and r.message_id is null and r.reported_user_id = _reported));
  end if;
  return _id;
end
$$;
revoke all on function public.report_content(text, uuid, uuid, text) from public, anon;
grant execute on function public.report_content(text, uuid, uuid, text) to authenticated, service_role;
