"""Real services a test or bench starts for itself."""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A real Redis server (Debian's redis-server) on `port`, without
    persistence; returns once it accepts connections."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make test installs it: scripts/ensure-services)"
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc


@dataclasses.dataclass
class OwnRedis:
    """A Redis server of one test's own (the `own_redis` fixture), for tests
    that freeze, kill or restart it; `proc` is the running server."""

    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL, as a crash would (a frozen server dies too)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        """A new, empty server on the same port."""
        self.kill()
        self.proc = start_redis(self.port, self.workdir)


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One database connection, closed after (a supabase-js client's, or
    the test's own view of the database)."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
