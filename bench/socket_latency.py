"""Commit -> delivery latency and deliveries/s of the bridge under load.

Starts a Postgres (embedded mode) with N users in N/2 direct conversations,
runs the real daemon (`bridge run`) as its own process, connects N
websocket clients (a lean Engine.IO v4 / Socket.IO v5 client, so that the
load generator is not the bottleneck), then inserts messages at a set rate
straight into Postgres, as supabase-js writes would arrive. For every
message the receiver's `new_message` arrival is timed against the moment
the writer's COMMIT returned; the CPU time of the daemons and of Postgres
(/proc) over the sending and the drain is printed per message.

With --instances 2 the sockets are split over two daemons sharing a real
Redis (Debian's redis-server), as behind a load balancer: each instance
tails the outbox and emits to its own sockets.


`--doorbell realtime` rings the relay through the Realtime stand-in at the
hosted cadence (Broadcast from Database; the bridge's own poll a minute
away) and reports the rings writers sent. `--ring-latency N` measures only
commit -> ring on the stand-in, N rings each way: Broadcast from Database
(realtime.send, streamed) and postgres_changes (an outbox INSERT through the
replication poller, 100-500 ms cadence).

Usage: python bench/socket_latency.py [--sockets 5000] [--rate 1000]
       [--seconds 20] [--fanout direct|stock] [--doorbell listen|realtime]
       [--instances 1|2] [--daemon-from CHECKOUT]
       python bench/socket_latency.py --ring-latency 60
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import latency_line, populate_pairs, postgres_cpu, process_cpu  # noqa: E402
from bridge.auth import mint_token  # noqa: E402
from bridge.embedded import EmbeddedPostgres, free_port  # noqa: E402
from bridge.migrate import prepare_database  # noqa: E402
from tests.support.harness import start_daemon  # noqa: E402
from tests.support.realtime_standin import RealtimeStandIn  # noqa: E402
from tests.support.services import start_redis  # noqa: E402

SECRET = "bench-secret-that-is-at-least-32-characters-long"


class Stats:
    def __init__(self) -> None:
        self.sent_at: dict[str, float] = {}
        self.latencies: list[float] = []
        self.timeline: list[tuple[float, float]] = []
        self.deliveries = 0
        self.early = 0  # arrived before the writer's COMMIT had returned to it
        self.connected = 0
        self.errors = 0


async def lean_client(
    session: aiohttp.ClientSession,
    url: str,
    user: str,
    stats: Stats,
    ready: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Engine.IO over a websocket: open, connect with auth, answer pings, count events."""
    try:
        async with session.ws_connect(f"{url}/socket.io/?EIO=4&transport=websocket") as ws:
            await ws.receive()  # engine.io open packet
            token = mint_token(SECRET, user, 7200)
            await ws.send_str("40" + json.dumps({"token": token}))
            reply = await ws.receive()
            while str(reply.data).startswith("42"):  # events may precede the connect ack
                reply = await ws.receive()
            if not str(reply.data).startswith("40"):
                stats.errors += 1
                if stats.errors == 1:
                    print("connect refused:", reply.data, file=sys.stderr)
                ready.set()
                return
            stats.connected += 1
            ready.set()
            while not stop.is_set():
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                data: str = msg.data
                if data == "2":
                    await ws.send_str("3")
                    continue
                if not data.startswith("42"):
                    continue
                stats.deliveries += 1
                if data.startswith('42["new_message"'):
                    now = time.perf_counter()
                    event = json.loads(data[2:])[1]
                    message = event["message"]
                    sent = stats.sent_at.get(message["content"])
                    if message["sender_id"] == user:
                        continue
                    if sent is None:
                        stats.early += 1
                    else:
                        stats.latencies.append(now - sent)
                        stats.timeline.append((sent, now - sent))
    except (aiohttp.ClientError, TimeoutError) as exc:
        stats.errors += 1
        if stats.errors == 1:
            print("client failed:", repr(exc), file=sys.stderr)
        ready.set()


async def writer(
    dsn: str,
    conversations: list[tuple[str, str, str]],
    rate: float,
    seconds: float,
    stats: Stats,
    offset: int,
    writers: int,
) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        interval = writers / rate
        start = time.perf_counter()
        n = offset
        while time.perf_counter() - start < seconds:
            conv, brand_owner, _ = conversations[n % len(conversations)]
            content = f"bench-{n}"
            await conn.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " values ($1, $2, $3)",
                conv,
                brand_owner,
                content,
            )
            stats.sent_at[content] = time.perf_counter()
            n += writers
            delay = start + (n - offset) / writers * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
    finally:
        await conn.close()


async def run(args: argparse.Namespace, pg: EmbeddedPostgres, tmp: Path) -> None:
    checkout = args.daemon_from or REPO
    conversations = await populate_pairs(pg.dsn, args.sockets // 2, "Load", checkout)
    env = {"BRIDGE_SERVER_FANOUT": args.fanout}
    redis = None
    if args.instances > 1:
        redis_port = free_port()
        redis = start_redis(redis_port, tmp)
        env["REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
    realtime: RealtimeStandIn | None = None
    if args.doorbell == "realtime":
        realtime = RealtimeStandIn(pg.dsn, SECRET)
        await realtime.start()
        env |= {
            "BRIDGE_OUTBOX_DOORBELL": "realtime",
            "SUPABASE_URL": realtime.url,
            "BRIDGE_OUTBOX_POLL_INTERVAL": "60",
            "SUPABASE_SERVICE_ROLE_KEY": mint_token(SECRET, SERVICE, 86400, role="service_role"),
        }
    ports = [free_port() for _ in range(args.instances)]
    daemons = [await start_daemon(pg.dsn, port, SECRET, env, checkout) for port in ports]
    stats = Stats()
    stop = asyncio.Event()
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            users = [u for _, b, i in conversations for u in (b, i)]
            tasks = []
            t0 = time.perf_counter()
            for start in range(0, len(users), 250):
                batch_ready = []
                for k, user in enumerate(users[start : start + 250], start):
                    ready = asyncio.Event()
                    batch_ready.append(ready)
                    # The two of a conversation on different instances, and
                    # each instance with half of the receivers.
                    url = urls[(k // 2 + k) % len(urls)]
                    tasks.append(
                        asyncio.create_task(lean_client(session, url, user, stats, ready, stop))
                    )
                await asyncio.wait_for(asyncio.gather(*(r.wait() for r in batch_ready)), 60)
            print(
                f"connected {stats.connected} sockets in {time.perf_counter() - t0:.1f} s"
                f" ({stats.errors} errors)"
            )
            await asyncio.sleep(2)
            # The generator's own GC pauses over 5,000 sockets would show up as latency.
            gc.collect()
            gc.freeze()
            stats.deliveries = 0
            postmaster = int((pg.pgdata / "postmaster.pid").read_text().split()[0])
            cpu0 = [process_cpu(d.pid) for d in daemons], postgres_cpu(postmaster)
            t1 = time.perf_counter()
            writers = 16
            await asyncio.gather(
                *(
                    writer(pg.dsn, conversations, args.rate, args.seconds, stats, k, writers)
                    for k in range(writers)
                )
            )
            elapsed = time.perf_counter() - t1
            during = stats.deliveries
            sent = len(stats.sent_at)
            for _ in range(100):
                if len(stats.latencies) + stats.early >= sent:
                    break
                await asyncio.sleep(0.1)
            stop.set()
            daemon_cpu = sum(process_cpu(d.pid) for d in daemons) - sum(cpu0[0])
            pg_cpu = postgres_cpu(postmaster) - cpu0[1]
            pages = [await pages_read(session, url) for url in urls]
            lat = [x * 1000 for x in stats.latencies]
            print(f"fan-out: {args.fanout}; doorbell: {args.doorbell}; instances: {args.instances}")
            if realtime is not None:
                rings = await rings_sent(pg.dsn)
                print(
                    f"realtime: {rings} rings sent by writers for {sent} messages (postgres_changes"
                    f" would send {sent} events); delivered {realtime.delivered},"
                    f" dropped over the limit {realtime.rate.dropped}"
                )
            print(
                f"messages: {sent} in {args.seconds:.0f} s ({sent / args.seconds:.0f}/s);"
                f" new_message received by recipients: {len(lat) + stats.early}"
                f" ({stats.early} before the writer's COMMIT returned, not timed)"
            )
            print(
                f"deliveries (all events, all sockets) while sending: {during}"
                f" ({during / elapsed:.0f}/s); in all: {stats.deliveries}"
            )
            if lat:
                print(latency_line("commit -> delivery latency", lat))
            if sent:
                print(
                    f"CPU per message over the sending and the drain: daemon"
                    f" {daemon_cpu / sent * 1000:.3f} ms, Postgres {pg_cpu / sent * 1000:.3f} ms"
                    " (the writers' inserts included)"
                )
            for url, (count, changes, unsealed) in zip(urls, pages, strict=True):
                if count:
                    print(
                        f"{url}: {count:.0f} outbox pages read with changes,"
                        f" {changes / count:.1f} changes per page; {unsealed:.0f} armings"
                        " found a writer open"
                    )
            if os.environ.get("BENCH_TIMELINE"):
                by_second: dict[int, list[float]] = {}
                for at, latency in stats.timeline:
                    by_second.setdefault(int(at - t1), []).append(latency * 1000)
                for second, values in sorted(by_second.items()):
                    print(
                        f"  t={second:3d}s n={len(values):5d} max={max(values):7.1f}"
                        f" over100={sum(v > 100 for v in values)}"
                    )
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for daemon in daemons:
            daemon.terminate()
            await asyncio.wait_for(daemon.wait(), 30)
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        if realtime is not None:
            await realtime.stop()


SERVICE = "00000000-0000-4000-8000-000000000000"


async def pages_read(session: aiohttp.ClientSession, url: str) -> tuple[float, float, float]:
    """From a daemon's /metrics: the outbox pages its readers (the relay;
    each tail too with several instances) read with changes, those changes,
    and the doorbell armings that found a writer still open."""
    async with session.get(f"{url}/metrics") as resp:
        text = await resp.text()
    found = {
        "bridge_outbox_batch_changes_count{": 0.0,
        "bridge_outbox_batch_changes_sum{": 0.0,
        "bridge_doorbell_unsealed_total ": 0.0,
    }
    for line in text.splitlines():
        for prefix in found:
            if line.startswith(prefix):
                found[prefix] += float(line.rsplit(" ", 1)[1])
    count, changes, unsealed = found.values()
    return count, changes, unsealed


async def rings_sent(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "select count(*) from realtime.messages where topic = 'bridge:outbox'"
            )
        )
    finally:
        await conn.close()


async def ring_latency(args: argparse.Namespace, pg: EmbeddedPostgres) -> None:
    """Commit -> ring on the stand-in, one ring at a time, 150-450 ms
    apart (a quiet project: the poller idles at its 500 ms cadence)."""
    import random

    from realtime import AsyncRealtimeClient, RealtimePostgresChangesListenEvent

    await prepare_database(pg.dsn, REPO / "supabase", bootstrap=True, seed=True)
    standin = RealtimeStandIn(pg.dsn, SECRET)
    await standin.start()
    conn = await asyncpg.connect(pg.dsn)
    key = mint_token(SECRET, SERVICE, 86400, role="service_role")
    client = AsyncRealtimeClient(f"{standin.url}/realtime/v1", key, auto_reconnect=False)
    heard = asyncio.Event()
    ready = {"broadcast": asyncio.Event(), "postgres_changes": asyncio.Event()}
    try:
        private = client.channel(
            "bridge:outbox",
            {"config": {"private": True, "broadcast": {"replication_ready": True}}},  # type: ignore[typeddict-item]
        )
        private.on_broadcast("ring", lambda _p: heard.set())
        private.on_system(lambda _p: ready["broadcast"].set())
        await private.subscribe()
        await conn.execute("alter publication supabase_realtime add table bridge.outbox")
        changes = client.channel("outbox-changes")
        changes.on_postgres_changes(
            RealtimePostgresChangesListenEvent.Insert,
            schema="bridge",
            table="outbox",
            callback=lambda _p: heard.set(),
        )
        changes.on_system(lambda _p: ready["postgres_changes"].set())
        await changes.subscribe()
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready.values())), 10)
        ring = {
            "broadcast": "select realtime.send('{}'::jsonb, 'ring', 'bridge:outbox', true)",
            "postgres_changes": "insert into bridge.outbox (topic, recipients, payload)"
            " values ('profile.updated', '{}', '{}')",
        }
        for way, sql in ring.items():
            latencies: list[float] = []
            for _ in range(args.ring_latency):
                await asyncio.sleep(random.uniform(0.15, 0.45))
                heard.clear()
                await conn.execute(sql)
                committed = time.perf_counter()
                try:
                    await asyncio.wait_for(heard.wait(), 5)
                except TimeoutError:
                    continue
                latencies.append((time.perf_counter() - committed) * 1000)
            lat = sorted(latencies)
            print(
                f"{way}: {len(lat)}/{args.ring_latency} rings; "
                + latency_line("commit -> ring", lat)
            )
    finally:
        await client.close()
        await conn.close()
        await standin.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--fanout", choices=("direct", "stock"), default="direct")
    parser.add_argument("--instances", type=int, choices=(1, 2), default=1)
    parser.add_argument(
        "--daemon-from",
        type=lambda p: Path(p).resolve(),
        help="a checkout whose daemon and schema to run (an older commit, to compare designs)",
    )
    parser.add_argument("--doorbell", choices=("listen", "realtime"), default="listen")
    parser.add_argument("--ring-latency", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(tmp, free_port(), extra_settings={"max_connections": "400"})
        pg.start()
        try:
            asyncio.run(ring_latency(args, pg) if args.ring_latency else run(args, pg, Path(tmp)))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
