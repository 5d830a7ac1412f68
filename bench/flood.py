"""One user flooding: does anyone else notice?

The daemon (`bridge run`, its own process, config.toml's defaults) on an
embedded Postgres. --victims other users each send one acked
`send_message` every --interval seconds (under the limit) and record each
ack's latency; first alone (baseline),
then while a flooder (a process of its own, --flood-sockets sockets of one
user) emits `send_message` as fast as it can without waiting. Printed: the
victim's ack p50 / p90 / p99 / max in both phases, and what the flooder got
(accepted, `rate_limited`). `--no-limits` runs the flood with every limit
off, for comparison.

Usage: python bench/flood.py [--seconds 10] [--flood-sockets 4] [--no-limits]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import socketio

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import latency_line, populate_pairs  # noqa: E402
from bridge.auth import mint_token  # noqa: E402
from bridge.embedded import EmbeddedPostgres, free_port  # noqa: E402
from tests.support.harness import SECRET, start_daemon  # noqa: E402

NO_LIMITS = {
    f"BRIDGE_LIMITS_{kind.upper()}_RATE": "0"
    for kind in ("send", "typing", "read", "join", "other")
}


async def connect(url: str, user: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, auth={"token": mint_token(SECRET, user, 7200)}, transports=["websocket"])
    return sio


async def victim(
    url: str, user: str, conversation: str, seconds: float, interval: float
) -> list[float]:
    """Acked sends at a steady pace; the ack latency of each, in ms."""
    sio = await connect(url, user)
    latencies: list[float] = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            started = time.perf_counter()
            ack = await sio.call(
                "send_message",
                {
                    "conversationId": conversation,
                    "message": "victim",
                    "clientMessageId": str(uuid.uuid4()),
                },
                timeout=30,
            )
            if ack.get("ok"):
                latencies.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(interval)
    finally:
        await sio.disconnect()
    return latencies


async def everyone(
    url: str, victims: list[tuple[str, str, str]], args: argparse.Namespace
) -> list[float]:
    """Every victim at once, each under the send limit; their latencies together."""
    runs = await asyncio.gather(
        *(victim(url, user, conv, args.seconds, args.interval) for conv, user, _ in victims)
    )
    return [ms for run in runs for ms in run]


async def flooder(url: str, user: str, conversation: str, seconds: float, sockets: int) -> None:
    """Child process: sends as fast as it can on every socket; prints counts."""
    counts = {"sent": 0, "ok": 0, "rate_limited": 0, "other": 0, "cut_off": 0}

    def answered(ack: Any) -> None:
        if isinstance(ack, dict) and ack.get("ok"):
            counts["ok"] += 1
        elif isinstance(ack, dict) and ack.get("error", {}).get("code") == "rate_limited":
            counts["rate_limited"] += 1
        else:
            counts["other"] += 1

    async def flood(sio: socketio.AsyncClient) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                await sio.emit(
                    "send_message",
                    {
                        "conversationId": conversation,
                        "message": "flood",
                        "clientMessageId": str(uuid.uuid4()),
                    },
                    callback=answered,
                )
            except socketio.exceptions.SocketIOError:  # the server cut this socket off
                counts["cut_off"] += 1
                return
            counts["sent"] += 1
            if counts["sent"] % 50 == 0:
                await asyncio.sleep(0)

    clients = [await connect(url, user) for _ in range(sockets)]
    await asyncio.gather(*(flood(c) for c in clients))
    await asyncio.sleep(2)  # late acks
    for client in clients:
        if client.connected:
            await client.disconnect()
    print(json.dumps(counts), flush=True)


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(Path(tmp) / "pg", free_port(), durable=False)
        await asyncio.to_thread(pg.start)
        daemon = None
        try:
            pairs = await populate_pairs(pg.dsn, 1 + args.victims, "Flood")
            (flood_conv, flood_user, _), victims = pairs[0], pairs[1:]
            port = free_port()
            env = NO_LIMITS if args.no_limits else {}
            daemon = await start_daemon(pg.dsn, port, SECRET, env)
            url = f"http://127.0.0.1:{port}"
            baseline = await everyone(url, victims, args)
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--flooder",
                url,
                flood_user,
                flood_conv,
                str(args.seconds + 1),
                str(args.flood_sockets),
                stdout=asyncio.subprocess.PIPE,
            )
            await asyncio.sleep(1)  # the flood is under way
            during = await everyone(url, victims, args)
            out, _ = await child.communicate()
            counts = json.loads(out.decode().strip().splitlines()[-1])
            await asyncio.sleep(2)  # sends still queued on the server's side
            conn = await asyncpg.connect(pg.dsn)
            try:
                stored = await conn.fetchval(
                    "select count(*) from public.messages where content = 'flood'"
                )
            finally:
                await conn.close()
            print(f"limits: {'off' if args.no_limits else 'defaults (send 5/s, burst 20)'}")
            print(latency_line("others' acks, alone", baseline))
            print(latency_line("others' acks, during the flood", during))
            print(
                f"flooder ({args.flood_sockets} sockets, {args.seconds + 1:.0f} s):"
                f" sent {counts['sent']}, acked ok {counts['ok']}, stored {stored},"
                f" rate_limited {counts['rate_limited']}, other {counts['other']},"
                f" sockets cut off {counts['cut_off']} (acks not counted were still queued)"
            )
        finally:
            if daemon is not None:
                daemon.terminate()
                await daemon.wait()
            await asyncio.to_thread(pg.stop)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--flooder":
        url, user, conversation, seconds, sockets = sys.argv[2:7]
        asyncio.run(flooder(url, user, conversation, float(seconds), int(sockets)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    # 4 sends a second each: under the default limit of 5.
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument("--victims", type=int, default=4)
    parser.add_argument("--flood-sockets", type=int, default=4)
    parser.add_argument("--no-limits", action="store_true")
    asyncio.run(main(parser.parse_args()))
