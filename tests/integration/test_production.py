"""What the container does, beside a database built like a Supabase
project's: the package installed non-editable into a clean virtualenv (as
the Dockerfile's `pip install .`), `bridge run` started from it with the
Dockerfile's production settings, connected as the demoted, non-superuser
`postgres` to a database laid down by supabase/postgres' own init scripts
and migrations and the Auth and Storage services' migrations
(tests/support/supabase_db.py), with the project's migrations and seed
pushed the way the supabase CLI pushes them; with Supabase's default
privileges on `public` present and revoked. Then the seed's flows over
sockets and REST, pushes through firebase-admin to the local FCM endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from bridge.embedded import EmbeddedPostgres, free_port
from tests.conftest import DEFAULT_GRANTS, NO_DEFAULT_GRANTS, REPO
from tests.support.demo import (
    AVA,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    CAMPAIGN_SUMMER,
    LEO,
    MIA,
)
from tests.support.fcm_standin import FcmStandIn
from tests.support.harness import SECRET, Client, answering, token
from tests.support.supabase_db import build_supabase_database, debian_postgres_bin
from tests.support.waits import eventually

# What the Dockerfile copies into /app before and after `pip install .`.
PACKAGE_FILES = ("pyproject.toml", "README.md", "bridge")
APP_FILES = ("supabase", "config.toml")


# -- the image: a clean virtualenv with the package installed, and /app ------


def _dockerfile_env(app: Path) -> dict[str, str]:
    """The Dockerfile's ENV lines, its /app standing for `app`."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                key, _, value = pair.partition("=")
                env[key] = value.replace("/app", str(app))
    assert env.get("BRIDGE_SERVER_ENVIRONMENT") == "production", env
    return env


def _wheelhouse(cache: pytest.Cache | None, scratch: Path) -> Path:
    """Wheels of every dependency (and setuptools, to build the package),
    fetched from PyPI once per dependency list and kept in pytest's cache, so
    the clean install below resolves as `pip install .` does without the
    network on every run."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    name = f"prod-wheelhouse-{key}"
    house = cache.mkdir(name) if cache is not None else scratch / name
    if not (house / ".complete").exists():
        build = house / "build"
        shutil.rmtree(build, ignore_errors=True)
        _copy(REPO, build, PACKAGE_FILES)
        _pip("wheel", "--quiet", "-w", str(house), str(build), "setuptools>=68")
        shutil.rmtree(build)
        for own in house.glob("chat_bridge-*.whl"):
            own.unlink()  # the package itself is built fresh on every run
        (house / ".complete").touch()
    return house


def _copy(source: Path, target: Path, names: tuple[str, ...]) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (source / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(source / name, target / name, ignore=ignore)
        else:
            shutil.copy2(source / name, target / name)


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-4000:]


@dataclass(frozen=True)
class Image:
    bin: Path  # the clean virtualenv's bin/
    app: Path  # WORKDIR /app: supabase/ and config.toml
    env: dict[str, str]  # the Dockerfile's ENV and a bare PATH


def _install_image(root: Path, cache: pytest.Cache | None) -> Image:
    """`pip install .` of the package as the Dockerfile copies it, into a
    virtualenv made for this run (no editable install, no dev tools, nothing
    from the test environment)."""
    house = _wheelhouse(cache, root)
    _copy(REPO, root / "src", PACKAGE_FILES)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    _pip(
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "--quiet",
        "--no-compile",
        "--no-index",
        "--find-links",
        str(house),
        str(root / "src"),
    )
    app = root / "app"
    _copy(REPO, app, APP_FILES)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(root),
        "LANG": "C.UTF-8",
        **_dockerfile_env(app),
    }
    installed = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import bridge; print(bridge.__file__)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=app,
    )
    assert installed.stdout.startswith(str(venv)), installed  # not the repo's checkout
    return Image(venv / "bin", app, env)


async def _bridge(image: Image, *args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(image.bin / "bridge"),
        *args,
        env={**image.env, **env},
        cwd=image.app,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


# -- the database: Supabase's own SQL, then the project's the CLI's way -------


async def _supabase_cluster(cluster: EmbeddedPostgres) -> None:
    await asyncio.to_thread(cluster.start)
    await build_supabase_database(cluster)


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Image, EmbeddedPostgres]]:
    """The image and a cluster whose `postgres` database Supabase's SQL
    built (each test copies it), made side by side."""
    bin_dir = debian_postgres_bin()
    assert bin_dir, "Debian's postgresql (15, with contrib) is missing: scripts/ensure-services"
    cluster = EmbeddedPostgres(
        tmp_path_factory.mktemp("supabase-pg"),
        free_port(),
        durable=False,
        superuser="supabase_admin",
        bin_dir=bin_dir,
    )
    root = tmp_path_factory.mktemp("image")
    try:
        image, _ = await asyncio.gather(
            # pytest's cache keeps the wheelhouse between runs (when enabled)
            asyncio.to_thread(_install_image, root, getattr(request.config, "cache", None)),
            _supabase_cluster(cluster),
        )
        yield image, cluster
    finally:
        await asyncio.to_thread(cluster.stop)


@pytest.fixture(scope="module")
def image(stack: tuple[Image, EmbeddedPostgres]) -> Image:
    return stack[0]


@pytest.fixture(scope="module")
def supabase_cluster(stack: tuple[Image, EmbeddedPostgres]) -> EmbeddedPostgres:
    return stack[1]


# The supabase CLI's statements (supabase/cli, pkg/migration/history.go and
# seed.go): its history tables, one transaction per migration file with its
# history row, the seed with its row in seed_files (path relative to the
# project, sha256 of the file).
CLI_HISTORY = (
    "set lock_timeout = '4s'",
    "create schema if not exists supabase_migrations",
    "create table if not exists supabase_migrations.schema_migrations"
    " (version text not null primary key)",
    "alter table supabase_migrations.schema_migrations add column if not exists statements text[]",
    "alter table supabase_migrations.schema_migrations add column if not exists name text",
    "create table if not exists supabase_migrations.seed_files"
    " (path text not null primary key, hash text not null)",
)
# The CLI's revoke when `[api] auto_expose_new_tables = false` (supabase/cli,
# internal/db/start, RevokeDefaultDataApiPrivilegesSql), as `postgres`.
REVOKE_DEFAULT_PRIVILEGES = """
alter default privileges in schema public
  revoke select, insert, update, delete on tables from anon, authenticated, service_role;
alter default privileges in schema public
  revoke usage, select on sequences from anon, authenticated, service_role;
alter default privileges in schema public
  revoke execute on functions from anon, authenticated, service_role;
"""


async def supabase_db_push(conn: asyncpg.Connection, supabase_dir: Path) -> None:
    for statement in CLI_HISTORY:
        await conn.execute(statement)
    for path in sorted((supabase_dir / "migrations").glob("*.sql")):
        version, _, name = path.stem.partition("_")
        async with conn.transaction():
            await conn.execute(path.read_text())
            await conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name, statements)"
                " values ($1, $2, $3)",
                version,
                name,
                [path.read_text()],
            )


async def supabase_seed(conn: asyncpg.Connection, supabase_dir: Path) -> None:
    body = (supabase_dir / "seed.sql").read_text()
    async with conn.transaction():
        await conn.execute(body)
        await conn.execute(
            "insert into supabase_migrations.seed_files (path, hash) values ($1, $2)"
            " on conflict (path) do update set hash = excluded.hash",
            "supabase/seed.sql",
            hashlib.sha256(body.encode()).hexdigest(),
        )


_projects = iter(range(1, 1000))


async def _project(cluster: EmbeddedPostgres, mode: str, pushed_by: str) -> str:
    """A copy of the Supabase database owned by `postgres`, as the project's
    database is; with the project's migrations and seed applied by the CLI
    (or left for `bridge migrate`). Returns the DSN as `postgres`."""
    name = f"project_{next(_projects)}"
    admin = await asyncpg.connect(cluster.dsn_for("template1"))
    try:
        await admin.execute(f"create database {name} template postgres owner postgres")
    finally:
        await admin.close()
    dsn = cluster.dsn_for(name, "postgres")
    conn = await asyncpg.connect(dsn)
    try:
        assert not await conn.fetchval("select rolsuper from pg_roles where rolname = 'postgres'")
        if mode == NO_DEFAULT_GRANTS:
            await conn.execute(REVOKE_DEFAULT_PRIVILEGES)
        # The init script's default privileges (as `postgres`) are what the
        # mode says: new tables readable by `authenticated` or not.
        assert await conn.fetchval(
            "select exists (select 1 from pg_default_acl d, aclexplode(d.defaclacl) a"
            " where d.defaclrole = 'postgres'::regrole"
            " and d.defaclnamespace = 'public'::regnamespace and d.defaclobjtype = 'r'"
            " and a.grantee = 'authenticated'::regrole and a.privilege_type = 'SELECT')"
        ) == (mode == DEFAULT_GRANTS)
        if pushed_by == "cli":
            await supabase_db_push(conn, REPO / "supabase")
            await supabase_seed(conn, REPO / "supabase")
    finally:
        await conn.close()
    return dsn


# -- the daemon ---------------------------------------------------------------


def _tail(log: Path, chars: int = 4000) -> str:
    """The daemon's output (its last `chars`, all with 0)."""
    return log.read_text()[-chars:]


@dataclass
class Deployment:
    url: str
    dsn: str
    env: dict[str, str]
    log: Path
    mode: str
    fcm: FcmStandIn


async def _start(
    image: Image, env: dict[str, str], log: Path, port: int
) -> asyncio.subprocess.Process:
    """`bridge run` as the image's CMD; returns once /healthz answers."""
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            str(image.bin / "bridge"),
            "run",
            env={**image.env, **env},
            cwd=image.app,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        await answering(proc, f"http://127.0.0.1:{port}/healthz", timeout=30)
    except (AssertionError, RuntimeError) as exc:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()
        raise AssertionError(f"bridge run did not come up ({exc}):\n{_tail(log)}") from None
    return proc


CASES = {
    # Older projects: Supabase's default privileges on public, CLI push.
    "default-grants-cli": (DEFAULT_GRANTS, "cli"),
    # Default privileges revoked (`auto_expose_new_tables = false`), CLI push.
    "no-default-grants-cli": (NO_DEFAULT_GRANTS, "cli"),
    # Revoked, and a project the CLI never pushed to: `bridge check` refuses
    # it naming the command, `bridge run` with BRIDGE_DATABASE_MIGRATE=true
    # migrates and starts, then the CLI's seed.
    "no-default-grants-run-migrates": (NO_DEFAULT_GRANTS, "bridge"),
}


@pytest.fixture(scope="module")
def fcm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FcmStandIn, Path]]:
    """The local FCM v1 endpoint and a service account whose tokens it grants."""
    standin = FcmStandIn()
    standin.start()
    try:
        yield standin, standin.service_account(tmp_path_factory.mktemp("fcm") / "account.json")
    finally:
        standin.stop()


@pytest.fixture(params=list(CASES))
async def deployment(
    image: Image,
    supabase_cluster: EmbeddedPostgres,
    fcm: tuple[FcmStandIn, Path],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Deployment]:
    mode, pushed_by = CASES[request.param]
    dsn = await _project(supabase_cluster, mode, pushed_by)
    port = free_port()
    standin, account = fcm
    env = {
        "DATABASE_URL": dsn.replace("postgres@", "postgres:postgres@", 1),
        "SUPABASE_URL": "https://abcdefghijklmnop.supabase.co",
        "SUPABASE_JWT_SECRET": SECRET,
        "SOCKET_PORT": str(port),
        "BRIDGE_SERVER_HOST": "127.0.0.1",
        "CORS_ORIGIN": "https://app.example.com",
        "GOOGLE_APPLICATION_CREDENTIALS": str(account),
        "FCM_ENDPOINT": standin.base_url,
    }
    log = tmp_path / "bridge.log"
    if pushed_by == "cli":
        # What the README has the deployer run before `up`.
        code, out, err = await _bridge(image, "migrate", env=env)
        assert code == 0 and "Traceback" not in err, err
        assert out.strip() == "applied 0 migration(s)", out  # nothing applied twice
        code, out, err = await _bridge(image, "check", env=env)
        assert code == 0, out + err
        proc = await _start(image, env, log, port)
    else:
        code, out, err = await _bridge(image, "check", env=env)
        assert code == 1 and "Traceback" not in err, out + err
        assert "no chat-bridge schema" in err and "`bridge migrate`" in err, err
        proc = await _start(image, {**env, "BRIDGE_DATABASE_MIGRATE": "true"}, log, port)
        conn = await asyncpg.connect(dsn)
        try:
            await supabase_seed(conn, REPO / "supabase")
        finally:
            await conn.close()
        code, out, err = await _bridge(image, "migrate", env=env)
        assert (code, out.strip()) == (0, "applied 0 migration(s)"), out + err
    try:
        yield Deployment(f"http://127.0.0.1:{port}", dsn, env, log, mode, standin)
    finally:
        proc.terminate()
        await proc.wait()
        assert proc.returncode == 0, _tail(log)
        assert "Traceback" not in _tail(log, 0), _tail(log)


async def _flow_step(dsn: str, user: str, conversation: str, action: str) -> None:
    """A flow step the way the app takes it (supabase-js / the flow-action
    edge function): the SQL function as the signed-in user."""
    conn = await asyncpg.connect(dsn)
    try:
        async with acting_as(conn, user_claims(user)):
            await conn.fetchrow(
                "select * from public.apply_flow_action($1, $2)", conversation, action
            )
    finally:
        await conn.close()


async def test_the_seed_flows_run_in_production_on_a_supabase_built_database(
    deployment: Deployment, image: Image
) -> None:
    """Ava and Leo on sockets: Leo sends over REST and over his socket, Ava
    gets both live, reads the history, marks it seen (Leo is told) and her
    chat list shows it read; Leo registers his phone for pushes; Ava
    confirms the bid and cancels it during the work, Leo sees each state
    change and his phone gets the push (through firebase-admin to the local
    FCM endpoint); Ava starts a campaign conversation with Mia; Leo deletes
    his push token. Nothing is refused for a missing grant, /healthz stays
    ok, the container's health check passes on a port other than 3000, and
    the daemon logged no error."""
    url = deployment.url
    ava, leo = Client(url, AVA), Client(url, LEO)
    await ava.connect()
    await leo.connect()
    try:
        assert (await ava.call("join_conversation", CAMPAIGN_CONVERSATION))["ok"]
        async with aiohttp.ClientSession() as http:

            async def rest(method: str, path: str, user: str, **kw: Any) -> tuple[int, Any]:
                headers = {"Authorization": f"Bearer {token(user)}"}
                async with http.request(method, url + path, headers=headers, **kw) as resp:
                    return resp.status, await resp.json()

            status, sent = await rest(
                "POST",
                "/api/messages/send",
                LEO,
                json={"conversation_id": CAMPAIGN_CONVERSATION, "message": "over REST"},
            )
            assert status == 201, sent
            ack = await leo.call(
                "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "over socket"}
            )
            assert ack["ok"], ack
            for text in ("over REST", "over socket"):
                await ava.wait_for("new_message", lambda d, t=text: d["message"]["content"] == t)

            status, page = await rest(
                "GET", f"/api/conversations/{CAMPAIGN_CONVERSATION}/messages", AVA
            )
            assert status == 200, page
            assert [m["content"] for m in page["messages"]][-2:] == ["over REST", "over socket"]

            status, seen = await rest(
                "POST",
                "/api/messages/mark-seen",
                AVA,
                json={"conversation_id": CAMPAIGN_CONVERSATION},
            )
            assert status == 200, seen
            await leo.wait_for(
                "messages_seen", lambda d: d["conversationId"] == CAMPAIGN_CONVERSATION
            )
            status, listing = await rest("GET", "/api/conversations", AVA)
            assert status == 200, listing
            mine = {c["id"]: c for c in listing["conversations"]}
            assert mine[CAMPAIGN_CONVERSATION]["unread_count"] == 0
            assert mine[CAMPAIGN_CONVERSATION]["last_message"]["content"] == "over socket"

            # Leo's phone registers for pushes; flow steps are pushed to it.
            device = f"prod-device-{deployment.mode}-{deployment.url[-5:]}"
            status, _ = await rest(
                "POST", "/api/fcm-tokens", LEO, json={"token": device, "platform": "ios"}
            )
            assert status in (200, 201)
            # The seeded bid waits for Ava's confirmation; she confirms, then
            # cancels while the work runs (the brand owner may, docs/flow.md).
            for action, state in (("confirm", "work_in_progress"), ("cancel", "cancelled")):
                await _flow_step(deployment.dsn, AVA, BID_CONVERSATION, action)
                await leo.wait_for(
                    "conversation_state_changed",
                    lambda d, s=state: (
                        d["conversation_id"] == BID_CONVERSATION and d["flow_state"] == s
                    ),
                )
            await eventually(lambda: deployment.fcm.messages_to(device))
            push = deployment.fcm.messages_to(device)[0]
            assert push["data"]["conversation_id"] == BID_CONVERSATION, push
            assert push["data"]["type"] == "flow_state", push
            conn = await asyncpg.connect(deployment.dsn)
            try:
                async with acting_as(conn, user_claims(AVA)):
                    started = await conn.fetchrow(
                        "select * from public.start_campaign_conversation($1, $2)",
                        CAMPAIGN_SUMMER,
                        MIA,
                    )
            finally:
                await conn.close()
            assert started["flow_state"] == "influencer_responding"
            status, listing = await rest("GET", "/api/conversations", MIA)
            assert status == 200 and str(started["id"]) in {
                c["id"] for c in listing["conversations"]
            }, listing

            status, _ = await rest("DELETE", f"/api/fcm-tokens/{device}", LEO)
            assert status == 200

            async with http.get(url + "/healthz") as resp:
                health = await resp.json()
            assert resp.status == 200 and health["status"] == "ok", health
            assert health["counters"].get("permission_errors", 0) == 0, health
    finally:
        await ava.close()
        await leo.close()
    # The image's HEALTHCHECK, `bridge health`, with the container's settings.
    code, out, err = await _bridge(image, "health", env=deployment.env)
    assert code == 0 and '"status": "ok"' in out.replace('":"', '": "'), out + err
    # As the non-superuser: LISTEN for the doorbell, the relay's advisory
    # lock, and not one error line.
    text = _tail(deployment.log, 0)
    assert "doorbell=listen" in text and "listening for outbox doorbell" in text, text
    assert "relay lease acquired" in text, text
    assert " ERROR " not in text, text


async def test_a_grant_revoked_on_the_project_is_reported_to_the_operator(
    image: Image, supabase_cluster: EmbeddedPostgres, tmp_path: Path
) -> None:
    """On a project without default privileges, someone revokes what the
    migrations granted (EXECUTE on conversation_blocked, which the block
    policy on messages calls, from authenticated): sends answer 503
    without the database's words, the daemon logs the missing grant once
    with its SQLSTATE and object, and /healthz says degraded with the reason while staying 200."""
    dsn = await _project(supabase_cluster, NO_DEFAULT_GRANTS, "cli")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "revoke execute on function public.conversation_blocked(uuid) from authenticated"
        )
    finally:
        await conn.close()
    port = free_port()
    env = {
        "DATABASE_URL": dsn,
        "SUPABASE_URL": "https://abcdefghijklmnop.supabase.co",
        "SUPABASE_JWT_SECRET": SECRET,
        "SOCKET_PORT": str(port),
        "BRIDGE_SERVER_HOST": "127.0.0.1",
    }
    log = tmp_path / "bridge.log"
    proc = await _start(image, env, log, port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {token(LEO)}"}
            for text in ("one", "two"):
                async with http.post(
                    url + "/api/messages/send",
                    headers=headers,
                    json={"conversation_id": CAMPAIGN_CONVERSATION, "message": text},
                ) as resp:
                    body = await resp.json()
                assert resp.status == 503 and body["error"]["code"] == "unavailable", body
                assert "permission denied" not in str(body)
            async with http.get(url + "/healthz") as resp:
                health = await resp.json()
        assert resp.status == 200 and health["status"] == "degraded", health
        assert any("conversation_blocked" in p for p in health["problems"]), health
        assert health["counters"]["permission_errors"] == 2, health
    finally:
        proc.terminate()
        await proc.wait()
    text = _tail(log, 0)
    lines = [line for line in text.splitlines() if "a grant is missing" in line]
    assert len(lines) == 1 and "42501" in lines[0], text[-4000:]
    assert "Traceback" not in text, text[-4000:]


async def test_attachment_storage_policies_hold_on_supabase_storage_schema(
    supabase_cluster: EmbeddedPostgres,
) -> None:
    """On storage.objects as Supabase Storage's own migrations lay it down
    (its triggers, grants and RLS), the project's migrations create the
    private chat-attachments bucket and its policies: participants only,
    their conversation's folder only, no overwrites, nothing across a block
    (tests/integration/test_attachments_rls.py holds the matrix)."""
    from tests.integration.test_attachments_rls import check_attachment_policies

    dsn = await _project(supabase_cluster, NO_DEFAULT_GRANTS, "cli")
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("select count(*) from storage.migrations") > 50
        await check_attachment_policies(conn)
    finally:
        await conn.close()
