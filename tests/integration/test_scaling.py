"""Two bridge instances on one database and a real Redis: Socket.IO events
cross instances, one instance relays the outbox at a time, and a standby
takes over when the relaying instance goes away; presence heals after Redis
loses its data, and a killed instance's users are announced offline."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from bridge.app import BridgeApp
from bridge.config import OutboxSettings, RedisSettings
from bridge.db import acting_as, user_claims
from bridge.embedded import free_port
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO, MIA
from tests.support.harness import Client, Harness, settings_for, start_daemon
from tests.support.services import OwnRedis
from tests.support.waits import eventually


async def start(dsn: str, redis_url: str) -> Harness:
    settings = dataclasses.replace(
        settings_for(dsn),
        redis=RedisSettings(url=redis_url),
        outbox=OutboxSettings(poll_interval=0.5),
    )
    app = BridgeApp(settings)
    await app.start()
    return Harness(app)


@pytest.fixture
async def pair(db_dsn: str, redis_url: str) -> AsyncIterator[tuple[Harness, Harness]]:
    """Two instances; Redis emptied first (each test has its own database)."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    first = await start(db_dsn, redis_url)
    second = await start(db_dsn, redis_url)
    try:
        yield first, second
    finally:
        for harness in (first, second):
            await harness.stop()


async def test_events_cross_instances(pair: tuple[Harness, Harness]) -> None:
    """Ava on one instance hears Leo's message and typing sent through the
    other; Mia on either hears nothing of it."""
    one, two = pair
    ava = await one.client(AVA)
    await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
    leo = await two.client(LEO)
    mia = await two.client(MIA)
    await leo.call("typing_start", {"conversationId": CAMPAIGN_CONVERSATION})
    typing = await ava.wait_for("user_typing")
    assert typing["userId"] == LEO
    ack = await leo.call(
        "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "across"}
    )
    new = await ava.wait_for("new_message", lambda d: d["message"]["id"] == ack["message"]["id"])
    assert new["message"]["content"] == "across"
    await leo.wait_for("new_message")
    assert [e for e, _ in mia.events if e != "user_status_update"] == []
    # Exactly one instance relayed the change, and each socket got it once.
    relayed = [h.app.metrics.snapshot().get("changes_in", 0) for h in pair]
    assert sorted(relayed) == [0, 1]
    assert len(ava.received("new_message")) == 1


async def test_standby_takes_over_when_the_relaying_instance_stops(
    pair: tuple[Harness, Harness], db: asyncpg.Connection
) -> None:
    """Stopping the relaying instance hands the outbox to the other one."""
    one, two = pair
    leader, standby = (
        (one, two)
        if one.app.relay and one.app.relay.lease and (one.app.relay.lease.held)
        else (two, one)
    )
    ava = await standby.client(AVA)
    await leader.stop()
    async with acting_as(db, user_claims(LEO)):
        await db.execute(
            "insert into public.messages (conversation_id, sender_id, content)"
            " values ($1, $2, 'after failover')",
            CAMPAIGN_CONVERSATION,
            LEO,
        )
    got = await ava.wait_for("new_message", timeout=10)
    assert got["message"]["content"] == "after failover"
    assert standby.app.relay is not None and standby.app.relay.lease is not None
    assert standby.app.relay.lease.held


def statuses_of(client: Client, user: str) -> list[str]:
    return [d["status"] for d in client.received("user_status_update") if d["user_id"] == user]


async def test_presence_counts_devices_over_instances(pair: tuple[Harness, Harness]) -> None:
    """Leo's phone and laptop sit on different instances: Ava hears "online"
    once, nothing when one device leaves, "offline" once when both have."""
    one, two = pair
    ava = await one.client(AVA)
    phone = await one.client(LEO)
    await ava.wait_for("user_status_update", lambda d: d["user_id"] == LEO)
    laptop = await two.client(LEO)
    await phone.close()
    await asyncio.sleep(1.0)  # longer than the grace period
    assert statuses_of(ava, LEO) == ["online"]
    await laptop.close()
    await ava.wait_for("user_status_update", lambda d: d["status"] == "offline")
    await asyncio.sleep(1.0)
    assert statuses_of(ava, LEO) == ["online", "offline"]


async def test_reconnect_on_another_instance_does_not_flap(
    pair: tuple[Harness, Harness],
) -> None:
    """A device that drops from one instance and comes back on the other
    within the grace period stays "online" for its partners."""
    one, two = pair
    ava = await one.client(AVA)
    leo = await one.client(LEO)
    await ava.wait_for("user_status_update", lambda d: d["user_id"] == LEO)
    await leo.close()
    await two.client(LEO)
    await asyncio.sleep(1.2)
    assert statuses_of(ava, LEO) == ["online"]


async def test_joining_client_sees_partners_online_on_other_instances(
    pair: tuple[Harness, Harness],
) -> None:
    """Ava joins on one instance and learns that Leo, on the other, is online."""
    one, two = pair
    await two.client(LEO)
    ava = await one.client(AVA)
    ack = await ava.call("join", AVA)
    assert ack["onlineUsers"] == [LEO]
    _, body = await one.request("GET", "/api/conversations", AVA)
    online = {c["other_user"]["id"]: c["other_user"]["is_online"] for c in body["conversations"]}
    assert online == {LEO: True, MIA: False}


async def test_presence_heals_after_redis_loses_its_data(
    pair: tuple[Harness, Harness], redis_url: str
) -> None:
    """Redis comes back empty (a restart without persistence) while Ava, on
    one instance, has the campaign conversation open and Leo is on the
    other: within a heartbeat both instances see each other's users online
    again and Ava viewing (so pushes about it stay suppressed)."""
    one, two = pair
    ava = await one.client(AVA)
    assert (await ava.call("join_conversation", CAMPAIGN_CONVERSATION))["ok"]
    await two.client(LEO)
    assert two.app.registry is not None and one.app.registry is not None
    assert (await two.app.registry.statuses([AVA]))[AVA] == "online"
    assert await two.app.registry.is_viewing(AVA, CAMPAIGN_CONVERSATION)
    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    assert (await two.app.registry.statuses([AVA]))[AVA] == "offline"  # the loss is real

    async def restored() -> bool:
        return (
            (await two.app.registry.statuses([AVA]))[AVA] == "online"
            and (await one.app.registry.statuses([LEO]))[LEO] == "online"
            and await two.app.registry.is_viewing(AVA, CAMPAIGN_CONVERSATION)
        )

    await eventually(restored, what="presence restored", interval=0.1)
    assert (await two.app.registry.statuses([AVA]))[AVA] == "online"
    assert (await one.app.registry.statuses([LEO]))[LEO] == "online"
    assert await two.app.registry.is_viewing(AVA, CAMPAIGN_CONVERSATION)


async def test_users_of_a_killed_instance_are_announced_offline(
    db_dsn: str, redis_url: str
) -> None:
    """Ava is connected only to an instance that is SIGKILLed; Leo, on the
    surviving instance, hears she is offline once the dead instance's
    heartbeat has expired (2 s here), and reads her as offline."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    base = settings_for(db_dsn)
    survivor = Harness(
        BridgeApp(
            dataclasses.replace(
                base,
                redis=RedisSettings(url=redis_url),
                presence=dataclasses.replace(base.presence, instance_ttl=2.0),
            )
        )
    )
    await survivor.app.start()
    port = free_port()
    doomed = await start_daemon(
        db_dsn, port, env={"REDIS_URL": redis_url, "BRIDGE_PRESENCE_INSTANCE_TTL": "2"}
    )
    ava = Client(f"http://127.0.0.1:{port}", AVA)
    try:
        leo = await survivor.client(LEO)
        await ava.connect()
        online = await leo.wait_for("user_status_update", lambda d: d["user_id"] == AVA)
        assert online["status"] == "online"
        doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
        gone = await leo.wait_for(
            "user_status_update",
            lambda d: d["user_id"] == AVA and d["status"] == "offline",
            timeout=20,
        )
        assert gone["status"] == "offline"
        assert survivor.app.registry is not None
        assert (await survivor.app.registry.statuses([AVA]))[AVA] == "offline"
    finally:
        await ava.close()
        if doomed.returncode is None:
            doomed.kill()
            await doomed.wait()
        await survivor.stop()


async def test_a_redis_restart_loses_no_delivery(db_dsn: str, own_redis: OwnRedis) -> None:
    """Two instances on a Redis of this test's own. Leo, on the instance that
    relays, sends 150 messages; Redis is SIGKILLed after 50 and started
    again after 100. Ava, on the other instance, gets all 150 on the socket
    she had all along (no reconnect, no sync), each once, in order."""
    one, two = await start(db_dsn, own_redis.url), await start(db_dsn, own_redis.url)
    try:

        def holds(harness: Harness) -> bool:
            relay = harness.app.relay
            return bool(relay and relay.lease and relay.lease.held)

        await eventually(lambda: holds(one) or holds(two), what="an instance holds the lease")
        held = holds(one)
        relaying, other = (one, two) if held else (two, one)
        leo = await relaying.client(LEO)
        ava = await other.client(AVA)
        texts = [f"r{i:03d}" for i in range(150)]
        for i, text in enumerate(texts):
            if i == 50:
                own_redis.kill()
            if i == 100:
                own_redis.restart()
            ack = await leo.call(
                "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": text}
            )
            assert ack["ok"], ack
        got = await ava.wait_count(
            "new_message", 150, lambda d: d["message"]["content"].startswith("r"), timeout=30
        )
        assert [d["message"]["content"] for d in got] == texts
        assert ava.sio.connected
    finally:
        for harness in (one, two):
            await harness.stop()


async def test_a_burst_of_connects_does_not_exhaust_redis(
    pair: tuple[Harness, Harness], caplog: pytest.LogCaptureFixture
) -> None:
    """400 sockets of Leo connect to one instance at once and then all drop
    at once (a reconnect storm after a deploy): every one is admitted,
    presence counts them and then none, and no presence failure is logged
    (redis-py's default pool refuses past 100 connections at once)."""
    one, _ = pair
    clients = [Client(one.url, LEO) for _ in range(400)]
    with caplog.at_level(logging.WARNING):
        try:
            # All 400 are answered by one event loop: on a busy machine the
            # last may wait longer than a single connect's usual 5 s.
            await asyncio.gather(*(c.connect(wait_timeout=60) for c in clients))
            assert all(c.sio.connected for c in clients)
            assert one.app.registry is not None
            assert (await one.app.registry.statuses([LEO]))[LEO] == "online"
        finally:
            await asyncio.gather(*(c.sio.eio.disconnect(abort=True) for c in clients))
        await eventually(
            lambda: not one.app.gateway or not one.app.gateway.sessions, what="every socket gone"
        )
    assert one.app.metrics.snapshot().get("presence_errors", 0) == 0
    assert not [r for r in caplog.records if "presence update" in r.getMessage()]


async def test_a_stopped_instance_leaves_no_subscription_behind(
    db_dsn: str, redis_url: str
) -> None:
    """An instance that had sockets (so python-socketio's Redis manager
    subscribed to the instances' channel) is stopped inside a process that
    goes on, as an embedding app or a test would: Redis no longer counts
    its subscriber, and no task of it is left running."""
    bridge = await start(db_dsn, redis_url)
    redis = aioredis.Redis.from_url(redis_url)
    try:
        ava = await bridge.client(AVA)
        await ava.call("join", {"userId": AVA})
        channel = bridge.app.manager.channel  # type: ignore[union-attr]

        async def subscribers_are(count: int) -> bool:
            ((_, now),) = await redis.pubsub_numsub(channel)
            return bool(now == count)

        await eventually(lambda: subscribers_are(1), what="the instance subscribed")
        await bridge.stop()
        await eventually(lambda: subscribers_are(0), what="its subscription gone")
        left = [t for t in asyncio.all_tasks() if "PubSubManager" in repr(t.get_coro())]
        assert left == []
    finally:
        await redis.aclose()
        await bridge.stop()
