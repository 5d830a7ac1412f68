"""Attachments on Supabase Storage: the bridge with a service role key talks
to Storage through the real storage3 client, here against the local
storage-api stand-in (tests/support/storage.py). The client app uploads
with storage3 too (`upload_to_signed_url`, as supabase-py / supabase-js
apps do), sends the path, and the partner downloads from Storage's own
signed URL. Storage's refusals (size, type) and outages reach the client
as the bridge's clear errors, and nothing is stored."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import pytest
from storage3 import AsyncStorageClient
from storage3.exceptions import StorageApiError

from bridge.settings import AttachmentsSettings
from tests.support.demo import AVA, BID_CONVERSATION, LEO, MIA
from tests.support.harness import SECRET, Harness, running, settings_for
from tests.support.storage import StorageStandIn
from tests.support.waits import assert_quiet_log, eventually

SERVICE_KEY = "sb_secret_test_service_role_key"
ANON_KEY = "sb_publishable_test_anon_key"
BUCKET = "chat-attachments"
MAX = 32 * 1024
JPEG = b"\xff\xd8\xff\xe0" + os.urandom(3000)


@pytest.fixture
async def storage() -> AsyncIterator[StorageStandIn]:
    standin = StorageStandIn(SERVICE_KEY, SECRET)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
async def bridge(db_dsn: str, storage: StorageStandIn, tmp_path: Path) -> AsyncIterator[Harness]:
    """The daemon on Storage (a service role key set: `auto` picks it)."""
    settings = settings_for(
        db_dsn,
        attachments=AttachmentsSettings(dir=str(tmp_path / "unused"), max_bytes=MAX),
    )
    settings = dataclasses.replace(
        settings,
        supabase=dataclasses.replace(
            settings.supabase, url=storage.url, service_role_key=SERVICE_KEY
        ),
    )
    assert settings.attachments_backend == "storage"
    async with running(settings) as harness:
        yield harness
    assert not (tmp_path / "unused").exists()  # nothing kept locally


def app_storage(storage: StorageStandIn) -> AsyncStorageClient:
    """The client app's own storage3 client, with the anon key only."""
    return AsyncStorageClient(
        f"{storage.url}/storage/v1/",
        {"apikey": ANON_KEY, "Authorization": f"Bearer {ANON_KEY}"},
        http_client=httpx.AsyncClient(timeout=10),
    )


async def ticket_for(bridge: Harness, user: str, **body: Any) -> tuple[int, Any]:
    return await bridge.request(
        "POST", f"/api/conversations/{BID_CONVERSATION}/attachments", user, json=body
    )


async def test_the_bucket_is_made_private_with_the_settings_limits(
    bridge: Harness, storage: StorageStandIn
) -> None:
    """Nothing is asked of Storage at start; before the first upload URL the
    bridge creates the missing bucket through Storage's API: private, with
    attachments.max_bytes and allowed_types as its limits."""
    assert storage.requests == [] and storage.buckets == {}
    status, _ = await ticket_for(bridge, AVA, filename="a.png", contentType="image/png", size=5)
    assert status == 201
    bucket = storage.buckets[BUCKET]
    assert bucket["public"] is False and bucket["file_size_limit"] == MAX
    assert "image/jpeg" in bucket["allowed_mime_types"]
    assert "text/html" not in bucket["allowed_mime_types"]


async def test_an_image_travels_through_storage(
    bridge: Harness, storage: StorageStandIn, db: asyncpg.Connection
) -> None:
    """Leo gets a signed upload URL from the bridge, uploads with storage3's
    upload_to_signed_url, sends the image over the socket; Ava asks for a
    read URL and downloads Leo's bytes from Storage."""
    status, ticket = await ticket_for(
        bridge, LEO, filename="set photo.jpg", contentType="image/jpeg", size=len(JPEG)
    )
    assert status == 201, ticket
    assert ticket["uploadUrl"].startswith(f"{storage.url}/storage/v1/object/upload/sign/{BUCKET}/")
    client = app_storage(storage)
    await client.from_(BUCKET).upload_to_signed_url(
        ticket["path"], ticket["token"], JPEG, {"content-type": "image/jpeg"}
    )
    leo, ava = await bridge.client(LEO), await bridge.client(AVA)
    sent = await leo.call(
        "send_message",
        {"conversationId": BID_CONVERSATION, "messageType": "image", "mediaUrl": ticket["path"]},
    )
    assert sent["ok"], sent
    read = await ava.call("attachment_url", sent["message"]["id"])
    assert read["ok"] and read["url"].startswith(f"{storage.url}/storage/v1/object/sign/{BUCKET}/")
    async with aiohttp.ClientSession() as http, http.get(read["url"]) as resp:
        assert resp.status == 200 and await resp.read() == JPEG
    mia = await bridge.client(MIA)
    assert (await mia.call("attachment_url", sent["message"]["id"]))["error"]["code"] == (
        "not_found"
    )


async def test_storage_refusals_and_missing_objects_store_no_message(
    bridge: Harness, storage: StorageStandIn, db: asyncpg.Connection
) -> None:
    """Storage refuses an upload over the bucket's limit and one of another
    type (its own errors, to the uploading app); a path nothing reached is
    `not_uploaded` at send; no message is written for any of them."""
    before = await db.fetchval("select count(*) from public.messages")
    client = app_storage(storage).from_(BUCKET)
    _, big = await ticket_for(bridge, LEO, filename="big.jpg", contentType="image/jpeg", size=10)
    with pytest.raises(StorageApiError) as refused:
        await client.upload_to_signed_url(
            big["path"], big["token"], os.urandom(MAX + 1), {"content-type": "image/jpeg"}
        )
    assert str(refused.value.status) == "413"
    _, html = await ticket_for(bridge, LEO, filename="x.jpg", contentType="image/jpeg", size=10)
    with pytest.raises(StorageApiError) as refused:
        await client.upload_to_signed_url(
            html["path"], html["token"], b"<script>", {"content-type": "text/html"}
        )
    assert str(refused.value.status) == "415"
    assert storage.objects == {}
    for path in (big["path"], html["path"], f"{BID_CONVERSATION}/{uuid.uuid4()}/never.jpg"):
        status, body = await bridge.request(
            "POST",
            "/api/messages/send",
            LEO,
            json={"conversation_id": BID_CONVERSATION, "message_type": "image", "media_url": path},
        )
        assert (status, body["error"]["code"]) == (409, "not_uploaded"), body
    assert await db.fetchval("select count(*) from public.messages") == before


async def test_storage_down_is_a_retryable_refusal(
    bridge: Harness, storage: StorageStandIn, db: asyncpg.Connection
) -> None:
    """While Storage answers 503, asking for an upload URL and sending an
    attachment are refused `storage_unavailable` (503, Retry-After,
    retryable) and nothing is written; once it is back, the same calls work."""
    _, ticket = await ticket_for(bridge, LEO, filename="a.jpg", contentType="image/jpeg", size=9)
    await (
        app_storage(storage)
        .from_(BUCKET)
        .upload_to_signed_url(
            ticket["path"], ticket["token"], JPEG[:9], {"content-type": "image/jpeg"}
        )
    )
    before = await db.fetchval("select count(*) from public.messages")
    storage.fail_with(503)
    status, body = await ticket_for(bridge, LEO, filename="b.jpg", contentType="image/jpeg", size=9)
    assert (status, body["error"]["code"], body["error"]["retryable"]) == (
        503,
        "storage_unavailable",
        True,
    )
    leo = await bridge.client(LEO)
    send = {"conversationId": BID_CONVERSATION, "messageType": "image", "mediaUrl": ticket["path"]}
    ack = await leo.call("send_message", send)
    assert ack["error"]["code"] == "storage_unavailable" and ack["error"]["retryable"]
    assert await db.fetchval("select count(*) from public.messages") == before
    storage.fail_with(None)
    assert (await leo.call("send_message", send))["ok"]


async def _sent_photo(bridge: Harness, storage: StorageStandIn) -> tuple[dict[str, Any], str]:
    """Leo's photo uploaded with storage3 and sent; the message and path."""
    _, ticket = await ticket_for(
        bridge, LEO, filename="p.jpg", contentType="image/jpeg", size=len(JPEG)
    )
    await (
        app_storage(storage)
        .from_(BUCKET)
        .upload_to_signed_url(ticket["path"], ticket["token"], JPEG, {"content-type": "image/jpeg"})
    )
    leo = await bridge.client(LEO)
    sent = await leo.call(
        "send_message",
        {"conversationId": BID_CONVERSATION, "messageType": "image", "mediaUrl": ticket["path"]},
    )
    assert sent["ok"], sent
    return sent["message"], ticket["path"]


async def test_unsending_deletes_the_object_from_storage(
    bridge: Harness, storage: StorageStandIn, db: asyncpg.Connection
) -> None:
    """Leo unsends his photo: the bridge deletes the object through
    storage-api's `DELETE /object/<bucket>` (storage3's remove), the read
    URL Ava had stops working, and nothing stays queued."""
    message, path = await _sent_photo(bridge, storage)
    ava = await bridge.client(AVA)
    read = await ava.call("attachment_url", message["id"])
    assert read["ok"]
    leo = await bridge.client(LEO)
    assert (await leo.call("unsend_message", {"messageId": message["id"]}))["ok"]

    async def gone() -> bool:
        return (BUCKET, path) not in storage.objects and not await db.fetchval(
            "select count(*) from public.attachment_removals"
        )

    await eventually(gone, what="the object deleted")
    assert ("DELETE", f"/storage/v1/object/{BUCKET}") in storage.requests
    async with aiohttp.ClientSession() as http, http.get(read["url"]) as resp:
        body = await resp.json()
        assert resp.status == 400 and body["statusCode"] == "404"  # storage-api's not_found


async def test_storage_down_at_unsend_is_retried_later(
    bridge: Harness,
    storage: StorageStandIn,
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Storage answers 503 when Leo unsends: the unsend itself succeeds, the
    failure is one warning (no traceback) and the path stays queued with
    its error and a later attempt time; once Storage is back and the
    attempt is due, the sweep deletes the object."""
    message, path = await _sent_photo(bridge, storage)
    storage.fail_with(503)
    leo = await bridge.client(LEO)
    assert (await leo.call("unsend_message", {"messageId": message["id"]}))["ok"]

    async def failed_once() -> bool:
        row = await db.fetchrow(
            "select attempts, last_error, next_attempt_at > now() as later"
            " from public.attachment_removals where path = $1",
            path,
        )
        return row is not None and row["last_error"] is not None and row["later"]

    await eventually(failed_once, what="the failed attempt recorded")
    assert (BUCKET, path) in storage.objects
    assert any("removing an unsent attachment failed" in r.getMessage() for r in caplog.records)
    assert_quiet_log(caplog.records)

    storage.fail_with(None)
    await db.execute("update public.attachment_removals set next_attempt_at = now()")
    assert bridge.app.attachments is not None
    bridge.app.attachments.removals.nudge()

    async def gone() -> bool:
        return (BUCKET, path) not in storage.objects and not await db.fetchval(
            "select count(*) from public.attachment_removals"
        )

    await eventually(gone, what="the object deleted on retry")
