-- Sending into a conversation that does not exist answered "does not exist"
-- (23503) and into someone else's "not a participant" (42501): an oracle for
-- which conversation ids exist. Both now get the one answer, "conversation
-- not found" (P0002), as apply_flow_action and the bridge's API already do.
create or replace function public.messages_before_insert() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  _conv public.conversations;
begin
  select * into _conv from public.conversations where id = new.conversation_id;
  if not found or new.sender_id not in (_conv.brand_owner_id, _conv.influencer_id) then
    raise exception 'conversation not found' using errcode = 'P0002';
  end if;
  if _conv.chat_status = 'closed' and new.message_type <> 'system' then
    raise exception 'conversation % is closed', new.conversation_id
      using errcode = '23514';
  end if;
  return new;
end
$$;
