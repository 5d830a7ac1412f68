"""The SQL of push jobs (bridge.push_jobs): enqueue inside the relay's
transaction, claim with a short lease (one job in flight per person and
conversation), renew the lease while sending, finish; and the device tokens
they go to."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from bridge.db import Connection
from bridge.push.message import string_data
from bridge.translate import PushIntent

log = logging.getLogger(__name__)

_JOB_COLUMNS = "id, user_id::text, conversation_id::text, kind, title, body, data, merged, attempts"


@dataclass(frozen=True)
class PushJob:
    """One claimed job. `attempts` counts its claims and fences this one: a
    renewal or finish by an instance whose lease was taken over changes
    nothing."""

    id: int
    user_id: str
    conversation_id: str
    kind: str
    title: str
    body: str
    data: dict[str, str]
    merged: int
    attempts: int

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> PushJob:
        return cls(**dict(row))


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
        if intent.kind == "retract":
            await PushQueue.retract(conn, intent, outbox_id, cooldown)
            return
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
            string_data(dict(intent.data)),
            outbox_id,
            cooldown,
        )

    @staticmethod
    async def retract(
        conn: Connection, intent: PushIntent, outbox_id: int, cooldown: float
    ) -> None:
        """A message was unsent before its receiver read it. A push about it
        not sent yet is withdrawn (or, standing for several messages, now
        speaks of the one before); one already on the device, the last push
        about the conversation, is replaced by a new one with the same
        Android tag, APNs collapse id and web push Topic (bridge/push/fcm.py),
        showing the latest message still unread or that it was unsent, with
        the badge recounted when it is sent. A replayed row changes nothing
        twice: the pending job no longer names the message, and the
        replacement is at most one pending job."""
        unsent = intent.data["unsent_message_id"]
        pending = await conn.fetchrow(
            "select id, merged from bridge.push_jobs where user_id = $1 and conversation_id = $2"
            " and status = 'pending' and kind = 'message' and data->>'message_id' = $3"
            " and data->>'unsent_message_id' is distinct from $3 for update",
            intent.user_id,
            intent.conversation_id,
            unsent,
        )
        if pending is not None:
            if pending["merged"] <= 1 or intent.data.get("type") != "new_message":
                await conn.execute("delete from bridge.push_jobs where id = $1", pending["id"])
            else:
                await conn.execute(
                    "update bridge.push_jobs set title = $2, body = $3, data = $4::jsonb,"
                    " merged = merged - 1 where id = $1",
                    pending["id"],
                    intent.title,
                    intent.body,
                    string_data(dict(intent.data)),
                )
            return
        shown = await conn.fetchrow(
            "select data->>'message_id' as shows, data->>'unsent_message_id' as replaces"
            " from bridge.push_jobs where user_id = $1 and conversation_id = $2"
            " and status in ('sending', 'sent') order by id desc limit 1",
            intent.user_id,
            intent.conversation_id,
        )
        if shown is None or shown["shows"] != unsent or shown["replaces"] == unsent:
            return  # never pushed, a later push took its place, or already replaced
        await conn.execute(
            """
            insert into bridge.push_jobs
              (user_id, conversation_id, kind, title, body, data,
               first_outbox_id, last_outbox_id, not_before)
            values ($1, $2, 'message', $3, $4, $5::jsonb, $6, $6,
              greatest(now(), coalesce((select p.last_sent_at + make_interval(secs => $7)
                from bridge.push_pairs p where p.user_id = $1 and p.conversation_id = $2),
                now())))
            on conflict (user_id, conversation_id, kind) where status = 'pending' do nothing
            """,
            intent.user_id,
            intent.conversation_id,
            intent.title,
            intent.body,
            string_data(dict(intent.data)),
            outbox_id,
            cooldown,
        )

    async def claim(
        self, limit: int, lease_seconds: float, cooldown: float, sending: Sequence[int] = ()
    ) -> list[PushJob]:
        """Jobs whose sender's lease ran out (it died mid-send), then due jobs
        of pairs (person, conversation) with nothing in flight and no push
        within the cooldown; at most one job per pair. Never one of
        `sending`, the jobs this instance is itself sending: a lease that ran
        out under them only means their heartbeat was late (a stalled loop),
        and the next renewal keeps them."""
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    """
                    select j.id, j.user_id, j.conversation_id from bridge.push_jobs j
                    left join bridge.push_pairs p
                      on p.user_id = j.user_id and p.conversation_id = j.conversation_id
                    where (j.status = 'sending' and j.lease_until < now()
                           and j.id <> all($3::bigint[]))
                       or (j.status = 'pending' and j.not_before <= now()
                           and (p.last_sent_at is null
                                or p.last_sent_at + make_interval(secs => $2) <= now())
                           and not exists (select 1 from bridge.push_jobs s
                             where s.status = 'sending' and s.user_id = j.user_id
                               and s.conversation_id = j.conversation_id))
                    order by j.not_before limit $1 for update of j skip locked
                    """,
                    limit,
                    cooldown,
                    list(sending),
                )
                pairs: dict[tuple[str, str], int] = {}
                for row in rows:
                    pairs.setdefault((row["user_id"], row["conversation_id"]), row["id"])
                if not pairs:
                    return []
                claimed = await conn.fetch(
                    "update bridge.push_jobs set status = 'sending', attempts = attempts + 1,"
                    " lease_until = now() + make_interval(secs => $2)"
                    f" where id = any($1::bigint[]) returning {_JOB_COLUMNS}",
                    list(pairs.values()),
                    lease_seconds,
                )
        except asyncpg.UniqueViolationError:
            # Another instance claimed a job of the same pair at the same moment.
            log.info("push claim raced another instance; claiming again")
            return []
        return [PushJob.from_row(row) for row in claimed]

    async def renew(self, claims: dict[int, int], lease_seconds: float) -> set[int]:
        """Extends the leases of the jobs this instance is sending (job id ->
        its claim's attempts); returns the ids still ours."""
        rows = await self.pool.fetch(
            "update bridge.push_jobs j set lease_until = now() + make_interval(secs => $3)"
            " from unnest($1::bigint[], $2::int[]) c (id, attempts)"
            " where j.id = c.id and j.attempts = c.attempts and j.status = 'sending'"
            " returning j.id",
            list(claims),
            list(claims.values()),
            lease_seconds,
        )
        return {row["id"] for row in rows}

    async def release(self, claims: dict[int, int]) -> None:
        """Lets the leases of jobs this instance gives up run out now."""
        await self.pool.execute(
            "update bridge.push_jobs j set lease_until = now()"
            " from unnest($1::bigint[], $2::int[]) c (id, attempts)"
            " where j.id = c.id and j.attempts = c.attempts and j.status = 'sending'",
            list(claims),
            list(claims.values()),
        )

    async def finish(self, job: PushJob, status: str, error: str | None) -> bool:
        """Records the outcome; False (and nothing changed) if another
        instance took the job over meanwhile. The cooldown of the pair
        counts from here, when a push was sent."""
        async with self.pool.acquire() as conn, conn.transaction():
            done = await conn.fetchval(
                "update bridge.push_jobs set status = $2, last_error = $3, lease_until = null,"
                " sent_at = case when $2 = 'sent' then now() end"
                " where id = $1 and attempts = $4 and status = 'sending' returning true",
                job.id,
                status,
                error,
                job.attempts,
            )
            if done and status == "sent":
                await conn.execute(
                    "insert into bridge.push_pairs (user_id, conversation_id, last_sent_at)"
                    " values ($1, $2, now()) on conflict (user_id, conversation_id)"
                    " do update set last_sent_at = excluded.last_sent_at",
                    job.user_id,
                    job.conversation_id,
                )
        return bool(done)

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
