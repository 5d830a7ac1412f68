-- Campaigns (a brand owner's offer) and bids (an influencer's proposal),
-- as far as conversations need them: who takes part, and a title to show.

create table public.campaigns (
  id uuid primary key default gen_random_uuid(),
  brand_owner_id uuid not null references public.users (id) on delete cascade,
  title text not null check (char_length(title) between 1 and 200),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.campaigns enable row level security;
-- Explicit grants (no reliance on Supabase's default privileges): brand owners
-- manage their campaigns through supabase-js; the policies below pick rows.
grant select, insert, update, delete on public.campaigns to authenticated;
grant select, insert, update, delete on public.campaigns to service_role;

create table public.bids (
  id uuid primary key default gen_random_uuid(),
  campaign_id uuid references public.campaigns (id) on delete set null,
  brand_owner_id uuid not null references public.users (id) on delete cascade,
  influencer_id uuid not null references public.users (id) on delete cascade,
  title text not null check (char_length(title) between 1 and 200),
  amount numeric(12, 2) check (amount >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.bids enable row level security;
-- Bids are read and placed by clients; they change only through the flow.
grant select, insert on public.bids to authenticated;
grant select, insert, update, delete on public.bids to service_role;

create index campaigns_brand_owner_idx on public.campaigns (brand_owner_id);
create index bids_brand_owner_idx on public.bids (brand_owner_id);
create index bids_influencer_idx on public.bids (influencer_id);
create index bids_campaign_idx on public.bids (campaign_id);

create trigger campaigns_set_updated_at
  before update on public.campaigns
  for each row execute function public.set_updated_at();
create trigger bids_set_updated_at
  before update on public.bids
  for each row execute function public.set_updated_at();

create trigger campaigns_participant_roles
  before insert or update on public.campaigns
  for each row execute function public.enforce_participant_roles();
create trigger bids_participant_roles
  before insert or update on public.bids
  for each row execute function public.enforce_participant_roles();

-- A bid on a campaign is addressed to that campaign's owner.
create function public.enforce_bid_campaign_owner() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if new.campaign_id is not null and not exists (
    select 1 from public.campaigns
    where id = new.campaign_id and brand_owner_id = new.brand_owner_id
  ) then
    raise exception 'bid brand_owner_id does not own campaign %', new.campaign_id
      using errcode = '23514';
  end if;
  return new;
end
$$;

create trigger bids_campaign_owner
  before insert or update on public.bids
  for each row execute function public.enforce_bid_campaign_owner();

create policy "Brand owners can read their own campaigns"
  on public.campaigns for select to authenticated
  using (brand_owner_id = auth.uid());

create policy "Brand owners can create campaigns as themselves"
  on public.campaigns for insert to authenticated
  with check (brand_owner_id = auth.uid());

create policy "Brand owners can edit their own campaigns"
  on public.campaigns for update to authenticated
  using (brand_owner_id = auth.uid())
  with check (brand_owner_id = auth.uid());

create policy "Brand owners can delete their own campaigns"
  on public.campaigns for delete to authenticated
  using (brand_owner_id = auth.uid());

create policy "Participants can read their bids"
  on public.bids for select to authenticated
  using (auth.uid() in (brand_owner_id, influencer_id));

create policy "Influencers can place bids as themselves"
  on public.bids for insert to authenticated
  with check (influencer_id = auth.uid());

-- A bid is a proposal: once placed it changes only through the conversation
-- flow (security definer functions), so no update or delete policy for users.
revoke update, delete, truncate on public.bids from anon, authenticated;
revoke truncate on public.campaigns from anon, authenticated;
