"""The outbox relay with the LISTEN doorbell: it wakes on commits (not on
the slow poll), survives losing its listening connection, processes what was
committed while it was down, and skips a row it cannot read without losing
the rows behind it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bridge.app import BridgeApp
from bridge.config import OutboxSettings
from bridge.db import acting_as, user_claims
from bridge.outbox.doorbells.listen import APPLICATION_NAME
from tests.support.database import relayed, send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA
from tests.support.harness import Harness, running, settings_for
from tests.support.waits import eventually


@pytest.fixture
async def slow_poll_bridge(db_dsn: str) -> AsyncIterator[Harness]:
    """A bridge whose safety-net poll is a minute: only the doorbell can wake it in time."""
    settings = dataclasses.replace(settings_for(db_dsn), outbox=OutboxSettings(poll_interval=60.0))
    async with running(settings) as harness:
        yield harness


async def test_commit_from_another_client_wakes_the_relay(
    slow_poll_bridge: Harness, db: asyncpg.Connection
) -> None:
    """A message written by supabase-js (here: SQL as Leo) reaches Ava
    through the doorbell long before the next poll."""
    ava = await slow_poll_bridge.client(AVA)
    assert slow_poll_bridge.app.relay is not None
    await slow_poll_bridge.app.relay.idle.wait()
    await send_as(db, LEO, CAMPAIGN_CONVERSATION, "ding")
    got = await ava.wait_for("new_message", timeout=10)
    assert got["message"]["content"] == "ding"


async def test_doorbell_survives_losing_its_connection(
    slow_poll_bridge: Harness, db: asyncpg.Connection
) -> None:
    """The listening connection is killed by the server; the doorbell
    reconnects, looks again, and later commits still wake the relay."""
    ava = await slow_poll_bridge.client(AVA)
    assert slow_poll_bridge.app.relay is not None
    await slow_poll_bridge.app.relay.idle.wait()  # armed
    listening = "select count(*) from pg_stat_activity where application_name = $1"

    async def one_listening() -> bool:
        return bool(await db.fetchval(listening, APPLICATION_NAME) == 1)

    await eventually(one_listening, what="the doorbell listening", interval=0.1)
    killed = await db.fetchval(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = $1",
        APPLICATION_NAME,
    )
    assert killed == 1
    await send_as(db, LEO, CAMPAIGN_CONVERSATION, "after the drop")
    got = await ava.wait_for("new_message", timeout=15)
    assert got["message"]["content"] == "after the drop"


async def test_changes_committed_while_down_are_processed_on_start(db_dsn: str) -> None:
    """Rows committed while no bridge runs are processed when one starts."""
    conn = await asyncpg.connect(db_dsn)
    try:
        await send_as(conn, LEO, CAMPAIGN_CONVERSATION, "while you were away")
        assert await conn.fetchval("select count(*) from bridge.outbox_pending") == 1
        app = BridgeApp(settings_for(db_dsn))
        await app.start()
        try:
            assert app.relay is not None
            await app.relay.idle.wait()
            assert await conn.fetchval("select count(*) from bridge.outbox_pending") == 0
        finally:
            await app.stop()
    finally:
        await conn.close()


async def test_unreadable_row_is_skipped_not_blocking(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """A row with a broken payload is counted and acknowledged; the message
    behind it is delivered."""
    ava = await bridge.client(AVA)
    await db.execute(
        "insert into bridge.outbox (topic, conversation_id, recipients, payload)"
        " values ('message.created', $1, array[$2::uuid], '{\"message\": {}}')",
        CAMPAIGN_CONVERSATION,
        AVA,
    )
    await send_as(db, LEO, CAMPAIGN_CONVERSATION, "behind the broken one")
    got = await ava.wait_for("new_message")
    assert got["message"]["content"] == "behind the broken one"
    assert bridge.app.metrics.snapshot()["changes_untranslatable"] == 1


async def test_busy_bridge_asks_no_notify_and_a_stopped_one_leaves_the_bell_off(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    """An idle bridge arms the doorbell for other writers; while its own
    sockets keep sending, writers are not asked to NOTIFY; once it stops, the
    bell is off, so writers do not NOTIFY a bridge that is gone."""
    app = BridgeApp(settings_for(db_dsn))
    await app.start()
    harness = Harness(app)
    try:
        assert app.relay is not None
        await app.relay.idle.wait()
        assert await db.fetchval("select armed from bridge.doorbell") is True
        leo = await harness.client(LEO)
        ava = await harness.client(AVA)
        armed_while_busy = []
        for i in range(20):
            ack = await leo.call(
                "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": f"m{i}"}
            )
            assert ack["ok"]
            armed_while_busy.append(await db.fetchval("select armed from bridge.doorbell"))
        await ava.wait_count("new_message", 20, timeout=10)
        assert False in armed_while_busy
    finally:
        await harness.stop()
    assert await db.fetchval("select armed from bridge.doorbell") is False


async def test_a_change_committed_after_a_later_one_is_not_skipped(
    bridge: Harness, db: asyncpg.Connection, db_dsn: str
) -> None:
    """Outbox ids are handed out in one order and committed in another: Leo's
    message takes its id first but commits after Mia's, which the relay has
    already delivered. Ava still gets Leo's (the cursor is a snapshot, not
    an id)."""
    ava = await bridge.client(AVA)
    assert bridge.app.relay is not None
    await bridge.app.relay.idle.wait()
    slow = await asyncpg.connect(db_dsn)
    try:
        async with acting_as(slow, user_claims(LEO)):
            await slow.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " values ($1, $2, 'taken first, committed last')",
                CAMPAIGN_CONVERSATION,
                LEO,
            )
            await send_as(db, MIA, DIRECT_CONVERSATION, "taken last, committed first")
            await ava.wait_for("new_message", lambda d: d["conversation_id"] == DIRECT_CONVERSATION)
            # The cursor moves past Mia's once the relay settles (with its
            # next read, or before it sleeps).
            await relayed(db)
        got = await ava.wait_for(
            "new_message", lambda d: d["message"]["content"] == "taken first, committed last", 10
        )
        assert got["conversation_id"] == CAMPAIGN_CONVERSATION
    finally:
        await slow.close()


async def test_a_window_larger_than_a_page_is_relayed_in_order(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    """Ten messages committed in one transaction, pages of three: Ava gets
    all ten, once each, in order, and nothing is left pending."""
    settings = dataclasses.replace(
        settings_for(db_dsn), outbox=OutboxSettings(poll_interval=2.0, batch_size=3)
    )
    async with running(settings) as harness:
        ava = await harness.client(AVA)
        async with acting_as(db, user_claims(LEO)):
            for i in range(10):
                await db.execute(
                    "insert into public.messages (conversation_id, sender_id, content)"
                    " values ($1, $2, $3)",
                    CAMPAIGN_CONVERSATION,
                    LEO,
                    f"window-{i}",
                )
        got = await ava.wait_count("new_message", 10, timeout=10)
        assert [d["message"]["content"] for d in got] == [f"window-{i}" for i in range(10)]
        assert harness.app.relay is not None
        await harness.app.relay.idle.wait()
        assert len(ava.received("new_message")) == 10
    assert await db.fetchval("select count(*) from bridge.outbox_pending") == 0
