"""Engine.IO's websocket transport with fewer event-loop hand-overs.

python-engineio's websocket handler reads each packet through a task of its
own wrapped in `asyncio.wait_for` (two tasks and a timer per packet), and
every packet it sends goes through a queue to a writer task that writes the
frame (a wake-up of that task per packet). On the send path each message
pays for both, on the sender's socket (the event and its ack) and on the
receiver's (the new message), and at thousands of packets a second that
task churn showed in the profiles.

Here, once a socket is on the websocket:
- the read loop awaits the websocket itself and notes when it last heard
  from the client; bridge/heartbeats.py cuts a socket silent for ping
  interval + ping timeout, and sends its PINGs, on one timer for all
  sockets instead of a timer per frame and a task per PING;
- a packet is written straight to the websocket when nothing is ahead of it
  (the queue is empty, the writer task is not writing, the transport holds
  no unsent bytes, the frame is small), so it never waits and cannot block
  its sender. Anything else goes through the queue and the writer task as
  before: a socket that does not read piles up in its queue, where the
  slow-socket bound (`server.max_queued_packets`, bridge.fanout) sees it.

Long-polling and the polling-to-websocket upgrade are python-engineio's own.

On stop, `hang_up` closes the websocket as "going away": the client takes
it for a lost connection and reconnects (elsewhere, or here once
restarted). Left open, aiohttp's shutdown would wait for handlers that never
end by themselves, then cut them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType
from engineio import exceptions, packet
from engineio.async_socket import AsyncSocket

from bridge.logs import NOISE, describe

# Frames up to this size may be written straight: far below the transport's
# high-water mark, so writing one into an empty buffer never has to wait.
DIRECT_MAX = 16 * 1024
_DATA = (WSMsgType.TEXT, WSMsgType.BINARY)


def ws_frame(data: str | bytes) -> bytes:
    """A server's websocket frame (final, unmasked, uncompressed) of a text
    (str) or binary (bytes) message."""
    if isinstance(data, str):
        payload, opcode = data.encode(), 0x81
    else:
        payload, opcode = bytes(data), 0x82
    size = len(payload)
    if size < 126:
        return bytes((opcode, size)) + payload
    if size < 65536:
        return bytes((opcode, 126)) + size.to_bytes(2, "big") + payload
    return bytes((opcode, 127)) + size.to_bytes(8, "big") + payload


class DirectSocket(AsyncSocket):  # type: ignore[misc]
    """An Engine.IO socket whose websocket is read and written without a
    task per packet. Takes over from python-engineio's AsyncSocket when the
    socket goes on the websocket (bridge.sockets swaps the class)."""

    _ws: Any = None  # engine.io's websocket wrapper, once on the websocket
    _writing = False  # the writer task is writing what it took off the queue
    _corked: list[bytes] | None = None  # frames written at the end of this loop turn
    _corked_size = 0
    _loop: asyncio.AbstractEventLoop  # set with _ws
    heard_at: float | None = None  # time.monotonic() of its last frame, on the websocket

    def schedule_ping(self) -> None:
        """After a PONG (as engine.io: once per PING answered), the next
        PING is bridge/heartbeats.py's, not a task's of its own."""
        if self.last_ping:  # type: ignore[has-type]
            self.last_ping = None
            self.server.heartbeats.after_pong(self)

    def cut(self) -> bool:
        """Drops a silent client's connection (bridge/heartbeats.py): its
        reader sees it lost and ends the socket, as a network failure would."""
        ws = self._ws
        transport = ws.transport if ws is not None else None
        if transport is None or transport.is_closing():
            return False
        transport.abort()
        return True

    async def send(self, pkt: packet.Packet) -> None:
        if not await self.check_ping_timeout():
            return
        if self.put(pkt):
            return
        ws = self._ws
        if ws is not None and ws.compress and not self._writing and self.queue.empty():
            # aiohttp frames and compresses it. A failure means the
            # connection is going: its reader sees it close.
            with contextlib.suppress(Exception):
                await ws.send(pkt.encode())
            return
        await self.queue.put(pkt)

    def put(self, pkt: packet.Packet, frame: bytes | None = None) -> bool:
        """Writes a packet without waiting when it can: on the websocket,
        uncompressed, nothing queued or being written ahead of it, no unsent
        bytes in the transport, small (`frame`: its websocket frame, when an
        emit to several sockets built it once for all). False: it was not
        taken, `send` it (the queue keeps the order)."""
        if self._corked is not None:  # frames are waiting: this one goes after them
            frame = frame or ws_frame(pkt.encode())
            if len(frame) <= DIRECT_MAX:
                self._cork(frame)
                return True
            self._uncork()  # a large one takes the queue, behind what was corked
            return False
        ws = self._ws
        if ws is None or ws.compress or self._writing or not self.queue.empty():
            return False
        transport = ws.transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size():
            return False
        frame = frame or ws_frame(pkt.encode())
        if len(frame) > DIRECT_MAX:
            return False
        self._corked = []
        self._loop.call_soon(self._uncork)
        self._cork(frame)
        return True

    def _cork(self, frame: bytes) -> None:
        """Frames for this socket within one turn of the event loop are
        written together, in one system call (one change's events to one
        socket, an ack and the event after it)."""
        assert self._corked is not None
        self._corked.append(frame)
        self._corked_size += len(frame)
        if self._corked_size > DIRECT_MAX:  # a burst: what follows takes the queue
            self._uncork()

    def _uncork(self) -> None:
        frames, self._corked, self._corked_size = self._corked, None, 0
        ws = self._ws
        if not frames or ws is None:  # gone: its reader has seen it close
            return
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            transport.write(b"".join(frames))

    async def hang_up(self) -> None:
        """Closes the websocket with 1001 (going away); the read loop sees
        the close and ends the handler. Nothing to do before the websocket."""
        ws = self._ws
        if ws is not None:
            await ws._sock.close(code=WSCloseCode.GOING_AWAY)

    async def receive(self, pkt: packet.Packet) -> None:
        if pkt.packet_type == packet.MESSAGE:  # the common case: to Socket.IO at once
            # (python-socketio sets engine.io's handlers to run inline; here
            # without the closure and checks of its _trigger_event per packet.
            # A failure is logged by the read loop.)
            await self.server.handlers["message"](self.sid, pkt.data)
        else:
            await super().receive(pkt)

    async def _websocket_handler(self, ws: Any) -> None:
        # Connected already: an upgrade from long-polling (the library's steps).
        if self.connected:  # type: ignore[has-type]
            if not await self._upgrade_steps(ws):
                return
        else:
            self.connected = True
            self.upgraded = True
        writer = asyncio.ensure_future(self._writer(ws))
        # Kept: on Python 3.11 every get_running_loop is a getpid system call.
        self._loop = asyncio.get_running_loop()
        self._ws = ws
        try:
            await self._read(ws)
        finally:
            self._ws = None
            await self.queue.put(None)  # the writer ends after what is queued
            await writer
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def _read(self, ws: Any) -> None:
        limit = self.server.max_http_buffer_size
        while True:
            self.heard_at = time.monotonic()
            try:
                msg = await ws.receive()
            except (Exception, asyncio.CancelledError):  # torn down
                return
            if msg.type not in _DATA or len(msg.data) > limit:
                return  # closed by the client, or a frame too large
            try:
                pkt = packet.Packet(encoded_packet=msg.data)
            except Exception as exc:  # the client's junk: it ends the connection
                NOISE.note("engineio:malformed_packet", describe(exc))
                return
            try:
                await self.receive(pkt)
            except exceptions.UnknownPacketError:
                pass
            except exceptions.SocketIsClosedError:
                return
            except Exception:  # as python-engineio does (bridge.logs rate-limits it)
                self.server.logger.exception("Unknown receive error")

    async def _writer(self, ws: Any) -> None:
        """Writes what was queued, in order, until the reader ends it (None)
        or the connection fails."""
        try:
            while True:
                pkt = await self.queue.get()
                self._writing = True
                self.queue.task_done()
                batch = [pkt]
                while pkt is not None and not self.queue.empty():
                    pkt = self.queue.get_nowait()
                    self.queue.task_done()
                    batch.append(pkt)
                for item in batch:
                    if item is None:
                        return
                    await ws.send(item.encode())
                self._writing = False
        except Exception:  # the connection failed; the reader sees it close
            pass
        finally:
            self._writing = True  # nothing is written straight any more
            await ws.close()

    async def _upgrade_steps(self, ws: Any) -> bool:
        """python-engineio's polling-to-websocket upgrade: probe, then UPGRADE."""
        self.upgrading = True  # hold packet sends during the upgrade
        try:
            probe = packet.Packet(encoded_packet=await ws.wait())
            if probe.packet_type != packet.PING or probe.data != "probe":
                return False
            await ws.send(packet.Packet(packet.PONG, data="probe").encode())
            await self.queue.put(packet.Packet(packet.NOOP))  # ends the pending poll
            upgrade = packet.Packet(encoded_packet=await ws.wait())
            if upgrade.packet_type != packet.UPGRADE:
                self.upgraded = False
                return False
            self.upgraded = True
            return True
        except (OSError, ValueError):
            return False
        finally:
            self.upgrading = False
