"""The Supabase Realtime doorbell with the real `realtime` client against a
protocol-faithful local Realtime driven by real Postgres: it goes live only
on "Replication connection established", and it loses nothing when the
connection drops, errors or is closed, because every resubscribe re-reads
the outbox."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

from bridge.config import DatabaseSettings, OutboxSettings, SupabaseSettings
from bridge.outbox.doorbells.choice import doorbell_choice
from bridge.outbox.doorbells.realtime import RealtimeDoorbell
from tests.support.database import send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import SECRET, Harness, settings_for, token
from tests.support.realtime_env import doorbell, idle, realtime, realtime_bridge
from tests.support.realtime_standin import RealtimeStandIn
from tests.support.waits import eventually

__all__ = ["realtime", "realtime_bridge"]  # fixtures


async def test_realtime_rings_the_relay(
    realtime_bridge: Harness, realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """Once the private channel is live, a message another writer commits
    (as supabase-js would) rings through Broadcast from Database and reaches
    the sockets, though the bridge's own poll is a minute away."""
    bell = doorbell(realtime_bridge)
    await asyncio.wait_for(bell.ready.wait(), 10)
    assert await db.fetchval("select via from bridge.doorbell") == "realtime"
    ava = await realtime_bridge.client(AVA)
    await idle(realtime_bridge, db)
    await send_as(db, LEO, CAMPAIGN_CONVERSATION, "via realtime")
    got = await ava.wait_for("new_message", timeout=10)
    assert got["message"]["content"] == "via realtime"
    assert realtime.delivered >= 1
    assert realtime_bridge.app.metrics.counts["realtime_rings"] >= 1


async def test_not_live_until_the_system_message(
    db_dsn: str, realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """SUBSCRIBED alone is not readiness: with the server's "Replication
    connection established" held back, the doorbell does not count as live."""
    realtime.stall_ready = True
    bell = RealtimeDoorbell(realtime.url, token(AVA, role="service_role"))
    await bell.start()
    try:
        await eventually(lambda: realtime.joins >= 1)
        await asyncio.sleep(0.3)
        assert realtime.joins >= 1 and not bell.ready.is_set()
    finally:
        await bell.stop()


@pytest.mark.parametrize("failure", ["drop", "close", "phx_error", "system_error"])
async def test_nothing_is_lost_when_realtime_fails(
    realtime_bridge: Harness, realtime: RealtimeStandIn, db: asyncpg.Connection, failure: str
) -> None:
    """Messages committed while the Realtime connection is down (so never
    sent by Realtime) still arrive: the supervisor rebuilds the client, and
    the readiness of the new subscription re-reads the outbox."""
    bell = doorbell(realtime_bridge)
    await asyncio.wait_for(bell.ready.wait(), 10)
    ava = await realtime_bridge.client(AVA)
    lost_before = realtime.lost
    fail = {
        "drop": realtime.drop_connections,
        "close": realtime.close_connections,
        "phx_error": realtime.send_phx_error,
        "system_error": realtime.system_error_then_close,
    }[failure]
    for round_ in range(3):
        await fail()
        for n in range(3):
            await send_as(db, LEO, CAMPAIGN_CONVERSATION, f"{failure} {round_}.{n}")
        await asyncio.sleep(0.1)
    expected = {f"{failure} {r}.{n}" for r in range(3) for n in range(3)}
    await eventually(
        lambda: expected <= {d["message"]["content"] for d in ava.received("new_message")}
    )
    assert realtime.lost > lost_before  # Realtime itself really dropped some
    assert bell.rebuilds >= 1


async def test_auto_picks_realtime_behind_the_pooler() -> None:
    """`auto` uses Realtime where LISTEN cannot work (the transaction
    pooler), LISTEN on a direct connection."""
    base = settings_for("postgresql://postgres@db.example.supabase.co:5432/postgres")
    keyed = dataclasses.replace(
        base,
        supabase=SupabaseSettings(
            url="https://x.supabase.co", jwt_secret=SECRET, service_role_key="k"
        ),
    )
    assert doorbell_choice(keyed) == "listen"
    pooled = dataclasses.replace(
        keyed,
        database=DatabaseSettings(
            url="postgresql://postgres.x@aws-0.pooler.supabase.com:6543/postgres"
        ),
    )
    assert doorbell_choice(pooled) == "realtime"
    assert (
        doorbell_choice(dataclasses.replace(pooled, outbox=OutboxSettings(doorbell="listen")))
        == "listen"
    )


@pytest.mark.parametrize("trouble", ["refused", "no_reply", "never_live"])
async def test_supervisor_rebuilds_until_the_subscription_is_live(
    db_dsn: str, realtime: RealtimeStandIn, db: asyncpg.Connection, trouble: str
) -> None:
    """A refused join (error reply), a join nobody answers (TIMED_OUT) and a
    subscription whose replication never becomes ready all lead to a
    rebuild; once Realtime behaves, the bell goes live and rings for what
    was committed meanwhile."""
    setattr(
        realtime,
        {"refused": "refuse_joins", "no_reply": "ignore_joins", "never_live": "stall_ready"}[
            trouble
        ],
        True,
    )
    bell = RealtimeDoorbell(
        realtime.url, token(AVA, role="service_role"), join_timeout=1, ready_timeout=1.0
    )
    await bell.start()
    try:
        await eventually(lambda: bell.rebuilds >= 1)
        assert not bell.ready.is_set()
        await eventually(lambda: bell.health_problem() is not None)  # /healthz: degraded
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "while Realtime misbehaved")
        realtime.refuse_joins = realtime.ignore_joins = realtime.stall_ready = False
        await asyncio.wait_for(bell.ready.wait(), 15)
        assert await bell.wait(1.0)  # it rang on going live
        assert bell.health_problem() is None
    finally:
        await bell.stop()


async def test_channel_token_is_refreshed_before_it_expires(
    realtime: RealtimeStandIn,
) -> None:
    """With minted short-lived tokens (3 s) refreshed every second, the
    channel outlives two token lifetimes without being closed. (`exp` is in
    whole seconds, so a token minted late in a second has a second less:
    one of 2 s may have just over 1 s, no margin for a refresh under load.)"""

    def short_lived() -> str:
        return token("00000000-0000-4000-8000-000000000000", ttl=3, role="service_role")

    bell = RealtimeDoorbell(
        realtime.url, token(AVA, role="service_role"), access_token=short_lived, refresh_every=1.0
    )
    await bell.start()
    try:
        await asyncio.wait_for(bell.ready.wait(), 10)
        await asyncio.sleep(6.5)
        assert realtime.expired_closes == 0 and bell.rebuilds == 0
        assert bell.token_refreshes >= 3 and len(realtime.access_tokens) >= 3
    finally:
        await bell.stop()


async def test_expired_channel_token_is_survived(
    realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """Without refresh the server closes the channel when its token expires
    ("Token has expired"); the supervisor rebuilds with a new token and the
    bell is live again."""

    def short_lived() -> str:
        return token("00000000-0000-4000-8000-000000000000", ttl=2, role="service_role")

    bell = RealtimeDoorbell(realtime.url, token(AVA, role="service_role"), access_token=short_lived)
    await bell.start()
    try:
        await asyncio.wait_for(bell.ready.wait(), 10)
        await eventually(lambda: realtime.expired_closes >= 1 and bell.rebuilds >= 1)
        await asyncio.wait_for(bell.ready.wait(), 10)
    finally:
        await bell.stop()


async def test_postgres_changes_follow_the_publication(
    realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """The stand-in's replication poller, like Realtime's, sends outbox
    INSERTs as postgres_changes only while the table is in supabase_realtime
    (which the migrations no longer do: that path is kept for the bench's
    comparison); until "Subscribed to PostgreSQL" nothing is sent."""
    from realtime import AsyncRealtimeClient, RealtimePostgresChangesListenEvent

    heard: list[object] = []
    live = asyncio.Event()
    client = AsyncRealtimeClient(
        f"{realtime.url}/realtime/v1", token(AVA, role="service_role"), auto_reconnect=False
    )
    try:
        channel = client.channel("outbox-changes")
        channel.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Insert,
            schema="bridge",
            table="outbox",
            callback=heard.append,
        )
        channel.on_system(lambda p: live.set() if "PostgreSQL" in p.message else None)
        await channel.subscribe()
        await asyncio.wait_for(live.wait(), 10)
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "not published")
        last = await db.fetchval("select max(id) from bridge.outbox")
        await eventually(lambda: realtime.polled_up_to >= last)
        assert heard == []
        await db.execute("alter publication supabase_realtime add table bridge.outbox")
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "published")
        await eventually(lambda: len(heard) == 1)
    finally:
        await client.close()
