"""`bridge migrate` against databases as a deployer finds them: one the
supabase CLI never pushed to, one it did, and ones where it cannot work."""

from __future__ import annotations

import asyncpg

from bridge.embedded import EmbeddedPostgres, free_port
from bridge.migrate import apply_bootstrap, discover
from tests.conftest import SUPABASE_DIR, create_database
from tests.support.harness import SECRET, run_cli

VERSIONS = [m.version for m in discover(SUPABASE_DIR / "migrations")]


async def _supabase_project(cluster: EmbeddedPostgres) -> tuple[str, asyncpg.Connection]:
    """A database like a fresh hosted project: Supabase's schemas and roles,
    and no migration history (the CLI never pushed to it)."""
    dsn = cluster.dsn_for(await create_database(cluster, None))
    conn = await asyncpg.connect(dsn)
    await apply_bootstrap(conn)
    await conn.execute("drop schema supabase_migrations cascade")
    return dsn, conn


def _env(dsn: str) -> dict[str, str]:
    return {"DATABASE_URL": dsn, "SUPABASE_JWT_SECRET": SECRET}


async def _recorded(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "select version from supabase_migrations.schema_migrations order by version"
    )
    return [r["version"] for r in rows]


async def test_migrate_creates_the_cli_history_on_an_untouched_database(
    pg_cluster: EmbeddedPostgres,
) -> None:
    """On a project the CLI never pushed to, `bridge migrate` creates the
    CLI's history table, applies every migration, and a second run applies
    nothing."""
    dsn, conn = await _supabase_project(pg_cluster)
    try:
        code, out, err = await run_cli("migrate", env=_env(dsn))
        assert code == 0 and "Traceback" not in err, err
        assert f"applied {len(VERSIONS)} migration(s)" in out
        assert await _recorded(conn) == VERSIONS
        columns = await conn.fetch(
            "select column_name from information_schema.columns"
            " where table_schema = 'supabase_migrations' and table_name = 'schema_migrations'"
            " order by ordinal_position"
        )
        assert [c["column_name"] for c in columns] == ["version", "statements", "name"]

        code, out, err = await run_cli("migrate", env=_env(dsn))
        assert (code, out.strip()) == (0, "applied 0 migration(s)"), err
    finally:
        await conn.close()


async def test_migrate_continues_where_the_cli_left_off(pg_cluster: EmbeddedPostgres) -> None:
    """On a project an older CLI pushed part of the migrations to (history
    table with the version column only), `bridge migrate` applies the rest,
    each once."""
    dsn, conn = await _supabase_project(pg_cluster)
    try:
        await conn.execute("create schema supabase_migrations")
        await conn.execute(
            "create table supabase_migrations.schema_migrations (version text not null primary key)"
        )
        pushed = discover(SUPABASE_DIR / "migrations")[:3]
        for migration in pushed:
            await conn.execute(migration.sql)
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version) values ($1)",
                migration.version,
            )
        code, out, err = await run_cli("migrate", env=_env(dsn))
        assert code == 0, err
        assert f"applied {len(VERSIONS) - 3} migration(s)" in out
        assert await _recorded(conn) == VERSIONS
    finally:
        await conn.close()


async def test_migrate_failures_are_one_clear_line_and_a_non_zero_exit(
    pg_cluster: EmbeddedPostgres, tmp_path: object
) -> None:
    """An unreachable database or a migration that fails ends `bridge
    migrate` with a message naming the cause, exit 1, no traceback, and
    nothing of the failed migration left behind."""
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    code, _, err = await run_cli("migrate", env=_env(nowhere))
    assert code == 1
    assert "cannot connect to the database" in err
    assert "Traceback" not in err

    from pathlib import Path

    broken = Path(str(tmp_path)) / "supabase"
    (broken / "migrations").mkdir(parents=True)
    (broken / "migrations" / "20260101000000_ok.sql").write_text("create table public.ok (id int);")
    (broken / "migrations" / "20260101000001_bad.sql").write_text("create tabel nope;")
    dsn, conn = await _supabase_project(pg_cluster)
    try:
        env = {**_env(dsn), "BRIDGE_DATABASE_SUPABASE_DIR": str(broken)}
        code, _, err = await run_cli("migrate", env=env)
        assert code == 1
        assert "20260101000001_bad.sql" in err and "Traceback" not in err
        assert await _recorded(conn) == ["20260101000000"]
    finally:
        await conn.close()


async def test_migrate_leaves_a_running_embedded_database_running(
    own_cluster: EmbeddedPostgres,
) -> None:
    """A daemon runs on the embedded default (`make run`) and someone runs
    `bridge migrate` (or a second `make run`) on the same data directory:
    it finds the database running, works on it and leaves it running for
    the daemon, instead of stopping it on its way out."""
    env = {
        "SUPABASE_JWT_SECRET": SECRET,
        "DATABASE_URL": "",
        "BRIDGE_DATABASE_DATA_DIR": str(own_cluster.root),
        "BRIDGE_DATABASE_EMBEDDED_PORT": str(own_cluster.port),
    }
    code, _, err = await run_cli("migrate", env=env)
    assert code == 0, err
    assert "Traceback" not in err
    assert own_cluster.is_running()
    conn = await asyncpg.connect(own_cluster.dsn)
    try:
        assert await conn.fetchval("select 1") == 1
    finally:
        await conn.close()
