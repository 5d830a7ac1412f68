"""CORS for the REST API and the Socket.IO polling transport: one place
writes the headers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

CORS_ALLOW_HEADERS = "Authorization, Content-Type"
CORS_ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
CORS_MAX_AGE = "600"


def cors_middleware(origins: Sequence[str]) -> Any:
    """The one place CORS headers are written, for the REST API and the
    Socket.IO polling transport alike (engine.io's own CORS handling is off,
    so no header is sent twice). Allowed origins get a preflight answer and
    the allow headers on every response; any other origin gets none, and
    Socket.IO refuses it outright, as engine.io would (browsers apply no CORS
    to websockets)."""
    allowed = set(origins)
    anyone = "*" in allowed

    @web.middleware
    async def cors(request: web.Request, handler: Any) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or origin == f"{request.scheme}://{request.host}":
            # No Origin, or a page the bridge served itself (the demo page at
            # /): not a cross-origin request, whatever the allowed list says.
            return await handler(request)  # type: ignore[no-any-return]
        if not anyone and origin not in allowed:
            if request.path.startswith("/socket.io"):
                return web.json_response(
                    {"error": {"code": "origin_not_allowed", "message": "origin not allowed"}},
                    status=403,
                )
            return await handler(request)  # type: ignore[no-any-return]
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
            response.headers["Access-Control-Allow-Methods"] = CORS_ALLOW_METHODS
            response.headers["Access-Control-Max-Age"] = CORS_MAX_AGE
        else:
            response = await handler(request)
        if not response.prepared:  # a websocket has sent its headers already
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Vary"] = "Origin"
        return response

    return cors
