"""Push throughput to a local FCM v1 endpoint, what a slow FCM does to
socket delivery, and how many pushes a burst becomes.

The real daemon (in this process) with the real firebase-admin SDK sends to
the FCM stand-in of the tests (its own thread). Phase 1: N messages into N
conversations (no merging) -> N pushes; pushes/s from the first commit to
the last push received, once per FCM latency in --latencies. Phase 2:
sockets connected for the receivers, messages at a steady rate, commit ->
`new_message` latency measured once with FCM answering at once and once
with FCM taking a second per push.

--burst instead: each of --burst-devices people gets --burst-messages
messages spread over --burst-seconds, at FCM latencies of 0, 1 and 2 s
(the default cooldown): pushes per device, and whether the merged counts
add up.

Usage: python bench/push_throughput.py [--pushes 2000] [--concurrency 8]
                                       [--latencies 0,0.1] [--burst]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import socketio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import latency_line  # noqa: E402
from bridge.app import BridgeApp  # noqa: E402
from bridge.auth import mint_token  # noqa: E402
from bridge.config import FcmSettings, OutboxSettings, PushSettings  # noqa: E402
from bridge.embedded import EmbeddedPostgres, free_port  # noqa: E402
from bridge.migrate import prepare_database  # noqa: E402
from tests.support.fcm_standin import FcmStandIn  # noqa: E402
from tests.support.harness import SECRET, settings_for  # noqa: E402

AVA = "11111111-1111-4111-8111-111111111111"


async def populate(dsn: str, n: int) -> list[tuple[str, str]]:
    """n influencers, each with a device token and a conversation with Ava."""
    await prepare_database(dsn, REPO / "supabase", bootstrap=True, seed=True)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "insert into auth.users (id, email, raw_user_meta_data)"
            " select gen_random_uuid(), 'push-' || i || '@example.com',"
            " jsonb_build_object('name', 'Push ' || i, 'role', 'influencer')"
            " from generate_series(1, $1) i",
            n,
        )
        await conn.execute(
            "insert into public.fcm_tokens (user_id, token, platform)"
            " select id, 'device-' || id, 'android' from public.users where name like 'Push %'"
        )
        rows = await conn.fetch(
            "insert into public.conversations (brand_owner_id, influencer_id, chat_status)"
            " select $1, id, 'active' from public.users where name like 'Push %'"
            " returning id::text, influencer_id::text",
            AVA,
        )
        return [(r[0], r[1]) for r in rows]
    finally:
        await conn.close()


async def insert(conn: asyncpg.Connection, conversation: str, text: str) -> None:
    await conn.execute(
        "insert into public.messages (conversation_id, sender_id, content) values ($1, $2, $3)",
        conversation,
        AVA,
        text,
    )


async def throughput(dsn: str, fcm: FcmStandIn, pairs: list[tuple[str, str]]) -> None:
    writers = 8
    before = len(fcm.sent)
    conns = [await asyncpg.connect(dsn) for _ in range(writers)]

    async def write(k: int) -> None:
        for i in range(k, len(pairs), writers):
            await insert(conns[k], pairs[i][0], f"push {i}")

    try:
        start = time.perf_counter()
        await asyncio.gather(*(write(k) for k in range(writers)))
        committed = time.perf_counter() - start
        for _ in range(60_000):  # the stand-in counts in its own thread: poll it
            if len(fcm.sent) - before >= len(pairs):
                break
            await asyncio.sleep(0.01)
        took = time.perf_counter() - start
    finally:
        for conn in conns:
            await conn.close()
    print(
        f"FCM latency {fcm.delay * 1000:.0f} ms: {len(pairs)} pushes in {took:.2f} s"
        f" = {len(pairs) / took:.0f} pushes/s"
        f" (commits took {committed:.2f} s; OAuth grants {fcm.oauth_grants})"
    )


async def settled(dsn: str) -> None:
    """Waits until every change is relayed and no push job is pending or
    being sent."""
    conn = await asyncpg.connect(dsn)
    try:
        for _ in range(3000):
            busy = await conn.fetchval(
                "select (select count(*) from bridge.outbox where processed_at is null)"
                " + (select count(*) from bridge.push_jobs where status in ('pending', 'sending'))"
            )
            if not busy:
                break
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def burst(dsn: str, fcm: FcmStandIn, pairs: list[tuple[str, str]], args: Any) -> None:
    """Per FCM latency: every device's share of a burst, and its pushes."""
    conns = [await asyncpg.connect(dsn) for _ in range(args.burst_devices)]
    gap = args.burst_seconds / max(1, args.burst_messages - 1)
    try:
        for case, delay in enumerate((0.0, 1.0, 2.0)):
            fcm.delay = delay
            before = len(fcm.sent)
            # Other people per case: no cooldown left over from the last one.
            first = case * args.burst_devices
            group = [c for c, _ in pairs[first : first + args.burst_devices]]
            start = time.perf_counter()
            for n in range(args.burst_messages):
                await asyncio.gather(
                    *(
                        insert(conns[k], conversation, f"burst {n}")
                        for k, conversation in enumerate(group)
                    )
                )
                await asyncio.sleep(max(0.0, start + (n + 1) * gap - time.perf_counter()))
            lasted = time.perf_counter() - start - gap
            bound = 1 + math.ceil(lasted / (args.cooldown + delay))
            await settled(dsn)
            pushes: dict[str, list[int]] = {}
            for message in fcm.sent[before:]:
                pushes.setdefault(message["token"], []).append(int(message["data"]["merged"]))
            per_device = sorted(len(v) for v in pushes.values())
            complete = all(sum(v) == args.burst_messages for v in pushes.values())
            print(
                f"FCM latency {delay:.0f} s: {args.burst_messages} messages in"
                f" {lasted:.1f} s to {len(pushes)} devices (bound {bound}) -> pushes per device"
                f" min {per_device[0]} max {per_device[-1]}"
                f" mean {statistics.mean(per_device):.1f};"
                f" merged counts add up: {complete}"
            )
    finally:
        for conn in conns:
            await conn.close()


async def latency(
    dsn: str, url: str, pairs: list[tuple[str, str]], rate: float, count: int
) -> list[float]:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    clients = []
    for _, user in pairs[:50]:
        client = socketio.AsyncClient(reconnection=False)

        async def on_new(data: dict[str, object], user: str = user) -> None:
            message = data["message"]
            assert isinstance(message, dict)
            at = sent.get(str(message["content"]))
            if at is not None:
                latencies.append(time.perf_counter() - at)

        client.on("new_message", on_new)
        await client.connect(
            url, auth={"token": mint_token(SECRET, user)}, transports=["websocket"]
        )
        clients.append(client)
    conn = await asyncpg.connect(dsn)
    try:
        for i in range(count):
            conversation, _ = pairs[i % 50]
            text = f"latency {time.perf_counter()}"
            await insert(conn, conversation, text)
            sent[text] = time.perf_counter()
            await asyncio.sleep(1 / rate)
        for _ in range(100):
            if len(latencies) >= count:
                break
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
        for client in clients:
            await client.disconnect()
    return [x * 1000 for x in latencies]


async def run(args: argparse.Namespace, pg: EmbeddedPostgres, tmp: Path) -> None:
    pairs = await populate(pg.dsn, max(args.pushes, 3 * args.burst_devices))
    fcm = FcmStandIn()
    fcm.start()
    account = fcm.service_account(tmp / "service-account.json")
    settings = dataclasses.replace(
        settings_for(pg.dsn),
        fcm=FcmSettings(project_id=fcm.project_id, credentials=str(account), endpoint=fcm.base_url),
        push=PushSettings(
            cooldown=args.cooldown if args.burst else 0.0,
            concurrency=args.concurrency,
            poll_interval=0.2,
        ),
        outbox=OutboxSettings(poll_interval=1.0),
    )
    app = BridgeApp(settings)
    await app.start()
    url = f"http://127.0.0.1:{app.port}"
    try:
        if args.burst:
            await burst(pg.dsn, fcm, pairs, args)
            return
        for latency_ in args.latencies.split(","):
            fcm.delay = float(latency_)
            await throughput(pg.dsn, fcm, pairs[: args.pushes])
        fcm.delay = 0.0
        fast = await latency(pg.dsn, url, pairs, args.rate, args.count)
        fcm.delay = 1.0
        slow = await latency(pg.dsn, url, pairs, args.rate, args.count)
        print(latency_line("socket latency, FCM answering at once", fast))
        print(latency_line("socket latency, FCM taking 1 s per push", slow))
        print(f"counters: {app.metrics.snapshot()}")
    finally:
        await app.stop()
        fcm.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--latencies", default="0,0.1", help="FCM latencies (s), comma-separated")
    parser.add_argument("--burst", action="store_true")
    parser.add_argument("--burst-devices", type=int, default=20)
    parser.add_argument("--burst-messages", type=int, default=12)
    parser.add_argument("--burst-seconds", type=float, default=3.0)
    parser.add_argument("--cooldown", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(tmp, free_port())
        pg.start()
        try:
            asyncio.run(run(args, pg, Path(tmp)))
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
