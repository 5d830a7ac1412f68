-- The helpers that RLS policies and the outbox triggers call for every
-- message, in PL/pgSQL. As SQL functions with SECURITY DEFINER and a
-- search_path they cannot be inlined, and a SQL function that is not
-- inlined plans its query anew in every statement that calls it: each socket
-- send paid two plans of is_conversation_participant (the insert's WITH
-- CHECK and the SELECT policy its RETURNING applies) and one of user_json.
-- Measured with pg_stat_statements and track_functions under the send
-- bench (bench/send_path.py, 500 msg/s): about 0.5 ms of Postgres CPU per
-- message, half of the database's whole share. PL/pgSQL keeps each plan for
-- the session. Same answers, same rights (definer, empty search_path,
-- stable); CREATE OR REPLACE keeps owners, grants and the policies using them.

create or replace function public.is_conversation_participant(p_conversation_id uuid)
returns boolean
language plpgsql stable security definer set search_path = '' as $$
begin
  return exists (
    select 1 from public.conversations c
    where c.id = p_conversation_id
      and auth.uid() in (c.brand_owner_id, c.influencer_id)
  );
end
$$;

create or replace function public.shares_conversation_with(p_user_id uuid) returns boolean
language plpgsql stable security definer set search_path = '' as $$
begin
  return exists (
    select 1 from public.conversations c
    where (c.brand_owner_id = auth.uid() and c.influencer_id = p_user_id)
       or (c.influencer_id = auth.uid() and c.brand_owner_id = p_user_id)
  );
end
$$;

create or replace function bridge.user_json(p_user_id uuid) returns jsonb
language plpgsql stable security definer set search_path = '' as $$
begin
  return (
    select jsonb_build_object(
      'id', u.id, 'name', u.name, 'role', u.role, 'profile_image_url', u.profile_image_url)
    from public.users u where u.id = p_user_id
  );
end
$$;
