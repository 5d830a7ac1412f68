"""The seed's send path, side by side: the bridge against the seed guide's own
Node server, under the same `send_message` load.

Sets up an embedded Postgres with N users in N/2 direct conversations (as
bench/socket_latency.py does) and copies it into two databases with the same
schema, triggers and data, one per server. Then, one server after the other:
starts it (the bridge daemon, `bridge run`; or bench/peer/server.js, the
guide's express + socket.io + pg server), connects N seed clients from the
Node load generator (bench/peer/loadgen.mjs: socket.io-client, websocket,
`join` + `join_conversation`), and for each rate has every socket send with
`send_message` (no waiting for acks) for S seconds, timing each receiver's
`new_message` against the sender's emit. Meanwhile it samples the CPU time
(/proc/<pid>/stat) of the server process and of all Postgres processes, and
the server's RSS before the sockets connect, with them connected and idle,
and after the load. Prints one table.

Usage: python bench/send_path.py [--sockets 5000] [--rates 500,1000]
       [--seconds 30] [--only bridge|peer] [--workers 2] [--acks] [--burst 1]
       [--pg-stats N] [--py-spy DIR] [--bridge-env KEY=VALUE ...]
(`--pg-stats` and `--py-spy`: where the CPU goes, bench/profiling.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import populate_pairs, postgres_cpu, process_cpu  # noqa: E402
from bench.profiling import PG_SETTINGS, Profiler, stats_bin_dir  # noqa: E402
from bench.socket_latency import SECRET  # noqa: E402
from bridge.auth import mint_token  # noqa: E402
from bridge.embedded import EmbeddedPostgres, free_port  # noqa: E402
from tests.support.harness import answering, start_daemon  # noqa: E402

PEER = REPO / "bench" / "peer"
SERVERS = ("bridge", "peer")
TITLES = {"bridge": "chat-bridge", "peer": "Node server from the seed"}


def ensure_node_deps() -> None:
    """`npm ci` in bench/peer when node_modules is missing or older than the lock."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            sys.exit(f"send_path: `{tool}` is not on PATH; install Node.js 18 or later")
    installed = PEER / "node_modules" / ".package-lock.json"
    lock = PEER / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    print("installing bench/peer's Node packages (npm ci)", flush=True)
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=PEER, check=True
    )


# -- /proc sampling -----------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


# -- servers --------------------------------------------------------------------


async def start_peer(dsn: str, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        "node",
        "server.js",
        cwd=PEER,
        env={**os.environ, "DATABASE_URL": dsn, "SOCKET_PORT": str(port)},
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        await answering(proc, f"http://127.0.0.1:{port}/test-socket", timeout=30)
    except BaseException:
        await stop(proc)
        raise
    return proc


async def stop(proc: asyncio.subprocess.Process, grace: float = 15) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


class LoadGen:
    """bench/peer/loadgen.mjs: JSON lines out, one phase per line in."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, url: str, plan: Path, args: argparse.Namespace) -> LoadGen:
        argv = ["node", "loadgen.mjs", "--url", url, "--plan", str(plan)]
        argv += ["--workers", str(args.workers), "--burst", str(args.burst)]
        argv += ["--acks"] if args.acks else []
        proc = await asyncio.create_subprocess_exec(
            *argv,
            cwd=PEER,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        return cls(proc)

    async def line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError(f"the load generator exited ({await self.proc.wait()})")
        result: dict[str, Any] = json.loads(raw)
        return result

    async def phase(self, rate: float, seconds: float, drain: float) -> dict[str, Any]:
        assert self.proc.stdin is not None
        command = {"rate": rate, "seconds": seconds, "drain": drain}
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.line(seconds + drain + 60)

    async def close(self) -> None:
        """Ends it at once (a phase may still be running when interrupted);
        the server goes next, so its sockets need no goodbye."""
        await stop(self.proc, grace=5)


@dataclass
class ServerRun:
    name: str
    rss_base: int = 0
    rss_idle: int = 0
    rss_after: int = 0
    connected: int = 0
    stored: int = 0
    outbox: int = 0
    phases: list[dict[str, Any]] = field(default_factory=list)
    profile: str = ""
    idle_cpu: tuple[float, float] | None = None  # (server, Postgres) CPU s per s, idle


async def measure(
    name: str,
    args: argparse.Namespace,
    pg: EmbeddedPostgres,
    postmaster: int,
    conversations: list[tuple[str, str, str]],
    tmp: Path,
) -> ServerRun:
    dsn = pg.dsn_for(f"bench_{name}")
    port = free_port()
    plan: dict[str, Any] = {"mode": name, "conversations": conversations}
    if name == "bridge":
        ttl = int(args.timeout) + 3600
        users = {u for _, b, i in conversations for u in (b, i)}
        plan["tokens"] = {u: mint_token(SECRET, u, ttl) for u in users}
    plan_path = tmp / f"plan_{name}.json"
    plan_path.write_text(json.dumps(plan))

    print(f"[{name}] starting the server", flush=True)
    env = dict(e.split("=", 1) for e in args.bridge_env)
    server = await (
        start_daemon(dsn, port, SECRET, env) if name == "bridge" else start_peer(dsn, port)
    )
    run = ServerRun(name)
    profiler = Profiler(args, dsn, f"bench_{name}", postmaster)
    loadgen: LoadGen | None = None
    try:
        await asyncio.sleep(1)
        run.rss_base = rss_bytes(server.pid)
        url = f"http://127.0.0.1:{port}"
        loadgen = await LoadGen.start(url, plan_path, args)
        hello = await loadgen.line(120 + args.sockets / 10)
        run.connected = hello["connected"]
        print(
            f"[{name}] {hello['connected']} of {hello['sockets']} sockets joined in"
            f" {hello['seconds']:.1f} s ({hello['errors']} errors)",
            flush=True,
        )
        if hello["errors"]:
            raise RuntimeError(f"{name}: {hello['errors']} sockets failed to connect or join")
        await asyncio.sleep(3)
        run.rss_idle = rss_bytes(server.pid)
        if args.idle:  # the sockets only connected: heartbeats, timers, polls
            server_cpu, pg_cpu = process_cpu(server.pid), postgres_cpu(postmaster)
            await asyncio.sleep(args.idle)
            run.idle_cpu = (
                (process_cpu(server.pid) - server_cpu) / args.idle,
                (postgres_cpu(postmaster) - pg_cpu) / args.idle,
            )
        for rate in args.rates:
            label = f"{name}-{rate:g}"
            await profiler.start(label, server.pid, name == "bridge", args.seconds)
            server_cpu, pg_cpu = process_cpu(server.pid), postgres_cpu(postmaster)
            result = await loadgen.phase(rate, args.seconds, args.drain)
            result["server_cpu_s"] = process_cpu(server.pid) - server_cpu
            result["postgres_cpu_s"] = postgres_cpu(postmaster) - pg_cpu
            await profiler.finish(label, result["sent"])
            run.phases.append(result)
            lat = result["latency_ms"]
            print(
                f"[{name}] {rate:g} msg/s: sent {result['sent']}, delivered"
                f" {result['delivered']}, p50 {lat['p50']} p99 {lat['p99']} ms,"
                f" {result['delivery_rate']:.0f} msg/s",
                flush=True,
            )
            await asyncio.sleep(2)
        run.rss_after = rss_bytes(server.pid)
        run.stored, run.outbox = await stored(dsn)
        run.profile = profiler.report()
    finally:
        if loadgen is not None:
            await loadgen.close()
        await stop(server)
    return run


async def stored(dsn: str) -> tuple[int, int]:
    """The load's messages in the database, and their outbox rows: both
    servers wrote every message through the same table and triggers."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "select (select count(*) from public.messages where client_message_id like 'lg-%'),"
            " (select count(*) from bridge.outbox where topic = 'message.created'"
            "  and payload->'message'->>'client_message_id' like 'lg-%')"
        )
        assert row is not None
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def clone_databases(pg: EmbeddedPostgres, names: list[str]) -> None:
    """Same schema and data for every server: copies of the populated database."""
    admin = await asyncpg.connect(pg.dsn_for("template1"))
    try:
        for name in names:
            await admin.execute(f"create database bench_{name} template postgres")
    finally:
        await admin.close()


async def run_all(args: argparse.Namespace, pg: EmbeddedPostgres, tmp: Path) -> list[ServerRun]:
    print(f"populating {args.sockets} users in {args.sockets // 2} conversations", flush=True)
    conversations = await populate_pairs(pg.dsn, args.sockets // 2, "Load")
    await clone_databases(pg, args.servers)
    postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
    return [await measure(n, args, pg, postmaster, conversations, tmp) for n in args.servers]


# -- the table ------------------------------------------------------------------


def mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def table(runs: list[ServerRun], args: argparse.Namespace) -> str:
    rows: list[tuple[str, list[str]]] = []
    for i, rate in enumerate(args.rates):
        phases = [r.phases[i] if i < len(r.phases) else None for r in runs]

        def cells(fmt: Any, phases: list[dict[str, Any] | None] = phases) -> list[str]:
            return [fmt(p) if p is not None else "-" for p in phases]

        def latency(p: dict[str, Any]) -> str:
            lat = p["latency_ms"]
            if lat["p50"] is None:
                return "nothing delivered"
            return " / ".join(f"{lat[k]:,.1f}" for k in ("p50", "p90", "p99", "max")) + " ms"

        def delivery(p: dict[str, Any]) -> str:
            pace = "kept pace" if p["kept_pace"] else "falls behind"
            text = f"{p['delivery_rate']:,.0f} msg/s ({pace}); lost {p['lost']}"
            for key in ("duplicates", "disconnects"):
                text += f"; {key} {p[key]}" if p[key] else ""
            return text

        def per_message(key: str) -> Any:
            return lambda p: f"{p[key] * 1000 / max(1, p['sent']):.2f} ms"

        label = f"{rate:,g} msg/s"
        rows.append((f"{label}: p50 / p90 / p99 / max", cells(latency)))
        rows.append((f"{label}: delivery", cells(delivery)))
        rows.append((f"{label}: out of order", cells(lambda p: str(p["order_violations"]))))
        rows.append((f"{label}: server CPU per message", cells(per_message("server_cpu_s"))))
        rows.append((f"{label}: Postgres CPU per message", cells(per_message("postgres_cpu_s"))))
        if args.acks:
            rows.append((f"{label}: error acks", cells(lambda p: str(p["ack_errors"]))))

    def memory(r: ServerRun) -> str:
        per_socket = (r.rss_idle - r.rss_base) / max(1, r.connected)
        return f"{mb(r.rss_idle)} ({per_socket / 1024:.0f} KB per socket)"

    if args.idle:

        def idle(r: ServerRun) -> str:
            if r.idle_cpu is None:
                return "-"
            return f"{r.idle_cpu[0] * 1000:.0f} + {r.idle_cpu[1] * 1000:.0f} ms per s"

        rows.append(
            (f"idle, {args.sockets:,} sockets: server + Postgres CPU", [idle(r) for r in runs])
        )
    rows.append((f"server memory with {args.sockets:,} sockets", [memory(r) for r in runs]))
    rows.append(("server memory after the load", [mb(r.rss_after) for r in runs]))
    rows.append(("messages stored (outbox rows)", [f"{r.stored:,} ({r.outbox:,})" for r in runs]))
    header = ["", *(TITLES[r.name] for r in runs)]
    body = [[label, *values] for label, values in rows]
    widths = [max(len(row[c]) for row in [header, *body]) for c in range(len(header))]

    def line(row: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in body)])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sockets", type=int, default=5000, help="even; two per conversation")
    parser.add_argument("--rates", default="500,1000", help="messages per second, all senders")
    parser.add_argument("--seconds", type=float, default=30, help="sending time per rate")
    parser.add_argument("--drain", type=float, default=60, help="most seconds to wait after")
    parser.add_argument("--only", choices=SERVERS)
    parser.add_argument(
        "--idle", type=float, default=20, help="seconds of CPU measured with sockets idle; 0: none"
    )
    parser.add_argument("--workers", type=int, default=2, help="load generator threads")
    parser.add_argument("--acks", action="store_true", help="ask for acks and count errors")
    parser.add_argument("--burst", type=int, default=1, help="messages per sender turn")
    parser.add_argument("--timeout", type=float, help="stop after this many seconds in all")
    parser.add_argument("--pg-stats", type=int, metavar="N", help="top N statements per phase")
    parser.add_argument("--pg-bin", help="PostgreSQL binaries with pg_stat_statements")
    parser.add_argument("--py-spy", metavar="DIR", help="record the daemon per phase into DIR")
    parser.add_argument(
        "--bridge-env", action="append", default=[], metavar="KEY=VALUE", help="daemon setting"
    )
    args = parser.parse_args()
    if args.sockets < 2 or args.sockets % 2:
        parser.error("--sockets must be an even number of at least 2")
    args.rates = [float(r) for r in args.rates.split(",")]
    args.servers = [args.only] if args.only else list(SERVERS)
    if args.timeout is None:
        phases = len(args.rates) * (args.seconds + args.drain + 10)
        per_server = 180 + args.sockets / 10 + phases + args.idle
        args.timeout = 120 + len(args.servers) * per_server
    return args


async def bounded(args: argparse.Namespace, pg: EmbeddedPostgres, tmp: Path) -> list[ServerRun]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await asyncio.wait_for(run_all(args, pg, tmp), args.timeout)
    except TimeoutError:
        sys.exit(f"send_path: gave up after {args.timeout:.0f} s (--timeout)")


def main() -> None:
    args = parse_args()
    ensure_node_deps()
    with tempfile.TemporaryDirectory() as tmp:
        settings = {"max_connections": "400"}
        bin_dir = None
        if args.pg_stats:
            settings |= PG_SETTINGS
            bin_dir = stats_bin_dir(args.pg_bin)
        pg = EmbeddedPostgres(tmp, free_port(), extra_settings=settings, bin_dir=bin_dir)
        pg.start()
        try:
            runs = asyncio.run(bounded(args, pg, Path(tmp)))
        except (KeyboardInterrupt, asyncio.CancelledError):
            sys.exit("send_path: interrupted; everything it started is stopped")
        finally:
            pg.stop()
    print()
    print(
        f"{args.sockets:,} sockets in {args.sockets // 2:,} conversations, `send_message` for"
        f" {args.seconds:g} s per rate, emit -> receiver's `new_message`:"
    )
    print(table(runs, args))
    for run in runs:
        if run.profile:
            print(run.profile)


if __name__ == "__main__":
    main()
