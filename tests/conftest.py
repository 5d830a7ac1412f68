"""Shared fixtures: one real Postgres cluster per test session (the bridge's
own embedded mode), a template database with the Supabase bootstrap, every
migration and the demo seed, and a fresh copy of it for each test that
needs one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bridge.embedded import EmbeddedPostgres, free_port
from bridge.migrate import apply_bootstrap, prepare_database
from tests.support.fcm_standin import FcmStandIn
from tests.support.postgrest_standin import SECRET as POSTGREST_SECRET
from tests.support.postgrest_standin import PostgrestStandIn
from tests.support.services import OwnRedis, connected, start_redis

REPO = Path(__file__).resolve().parent.parent
SUPABASE_DIR = REPO / "supabase"
TEMPLATE = "bridge_template"


_db_names = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    cluster = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), free_port(), durable=False)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


# The two kinds of Supabase project the migrations must work on: "default
# privileges for new entities" off, the hosted default since 2026-05-30 and
# what the embedded bootstrap lays down (`[api] auto_expose_new_tables =
# false`), and older projects with Supabase's default privileges on `public`
# (every new table and function granted to the API roles).
DEFAULT_GRANTS = "default_grants"
NO_DEFAULT_GRANTS = "no_default_grants"
GRANT_MODES = (DEFAULT_GRANTS, NO_DEFAULT_GRANTS)
# Supabase's initial schema (supabase/postgres, migrations/db/init-scripts/
# 00000000000000-initial-schema.sql, commit 7db7e1a9e34b9ffb9b0e3372ccf08eb4fa772f4b).
SUPABASE_DEFAULT_PRIVILEGES = """
alter default privileges in schema public
  grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public
  grant all on functions to anon, authenticated, service_role;
alter default privileges in schema public
  grant all on sequences to anon, authenticated, service_role;
"""
# Parametrize a test module or test over both kinds of project:
# `pytestmark = both_grant_modes` (the test must use `db`, `db_dsn`,
# `bridge` or `template_db`).
both_grant_modes = pytest.mark.parametrize("template_db", GRANT_MODES, indirect=True)


@pytest.fixture(scope="session")
async def template_db(pg_cluster: EmbeddedPostgres, request: pytest.FixtureRequest) -> str:
    """A template database with the Supabase bootstrap, every migration and
    the seed; by default with Supabase's default privileges (older
    projects), without them when parametrized with NO_DEFAULT_GRANTS."""
    mode = getattr(request, "param", DEFAULT_GRANTS)
    name = TEMPLATE if mode == DEFAULT_GRANTS else f"{TEMPLATE}_{mode}"
    admin = await asyncpg.connect(pg_cluster.dsn)
    try:
        # pytest rebuilds a session fixture when its parameter changes: keep
        # each template once built.
        if await admin.fetchval("select 1 from pg_database where datname = $1", name):
            return name
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()
    dsn = pg_cluster.dsn_for(name)
    conn = await asyncpg.connect(dsn)
    try:
        await apply_bootstrap(conn)
        if mode == DEFAULT_GRANTS:
            await conn.execute(SUPABASE_DEFAULT_PRIVILEGES)
    finally:
        await conn.close()
    # Not the bootstrap again: it would revoke the default privileges.
    await prepare_database(dsn, SUPABASE_DIR, bootstrap=False, seed=True)
    return name


@pytest.fixture
def grant_mode(template_db: str) -> str:
    """Which kind of project the test's database stands for (GRANT_MODES)."""
    return NO_DEFAULT_GRANTS if template_db.endswith(NO_DEFAULT_GRANTS) else DEFAULT_GRANTS


async def create_database(cluster: EmbeddedPostgres, template: str | None) -> str:
    name = f"test_{next(_db_names)}"
    admin = await asyncpg.connect(cluster.dsn)
    try:
        source = f" template {template}" if template else ""
        await admin.execute(f"create database {name}{source}")
    finally:
        await admin.close()
    return name


@contextlib.asynccontextmanager
async def fresh_database(pg_cluster: EmbeddedPostgres, template_db: str) -> AsyncIterator[str]:
    """The DSN of a new database copied from the template, dropped after."""
    name = await create_database(pg_cluster, template_db)
    try:
        yield pg_cluster.dsn_for(name)
    finally:
        admin = await asyncpg.connect(pg_cluster.dsn)
        try:
            await admin.execute(f"drop database {name} with (force)")
        finally:
            await admin.close()


@pytest.fixture
async def db_dsn(pg_cluster: EmbeddedPostgres, template_db: str) -> AsyncIterator[str]:
    """A fresh database with the schema and the demo data."""
    async with fresh_database(pg_cluster, template_db) as dsn:
        yield dsn


@pytest.fixture(scope="module")
async def module_db_dsn(pg_cluster: EmbeddedPostgres, template_db: str) -> AsyncIterator[str]:
    """A fresh database with the schema and the demo data shared by one test
    module (for a daemon the module's tests share; they must leave it as
    they found it, or count relative to what they find)."""
    async with fresh_database(pg_cluster, template_db) as dsn:
        yield dsn


@pytest.fixture
async def db(db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with connected(db_dsn) as conn:
        yield conn


@pytest.fixture
async def bridge(db_dsn: str) -> AsyncIterator[Any]:
    """The real daemon on a free port, on a fresh database with the demo data."""
    from tests.support.harness import running, settings_for

    async with running(settings_for(db_dsn)) as harness:
        yield harness


@pytest.fixture
async def own_cluster(tmp_path: Path) -> AsyncIterator[EmbeddedPostgres]:
    """A Postgres of this test's own with the demo data, for tests that stop
    it mid-test."""
    cluster = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    await asyncio.to_thread(cluster.start)
    await prepare_database(cluster.dsn, SUPABASE_DIR, bootstrap=True, seed=True)
    try:
        yield cluster
    finally:
        await asyncio.to_thread(cluster.stop)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis server on a free port."""
    port = free_port()
    proc = start_redis(port, tmp_path_factory.mktemp("redis"))
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    """A Redis server of this test's own, which it may freeze, kill or
    restart; killed after the test."""
    port, workdir = free_port(), tmp_path / "own-redis"
    workdir.mkdir()
    redis = OwnRedis(port, workdir, start_redis(port, workdir))
    try:
        yield redis
    finally:
        redis.kill()


@pytest.fixture
async def postgrest(db_dsn: str) -> AsyncIterator[PostgrestStandIn]:
    """The stand-in on the test's database, signing with SECRET."""
    standin = PostgrestStandIn(db_dsn, POSTGREST_SECRET)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


@pytest.fixture
def fcm() -> Iterator[FcmStandIn]:
    """The local FCM v1 endpoint (firebase-admin talks to it for real)."""
    standin = FcmStandIn()
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture
async def pushing(db_dsn: str, fcm: FcmStandIn, tmp_path: Path) -> AsyncIterator[Any]:
    """The daemon on a fresh database with pushes to the local FCM endpoint."""
    from tests.support.harness import running
    from tests.support.push import push_settings

    async with running(push_settings(db_dsn, fcm, tmp_path)) as harness:
        yield harness
