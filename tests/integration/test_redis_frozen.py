"""Redis stops answering without closing anything (a hung host, a network
black hole: SIGSTOP here), which is worse than Redis gone: a call waits
for an answer that never comes. Sockets must go on connecting and
messages must go on arriving; presence is best effort."""

from __future__ import annotations

import dataclasses
import os
import signal

from bridge.config import RedisSettings
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import chat_entry, running, settings_for
from tests.support.services import OwnRedis
from tests.support.waits import eventually


async def test_a_frozen_redis_holds_up_no_connect_and_no_message(
    db_dsn: str, own_redis: OwnRedis
) -> None:
    """With Redis frozen under a running instance, Leo's new socket still
    connects, his sends are acked and reach Ava's socket, and the failed
    presence update is counted. Once Redis answers again (the frozen
    server then runs what was already sent to it), Ava's chat list shows
    Leo online, and when he leaves she hears he went offline."""
    base = settings_for(db_dsn, redis=RedisSettings(url=own_redis.url))
    settings = dataclasses.replace(
        base, presence=dataclasses.replace(base.presence, instance_ttl=2.0)
    )
    async with running(settings) as bridge:
        ava = await bridge.client(AVA)
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
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
            os.kill(own_redis.proc.pid, signal.SIGCONT)

        async def leo_online() -> bool:
            return bool((await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION))["is_online"])

        await eventually(leo_online, what="Ava's chat list shows Leo online", interval=0.1)
        await leo.close()
        await ava.wait_for(
            "user_status_update",
            lambda d: d.get("user_id") == LEO and d.get("status") == "offline",
            timeout=20,
        )
        assert not (await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION))["is_online"]
