"""The REST API of DESIGN.md, on the same aiohttp server as Socket.IO.
Every /api route and the test endpoints need a Supabase bearer token; errors
are JSON `{ error: { code, message } }` with a fitting status, never a 500
for bad input."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bridge import payloads
from bridge.auth import AuthError, Identity, TokenVerifier, bearer
from bridge.db_health import RETRY_AFTER, DatabaseHealth, is_outage
from bridge.logs import NOISE, describe
from bridge.metrics import Metrics
from bridge.payloads import PayloadError
from bridge.presence_redis import PresenceRegistry
from bridge.store import Store
from bridge.store_errors import StoreError, unavailable
from bridge.translate import avatar_url, public_message

log = logging.getLogger(__name__)

IDENTITY = web.RequestKey("identity", Identity)
PLATFORMS = ("android", "ios", "web")
MAX_TOKEN_CHARS = 4096
PUBLIC_PATHS = ("/healthz",)


def json_error(status: int, code: str, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message, **extra}}, status=status)


def make_error_middleware(metrics: Metrics, health: DatabaseHealth) -> Any:
    @web.middleware
    async def errors(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except PayloadError as exc:
            return web.json_response({"error": exc.as_dict()}, status=400)
        except StoreError as exc:
            response = web.json_response({"error": exc.as_dict()}, status=exc.status)
            if exc.retryable:
                response.headers["Retry-After"] = str(RETRY_AFTER)
            return response
        except AuthError as exc:
            return json_error(401, exc.code, exc.message)
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
                response = web.json_response({"error": unavailable().as_dict()}, status=503)
                response.headers["Retry-After"] = str(RETRY_AFTER)
                return response
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
    ) -> None:
        self.store = store
        self.health = health or DatabaseHealth(metrics)
        self.registry = registry
        self.metrics = metrics
        self.storage_public_base = storage_public_base
        self.max_message_chars = max_message_chars
        self.test_endpoints = test_endpoints
        self.socket_count = socket_count

    def routes(self) -> list[web.RouteDef]:
        routes = [
            web.get("/healthz", self.healthz),
            web.post("/api/messages/send", self.send_message),
            web.get("/api/conversations", self.conversations),
            web.get("/api/conversations/{id}/messages", self.messages),
            web.post("/api/messages/mark-seen", self.mark_seen),
            web.post("/api/fcm-tokens", self.register_token),
            web.delete("/api/fcm-tokens/{token}", self.remove_token),
        ]
        if self.test_endpoints:
            routes += [
                web.get("/test-socket", self.test_socket),
                web.post("/test-message", self.test_message),
            ]
        return routes

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
        return web.json_response(
            {
                "status": "ok" if status == 200 and not problems else "degraded",
                "problems": problems,
                "database": database,
                "sockets": self.socket_count(),
                "counters": self.metrics.snapshot(),
            },
            status=status,
        )

    async def _send(self, user_id: str, body: dict[str, Any]) -> web.Response:
        req = payloads.send_message(body, user_id, self.max_message_chars)
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
        for row in rows:
            other = row.get("other_user")
            if other is not None:
                other["profile_image_url"] = avatar_url(
                    other.get("profile_image_url"), self.storage_public_base
                )
                other["is_online"] = statuses[str(other["id"])] != "offline"
            row["is_online"] = bool(other and other["is_online"])
            if row.get("last_message") is not None:
                row["last_message"] = public_message(row["last_message"])
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
