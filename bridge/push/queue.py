"""The SQL of push jobs (bridge.push_jobs): enqueue inside the relay's
transaction, claim with a lease, finish; and the device tokens they go to."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from bridge.db import Connection
from bridge.push.message import string_data
from bridge.translate import PushIntent

_JOB_COLUMNS = (
    "id, user_id::text, conversation_id::text, kind, title, body, data, merged, attempts,"
    " first_outbox_id, last_outbox_id"
)


class PushQueue:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @staticmethod
    async def enqueue(
        conn: Connection, intent: PushIntent, outbox_id: int, cooldown: float
    ) -> None:
        """A job for this push, merged into a pending one for the same person,
        conversation and kind; held back until the pair's cooldown is over.
        Runs in the transaction that acknowledges the outbox row, so a
        replayed row cannot enqueue twice."""
        await conn.execute(
            """
            insert into bridge.push_jobs as j
              (user_id, conversation_id, kind, title, body, data,
               first_outbox_id, last_outbox_id, not_before)
            values ($1, $2, $3, $4, $5, $6::jsonb, $7, $7,
              greatest(now(), coalesce((select p.last_sent_at + make_interval(secs => $8)
                from bridge.push_pairs p where p.user_id = $1 and p.conversation_id = $2),
                now())))
            on conflict (user_id, conversation_id, kind) where status = 'pending'
            do update set title = excluded.title, body = excluded.body, data = excluded.data,
              merged = j.merged + 1, last_outbox_id = excluded.last_outbox_id
            where j.last_outbox_id < excluded.last_outbox_id
            """,
            intent.user_id,
            intent.conversation_id,
            intent.kind,
            intent.title,
            intent.body,
            json.dumps(string_data(dict(intent.data))),
            outbox_id,
            cooldown,
        )

    async def claim(self, limit: int, lease_seconds: float) -> list[dict[str, Any]]:
        """Due jobs, and jobs whose sender's lease ran out (it died mid-send)."""
        rows = await self.pool.fetch(
            f"""
            update bridge.push_jobs set status = 'sending', attempts = attempts + 1,
              lease_until = now() + make_interval(secs => $2)
            where id in (
              select id from bridge.push_jobs
              where (status = 'pending' and not_before <= now())
                 or (status = 'sending' and lease_until < now())
              order by not_before limit $1 for update skip locked)
            returning {_JOB_COLUMNS}
            """,
            limit,
            lease_seconds,
        )
        jobs = []
        for row in rows:
            job = dict(row)
            job["data"] = json.loads(job["data"]) if isinstance(job["data"], str) else job["data"]
            jobs.append(job)
        return jobs

    async def finish(self, job: dict[str, Any], status: str, error: str | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "update bridge.push_jobs set status = $2, last_error = $3, lease_until = null,"
                " sent_at = case when $2 = 'sent' then now() end where id = $1",
                job["id"],
                status,
                error,
            )
            if status == "sent":
                await conn.execute(
                    "insert into bridge.push_pairs (user_id, conversation_id, last_sent_at)"
                    " values ($1, $2, now()) on conflict (user_id, conversation_id)"
                    " do update set last_sent_at = excluded.last_sent_at",
                    job["user_id"],
                    job["conversation_id"],
                )

    async def active_devices(self, user_id: str) -> list[tuple[str, str, str]]:
        rows = await self.pool.fetch(
            "select id::text, token, platform from public.fcm_tokens"
            " where user_id = $1 and is_active order by created_at",
            user_id,
        )
        return [(r[0], r[1], r[2]) for r in rows]

    async def deactivate_token(self, token_id: str, reason: str) -> None:
        await self.pool.execute(
            "update public.fcm_tokens set is_active = false, deactivated_reason = $2 where id = $1",
            token_id,
            reason,
        )

    async def total_unread(self, user_id: str) -> int:
        total = await self.pool.fetchval(
            "select coalesce(sum(case when brand_owner_id = $1 then brand_owner_unread_count"
            " else influencer_unread_count end), 0)::int from public.conversations"
            " where $1 in (brand_owner_id, influencer_id)",
            user_id,
        )
        return int(total)
