"""The API documents against the running daemon: every route the aiohttp
router serves is an operation of bridge/openapi.json and the other way
round, and what real clients exchange with it (REST bodies; Socket.IO
events, their payloads and acks; a refused connect) validates against
the schemas of bridge/openapi.json and docs/asyncapi.yaml, with every
documented event and endpoint seen at least once."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest
import socketio

from bridge.config import Settings
from bridge.db import acting_as, user_claims
from bridge.server import CLIENT_EVENTS
from tests.support.demo import (
    AVA,
    BID,
    BID_CONVERSATION,
    CAMPAIGN_AUTUMN,
    CAMPAIGN_SUMMER,
    LEO,
    MIA,
)
from tests.support.documents import (
    ack_ref,
    ack_validator,
    asyncapi,
    event_validator,
    openapi,
    openapi_operations,
    openapi_validator,
    problems,
    server_event_ref,
    server_events,
    undocumented_keys,
)
from tests.support.harness import NO_LIMITS, Client, Harness, running, settings_for, token

SOCKET_IO_PATH = "/socket.io/"  # Engine.IO's transport: docs/asyncapi.yaml


def served_operations(bridge: Harness) -> set[tuple[str, str]]:
    runner = bridge.app.runner
    assert runner is not None
    served = set()
    for route in runner.app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        # HEAD is aiohttp's automatic twin of each GET.
        if route.method == "HEAD" or path.startswith(SOCKET_IO_PATH):
            continue
        served.add((route.method, path))
    return served


def dev_settings(dsn: str) -> Settings:
    """The harness's settings with `server.dev`: the demo page's routes too."""
    settings = settings_for(dsn)
    return dataclasses.replace(settings, server=dataclasses.replace(settings.server, dev=True))


async def test_every_route_is_documented_and_nothing_else(bridge: Harness, db_dsn: str) -> None:
    """A route added to the daemon without an OpenAPI operation, or an
    operation without a route, fails here, with the demo page off and on;
    Socket.IO's own path is the AsyncAPI document's server."""
    assert served_operations(bridge) == openapi_operations(demo=False)
    async with running(dev_settings(db_dsn)) as dev:
        assert served_operations(dev) == openapi_operations()
    assert asyncapi()["servers"]["bridge"]["pathname"] == SOCKET_IO_PATH
    status, served = await bridge.request("GET", "/api/openapi.json")
    assert status == 200 and served == openapi()


class Recorder:
    """Checks every REST answer and every socket exchange against the
    documents as it happens, and remembers what it saw."""

    def __init__(self, bridge: Harness) -> None:
        self.bridge = bridge
        self.failures: list[str] = []
        self.rest_seen: set[tuple[str, str]] = set()
        self.acks_seen: set[str] = set()

    def check(self, what: str, validator: Any, instance: Any) -> None:
        self.failures += [f"{what}: {p}" for p in problems(validator, instance)]

    async def rest(
        self, method: str, template: str, path: str, user: str | None, expect: int, **kw: Any
    ) -> Any:
        url = self.bridge.url + path
        headers = {"Authorization": f"Bearer {token(user)}"} if user else {}
        async with self.bridge.http.request(method, url, headers=headers, **kw) as resp:
            assert resp.status == expect, (method, path, resp.status, await resp.text())
            media = resp.headers["Content-Type"].split(";")[0]
            body: Any = await resp.json() if media == "application/json" else await resp.text()
        self.rest_seen.add((method, template))
        self.check(
            f"{method} {template} {expect}",
            openapi_validator(method, template, expect, media),
            body,
        )
        return body

    async def call(self, client: Client, event: str, data: Any = None, *, bad: bool = False) -> Any:
        """A client event; `bad`: a payload the document must refuse too."""
        if bad:
            assert problems(event_validator(event, client=True), data), (
                f"{event}: {data!r} is documented"
            )
        else:
            self.check(f"{event} payload", event_validator(event, client=True), data)
        ack = await client.call(event, data)
        self.check(f"{event} ack", ack_validator(event), ack)
        self.failures += [
            f"{event} ack: undocumented key {k}" for k in undocumented_keys(ack_ref(event), ack)
        ]
        self.acks_seen.add(event)
        return ack

    def check_events(self, clients: list[Client]) -> set[str]:
        seen = set()
        for client in clients:
            for event, data in client.events:
                if event not in server_events():
                    self.failures.append(f"{event}: received but not documented")
                    continue
                seen.add(event)
                self.check(f"{event} event", event_validator(event), data)
                self.failures += [
                    f"{event} event: undocumented key {k}"
                    for k in undocumented_keys(server_event_ref(event), data)
                ]
        return seen


async def test_live_payloads_match_the_documents(db_dsn: str, db: asyncpg.Connection) -> None:
    """Ava and Leo use every client event and every REST endpoint the way
    an app does (sending, editing, unsending, delivery receipts, blocks,
    reports, mutes, quiet hours), and a flow step, a profile edit, a new
    conversation, a refused connect, refused events and an expiring token
    make the bridge send every server event: all of it validates against
    the documents (with the demo page on, whose endpoints are documented
    too)."""
    async with running(dev_settings(db_dsn)) as bridge:
        await exchange(bridge, db)


async def exchange(bridge: Harness, db: asyncpg.Connection) -> None:
    r = Recorder(bridge)
    ava, leo = await bridge.client(AVA), await bridge.client(LEO)
    for client, user in ((ava, AVA), (leo, LEO)):
        await r.call(client, "join", user)
        await r.call(client, "join_global_updates", {"userId": user})
        await r.call(client, "request_global_notifications", user)
    await r.call(ava, "join_conversation", {"conversationId": BID_CONVERSATION})
    await r.call(ava, "join_bid", {"bidId": BID})
    await r.call(ava, "join_campaign", CAMPAIGN_AUTUMN)
    await r.call(leo, "join_campaign", {"campaignId": CAMPAIGN_SUMMER})  # not his: not_found
    await r.call(leo, "join_conversation", BID_CONVERSATION)
    await r.call(leo, "typing_start", {"conversationId": BID_CONVERSATION})
    await ava.wait_for("user_typing")
    await ava.wait_for("typing_status_update")
    await r.call(leo, "typing_stop", BID_CONVERSATION)
    await r.call(leo, "leave_conversation", {"conversationId": BID_CONVERSATION})

    sent = await r.call(
        ava,
        "send_message",
        {"conversationId": BID_CONVERSATION, "message": "Hi Leo", "clientMessageId": "c-1"},
    )
    await r.call(
        ava,
        "send_message",
        {"conversationId": BID_CONVERSATION, "message": "Hi Leo", "clientMessageId": "c-1"},
    )
    await r.call(ava, "send_message", {"conversationId": str(uuid.uuid4()), "message": "x"})
    await leo.wait_for("notification")
    await r.call(leo, "mark_seen", {"messageId": sent["message"]["id"]})
    await ava.wait_for("message_seen")
    await leo.wait_for("message_seen_update")
    for text in ("one", "two"):
        await r.call(ava, "send_message", {"conversationId": BID_CONVERSATION, "message": text})
    await leo.wait_count("new_message", 3)
    await r.call(leo, "mark_seen", {"conversationId": BID_CONVERSATION})
    await ava.wait_for("messages_seen")
    await leo.wait_for("messages_seen_update")
    await lifecycle_round(r, ava, leo, sent["message"]["id"])
    await attachment_round(r, ava, leo)

    async with acting_as(db, user_claims(AVA)):
        await db.execute("select public.apply_flow_action($1, 'confirm')", BID_CONVERSATION)
        await db.execute("select public.start_campaign_conversation($1, $2)", CAMPAIGN_SUMMER, MIA)
    await db.execute("update public.users set name = 'Leo C.' where id = $1", LEO)
    await ava.wait_for("conversation_state_changed")
    for action in ("state_changed", "conversation_created", "profile_updated"):
        await ava.wait_for("conversation_list_updated", lambda d, a=action: d["action"] == a)
    await safety_round(r, ava)

    await r.call(leo, "user_status", {"status": "away"})
    await ava.wait_for("user_status_update", lambda d: d["status"] == "away")
    await r.call(ava, "refresh_token", {"token": token(AVA)})
    await r.call(ava, "refresh_token", {"token": token(LEO)})  # user_mismatch
    replay = await r.call(ava, "sync", {"lastEventId": 0})
    assert replay["replayed"] > 0
    await r.call(ava, "sync", {"lastEventId": "x"}, bad=True)  # invalid_field
    await ava.sio.emit("join_conversation", {"conversationId": "not-a-uuid"})  # no ack
    await ava.sio.emit("no_such_event", {})
    await ava.wait_count("bridge_error", 2)

    short = bridge.unconnected()
    await short.connect(auth={"token": token(MIA, ttl=1)})
    await short.wait_for("token_expired", timeout=10)
    refused = bridge.unconnected()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(auth={"token": "not-a-jwt"})
    r.check("connect_error", event_validator("connect_error"), refused.connect_errors[0])

    seen = r.check_events([ava, leo, short]) | {"connect_error"}
    assert r.acks_seen == set(CLIENT_EVENTS)
    assert seen == set(server_events()), set(server_events()) - seen

    await rest_round(r)
    assert r.failures == []


def in_an_hour() -> str:
    return (datetime.now(UTC) + timedelta(hours=1)).isoformat()


async def lifecycle_round(r: Recorder, ava: Client, leo: Client, read_id: str) -> None:
    """Ava edits a message Leo read; Leo acknowledges the delivery of a new
    one, which Ava then unsends before he reads it."""
    edit = {"messageId": read_id, "message": "Hi Leo!", "conversationId": BID_CONVERSATION}
    edited = await r.call(ava, "edit_message", edit)
    assert edited["ok"] and edited["message"]["edited_at"]
    refused = await r.call(leo, "edit_message", {**edit, "message": "not his"})
    assert refused["error"]["code"] == "forbidden"
    await leo.wait_for("message_updated")
    three = await r.call(ava, "send_message", {"conversationId": BID_CONVERSATION, "message": "3"})
    three_id = three["message"]["id"]
    await leo.wait_for("new_message", lambda d: d["message"]["id"] == three_id)
    assert await r.call(leo, "message_delivered", {"messageIds": [three_id]}) == {
        "ok": True,
        "delivered": 1,
    }
    await ava.wait_for("message_delivered", lambda d: d["messageIds"] == [three_id])
    unsent = await r.call(ava, "unsend_message", {"messageId": three_id})
    assert unsent["message"]["deleted_at"] and unsent["message"]["content"] == ""
    await leo.wait_for("message_deleted", lambda d: d["message_id"] == three_id)
    await leo.wait_for("conversation_list_updated", lambda d: d["action"] == "message_deleted")
    await leo.wait_for("unread_count_updated", lambda d: d["action"] == "message_deleted")
    await r.call(ava, "unsend_message", str(uuid.uuid4()))  # not_found


async def safety_round(r: Recorder, ava: Client) -> None:
    """Ava blocks and unblocks Mia, reports Leo, mutes and unmutes their
    conversation, sets and clears her quiet hours."""
    assert (await r.call(ava, "block_user", {"userId": MIA}))["block"]["user_id"] == MIA
    await ava.wait_for("user_status_update", lambda d: d["user_id"] == MIA)
    assert (await r.call(ava, "block_user", AVA))["error"]["code"] == "invalid_field"
    assert (await r.call(ava, "unblock_user", {"userId": MIA}))["unblocked"] is True
    report = {"userId": LEO, "reason": "spam", "details": "documents test"}
    assert (await r.call(ava, "report", report))["ok"]
    await r.call(ava, "report", {"userId": LEO, "reason": "boring"}, bad=True)  # invalid_field
    mute = {"conversationId": BID_CONVERSATION, "until": in_an_hour()}
    assert (await r.call(ava, "mute_conversation", mute))["muted"] is True
    assert (await r.call(ava, "unmute_conversation", BID_CONVERSATION))["unmuted"] is True
    hours = {"start": "22:00", "end": "07:00", "timeZone": "Europe/Berlin"}
    assert (await r.call(ava, "set_quiet_hours", hours))["quietHours"]["time_zone"]
    assert (await r.call(ava, "set_quiet_hours", None))["quietHours"] is None


async def rest_round(r: Recorder) -> None:
    """Every documented REST operation, with its usual answers and errors."""
    body = {"conversation_id": BID_CONVERSATION, "message": "over REST", "client_message_id": "r-1"}
    sent = await r.rest("POST", "/api/messages/send", "/api/messages/send", AVA, 201, json=body)
    await r.rest("POST", "/api/messages/send", "/api/messages/send", AVA, 200, json=body)
    await r.rest("POST", "/api/messages/send", "/api/messages/send", AVA, 400, json={})
    await r.rest("POST", "/api/messages/send", "/api/messages/send", None, 401, json=body)
    other = {"conversation_id": str(uuid.uuid4()), "message": "x"}
    await r.rest("POST", "/api/messages/send", "/api/messages/send", AVA, 404, json=other)
    await r.rest("GET", "/api/conversations", "/api/conversations", LEO, 200)
    await r.rest("GET", "/api/conversations", f"/api/conversations?user_id={AVA}", LEO, 403)
    history = "/api/conversations/{id}/messages"
    page = await r.rest(
        "GET", history, f"/api/conversations/{BID_CONVERSATION}/messages?limit=2", LEO, 200
    )
    assert page["messages"]
    await r.rest("GET", history, f"/api/conversations/{uuid.uuid4()}/messages", LEO, 404)
    await r.rest("GET", history, "/api/conversations/nope/messages", LEO, 400)
    seen = {"message_id": sent["message"]["id"]}
    await r.rest("POST", "/api/messages/mark-seen", "/api/messages/mark-seen", LEO, 200, json=seen)
    await rest_lifecycle_round(r, sent["message"]["id"])
    await rest_safety_round(r)
    await rest_attachment_round(r)
    tokens = "/api/fcm-tokens"
    device = {"token": "leo-device-1", "platform": "android"}
    await r.rest("POST", tokens, tokens, LEO, 200, json=device)
    await r.rest("POST", tokens, tokens, LEO, 400, json={"token": "t", "platform": "pager"})
    await r.rest("DELETE", "/api/fcm-tokens/{token}", "/api/fcm-tokens/leo-device-1", LEO, 200)
    await r.rest("DELETE", "/api/fcm-tokens/{token}", "/api/fcm-tokens/leo-device-1", LEO, 404)
    await r.rest("GET", "/healthz", "/healthz", None, 200)
    await r.rest("GET", "/metrics", "/metrics", None, 200)
    await r.rest("GET", "/api/openapi.json", "/api/openapi.json", None, 200)
    await r.rest("GET", "/test-socket", "/test-socket", LEO, 200)
    await r.rest(
        "POST",
        "/test-message",
        "/test-message",
        LEO,
        201,
        json={**body, "client_message_id": "t-1"},
    )
    await demo_round(r)
    assert r.rest_seen == openapi_operations()


async def rest_lifecycle_round(r: Recorder, message_id: str) -> None:
    """Leo acknowledges Ava's message (read already: nothing new), Ava edits
    it and unsends it; the refusals on the way."""
    delivered, one, template = (
        "/api/messages/delivered",
        f"/api/messages/{message_id}",
        "/api/messages/{id}",
    )
    await r.rest("POST", delivered, delivered, LEO, 200, json={"message_ids": [message_id]})
    await r.rest("POST", delivered, delivered, AVA, 403, json={"message_id": message_id})
    unknown = {"message_ids": [str(uuid.uuid4())]}
    await r.rest("POST", delivered, delivered, LEO, 404, json=unknown)
    await r.rest("POST", delivered, delivered, LEO, 400, json={"message_ids": []})
    edited = await r.rest("PATCH", template, one, AVA, 200, json={"message": "over REST, edited"})
    assert edited["message"]["edited_at"]
    await r.rest("PATCH", template, one, LEO, 403, json={"message": "not his"})
    await r.rest("PATCH", template, one, AVA, 400, json={"message": "  "})
    await r.rest(
        "PATCH", template, f"/api/messages/{uuid.uuid4()}", AVA, 404, json={"message": "x"}
    )
    unsent = await r.rest("DELETE", template, one, AVA, 200)
    assert unsent["message"]["deleted_at"]
    await r.rest("PATCH", template, one, AVA, 409, json={"message": "back again"})  # a tombstone
    await r.rest("DELETE", template, f"/api/messages/{uuid.uuid4()}", AVA, 404)


async def attachment_round(r: Recorder, ava: Client, leo: Client) -> None:
    """Leo's app asks for an upload URL, uploads a PNG, sends it as an image
    (Ava gets new_message) and Ava asks for its read URL; an HTML file is
    refused."""
    ask = {"conversationId": BID_CONVERSATION, "contentType": "image/png", "size": 8}
    ticket = await r.call(leo, "attachment_upload", {**ask, "filename": "a.png"})
    assert ticket["ok"], ticket
    png = aiohttp.BytesPayload(b"\x89PNG\r\n\x1a\n", content_type="image/png")
    async with r.bridge.http.put(ticket["uploadUrl"], data=png) as resp:
        assert resp.status == 200
    refused = await r.call(
        leo, "attachment_upload", {**ask, "filename": "a.html", "contentType": "text/html"}
    )
    assert refused["error"]["code"] == "unsupported_type"
    image = {"conversationId": BID_CONVERSATION, "messageType": "image", "mediaUrl": ticket["path"]}
    sent = await r.call(leo, "send_message", image)
    await ava.wait_for("new_message", lambda m: m["message"]["id"] == sent["message"]["id"])
    link = await r.call(ava, "attachment_url", {"messageId": sent["message"]["id"]})
    assert link["ok"] and link["expiresAt"]


async def rest_attachment_round(r: Recorder) -> None:
    """A text file over REST: the upload URL (and its refusals), the upload
    raw and as a form (storage3), the read URL and the download."""
    route = "/api/conversations/{id}/attachments"
    here = f"/api/conversations/{BID_CONVERSATION}/attachments"
    ask = {"filename": "notes.txt", "contentType": "text/plain", "size": 5}
    ticket = await r.rest("POST", route, here, AVA, 201, json=ask)
    await r.rest("POST", route, here, AVA, 415, json={**ask, "contentType": "text/html"})
    await r.rest("POST", route, here, AVA, 413, json={**ask, "size": 10**9})
    await r.rest("POST", route, here, AVA, 400, json={**ask, "filename": ""})
    await r.rest(
        "POST", route, f"/api/conversations/{uuid.uuid4()}/attachments", AVA, 404, json=ask
    )
    upload = "/storage/v1/object/upload/sign/chat-attachments/{path}"
    where = ticket["uploadUrl"].removeprefix(r.bridge.url)
    text = aiohttp.BytesPayload(b"notes", content_type="text/plain")
    await r.rest("PUT", upload, where.split("?")[0] + "?token=x", None, 403, data=text)
    await r.rest(
        "PUT",
        upload,
        where,
        None,
        200,
        data=aiohttp.BytesPayload(b"notes", content_type="text/plain"),
    )
    await r.rest(
        "PUT",
        upload,
        where,
        None,
        409,
        data=aiohttp.BytesPayload(b"again", content_type="text/plain"),
    )
    second = await r.rest("POST", route, here, AVA, 201, json=ask)
    form = aiohttp.FormData()
    form.add_field("file", b"notes", filename="notes.txt", content_type="text/plain")
    await r.rest(
        "POST", upload, second["uploadUrl"].removeprefix(r.bridge.url), None, 200, data=form
    )
    body = {
        "conversation_id": BID_CONVERSATION,
        "message_type": "file",
        "media_url": ticket["path"],
    }
    sent = await r.rest("POST", "/api/messages/send", "/api/messages/send", AVA, 201, json=body)
    never = {**body, "media_url": f"{BID_CONVERSATION}/{uuid.uuid4()}/x.txt"}
    await r.rest("POST", "/api/messages/send", "/api/messages/send", AVA, 409, json=never)
    read = "/api/messages/{id}/attachment"
    link = await r.rest("GET", read, f"/api/messages/{sent['message']['id']}/attachment", LEO, 200)
    await r.rest("GET", read, f"/api/messages/{uuid.uuid4()}/attachment", LEO, 404)
    download = "/storage/v1/object/sign/chat-attachments/{path}"
    got = await r.rest("GET", download, link["url"].removeprefix(r.bridge.url), None, 200)
    assert got == "notes"
    await r.rest(
        "GET",
        download,
        link["url"].split("?")[0].removeprefix(r.bridge.url) + "?token=x",
        None,
        403,
    )


async def rest_safety_round(r: Recorder) -> None:
    """Blocks, a report, a mute (seen in the chat list) and quiet hours, as
    Ava's app does them over REST, with their refusals."""
    blocks = "/api/blocks"
    await r.rest("POST", blocks, blocks, AVA, 201, json={"user_id": MIA})
    await r.rest("POST", blocks, blocks, AVA, 400, json={"user_id": AVA})
    await r.rest("POST", blocks, blocks, AVA, 404, json={"user_id": str(uuid.uuid4())})
    listed = await r.rest("GET", blocks, blocks, AVA, 200)
    assert [b["user_id"] for b in listed["blocks"]] == [MIA]
    await r.rest("DELETE", "/api/blocks/{user_id}", f"/api/blocks/{MIA}", AVA, 200)
    reports = "/api/reports"
    await r.rest("POST", reports, reports, AVA, 201, json={"user_id": LEO, "reason": "scam"})
    await r.rest("POST", reports, reports, AVA, 400, json={"user_id": LEO, "reason": "boring"})
    await r.rest(
        "POST", reports, reports, AVA, 404, json={"message_id": str(uuid.uuid4()), "reason": "spam"}
    )
    mute, muted = "/api/conversations/{id}/mute", f"/api/conversations/{BID_CONVERSATION}/mute"
    await r.rest("PUT", mute, muted, AVA, 200, json={"until": in_an_hour()})
    listing = await r.rest("GET", "/api/conversations", "/api/conversations", AVA, 200)
    row = next(c for c in listing["conversations"] if c["id"] == BID_CONVERSATION)
    assert row["muted"] is True and row["muted_until"] and row["blocked"] is False
    await r.rest("PUT", mute, muted, AVA, 400, json={"until": "yesterday"})
    await r.rest("PUT", mute, f"/api/conversations/{uuid.uuid4()}/mute", AVA, 404)
    await r.rest("DELETE", mute, muted, AVA, 200)
    await r.rest("DELETE", mute, f"/api/conversations/{uuid.uuid4()}/mute", AVA, 404)
    quiet = "/api/quiet-hours"
    hours = {"start": "22:00", "end": "07:00", "time_zone": "Europe/Berlin"}
    await r.rest("PUT", quiet, quiet, AVA, 200, json=hours)
    assert (await r.rest("GET", quiet, quiet, AVA, 200))["quiet_hours"]["start"] == "22:00"
    await r.rest("PUT", quiet, quiet, AVA, 400, json={**hours, "time_zone": "Mars/Olympus"})
    await r.rest("DELETE", quiet, quiet, AVA, 200)
    assert (await r.rest("GET", quiet, quiet, AVA, 200))["quiet_hours"] is None


async def test_limit_answers_match_the_documents(db_dsn: str) -> None:
    """With one socket per user and a tiny budget for "other" requests, a
    second socket of Ava's is refused (`too_many_connections`), her second
    event is acked `rate_limited` and Leo's second REST call is a 429: each
    validates against the documents."""
    limits = dataclasses.replace(NO_LIMITS, other_rate=0.01, other_burst=1, max_sockets_per_user=1)
    async with running(settings_for(db_dsn, limits=limits)) as bridge:
        r = Recorder(bridge)
        ava = await bridge.client(AVA)
        second = bridge.unconnected()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await second.connect(auth={"token": token(AVA)})
        refusal = second.connect_errors[0]
        assert refusal["data"]["code"] == "too_many_connections"
        r.check("connect_error", event_validator("connect_error"), refusal)
        await r.call(ava, "set_quiet_hours", None)
        limited = await r.call(ava, "set_quiet_hours", None)
        assert limited["error"]["code"] == "rate_limited" and limited["error"]["retryable"]
        assert limited["error"]["retry_after"] > 0
        await r.rest("GET", "/api/blocks", "/api/blocks", LEO, 200)
        body = await r.rest("GET", "/api/blocks", "/api/blocks", LEO, 429)
        assert body["error"]["code"] == "rate_limited"
        assert r.failures == []


async def demo_round(r: Recorder) -> None:
    """The demo page's endpoints, as the page calls them."""
    await r.rest("GET", "/", "/", None, 200)
    await r.rest("GET", "/demo/static/{path}", "/demo/static/demo.css", None, 200)
    await r.rest("GET", "/demo/static/{path}", "/demo/static/nothing.js", None, 404)
    await r.rest("GET", "/demo/api/users", "/demo/api/users", None, 200)
    await r.rest("POST", "/demo/api/token", "/demo/api/token", None, 200, json={"user_id": AVA})
    unknown = {"user_id": str(uuid.uuid4())}
    await r.rest("POST", "/demo/api/token", "/demo/api/token", None, 404, json=unknown)
    await r.rest("GET", "/demo/api/campaigns", "/demo/api/campaigns", AVA, 200)
    step = {"action": "submit_work", "conversation_id": BID_CONVERSATION}
    await r.rest("POST", "/demo/api/flow-action", "/demo/api/flow-action", LEO, 200, json=step)
    await r.rest("POST", "/demo/api/flow-action", "/demo/api/flow-action", LEO, 400, json={})
