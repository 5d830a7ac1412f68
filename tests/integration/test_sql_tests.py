"""The pgTAP files in supabase/tests, run the way `supabase test db` runs them
(pgTAP enabled in schema `extensions`, then pg_prove, here on each file of
the folder), with Debian's pgTAP and pg_prove, on a database built as the
rest of the suite builds it: the Supabase bootstrap, every migration and the
seed. Each file runs on both kinds of project (with and without Supabase's
default privileges)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import asyncpg
import pytest

from bridge.embedded import EmbeddedPostgres
from tests.conftest import SUPABASE_DIR, both_grant_modes

TESTS_DIR = SUPABASE_DIR / "tests"
TEST_FILES = sorted(p for p in TESTS_DIR.rglob("*") if p.suffix in (".sql", ".pg"))
# What the supabase CLI runs before pg_prove (supabase/cli, internal/db/test/test.go).
ENABLE_PGTAP = "create extension if not exists pgtap with schema extensions"
# Supabase's roles find extensions on their search path ("$user", public,
# extensions); the test files call pgTAP's functions unqualified.
PGOPTIONS = "-c search_path=public,extensions"


def test_the_suite_has_test_files() -> None:
    """supabase/tests holds pgTAP files, so an empty run cannot pass for green."""
    assert len(TEST_FILES) >= 4, TEST_FILES


@both_grant_modes
@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
async def test_pgtap_file_passes(
    pg_cluster: EmbeddedPostgres, db_dsn: str, test_file: Path
) -> None:
    """Every assertion of the file passes under pg_prove, and the file ran its
    whole plan inside one transaction that it rolled back."""
    pg_prove = shutil.which("pg_prove")
    assert pg_prove, (
        "pg_prove is missing (make test installs Debian's pgtap: scripts/ensure-services)"
    )
    conn = await asyncpg.connect(db_dsn)
    try:
        try:
            await conn.execute(ENABLE_PGTAP)
        except asyncpg.FeatureNotSupportedError as exc:
            pytest.fail(
                f"pgTAP is not installed for the test cluster ({exc}): run scripts/ensure-services"
            )
        before = await conn.fetchval("select count(*) from bridge.outbox")
    finally:
        await conn.close()

    database = db_dsn.rsplit("/", 1)[1]
    argv = [
        pg_prove,
        "--psql-bin",
        str(pg_cluster.bin_dir / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(pg_cluster.port),
        "-U",
        "postgres",
        "-d",
        database,
        "--ext",
        ".pg",
        "--ext",
        ".sql",
        "--verbose",
        str(test_file.relative_to(SUPABASE_DIR)),
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=SUPABASE_DIR,
        env={**os.environ, "PGOPTIONS": PGOPTIONS},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=120)
    output = out.decode(errors="replace")
    assert proc.returncode == 0 and "Result: PASS" in output, f"pg_prove failed:\n{output}"
    planned = re.search(r"^1\.\.(\d+)$", output, re.MULTILINE)
    assert planned and int(planned.group(1)) > 0, f"no plan in:\n{output}"

    conn = await asyncpg.connect(db_dsn)
    try:
        after = await conn.fetchval("select count(*) from bridge.outbox")
    finally:
        await conn.close()
    assert after == before, "the test file left changes behind (it must end in rollback)"
