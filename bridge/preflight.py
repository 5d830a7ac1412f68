"""Start-up checks: refuse, with one message naming every cause, a
configuration that cannot work, instead of starting and failing each client.
`bridge run` runs them before it listens; `bridge check` prints the same
verdict without starting.

What can never work: no way to verify access tokens (no JWT secret and no
reachable JWKS), a Supabase URL on this machine in production (JWKS and
avatar URLs would point at the container itself), a database without the
bridge's schema or with migrations not yet applied, a database role that
cannot switch to `authenticated` (the bridge writes as the user, with RLS),
a Realtime doorbell whose keys, database or project refuse it
(bridge.outbox.doorbells.realtime_checks).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import asyncpg

from bridge.errors import BridgeError
from bridge.migrate import MigrationError, discover
from bridge.outbox.doorbells.choice import doorbell_choice
from bridge.outbox.doorbells.realtime_checks import realtime_problems
from bridge.settings import Settings

JWKS_TIMEOUT = 5.0
# Tables the bridge cannot run without, one per migration it depends on.
REQUIRED_TABLES = ("public.users", "public.conversations", "public.messages", "bridge.outbox")
MIGRATE_HINT = "run `bridge migrate` (or start with BRIDGE_DATABASE_MIGRATE=true)"


class PreflightError(BridgeError, RuntimeError):
    """The configuration cannot work; the message names every cause."""

    code = "preflight_failed"


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        if self.ok:
            return "ok: the configuration can work"
        lines = [f"refusing to start: {len(self.problems)} problem(s)"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def _is_local(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def jwks_url(settings: Settings) -> str | None:
    if settings.supabase.jwks_url:
        return settings.supabase.jwks_url
    if settings.supabase.url:
        return f"{settings.supabase.url.rstrip('/')}/auth/v1/.well-known/jwks.json"
    return None


def config_problems(settings: Settings) -> list[str]:
    """What is wrong with the settings alone (pure)."""
    problems: list[str] = []
    if not settings.production:
        return problems
    url = settings.supabase.url
    if not url:
        problems.append(
            "supabase.url (SUPABASE_URL) is not set: avatar URLs and the JWKS need the project URL"
        )
    elif _is_local(urlsplit(url).hostname or ""):
        problems.append(
            f"supabase.url (SUPABASE_URL) is {url}, this machine: in production set it to the"
            " project's URL (https://<ref>.supabase.co); JWKS and avatar URLs are built from it"
        )
    if settings.embedded:
        problems.append(
            "database.url (DATABASE_URL) is not set: production needs the Supabase database,"
            " not the embedded one"
        )
    return problems


async def jwks_problem(url: str | None) -> str | None:
    """None when the JWKS answers with at least one key."""
    if not url:
        return (
            "no way to verify access tokens: set SUPABASE_JWT_SECRET (HS256 projects) or"
            " SUPABASE_URL (asymmetric keys, read from the project's JWKS)"
        )
    try:
        timeout = aiohttp.ClientTimeout(total=JWKS_TIMEOUT)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url) as resp,
        ):
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            body = await resp.json(content_type=None)
        keys = body.get("keys") if isinstance(body, dict) else None
        if not keys:
            raise ValueError("no keys in it")
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return (
            f"no way to verify access tokens: SUPABASE_JWT_SECRET is not set and the JWKS at"
            f" {url} is not usable ({type(exc).__name__}: {exc})"
        )
    return None


async def database_problems(dsn: str, supabase_dir: Path) -> list[str]:
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        return [f"cannot connect to the database: {type(exc).__name__}: {exc}"]
    problems: list[str] = []
    try:
        missing = [t for t in REQUIRED_TABLES if not await _table_exists(conn, t)]
        if missing:
            problems.append(
                f"the database has no chat-bridge schema (missing {', '.join(missing)}):"
                f" {MIGRATE_HINT}"
            )
        else:
            try:
                pending = await _pending_migrations(conn, supabase_dir)
            except asyncpg.PostgresError as exc:
                problems.append(f"cannot read the migration history: {exc}")
                pending = []
            if pending:
                problems.append(
                    f"{len(pending)} migration(s) not applied ({', '.join(pending)}):"
                    f" {MIGRATE_HINT}"
                )
        try:
            async with conn.transaction():
                await conn.execute("set local role authenticated")
        except asyncpg.PostgresError as exc:
            user = await conn.fetchval("select current_user")
            problems.append(
                f"database role {user} cannot switch to `authenticated` ({exc}): the bridge"
                f" writes as the signed-in user; use the project's `postgres` role or"
                f" `grant authenticated to {user}`"
            )
    finally:
        await conn.close()
    return problems


async def _table_exists(conn: asyncpg.Connection, qualified: str) -> bool:
    """From the catalog: to_regclass needs USAGE on the schema, which a
    misconfigured role may lack (that is reported separately)."""
    schema, _, name = qualified.partition(".")
    return bool(
        await conn.fetchval(
            "select exists (select 1 from pg_catalog.pg_class c"
            " join pg_catalog.pg_namespace n on n.oid = c.relnamespace"
            " where n.nspname = $1 and c.relname = $2)",
            schema,
            name,
        )
    )


async def _pending_migrations(conn: asyncpg.Connection, supabase_dir: Path) -> list[str]:
    try:
        versions = [m.version for m in discover(supabase_dir / "migrations")]
    except MigrationError:
        return []  # no migrations shipped with this install: nothing to compare
    if not await _table_exists(conn, "supabase_migrations.schema_migrations"):
        return versions
    done = {
        r["version"]
        for r in await conn.fetch("select version from supabase_migrations.schema_migrations")
    }
    return [v for v in versions if v not in done]


async def check(settings: Settings, dsn: str | None) -> Verdict:
    """Every problem at once; `dsn` None skips the database (not started yet)."""
    verdict = Verdict(config_problems(settings))
    if not settings.jwt_secret:
        problem = await jwks_problem(jwks_url(settings))
        if problem:
            verdict.problems.append(problem)
    if dsn is not None:
        verdict.problems += await database_problems(dsn, Path(settings.database.supabase_dir))
    if doorbell_choice(settings) == "realtime" and verdict.ok:
        verdict.problems += await realtime_problems(settings, dsn)
    return verdict


async def ensure(settings: Settings, dsn: str) -> None:
    """Raises PreflightError unless every check passes."""
    verdict = await check(settings, dsn)
    if not verdict.ok:
        raise PreflightError(verdict.render())
