"""A database built the way a Supabase project's is, from Supabase's own SQL
(copied under tests/supabase_postgres/, sources and commits in its README):

1. a cluster whose bootstrap superuser is `supabase_admin`, on Debian's
   PostgreSQL 15 (the major version supabase/config.toml names; the pgserver
   wheel has no contrib extensions, and the init scripts need uuid-ossp and
   pgcrypto);
2. supabase/postgres' migrate.sh: `postgres` created as a superuser, the
   init scripts run as `postgres`, then the migrations as `supabase_admin`,
   the first of which demotes `postgres` to NOSUPERUSER;
3. what the Auth and Storage services apply when they first start: every
   supabase/auth migration as `supabase_auth_admin` (recorded in
   auth.schema_migrations) and every supabase/storage tenant migration as
   `supabase_storage_admin` (recorded in storage.migrations).

Statements that need what this machine cannot have are left out, each named
in SKIPPED with the reason; a skipped statement that is no longer in its file
fails the build, so the list and the copies cannot drift apart.
"""

from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path

import asyncpg

from bridge.embedded import EmbeddedPostgres

SQL = Path(__file__).resolve().parents[1] / "supabase_postgres"
PROJECT_DB = "postgres"
# Debian's major version for Supabase's (supabase/config.toml: major_version = 15).
PG_MAJOR = "15"

# (file under tests/supabase_postgres/, exact statement, why it is left out)
SKIPPED: tuple[tuple[str, str, str], ...] = (
    (
        "postgres/init-scripts/00000000000000-initial-schema.sql",
        "create extension if not exists pgjwt            with schema extensions;",
        "pgjwt is not packaged for Debian (only in the PGDG repository, not reachable"
        " here); nothing in the later scripts, the project's migrations or the bridge"
        " calls its functions",
    ),
    (
        "postgres/migrations/20230529180330_alter_api_roles_for_inherit.sql",
        "GRANT pgsodium_keyholder to service_role;",
        "the role comes with the pgsodium extension, not packaged for Debian; the"
        " script's own pgsodium/vault migration (20221207154255) skips itself when"
        " pgsodium is not available",
    ),
)


def debian_postgres_bin() -> Path | None:
    """Debian's PostgreSQL binaries with the contrib extensions, or None."""
    for bindir in [
        f"/usr/lib/postgresql/{PG_MAJOR}/bin",
        *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
    ]:
        major = Path(bindir).parent.name
        if (Path(bindir) / "postgres").exists() and Path(
            f"/usr/share/postgresql/{major}/extension/uuid-ossp.control"
        ).exists():
            return Path(bindir)
    return None


def _sql(relative: str) -> str:
    text = (SQL / relative).read_text()
    for path, statement, _why in SKIPPED:
        if path == relative:
            assert statement in text, f"{relative} no longer has the skipped {statement!r}"
            text = text.replace(statement, f"-- skipped by the test: {statement}")
    return text


async def _run_files(dsn: str, files: list[str]) -> None:
    """Each file as `psql -v ON_ERROR_STOP=1 -f` runs it in migrate.sh."""
    conn = await asyncpg.connect(dsn)
    try:
        for relative in files:
            try:
                await conn.execute(_sql(relative))
            except asyncpg.PostgresError as exc:
                raise RuntimeError(f"{relative}: {exc}") from exc
    finally:
        await conn.close()


def _record_args(relative: str) -> tuple[object, ...]:
    name = Path(relative).name
    if relative.startswith("auth/"):
        return (name.split("_", 1)[0],)
    number = int(name.split("-", 1)[0])
    digest = hashlib.sha1((name + (SQL / relative).read_text()).encode()).hexdigest()
    return (number, name.removesuffix(".sql"), digest)


def _auth_sql(relative: str) -> str:
    # GoTrue renders its migrations as templates with the schema's name.
    return re.sub(r"\{\{\s*index \.Options \"Namespace\"\s*\}\}", "auth", _sql(relative))


async def _run_auth(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        files = sorted(f"auth/{p.name}" for p in (SQL / "auth").glob("*.up.sql"))
        for relative in files:
            version = Path(relative).name.split("_", 1)[0]
            if await conn.fetchval(
                "select 1 from auth.schema_migrations where version = $1", version
            ):
                continue
            try:
                async with conn.transaction():
                    await conn.execute(_auth_sql(relative))
                    await conn.execute(
                        "insert into auth.schema_migrations (version) values ($1)", version
                    )
            except asyncpg.PostgresError as exc:
                raise RuntimeError(f"{relative}: {exc}") from exc
    finally:
        await conn.close()


def _storage_files() -> list[str]:
    names = [p.name for p in (SQL / "storage").glob("*.sql")]
    return [f"storage/{n}" for n in sorted(names, key=lambda n: int(n.split("-", 1)[0]))]


async def _run_storage(dsn: str) -> None:
    """As storage-api's runner with its defaults (DB_INSTALL_ROLES unset:
    supabase/postgres made the roles; DB_SUPER_USER `postgres`): settings
    first, one transaction per file (none where the file says
    `disable-transaction`)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "set search_path to storage, public;"
            "select set_config('storage.install_roles', 'false', false),"
            " set_config('storage.multitenant', 'false', false),"
            " set_config('storage.anon_role', 'anon', false),"
            " set_config('storage.authenticated_role', 'authenticated', false),"
            " set_config('storage.service_role', 'service_role', false),"
            " set_config('storage.super_user', 'postgres', false)"
        )
        for relative in _storage_files():
            number, name, digest = _record_args(relative)
            if await conn.fetchval("select 1 from storage.migrations where id = $1", number):
                continue
            sql = _sql(relative)
            try:
                if "postgres-migrations disable-transaction" in sql:
                    await conn.execute(sql)
                    await _record_storage(conn, number, name, digest)
                else:
                    async with conn.transaction():
                        await conn.execute(sql)
                        await _record_storage(conn, number, name, digest)
            except asyncpg.PostgresError as exc:
                raise RuntimeError(f"{relative}: {exc}") from exc
    finally:
        await conn.close()


async def _record_storage(
    conn: asyncpg.Connection, number: object, name: object, digest: object
) -> None:
    await conn.execute(
        "insert into storage.migrations (id, name, hash) values ($1, $2, $3)", number, name, digest
    )


async def build_supabase_database(cluster: EmbeddedPostgres) -> None:
    """Lays Supabase's schemas and roles into `cluster`'s `postgres` database."""
    admin = await asyncpg.connect(cluster.dsn_for(PROJECT_DB, "supabase_admin"))
    try:
        # migrate.sh's first step (the AMI pre-creates `postgres`).
        await admin.execute(
            "create role postgres superuser login password 'postgres';"
            " alter database postgres owner to postgres;"
        )
    finally:
        await admin.close()
    init = sorted(
        f"postgres/init-scripts/{p.name}" for p in (SQL / "postgres/init-scripts").glob("*.sql")
    )
    await _run_files(cluster.dsn_for(PROJECT_DB, "postgres"), init)
    conn = await asyncpg.connect(cluster.dsn_for(PROJECT_DB, "postgres"))
    try:
        await conn.execute("alter user supabase_admin with password 'postgres'")
    finally:
        await conn.close()
    migrations = sorted(
        f"postgres/migrations/{p.name}" for p in (SQL / "postgres/migrations").glob("*.sql")
    )
    await _run_files(cluster.dsn_for(PROJECT_DB, "supabase_admin"), migrations)
    await _run_auth(cluster.dsn_for(PROJECT_DB, "supabase_auth_admin"))
    await _run_storage(cluster.dsn_for(PROJECT_DB, "supabase_storage_admin"))
