"""Where the CPU goes during bench/send_path.py's phases (`--pg-stats N`,
`--py-spy DIR`).

Postgres: pg_stat_statements (every statement, nested ones too: a
function's statements count inside it as well as on their own lines) and
track_functions, reset before each phase and read after it, per database,
so the bridge and the Node server are each measured on their own load; and
the CPU time of each Postgres process over the phase, by what it is (a
client connection by its last statement, or the checkpointer, the WAL
writer, autovacuum ...). pg_stat_statements must be preloaded at start-up:
the pgserver wheel does not ship it, so `--pg-stats` starts Debian's
PostgreSQL (`--pg-bin`, default the newest /usr/lib/postgresql/*/bin that
has it).

Daemon: py-spy (pip install py-spy) records the bridge process over each
phase into DIR/bridge-<rate>.txt (collapsed stacks, for flamegraph.pl or
speedscope) and prints the functions with the most samples (own and
inclusive).
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

CLK_TCK = os.sysconf("SC_CLK_TCK")
PG_SETTINGS = {
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.max": "2000",
    "track_functions": "all",
}


def stats_bin_dir(given: str | None) -> Path:
    """Binaries of a PostgreSQL that has pg_stat_statements."""
    if given:
        return Path(given)
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(found).parent.joinpath("lib", "pg_stat_statements.so").exists():
            return Path(found)
    sys.exit("--pg-stats: no PostgreSQL with pg_stat_statements (apt-get install postgresql)")


def _children_cpu(postmaster: int) -> dict[int, float]:
    """CPU seconds of each live child of the postmaster."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = (entry / "stat").read_text()
            fields = text[text.rindex(")") + 2 :].split()
            if int(fields[1]) == postmaster:
                found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return found


@dataclass
class PhaseProfile:
    label: str
    sent: int = 0
    statements: list[asyncpg.Record] = field(default_factory=list)
    functions: list[asyncpg.Record] = field(default_factory=list)
    processes: list[tuple[str, float]] = field(default_factory=list)
    spy: list[str] = field(default_factory=list)


class Profiler:
    def __init__(self, args: Any, dsn: str, database: str, postmaster: int) -> None:
        self.top: int = args.pg_stats or 0
        self.spy_dir: Path | None = Path(args.py_spy) if args.py_spy else None
        self.dsn = dsn
        self.database = database
        self.postmaster = postmaster
        self._cpu_before: dict[int, float] = {}
        self._spy: asyncio.subprocess.Process | None = None
        self._spy_out: Path | None = None
        self.phases: list[PhaseProfile] = []

    async def start(self, label: str, server_pid: int, python: bool, seconds: float) -> None:
        if self.top:
            conn = await asyncpg.connect(self.dsn)
            try:
                await conn.execute("create extension if not exists pg_stat_statements")
                await conn.execute("select pg_stat_statements_reset(), pg_stat_reset()")
            finally:
                await conn.close()
            self._cpu_before = _children_cpu(self.postmaster)
        if self.spy_dir is not None and python:
            spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            self.spy_dir.mkdir(parents=True, exist_ok=True)
            self._spy_out = self.spy_dir / f"{label}.txt"
            self._spy = await asyncio.create_subprocess_exec(
                spy,
                "record",
                "--format",
                "raw",
                "--rate",
                "200",
                "--duration",
                str(int(seconds)),
                "--nonblocking",
                "-o",
                str(self._spy_out),
                "-p",
                str(server_pid),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )

    async def finish(self, label: str, sent: int) -> None:
        profile = PhaseProfile(label)
        if self.top:
            after = _children_cpu(self.postmaster)
            conn = await asyncpg.connect(self.dsn)
            try:
                profile.statements = await conn.fetch(
                    "select toplevel, calls, total_exec_time, rows,"
                    " regexp_replace(query, '\\s+', ' ', 'g') as query"
                    " from pg_stat_statements s join pg_database d on d.oid = s.dbid"
                    " where d.datname = $1 order by total_exec_time desc limit $2",
                    self.database,
                    self.top,
                )
                profile.functions = await conn.fetch(
                    "select schemaname || '.' || funcname as name, calls, self_time, total_time"
                    " from pg_stat_user_functions order by self_time desc limit $1",
                    self.top,
                )
                kinds = {
                    r["pid"]: r["kind"]
                    for r in await conn.fetch(
                        "select pid, case when backend_type = 'client backend'"
                        " then coalesce(datname, '') || ': ' || left(regexp_replace(query,"
                        " '\\s+', ' ', 'g'), 60) else backend_type end as kind"
                        " from pg_stat_activity"
                    )
                }
            finally:
                await conn.close()
            by_kind: dict[str, float] = {}
            for pid, cpu in after.items():
                spent = cpu - self._cpu_before.get(pid, 0.0)
                if spent > 0:
                    kind = kinds.get(pid, "(gone)")
                    by_kind[kind] = by_kind.get(kind, 0.0) + spent
            profile.processes = sorted(by_kind.items(), key=lambda kv: -kv[1])[: self.top]
        if self._spy is not None:
            await self._spy.wait()
            self._spy = None
            if self._spy_out is not None and self._spy_out.exists():
                profile.spy = spy_summary(self._spy_out, self.top or 25)
        profile.sent = sent
        self.phases.append(profile)

    def report(self) -> str:
        lines: list[str] = []
        if not self.top and self.spy_dir is None:
            return ""
        for p in self.phases:
            sent = max(1, p.sent)
            lines.append(f"\n== {p.label} ({p.sent:,} messages)")
            if p.processes:
                lines.append("Postgres CPU by process (ms per message):")
                lines += [f"  {s * 1000 / sent:7.3f}  {k}" for k, s in p.processes]
            if p.statements:
                lines.append("statements (exec ms per message, calls per message, top level?):")
                for r in p.statements:
                    lines.append(
                        f"  {r['total_exec_time'] / sent:7.3f}  {r['calls'] / sent:6.2f}"
                        f"  {'T' if r['toplevel'] else ' '}  {r['query'][:150]}"
                    )
            if p.functions:
                lines.append("functions (self / total ms per message, calls per message):")
                for r in p.functions:
                    lines.append(
                        f"  {r['self_time'] / sent:7.3f} / {r['total_time'] / sent:7.3f}"
                        f"  {r['calls'] / sent:6.2f}  {r['name']}"
                    )
            if p.spy:
                lines.append("py-spy (share of samples: own, inclusive):")
                lines += [f"  {s}" for s in p.spy]
        return "\n".join(lines)


def spy_summary(path: Path, top: int) -> list[str]:
    """Functions by own and by inclusive samples, from py-spy's raw
    (collapsed) output: `frame;frame;... count` per line."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return ["no samples"]
    out = [f"{total} samples"]
    for frame, n in own.most_common(top):
        out.append(f"{n * 100 / total:5.1f} % {inclusive[frame] * 100 / total:5.1f} %  {frame}")
    out.append("inclusive:")
    for frame, n in inclusive.most_common(top):
        out.append(f"{own[frame] * 100 / total:5.1f} % {n * 100 / total:5.1f} %  {frame}")
    return out


def _short(frame: str) -> str:
    """`func (path/to/module.py:12)` -> `func (module.py)`."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if parts else file
    return f"{name} ({short})"
