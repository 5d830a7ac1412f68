"""The REST API of DESIGN.md, on the same aiohttp server as Socket.IO.
Every /api route and the test endpoints need a Supabase bearer token; errors
are JSON `{ error: { code, message } }` with a fitting status, never a 500
for bad input."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web

from bridge import payloads
from bridge.attachments.service import Attachments
from bridge.auth import Identity, TokenVerifier, bearer
from bridge.db_health import RETRY_AFTER, DatabaseHealth, is_outage
from bridge.errors import BridgeError, PayloadError, RateLimited, unavailable
from bridge.limits import Limiter
from bridge.logs import NOISE, describe
from bridge.metrics import Metrics
from bridge.outbox.doorbells.base import Doorbell
from bridge.presence import PresenceRegistry
from bridge.store import Store
from bridge.views import chat_list_entry, public_message

log = logging.getLogger(__name__)

IDENTITY = web.RequestKey("identity", Identity)
PLATFORMS = ("android", "ios", "web")
MAX_TOKEN_CHARS = 4096
PUBLIC_PATHS = ("/healthz",)


def openapi_document() -> bytes:
    """bridge/openapi.json: the REST API's OpenAPI 3.1 document, written by
    hand and checked against the routes by tests/integration/test_api_documents.py."""
    return resources.files("bridge").joinpath("openapi.json").read_bytes()


def public(handler: Any) -> Any:
    """Marks a route handler as open without a token (the demo page's files
    and dev-only sign-in, bridge/demo/; /metrics, which has its own optional
    token; the OpenAPI document): the auth middleware lets it pass."""
    handler.public_route = True
    return handler


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def error_response(exc: BridgeError) -> web.Response:
    """The REST rendering of a refusal: its status, `{ error }`, and
    Retry-After when trying again may succeed."""
    response = web.json_response({"error": exc.as_dict()}, status=exc.status)
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    elif exc.retryable:
        response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


# REST routes by rate-limit kind (bridge/limits); other /api requests are "other".
ROUTE_KINDS = {
    ("POST", "/api/messages/send"): "send",
    ("POST", "/test-message"): "send",
    ("POST", "/api/messages/mark-seen"): "read",
    ("POST", "/api/messages/delivered"): "read",
    ("PATCH", "/api/messages/{id}"): "send",
    ("DELETE", "/api/messages/{id}"): "send",
    ("POST", "/api/conversations/{id}/attachments"): "send",
}


def make_limit_middleware(limits: Limiter) -> Any:
    """The signed-in user's token buckets, shared with their sockets: over
    the limit a request is 429 `rate_limited` with Retry-After, before its
    handler runs (so nothing is written)."""

    @web.middleware
    async def limit(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        identity = request.get(IDENTITY)
        if identity is not None:
            route = request.match_info.route.resource
            path = route.canonical if route is not None else request.path
            await limits.check(identity.user_id, ROUTE_KINDS.get((request.method, path), "other"))
        return await handler(request)

    return limit


def make_error_middleware(metrics: Metrics, health: DatabaseHealth) -> Any:
    @web.middleware
    async def errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except BridgeError as exc:
            return error_response(exc)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "http_error"
            )
            return json_error(exc.status, code, exc.reason)
        except Exception as exc:
            if is_outage(exc):
                health.failed(exc)
                return error_response(unavailable())
            if request.path.startswith("/socket.io"):
                # engine.io raises on transport packets it cannot decode: the
                # client's junk, logged rate-limited without a traceback.
                NOISE.note("engineio:malformed_packet", describe(exc))
                return json_error(400, "invalid_packet", "malformed Engine.IO packet")
            metrics.inc("rest_errors")
            log.exception("request failed", extra={"path": request.path})
            return json_error(500, "internal", "the request could not be handled")

    return errors


def make_auth_middleware(
    verifier: TokenVerifier, known_user: Callable[[str], Awaitable[bool]]
) -> Any:
    """A valid token is not enough: its user needs a chat profile, as for
    the socket's connect (`unknown_user`)."""

    @web.middleware
    async def authenticate(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if (
            request.method == "OPTIONS"
            or request.path in PUBLIC_PATHS
            or request.path.startswith("/socket.io")
            or getattr(request.match_info.handler, "public_route", False)
        ):
            return await handler(request)
        identity = await verifier.verify(bearer(request.headers.get("Authorization")))
        if not await known_user(identity.user_id):
            return json_error(403, "unknown_user", "no chat profile for this user")
        request[IDENTITY] = identity
        return await handler(request)

    return authenticate


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError, over-long numbers
        raise PayloadError("invalid_json", "the request body is not valid JSON") from None
    except RecursionError:
        raise PayloadError("invalid_json", "the request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise PayloadError("invalid_payload", "the request body must be a JSON object")
    return body


class RestApi:
    def __init__(
        self,
        store: Store,
        registry: PresenceRegistry,
        metrics: Metrics,
        *,
        storage_public_base: str,
        max_message_chars: int,
        test_endpoints: bool,
        socket_count: Callable[[], int],
        health: DatabaseHealth | None = None,
        doorbell: Callable[[], Doorbell | None] | None = None,
        attachments: Attachments | None = None,
    ) -> None:
        self.store = store
        self.attachments = attachments
        self.health = health or DatabaseHealth(metrics)
        self.registry = registry
        self.metrics = metrics
        self.storage_public_base = storage_public_base
        self.max_message_chars = max_message_chars
        self.test_endpoints = test_endpoints
        self.socket_count = socket_count
        self.doorbell = doorbell or (lambda: None)
        self._openapi = openapi_document()

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.get("/healthz", self.healthz),
            web.post("/api/messages/send", self.send_message),
            web.get("/api/conversations", self.conversations),
            web.get("/api/conversations/{id}/messages", self.messages),
            web.post("/api/messages/mark-seen", self.mark_seen),
            web.post("/api/messages/delivered", self.delivered),
            web.patch("/api/messages/{id}", self.edit_message),
            web.delete("/api/messages/{id}", self.unsend_message),
            web.post("/api/fcm-tokens", self.register_token),
            web.delete("/api/fcm-tokens/{token}", self.remove_token),
            web.get("/api/openapi.json", self.openapi),
        ]
        if self.test_endpoints:
            routes += [
                web.get("/test-socket", self.test_socket),
                web.post("/test-message", self.test_message),
            ]
        return routes

    @public
    async def openapi(self, request: web.Request) -> web.Response:
        return web.Response(body=self._openapi, content_type="application/json")

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            await self.store.pool.fetchval("select 1", timeout=2)
            database = "ok"
            self.health.reached()
        except Exception as exc:
            database = f"error: {type(exc).__name__}"
            if is_outage(exc) or isinstance(exc, TimeoutError):
                self.health.failed(exc)
        status = 200 if database == "ok" else 503
        # Missing grants degrade but keep 200: a restart cannot fix them, and
        # an orchestrator pulling the bridge would stop what still works.
        problems = self.store.permissions.problems() if self.store.permissions else []
        outage = self.health.problem()
        if outage is not None:
            problems = [*problems, outage]
        doorbell = self.doorbell()
        bell_problem = doorbell.health_problem() if doorbell is not None else None
        if bell_problem is not None:
            problems = [*problems, bell_problem]
        return web.json_response(
            {
                "status": "ok" if status == 200 and not problems else "degraded",
                "problems": problems,
                "database": database,
                "sockets": self.socket_count(),
                "doorbell": doorbell.status() if doorbell is not None else None,
                "counters": self.metrics.snapshot(),
            },
            status=status,
        )

    async def _send(self, user_id: str, body: dict[str, Any]) -> web.Response:
        req = payloads.send_message(body, user_id, self.max_message_chars)
        if self.attachments is not None:
            await self.attachments.check_send(user_id, req)
        message, created = await self.store.send_message(user_id, req)
        return web.json_response(
            {"message": public_message(message), "duplicate": not created},
            status=201 if created else 200,
        )

    async def send_message(self, request: web.Request) -> web.Response:
        return await self._send(request[IDENTITY].user_id, await json_body(request))

    async def conversations(self, request: web.Request) -> web.Response:
        user_id = request[IDENTITY].user_id
        asked = request.query.get("user_id")
        if asked and payloads.as_uuid(asked, "user_id") != user_id:
            return json_error(403, "forbidden", "user_id is not the signed-in user")
        role = request.query.get("role") or None
        if role is not None and role not in ("brand_owner", "influencer"):
            raise PayloadError("invalid_field", "role must be brand_owner or influencer", "role")
        rows = await self.store.conversation_list(user_id, role)
        statuses = await self.registry.statuses(
            [str(r["other_user"]["id"]) for r in rows if r.get("other_user")]
        )
        rows = [
            chat_list_entry(
                row,
                bool(row.get("other_user"))
                and not row.get("blocked")  # no presence across a block
                and statuses[str(row["other_user"]["id"])] != "offline",
                self.storage_public_base,
            )
            for row in rows
        ]
        return web.json_response({"conversations": rows})

    async def messages(self, request: web.Request) -> web.Response:
        conversation_id = payloads.as_uuid(request.match_info["id"], "id")
        page, limit = payloads.page_params(dict(request.query))
        before = request.query.get("before") or None
        if before is not None:
            before = payloads.as_uuid(before, "before")
        result = await self.store.messages_page(
            request[IDENTITY].user_id, conversation_id, page, limit, before
        )
        result["messages"] = [public_message(m) for m in result["messages"]]
        return web.json_response({"conversation_id": conversation_id, **result})

    async def mark_seen(self, request: web.Request) -> web.Response:
        user_id = request[IDENTITY].user_id
        req = payloads.mark_seen(await json_body(request), user_id)
        conversation_id, marked = await self.store.mark_seen(user_id, req)
        return web.json_response({"ok": True, "conversation_id": conversation_id, "marked": marked})

    async def edit_message(self, request: web.Request) -> web.Response:
        message_id = payloads.as_uuid(request.match_info["id"], "id")
        body = await json_body(request)
        ref = payloads.message_ref(body, message_id)
        content = payloads.edited_text(body, self.max_message_chars)
        message = await self.store.edit_message(
            request[IDENTITY].user_id, message_id, content, ref.conversation_id
        )
        return web.json_response({"message": public_message(message)})

    async def unsend_message(self, request: web.Request) -> web.Response:
        message_id = payloads.as_uuid(request.match_info["id"], "id")
        message = await self.store.unsend_message(request[IDENTITY].user_id, message_id)
        if self.attachments is not None:
            self.attachments.unsent()  # its file goes now (bridge/attachments/removals.py)
        return web.json_response({"message": public_message(message)})

    async def delivered(self, request: web.Request) -> web.Response:
        ids = payloads.delivered_ids(await json_body(request))
        delivered = await self.store.mark_delivered(request[IDENTITY].user_id, ids)
        return web.json_response({"ok": True, "delivered": delivered})

    async def register_token(self, request: web.Request) -> web.Response:
        body = await json_body(request)
        token, platform = body.get("token"), body.get("platform")
        if not isinstance(token, str) or not token.strip():
            raise PayloadError("missing_field", "token is required", "token")
        token = payloads.text(token, "token", MAX_TOKEN_CHARS)
        if platform not in PLATFORMS:
            raise PayloadError(
                "invalid_field", f"platform must be one of {', '.join(PLATFORMS)}", "platform"
            )
        row = await self.store.register_token(request[IDENTITY].user_id, token, platform)
        return web.json_response({"ok": True, "token": row})

    async def remove_token(self, request: web.Request) -> web.Response:
        token = payloads.text(request.match_info["token"], "token", MAX_TOKEN_CHARS)
        removed = await self.store.remove_token(request[IDENTITY].user_id, token)
        if not removed:
            return json_error(404, "not_found", "no such token of yours")
        return web.json_response({"ok": True})

    async def test_socket(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": True, "user_id": request[IDENTITY].user_id, "sockets": self.socket_count()}
        )

    async def test_message(self, request: web.Request) -> web.Response:
        return await self._send(request[IDENTITY].user_id, await json_body(request))
