"""Schema management the way the supabase CLI does it: migrations from
`supabase/migrations/` applied in file-name order, each once, recorded in
`supabase_migrations.schema_migrations`; `supabase/seed.sql` on a new
database. The embedded mode first lays down what Supabase itself provides
(`bridge/sql/supabase_bootstrap.sql`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg

from bridge import locks
from bridge.errors import BridgeError

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(?P<version>\d+)_(?P<name>[A-Za-z0-9_\-]+)\.sql$")


class MigrationError(BridgeError, RuntimeError):
    """A migration file is misnamed or failed to apply."""

    code = "migration_failed"


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()


def discover(migrations_dir: Path) -> list[Migration]:
    if not migrations_dir.is_dir():
        raise MigrationError(f"no migrations folder at {migrations_dir}")
    found = []
    for path in sorted(migrations_dir.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named <version>_<name>.sql")
        found.append(Migration(match["version"], match["name"], path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {migrations_dir}")
    return found


def bootstrap_sql() -> str:
    return resources.files("bridge").joinpath("sql/supabase_bootstrap.sql").read_text()


async def apply_bootstrap(conn: asyncpg.Connection) -> None:
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock($1)", locks.MIGRATION)
        await conn.execute(bootstrap_sql())


# The supabase CLI's own statements (supabase/cli, apps/cli-go/pkg/migration/
# history.go, CreateMigrationTable and CreateSeedTable, commit 1d1e7191268e):
# a database the CLI never pushed to gets the same history table, so the CLI
# and the bridge can take turns on it without applying anything twice.
CLI_HISTORY_TABLES = (
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations"
    " (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
    "create table if not exists supabase_migrations.seed_files"
    " (path text not null primary key, hash text not null)",
)


async def ensure_history_tables(conn: asyncpg.Connection) -> None:
    """Creates the CLI's migration history tables where they are missing."""
    try:
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock($1)", locks.MIGRATION)
            columns = {
                r["column_name"]
                for r in await conn.fetch(
                    "select column_name from information_schema.columns"
                    " where table_schema = 'supabase_migrations'"
                    " and table_name = 'schema_migrations'"
                )
            }
            for statement in CLI_HISTORY_TABLES:
                # `add column if not exists` still needs ownership: skip what
                # is there, so a table the CLI created as another role works.
                if "add column" in statement and statement.split()[-2] in columns:
                    continue
                await conn.execute(statement)
    except asyncpg.PostgresError as exc:
        raise MigrationError(f"cannot create supabase_migrations.schema_migrations: {exc}") from exc


async def apply_migrations(conn: asyncpg.Connection, migrations_dir: Path) -> list[str]:
    """Applies the migrations not yet recorded; returns the versions applied."""
    applied: list[str] = []
    await ensure_history_tables(conn)
    for migration in discover(migrations_dir):
        async with conn.transaction():
            await conn.execute("select pg_advisory_xact_lock($1)", locks.MIGRATION)
            done = await conn.fetchval(
                "select 1 from supabase_migrations.schema_migrations where version = $1",
                migration.version,
            )
            if done:
                continue
            sql = migration.sql
            try:
                await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"{migration.path.name}: {exc}") from exc
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values ($1, $2, $3)",
                migration.version,
                migration.name,
                [sql],
            )
            applied.append(migration.version)
            log.info("migration applied", extra={"version": migration.version})
    return applied


def _read_if_exists(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


async def apply_seed(conn: asyncpg.Connection, seed_path: Path) -> bool:
    """Loads the seed once per database; returns whether it ran now."""
    sql = await asyncio.to_thread(_read_if_exists, seed_path)
    if sql is None:
        return False
    # Recorded as the CLI records it, relative to the project ("supabase/
    # seed.sql"); the bare name is what earlier versions of the bridge wrote.
    recorded = f"{seed_path.parent.name}/{seed_path.name}"
    async with conn.transaction():
        await conn.execute("select pg_advisory_xact_lock($1)", locks.MIGRATION)
        done = await conn.fetchval(
            "select 1 from supabase_migrations.seed_files where path = any($1::text[])",
            [recorded, seed_path.name],
        )
        if done:
            return False
        try:
            await conn.execute(sql)
        except asyncpg.PostgresError as exc:
            raise MigrationError(f"{seed_path.name}: {exc}") from exc
        await conn.execute(
            "insert into supabase_migrations.seed_files (path, hash) values ($1, $2)",
            recorded,
            hashlib.sha256(sql.encode()).hexdigest(),
        )
    log.info("seed loaded", extra={"seed": seed_path.name})
    return True


async def prepare_database(
    dsn: str, supabase_dir: Path, *, bootstrap: bool, seed: bool
) -> list[str]:
    """Brings a database up to date; returns the migration versions applied.
    Every failure is a MigrationError with a message for the operator."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise MigrationError(f"cannot connect to the database: {exc}") from exc
    try:
        if bootstrap:
            await apply_bootstrap(conn)
        applied = await apply_migrations(conn, supabase_dir / "migrations")
        if seed:
            await apply_seed(conn, supabase_dir / "seed.sql")
        return applied
    finally:
        await conn.close()
