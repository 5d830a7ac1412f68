"""The Supabase Realtime doorbell: Broadcast from Database on a private
channel, through the `realtime` client's public API. Imported only when this
doorbell is chosen (bridge.outbox.doorbells.choice).

Writers ring only while the bridge sleeps, as for LISTEN: an armed
bridge.doorbell with `via = 'realtime'` makes the outbox trigger call
`realtime.send('{}', 'ring', 'bridge:outbox', true)`; Realtime streams that
row to the private channel `bridge:outbox`, which only the service role may
read (policies in 20261125004000_realtime_doorbell.sql). The channel counts
as live only after the server's "Replication connection established" (asked
for with `replication_ready`), and it rings once then, so the relay re-reads
the outbox for whatever was committed meanwhile.

Realtime is at-most-once and can go deaf without saying so (rings dropped
over the tenant's events-per-second limit, a stopped replication, a
subscription lost in a restart). The relay tells the doorbell when a poll
found rows no ring announced (`unannounced`); if no ring follows within
DEAF_GRACE the ring was missed, and the channel is rebuilt. A supervisor owns
the client: on CLOSED, TIMED_OUT, CHANNEL_ERROR, a lost connection, a failed
connect or deafness it throws the client away and builds a new one after a
capped backoff. Callbacks only set state; they never raise into the library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
from realtime import AsyncRealtimeClient, RealtimeChannelOptions, RealtimeSubscribeStates

from bridge.metrics import Metrics
from bridge.outbox.doorbells.base import SupervisedDoorbell
from bridge.tasks import wait_set

log = logging.getLogger(__name__)

TOPIC = "bridge:outbox"  # bridge.realtime_topic()
RING_EVENT = "ring"
READY_MESSAGE = "Replication connection established"
MAX_BACKOFF = 30.0
READY_TIMEOUT = 30.0  # joined without READY_MESSAGE for this long: rebuild
DEAF_GRACE = 2.0  # a ring in flight arrives within this (streamed: milliseconds)
WATCH_EVERY = 0.25

StateCallback = Callable[[RealtimeSubscribeStates, Exception | None], None]

CHANNEL_OPTIONS: RealtimeChannelOptions = {
    "config": {
        "broadcast": {"ack": False, "self": False, "replication_ready": True},
        "presence": {"key": "", "enabled": False},
        "private": True,
    }
}


def refusal_reason(error: BaseException | None) -> str:
    """The server's words for a refused join or connection, briefly."""
    if error is None:
        return ""
    response = getattr(error, "response", None)  # websockets' InvalidStatus
    if response is not None:
        body = bytes(getattr(response, "body", b"") or b"")[:200].decode(errors="replace")
        return f"HTTP {getattr(response, 'status_code', '?')} {body}".strip()
    text = str(error)
    for marker in ('"reason": "', '"message": "'):
        if marker in text:
            return text.split(marker, 1)[1].split('"', 1)[0]
    return text[:200]


class RealtimeDoorbell(SupervisedDoorbell):
    needs_arming = True
    task_name = "realtime-doorbell"
    kind = "realtime"

    def __init__(
        self,
        supabase_url: str,
        api_key: str,
        *,
        access_token: Callable[[], str] | None = None,
        refresh_every: float | None = None,
        join_timeout: int = 10,
        ready_timeout: float = READY_TIMEOUT,
        deaf_grace: float = DEAF_GRACE,
        metrics: Metrics | None = None,
        dsn: str | None = None,
    ) -> None:
        """`api_key`: an `sb_secret_...` key or a legacy service-role JWT.
        `access_token` mints the channel's token (legacy JWT secret only; else
        the server runs the channel on what the key stands for); with
        `refresh_every` a fresh one is pushed before the old one expires.
        `dsn`: where to set `bridge.doorbell.via = 'realtime'` on start."""
        super().__init__()
        self._url = f"{supabase_url.rstrip('/')}/realtime/v1"
        self._key = api_key
        self._access_token = access_token
        self._refresh_every = refresh_every
        self._join_timeout = join_timeout
        self._ready_timeout = ready_timeout
        self._deaf_grace = deaf_grace
        self._metrics = metrics or Metrics()
        self._dsn = dsn
        self.ready = asyncio.Event()
        self.ready_was_reached = False
        self.token_refreshes = 0
        self.problem: str | None = None  # the last refusal or failure, for /healthz
        self._state_since = time.monotonic()
        self._down_since: float | None = self._state_since  # not live since
        self._broken = asyncio.Event()
        self._owed_since: float | None = None  # rows found unannounced, ring awaited
        self._heard_at = 0.0

    # -- counters (bridge.metrics) ----------------------------------------------------

    @property
    def rebuilds(self) -> int:
        return self._metrics.counts["realtime_rebuilds"]

    @property
    def rings_missed(self) -> int:
        return self._metrics.counts["realtime_rings_missed"]

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self._state_since = time.monotonic()
            if state == "live":
                self._down_since = None
            elif self._down_since is None:
                self._down_since = self._state_since

    def status(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "state": self.state,
            "for_seconds": round(time.monotonic() - self._state_since, 1),
            "problem": self.problem,
        }

    def health_problem(self) -> str | None:
        """A line for /healthz while the channel has not been live for long
        (however often it was rebuilt meanwhile)."""
        if self._down_since is None:
            return None
        waited = time.monotonic() - self._down_since
        if waited < self._ready_timeout:
            return None
        why = f" ({self.problem})" if self.problem else ""
        return (
            f"realtime doorbell not live for {waited:.0f} s{why}: changes from other"
            " writers wait for the outbox poll"
        )

    # -- callbacks: set state, never raise ----------------------------------------------

    def _on_ring(self, _payload: Any) -> None:
        self._metrics.inc("realtime_rings")
        self._heard_at = time.monotonic()
        self._bell.ring()

    def _on_system(self, payload: Any) -> None:
        try:
            ok = getattr(payload, "status", None) == "ok"
            if ok and READY_MESSAGE in str(getattr(payload, "message", "")):
                if not self.ready.is_set():
                    log.info("realtime doorbell live")
                self.ready.set()
                self._set_state("live")
                self.problem = None
                self._bell.ring()  # look at what was committed while we were away
        except Exception:  # pragma: no cover - defensive: never raise into the client
            log.exception("realtime system callback failed")

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        # CHANNEL_ERROR (refused join, server error, system error), TIMED_OUT,
        # CLOSED: rebuild. SUBSCRIBED is not live yet: that is READY_MESSAGE.
        if state == RealtimeSubscribeStates.SUBSCRIBED:
            return
        reason = refusal_reason(error) or state.value
        self.problem = reason
        log.warning("realtime channel %s", state.value, extra={"error": reason})
        self._broken.set()

    def unannounced(self, rows: int) -> None:
        """The relay's poll found `rows` changes that no ring announced."""
        if self.state == "live" and self._owed_since is None:
            self._owed_since = time.monotonic()

    # -- the channel --------------------------------------------------------------------

    def _joined(
        self,
        on_state: StateCallback,
        on_ring: Callable[[Any], None],
        *,
        on_system: Callable[[Any], None] | None = None,
        timeout: int,
        subscribe_within: float | None = None,
    ) -> contextlib.AbstractAsyncContextManager[AsyncRealtimeClient]:
        """A client of its own (it never reconnects: whoever holds it builds
        a new one), made now (a URL the client refuses raises here), that on
        entering asks to join the doorbell's private channel, with the
        channel's token when one is minted; closed on leaving."""
        client = AsyncRealtimeClient(
            self._url, token=self._key, auto_reconnect=False, max_retries=1, timeout=timeout
        )
        return self._join(client, on_state, on_ring, on_system, subscribe_within)

    @contextlib.asynccontextmanager
    async def _join(
        self,
        client: AsyncRealtimeClient,
        on_state: StateCallback,
        on_ring: Callable[[Any], None],
        on_system: Callable[[Any], None] | None,
        subscribe_within: float | None,
    ) -> AsyncIterator[AsyncRealtimeClient]:
        try:
            if self._access_token is not None:
                await client.set_auth(self._access_token())
            channel = client.channel(TOPIC, CHANNEL_OPTIONS)
            channel.on_broadcast(RING_EVENT, on_ring)
            if on_system is not None:
                channel.on_system(on_system)
            await asyncio.wait_for(channel.subscribe(on_state), subscribe_within)
            yield client
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    # -- supervisor ---------------------------------------------------------------------

    async def start(self) -> None:
        if self._dsn is not None:
            await self._ring_via_realtime(self._dsn)
        await super().start()

    @staticmethod
    async def _ring_via_realtime(dsn: str) -> None:
        """Armed writers ring through realtime.send from now on."""
        try:
            conn = await asyncpg.connect(dsn, timeout=10)
            try:
                await conn.execute(
                    "update bridge.doorbell set via = 'realtime' where via <> 'realtime'"
                )
            finally:
                await conn.close()
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("could not switch writers to realtime rings", extra={"error": repr(exc)})

    async def _supervise(self) -> None:
        backoff = 0.5
        while True:
            self._broken = asyncio.Event()
            self._owed_since = None
            self.ready.clear()
            self._set_state("joining")
            try:
                async with self._joined(
                    self._on_state,
                    self._on_ring,
                    on_system=self._on_system,
                    timeout=self._join_timeout,
                ) as client:
                    await self._watch(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.problem = refusal_reason(exc)
                log.warning("realtime doorbell failed", extra={"error": self.problem})
            finally:
                self.ready.clear()
                self._set_state("down")
            if self.ready_was_reached:
                backoff = 0.5
            self._metrics.inc("realtime_rebuilds")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _watch(self, client: AsyncRealtimeClient) -> None:
        """Returns when the channel can no longer be trusted; keeps its token
        fresh meanwhile."""
        loop = asyncio.get_running_loop()
        started = refreshed = loop.time()
        self.ready_was_reached = False
        while not self._broken.is_set():
            await wait_set(self._broken, WATCH_EVERY)
            now = loop.time()
            if self.ready.is_set():
                self.ready_was_reached = True
            elif now - started >= self._ready_timeout:
                self.problem = "joined, but the replication never became ready"
                log.warning("realtime channel never went live; rebuilding")
                return
            if self._deaf():
                return
            if (
                self._access_token is not None
                and self._refresh_every is not None
                and now - refreshed >= self._refresh_every
                and not self._broken.is_set()
            ):
                await client.set_auth(self._access_token())
                refreshed = now
                self.token_refreshes += 1
            if not client.is_connected:
                self.problem = "connection lost"
                log.warning("realtime connection lost; rebuilding")
                return

    def _deaf(self) -> bool:
        """Whether a ring owed since a poll found unannounced rows never came."""
        owed = self._owed_since
        if owed is None:
            return False
        if self._heard_at >= owed:
            self._owed_since = None
            self._metrics.inc("realtime_rings_late")
            return False
        if time.monotonic() - owed < self._deaf_grace:
            return False
        self._metrics.inc("realtime_rings_missed")
        self.problem = "deaf: the outbox had changes no ring announced"
        log.warning("realtime doorbell deaf: a poll found changes no ring announced; rebuilding")
        return True


# Refusals no rebuild can cure: the configuration cannot work.
PERMANENT_REFUSALS = (
    "HTTP 401",
    "HTTP 403",
    "Invalid API key",
    "JwtSignatureError",
    "JwtSignerError",
    "MalformedJWT",
    "InvalidJWTToken",
    "Unauthorized",
    "PrivateOnly",
    "TenantNotFound",
    "RealtimeDisabledForTenant",
)


async def probe(bell: RealtimeDoorbell, timeout: float = 10.0) -> str | None:
    """Joins the doorbell's channel once, as the doorbell would; returns the
    server's refusal when it is one no retry can cure, else None (joined,
    or trouble that may pass: the doorbell will keep trying)."""
    outcome: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def on_state(state: RealtimeSubscribeStates, error: Exception | None) -> None:
        if not outcome.done():
            ok = state == RealtimeSubscribeStates.SUBSCRIBED
            outcome.set_result(None if ok else refusal_reason(error) or state.value)

    joined = bell._joined(
        on_state, lambda _payload: None, timeout=int(timeout), subscribe_within=timeout
    )
    try:
        async with joined:
            reason = await asyncio.wait_for(outcome, timeout)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        reason = refusal_reason(exc)
    if reason and any(marker in reason for marker in PERMANENT_REFUSALS):
        return reason
    if reason:
        log.warning("realtime doorbell probe failed; starting anyway", extra={"error": reason})
    return None
