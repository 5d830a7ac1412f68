"""Property-based: generated payloads of every shape (Hypothesis) thrown at
every Socket.IO event, every REST route and the raw Socket.IO wire of one
live daemon. Whatever arrives, the answer is a clear refusal (an error ack
or a 4xx) or a success; never a 5xx or `internal`, never a traceback or an
error in the daemon's log, and a refused request changes no row."""

from __future__ import annotations

import json
import logging
import os
import urllib.parse
from collections.abc import Iterator
from typing import Any

import aiohttp
import asyncpg
import pytest
import socketio
import yarl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.server import CLIENT_EVENTS
from tests.support.database import fingerprint
from tests.support.demo import (
    AVA,
    BID,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    CAMPAIGN_SUMMER,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)
from tests.support.harness import Harness, token
from tests.support.waits import assert_quiet_log

EVENTS = list(CLIENT_EVENTS)
# Names a client must not be able to trigger, and names nobody handles.
FOREIGN_EVENTS = ["connect", "disconnect", "connect_error", "message", "error", "*", "nope"]
KEYS = [
    "conversationId",
    "conversation_id",
    "message",
    "content",
    "mediaUrl",
    "media_url",
    "messageType",
    "message_type",
    "type",
    "clientMessageId",
    "client_message_id",
    "senderId",
    "receiverId",
    "userId",
    "user_id",
    "messageId",
    "message_id",
    "bidId",
    "campaignId",
    "status",
    "token",
    "platform",
    "lastEventId",
]
IDS = [AVA, LEO, MIA, BID, CAMPAIGN_SUMMER, BID_CONVERSATION, CAMPAIGN_CONVERSATION]
HOSTILE = [
    "",
    " ",
    "\ud800",
    "a\udfffb",
    "\x00",
    "²",
    "١٢",
    "9" * 5000,
    str(2**63),
    "-1",
    "' or 1=1 --",
    "../../etc/passwd",
    "https://cdn.example.com/a.png",
    "x" * 5000,
    "online",
    "image",
    "ios",
    "c0000000-0000-4000-8000-0000000000ff",
    DIRECT_CONVERSATION,  # Leo is no participant
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(HOSTILE + IDS),
)
json_values = st.recursive(
    leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)
# Near-valid: the right keys with hostile values.
near_valid = st.dictionaries(st.sampled_from(KEYS), leaves, min_size=1, max_size=6)
payloads = st.one_of(json_values, near_valid, st.just("[" * 5000 + "]" * 5000))

HYPOTHESIS = settings(
    max_examples=300,
    deadline=None,
    derandomize=os.environ.get("HYPOTHESIS_RANDOM") is None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def quiet_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.WARNING)
    yield caplog
    assert_quiet_log(caplog.records)


@settings(HYPOTHESIS, max_examples=200)
@given(payload=payloads)
async def test_socket_events_refuse_whatever_they_get(
    bridge: Harness,
    db: asyncpg.Connection,
    quiet_log: pytest.LogCaptureFixture,
    payload: Any,
) -> None:
    """Any payload to every event (the reserved and unknown names too) gets
    an ack; a refusal names a code other than `internal` and changes no row;
    the socket stays connected as Leo."""
    if not bridge.clients:
        await bridge.client(LEO)
    leo = bridge.clients[0]
    for event in EVENTS + FOREIGN_EVENTS:
        before = await fingerprint(db)
        ack = await leo.call(event, payload)
        assert isinstance(ack, dict), ack
        if ack["ok"] is False:
            assert ack["error"]["code"] != "internal", (event, payload, ack)
            assert isinstance(ack["error"]["message"], str)
            assert await fingerprint(db) == before, (event, payload, ack)
    assert leo.sio.connected
    assert_quiet_log(quiet_log.records)


@settings(HYPOTHESIS, max_examples=100)
@given(auth=near_valid | st.dictionaries(st.text(max_size=8), json_values, max_size=3))
async def test_connect_refuses_whatever_auth_it_gets(
    bridge: Harness, quiet_log: pytest.LogCaptureFixture, auth: Any
) -> None:
    """Any `auth` object on connect: a `connect_error` with a code, nothing
    in the log."""
    client = bridge.unconnected()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(auth=auth)
    assert client.connect_errors and client.connect_errors[-1]["data"]["code"]
    await client.close()
    assert_quiet_log(quiet_log.records)


def quoted(value: str) -> str:
    """A path or query part as a client may send it: any code point,
    percent-encoded (a lone surrogate becomes bytes that are not UTF-8)."""
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe="")


path_values = st.sampled_from(HOSTILE + IDS) | st.text(max_size=12)
routes = st.one_of(
    st.tuples(
        st.sampled_from(
            [
                "/api/messages/send",
                "/api/messages/mark-seen",
                "/api/messages/delivered",
                "/api/fcm-tokens",
                "/test-message",
            ]
        ).map(lambda p: ("POST", p)),
        st.one_of(
            json_values.map(lambda v: json.dumps(v).encode()),
            near_valid.map(lambda v: json.dumps(v).encode()),
            st.binary(max_size=40),
            st.just(b"[" * 10_000 + b"]" * 10_000),
        ),
    ),
    st.tuples(
        st.builds(
            lambda u, r: ("GET", f"/api/conversations?user_id={quoted(u)}&role={quoted(r)}"),
            path_values,
            path_values,
        ),
        st.just(b""),
    ),
    st.tuples(
        st.builds(
            lambda c, p, n, b: (
                "GET",
                f"/api/conversations/{quoted(c)}/messages"
                f"?page={quoted(p)}&limit={quoted(n)}&before={quoted(b)}",
            ),
            path_values,
            path_values,
            path_values,
            path_values,
        ),
        st.just(b""),
    ),
    st.tuples(
        path_values.filter(bool).map(lambda t: ("DELETE", f"/api/fcm-tokens/{quoted(t)}")),
        st.just(b""),
    ),
    st.tuples(
        st.builds(
            lambda m, i: (m, f"/api/messages/{quoted(i)}"),
            st.sampled_from(["PATCH", "DELETE"]),
            path_values.filter(bool),
        ),
        st.one_of(
            json_values.map(lambda v: json.dumps(v).encode()),
            near_valid.map(lambda v: json.dumps(v).encode()),
        ),
    ),
)


@HYPOTHESIS
@given(route=routes)
async def test_rest_routes_refuse_whatever_they_get(
    bridge: Harness,
    db: asyncpg.Connection,
    quiet_log: pytest.LogCaptureFixture,
    route: tuple[tuple[str, str], bytes],
) -> None:
    """Any body, path and query on every route: a JSON answer below 500; a
    refusal is a 4xx with a code other than `internal` and changes no row."""
    (method, path), body = route
    before = await fingerprint(db)
    url = yarl.URL(bridge.url + path, encoded=True)
    headers = {"Authorization": f"Bearer {token(LEO)}", "Content-Type": "application/json"}
    async with bridge.http.request(method, url, data=body, headers=headers) as resp:
        status = resp.status
        is_json = resp.content_type == "application/json"
        answer = await resp.json() if is_json else await resp.text()
    assert status < 500, (method, path[:200], body[:200], answer)
    if status >= 400:
        if is_json:
            assert answer["error"]["code"] != "internal"
        else:  # refused by the HTTP parser (a request line over 8 KB), before any route
            assert len(path) > 8000, (method, path[:200], answer)
        assert await fingerprint(db) == before, (method, path, body[:200], answer)
    assert_quiet_log(quiet_log.records)


# Raw Socket.IO packets (after Engine.IO's "4"): generated junk and events
# with generated arguments, on an authenticated websocket.
frames = st.one_of(
    st.text(max_size=30),
    st.builds(lambda v: "2" + json.dumps(v), json_values),
    st.builds(
        lambda n, v: "21" + json.dumps([n, v]),
        st.sampled_from(EVENTS + FOREIGN_EVENTS),
        payloads,
    ),
    st.sampled_from(
        ["2[[]]", "2{}", "2[{}]", "0", "0/admin,", "3", "31[]", "5-[]", "6", "2" + "[" * 10_000]
    ),
)


class RawSocket:
    """An authenticated Socket.IO session on a bare websocket."""

    def __init__(self, bridge: Harness) -> None:
        self.bridge = bridge
        self.ws: aiohttp.ClientWebSocketResponse | None = None

    async def open(self) -> aiohttp.ClientWebSocketResponse:
        if self.ws is None or self.ws.closed:
            url = self.bridge.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
            self.ws = await self.bridge.http.ws_connect(url)
            await self.ws.receive(timeout=5)  # engine.io open
            await self.ws.send_str("40" + json.dumps({"token": token(LEO)}))
            connected = await self.ws.receive(timeout=5)
            assert connected.data.startswith("40"), connected.data
        return self.ws


@HYPOTHESIS
@given(frame=frames)
async def test_raw_packets_never_reach_the_log_as_errors(
    bridge: Harness, quiet_log: pytest.LogCaptureFixture, frame: str
) -> None:
    """Whatever a client writes on the wire, the log gets no traceback and no
    error, and the daemon still answers a well-formed event on a new socket."""
    if not hasattr(bridge, "raw"):
        bridge.raw = RawSocket(bridge)  # type: ignore[attr-defined]
    ws = await bridge.raw.open()  # type: ignore[attr-defined]
    await ws.send_str("4" + frame)
    if frame.startswith("1"):  # a Socket.IO DISCONNECT: no more events on this one
        await ws.close()
        return
    await ws.send_str('4299["join"]')
    async for msg in ws:  # until join's ack (or the server closed the socket)
        if msg.type != aiohttp.WSMsgType.TEXT or msg.data.startswith("4399"):
            break
        if msg.data == "2":
            await ws.send_str("3")
    assert_quiet_log(quiet_log.records)
