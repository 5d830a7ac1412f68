"""The websocket transport of bridge/eio_socket.py as a plain websocket
client sees it: frames written straight, several to one socket in one
write, or compressed by aiohttp when the client negotiated
permessage-deflate; each arrives whole and in order. And how a stopping
bridge hangs up websockets and long-polls (bridge/sockets.py `hang_up`)."""

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
from tests.support.harness import Harness, running, settings_for, started, token
from tests.support.waits import eventually

MESSAGES = 60


@pytest.fixture(params=[False, True], ids=["plain", "compressed"])
async def bridge_with(request: pytest.FixtureRequest, db_dsn: str) -> AsyncIterator[Harness]:
    base = settings_for(db_dsn)
    settings = dataclasses.replace(
        base, server=dataclasses.replace(base.server, websocket_compression=request.param)
    )
    async with running(settings) as harness:
        yield harness


async def next_event(ws: aiohttp.ClientWebSocketResponse) -> list[Any]:
    """The next Socket.IO event on a raw Engine.IO websocket (pings answered)."""
    while True:
        text = await ws.receive_str(timeout=10)
        if text == "2":
            await ws.send_str("3")
        elif text.startswith("42"):
            event: list[Any] = json.loads(text[2:])
            return event


async def test_a_burst_arrives_whole_and_in_order(
    bridge_with: Harness, db: asyncpg.Connection
) -> None:
    """Ava's client speaks Engine.IO over a plain websocket, asking for
    permessage-deflate (the server grants it only when compression is on).
    Leo commits 60 messages of assorted sizes at once: Ava gets each
    message's events, all 60 `new_message`s in the order they were
    written, and her own ack after a send of hers."""
    compress = 15 if bridge_with.app.settings.server.websocket_compression else 0
    url = bridge_with.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with bridge_with.http.ws_connect(url, compress=15) as ws:
        assert ws.compress == compress
        assert (await ws.receive_str(timeout=5)).startswith("0{")
        await ws.send_str("40" + json.dumps({"token": token(AVA)}))
        assert (await ws.receive_str(timeout=5)).startswith("40{")
        async with acting_as(db, user_claims(LEO)):
            await db.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " select $1, $2, n || ':' || repeat('é', (n * 97) % 3000)"
                " from generate_series(1, $3) n",
                CAMPAIGN_CONVERSATION,
                LEO,
                MESSAGES,
            )
        order: list[int] = []
        while len(order) < MESSAGES:
            name, data = await next_event(ws)
            if name == "new_message":
                content = data["message"]["content"]
                order.append(int(content.split(":")[0]))
                assert content.endswith("é" * ((order[-1] * 97) % 3000))
        assert order == list(range(1, MESSAGES + 1))
        await ws.send_str(
            "421"
            + json.dumps(
                ["send_message", {"conversationId": CAMPAIGN_CONVERSATION, "content": "mine"}]
            )
        )
        while True:
            text = await ws.receive_str(timeout=10)
            if text.startswith("431"):
                ack = json.loads(text[3:])[0]
                break
        assert ack["ok"] and ack["message"]["content"] == "mine"


async def test_a_stopping_bridge_hangs_up_websockets_as_going_away(db_dsn: str) -> None:
    """Ava is connected over a plain websocket when the bridge stops: her
    websocket is closed with 1001 (going away), which socket.io-client takes
    for a lost connection and reconnects after; no Socket.IO disconnect
    (after which it would stay away) comes first."""
    harness = await started(settings_for(db_dsn))
    try:
        url = harness.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
        async with harness.http.ws_connect(url) as ws:
            assert (await ws.receive_str(timeout=5)).startswith("0{")
            await ws.send_str("40" + json.dumps({"token": token(AVA)}))
            assert (await ws.receive_str(timeout=5)).startswith("40{")
            stopping = asyncio.create_task(harness.app.stop())
            received = []
            while (msg := await ws.receive(timeout=30)).type == aiohttp.WSMsgType.TEXT:
                received.append(msg.data)
            assert msg.type == aiohttp.WSMsgType.CLOSE, msg
            assert msg.data == aiohttp.WSCloseCode.GOING_AWAY
            assert not [text for text in received if text.startswith("41")]
            await stopping
    finally:
        await harness.stop()


async def test_a_stopping_bridge_answers_a_pending_long_poll_with_close(db_dsn: str) -> None:
    """Ava's client is still on long-polling, its poll pending, when the
    bridge stops: the poll is answered with Engine.IO's close packet (a
    transport closed by the server, after which socket.io-client
    reconnects), not left hanging until the server cuts it."""
    harness = await started(settings_for(db_dsn))
    try:
        base = harness.url + "/socket.io/?EIO=4&transport=polling"
        async with harness.http.get(base) as resp:
            opened = await resp.text()
        assert opened.startswith("0{")
        sid = json.loads(opened[1:])["sid"]
        poll = f"{base}&sid={sid}"
        async with harness.http.post(poll, data="40" + json.dumps({"token": token(AVA)})) as resp:
            assert resp.status == 200
        async with harness.http.get(poll) as resp:
            assert (await resp.text()).startswith("40{")

        async def pending_poll() -> str:
            async with harness.http.get(poll) as resp:
                return await resp.text()

        answer = asyncio.create_task(pending_poll())
        assert harness.app.gateway is not None
        socket = harness.app.gateway.sio.eio.sockets[sid]
        await eventually(  # the poll waits in engine.io (it would for 25 s)
            lambda: socket.queue._getters, what="the poll waiting", interval=0.01
        )
        await harness.app.stop()
        assert (await answer).split("\x1e")[-1] == "1"
    finally:
        await harness.stop()
