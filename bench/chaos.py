"""Lossless delivery under failure, measured.

Runs the real daemon as a subprocess on an embedded Postgres, with the FCM
stand-in of the tests for pushes, connects one python-socketio client per
user (reconnecting, and asking `sync` for what it missed after every
reconnect, deduplicating by event_id), then writes messages into many
conversations at a steady rate while:

  --kill      SIGKILLs the daemon mid-run and starts a new one;
  --realtime  rings the relay through the Realtime stand-in, and drops its
              connections every two seconds (no LISTEN, slow poll only).

With --instances 2 two daemons share the database and a real Redis (each
user's socket on one of them, as a load balancer would place it) and
--fault picks what happens mid-run:

  kill-holder    SIGKILL of the instance holding the relay lease, back 1 s later
  kill-other     SIGKILL of the other instance, back 1 s later
  redis-restart  Redis SIGKILLed and started again (empty) 2 s later
  db-outage      Postgres stopped for --outage seconds (writers retry)

and the report prints sent / delivered / duplicated for that fault.

At the end every recipient must hold every message of its conversations.
Pushes are at least once to FCM: a job whose sender was killed mid-send is
taken over after its lease and may reach FCM twice; the report counts those
duplicates, and the ones a device would show stacked (copies that do not
share the Android tag / apns-collapse-id / web push Topic: there should be
none). --fcm-delay slows FCM so that pushes are in flight at the kill.

Usage: python bench/chaos.py [--messages 10000] [--rate 500] [--kill] [--realtime]
                             [--fcm-delay 1.0]
       python bench/chaos.py --instances 2 --fault kill-holder|kill-other|redis-restart|db-outage
                             [--outage 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import populate_pairs  # noqa: E402
from bridge.auth import mint_token  # noqa: E402
from bridge.embedded import EmbeddedPostgres, free_port  # noqa: E402
from tests.support.database import lease_holders  # noqa: E402
from tests.support.fcm_standin import FcmStandIn  # noqa: E402
from tests.support.harness import ReconnectingClient, start_daemon  # noqa: E402
from tests.support.realtime_standin import RealtimeStandIn  # noqa: E402
from tests.support.services import connected, start_redis  # noqa: E402
from tests.support.waits import eventually  # noqa: E402

SECRET = "chaos-secret-that-is-at-least-32-characters-long"


def collapse_keys(message: dict[str, Any]) -> tuple[str, str, str]:
    """What makes a device replace a notification instead of adding one."""
    return (
        message["android"]["notification"]["tag"],
        message["apns"]["headers"]["apns-collapse-id"],
        message["webpush"]["headers"]["Topic"],
    )


async def run(args: argparse.Namespace, pg: EmbeddedPostgres, tmp: Path) -> None:
    conversations = await populate_pairs(pg.dsn, args.pairs, "Chaos")
    fcm = FcmStandIn()
    fcm.delay = args.fcm_delay
    fcm.start()
    account = fcm.service_account(tmp / "service-account.json")
    port = free_port()
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": str(account),
        "FCM_PROJECT_ID": fcm.project_id,
        "FCM_ENDPOINT": fcm.base_url,
        "BRIDGE_PUSH_COOLDOWN": "0",
        "BRIDGE_PRESENCE_OFFLINE_GRACE": "1",
    }
    realtime: RealtimeStandIn | None = None
    if args.realtime:
        realtime = RealtimeStandIn(pg.dsn, SECRET)
        await realtime.start()
        env |= {
            "BRIDGE_OUTBOX_DOORBELL": "realtime",
            "SUPABASE_URL": realtime.url,
            "BRIDGE_OUTBOX_POLL_INTERVAL": "60",
            "SUPABASE_SERVICE_ROLE_KEY": mint_token(
                SECRET, "00000000-0000-4000-8000-000000000000", 86400, role="service_role"
            ),
        }
    redis = None
    redis_port = free_port()
    ports = [port]
    if args.instances > 1:
        redis = start_redis(redis_port, tmp)
        env |= {
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "BRIDGE_PRESENCE_INSTANCE_TTL": "2",
        }
        ports.append(free_port())
    daemons = {port: await start_daemon(pg.dsn, port, SECRET, env)}
    if args.instances > 1:
        await wait_for_lease(pg.dsn)  # so the first instance is the lease holder
        daemons[ports[1]] = await start_daemon(pg.dsn, ports[1], SECRET, env)
    recipients: list[ReconnectingClient] = []
    try:
        for k, (_, brand_owner, influencer) in enumerate(conversations):
            for j, user in enumerate((brand_owner, influencer)):
                at = ports[(k + j) % len(ports)]
                recipient = ReconnectingClient(f"http://127.0.0.1:{at}", user, SECRET)
                await recipient.start()
                recipients.append(recipient)
        by_user = {r.user: r for r in recipients}
        expected: dict[str, set[str]] = {r.user: set() for r in recipients}
        writers = 8
        conns = [await asyncpg.connect(pg.dsn) for _ in range(writers)]
        per_writer = args.messages // writers
        interval = writers / args.rate
        chaos_log: list[str] = []

        async def write(k: int) -> None:
            start = time.perf_counter()
            for n in range(per_writer):
                conv, bo, inf = conversations[(k * per_writer + n) % len(conversations)]
                sender = bo if n % 2 else inf
                text = f"m-{k}-{n}"
                while True:  # through a database outage, as an app would
                    try:
                        await conns[k].execute(
                            "insert into public.messages (conversation_id, sender_id, content)"
                            " values ($1, $2, $3)",
                            conv,
                            sender,
                            text,
                        )
                        break
                    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        await asyncio.sleep(0.2)
                        with contextlib.suppress(OSError, asyncpg.PostgresError):
                            conns[k] = await asyncpg.connect(pg.dsn)
                expected[bo].add(text)
                expected[inf].add(text)
                delay = start + (n + 1) * interval - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)

        async def kill(victim: int, name: str) -> None:
            daemons[victim].send_signal(signal.SIGKILL)
            await daemons[victim].wait()
            chaos_log.append(f"{name} killed (-9) at {time.perf_counter() - t0:.1f} s")
            await asyncio.sleep(1.0)
            daemons[victim] = await start_daemon(pg.dsn, victim, SECRET, env)
            chaos_log.append(f"{name} back at {time.perf_counter() - t0:.1f} s")

        async def chaos() -> None:
            nonlocal redis
            if args.kill or args.fault:
                await asyncio.sleep(args.messages / args.rate / 2)
            if args.kill or args.fault == "kill-holder":
                await kill(ports[0], "the lease holder" if redis else "the daemon")
            if args.fault == "kill-other":
                await kill(ports[1], "the other instance")
            if args.fault == "redis-restart" and redis is not None:
                redis.kill()
                redis.wait(10)
                chaos_log.append(f"redis killed (-9) at {time.perf_counter() - t0:.1f} s")
                await asyncio.sleep(2.0)
                redis = start_redis(redis_port, tmp)
                chaos_log.append(f"redis back (empty) at {time.perf_counter() - t0:.1f} s")
            if args.fault == "db-outage":
                await asyncio.to_thread(pg.stop)
                chaos_log.append(f"postgres stopped at {time.perf_counter() - t0:.1f} s")
                await asyncio.sleep(args.outage)
                await asyncio.to_thread(pg.start)
                chaos_log.append(f"postgres back at {time.perf_counter() - t0:.1f} s")
            if realtime is not None:
                drops = 0
                while time.perf_counter() - t0 < args.messages / args.rate:
                    await asyncio.sleep(2.0)
                    await realtime.drop_connections()
                    drops += 1
                chaos_log.append(
                    f"realtime connections dropped {drops} times;"
                    f" changes realtime never sent: {realtime.lost}"
                )

        t0 = time.perf_counter()
        await asyncio.gather(*(write(k) for k in range(writers)), chaos())
        sent = sum(len(v) for v in expected.values()) // 2
        deadline = time.perf_counter() + 60
        while time.perf_counter() < deadline:
            if all(expected[u] <= set(by_user[u].messages) for u in expected):
                break
            await asyncio.sleep(0.2)
        for conn in conns:
            await conn.close()
        recovered = time.perf_counter() - t0
        missing = sum(len(expected[u] - set(by_user[u].messages)) for u in expected)
        delivered = sum(len(set(by_user[u].messages) & expected[u]) for u in expected)
        jobs = await asyncpg.connect(pg.dsn)
        try:
            for _ in range(600):  # a killed sender's jobs are taken over after their lease
                busy = await jobs.fetchval(
                    "select count(*) from bridge.push_jobs where status in ('pending', 'sending')"
                )
                if not busy:
                    break
                await asyncio.sleep(0.2)
            pushes_settled = time.perf_counter() - t0
            job_states = dict(
                await jobs.fetch("select status, count(*) from bridge.push_jobs group by status")
            )
            taken_over = await jobs.fetchval(
                "select count(*) from bridge.push_jobs where attempts > 1"
            )
        finally:
            await jobs.close()
        copies: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        for m in list(fcm.sent):
            copies.setdefault((m["token"], m["data"].get("message_id")), []).append(m)
        doubled = sum(len(c) - 1 for c in copies.values())
        stacked = sum(len({collapse_keys(m) for m in c}) - 1 for c in copies.values())
        for line in chaos_log:
            print(line)
        if missing and os.environ.get("CHAOS_DEBUG"):
            sample = sorted({t for u in expected for t in expected[u] - set(by_user[u].messages)})[
                :10
            ]
            dbg = await asyncpg.connect(pg.dsn)
            try:
                rows = await dbg.fetch(
                    "select id, bridge.is_relayed(xid) as relayed, payload->'message'->>'content' c"
                    " from bridge.outbox"
                    " where payload->'message'->>'content' = any($1::text[]) order by id",
                    sample,
                )
                for row in rows:
                    print("missing:", dict(row))
                lasts = sorted(r.last for r in recipients)
                print("last event ids seen (min/max):", lasts[0], lasts[-1])
            finally:
                await dbg.close()
        if args.fault:
            print(
                f"fault: {args.fault}; instances: {args.instances}; sent: {sent};"
                f" delivered: {delivered} of {2 * sent};"
                f" duplicated: {sum(r.duplicates for r in recipients)}"
            )
        print(
            f"messages committed: {sent}; deliveries expected: {2 * sent};"
            f" delivered: {delivered}; missing: {missing}"
        )
        print(
            f"duplicate deliveries dropped by event_id: {sum(r.duplicates for r in recipients)};"
            f" reconnects: {sum(r.connects - 1 for r in recipients)};"
            f" resyncs: {sum(r.resyncs for r in recipients)}"
        )
        print(f"all delivered after {recovered:.1f} s")
        print(
            f"pushes received by FCM: {len(fcm.sent)}; duplicates delivered to FCM: {doubled}"
            f" (jobs taken over after a lease: {taken_over}); duplicates a device would show"
            f" stacked: {stacked}; push jobs settled after {pushes_settled:.1f} s: {job_states}"
        )
    finally:
        for recipient in recipients:
            with contextlib.suppress(Exception):
                await recipient.sio.disconnect()
        for daemon in daemons.values():
            daemon.terminate()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(daemon.wait(), 20)
        if redis is not None:
            redis.terminate()
            redis.wait(10)
        if realtime is not None:
            await realtime.stop()
        fcm.stop()


async def wait_for_lease(dsn: str) -> None:
    """Returns once an instance holds the relay lease."""
    async with connected(dsn) as conn:
        await eventually(lambda: lease_holders(conn), what="an instance holds the relay lease")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--realtime", action="store_true")
    parser.add_argument("--fcm-delay", type=float, default=0.0, help="FCM latency (s)")
    parser.add_argument("--instances", type=int, choices=(1, 2), default=1)
    parser.add_argument(
        "--fault", choices=("kill-holder", "kill-other", "redis-restart", "db-outage")
    )
    parser.add_argument("--outage", type=float, default=10.0, help="db-outage length (s)")
    args = parser.parse_args()
    if args.fault in ("kill-other", "redis-restart") and args.instances < 2:
        parser.error(f"--fault {args.fault} needs --instances 2")
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(tmp, free_port(), extra_settings={"max_connections": "300"})
        pg.start()
        try:
            asyncio.run(run(args, pg, Path(tmp)))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
