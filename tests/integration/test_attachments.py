"""Attachments on the local backend (no Storage service: the embedded
default), with real bytes over HTTP: a participant asks for an upload URL,
PUTs the file, sends an image / file message carrying its path over the
socket or REST, and the other participant reads it through a short-lived
signed URL. Every refusal (wrong type, too large declared or uploaded, a
path of another conversation, nothing uploaded, a stranger, a bad token)
is a clear error and stores nothing."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bridge.settings import AttachmentsSettings
from tests.support.demo import AVA, BID_CONVERSATION, CAMPAIGN_CONVERSATION, LEO, MIA
from tests.support.harness import Harness, running, settings_for
from tests.support.waits import eventually

PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
PDF = b"%PDF-1.4\n" + os.urandom(5000)
MAX = 64 * 1024


@pytest.fixture
async def bridge(db_dsn: str, tmp_path: Path) -> Any:
    """The daemon with the local backend under this test's folder and a
    64 KB limit."""
    settings = settings_for(
        db_dsn, attachments=AttachmentsSettings(dir=str(tmp_path / "files"), max_bytes=MAX)
    )
    async with running(settings) as harness:
        yield harness


def ask(name: str = "photo.png", kind: str = "image/png", size: int = len(PNG)) -> dict[str, Any]:
    return {"filename": name, "contentType": kind, "size": size}


async def upload_url(bridge: Harness, user: str, conversation: str, **body: Any) -> Any:
    return await bridge.request(
        "POST", f"/api/conversations/{conversation}/attachments", user, json=body
    )


async def put(bridge: Harness, url: str, data: bytes, kind: str) -> tuple[int, Any]:
    async with bridge.http.put(url, data=data, headers={"Content-Type": kind}) as resp:
        return resp.status, await resp.json(content_type=None)


async def fetch(bridge: Harness, url: str) -> tuple[int, bytes, dict[str, str]]:
    async with bridge.http.get(url) as resp:
        return resp.status, await resp.read(), dict(resp.headers)


async def messages_with_media(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval("select count(*) from public.messages where media_url not like 'http%'")
    )


def stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_an_image_goes_from_upload_to_the_partner_over_the_socket(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Leo asks for an upload URL over the socket, PUTs a PNG, sends an image
    message with its path; Ava gets `new_message` with that path, asks for a
    read URL and downloads exactly Leo's bytes, inline as image/png."""
    leo, ava = await bridge.client(LEO), await bridge.client(AVA)
    await ava.call("join_conversation", BID_CONVERSATION)
    ticket = await leo.call("attachment_upload", {"conversationId": BID_CONVERSATION, **ask()})
    assert ticket["ok"], ticket
    assert ticket["path"].startswith(f"{BID_CONVERSATION}/") and ticket["path"].endswith(
        "/photo.png"
    )
    assert ticket["messageType"] == "image" and ticket["uploadUrl"].startswith(bridge.url)
    status, stored = await put(bridge, ticket["uploadUrl"], PNG, "image/png")
    assert status == 200 and stored["size"] == len(PNG)

    sent = await leo.call(
        "send_message",
        {
            "conversationId": BID_CONVERSATION,
            "message": "",
            "messageType": "image",
            "mediaUrl": ticket["path"],
            "clientMessageId": str(uuid.uuid4()),
        },
    )
    assert sent["ok"], sent
    event = await ava.wait_for("new_message", lambda m: m["message"]["id"] == sent["message"]["id"])
    assert event["message"]["media_url"] == ticket["path"]
    assert event["message"]["message_type"] == "image"

    read = await ava.call("attachment_url", {"messageId": sent["message"]["id"]})
    assert read["ok"] and read["path"] == ticket["path"] and read["expiresAt"]
    status, body, headers = await fetch(bridge, read["url"])
    assert status == 200 and body == PNG
    assert headers["Content-Type"] == "image/png"
    assert headers["Content-Disposition"].startswith("inline")
    assert headers["X-Content-Type-Options"] == "nosniff"
    await leo.close()  # his socket's environ gave the upload URL its host


async def test_a_pdf_goes_over_rest_and_the_history_names_it(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Over REST: Ava asks for an upload URL for a PDF, uploads it as a
    multipart form (as storage3 and supabase-js do), sends a file message;
    Leo's history page carries the path and `GET
    /api/messages/:id/attachment` gives him the bytes as a download."""
    status, ticket = await upload_url(
        bridge, AVA, CAMPAIGN_CONVERSATION, **ask("Brief (final).pdf", "application/pdf", len(PDF))
    )
    assert status == 201, ticket
    assert ticket["path"].endswith("/Brief (final).pdf") and ticket["messageType"] == "file"
    form = aiohttp.FormData()
    form.add_field("cacheControl", "3600")
    form.add_field("file", PDF, filename="Brief (final).pdf", content_type="application/pdf")
    async with bridge.http.put(ticket["uploadUrl"], data=form) as resp:
        assert resp.status == 200, await resp.text()
    status, sent = await bridge.request(
        "POST",
        "/api/messages/send",
        AVA,
        json={
            "conversation_id": CAMPAIGN_CONVERSATION,
            "message": "the brief",
            "message_type": "file",
            "media_url": ticket["path"],
        },
    )
    assert status == 201, sent
    status, page = await bridge.request(
        "GET", f"/api/conversations/{CAMPAIGN_CONVERSATION}/messages", LEO
    )
    assert page["messages"][-1]["media_url"] == ticket["path"]
    status, read = await bridge.request(
        "GET", f"/api/messages/{sent['message']['id']}/attachment", LEO
    )
    assert status == 200 and read["messageType"] == "file"
    status, body, headers = await fetch(bridge, read["url"])
    assert status == 200 and body == PDF
    assert headers["Content-Disposition"].startswith("attachment")


async def test_refused_upload_requests_store_nothing(bridge: Harness, tmp_path: Path) -> None:
    """A type outside the list (415), a declared size over the limit (413),
    a stranger's conversation (404, as a missing one), a missing filename
    (400): each a clear error, no URL, no file."""
    cases = [
        (
            LEO,
            BID_CONVERSATION,
            ask("run.exe", "application/x-msdownload", 10),
            415,
            "unsupported_type",
        ),
        (LEO, BID_CONVERSATION, ask(size=MAX + 1), 413, "too_large"),
        (MIA, BID_CONVERSATION, ask(), 404, "not_found"),
        (LEO, BID_CONVERSATION, {"contentType": "image/png", "size": 10}, 400, "missing_field"),
        (LEO, BID_CONVERSATION, ask(size=0), 400, "invalid_field"),
    ]
    for user, conversation, body, status, code in cases:
        got, answer = await upload_url(bridge, user, conversation, **body)
        assert (got, answer["error"]["code"]) == (status, code), (body, answer)
    mia = await bridge.client(MIA)
    ack = await mia.call("attachment_upload", {"conversationId": BID_CONVERSATION, **ask()})
    assert ack["error"]["code"] == "not_found"
    assert stored_files(tmp_path / "files") == []


async def test_refused_uploads_store_nothing(bridge: Harness, tmp_path: Path) -> None:
    """At the upload URL: bytes over the limit (whatever was declared),
    another type than the one asked for, a token for another path, a
    forged or missing token, and a second upload to the same path are
    refused; only the one good upload is on disk."""
    status, ticket = await upload_url(bridge, LEO, BID_CONVERSATION, **ask(size=100))
    url = ticket["uploadUrl"]
    status, body = await put(bridge, url, os.urandom(MAX + 1), "image/png")
    assert (status, body["error"]["code"]) == (413, "too_large")
    status, body = await put(bridge, url, PNG, "image/jpeg")
    assert (status, body["error"]["code"]) == (415, "type_mismatch")
    other = url.replace("/photo.png?", "/other.png?")
    status, body = await put(bridge, other, PNG, "image/png")
    assert (status, body["error"]["code"]) == (403, "invalid_token")
    status, body = await put(bridge, url.split("?")[0] + "?token=forged", PNG, "image/png")
    assert (status, body["error"]["code"]) == (403, "invalid_token")
    status, body = await put(bridge, url.split("?")[0], PNG, "image/png")
    assert (status, body["error"]["code"]) == (403, "invalid_token")
    assert stored_files(tmp_path / "files") == []
    assert (await put(bridge, url, PNG, "image/png"))[0] == 200
    status, body = await put(bridge, url, PNG, "image/png")
    assert (status, body["error"]["code"]) == (409, "already_uploaded")
    files = stored_files(tmp_path / "files")
    assert sorted(p.name for p in files) == ["meta.json", "object"]
    assert next(p for p in files if p.name == "object").read_bytes() == PNG


async def test_messages_with_bad_attachments_are_refused_and_not_stored(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """A path of another conversation, a made-up path, a path nothing was
    uploaded at, a PDF sent as an image: refused on the socket and over
    REST, no message written; supabase-js is held to the conversation's
    folder by the schema too."""
    status, ticket = await upload_url(
        bridge, AVA, CAMPAIGN_CONVERSATION, **ask("a.pdf", "application/pdf", len(PDF))
    )
    assert (await put(bridge, ticket["uploadUrl"], PDF, "application/pdf"))[0] == 200
    never = f"{BID_CONVERSATION}/{uuid.uuid4()}/ghost.png"
    leo = await bridge.client(LEO)
    cases = [
        (BID_CONVERSATION, "file", ticket["path"], "outside_conversation"),
        (BID_CONVERSATION, "image", f"{BID_CONVERSATION}/x/../../etc.png", "invalid_field"),
        (BID_CONVERSATION, "image", f"{BID_CONVERSATION}/photo.png", "outside_conversation"),
        (BID_CONVERSATION, "image", never, "not_uploaded"),
        (CAMPAIGN_CONVERSATION, "image", ticket["path"], "not_an_image"),
    ]
    before = await messages_with_media(db)
    for conversation, kind, path, code in cases:
        body = {"conversationId": conversation, "messageType": kind, "mediaUrl": path}
        ack = await leo.call("send_message", body)
        assert ack["ok"] is False and ack["error"]["code"] == code, (path, ack)
        status, answer = await bridge.request(
            "POST",
            "/api/messages/send",
            LEO,
            json={"conversation_id": conversation, "message_type": kind, "media_url": path},
        )
        assert answer["error"]["code"] == code and status in (400, 403, 409), answer
    assert await messages_with_media(db) == before
    with pytest.raises(asyncpg.CheckViolationError, match="media_url_in_conversation"):
        await db.execute(
            "insert into public.messages (conversation_id, sender_id, content, message_type,"
            " media_url) values ($1, $2, '', 'file', $3)",
            BID_CONVERSATION,
            LEO,
            ticket["path"],
        )


async def test_read_urls_are_for_readers_only_and_expire(
    db_dsn: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Mia cannot get a read URL for Ava and Leo's attachment (not_found, as
    a missing message); a text message has `no_attachment`; an unsent one
    neither; a read URL stops working once expired, and a token cannot be
    used for another file."""
    settings = settings_for(
        db_dsn, attachments=AttachmentsSettings(dir=str(tmp_path / "files"), read_ttl=1)
    )
    async with running(settings) as bridge:
        status, ticket = await upload_url(bridge, LEO, BID_CONVERSATION, **ask())
        await put(bridge, ticket["uploadUrl"], PNG, "image/png")
        leo = await bridge.client(LEO)
        sent = await leo.call(
            "send_message",
            {
                "conversationId": BID_CONVERSATION,
                "messageType": "image",
                "mediaUrl": ticket["path"],
            },
        )
        message_id = sent["message"]["id"]
        mia = await bridge.client(MIA)
        assert (await mia.call("attachment_url", message_id))["error"]["code"] == "not_found"
        text = await leo.call("send_message", {"conversationId": BID_CONVERSATION, "message": "hi"})
        no = await leo.call("attachment_url", text["message"]["id"])
        assert no["error"]["code"] == "no_attachment"

        read = await leo.call("attachment_url", {"messageId": message_id})
        status, body, _ = await fetch(bridge, read["url"])
        assert status == 200 and body == PNG
        wrong = read["url"].replace("/photo.png?", "/other.png?")
        assert (await fetch(bridge, wrong))[0] == 403
        async with bridge.http.get(read["url"]) as resp:
            assert resp.status == 200

        # The token's `exp` is whole seconds: wait until it has passed.
        async def refused() -> tuple[int, bytes] | None:
            status, body, _ = await fetch(bridge, read["url"])
            return (status, body) if status != 200 else None

        status, body = await eventually(refused, what="the link expired", interval=0.1)
        assert status == 403 and b"expired_token" in body

        assert (await leo.call("unsend_message", message_id))["ok"]
        gone = await leo.call("attachment_url", message_id)
        assert gone["error"]["code"] == "no_attachment"
