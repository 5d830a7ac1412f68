"""What both attachment backends share: who may upload where, what a message
may carry, and read URLs for whoever may read the message.

- An upload URL is handed out to a participant of the conversation (not
  across a block), for a declared name, type and size the settings allow,
  at a fresh path `<conversation>/<uuid>/<file name>`.
- A message of type image or file whose `media_url` is not a full URL must
  name an object of its own conversation that was uploaded, within the
  limits, of an allowed type (an image for an image message). Checked
  before the message is written, so a refusal stores nothing. Full URLs
  (the seed's clients, hosted elsewhere) pass as before.
- A read URL is signed for a message the caller can read (RLS decides, as
  for history), valid `attachments.read_ttl` seconds.
"""

from __future__ import annotations

import time
from typing import Any

from bridge.attachments import Backend
from bridge.attachments.removals import AttachmentRemovals
from bridge.attachments.rules import (
    AttachmentError,
    Rules,
    check_stored,
    is_external_url,
    object_path,
    path_in_conversation,
    upload_request,
)
from bridge.db_health import DatabaseHealth
from bridge.errors import PayloadError, StoreError, attachment_removed, blocked
from bridge.payloads import SendMessage
from bridge.safety.store import SafetyStore
from bridge.store import Store

Json = dict[str, Any]


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Attachments:
    def __init__(
        self,
        store: Store,
        backend: Backend,
        rules: Rules,
        read_ttl: float,
        bucket: str,
        health: DatabaseHealth,
        sweep_interval: float = 30.0,
    ) -> None:
        self.store = store
        self.safety = SafetyStore(store)
        self.backend = backend
        self.rules = rules
        self.read_ttl = int(read_ttl)
        self.bucket = bucket
        self.removals = AttachmentRemovals(store.pool, backend, sweep_interval, health)

    def unsent(self) -> None:
        """A message was unsent here: its attachment (if any) was queued in
        the unsend's transaction; remove it now rather than at the next sweep."""
        self.removals.nudge()

    async def _participant(self, user_id: str, conversation_id: str) -> str:
        partner = await self.store.conversation_partner(user_id, conversation_id)
        if partner is None:  # the same answer as a conversation that does not exist
            raise StoreError("not_found", "conversation not found", 404)
        return partner

    async def request_upload(
        self, user_id: str, payload: Any, base_url: str, conversation_id: str | None = None
    ) -> Json:
        """A signed upload URL for one file; nothing is stored yet."""
        req = upload_request(payload, self.rules, conversation_id)
        partner = await self._participant(user_id, req.conversation_id)
        if await self.safety.blocked_between(user_id, partner):
            raise blocked()
        path = object_path(req)
        signed = await self.backend.signed_upload(path, req, user_id, base_url)
        return {
            "path": path,
            "bucket": self.bucket,
            "uploadUrl": signed.url,
            "token": signed.token,
            "method": "PUT",
            "headers": {"Content-Type": req.content_type},
            "expiresAt": _iso(signed.expires_at),
            "maxBytes": self.rules.max_bytes,
            "contentType": req.content_type,
            "messageType": "image" if req.content_type.startswith("image/") else "file",
        }

    async def check_send(self, user_id: str, req: SendMessage) -> None:
        """Refuses (before anything is written) a message whose attachment
        path is not an uploaded object of its conversation within the limits."""
        media = req.media_url
        if media is None or is_external_url(media):
            return
        if req.message_type not in ("image", "file"):
            raise PayloadError(
                "invalid_field", "an attachment needs messageType image or file", "messageType"
            )
        path_in_conversation(media, req.conversation_id)
        await self._participant(user_id, req.conversation_id)
        found = await self.backend.stat(media)
        if found is None and await self._removal_queued(media):
            # Gone from storage but still queued (the sweeper removes the
            # object before it drops the row): the reason, not "upload it
            # first". While the object is there, the insert itself is
            # refused (public.refuse_removed_attachment, under the path's
            # lock) and bridge.store_errors answers the same.
            raise attachment_removed()
        check_stored(found, self.rules, req.message_type)

    async def _removal_queued(self, path: str) -> bool:
        return bool(
            await self.store.pool.fetchval(
                "select exists (select 1 from public.attachment_removals where path = $1)", path
            )
        )

    async def read_url(self, user_id: str, message_id: str, base_url: str) -> Json:
        """A short-lived URL of a message's attachment, for a reader of the
        message; a full URL in media_url is answered as it is."""
        async with self.store.as_user(user_id) as conn:
            row = await conn.fetchrow(
                "select conversation_id::text, media_url, message_type::text, deleted_at"
                " from public.messages where id = $1",
                message_id,
            )
        if row is None:
            raise StoreError("not_found", "message not found", 404)
        media = row["media_url"]
        if media is None:
            gone = row["deleted_at"] is not None
            raise AttachmentError(
                "no_attachment",
                "the message was unsent" if gone else "the message has no attachment",
                404,
                "messageId",
            )
        base = {"messageId": message_id, "messageType": row["message_type"]}
        if is_external_url(media):
            return {**base, "url": media, "path": None, "expiresAt": None}
        url = await self.backend.signed_read(media, self.read_ttl, base_url)
        return {
            **base,
            "url": url,
            "path": media,
            "expiresAt": _iso(time.time() + self.read_ttl),
        }
