"""The Supabase Realtime doorbell: `postgres_changes` INSERTs on
bridge.outbox through the `realtime` client, with the service role key.

Realtime's Postgres Changes are at-most-once: nothing is replayed after a
disconnect, and the channel reports SUBSCRIBED before the server listens to
the database. So the bell counts as working only after the server's system
message "Subscribed to PostgreSQL", and it rings once then, so the relay
re-reads the outbox for whatever was committed meanwhile. A supervisor owns
the client: on CLOSED, TIMED_OUT, CHANNEL_ERROR, a server error, a dead
listen task or a failed connect it throws the client away and builds a new
one after a capped backoff, forever. Callbacks only set events; they never
raise into the client library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from realtime import (
    AsyncRealtimeClient,
    RealtimePostgresChangesListenEvent,
    RealtimeSubscribeStates,
)

from bridge.outbox.doorbells.base import SupervisedDoorbell

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
READY_TIMEOUT = 30.0  # SUBSCRIBED without "Subscribed to PostgreSQL" for this long: rebuild
WATCH_EVERY = 1.0


class RealtimeDoorbell(SupervisedDoorbell):
    task_name = "realtime-doorbell"

    def __init__(
        self,
        supabase_url: str,
        api_key: str,
        *,
        access_token: Callable[[], str] | None = None,
        refresh_every: float | None = None,
        join_timeout: int = 10,
        ready_timeout: float = READY_TIMEOUT,
        channel: str = "bridge-outbox",
    ) -> None:
        """`access_token` mints the channel's token (else the API key is
        used); with `refresh_every` a fresh one is pushed to the live channel
        (`access_token` event) before the old one expires."""
        super().__init__()
        self._url = f"{supabase_url.rstrip('/')}/realtime/v1"
        self._key = api_key
        self._access_token = access_token
        self._refresh_every = refresh_every
        self._join_timeout = join_timeout
        self._ready_timeout = ready_timeout
        self._channel_name = channel
        self.token_refreshes = 0
        self.ready = asyncio.Event()
        self.rebuilds = 0
        self.ready_was_reached = False
        self._broken: asyncio.Event = asyncio.Event()

    # -- callbacks: set events, never raise ------------------------------------

    def _on_change(self, _payload: Any) -> None:
        self._bell.ring()

    def _on_system(self, payload: Any) -> None:
        try:
            ok = getattr(payload, "status", None) == "ok"
            extension = getattr(payload, "extension", "")
            message = str(getattr(payload, "message", ""))
            if ok and extension == "postgres_changes" and "Subscribed to PostgreSQL" in message:
                if not self.ready.is_set():
                    log.info("realtime doorbell live")
                self.ready.set()
                self._bell.ring()  # look at what was committed while we were away
        except Exception:  # pragma: no cover - defensive: never raise into the client
            log.exception("realtime system callback failed")

    def _on_state(self, state: RealtimeSubscribeStates, error: Exception | None) -> None:
        # CHANNEL_ERROR (server error, phx_error), TIMED_OUT, CLOSED: rebuild.
        # SUBSCRIBED is not "live" yet: that is the system message.
        if state != RealtimeSubscribeStates.SUBSCRIBED:
            log.warning("realtime channel %s", state.value, extra={"error": repr(error)[:200]})
            self._broken.set()

    # -- supervisor --------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = 0.5
        while True:
            client: AsyncRealtimeClient | None = None
            self._broken = asyncio.Event()
            self.ready.clear()
            try:
                client = AsyncRealtimeClient(
                    self._url,
                    token=self._key,
                    auto_reconnect=False,
                    max_retries=1,
                    timeout=self._join_timeout,
                )
                if self._access_token is not None:
                    await client.set_auth(self._access_token())
                channel = client.channel(self._channel_name)
                channel.on_postgres_changes(
                    RealtimePostgresChangesListenEvent.Insert,
                    schema="bridge",
                    table="outbox",
                    callback=self._on_change,
                )
                channel.on_system(self._on_system)
                await channel.subscribe(self._on_state)
                await self._watch(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("realtime doorbell failed", extra={"error": repr(exc)[:200]})
            finally:
                self.ready.clear()
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.close()
            if self.ready_was_reached:
                backoff = 0.5
            self.rebuilds += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _watch(self, client: AsyncRealtimeClient) -> None:
        """Returns when the connection can no longer be trusted; keeps the
        channel's token fresh meanwhile."""
        loop = asyncio.get_running_loop()
        started = refreshed = loop.time()
        self.ready_was_reached = False
        while not self._broken.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._broken.wait(), min(WATCH_EVERY, self._ready_timeout))
            now = loop.time()
            if self.ready.is_set():
                self.ready_was_reached = True
            elif now - started >= self._ready_timeout:
                log.warning("realtime subscription never went live; rebuilding")
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
            listen = getattr(client, "_listen_task", None)
            if not client.is_connected or listen is None or listen.done():
                log.warning("realtime connection lost; rebuilding")
                return
