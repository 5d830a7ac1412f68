"""Socket.IO fan-out without a task per recipient.

python-socketio's AsyncManager.emit creates one asyncio task per recipient
socket and waits for all of them; each task only puts the already encoded
packet on that socket's queue. For chat traffic (a few recipients per emit,
thousands of emits a second) the task churn dominates. These managers encode
once and put the packet on each queue directly, in order. Emits that want an
ack callback keep the stock path. The Redis variant slots the same local
delivery under python-socketio's Redis pub/sub, so emits still cross
instances.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

from bridge import jsoncodec
from bridge.eio_socket import DirectSocket, ws_frame
from bridge.settings import Settings
from bridge.tasks import stop_tasks


def _encode_event(packet_class: Any, namespace: str, data: list[Any]) -> list[Any]:
    """A Socket.IO EVENT packet, encoded once for every recipient. Chat
    payloads are JSON: written straight as `2[<nsp>,]<json>`, which is what
    python-socketio's Packet writes for them, without its recursive search
    for binary parts (which showed in profiles at thousands of emits a
    second). Data that JSON cannot hold (bytes) takes the library's path."""
    try:
        body = jsoncodec.dumps(data)
    except TypeError:
        encoded = packet_class(packet.EVENT, namespace=namespace, data=data).encode()
        return encoded if isinstance(encoded, list) else [encoded]
    prefix = "2" if namespace in (None, "/") else f"2{namespace},"
    return [prefix + body]


class DirectAsyncManager(socketio.AsyncManager):  # type: ignore[misc]
    # Packets waiting for one socket at most (0: no bound); set by the app.
    max_queued = 0
    # Called with the user's sid when a socket is dropped for being slow.
    on_slow_socket: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dropped: set[str] = set()  # engine.io sids cut off for being slow

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        participants = self.get_participants(namespace, to or room)
        await self._send_later(self._put_all(namespace, [event, *args], participants, skip))

    async def deliver(self, event: str, data: Any, rooms: Sequence[str]) -> None:
        """One outbox emit (the relay's, a tail's, a send's at its commit) to
        this instance's sockets in `rooms`: `emit` without its options, the
        members of the rooms read straight from the manager's table."""
        members: dict[str, str] = {}
        table = self.rooms.get("/")
        if table:
            for room in rooms:
                in_room = table.get(room)
                if in_room:
                    members.update(in_room._fwdm)  # as python-socketio reads it
        if members:
            later = self._put_all("/", [event, data], members.items(), ())
            if later:
                await self._send_later(later)

    def _put_all(
        self,
        namespace: str,
        data: list[Any],
        participants: Iterable[tuple[str, str]],
        skip: Container[Any],
    ) -> list[tuple[Any, Any]]:
        """Puts the event's packets on each participant's socket where that
        needs no waiting (bridge.eio_socket's `put`); returns, in order, the
        (socket, packet) pairs that must be sent with `send` (a long-poll, a
        socket with a backlog: each one's own packets in their order)."""
        parts = _encode_event(self.server.packet_class, namespace, data)
        eio_packets = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in parts]
        frames: list[bytes] | None = None  # the websocket frames, built once for all
        later: list[tuple[Any, Any]] = []
        slow: list[tuple[str, str]] = []
        sockets = self.server.eio.sockets
        for sid, eio_sid in participants:
            if sid in skip or eio_sid in self._dropped:
                continue
            # Straight to the engine.io socket: what python-socketio's and
            # python-engineio's send_packet do, without their two layers of
            # coroutines per packet (a socket gone or closed is skipped, as
            # theirs is, without the warning).
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            if self.max_queued and socket.queue.qsize() >= self.max_queued:
                slow.append((sid, eio_sid))
                continue
            if type(socket) is not DirectSocket:  # long-polling: engine.io's own send
                later.extend((socket, eio_pkt) for eio_pkt in eio_packets)
                continue
            if frames is None:
                frames = [ws_frame(p.encode()) for p in eio_packets]
            for i, (eio_pkt, frame) in enumerate(zip(eio_packets, frames, strict=True)):
                if not socket.put(eio_pkt, frame):  # it and the rest of its packets wait
                    later.extend((socket, rest) for rest in eio_packets[i:])
                    break
        for sid, eio_sid in slow:
            self._drop_slow(sid, eio_sid)
        return later

    @staticmethod
    async def _send_later(later: list[tuple[Any, Any]]) -> None:
        for socket, eio_pkt in later:
            await socket.send(eio_pkt)

    def _drop_slow(self, sid: str, eio_sid: str) -> None:
        """A socket that does not read what it is sent: its connection is
        cut at once (a graceful close would queue behind what it never
        read), which releases its queue; the client sees the transport
        close, reconnects and `sync`s what it missed. Everyone else's
        deliveries never waited on it."""
        socket = self.server.eio.sockets.get(eio_sid)
        if socket is None or socket.closing or socket.closed:
            return
        # Sent nothing more while its connection winds down; forgotten once gone.
        self._dropped = {s for s in self._dropped if s in self.server.eio.sockets}
        self._dropped.add(eio_sid)
        queue = socket.queue  # its backlog goes now, not when the socket is gone
        while not queue.empty():
            queue.get_nowait()
            queue.task_done()
        request = self.server.environ.get(eio_sid, {}).get("aiohttp.request")
        transport = getattr(request, "transport", None)
        if transport is not None:
            transport.abort()
        if self.on_slow_socket is not None:
            self.on_slow_socket(sid)


async def stop_manager(manager: socketio.AsyncManager | None) -> None:
    """Stops what python-socketio's Redis manager started (its task
    listening to the other instances, from the first connection on) and
    closes its Redis client: the library itself never does."""
    listener = getattr(manager, "thread", None)
    if isinstance(listener, asyncio.Task):
        await stop_tasks([listener])
    redis = getattr(manager, "redis", None)
    if redis is not None:
        with contextlib.suppress(Exception):  # Redis may be gone already
            await redis.aclose()


def local_emitter(manager: socketio.AsyncManager) -> Callable[..., Awaitable[None]]:
    """`emit(event, data, rooms)` to this instance's own sockets only,
    whatever the manager (the Redis managers would also publish to every
    other instance)."""
    if isinstance(manager, DirectAsyncManager):
        return manager.deliver

    async def emit(event: str, data: Any, rooms: Sequence[str]) -> None:
        await socketio.AsyncManager.emit(manager, event, data, "/", room=list(rooms))

    return emit


class DirectAsyncRedisManager(socketio.AsyncRedisManager, DirectAsyncManager):  # type: ignore[misc]
    """Redis pub/sub across instances; direct local delivery on each."""


def client_manager(settings: Settings) -> socketio.AsyncManager:
    """Where emits go: this process only, or every instance through Redis."""
    direct = settings.server.fanout == "direct"
    if settings.redis.url:
        cls = DirectAsyncRedisManager if direct else socketio.AsyncRedisManager
        return cls(settings.redis.url)
    return DirectAsyncManager() if direct else socketio.AsyncManager()
