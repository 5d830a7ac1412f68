-- Unsent attachments are removed from storage (issue 14 item 5, follow-up).
-- Unsending a message nulls its media_url (the tombstone), but the object
-- stayed in the bucket: a participant who kept the path could still read it
-- with supabase-js under the storage policies. Now the path goes to a queue
-- in the same transaction as the unsend (so an unsend through supabase-js,
-- the bridge's socket or REST, or a service-role update all count, and a
-- crash between the commit and the removal loses nothing); the bridge's
-- attachment sweeper (bridge/attachments/removals.py) removes the object
-- after the commit, retrying with backoff, and drops the row. An object
-- another live message still references is kept (the sweeper checks under
-- a lock that new references also take, see below).

create table public.attachment_removals (
  path text primary key,
  queued_at timestamptz not null default now(),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  last_error text
);
alter table public.attachment_removals enable row level security;
comment on table public.attachment_removals is
  'Storage paths of unsent (or replaced, or deleted) attachments waiting to be removed from the bucket by the bridge.';
-- Explicit grants: only the bridge (service role or owner) works the
-- queue. Signed-in users hold select as on every public table, but no
-- policy lets them see a row.
revoke all on public.attachment_removals from public, anon, authenticated;
grant select on public.attachment_removals to authenticated;
grant select, insert, update, delete on public.attachment_removals to service_role;
-- The sweeper's claim: what is due, oldest first.
create index attachment_removals_due on public.attachment_removals (next_attempt_at);

-- A storage path (not a full URL hosted elsewhere) that left a message.
create function public.queue_attachment_removal()
returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if old.media_url is not null and old.media_url !~ '^https?://' then
    insert into public.attachment_removals (path) values (old.media_url)
    on conflict (path) do update set next_attempt_at = now();
  end if;
  return null;
end
$$;
revoke all on function public.queue_attachment_removal() from public, anon, authenticated;

-- Unsend (the before-update trigger nulls media_url), a replaced path, a
-- deleted row (a conversation deleted with its messages): the old path is
-- queued. The WHEN clauses keep every other update and delete free of it.
create trigger messages_queue_attachment_removal
  after update of media_url, deleted_at on public.messages
  for each row
  when (old.media_url is not null and old.media_url is distinct from new.media_url)
  execute function public.queue_attachment_removal();
create trigger messages_queue_deleted_attachment_removal
  after delete on public.messages
  for each row
  when (old.media_url is not null)
  execute function public.queue_attachment_removal();

-- A new message may not name a path being removed (its bytes are going):
-- refused with a clear reason. The shared advisory lock, held to the
-- commit, pairs with the sweeper's exclusive one on the same path: the
-- sweeper's "no live message references it" check waits for such an
-- insert to commit, and an insert after the check sees the queued row.
create function public.refuse_removed_attachment()
returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform pg_advisory_xact_lock_shared(hashtextextended('attachment:' || new.media_url, 0));
  if exists (select 1 from public.attachment_removals r where r.path = new.media_url) then
    raise exception 'the attachment was removed (its message was unsent)'
      using errcode = '23514', hint = 'attachment_removed';
  end if;
  return new;
end
$$;
revoke all on function public.refuse_removed_attachment() from public, anon, authenticated;

-- Only messages carrying a storage path run it; text messages (the send
-- path's bulk) are filtered out by the WHEN clause without a function call.
create trigger messages_refuse_removed_attachment
  before insert or update of media_url on public.messages
  for each row
  when (new.media_url is not null and new.media_url !~ '^https?://')
  execute function public.refuse_removed_attachment();

-- supabase-js clients: a queued path is no longer readable under the
-- storage policies, even before the sweeper got to it. Security definer:
-- clients cannot read the queue itself.
create function public.attachment_removal_queued(p_name text)
returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from public.attachment_removals r where r.path = p_name)
$$;
revoke all on function public.attachment_removal_queued(text) from public, anon;
grant execute on function public.attachment_removal_queued(text) to authenticated, service_role;

do $$
begin
  if to_regclass('storage.objects') is null then
    return;
  end if;
  execute $p$
    drop policy if exists "Participants can read their conversations' attachments"
      on storage.objects
  $p$;
  execute $p$
    create policy "Participants can read their conversations' attachments"
      on storage.objects for select to authenticated
      using (bucket_id = 'chat-attachments'
             and public.is_conversation_participant(public.attachment_conversation(name))
             and not public.attachment_removal_queued(name))
  $p$;
end
$$;
