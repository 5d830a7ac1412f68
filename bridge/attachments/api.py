"""Attachments on the wire: REST routes, socket events (a mixin of
bridge.server.SocketGateway, registered in CLIENT_EVENTS) and the one place
the backend is chosen (`open_attachments`).

- `attachment_upload` `{ conversationId, filename, contentType, size }`, REST
  `POST /api/conversations/:id/attachments`: a signed upload URL;
- `attachment_url` `{ messageId }` (or a bare id), REST
  `GET /api/messages/:id/attachment`: a short-lived read URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from bridge.attachments.local import LocalBackend
from bridge.attachments.rules import Rules
from bridge.attachments.service import Attachments
from bridge.db_health import DatabaseHealth
from bridge.payloads import as_uuid, id_payload
from bridge.rest import IDENTITY, json_body
from bridge.settings import Settings

if TYPE_CHECKING:
    import socketio

    from bridge.server import SocketSession
    from bridge.store import Store

Ack = dict[str, Any]
ATTACHMENT_EVENTS = ("attachment_upload", "attachment_url")


def open_attachments(settings: Settings, store: Store, health: DatabaseHealth) -> Attachments:
    """The backend the settings name (bridge/attachments/__init__.py)."""
    a = settings.attachments
    rules = Rules(a.max_bytes, tuple(t.lower() for t in a.allowed_types))
    backend: Any
    if settings.attachments_backend == "storage":
        from bridge.attachments.storage import StorageBackend  # storage3 only when used

        backend = StorageBackend(
            settings.supabase.url, settings.supabase.service_role_key, a.bucket, rules
        )
    else:
        backend = LocalBackend(
            settings.attachments_dir, a.bucket, settings.jwt_secret, rules, a.upload_ttl
        )
    return Attachments(store, backend, rules, a.read_ttl, a.bucket, health, a.sweep_interval)


def request_base(request: web.Request, public_url: str) -> str:
    """The bridge's address as this client reached it (the local backend's
    signed URLs point there); `attachments.public_url` wins behind a proxy."""
    if public_url:
        return public_url.rstrip("/")
    return f"{request.scheme}://{request.host}"


def environ_base(environ: dict[str, Any], public_url: str) -> str:
    if public_url:
        return public_url.rstrip("/")
    scheme = environ.get("wsgi.url_scheme", "http")
    host = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}"
    return f"{scheme}://{host}"


class AttachmentRoutes:
    def __init__(self, attachments: Attachments, public_url: str) -> None:
        self.attachments = attachments
        self.public_url = public_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/conversations/{id}/attachments", self.upload),
            web.get("/api/messages/{id}/attachment", self.read_url),
            *self.attachments.backend.routes(),
        ]

    async def upload(self, request: web.Request) -> web.Response:
        conversation_id = as_uuid(request.match_info["id"], "id")
        upload = await self.attachments.request_upload(
            request[IDENTITY].user_id,
            await json_body(request),
            request_base(request, self.public_url),
            conversation_id,
        )
        return web.json_response({"ok": True, **upload}, status=201)

    async def read_url(self, request: web.Request) -> web.Response:
        message_id = as_uuid(request.match_info["id"], "id")
        answer = await self.attachments.read_url(
            request[IDENTITY].user_id, message_id, request_base(request, self.public_url)
        )
        return web.json_response({"ok": True, **answer})


class AttachmentEvents:
    sio: socketio.AsyncServer
    attachments: Attachments | None
    attachments_public_url: str

    def _base_of(self, session: SocketSession) -> str:
        environ = self.sio.get_environ(session.sid) or {}
        return environ_base(environ, self.attachments_public_url)

    def _attachments(self) -> Attachments:
        if self.attachments is None:
            raise RuntimeError("attachments are not set up")
        return self.attachments

    async def attachment_upload(self, session: SocketSession, data: Any) -> Ack:
        """`{ conversationId, filename, contentType, size }` → a signed
        upload URL; then send_message `{ messageType, mediaUrl: path }`."""
        upload = await self._attachments().request_upload(
            session.user_id, data, self._base_of(session)
        )
        return {"ok": True, **upload}

    async def attachment_url(self, session: SocketSession, data: Any) -> Ack:
        """`{ messageId }` → a short-lived URL of the message's attachment."""
        message_id = id_payload(data, "messageId", "message_id", field="messageId")
        assert message_id is not None
        answer = await self._attachments().read_url(
            session.user_id, message_id, self._base_of(session)
        )
        return {"ok": True, **answer}
