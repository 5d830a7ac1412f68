"""Engine.IO heartbeats on the websocket (bridge/heartbeats.py), as plain
websocket clients see them, with a short ping interval and timeout: a
client that answers every PING stays connected through many rounds and
keeps getting its events; a client gone silent (its network cut without a
word: it neither answers PINGs nor closes) is cut, and its partner sees it
go offline."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import Harness, running, settings_for, token
from tests.support.waits import eventually

PING_INTERVAL = 0.4
PING_TIMEOUT = 0.4


@pytest.fixture
async def bridge(db_dsn: str) -> AsyncIterator[Harness]:
    base = settings_for(db_dsn)
    settings = dataclasses.replace(
        base,
        server=dataclasses.replace(
            base.server, ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT
        ),
    )
    async with running(settings) as harness:
        yield harness


async def connect(bridge: Harness, user: str) -> aiohttp.ClientWebSocketResponse:
    url = bridge.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    ws = await bridge.http.ws_connect(url)
    assert (await ws.receive_str(timeout=5)).startswith("0{")
    await ws.send_str("40" + json.dumps({"token": token(user)}))
    assert (await ws.receive_str(timeout=5)).startswith("40{")
    return ws


class Listener:
    """Reads a socket, answering PINGs (counted) and keeping its events."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pings = 0
        self.events: list[list[Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.data == "2":
                self.pings += 1
                await self.ws.send_str("3")
            elif isinstance(msg.data, str) and msg.data.startswith("42"):
                self.events.append(json.loads(msg.data[2:]))

    def named(self, name: str) -> list[Any]:
        return [data for event, data in self.events if event == name]


async def test_a_silent_client_is_cut_and_an_answering_one_stays(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Leo's client answers every PING; Ava's loses its network without a
    word: it reads but never answers. Ava's connection is closed by the
    server and Leo gets `user_status_update` offline for her. Leo's stays
    connected through many ping rounds (every PING after the first is the
    heartbeat timer's) and still gets Ava's message written afterwards."""
    leo = Listener(await connect(bridge, LEO))
    ava = await connect(bridge, AVA)
    try:
        async with asyncio.timeout(20):
            while True:  # Ava's client: deaf to PINGs
                msg = await ava.receive()
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                    break
                if msg.type is aiohttp.WSMsgType.ERROR:
                    break
        await eventually(
            lambda: any(
                u["user_id"] == AVA and u["status"] == "offline"
                for u in leo.named("user_status_update")
            )
        )
        await eventually(lambda: leo.pings >= 5, 20)
        async with acting_as(db, user_claims(AVA)):
            await db.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " values ($1, $2, 'back on the train')",
                CAMPAIGN_CONVERSATION,
                AVA,
            )
        await eventually(
            lambda: any(
                m["message"]["content"] == "back on the train" for m in leo.named("new_message")
            )
        )
        assert not leo.ws.closed
    finally:
        leo.task.cancel()
        await asyncio.gather(leo.task, return_exceptions=True)
        await leo.ws.close()
        await ava.close()


async def test_a_long_polling_client_that_stops_polling_is_closed(bridge: Harness) -> None:
    """Ava's client is on long-polling (a proxy that refuses websockets)
    and its tab is frozen: it stops polling, so it never answers a PING.
    The session is closed (the work python-engineio's service task did,
    now the heartbeat sweep's): Leo sees her go offline, and a late poll
    with her old session id is refused."""
    leo = Listener(await connect(bridge, LEO))
    base = bridge.url + "/socket.io/?EIO=4&transport=polling"
    try:
        async with bridge.http.get(base) as r:
            handshake = json.loads((await r.text())[1:])
        polling = f"{base}&sid={handshake['sid']}"
        async with bridge.http.post(polling, data="40" + json.dumps({"token": token(AVA)})) as r:
            assert r.status == 200
        async with bridge.http.get(polling) as r:
            assert "40{" in await r.text()
        await eventually(
            lambda: any(
                u["user_id"] == AVA and u["status"] == "offline"
                for u in leo.named("user_status_update")
            )
        )
        async with bridge.http.get(polling) as r:
            assert r.status == 400
    finally:
        leo.task.cancel()
        await asyncio.gather(leo.task, return_exceptions=True)
        await leo.ws.close()
