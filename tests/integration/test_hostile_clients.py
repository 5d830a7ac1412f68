"""Hostile and odd clients against the real daemon: reserved Socket.IO
event names, junk on the wire, browsers' CORS preflight, refusals without an
ack, one answer for "not yours" and "does not exist"."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.support.database import fingerprint
from tests.support.demo import (
    AVA,
    BID,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)
from tests.support.harness import Harness, run_seed_client, token
from tests.support.waits import assert_quiet_log, eventually

ABSENT_CONVERSATION = "c0000000-0000-4000-8000-0000000000ff"
ALLOWED_ORIGIN = "http://localhost:5173"  # in the default cors_origins


async def test_client_sent_disconnect_is_refused_and_expiry_still_cuts_off(
    bridge: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """A client emitting `disconnect` (with and without an ack) is refused
    and keeps its session: it still hears its conversation, and when its
    token expires it is told so and cut off."""
    ava = await bridge.client(AVA)
    leo = await bridge.client(LEO, auth={"token": token(LEO, ttl=3)})
    ack = await leo.call("disconnect", "bye")
    assert ack["ok"] is False and ack["error"]["code"] == "reserved_event"
    await leo.sio.emit("disconnect")
    refused = await leo.wait_for("bridge_error")
    assert refused["event"] == "disconnect" and refused["code"] == "reserved_event"
    assert (await leo.call("join_conversation", CAMPAIGN_CONVERSATION))["ok"]
    await ava.call("send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "still?"})
    await leo.wait_for("new_message")
    expired = await leo.wait_for("token_expired", timeout=15)
    assert expired["code"] == "expired_token"
    await eventually(lambda: not leo.sio.connected, what="the expired socket closed")
    assert_quiet_log(caplog.records)


async def test_client_sent_connect_neither_reruns_nor_switches_identity(
    bridge: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """`connect` as a client event, with Ava's valid token or with nothing:
    refused; Leo stays Leo (Ava's rooms stay closed to him, her direct
    conversation with Mia stays unheard) and nothing lands in the log."""
    caplog.set_level(logging.WARNING)
    leo = await bridge.client(LEO)
    ack = await leo.call("connect", {"token": token(AVA)})
    assert ack["ok"] is False and ack["error"]["code"] == "reserved_event"
    await leo.sio.emit("connect")
    assert (await leo.wait_for("bridge_error"))["code"] == "reserved_event"
    ack = await leo.call("join", AVA)
    assert ack["ok"] is False and ack["error"]["code"] == "forbidden"
    ack = await leo.call("join_conversation", DIRECT_CONVERSATION)
    assert ack["ok"] is False
    ava = await bridge.client(AVA)
    mia = await bridge.client(MIA)
    await mia.call("join_conversation", DIRECT_CONVERSATION)
    await ava.call("send_message", {"conversationId": DIRECT_CONVERSATION, "message": "private"})
    await mia.wait_for("new_message")
    assert leo.received("new_message") == []
    gc.collect()  # "Task exception was never retrieved" is logged on collection
    await asyncio.sleep(0.2)
    assert_quiet_log(caplog.records)


async def test_unknown_and_nameless_events_are_answered(bridge: Harness) -> None:
    """An event nobody handles, or a packet whose first item is no name, gets
    an error ack when it asked for one and a `bridge_error` otherwise."""
    leo = await bridge.client(LEO)
    ack = await leo.call("delete_everything", {})
    assert ack == {"ok": False, "error": {"code": "unknown_event", "message": "no such event"}}
    url = bridge.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    async with bridge.http.ws_connect(url) as ws:
        await ws.receive(timeout=5)
        await ws.send_str("40" + json.dumps({"token": token(LEO)}))
        assert (await ws.receive(timeout=5)).data.startswith("40")
        await ws.send_str('427[["join"]]')
        answer = await ws.receive(timeout=5)
        assert answer.data.startswith("437")
        assert json.loads(answer.data[3:])[0]["error"]["code"] == "invalid_event"
        await ws.send_str('42["nope"]')
        event = json.loads((await ws.receive(timeout=5)).data[2:])
        assert event[0] == "bridge_error" and event[1]["code"] == "unknown_event"


WS_JUNK = [
    "4",
    "42",
    "42{}",
    "42[]",
    "42[[]]",
    "42[{}]",
    "4x",
    "49",
    "46",
    '451-["a",{"_placeholder":true,"num":0}]',
    "4/nsp,",
    "444{}",
    "9",
    "x",
    "bAAA",
    "42" + "[" * 10_000,
    "4" + "[" * 10_000,
    '42["send_message",' + '{"a":' * 3000 + "1" + "}" * 3000 + "]",
]
POLL_JUNK = ["x", "\x1e\x1e", "b!!!", "42[]", "4" + "[" * 10_000]
REPEAT = 10


async def test_junk_on_the_wire_leaves_a_bounded_log(
    bridge: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """Malformed Engine.IO / Socket.IO packets over a websocket (before and
    after auth) and over polling, and over-long HTTP header lines over raw
    TCP, ten rounds each: no traceback, no error, and a handful of
    `refused client input` lines (one per kind) instead of one per packet.
    The daemon serves normally afterwards."""
    caplog.set_level(logging.INFO)
    url = bridge.url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket"
    sent = 0
    for _ in range(REPEAT):
        for authed in (False, True):
            async with bridge.http.ws_connect(url) as ws:
                await ws.receive(timeout=5)
                if authed:
                    await ws.send_str("40" + json.dumps({"token": token(LEO)}))
                    await ws.receive(timeout=5)
                for junk in WS_JUNK:
                    if ws.closed:
                        break
                    await ws.send_str(junk)
                    sent += 1
                if not ws.closed:
                    await ws.send_bytes(b"\x00\x01\x02")
        polling = bridge.url + "/socket.io/?EIO=4&transport=polling"
        for junk in POLL_JUNK:
            async with bridge.http.get(polling) as resp:
                sid = json.loads((await resp.text())[1:])["sid"]
            async with bridge.http.post(f"{polling}&sid={sid}", data=junk.encode()) as resp:
                assert resp.status < 500
            sent += 1
        async with bridge.http.ws_connect(url, protocols=("nobody-speaks-this",)) as ws:
            await ws.receive(timeout=5)
            sent += 1
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge.app.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 20_000 + b"\r\n\r\n")
        assert (await reader.read(12)).startswith(b"HTTP/1.")
        writer.close()
        sent += 1
    await asyncio.sleep(0.3)
    status, _ = await bridge.request("GET", "/healthz")
    assert status == 200
    leo = await bridge.client(LEO)
    assert (await leo.call("join", LEO))["ok"]
    assert_quiet_log(caplog.records)
    # Not the junk's: start-up's "pushes are off", and a slow garbage
    # collection on a busy machine.
    lines = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name not in ("bridge.app", "bridge.gc_tuning")
    ]
    assert sent > 200
    assert 1 <= len(lines) <= 8, [(r.name, r.getMessage(), vars(r).get("kind")) for r in lines]
    assert {r.name for r in lines} == {"bridge.hostile"}
    assert not any("Recursion" in f"{r.getMessage()} {vars(r).get('detail')}" for r in lines)


def allow_headers(resp: aiohttp.ClientResponse) -> dict[str, list[str]]:
    return {
        name: resp.headers.getall(name)
        for name in resp.headers
        if name.lower().startswith("access-control-allow")
    }


async def test_cors_preflight_for_the_polling_transport(bridge: Harness) -> None:
    """What a browser sends before polling with an Authorization header: an
    allowed origin gets each allow header once (origin, credentials, the
    Authorization header, the method) and then connects over polling with
    the header; another origin gets no allow header and no session."""
    polling = bridge.url + "/socket.io/?EIO=4&transport=polling"
    preflight = {
        "Origin": ALLOWED_ORIGIN,
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    async with bridge.http.options(polling, headers=preflight) as resp:
        assert 200 <= resp.status < 300
        allowed = allow_headers(resp)
    assert allowed["Access-Control-Allow-Origin"] == [ALLOWED_ORIGIN]
    assert allowed["Access-Control-Allow-Credentials"] == ["true"]
    assert "authorization" in allowed["Access-Control-Allow-Headers"][0].lower()
    assert "GET" in allowed["Access-Control-Allow-Methods"][0]
    assert all(len(values) == 1 for values in allowed.values()), allowed

    headers = {"Origin": ALLOWED_ORIGIN, "Authorization": f"Bearer {token(LEO)}"}
    async with bridge.http.get(polling, headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers.getall("Access-Control-Allow-Origin") == [ALLOWED_ORIGIN]
        sid = json.loads((await resp.text())[1:])["sid"]
    async with bridge.http.post(f"{polling}&sid={sid}", data=b"40", headers=headers) as resp:
        assert resp.status == 200
        assert resp.headers.getall("Access-Control-Allow-Origin") == [ALLOWED_ORIGIN]
    async with bridge.http.get(f"{polling}&sid={sid}", headers=headers) as resp:
        assert (await resp.text()).startswith("40{")  # connected, as Leo by the header

    evil = {**preflight, "Origin": "https://evil.example"}
    async with bridge.http.options(polling, headers=evil) as resp:
        assert allow_headers(resp) == {}
    async with bridge.http.get(polling, headers={"Origin": "https://evil.example"}) as resp:
        assert resp.status == 403 and allow_headers(resp) == {}

    rest = {**preflight, "Access-Control-Request-Headers": "authorization,content-type"}
    async with bridge.http.options(bridge.url + "/api/messages/send", headers=rest) as resp:
        allowed = allow_headers(resp)
    assert allowed["Access-Control-Allow-Origin"] == [ALLOWED_ORIGIN]
    assert "content-type" in allowed["Access-Control-Allow-Headers"][0].lower()


async def test_refused_send_without_ack_tells_that_socket(bridge: Harness) -> None:
    """The seed sends without an ack: a refusal still reaches the sender's
    socket as `bridge_error`, and only that socket."""
    leo = await bridge.client(LEO)
    other_device = await bridge.client(LEO)
    await leo.sio.emit("send_message", {"conversationId": DIRECT_CONVERSATION, "message": "x"})
    error = await leo.wait_for("bridge_error")
    assert error == {
        "event": "send_message",
        "code": "not_found",
        "message": "conversation not found",
    }
    await leo.sio.emit("send_message", {"conversationId": CAMPAIGN_CONVERSATION, "mediaUrl": 3})
    error = await leo.wait_for("bridge_error", lambda e: e.get("field") == "mediaUrl")
    assert error["code"] == "invalid_field"
    assert (await other_device.call("join", LEO))["ok"]
    assert other_device.received("bridge_error") == []


async def test_empty_optional_fields_read_as_absent(bridge: Harness) -> None:
    """The seed's form sends unused inputs as '': a text message, over the
    socket and over REST."""
    leo = await bridge.client(LEO)
    ack = await leo.call(
        "send_message",
        {
            "conversationId": CAMPAIGN_CONVERSATION,
            "message": "no attachment",
            "mediaUrl": "",
            "messageType": "",
            "clientMessageId": "",
            "senderId": "",
        },
    )
    assert ack["ok"], ack
    assert ack["message"]["message_type"] == "text" and ack["message"]["media_url"] is None
    status, body = await bridge.request(
        "POST",
        "/api/messages/send",
        LEO,
        json={
            "conversation_id": CAMPAIGN_CONVERSATION,
            "message": "nothing attached",
            "media_url": "",
            "message_type": "",
            "client_message_id": "",
        },
    )
    assert status == 201 and body["message"]["message_type"] == "text"
    ack = await leo.call("mark_seen", {"conversationId": CAMPAIGN_CONVERSATION, "messageId": ""})
    assert ack["ok"], ack


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("join_conversation", lambda c: c),
        ("typing_start", lambda c: {"conversationId": c}),
        ("send_message", lambda c: {"conversationId": c, "message": "hi"}),
        ("mark_seen", lambda c: {"conversationId": c}),
    ],
    ids=["join", "typing", "send", "mark-seen"],
)
async def test_not_yours_and_absent_get_one_answer(
    bridge: Harness, event: str, payload: Any
) -> None:
    """Mia asking about Ava and Leo's conversation hears exactly what she
    hears about one that does not exist."""
    mia = await bridge.client(MIA)
    foreign = await mia.call(event, payload(BID_CONVERSATION))
    absent = await mia.call(event, payload(ABSENT_CONVERSATION))
    assert foreign == absent
    assert foreign["error"]["code"] == "not_found"


async def test_bids_of_others_and_absent_bids_get_one_answer(bridge: Harness) -> None:
    """The same for bid rooms."""
    mia = await bridge.client(MIA)
    foreign = await mia.call("join_bid", BID)
    absent = await mia.call("join_bid", "bbbbbbbb-0000-4000-8000-0000000000ff")
    assert foreign == absent and foreign["error"]["code"] == "not_found"


async def test_rest_refuses_tokens_of_users_without_a_profile(bridge: Harness) -> None:
    """A valid token whose user has no chat profile: refused, as the socket's
    connect refuses it."""
    stranger = "00000000-0000-4000-8000-000000000009"
    status, body = await bridge.request("GET", "/api/conversations", stranger)
    assert status == 403 and body["error"]["code"] == "unknown_user"
    status, body = await bridge.request(
        "POST", "/api/fcm-tokens", stranger, json={"token": "t", "platform": "ios"}
    )
    assert status == 403 and body["error"]["code"] == "unknown_user"


@pytest.mark.parametrize(
    ("field", "payload"),
    [
        ("message", {"message": "a\ud800b"}),
        ("clientMessageId", {"message": "hi", "clientMessageId": "\ud800"}),
        ("mediaUrl", {"mediaUrl": "https://cdn.example.com/\udfff.png"}),
    ],
)
async def test_lone_surrogates_are_refused(
    bridge: Harness, db: asyncpg.Connection, field: str, payload: dict[str, Any]
) -> None:
    """Text Postgres cannot store (a lone UTF-16 surrogate) is refused by
    name, over the socket and REST, and nothing is written."""
    before = await fingerprint(db)
    leo = await bridge.client(LEO)
    ack = await leo.call("send_message", {"conversationId": CAMPAIGN_CONVERSATION, **payload})
    assert ack["ok"] is False
    assert ack["error"]["code"] == "invalid_field" and ack["error"]["field"] == field
    status, body = await bridge.request(
        "POST", "/api/fcm-tokens", LEO, json={"token": "tok\ud800", "platform": "ios"}
    )
    assert status == 400 and body["error"] == {
        "code": "invalid_field",
        "message": "token is not valid Unicode text",
        "field": "token",
    }
    assert await fingerprint(db) == before


async def test_undecodable_authorization_header_is_a_401(bridge: Harness) -> None:
    """An Authorization header of bytes that are not UTF-8 (raw TCP: no
    client library sends them) is a malformed token, not a 500."""
    reader, writer = await asyncio.open_connection("127.0.0.1", bridge.app.port)
    writer.write(
        b"GET /api/conversations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer \xed\xa0\x80\xff\r\n\r\n"
    )
    answer = await reader.read()
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401")
    assert json.loads(body)["error"]["code"] == "malformed_token"


async def test_deeply_nested_json_is_a_400(bridge: Harness) -> None:
    """10,000 nested arrays as a REST body: a clear 400, not a 500."""
    status, body = await bridge.request(
        "POST", "/api/messages/send", LEO, data=b"[" * 10_000 + b"]" * 10_000
    )
    assert status == 400 and body["error"]["code"] == "invalid_json"


async def test_seed_client_without_ack_hears_refusals(bridge: Harness) -> None:
    """socket.io-client itself, as the seed uses it (no acks): a message with
    `mediaUrl: ''` is delivered; a refused one arrives as `bridge_error` on
    the sending socket only."""
    config = {
        "ava": AVA,
        "leo": LEO,
        "conversationId": CAMPAIGN_CONVERSATION,
        "foreignConversation": DIRECT_CONVERSATION,
        "avaToken": token(AVA),
        "leoToken": token(LEO),
    }
    out = await run_seed_client("no_ack_errors.mjs", bridge.url, config, 30)
    assert out["delivered"]["content"] == "no attachment"
    assert out["delivered"]["message_type"] == "text"
    assert out["errors"] == [
        {"event": "send_message", "code": "not_found", "message": "conversation not found"}
    ]
    assert out["otherDeviceErrors"] == []
