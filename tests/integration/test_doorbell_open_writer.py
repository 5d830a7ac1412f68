"""A writer transaction left open (a supabase-js client in a long
transaction, or a stuck one) holds up nobody: the relay arms the doorbell
without waiting for it, other writers' messages reach their sockets while it
stays open, and its own message goes out once it commits, exactly once.

The bridge's poll is a minute in these tests, so every delivery they wait
for came through the doorbell or the relay's own looking-again while the
bell could not be sealed, never through the safety-net poll."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from asyncpg.transaction import Transaction

from bridge.config import OutboxSettings, Settings
from bridge.db import user_claims
from tests.support.database import send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA
from tests.support.harness import Client, Harness, running, settings_for, socket_send
from tests.support.services import connected
from tests.support.waits import eventually

# Guards against a hang only (the old arming stalled every writer behind an
# open one for good); nothing here asserts how fast anything is.
GUARD = 20.0
HELD = "written in a transaction held open"


def slow_poll(db_dsn: str) -> Settings:
    return settings_for(db_dsn, outbox=OutboxSettings(poll_interval=60.0))


@pytest.fixture
async def held(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """The connection of Leo's client, which keeps its transaction open."""
    async with connected(db_dsn) as conn:
        yield conn


async def write_and_hold(conn: asyncpg.Connection) -> Transaction:
    """Leo's message written under RLS, as supabase-js would, in a
    transaction left open; returns it."""
    transaction = conn.transaction()
    await transaction.start()
    await conn.execute(
        "select set_config('role', 'authenticated', true),"
        " set_config('request.jwt.claims', $1, true)",
        json.dumps(user_claims(LEO)),
    )
    await conn.execute(
        "insert into public.messages (conversation_id, sender_id, content) values ($1, $2, $3)",
        CAMPAIGN_CONVERSATION,
        LEO,
        HELD,
    )
    return transaction


def content_is(text: str) -> Callable[[Any], bool]:
    return lambda d: bool(d["message"]["content"] == text)


async def others_get_through(ava: Client, db: asyncpg.Connection, label: str) -> None:
    """Mia writes three messages from another connection, one after the
    other; each commits and reaches Ava's socket."""
    for i in range(3):
        text = f"{label} {i}"
        await asyncio.wait_for(send_as(db, MIA, DIRECT_CONVERSATION, text), GUARD)
        await ava.wait_for("new_message", content_is(text), GUARD)


async def arming_found_the_writer_open(harness: Harness) -> None:
    """Waits until the relay has armed the bell while Leo's transaction was
    open (and could not seal it): what follows is read with that arming."""
    await eventually(
        lambda: harness.app.metrics.snapshot().get("doorbell_unsealed"),
        timeout=GUARD,
        what="the relay armed",
        interval=0.01,
    )


async def held_delivered_once(harness: Harness, ava: Client, db: asyncpg.Connection) -> None:
    """Leo's message reaches Ava, once: counted after the relay has gone
    idle on a sealed bell and a later message has come through behind it."""
    await ava.wait_for("new_message", content_is(HELD), GUARD)
    relay = harness.app.relay
    assert relay is not None
    await asyncio.wait_for(relay.idle.wait(), GUARD)
    await others_get_through(ava, db, "afterwards")
    assert len([d for d in ava.received("new_message") if content_is(HELD)(d)]) == 1


async def test_a_writer_open_before_the_bridge_arms_holds_up_nobody(
    db_dsn: str, db: asyncpg.Connection, held: asyncpg.Connection
) -> None:
    """Leo's client writes a message while no bridge runs (the bell is off:
    his commit will ring nobody) and keeps its transaction open. A bridge
    starts and arms the bell meanwhile; Mia's messages, written by another
    connection, reach Ava while Leo's transaction is still open. Once Leo
    commits, his message reaches Ava too (the relay keeps looking while it
    cannot seal the bell), exactly once."""
    assert await db.fetchval("select armed from bridge.doorbell") is False
    transaction = await write_and_hold(held)
    try:
        async with running(slow_poll(db_dsn)) as harness:
            ava = await harness.client(AVA)
            await arming_found_the_writer_open(harness)
            await others_get_through(ava, db, "meanwhile")
            assert not [d for d in ava.received("new_message") if content_is(HELD)(d)]
            await transaction.commit()
            await held_delivered_once(harness, ava, db)
    finally:
        if held.is_in_transaction():
            await transaction.rollback()


async def test_a_writer_open_while_the_bridge_goes_idle_holds_up_nobody(
    db_dsn: str, db: asyncpg.Connection, held: asyncpg.Connection
) -> None:
    """The bridge sleeps on an armed bell; Leo's client writes a message in
    a transaction it keeps open. Ava then sends over her socket: the bridge,
    busy with its own write, disarms the bell, and arms it again once idle,
    while Leo's transaction is still open. Mia's messages, written by
    another connection before and after that arming, each reach Ava before
    Leo commits. Then Leo's message reaches Ava, exactly once."""
    async with running(slow_poll(db_dsn)) as harness:
        ava = await harness.client(AVA)
        relay = harness.app.relay
        assert relay is not None
        await asyncio.wait_for(relay.idle.wait(), GUARD)
        transaction = await write_and_hold(held)
        try:
            await others_get_through(ava, db, "meanwhile")
            await socket_send(ava, "Ava's own", DIRECT_CONVERSATION)
            await arming_found_the_writer_open(harness)
            await others_get_through(ava, db, "while the bell is not sealed")
            assert not [d for d in ava.received("new_message") if content_is(HELD)(d)]
            await transaction.commit()
        finally:
            if held.is_in_transaction():
                await transaction.rollback()
        await held_delivered_once(harness, ava, db)
