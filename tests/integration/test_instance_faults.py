"""Two instances behind one load balancer, each with sockets of both
participants, counting every delivery per socket through the faults an
operator meets: kill -9 of the instance that holds the relay lease, kill -9
of the other one, and the database away for 10 s. Nothing committed is
lost; a socket that stayed up gets every message once and in order; a
socket that was cut gets the rest through `sync` (duplicates only as the
README allows, keyed by event_id); presence is right afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal

import aiohttp
import asyncpg
import pytest
import redis.asyncio as aioredis

from bridge.app import BridgeApp
from bridge.config import OutboxSettings, RedisSettings
from bridge.embedded import EmbeddedPostgres, free_port
from tests.support.database import lease_holders, send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import (
    Client,
    Harness,
    ReconnectingClient,
    settings_for,
    start_daemon,
    token,
)
from tests.support.waits import eventually

MESSAGES = 240


async def chat_list_online(url: str, user: str, partner: str) -> bool:
    """Whether `user`'s chat list, read over REST, shows `partner` online."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{url}/api/conversations", headers={"Authorization": f"Bearer {token(user)}"}
        ) as resp,
    ):
        body = await resp.json()
    return any(
        c["other_user"] and c["other_user"]["id"] == partner and c["other_user"]["is_online"]
        for c in body["conversations"]
    )


@pytest.mark.parametrize("victim", ["lease holder", "other instance"])
async def test_kill_9_of_one_of_two_instances_loses_nothing(
    db_dsn: str, db: asyncpg.Connection, redis_url: str, victim: str
) -> None:
    """Ava and Leo each have a socket on both instances. 240 messages are
    committed through supabase-js-style writes; after 80 one instance (the
    lease holder, or the other one) is SIGKILLed, after 160 it is started
    again on its port. The sockets on the survivor never drop and get all
    240 in order, each once; the sockets on the killed instance reconnect,
    `sync`, and end with all 240; the survivor takes (or keeps) the lease,
    the stored cursor catches up, and each side's chat list shows the other
    online."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    env = {"REDIS_URL": redis_url, "BRIDGE_PRESENCE_INSTANCE_TTL": "2"}
    first_port, second_port = free_port(), free_port()
    first = await start_daemon(db_dsn, first_port, env=env)

    async def first_holds() -> bool:
        return await lease_holders(db) == 1

    await eventually(first_holds, what="the first instance holds the lease")
    second = await start_daemon(db_dsn, second_port, env=env)
    procs = {first_port: first, second_port: second}
    doomed_port = first_port if victim == "lease holder" else second_port
    survivor_port = second_port if doomed_port == first_port else first_port
    sockets = {
        (user, port): ReconnectingClient(f"http://127.0.0.1:{port}", user)
        for user in (AVA, LEO)
        for port in (first_port, second_port)
    }
    try:
        for sock in sockets.values():
            await sock.start()
        texts = [f"k{i:03d}" for i in range(MESSAGES)]
        for i, text in enumerate(texts):
            if i == MESSAGES // 3:
                procs[doomed_port].send_signal(signal.SIGKILL)
                await procs[doomed_port].wait()
            if i == 2 * MESSAGES // 3:
                procs[doomed_port] = await start_daemon(db_dsn, doomed_port, env=env)
            await send_as(db, AVA if i % 2 else LEO, CAMPAIGN_CONVERSATION, text)

        async def all_delivered() -> bool:
            return all(len(s.messages) >= MESSAGES for s in sockets.values())

        await eventually(all_delivered, what="all 240 delivered to every socket")
        for (_, port), sock in sockets.items():
            if port == survivor_port:
                assert sock.connects == 1, "a socket on the survivor was cut"
                assert sock.messages == texts
                assert sock.duplicates == 0
            else:
                assert sock.connects == 2 and sock.resyncs == 0
                assert sorted(sock.messages) == texts
                assert len(set(sock.messages)) == MESSAGES

        async def cursor_caught_up() -> bool:
            pending: int = await db.fetchval("select count(*) from bridge.outbox_pending")
            return pending == 0 and await lease_holders(db) == 1

        await eventually(cursor_caught_up, what="the cursor caught up")
        for port in (first_port, second_port):
            url = f"http://127.0.0.1:{port}"
            assert await chat_list_online(url, AVA, LEO)
            assert await chat_list_online(url, LEO, AVA)
    finally:
        for sock in sockets.values():
            with contextlib.suppress(Exception):
                await sock.close()
        for proc in procs.values():
            if proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 20)


async def send_until_stored(leo: Client, text: str) -> int:
    """What the seed's client does with a retryable error: send again with
    the same clientMessageId until the bridge says it is stored. Returns how
    many `unavailable` answers it took."""
    refusals = 0
    while True:
        ack = await leo.call(
            "send_message",
            {"conversationId": CAMPAIGN_CONVERSATION, "message": text, "clientMessageId": text},
        )
        if ack["ok"]:
            return refusals
        assert ack["error"]["code"] == "unavailable" and ack["error"]["retryable"], ack
        refusals += 1
        await asyncio.sleep(0.25)


async def test_ten_second_outage_with_two_instances(
    own_cluster: EmbeddedPostgres, redis_url: str
) -> None:
    """Ava has a socket on each of two instances, Leo sends on one of them.
    Postgres stops for 10 s after the 20th of 60 messages; Leo's client
    retries each refused send with its clientMessageId. Afterwards both
    instances are healthy, every message is stored once, and both of Ava's
    sockets (which stayed up) got all 60 once, in order."""
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    base = dataclasses.replace(
        settings_for(own_cluster.dsn),
        redis=RedisSettings(url=redis_url),
        outbox=OutboxSettings(poll_interval=0.5),
    )
    harnesses = []
    for _ in range(2):
        app = BridgeApp(base)
        await app.start()
        harnesses.append(Harness(app))
    one, two = harnesses
    try:
        avas = [await one.client(AVA), await two.client(AVA)]
        leo = await two.client(LEO)
        texts = [f"o{i:02d}" for i in range(60)]
        refusals = 0

        down = asyncio.Event()

        async def outage() -> None:
            await asyncio.to_thread(own_cluster.stop)
            down.set()
            await asyncio.sleep(10)
            await asyncio.to_thread(own_cluster.start)

        for i, text in enumerate(texts):
            if i == 20:
                restarted = asyncio.create_task(outage())
                await asyncio.wait_for(down.wait(), 30)  # the next send meets the outage
            refusals += await send_until_stored(leo, text)
        await restarted
        assert refusals > 0, "the outage was not seen"
        for ava in avas:
            got = await ava.wait_count(
                "new_message", 60, lambda d: d["message"]["content"].startswith("o"), timeout=30
            )
            assert [d["message"]["content"] for d in got] == texts
            assert ava.sio.connected
        for harness in harnesses:
            status, health = await harness.request("GET", "/healthz")
            assert status == 200 and health["status"] == "ok", health
        conn = await asyncpg.connect(own_cluster.dsn)
        try:
            stored = await conn.fetchval(
                "select count(*) from public.messages where content like 'o%'"
            )
        finally:
            await conn.close()
        assert stored == 60
    finally:
        for harness in harnesses:
            await harness.stop()
