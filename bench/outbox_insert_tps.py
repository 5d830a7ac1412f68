"""Insert throughput of public.messages with and without the outbox.

Runs pgbench (from the same Postgres build the embedded mode uses) against a
fresh embedded cluster with the migrations, 8 clients each inserting messages
into their own conversations, and reports transactions per second for:

  bare         no triggers at all on messages
  bookkeeping  last message / unread counters only (no outbox)
  outbox       bookkeeping + outbox, doorbell unarmed (a bridge is busy)
  armed        bookkeeping + outbox, doorbell armed (a bridge sleeps: NOTIFY per commit)
  row-notify   bookkeeping + a naive per-row NOTIFY trigger instead of the outbox

Usage: python bench/outbox_insert_tps.py [--seconds 10] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import tempfile
from pathlib import Path

import asyncpg

from bridge.embedded import EmbeddedPostgres, free_port
from bridge.migrate import prepare_database

REPO = Path(__file__).resolve().parent.parent
CONVERSATIONS = 64

SETUP = f"""
insert into auth.users (id, email, raw_user_meta_data)
select gen_random_uuid(), 'bench-' || n || '@example.com',
  jsonb_build_object('name', 'Bench ' || n, 'role', 'influencer')
from generate_series(1, {CONVERSATIONS}) n;
create table bench_conversations (n int primary key, id uuid not null, sender uuid not null);
alter table bench_conversations enable row level security;
with c as (
  insert into public.conversations (brand_owner_id, influencer_id, chat_status)
  select '11111111-1111-4111-8111-111111111111', u.id, 'active'
  from public.users u where u.name like 'Bench %'
  returning id, influencer_id
)
insert into bench_conversations (n, id, sender)
select row_number() over (order by id), id, influencer_id from c;
create function bench_row_notify() returns trigger language plpgsql as $$
begin
  perform pg_notify('bench_messages', new.id::text);
  return null;
end $$;
"""

SCRIPT = f"""\\set c random(1, {CONVERSATIONS})
insert into public.messages (conversation_id, sender_id, content)
select id, sender, 'benchmark message' from bench_conversations where n = :c;
"""

MODES = {
    "bare": ["alter table public.messages disable trigger user"],
    "bookkeeping": [
        "alter table public.messages enable trigger user",
        "alter table public.messages disable trigger messages_outbox_insert",
    ],
    "outbox": [
        "alter table public.messages enable trigger user",
        "update bridge.doorbell set armed = false",
    ],
    "armed": [
        "alter table public.messages enable trigger user",
        "update bridge.doorbell set armed = true",
    ],
    "row-notify": [
        "alter table public.messages enable trigger user",
        "alter table public.messages disable trigger messages_outbox_insert",
        "create trigger bench_row_notify after insert on public.messages"
        " for each row execute function bench_row_notify()",
    ],
}


async def prepare(dsn: str) -> None:
    await prepare_database(dsn, REPO / "supabase", bootstrap=True, seed=True)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SETUP)
    finally:
        await conn.close()


async def switch(dsn: str, statements: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("drop trigger if exists bench_row_notify on public.messages")
        for statement in statements:
            await conn.execute(statement)
        await conn.execute("checkpoint")
    finally:
        await conn.close()


def pgbench(pg: EmbeddedPostgres, script: Path, seconds: int, clients: int) -> float:
    out = subprocess.run(
        [
            str(pg.bin_dir / "pgbench"),
            "-n",
            "-f",
            str(script),
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "postgres",
            "postgres",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"tps = ([\d.]+)", out.stdout)
    if not match:
        raise RuntimeError(out.stdout + out.stderr)
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres(tmp, free_port(), durable=True)
        pg.start()
        try:
            asyncio.run(prepare(pg.dsn))
            script = Path(tmp) / "insert.sql"
            script.write_text(SCRIPT)
            script.chmod(0o644)
            Path(tmp).chmod(0o755)
            results = {}
            for mode, statements in MODES.items():
                asyncio.run(switch(pg.dsn, statements))
                results[mode] = pgbench(pg, script, args.seconds, args.clients)
            base = results["bare"]
            print(f"message insert tps, {args.clients} clients, {args.seconds} s each")
            for mode, tps in results.items():
                print(f"  {mode:<12} {tps:10.0f} tps  ({tps / base:6.1%} of bare)")
        finally:
            pg.stop()


if __name__ == "__main__":
    main()
