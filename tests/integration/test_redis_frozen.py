"""Redis stops answering without closing anything (a hung host, a network
black hole: SIGSTOP here), which is worse than Redis gone: a call waits
for an answer that never comes. Sockets must go on connecting and
messages must go on arriving; presence is best effort."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
from pathlib import Path

from bridge.config import RedisSettings
from bridge.embedded import free_port
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import chat_entry, running, settings_for
from tests.support.services import start_redis


async def test_a_frozen_redis_holds_up_no_connect_and_no_message(
    db_dsn: str, tmp_path: Path
) -> None:
    """With Redis frozen under a running instance, Leo's new socket still
    connects, his sends are acked and reach Ava's socket, and the failed
    presence update is counted. Once Redis answers again (the frozen
    server then runs what was already sent to it), Ava's chat list shows
    Leo online, and when he leaves she hears he went offline."""
    port = free_port()
    redis = start_redis(port, tmp_path)
    base = settings_for(db_dsn, redis=RedisSettings(url=f"redis://127.0.0.1:{port}/0"))
    settings = dataclasses.replace(
        base, presence=dataclasses.replace(base.presence, instance_ttl=2.0)
    )
    try:
        async with running(settings) as bridge:
            ava = await bridge.client(AVA)
            os.kill(redis.pid, signal.SIGSTOP)
            try:
                leo = await bridge.client(LEO)
                for i in range(3):
                    ack = await leo.call(
                        "send_message",
                        {"conversationId": CAMPAIGN_CONVERSATION, "message": f"frozen {i}"},
                    )
                    assert ack["ok"], ack
                got = await ava.wait_count(
                    "new_message",
                    3,
                    where=lambda d: str(d["message"]["content"]).startswith("frozen"),
                )
                assert [d["message"]["content"] for d in got] == [f"frozen {i}" for i in range(3)]
                assert bridge.app.metrics.snapshot().get("presence_errors", 0) >= 1
            finally:
                os.kill(redis.pid, signal.SIGCONT)
            for _ in range(100):
                if (await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION))["is_online"]:
                    break
                await asyncio.sleep(0.1)
            assert (await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION))["is_online"]
            await leo.close()
            await ava.wait_for(
                "user_status_update",
                lambda d: d.get("user_id") == LEO and d.get("status") == "offline",
                timeout=20,
            )
            assert not (await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION))["is_online"]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(redis.pid, signal.SIGCONT)
        redis.kill()
        redis.wait(10)
