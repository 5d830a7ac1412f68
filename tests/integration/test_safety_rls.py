"""Blocks, reports, mutes and quiet hours as a supabase-js client meets them
(statements as `authenticated` with the user's claims, as PostgREST runs
them), on projects with and without Supabase's default privileges: the
same rules as through the bridge."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.conftest import both_grant_modes
from tests.support.demo import AVA, BID_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA

pytestmark = both_grant_modes


async def as_user(db: asyncpg.Connection, user: str | None, sql: str, *args: Any) -> Any:
    claims = user_claims(user) if user is not None else None
    async with acting_as(db, claims) as conn:
        return await conn.fetch(sql, *args)


async def test_blocks_are_the_blockers_own(db: asyncpg.Connection) -> None:
    """Ava blocks Leo by inserting a row; nobody blocks in someone else's
    name; Leo cannot see or remove the block, and his insert of a message
    into their chat is refused by the database; Ava removes it."""
    await as_user(
        db, AVA, "insert into public.user_blocks (blocker_id, blocked_id) values ($1, $2)", AVA, LEO
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_user(
            db,
            LEO,
            "insert into public.user_blocks (blocker_id, blocked_id) values ($1, $2)",
            AVA,
            MIA,
        )
    assert await as_user(db, LEO, "select * from public.user_blocks") == []
    assert await as_user(db, LEO, "delete from public.user_blocks returning 1") == []
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="blocked"):
        await as_user(
            db,
            LEO,
            "insert into public.messages (conversation_id, sender_id, content)"
            " values ($1, $2, 'x')",
            BID_CONVERSATION,
            LEO,
        )
    # Reading the history still works for both.
    for user in (AVA, LEO):
        assert await as_user(
            db, user, "select 1 from public.messages where conversation_id = $1", BID_CONVERSATION
        )
    assert await as_user(db, AVA, "delete from public.user_blocks returning 1") == [(1,)]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_user(db, None, "select * from public.user_blocks")


async def test_reports_are_written_through_the_function_and_read_by_nobody_but_moderators(
    db: asyncpg.Connection,
) -> None:
    """Leo reports Ava through `rpc('report_content')`; neither he nor Ava
    reads a row of the table or writes it directly, anon cannot report; the
    service role reads it."""
    rows = await as_user(
        db, LEO, "select public.report_content('scam', null, $1, 'fake brand')", AVA
    )
    assert rows[0][0] is not None
    for user in (LEO, AVA):
        assert await as_user(db, user, "select * from public.reports") == []
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await as_user(
                db,
                user,
                "insert into public.reports (reporter_id, reported_user_id, reason)"
                " values ($1, $2, 'spam')",
                LEO,
                AVA,
            )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_user(db, None, "select public.report_content('spam', null, $1)", AVA)
    async with acting_as(db, {"role": "service_role"}) as conn:
        assert len(await conn.fetch("select * from public.reports")) == 1


async def test_mutes_and_quiet_hours_are_each_users_own(db: asyncpg.Connection) -> None:
    """Leo mutes his bid chat and the chat list RPC shows it; he cannot mute
    Ava and Mia's chat, and Ava sees none of his mutes or quiet hours; an
    unknown time zone is refused by the database."""
    await as_user(
        db,
        LEO,
        "insert into public.conversation_mutes (user_id, conversation_id) values ($1, $2)",
        LEO,
        BID_CONVERSATION,
    )
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await as_user(
            db,
            LEO,
            "insert into public.conversation_mutes (user_id, conversation_id) values ($1, $2)",
            LEO,
            DIRECT_CONVERSATION,
        )
    raw = (await as_user(db, LEO, "select public.get_conversations()"))[0][0]
    muted = {c["id"]: c["muted"] for c in json.loads(raw)}
    assert muted[BID_CONVERSATION] is True and not any(
        v for k, v in muted.items() if k != BID_CONVERSATION
    )
    await as_user(
        db,
        LEO,
        "insert into public.quiet_hours (user_id, starts_at, ends_at, time_zone)"
        " values ($1, '22:00', '07:00', 'Europe/Berlin')",
        LEO,
    )
    with pytest.raises(asyncpg.InvalidParameterValueError, match="time zone"):
        await as_user(
            db,
            MIA,
            "insert into public.quiet_hours (user_id, starts_at, ends_at, time_zone)"
            " values ($1, '22:00', '07:00', 'Mars/Olympus')",
            MIA,
        )
    assert await as_user(db, AVA, "select * from public.conversation_mutes") == []
    assert await as_user(db, AVA, "select * from public.quiet_hours") == []
