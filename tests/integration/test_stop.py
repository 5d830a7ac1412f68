"""Stopping the daemon as a container runtime does (SIGTERM): it ends by
itself even when the database froze under it, instead of hanging until the
orchestrator's kill, and says what it gave up on without a traceback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from bridge.embedded import EmbeddedPostgres, free_port
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import ReconnectingClient, start_daemon


def cluster_pids(pgdata: Path) -> list[int]:
    """The postmaster and every process it started."""
    postmaster = int((pgdata / "postmaster.pid").read_text().split()[0])
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
    return [postmaster, *children]


@contextlib.contextmanager
def frozen(pgdata: Path) -> Iterator[None]:
    """Postgres stops answering without closing anything (a hung host, a
    network black hole): SIGSTOP to all its processes, SIGCONT after."""
    pids = cluster_pids(pgdata)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def test_sigterm_with_a_frozen_database_still_exits(own_cluster: EmbeddedPostgres) -> None:
    """Ava and Leo are connected and Leo is sending when Postgres freezes;
    the daemon gets SIGTERM: the process is gone within 20 s (its own
    deadline is 15 s, inside Docker's stop grace in docker-compose.yml) and
    its log holds no traceback."""
    port = free_port()
    proc = await start_daemon(own_cluster.dsn, port, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    clients = [ReconnectingClient(f"http://127.0.0.1:{port}", u) for u in (AVA, LEO)]
    try:
        for client in clients:
            await client.start()
        with frozen(own_cluster.pgdata):
            for i in range(5):  # in flight, as a client that does not wait for acks sends
                await clients[1].sio.emit(
                    "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": f"f{i}"}
                )
            await asyncio.sleep(0.5)
            proc.send_signal(signal.SIGTERM)
            log = await asyncio.wait_for(proc.stderr.read(), 20)
            await asyncio.wait_for(proc.wait(), 5)
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert b"Traceback" not in log, log.decode(errors="replace")[-2000:]
    assert proc.returncode in (0, 1)  # 1: it gave up on the frozen connections and said so
