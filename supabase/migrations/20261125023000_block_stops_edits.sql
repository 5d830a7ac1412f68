-- A block stops edits too. 20261125012000 refuses new messages between two
-- users one of whom blocked the other, but a sender could still edit a
-- message sent before the block (within the edit window), and the new text
-- reached the blocker's devices as `message_updated`: new words across a
-- block. Edits are refused now with the block's own refusal (42501, HINT
-- `blocked`; the bridge answers `blocked`, 403 over REST), on every client
-- path (the socket, REST, supabase-js's update or `rpc('edit_message')`).
-- Unsending stays allowed: it only takes the sender's words away (a report
-- keeps its own copy of the text).

-- Security invoker on purpose, as public.messages_guard_update: clients
-- (`authenticated`) are held to it, the service role and the owner
-- (moderation, maintenance) are not. Named to fire after
-- messages_guard_update (triggers fire in name order), which has already
-- refused someone else's message or skipped a tombstone.
create function public.messages_refuse_blocked_edit() returns trigger
language plpgsql set search_path = '' as $$
begin
  if current_user = 'authenticated'
     and new.deleted_at is null
     and (new.content is distinct from old.content
          or new.media_url is distinct from old.media_url)
     and public.conversation_blocked(new.conversation_id) then
    raise exception 'blocked: one of you blocked the other, so the message cannot be edited'
      using errcode = '42501', hint = 'blocked';
  end if;
  return new;
end
$$;

create trigger messages_refuse_blocked_edit
  before update of content, media_url on public.messages
  for each row execute function public.messages_refuse_blocked_edit();
