"""kill -9 of the daemon in the middle of traffic: the next daemon delivers
everything that was committed, and reconnecting clients that `sync` from
the last event they saw end up with every message, each once."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import asyncpg

from bridge.embedded import free_port
from tests.support.database import send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import ReconnectingClient, start_daemon
from tests.support.waits import eventually


async def test_kill_9_mid_traffic_loses_nothing(db_dsn: str, db: asyncpg.Connection) -> None:
    """300 messages; the daemon is SIGKILLed after 100 and restarted after
    200; both participants end with all 300, none twice."""
    port = free_port()
    first = await start_daemon(db_dsn, port)
    clients = [ReconnectingClient(f"http://127.0.0.1:{port}", u) for u in (AVA, LEO)]
    second = None
    try:
        for client in clients:
            await client.start()
        texts = [f"n{i:03d}" for i in range(300)]
        for i, text in enumerate(texts):
            if i == 100:
                first.send_signal(signal.SIGKILL)
                await first.wait()
            if i == 200:
                second = await start_daemon(db_dsn, port)
            await send_as(db, AVA if i % 2 else LEO, CAMPAIGN_CONVERSATION, text)
        for client in clients:
            await asyncio.wait_for(client.synced.wait(), 20)
            assert client.resyncs == 0
        await eventually(
            lambda: all(len(c.messages) >= len(texts) for c in clients),
            what="every client has every message",
        )
        for client in clients:
            assert sorted(client.messages) == texts
            assert len(client.messages) == len(set(client.messages))
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        for proc in (first, second):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 20)
