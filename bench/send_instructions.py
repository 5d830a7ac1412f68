"""Postgres instructions per message of the send statements, counted with
valgrind (callgrind) on the backend: the bridge's (bridge.send_messages_changes,
N sends per statement) against the Node server's (bench/peer/server.js:
INSERT ... RETURNING * and SELECT the conversation), on the same schema and
triggers. CPU time on a shared machine moves by a third between identical
runs; instruction counts repeat to about 1 %.

An embedded Postgres with 500 direct conversations is started under
callgrind; each connection sends N1 and then, on a new connection, N2
messages (round-robin over the conversations, after a short warm-up), and
the count per message is the difference of the two backends' totals over
N2 - N1 (so connecting and first plans drop out).

Usage: python bench/send_instructions.py [--batches 1,8] [--n1 10] [--n2 200]
       [--checkout DIR]   (DIR: another working tree's migrations and send)
Needs valgrind (apt-get install valgrind); runs as root or the Postgres user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import populate_pairs  # noqa: E402
from bridge.embedded import EmbeddedPostgres, free_port  # noqa: E402

PEER_INSERT = (
    "INSERT INTO messages (conversation_id, sender_id, content, message_type, media_url,"
    " client_message_id) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *"
)


class Sender:
    def __init__(
        self, conn: asyncpg.Connection, convs: list[tuple[str, str, str]], batch: int, rows: bool
    ) -> None:
        self.conn, self.convs, self.batch = conn, convs, batch
        self.rows = rows  # bridge.send_messages_changes; else a tree from before it
        self.k = 0

    def item(self) -> dict[str, Any]:
        conversation, a, b = self.convs[self.k % len(self.convs)]
        user = a if (self.k // len(self.convs)) % 2 else b
        self.k += 1
        return {
            "claims": {"sub": user, "role": "authenticated", "aud": "authenticated"},
            "conversation_id": conversation,
            "content": f"hello {self.k}",
            "message_type": "text",
            "media_url": None,
            "client_message_id": str(uuid.uuid4()),
        }

    async def send(self) -> int:
        """One statement's worth (the peer: one message); returns how many."""
        if self.batch == 0:  # the Node server
            it = self.item()
            await self.conn.fetchrow(
                PEER_INSERT,
                it["conversation_id"],
                it["claims"]["sub"],
                it["content"],
                "text",
                None,
                it["client_message_id"],
            )
            await self.conn.fetchrow(
                "SELECT * FROM conversations WHERE id = $1", it["conversation_id"]
            )
            return 1
        items = sorted((self.item() for _ in range(self.batch)), key=lambda i: i["conversation_id"])
        if self.rows:
            await self.conn.fetch("select * from bridge.send_messages_changes($1::jsonb)", items)
        else:
            await self.conn.fetchval("select bridge.send_messages_emitting($1::jsonb)", items)
        return self.batch


def instructions(out_dir: Path, pid: int) -> int:
    """The backend's total, written by callgrind when it exits."""
    path = out_dir / f"cg.{pid}"
    for _ in range(600):
        if path.exists():
            for line in path.read_text().splitlines():
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
        time.sleep(0.5)
    raise RuntimeError(f"no callgrind output for backend {pid}")


async def connect(dsn: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(dsn, timeout=120)
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    return conn


async def count(pg: EmbeddedPostgres, out_dir: Path, convs: Any, batch: int, args: Any) -> float:
    totals = []
    for n in (args.n1, args.n2):
        conn = await connect(pg.dsn)
        row = await conn.fetchrow(
            "select pg_backend_pid(), to_regproc('bridge.send_messages_changes') is not null"
        )
        assert row is not None
        pid, rows = row
        sender = Sender(conn, convs, batch, rows)
        for _ in range(3):
            await sender.send()
        sent = 0
        while sent < n:
            sent += await sender.send()
        await conn.close()
        totals.append((sent, instructions(out_dir, pid)))
    (s1, i1), (s2, i2) = totals
    return (i2 - i1) / (s2 - s1)


async def main(args: argparse.Namespace) -> None:
    checkout: Path = args.checkout
    with tempfile.TemporaryDirectory(prefix="send-instructions-") as tmp:
        os.chmod(tmp, 0o777)
        pg = EmbeddedPostgres(tmp, free_port(), durable=False)
        pg.start()
        try:
            convs = await populate_pairs(pg.dsn, 500, "Load", checkout)
            admin = await asyncpg.connect(pg.dsn)
            await admin.execute("update bridge.doorbell set armed = false")
            await admin.close()
        finally:
            pg.stop()
        out_dir = Path(tmp) / "callgrind"
        out_dir.mkdir()
        os.chmod(out_dir, 0o777)
        argv = ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out_dir}/cg.%p"]
        argv += [str(pg.bin_dir / "postgres"), "-D", str(pg.pgdata)]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", pg.pgdata.owner(), "--", *argv]
        server = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
        try:
            for _ in range(300):
                try:
                    await (await asyncpg.connect(pg.dsn, timeout=60)).close()
                    break
                except (OSError, asyncpg.PostgresError, TimeoutError):
                    await asyncio.sleep(1)
            peer = await count(pg, out_dir, convs, 0, args)
            print(f"Node server (INSERT + SELECT): {peer / 1e6:.2f} M instructions per message")
            for batch in args.batches:
                ours = await count(pg, out_dir, convs, batch, args)
                print(
                    f"bridge, {batch} per statement: {ours / 1e6:.2f} M instructions per message"
                    f" ({ours / peer:.2f} x)",
                    flush=True,
                )
        finally:
            server.terminate()
            await server.wait()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", default="1,8", help="sends per bridge statement")
    parser.add_argument("--n1", type=int, default=10)
    parser.add_argument("--n2", type=int, default=200)
    parser.add_argument("--checkout", help="count another working tree's schema and send")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",")]
    args.checkout = Path(args.checkout).resolve() if args.checkout else REPO
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
