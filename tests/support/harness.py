"""Running the real daemon against a test database, and real Socket.IO
clients that record what they receive."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from bridge.app import BridgeApp
from bridge.auth import mint_token
from bridge.config import (
    DatabaseSettings,
    LimitsSettings,
    OutboxSettings,
    PresenceSettings,
    ServerSettings,
    Settings,
    SupabaseSettings,
)
from bridge.settings import AttachmentsSettings
from tests.support.demo import CAMPAIGN_CONVERSATION
from tests.support.waits import eventually

SECRET = "test-secret-that-is-at-least-32-characters-long"
# Rate and connection limits off: most tests send far faster than a person;
# tests/integration/test_rate_limits.py turns them on.
NO_LIMITS = LimitsSettings(
    send_rate=0,
    typing_rate=0,
    read_rate=0,
    join_rate=0,
    other_rate=0,
    max_sockets_per_user=0,
)


def settings_for(dsn: str, **overrides: Any) -> Settings:
    base = Settings(
        server=ServerSettings(host="127.0.0.1", port=0, environment="test"),
        database=DatabaseSettings(url=dsn),
        supabase=SupabaseSettings(url="http://storage.test", jwt_secret=SECRET),
        outbox=OutboxSettings(poll_interval=2.0),
        presence=PresenceSettings(offline_grace=0.5, typing_ttl=1.0, typing_throttle=0.5),
        limits=NO_LIMITS,
        # The local attachment backend's files: never under the checkout.
        attachments=AttachmentsSettings(
            dir=str(Path(tempfile.gettempdir()) / f"bridge-test-attachments-{os.getpid()}")
        ),
    )
    return dataclasses.replace(base, **overrides)


def token(user_id: str, ttl: int = 3600, secret: str = SECRET, **extra: Any) -> str:
    return mint_token(secret, user_id, ttl, **extra)


class Client:
    """A python-socketio AsyncClient that records every event it receives."""

    def __init__(self, url: str, user_id: str | None = None) -> None:
        self.url = url
        self.user_id = user_id
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()
        self.connect_errors: list[Any] = []
        self.sio.on("*", self._record)
        self.sio.on("connect_error", self._connect_error)

    async def _connect_error(self, data: Any = None) -> None:
        self.connect_errors.append(data)

    async def _record(self, event: str, *args: Any) -> None:
        async with self._changed:
            self.events.append((event, args[0] if args else None))
            self._changed.notify_all()

    async def connect(
        self, auth: Any = None, headers: dict[str, str] | None = None, wait_timeout: float = 5
    ) -> Client:
        if auth is None and self.user_id is not None:
            auth = {"token": token(self.user_id)}
        await self.sio.connect(
            self.url,
            auth=auth,
            headers=headers or {},
            transports=["websocket"],
            wait_timeout=wait_timeout,
        )
        return self

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data, timeout=5)

    def received(self, event: str) -> list[Any]:
        return [data for name, data in self.events if name == event]

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _d: True, timeout: float = 5.0
    ) -> Any:
        async def find() -> Any:
            async with self._changed:
                while True:
                    for name, data in self.events:
                        if name == event and where(data):
                            return data
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def wait_count(
        self,
        event: str,
        count: int,
        where: Callable[[Any], bool] = lambda _d: True,
        timeout: float = 5.0,
    ) -> list[Any]:
        """Waits until `count` matching events have arrived; returns them all."""

        async def find() -> list[Any]:
            async with self._changed:
                while True:
                    found = [d for name, d in self.events if name == event and where(d)]
                    if len(found) >= count:
                        return found
                    await self._changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


class ReconnectingClient:
    """What a careful app does: keep the last event_id seen before a gap,
    ask `sync` for the rest after reconnecting, drop duplicates."""

    def __init__(self, url: str, user: str, secret: str = SECRET) -> None:
        self.url, self.user, self.secret = url, user, secret
        self.messages: list[str] = []
        self.seen: set[int] = set()
        self.duplicates = 0
        self.resyncs = 0
        self.last = 0
        self.resume_from = 0
        self.connects = 0
        self.synced = asyncio.Event()
        self.sync_failures: list[Exception] = []
        self._syncs: set[asyncio.Task[None]] = set()
        self.sio = socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1.0
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("new_message", self._on_message)

    async def start(self) -> None:
        await self.sio.connect(
            self.url,
            auth={"token": mint_token(self.secret, self.user, 7200)},
            transports=["websocket"],
            wait_timeout=10,
        )

    async def _on_disconnect(self, *_: Any) -> None:
        # Resume from what was seen before the gap: live events arriving after
        # the reconnect but before `sync` must not move the resume point.
        self.resume_from = self.last

    async def _on_connect(self) -> None:
        self.connects += 1
        if self.connects > 1:
            # Not awaited here: python-socketio would hold the connect until it ends.
            task = asyncio.create_task(self._sync())
            self._syncs.add(task)
            task.add_done_callback(self._syncs.discard)

    async def _sync(self) -> None:
        try:
            ack = await self.sio.call("sync", {"lastEventId": self.resume_from}, timeout=10)
        except socketio.exceptions.SocketIOError as exc:  # the connection went again meanwhile
            self.sync_failures.append(exc)
            return
        if ack.get("resync"):
            self.resyncs += 1
        self.synced.set()

    async def close(self) -> None:
        """Disconnects, and ends a `sync` still in flight: a task left behind
        would fail after the test, logging "Task exception was never
        retrieved" into whichever test runs when it is collected."""
        await self.sio.disconnect()
        for task in list(self._syncs):
            task.cancel()
        await asyncio.gather(*self._syncs, return_exceptions=True)

    async def _on_message(self, data: dict[str, Any]) -> None:
        if data["event_id"] in self.seen:
            self.duplicates += 1
            return
        self.seen.add(data["event_id"])
        self.last = max(self.last, data["event_id"])
        self.messages.append(data["message"]["content"])


class Harness:
    def __init__(self, app: BridgeApp) -> None:
        self.app = app
        self.clients: list[Client] = []
        self.http = aiohttp.ClientSession()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.app.port}"

    async def client(self, user_id: str, **kwargs: Any) -> Client:
        client = Client(self.url, user_id)
        self.clients.append(client)
        await client.connect(**kwargs)
        return client

    def unconnected(self) -> Client:
        client = Client(self.url)
        self.clients.append(client)
        return client

    async def request(
        self,
        method: str,
        path: str,
        user_id: str | None = None,
        *,
        bearer: str | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = dict(kwargs.pop("headers", {}))
        if bearer is None and user_id is not None:
            bearer = token(user_id)
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        async with self.http.request(method, self.url + path, headers=headers, **kwargs) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = await resp.text()
            return resp.status, body

    async def close(self) -> None:
        for client in self.clients:
            await client.close()
        await self.http.close()

    async def stop(self) -> None:
        """Clients first, then the daemon; a hang shows where every task waits."""
        try:
            await asyncio.wait_for(self.close(), 15)
            await asyncio.wait_for(self.app.stop(), 30)
        except TimeoutError:
            for task in asyncio.all_tasks():
                task.print_stack(file=sys.stderr)
            raise


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Harness]:
    """The real daemon with these settings, for the length of a test."""
    app = await _start(settings)
    harness = Harness(app)
    try:
        yield harness
    finally:
        await harness.stop()


async def _start(settings: Settings) -> BridgeApp:
    """A started app; one whose start failed is stopped (what it opened,
    closed) before the error goes on to the test."""
    app = BridgeApp(settings)
    try:
        await app.start()
    except BaseException:
        await app.stop()
        raise
    return app


REPO = Path(__file__).resolve().parents[2]
JS = REPO / "tests" / "js"


async def run_seed_client(script: str, url: str, config: dict[str, Any], timeout: float) -> Any:
    """Runs tests/js/`script` (the seed's socket.io-client from npm) against
    `url` with `config`; returns the JSON it prints, failing with its output
    when it exits non-zero."""
    node = shutil.which("node")
    assert node, "node is not installed"
    assert (JS / "node_modules" / "socket.io-client").is_dir(), (
        "run `npm install` in tests/js (make test does)"
    )
    proc = await asyncio.create_subprocess_exec(
        node,
        str(JS / script),
        url,
        json.dumps(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=JS,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode == 0, stderr.decode() + stdout.decode()
    return json.loads(stdout)


async def start_daemon(
    dsn: str,
    port: int,
    secret: str = SECRET,
    env: dict[str, str] | None = None,
    checkout: Path = REPO,
    stderr: int | None = None,
) -> asyncio.subprocess.Process:
    """`bridge run` as its own process on `dsn` and 127.0.0.1:`port`, with
    extra environment; returns once /healthz answers. `checkout` runs the
    daemon of another working tree (benches compare designs with it);
    `stderr=asyncio.subprocess.PIPE` keeps its log for the test to read."""
    full_env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "SUPABASE_JWT_SECRET": secret,
        "SOCKET_PORT": str(port),
        "BRIDGE_SERVER_HOST": "127.0.0.1",
        "BRIDGE_CONFIG": str(checkout / "config.toml"),
        **(env or {}),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        "--log-level",
        "ERROR",
        "run",
        env=full_env,
        cwd=checkout,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        await answering(proc, f"http://127.0.0.1:{port}/healthz")
    except BaseException:
        if proc.returncode is None:
            proc.terminate()
        raise
    return proc


async def answering(proc: asyncio.subprocess.Process, url: str, timeout: float = 60.0) -> None:
    """Returns once GET `url` answers 200; fails as soon as `proc`, the
    server behind it, exits, or after `timeout` (a busy machine starts
    Python slowly)."""
    async with aiohttp.ClientSession() as session:

        async def answers() -> bool:
            if proc.returncode is not None:
                raise RuntimeError(f"the server exited with {proc.returncode} before it came up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as resp:
                    return resp.status == 200
            return False

        await eventually(answers, timeout=timeout, what=f"{url} answering", interval=0.1)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`bridge ARGS...` as its own process with extra environment; returns the
    exit status, stdout and stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge.cli",
        *args,
        env={**os.environ, "BRIDGE_CONFIG": str(REPO / "config.toml"), **(env or {})},
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def started(settings: Settings) -> Harness:
    return Harness(await _start(settings))


async def seed_client(bridge: Harness, user: str) -> Client:
    """Connects and joins rooms exactly as the seed's useSocket hook does."""
    client = await bridge.client(user)
    for event in ("join", "join_global_updates", "request_global_notifications"):
        ack = await client.call(event, user)
        assert ack["ok"], ack
    return client


def about(conversation: str) -> Any:
    return lambda d: d.get("conversation_id", d.get("conversationId")) == conversation


def send_payload(conversation: str, text: str) -> dict[str, str]:
    """A `send_message` payload with a fresh clientMessageId."""
    return {"conversationId": conversation, "message": text, "clientMessageId": str(uuid.uuid4())}


async def socket_send(client: Any, text: str, conversation: str = CAMPAIGN_CONVERSATION) -> str:
    """Sends over the socket with an ack, as the seed's client does; the id."""
    ack = await client.call("send_message", {"conversationId": conversation, "message": text})
    assert ack["ok"], ack
    return str(ack["message"]["id"])


async def chat_entry(bridge: Harness, user: str, conversation: str) -> dict[str, Any]:
    status, body = await bridge.request("GET", "/api/conversations", user)
    assert status == 200, body
    [entry] = [c for c in body["conversations"] if c["id"] == conversation]
    return dict(entry)


async def page(bridge: Harness, user: str, conversation: str) -> list[dict[str, Any]]:
    status, body = await bridge.request("GET", f"/api/conversations/{conversation}/messages", user)
    assert status == 200, body
    return list(body["messages"])
