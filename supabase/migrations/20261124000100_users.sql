-- Chat profiles: one row per auth.users account, holding what a chat list
-- shows of a person (name, role, avatar) and when they were last seen.

create type public.user_role as enum ('brand_owner', 'influencer');

create table public.users (
  id uuid primary key references auth.users (id) on delete cascade,
  name text not null default '' check (char_length(name) <= 120),
  role public.user_role not null,
  -- A full URL or a path inside the `avatars` storage bucket; the bridge turns
  -- a path into a public URL. Null means "no image": clients show a default.
  profile_image_url text check (char_length(profile_image_url) <= 1024),
  last_seen_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
alter table public.users enable row level security;
-- Explicit grants: a project with "default privileges for new entities" off
-- (`[api] auto_expose_new_tables = false`) gives the API roles nothing on new
-- tables. Clients read profiles (RLS picks the rows) and edit two columns of
-- their own (below); the service role (edge functions, operators) has the
-- table, as Supabase intends for it.
grant select on public.users to authenticated;
grant select, insert, update, delete on public.users to service_role;

comment on table public.users is 'Chat profile of an auth.users account.';

-- Shared by every table with an updated_at column.
create function public.set_updated_at() returns trigger
language plpgsql as $$
begin
  new.updated_at := now();
  return new;
end
$$;

create trigger users_set_updated_at
  before update on public.users
  for each row execute function public.set_updated_at();

create policy "Users can read their own profile"
  on public.users for select to authenticated
  using (id = auth.uid());

create policy "Users can update their own profile"
  on public.users for update to authenticated
  using (id = auth.uid())
  with check (id = auth.uid());

-- Profiles are created by the sign-up trigger below, never by clients, and a
-- user may change their name and avatar but not their id or role.
revoke insert, update, delete, truncate on public.users from anon, authenticated;
grant update (name, profile_image_url) on public.users to authenticated;

-- Sign-up hook: Supabase Auth inserts into auth.users; the profile follows
-- from the user metadata ({"name": ..., "role": ...}). A role that is not a
-- user_role fails the sign-up with the enum's error instead of guessing.
create function public.handle_new_auth_user() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.users (id, name, role, profile_image_url)
  values (
    new.id,
    coalesce(new.raw_user_meta_data ->> 'name', split_part(coalesce(new.email, ''), '@', 1)),
    coalesce((new.raw_user_meta_data ->> 'role')::public.user_role, 'influencer'),
    new.raw_user_meta_data ->> 'profile_image_url'
  )
  on conflict (id) do nothing;
  return new;
end
$$;

create trigger on_auth_user_created
  after insert on auth.users
  for each row execute function public.handle_new_auth_user();

-- Integrity helper for tables naming a brand owner and/or an influencer:
-- each named user must hold that role.
create function public.enforce_participant_roles() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _row jsonb := to_jsonb(new);
begin
  if _row ? 'brand_owner_id' and not exists (
    select 1 from public.users
    where id = (_row ->> 'brand_owner_id')::uuid and role = 'brand_owner'
  ) then
    raise exception 'brand_owner_id % is not a brand owner', _row ->> 'brand_owner_id'
      using errcode = '23514';
  end if;
  if _row ? 'influencer_id' and not exists (
    select 1 from public.users
    where id = (_row ->> 'influencer_id')::uuid and role = 'influencer'
  ) then
    raise exception 'influencer_id % is not an influencer', _row ->> 'influencer_id'
      using errcode = '23514';
  end if;
  return new;
end
$$;
