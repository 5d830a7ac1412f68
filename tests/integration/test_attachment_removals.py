"""Unsending a message removes its attachment from storage (local backend
here; Supabase Storage in test_attachments_storage.py): after the unsend
commits the bytes leave the disk and the signed URL handed out before
answers 404; an object another live message still names is kept; an unsend
through supabase-js (no bridge call) is caught by the sweep; a queued path
can no longer be sent, nor read under the storage policies; the database
away is one outage warning, not a line per sweep."""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bridge.attachments.local import LocalBackend
from bridge.attachments.removals import AttachmentRemovals
from bridge.attachments.rules import Rules
from bridge.db import acting_as, user_claims
from bridge.db_health import DatabaseHealth
from bridge.embedded import free_port
from bridge.metrics import Metrics
from bridge.settings import AttachmentsSettings
from bridge.tasks import stop_tasks
from tests.support.database import ATTACHMENTS_BUCKET, attach_as, object_visible, put_object
from tests.support.demo import AVA, BID_CONVERSATION, LEO
from tests.support.harness import Harness, running, settings_for
from tests.support.waits import assert_quiet_log, eventually

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
BUCKET = ATTACHMENTS_BUCKET


@pytest.fixture
async def bridge(db_dsn: str, tmp_path: Path) -> Any:
    """The daemon on the local backend; the periodic sweep effectively off
    (an hour), so what removes a file is the unsend's own nudge or an
    explicit sweep."""
    settings = settings_for(
        db_dsn,
        attachments=AttachmentsSettings(dir=str(tmp_path / "files"), sweep_interval=3600),
    )
    async with running(settings) as harness:
        yield harness


async def upload(bridge: Harness, user: str) -> str:
    """A PNG uploaded through the bridge's signed upload URL; its path."""
    status, ticket = await bridge.request(
        "POST",
        f"/api/conversations/{BID_CONVERSATION}/attachments",
        user,
        json={"filename": "photo.png", "contentType": "image/png", "size": len(PNG)},
    )
    assert status == 201, ticket
    async with bridge.http.put(
        ticket["uploadUrl"], data=PNG, headers={"Content-Type": "image/png"}
    ) as resp:
        assert resp.status == 200
    return str(ticket["path"])


async def send_image(bridge: Harness, user: str, path: str) -> dict[str, Any]:
    status, body = await bridge.request(
        "POST",
        "/api/messages/send",
        user,
        json={"conversation_id": BID_CONVERSATION, "message_type": "image", "media_url": path},
    )
    assert status in (200, 201), body
    return dict(body["message"])


async def read_url(bridge: Harness, user: str, message_id: str) -> str:
    status, body = await bridge.request("GET", f"/api/messages/{message_id}/attachment", user)
    assert status == 200, body
    return str(body["url"])


async def get_status(bridge: Harness, url: str) -> int:
    async with bridge.http.get(url) as resp:
        await resp.read()
        return resp.status


def on_disk(root: Path, path: str) -> bool:
    return (root / BUCKET / Path(path).parent / "object").exists()


async def queued(db: asyncpg.Connection) -> int:
    return int(await db.fetchval("select count(*) from public.attachment_removals"))


async def test_unsending_an_image_removes_its_file(
    bridge: Harness, db: asyncpg.Connection, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Leo sends a photo, Ava opens it; Leo unsends it over the socket: the
    file leaves the disk, the URL Ava was given answers 404, nothing stays
    queued, and the log has no traceback."""
    caplog.set_level(logging.INFO)
    root = tmp_path / "files"
    path = await upload(bridge, LEO)
    message = await send_image(bridge, LEO, path)
    url = await read_url(bridge, AVA, message["id"])
    assert await get_status(bridge, url) == 200 and on_disk(root, path)

    leo = await bridge.client(LEO)
    assert (await leo.call("unsend_message", {"messageId": message["id"]}))["ok"]

    async def gone() -> bool:
        return not on_disk(root, path) and await queued(db) == 0

    await eventually(gone, what="the unsent photo removed")
    assert not (root / BUCKET / Path(path).parent).exists()
    assert await get_status(bridge, url) == 404
    status, body = await bridge.request("GET", f"/api/messages/{message['id']}/attachment", AVA)
    assert (status, body["error"]["code"]) == (404, "no_attachment")
    assert_quiet_log(caplog.records)


async def test_an_object_another_live_message_names_is_kept(
    bridge: Harness, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Leo sent the same uploaded photo twice; unsending one (REST) keeps
    the file for the other, which Ava still opens; unsending the second
    removes it."""
    root = tmp_path / "files"
    path = await upload(bridge, LEO)
    first = await send_image(bridge, LEO, path)
    second = await send_image(bridge, LEO, path)

    status, _ = await bridge.request("DELETE", f"/api/messages/{first['id']}", LEO)
    assert status == 200
    await eventually(lambda: _zero(db), what="the removal request settled")
    assert on_disk(root, path)
    assert await get_status(bridge, await read_url(bridge, AVA, second["id"])) == 200

    status, _ = await bridge.request("DELETE", f"/api/messages/{second['id']}", LEO)
    assert status == 200

    async def gone() -> bool:
        return not on_disk(root, path)

    await eventually(gone, what="the last reference's photo removed")


async def _zero(db: asyncpg.Connection) -> bool:
    return await queued(db) == 0


async def test_a_supabase_js_unsend_is_swept_and_its_path_cannot_be_sent_again(
    bridge: Harness, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Leo unsends through supabase-js (the `unsend_message` RPC, no bridge
    call): the path is queued in the unsend's transaction; until the sweep
    runs, sending a new message with that path is refused
    `attachment_removed` and nothing is written; the sweep removes the file."""
    root = tmp_path / "files"
    path = await upload(bridge, LEO)
    message = await send_image(bridge, LEO, path)
    async with db.transaction(), acting_as(db, user_claims(LEO)):
        await db.execute("select public.unsend_message($1)", uuid.UUID(message["id"]))
    assert await queued(db) == 1 and on_disk(root, path)

    before = await db.fetchval("select count(*) from public.messages")
    status, body = await bridge.request(
        "POST",
        "/api/messages/send",
        LEO,
        json={"conversation_id": BID_CONVERSATION, "message_type": "image", "media_url": path},
    )
    assert (status, body["error"]["code"]) == (410, "attachment_removed"), body
    assert await db.fetchval("select count(*) from public.messages") == before

    assert bridge.app.attachments is not None
    assert await bridge.app.attachments.removals.sweep() == 1
    assert not on_disk(root, path) and await queued(db) == 0


async def test_a_queued_path_is_refused_over_the_socket_before_and_after_its_file_goes(
    bridge: Harness, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """Leo unsends a photo through supabase-js, then sends a new socket
    message naming its path: while the file is still on disk the database
    refuses the insert, and once the sweeper's first step removed the file
    (its queued row not yet dropped) the bridge does; both times the ack
    reads `attachment_removed` on `mediaUrl` (not `not_uploaded`), and no
    message is written."""
    root = tmp_path / "files"
    path = await upload(bridge, LEO)
    message = await send_image(bridge, LEO, path)
    async with db.transaction(), acting_as(db, user_claims(LEO)):
        await db.execute("select public.unsend_message($1)", uuid.UUID(message["id"]))
    before = await db.fetchval("select count(*) from public.messages")
    leo = await bridge.client(LEO)
    body = {"conversationId": BID_CONVERSATION, "messageType": "image", "mediaUrl": path}
    refused = {
        "code": "attachment_removed",
        "message": "the attachment was removed (its message was unsent)",
        "field": "mediaUrl",
    }

    assert on_disk(root, path)
    assert await leo.call("send_message", body) == {"ok": False, "error": refused}

    assert bridge.app.attachments is not None
    await bridge.app.attachments.backend.remove(path)
    assert not on_disk(root, path) and await queued(db) == 1
    assert await leo.call("send_message", body) == {"ok": False, "error": refused}
    assert await db.fetchval("select count(*) from public.messages") == before


async def test_a_queued_path_is_unreadable_under_the_storage_policies(
    db: asyncpg.Connection,
) -> None:
    """supabase-js reading storage.objects directly: a participant sees the
    photo of a live message; once the message is unsent (before any sweep)
    neither participant can read the object, and a new message naming the
    path is refused by the schema itself."""
    path = f"{BID_CONVERSATION}/{uuid.uuid4()}/photo.png"
    await put_object(db, LEO, path)
    message_id = await attach_as(db, LEO, BID_CONVERSATION, path)

    assert await object_visible(db, AVA, path) and await object_visible(db, LEO, path)
    async with db.transaction(), acting_as(db, user_claims(LEO)):
        await db.execute("select public.unsend_message($1)", message_id)
    assert not await object_visible(db, AVA, path)
    assert not await object_visible(db, LEO, path)
    with pytest.raises(asyncpg.CheckViolationError, match="attachment was removed"):
        await attach_as(db, LEO, BID_CONVERSATION, path)


async def test_unsending_a_message_naming_another_file_of_the_folder_removes_nothing(
    bridge: Harness, db: asyncpg.Connection, tmp_path: Path
) -> None:
    """A supabase-js client inserts a message whose path is the folder of
    Leo's real photo with another file name, then unsends it: the sweep
    removes nothing, and Ava still opens Leo's photo."""
    root = tmp_path / "files"
    path = await upload(bridge, LEO)
    message = await send_image(bridge, LEO, path)
    lookalike = path.rsplit("/", 1)[0] + "/other.png"
    other = await attach_as(db, LEO, BID_CONVERSATION, lookalike)
    async with acting_as(db, user_claims(LEO)):
        await db.execute("select public.unsend_message($1)", other)
    assert bridge.app.attachments is not None
    assert await bridge.app.attachments.removals.sweep() == 1
    assert await queued(db) == 0 and on_disk(root, path)
    assert await get_status(bridge, await read_url(bridge, AVA, message["id"])) == 200


async def test_the_database_away_is_one_outage_warning_not_one_per_sweep(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The sweeper cannot reach the database (nothing listens at its
    address) round after round: the bridge's database health counts every
    failed round, the log has one "database unreachable" warning for the
    whole outage and no traceback, and the sweeper logs nothing of its own."""
    caplog.set_level(logging.INFO)
    metrics = Metrics()
    health = DatabaseHealth(metrics)
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    pool = await asyncpg.create_pool(dsn, min_size=0)
    backend = LocalBackend(tmp_path, BUCKET, "secret", Rules(len(PNG), ("image/png",)), 60)
    sweeper = asyncio.create_task(AttachmentRemovals(pool, backend, 0.01, health).run())
    try:

        async def rounds_failed() -> bool:
            return metrics.counts["database_unavailable"] >= 3

        await eventually(rounds_failed, what="three sweeps failed")
    finally:
        await stop_tasks([sweeper])
        await pool.close()
    assert not health.up
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["database unreachable"]
    assert [r for r in caplog.records if r.exc_info] == []
