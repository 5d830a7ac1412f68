"""The SQL of blocks, reports, mutes and quiet hours. Client requests run as
the user (RLS and grants apply as for supabase-js); the bridge's own checks
(whether two users blocked one another) use its own rights."""

from __future__ import annotations

from typing import Any

from bridge.errors import StoreError
from bridge.safety.payloads import Mute, QuietHours, Report
from bridge.store import Store


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


# A quiet_hours row as clients see it (read back, or returned by the write).
_QUIET_HOURS = (
    "to_char(starts_at, 'HH24:MI') s, to_char(ends_at, 'HH24:MI') e, time_zone,"
    " public.quiet_hours_active(starts_at, ends_at, time_zone) active"
)


def _quiet_hours(row: Any) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "start": row["s"],
        "end": row["e"],
        "time_zone": row["time_zone"],
        "active_now": bool(row["active"]),
    }


class SafetyStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- blocks -------------------------------------------------------------------

    async def block(self, user_id: str, other: str) -> dict[str, Any]:
        """Blocks `other` (idempotent); unknown users are `not_found`."""
        if not await self.store.user_exists(other):
            raise StoreError("not_found", "user not found", 404)
        async with self.store.as_user(user_id) as conn:
            row = await conn.fetchrow(
                "insert into public.user_blocks (blocker_id, blocked_id) values ($1, $2)"
                " on conflict do nothing returning created_at",
                user_id,
                other,
            )
            if row is None:
                row = await conn.fetchrow(
                    "select created_at from public.user_blocks"
                    " where blocker_id = $1 and blocked_id = $2",
                    user_id,
                    other,
                )
        assert row is not None
        return {"user_id": other, "created_at": _iso(row["created_at"])}

    async def unblock(self, user_id: str, other: str) -> bool:
        async with self.store.as_user(user_id) as conn:
            status = await conn.execute(
                "delete from public.user_blocks where blocker_id = $1 and blocked_id = $2",
                user_id,
                other,
            )
        return status.endswith(" 1")

    async def blocks(self, user_id: str) -> list[dict[str, Any]]:
        async with self.store.as_user(user_id) as conn:
            rows = await conn.fetch(
                "select blocked_id::text, created_at from public.user_blocks"
                " where blocker_id = $1 order by created_at desc",
                user_id,
            )
        return [{"user_id": r[0], "created_at": _iso(r[1])} for r in rows]

    async def blocked_between(self, a: str, b: str) -> bool:
        return bool(await self.store.pool.fetchval("select bridge.blocked_between($1, $2)", a, b))

    async def visible_partners(self, user_id: str) -> list[str]:
        """Everyone `user_id` has a conversation with, less those either of
        the two blocked: who may see `user_id`'s presence."""
        rows = await self.store.pool.fetch(
            "select distinct c.partner::text from (select case when brand_owner_id = $1"
            " then influencer_id else brand_owner_id end as partner from public.conversations"
            " where $1 in (brand_owner_id, influencer_id)) c"
            " where not exists (select 1 from public.user_blocks b"
            " where (b.blocker_id = $1 and b.blocked_id = c.partner)"
            " or (b.blocker_id = c.partner and b.blocked_id = $1))",
            user_id,
        )
        return [r[0] for r in rows]

    # -- reports ------------------------------------------------------------------

    async def report(self, user_id: str, req: Report) -> str:
        async with self.store.as_user(user_id) as conn:
            report_id = await conn.fetchval(
                "select public.report_content($1, $2, $3, $4)",
                req.reason,
                req.message_id,
                req.user_id,
                req.details,
            )
        return str(report_id)

    # -- mutes and quiet hours ----------------------------------------------------

    async def mute(self, user_id: str, req: Mute) -> dict[str, Any]:
        async with self.store.as_user(user_id) as conn:
            if not await conn.fetchval(
                "select exists (select 1 from public.conversations where id = $1)",
                req.conversation_id,
            ):
                raise StoreError("not_found", "conversation not found", 404)
            row = await conn.fetchrow(
                "insert into public.conversation_mutes (user_id, conversation_id, muted_until)"
                " values ($1, $2, $3) on conflict (user_id, conversation_id)"
                " do update set muted_until = excluded.muted_until, created_at = now()"
                " returning muted_until",
                user_id,
                req.conversation_id,
                req.until,
            )
        assert row is not None
        return {
            "conversation_id": req.conversation_id,
            "muted": True,
            "muted_until": _iso(row["muted_until"]),
        }

    async def unmute(self, user_id: str, conversation_id: str) -> bool:
        async with self.store.as_user(user_id) as conn:
            if not await conn.fetchval(
                "select exists (select 1 from public.conversations where id = $1)",
                conversation_id,
            ):
                raise StoreError("not_found", "conversation not found", 404)
            status = await conn.execute(
                "delete from public.conversation_mutes where user_id = $1 and conversation_id = $2",
                user_id,
                conversation_id,
            )
        return status.endswith(" 1")

    async def set_quiet_hours(self, user_id: str, req: QuietHours | None) -> dict[str, Any] | None:
        """Saves (or with None clears) the user's quiet hours; returns them as
        stored, as `quiet_hours` does."""
        async with self.store.as_user(user_id) as conn:
            if req is None:
                await conn.execute("delete from public.quiet_hours where user_id = $1", user_id)
                return None
            row = await conn.fetchrow(
                "insert into public.quiet_hours (user_id, starts_at, ends_at, time_zone)"
                " values ($1, $2::text::time, $3::text::time, $4) on conflict (user_id) do update"
                " set starts_at = excluded.starts_at, ends_at = excluded.ends_at,"
                " time_zone = excluded.time_zone returning " + _QUIET_HOURS,
                user_id,
                req.start,
                req.end,
                req.time_zone,
            )
        return _quiet_hours(row)

    async def quiet_hours(self, user_id: str) -> dict[str, Any] | None:
        async with self.store.as_user(user_id) as conn:
            row = await conn.fetchrow(
                "select " + _QUIET_HOURS + " from public.quiet_hours where user_id = $1", user_id
            )
        return _quiet_hours(row)
