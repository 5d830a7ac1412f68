"""What the benches share: load users and conversations, latency figures
printed one way, and CPU time read from /proc."""

from __future__ import annotations

import contextlib
import os
import statistics
from pathlib import Path

import asyncpg

from bridge.migrate import prepare_database

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


async def populate_pairs(
    dsn: str, pairs: int, label: str, checkout: Path = REPO
) -> list[tuple[str, str, str]]:
    """The schema (of `checkout`), the demo seed, and `pairs` brand owner /
    influencer pairs named `<label> n`, each with a direct conversation;
    returns (conversation, brand owner, influencer)."""
    await prepare_database(dsn, checkout / "supabase", bootstrap=True, seed=True)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "insert into auth.users (id, email, raw_user_meta_data)"
            " select gen_random_uuid(), lower($2) || '-' || n || '@example.com',"
            " jsonb_build_object('name', $2 || ' ' || n, 'role',"
            "   case when n % 2 = 0 then 'brand_owner' else 'influencer' end)"
            " from generate_series(1, $1) n",
            pairs * 2,
            label,
        )
        rows = await conn.fetch(
            """
            with b as (select id, row_number() over (order by id) r from public.users
                       where name like $1 || ' %' and role = 'brand_owner'),
                 i as (select id, row_number() over (order by id) r from public.users
                       where name like $1 || ' %' and role = 'influencer')
            insert into public.conversations (brand_owner_id, influencer_id, chat_status)
            select b.id, i.id, 'active' from b join i using (r)
            returning id::text, brand_owner_id::text, influencer_id::text
            """,
            label,
        )
        return [(r[0], r[1], r[2]) for r in rows]
    finally:
        await conn.close()


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by rank, as the benches report it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def latency_line(name: str, values_ms: list[float]) -> str:
    """`name: n=… p50 … p90 … p99 … max … ms`."""
    if not values_ms:
        return f"{name}: no samples"
    return (
        f"{name}: n={len(values_ms)} p50 {statistics.median(values_ms):.1f}"
        f"  p90 {percentile(values_ms, 0.9):.1f}  p99 {percentile(values_ms, 0.99):.1f}"
        f"  max {max(values_ms):.1f} ms"
    )


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu(postmaster: int) -> float:
    """CPU seconds of the postmaster, its live children, and (through the
    postmaster's cutime/cstime) the children it has already reaped."""
    fields = _stat_fields(postmaster)
    total = sum(int(fields[i]) for i in (11, 12, 13, 14))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            child = _stat_fields(int(entry.name))
            if int(child[1]) == postmaster:
                total += int(child[11]) + int(child[12])
    return total / CLK_TCK
