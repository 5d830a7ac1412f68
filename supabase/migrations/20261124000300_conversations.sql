-- Conversations: always between one brand owner and one influencer, either
-- direct or about a bid or a campaign (those follow the flow machine, see
-- the flow migration). Unread counters live on the row so that the chat list
-- and the unread badge never need to count messages.

create type public.conversation_type as enum ('direct', 'bid', 'campaign');
-- automated: the flow drives the conversation; active: free chat;
-- closed: the flow ended, no new user messages.
create type public.chat_status as enum ('automated', 'active', 'closed');

create table public.conversations (
  id uuid primary key default gen_random_uuid(),
  brand_owner_id uuid not null references public.users (id) on delete cascade,
  influencer_id uuid not null references public.users (id) on delete cascade,
  conversation_type public.conversation_type not null default 'direct',
  bid_id uuid references public.bids (id) on delete set null,
  campaign_id uuid references public.campaigns (id) on delete set null,
  flow_state text check (flow_state ~ '^[a-z_]{1,50}$'),
  awaiting_role public.user_role,
  chat_status public.chat_status not null default 'automated',
  last_message_id uuid,
  last_message_at timestamptz,
  brand_owner_unread_count integer not null default 0 check (brand_owner_unread_count >= 0),
  influencer_unread_count integer not null default 0 check (influencer_unread_count >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint conversations_bid_named check (conversation_type <> 'bid' or bid_id is not null),
  constraint conversations_campaign_named
    check (conversation_type <> 'campaign' or campaign_id is not null),
  constraint conversations_direct_has_no_flow
    check (conversation_type <> 'direct' or flow_state is null)
);
alter table public.conversations enable row level security;
-- Explicit grants: clients read their conversations (RLS picks the rows) and
-- open direct ones (column grants below); everything else moves through
-- triggers and security definer functions.
grant select on public.conversations to authenticated;
grant select, insert, update, delete on public.conversations to service_role;

-- One conversation per bid, per campaign and influencer, per direct pair.
create unique index conversations_one_per_bid
  on public.conversations (bid_id) where conversation_type = 'bid';
create unique index conversations_one_per_campaign_influencer
  on public.conversations (campaign_id, influencer_id) where conversation_type = 'campaign';
create unique index conversations_one_direct_per_pair
  on public.conversations (brand_owner_id, influencer_id) where conversation_type = 'direct';
-- The chat list: a user's conversations, latest activity first.
create index conversations_brand_owner_list_idx
  on public.conversations (brand_owner_id, (coalesce(last_message_at, created_at)) desc);
create index conversations_influencer_list_idx
  on public.conversations (influencer_id, (coalesce(last_message_at, created_at)) desc);

create trigger conversations_set_updated_at
  before update on public.conversations
  for each row execute function public.set_updated_at();

create trigger conversations_participant_roles
  before insert or update of brand_owner_id, influencer_id on public.conversations
  for each row execute function public.enforce_participant_roles();

-- A bid or campaign conversation is between the people the bid or campaign names.
create function public.enforce_conversation_subject() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.bid_id is not null and not exists (
    select 1 from public.bids b
    where b.id = new.bid_id
      and b.brand_owner_id = new.brand_owner_id
      and b.influencer_id = new.influencer_id
  ) then
    raise exception 'conversation participants do not match bid %', new.bid_id
      using errcode = '23514';
  end if;
  if new.campaign_id is not null and not exists (
    select 1 from public.campaigns c
    where c.id = new.campaign_id and c.brand_owner_id = new.brand_owner_id
  ) then
    raise exception 'conversation brand owner does not own campaign %', new.campaign_id
      using errcode = '23514';
  end if;
  return new;
end
$$;

create trigger conversations_subject
  before insert or update of bid_id, campaign_id, brand_owner_id, influencer_id
  on public.conversations
  for each row execute function public.enforce_conversation_subject();

-- Policy helpers. security definer so that a policy on one table can ask about
-- another without recursing through that table's own policies.
create function public.is_conversation_participant(p_conversation_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.conversations c
    where c.id = p_conversation_id
      and auth.uid() in (c.brand_owner_id, c.influencer_id)
  )
$$;

create function public.shares_conversation_with(p_user_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from public.conversations c
    where (c.brand_owner_id = auth.uid() and c.influencer_id = p_user_id)
       or (c.influencer_id = auth.uid() and c.brand_owner_id = p_user_id)
  )
$$;

revoke execute on function public.is_conversation_participant(uuid) from public, anon;
revoke execute on function public.shares_conversation_with(uuid) from public, anon;
-- Policies run their helpers with the caller's rights: without EXECUTE every
-- read of messages or partner profiles fails with "permission denied for
-- function" once default privileges are off.
grant execute on function public.is_conversation_participant(uuid) to authenticated, service_role;
grant execute on function public.shares_conversation_with(uuid) to authenticated, service_role;

create policy "Participants can read their conversations"
  on public.conversations for select to authenticated
  using (auth.uid() in (brand_owner_id, influencer_id));

-- Direct conversations may be opened by either participant; bid and campaign
-- conversations start through the flow functions only.
create policy "Participants can open direct conversations with each other"
  on public.conversations for insert to authenticated
  with check (
    conversation_type = 'direct'
    and auth.uid() in (brand_owner_id, influencer_id)
    and flow_state is null
    and bid_id is null
    and campaign_id is null
  );

-- State, unread counters and last message change through triggers and flow
-- functions, never by a client's update; there is no delete for clients either.
revoke update, delete, truncate on public.conversations from anon, authenticated;
revoke insert on public.conversations from anon, authenticated;
grant insert (brand_owner_id, influencer_id, conversation_type, chat_status)
  on public.conversations to authenticated;

create policy "Users can read the profiles of their conversation partners"
  on public.users for select to authenticated
  using (public.shares_conversation_with(id));

create policy "Influencers can read campaigns they are in conversation about"
  on public.campaigns for select to authenticated
  using (exists (
    select 1 from public.conversations c
    where c.campaign_id = campaigns.id and c.influencer_id = auth.uid()
  ));
