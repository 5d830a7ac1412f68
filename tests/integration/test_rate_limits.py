"""Rate and connection limits with real clients: token buckets per user and
per socket, 429 over REST, the cap on sockets per user, limits shared over
instances through a real Redis, and per-instance limits while Redis is away."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis
import socketio

from bridge.config import LimitsSettings, RedisSettings
from tests.support.database import count_messages
from tests.support.demo import AVA, BID_CONVERSATION, DIRECT_CONVERSATION, LEO
from tests.support.harness import Harness, running, send_payload, settings_for, started, token
from tests.support.services import OwnRedis
from tests.support.waits import eventually

# One token per 20 s after a burst of 3: nothing refills during a test, even
# on a loaded machine.
SLOW = LimitsSettings(send_rate=0.05, send_burst=3, read_rate=0.05, read_burst=2)


@pytest.fixture
async def limited(db_dsn: str) -> AsyncIterator[Harness]:
    async with running(settings_for(db_dsn, limits=SLOW)) as harness:
        yield harness


async def test_sends_over_the_limit_are_refused_and_not_written(
    limited: Harness, db: asyncpg.Connection
) -> None:
    """Leo sends a burst of 3 and a fourth at once: the fourth is acked
    `rate_limited` with `retry_after` and is not stored, as a no-ack send
    gets `bridge_error`; Ava, sending meanwhile, is not held back."""
    leo = await limited.client(LEO)
    ava = await limited.client(AVA)
    for i in range(3):
        ack = await leo.call("send_message", send_payload(BID_CONVERSATION, f"leo burst {i}"))
        assert ack["ok"], ack
    ack = await leo.call("send_message", send_payload(BID_CONVERSATION, "leo over"))
    assert ack["ok"] is False
    assert ack["error"]["code"] == "rate_limited"
    assert ack["error"]["retryable"] is True
    assert 0 < ack["error"]["retry_after"] <= 20
    await leo.sio.emit("send_message", send_payload(BID_CONVERSATION, "leo over, no ack"))
    refusal = await leo.wait_for("bridge_error")
    assert refusal["event"] == "send_message" and refusal["code"] == "rate_limited"
    assert await count_messages(db, "leo over") == 0
    assert await count_messages(db, "leo over, no ack") == 0
    ack = await ava.call("send_message", send_payload(DIRECT_CONVERSATION, "ava unaffected"))
    assert ack["ok"], ack
    # Other kinds have buckets of their own: typing still goes through.
    ack = await leo.call("typing_start", {"conversationId": BID_CONVERSATION})
    assert ack["ok"], ack


async def test_rest_shares_the_users_bucket_and_answers_429(
    limited: Harness, db: asyncpg.Connection
) -> None:
    """Sends over the socket and over REST take from one bucket per user:
    after two socket sends and one REST send, the next REST send is 429
    `rate_limited` with a Retry-After header in whole seconds, and nothing
    is written; so is a second socket of the same user."""
    leo = await limited.client(LEO)
    for i in range(2):
        assert (await leo.call("send_message", send_payload(BID_CONVERSATION, f"sock {i}")))["ok"]
    body = {"conversation_id": BID_CONVERSATION, "message": "rest ok"}
    status, _ = await limited.request("POST", "/api/messages/send", LEO, json=body)
    assert status == 201
    headers = {"Authorization": f"Bearer {token(LEO)}"}
    body = {"conversation_id": BID_CONVERSATION, "message": "rest over"}
    async with limited.http.post(
        limited.url + "/api/messages/send", json=body, headers=headers
    ) as resp:
        assert resp.status == 429
        assert 1 <= int(resp.headers["Retry-After"]) <= 20
        error = (await resp.json())["error"]
    assert error["code"] == "rate_limited" and error["retry_after"] > 0
    other_device = await limited.client(LEO)
    ack = await other_device.call("send_message", send_payload(BID_CONVERSATION, "rest over"))
    assert ack["error"]["code"] == "rate_limited"
    assert await count_messages(db, "rest over") == 0
    # mark-seen is a kind of its own (2 at once here).
    for _ in range(2):
        status, _ = await limited.request(
            "POST", "/api/messages/mark-seen", AVA, json={"conversation_id": BID_CONVERSATION}
        )
        assert status == 200
    status, answer = await limited.request(
        "POST", "/api/messages/mark-seen", AVA, json={"conversation_id": BID_CONVERSATION}
    )
    assert status == 429 and answer["error"]["code"] == "rate_limited"


async def test_a_socket_over_the_cap_is_refused_with_a_reason(db_dsn: str) -> None:
    """With at most 2 sockets per user, Leo's third connection is refused
    (`too_many_connections`) while his two keep working and Ava connects;
    once one of his closes, a new one is let in."""
    settings = settings_for(db_dsn, limits=dataclasses.replace(SLOW, max_sockets_per_user=2))
    async with running(settings) as bridge:
        first = await bridge.client(LEO)
        await bridge.client(LEO)
        third = bridge.unconnected()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await third.connect(auth={"token": token(LEO)})
        assert third.connect_errors[-1]["data"]["code"] == "too_many_connections"
        assert (await first.call("join", LEO))["ok"]
        await bridge.client(AVA)
        await first.close()
        gateway = bridge.app.gateway
        assert gateway is not None
        # The server sees the disconnect a moment later.
        await eventually(lambda: gateway.presence.connections(LEO) < 2, what="the close seen")
        again = await bridge.client(LEO)
        assert (await again.call("join", LEO))["ok"]


async def test_the_users_bucket_holds_across_instances(
    db_dsn: str, redis_url: str, db: asyncpg.Connection
) -> None:
    """Two instances sharing Redis: Leo's burst of 3 is spent on the first,
    so his send on the second is refused and not written."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    settings = settings_for(db_dsn, limits=SLOW, redis=RedisSettings(url=redis_url))
    first, second = await started(settings), await started(settings)
    try:
        on_first = await first.client(LEO)
        on_second = await second.client(LEO)
        for i in range(2):
            ack = await on_first.call("send_message", send_payload(BID_CONVERSATION, f"a {i}"))
            assert ack["ok"], ack
        assert (await on_second.call("send_message", send_payload(BID_CONVERSATION, "b 0")))["ok"]
        ack = await on_second.call("send_message", send_payload(BID_CONVERSATION, "b over"))
        assert ack["error"]["code"] == "rate_limited"
        assert await count_messages(db, "b over") == 0
    finally:
        await first.stop()
        await second.stop()


async def test_with_redis_down_limits_hold_per_instance(
    db_dsn: str, db: asyncpg.Connection, own_redis: OwnRedis
) -> None:
    """Redis goes away under a running instance: nobody is refused for it,
    sends go on, and the limit holds per instance (a burst of 3, then
    `rate_limited`, nothing written)."""
    settings = settings_for(db_dsn, limits=SLOW, redis=RedisSettings(url=own_redis.url))
    async with running(settings) as bridge:
        leo = await bridge.client(LEO)
        own_redis.kill()
        for i in range(3):
            ack = await leo.call("send_message", send_payload(BID_CONVERSATION, f"no redis {i}"))
            assert ack["ok"], ack
        ack = await leo.call("send_message", send_payload(BID_CONVERSATION, "no redis over"))
        assert ack["error"]["code"] == "rate_limited"
        assert await count_messages(db, "no redis over") == 0
        assert await count_messages(db, "no redis 2") == 1
        assert bridge.app.metrics.snapshot()["rate_limit_fallbacks"] >= 1
