"""Engine.IO heartbeats of websocket sockets, on one timer for all of them.

python-engineio pings each socket from a task of its own: after every PONG
a new task sleeps the ping interval, sends the PING and ends; and the read
loop awaited each frame under a timer of ping interval + ping timeout, so
that a client gone without a word (its machine off, its network cut) is
dropped. With thousands of sockets that is a task and a timer per socket
every ping interval, and a timer set and cancelled per frame received: the
daemon's CPU with 5,000 idle sockets was three times the Node server's.

Here, for sockets on the websocket (bridge/eio_socket.py, DirectSocket):
- the next PING is queued after each PONG, in one queue (the interval is
  the same for all, so the queue stays in time order) that `run` takes
  from every TICK;
- the read loop notes the time of each frame, and every SWEEP the sockets
  that have sent nothing (not even a PONG) for ping interval + ping timeout
  are cut, as the per-frame timer did: the client takes it for a lost
  connection and reconnects.

The first PING after a connect is python-engineio's own (it is scheduled
before the socket goes on the websocket); every later one is from here."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from engineio import packet

from bridge.logs import describe

log = logging.getLogger(__name__)

TICK = 0.25  # how often due PINGs are sent: their lateness at most
SWEEP = 5.0  # how often silent sockets are looked for, at most


class Heartbeats:
    def __init__(
        self, interval: float, timeout: float, sockets: Callable[[], Iterable[Any]]
    ) -> None:
        self.interval = interval  # engine.io's pingInterval, seconds
        self.timeout = timeout  # ... and pingTimeout
        self._sockets = sockets  # every engine.io socket of the server
        self._due: deque[tuple[float, Any]] = deque()  # (monotonic time to ping, socket)
        self.sweep_every = min(SWEEP, (interval + timeout) / 4)
        self.cut = 0  # sockets cut for their silence

    def after_pong(self, socket: Any) -> None:
        """A PONG came: the socket's next PING is due one interval from now."""
        self._due.append((time.monotonic() + self.interval, socket))

    async def ping_due(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            _, socket = self._due.popleft()
            if socket.closing or socket.closed:
                continue
            socket.last_ping = time.time()  # engine.io's own check reads it
            try:
                await socket.send(packet.Packet(packet.PING))
            except Exception as exc:  # its connection is going: its reader sees it
                log.info("ping not sent", extra={"sid": socket.sid, "error": describe(exc)})

    def cut_silent(self, now: float) -> None:
        """Cuts websocket sockets that sent nothing for interval + timeout."""
        limit = now - (self.interval + self.timeout)
        for socket in list(self._sockets()):
            heard = getattr(socket, "heard_at", None)
            if heard is not None and heard < limit and socket.cut():
                self.cut += 1
                log.info("socket silent past the ping timeout: cut", extra={"sid": socket.sid})

    async def run(self) -> None:
        swept = time.monotonic()
        while True:
            now = time.monotonic()
            await self.ping_due(now)
            if now - swept >= self.sweep_every:
                swept = now
                self.cut_silent(now)
            await asyncio.sleep(TICK)
