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
before the socket goes on the websocket); every later one is from here.

The same sweep does the work of python-engineio's service task, which
bridge/sockets.py keeps from starting: forgetting closed sockets and
closing long-polling sockets whose client stopped answering PINGs. That
task visited one socket per ping_timeout / sockets seconds, each visit a
task and a timer of its own (`asyncio.wait_for`): 250 a second with 5,000
sockets, most of the daemon's CPU when idle; and nothing ever stopped it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from engineio import packet

from bridge.logs import describe

log = logging.getLogger(__name__)

TICK = 0.25  # how often due PINGs are sent: their lateness at most
SWEEP = 5.0  # how often silent sockets are looked for, at most
YIELD_EVERY = 500  # sockets swept between two turns of the event loop


class Heartbeats:
    def __init__(self, interval: float, timeout: float, sockets: dict[str, Any]) -> None:
        self.interval = interval  # engine.io's pingInterval, seconds
        self.timeout = timeout  # ... and pingTimeout
        self._sockets = sockets  # every engine.io socket of the server, by sid
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

    async def sweep(self, now: float) -> None:
        """Closed sockets forgotten; a websocket socket that sent nothing
        for interval + timeout cut; a long-polling one that left a PING
        unanswered for the timeout closed (python-engineio's own check)."""
        limit = now - (self.interval + self.timeout)
        for n, (sid, socket) in enumerate(list(self._sockets.items()), 1):
            if n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if socket.closed:
                self._sockets.pop(sid, None)
                continue
            if socket.closing:
                continue
            heard = getattr(socket, "heard_at", None)
            if heard is not None and heard < limit and socket.cut():
                self.cut += 1
                log.info("socket silent past the ping timeout: cut", extra={"sid": sid})
                continue
            try:
                await socket.check_ping_timeout()
            except Exception as exc:  # closing it failed: its connection is going anyway
                log.info("ping timeout check failed", extra={"sid": sid, "error": describe(exc)})

    async def run(self) -> None:
        swept = time.monotonic()
        while True:
            now = time.monotonic()
            try:
                await self.ping_due(now)
                if now - swept >= self.sweep_every:
                    swept = now
                    await self.sweep(now)
            except Exception as exc:  # a turn gone wrong must not end every socket's pings
                log.warning("heartbeat turn failed", extra={"error": describe(exc)})
            await asyncio.sleep(TICK)
