-- Attachments (issue 14 item 5): images and files of messages live in the
-- private Storage bucket `chat-attachments`, one folder per conversation:
-- `<conversation id>/<uuid>/<file name>`. A message of type image or file
-- carries that path in `media_url` (full URLs, hosted elsewhere, still pass
-- as the seed's clients send them). The bridge hands out signed upload and
-- read URLs (service role); supabase-js clients get the same rule from the
-- policies below: only the conversation's participants read or add files
-- under its folder; nobody but the service role replaces or deletes them.

-- The conversation an attachment path belongs to, if it names one: its
-- first folder as a uuid (null for anything else, never an error).
create or replace function public.attachment_conversation(p_name text)
returns uuid
language plpgsql immutable set search_path = '' as $$
declare
  v_first text := split_part(p_name, '/', 1);
begin
  if v_first !~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return null;
  end if;
  return v_first::uuid;
end
$$;
comment on function public.attachment_conversation(text) is
  'The conversation of an attachment path <conversation id>/<uuid>/<file name>, or null.';
revoke all on function public.attachment_conversation(text) from public, anon;
grant execute on function public.attachment_conversation(text) to authenticated, service_role;

-- A message's storage path must be of its own conversation (a full URL is
-- not a path): a client cannot show one conversation another's files.
-- NOT VALID: rows written before this rule are left as they are.
alter table public.messages
  add constraint messages_media_url_in_conversation check (
    media_url is null
    or media_url ~ '^https?://'
    or public.attachment_conversation(media_url) = conversation_id
  ) not valid;

-- The bucket and its policies exist only where Storage does (a Supabase
-- project, the embedded default's mirror of its schema); a plain Postgres
-- without a `storage` schema migrates without them.
do $$
begin
  if to_regclass('storage.objects') is null or to_regclass('storage.buckets') is null then
    raise notice 'no storage schema: the chat-attachments bucket and its policies are skipped';
    return;
  end if;

  -- Private; the limits are the defaults of attachments.max_bytes and
  -- attachments.allowed_types (the bridge sets them from its settings when
  -- it starts on hosted Storage).
  insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
  values ('chat-attachments', 'chat-attachments', false, 10485760,
          array['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/heic',
                'application/pdf', 'text/plain', 'text/csv', 'application/msword',
                'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
                'application/vnd.ms-excel',
                'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
                'application/vnd.ms-powerpoint',
                'application/vnd.openxmlformats-officedocument.presentationml.presentation',
                'application/zip'])
  on conflict (id) do nothing;

  execute $p$
    create policy "Participants can read their conversations' attachments"
      on storage.objects for select to authenticated
      using (bucket_id = 'chat-attachments'
             and public.is_conversation_participant(public.attachment_conversation(name)))
  $p$;

  -- Not across a block: no new files either way, as no new messages.
  execute $p$
    create policy "Participants can add attachments to their conversations"
      on storage.objects for insert to authenticated
      with check (bucket_id = 'chat-attachments'
                  and public.is_conversation_participant(public.attachment_conversation(name))
                  and not public.conversation_blocked(public.attachment_conversation(name)))
  $p$;
end
$$;
