-- One push in flight per person and conversation. While a push is being
-- sent, later changes merge into the next (pending) job, which the worker
-- claims only once the one in flight has finished and the cooldown after it
-- has passed; so a slow FCM means fewer pushes, not more. The worker checks
-- this when claiming; this index makes it hold between instances too (the
-- loser of a race gets a unique violation and claims again).

-- Pushes sent twice at once by earlier versions: keep the oldest in flight,
-- so the index can be built (the others' messages are in the app already).
update bridge.push_jobs j set status = 'failed', lease_until = null,
  last_error = 'superseded: one push in flight per conversation'
where j.status = 'sending' and exists (
  select 1 from bridge.push_jobs o
  where o.status = 'sending' and o.user_id = j.user_id
    and o.conversation_id = j.conversation_id and o.id < j.id);

create unique index push_jobs_one_sending
  on bridge.push_jobs (user_id, conversation_id) where status = 'sending';
