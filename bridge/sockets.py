"""The Socket.IO server object and the transport choices behind it.

Order: python-socketio runs each client event in a task of its own by
default (`async_handlers=True`), so two events from one socket race (10
sends back to back were stored 0,1,8,2,9,...). Here events are handled
inline in the socket's own read loop: one socket's events run one after
another in the order they arrived, while every socket has its own loop, so
sockets never wait for each other. Handlers must therefore not block for
long (they don't: database calls are bounded by the pool's timeouts).

Compression: aiohttp negotiates permessage-deflate on every websocket by
default, which keeps a zlib compressor and decompressor per socket (about
140 KB each socket) and costs CPU on every frame; chat frames are small.
It is a setting (`server.websocket_compression`), off by default.

Hand-overs: once on the websocket, sockets are bridge.eio_socket's
DirectSocket (read without a task per packet, written straight when nothing
is queued).

Stop: `hang_up` ends every connection the way a lost network would, so
clients reconnect (and `sync`) at once instead of after aiohttp's shutdown
grace.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import socketio
from aiohttp import WSMessage
from aiohttp.web import WebSocketResponse
from engineio.async_drivers import aiohttp as eio_aiohttp
from engineio.async_socket import AsyncSocket

from bridge import jsoncodec
from bridge.eio_socket import DirectSocket
from bridge.heartbeats import Heartbeats
from bridge.hostile import GuardedServer
from bridge.metrics import Metrics


def websocket_class(compress: bool) -> type:
    """Engine.IO's aiohttp websocket wrapper with compression chosen."""

    class WebSocket(eio_aiohttp.WebSocket):  # type: ignore[misc]
        async def __call__(self, environ: dict[str, Any]) -> WebSocketResponse:
            request = environ["aiohttp.request"]
            self._sock = WebSocketResponse(
                max_msg_size=self.server.max_http_buffer_size, compress=compress
            )
            await self._sock.prepare(request)
            self.environ = environ
            self.transport = request.transport
            self.compress = bool(self._sock.compress)  # negotiated with this client
            socket = self.handler.__self__
            if type(socket) is AsyncSocket:  # the library's: hand over to ours
                socket.__class__ = DirectSocket
            await socket._websocket_handler(self)
            return self._sock

        async def send(self, message: str | bytes) -> None:
            if isinstance(message, str):
                await self._sock.send_str(message)
            else:
                await self._sock.send_bytes(message)

        async def receive(self, timeout: float | None = None) -> WSMessage:
            # No timeout: a silent client is cut by bridge/heartbeats.py.
            return await self._sock.receive(timeout)

    return WebSocket


def socket_server(
    manager: socketio.AsyncManager,
    *,
    compression: bool,
    metrics: Metrics | None = None,
    max_http_buffer_size: int = 1_000_000,
    **options: Any,
) -> socketio.AsyncServer:
    """The bridge's Socket.IO server: client packets checked before the
    library acts on them (bridge/hostile.py), events in per-socket order,
    compression as configured, emits counted in `metrics`."""
    sio = GuardedServer(
        async_mode="aiohttp",
        cors_allowed_origins=[],  # cors_middleware answers for Socket.IO too
        client_manager=manager,
        max_http_buffer_size=max_http_buffer_size,
        # Per-socket order: see the module docstring.
        async_handlers=False,
        json=jsoncodec,
        # Long-polling answers are small too; keep gzip for big ones only.
        http_compression=compression,
        **options,
    )
    sio.metrics = metrics
    sio.eio._async = {**sio.eio._async, "websocket": websocket_class(compression)}
    # DirectSocket's PINGs, the silence checks and python-engineio's service
    # task's work (which never starts): its `run` is started by the app.
    sio.eio.heartbeats = Heartbeats(sio.eio.ping_interval, sio.eio.ping_timeout, sio.eio.sockets)
    sio.eio.start_service_task = False
    return sio


async def hang_up(sio: socketio.AsyncServer, timeout: float) -> None:
    """On stop (aiohttp's on_shutdown: no new connection comes in any more):
    websockets are closed as "going away", a pending long-poll is answered
    with engine.io's close; both make the client reconnect, never "io server
    disconnect" (after which it would stay away). A peer that does not
    answer the close within `timeout` is cut (aiohttp closes the transport
    when its close is cancelled)."""

    async def one(socket: AsyncSocket) -> None:
        with contextlib.suppress(Exception):  # TimeoutError included: cut
            async with asyncio.timeout(timeout):
                if isinstance(socket, DirectSocket) and socket._ws is not None:
                    await socket.hang_up()
                elif not socket.upgraded:
                    await socket.close(wait=False)

    await asyncio.gather(*(one(s) for s in list(sio.eio.sockets.values())))
