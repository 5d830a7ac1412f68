"""Fixtures for the Realtime doorbell tests: the stand-in on the test
database, and a bridge rung only by it."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bridge.config import OutboxSettings, Settings
from bridge.outbox.doorbells.realtime import RealtimeDoorbell
from tests.support.harness import SECRET, Harness, running, settings_for, token
from tests.support.realtime_standin import RealtimeStandIn
from tests.support.waits import eventually

SERVICE_KEY = token("00000000-0000-4000-8000-000000000000", role="service_role")


@pytest.fixture
async def realtime(db_dsn: str) -> AsyncIterator[RealtimeStandIn]:
    standin = RealtimeStandIn(db_dsn, SECRET)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


def realtime_settings(
    db_dsn: str, url: str, *, key: str = SERVICE_KEY, poll_interval: float = 60.0
) -> Settings:
    """Rung by Realtime only: the safety-net poll is a minute unless said."""
    base = settings_for(db_dsn)
    return dataclasses.replace(
        base,
        supabase=dataclasses.replace(base.supabase, url=url, service_role_key=key),
        outbox=OutboxSettings(doorbell="realtime", poll_interval=poll_interval),
    )


@pytest.fixture
async def realtime_bridge(db_dsn: str, realtime: RealtimeStandIn) -> AsyncIterator[Harness]:
    async with running(realtime_settings(db_dsn, realtime.url)) as harness:
        yield harness


def doorbell(harness: Harness) -> RealtimeDoorbell:
    bell = harness.app.doorbell
    assert isinstance(bell, RealtimeDoorbell)
    return bell


async def idle(harness: Harness, db: asyncpg.Connection) -> None:
    """Until the relay sleeps with the bell armed: the next write rings."""
    relay = harness.app.relay
    assert relay is not None

    async def asleep() -> bool:
        if relay.idle.is_set() and await db.fetchval("select armed from bridge.doorbell"):
            await asyncio.sleep(0.05)
            return relay.idle.is_set()
        return False

    await eventually(asleep, what="the relay asleep with the bell armed")
