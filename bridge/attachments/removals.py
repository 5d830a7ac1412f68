"""Removing unsent attachments from storage (both backends).

Unsending a message queues its storage path in `public.attachment_removals`
in the unsend's own transaction (a trigger:
supabase/migrations/20261125026000_attachment_removals.sql), whoever
unsent it: the bridge's socket or REST path, or a supabase-js client
calling `unsend_message` directly. Every instance runs this sweeper; it
claims due rows with `for update skip locked` (so instances share the work
and never take the same row), and for each:

1. under the path's exclusive advisory lock (inserts naming the path take
   it shared until their commit), checks whether a live message still
   references the path; if so the row is dropped and the object kept;
2. otherwise removes the object (the row stays meanwhile, so no new message
   may name the path), then drops the row.

A failure to remove (Storage away, a disk error) is one warning line, no
traceback; the row's next attempt backs off (10 s doubling to an hour) and
is tried again, by this instance or another. The database away is counted
by DatabaseHealth (one warning for the whole outage) and the next round
tries again. The instance that handled an unsend nudges its sweeper, so
the object usually goes at once; otherwise the sweep runs every
`attachments.sweep_interval` seconds.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bridge import locks
from bridge.attachments import Backend
from bridge.db_health import DatabaseHealth
from bridge.logs import Noise, describe
from bridge.tasks import wait_set

log = logging.getLogger(__name__)
TROUBLE = Noise()
BATCH = 20

CLAIM = """
update public.attachment_removals r
   set attempts = r.attempts + 1,
       next_attempt_at = now() + least(interval '1 hour',
                                       interval '10 seconds' * power(2, least(r.attempts, 12)))
 where r.path in (select q.path from public.attachment_removals q
                   where q.next_attempt_at <= now()
                   order by q.next_attempt_at limit $1
                   for update skip locked)
returning r.path
"""

STILL_REFERENCED = """
select exists (select 1 from public.messages m
                where m.media_url = $1 and m.deleted_at is null)
"""


class AttachmentRemovals:
    def __init__(
        self, pool: Any, backend: Backend, interval: float, health: DatabaseHealth
    ) -> None:
        self.pool = pool
        self.backend = backend
        self.interval = interval
        self.health = health
        self._wake = asyncio.Event()

    def nudge(self) -> None:
        """Something may have been queued (an unsend this instance handled)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                while await self.sweep() == BATCH:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round tries again
                self.health.log_failure(exc, "the attachment sweep failed")
            await wait_set(self._wake, self.interval)

    async def sweep(self) -> int:
        """One batch of due removals; returns how many were claimed."""
        paths = [r["path"] for r in await self.pool.fetch(CLAIM, BATCH)]
        for path in paths:
            await self._remove(path)
        return len(paths)

    async def _remove(self, path: str) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "select pg_advisory_xact_lock(hashtextextended($1 || $2, 0))",
                locks.ATTACHMENT_PATH,
                path,
            )
            if await conn.fetchval(STILL_REFERENCED, path):
                await conn.execute("delete from public.attachment_removals where path = $1", path)
                log.info("attachment kept: another message still references it")
                return
        try:
            await self.backend.remove(path)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = describe(exc)
            what = "removing an unsent attachment failed; it is tried again later"
            suppressed = TROUBLE.should_log(what)
            if suppressed is not None:
                log.warning("%s: %s (%d more suppressed)", what, error, suppressed)
            await self.pool.execute(
                "update public.attachment_removals set last_error = $2 where path = $1",
                path,
                error[:500],
            )
            return
        await self.pool.execute("delete from public.attachment_removals where path = $1", path)
