-- Push tokens (FCM registration tokens) of a user's devices. A token belongs
-- to one device, so it is unique across users: when a device signs in as
-- someone else, the token moves to that account.

create table public.fcm_tokens (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null default auth.uid() references public.users (id) on delete cascade,
  token text not null unique check (char_length(token) between 1 and 4096),
  platform text not null check (platform in ('android', 'ios', 'web')),
  is_active boolean not null default true,
  last_used_at timestamptz not null default now(),
  created_at timestamptz not null default now()
);
alter table public.fcm_tokens enable row level security;
-- Explicit grants: a user manages their own devices' tokens (policies below);
-- the service role reads them to push.
grant select, insert, update, delete on public.fcm_tokens to authenticated;
grant select, insert, update, delete on public.fcm_tokens to service_role;

-- The pusher reads a user's active tokens.
create index fcm_tokens_user_active_idx on public.fcm_tokens (user_id) where is_active;

create policy "Users can read their own push tokens"
  on public.fcm_tokens for select to authenticated
  using (user_id = auth.uid());

create policy "Users can add push tokens for themselves"
  on public.fcm_tokens for insert to authenticated
  with check (user_id = auth.uid());

create policy "Users can update their own push tokens"
  on public.fcm_tokens for update to authenticated
  using (user_id = auth.uid())
  with check (user_id = auth.uid());

create policy "Users can delete their own push tokens"
  on public.fcm_tokens for delete to authenticated
  using (user_id = auth.uid());

revoke truncate on public.fcm_tokens from anon, authenticated;

-- Idempotent registration: (re)activates the token for the caller, taking it
-- over from another account if the device changed hands. security definer
-- because the previous owner's row is not visible to the caller under RLS.
create function public.register_fcm_token(p_token text, p_platform text)
returns public.fcm_tokens
language plpgsql security definer set search_path = '' as $$
declare
  _uid uuid := auth.uid();
  _row public.fcm_tokens;
begin
  if _uid is null then
    raise exception 'not signed in' using errcode = '42501';
  end if;
  insert into public.fcm_tokens (user_id, token, platform)
  values (_uid, p_token, p_platform)
  on conflict (token) do update
    set user_id = excluded.user_id,
        platform = excluded.platform,
        is_active = true,
        last_used_at = now()
  returning * into _row;
  return _row;
end
$$;

revoke execute on function public.register_fcm_token(text, text) from public, anon;
grant execute on function public.register_fcm_token(text, text) to authenticated, service_role;
