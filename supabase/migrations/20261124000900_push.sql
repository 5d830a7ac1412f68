-- Push notifications due to users, as durable jobs. The bridge writes a job
-- in the same transaction in which it acknowledges the outbox change that
-- caused it, so a restart neither loses a due push nor creates it twice; a
-- worker sends it later, off the socket path, with retries. Jobs for the same
-- person, conversation and kind merge while pending, and a per-pair cooldown
-- holds the next one back: a burst of messages is one push.

create table bridge.push_jobs (
  id bigint generated always as identity primary key,
  user_id uuid not null references public.users (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  kind text not null check (kind in ('message', 'flow')),
  title text not null,
  body text not null,
  -- FCM data payload: string values only.
  data jsonb not null default '{}',
  -- How many changes this job stands for (merged while pending).
  merged integer not null default 1 check (merged >= 1),
  first_outbox_id bigint not null,
  last_outbox_id bigint not null,
  status text not null default 'pending'
    check (status in ('pending', 'sending', 'sent', 'failed', 'no_tokens')),
  not_before timestamptz not null default now(),
  lease_until timestamptz,
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
alter table bridge.push_jobs enable row level security;
-- No policies: only the bridge reads push jobs.

-- At most one pending job per person, conversation and kind: the merge target.
create unique index push_jobs_one_pending
  on bridge.push_jobs (user_id, conversation_id, kind) where status = 'pending';
-- The worker's queue.
create index push_jobs_due_idx on bridge.push_jobs (not_before) where status = 'pending';
create index push_jobs_leased_idx on bridge.push_jobs (lease_until) where status = 'sending';

-- When each person was last pushed about each conversation (the cooldown).
create table bridge.push_pairs (
  user_id uuid not null references public.users (id) on delete cascade,
  conversation_id uuid not null references public.conversations (id) on delete cascade,
  last_sent_at timestamptz not null,
  primary key (user_id, conversation_id)
);
alter table bridge.push_pairs enable row level security;

grant select, insert, update, delete on bridge.push_jobs, bridge.push_pairs to service_role;

-- Why a token was switched off (UNREGISTERED, SENDER_ID_MISMATCH, ...).
alter table public.fcm_tokens add column deactivated_reason text
  check (char_length(deactivated_reason) <= 200);

-- Re-registering a token switches it back on and forgets why it was off.
create or replace function public.register_fcm_token(p_token text, p_platform text)
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
        deactivated_reason = null,
        last_used_at = now()
  returning * into _row;
  return _row;
end
$$;
