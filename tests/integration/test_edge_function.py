"""The edge function supabase/functions/flow-action under Deno (the `deno`
npm package, pinned in tests/deno): `deno check` first, so a broken import
or a type error fails here rather than on deploy; then the function serves
HTTP and calls the database through supabase-js and a PostgREST stand-in
(tests/integration/postgrest_standin.py), so a wrong RPC name, argument or
error mapping fails too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jwt
import pytest

from bridge.auth import mint_token
from bridge.embedded import free_port
from tests.conftest import REPO
from tests.support.demo import AVA, BID_CONVERSATION, CAMPAIGN_CONVERSATION, LEO, MIA
from tests.support.postgrest_standin import SECRET, PostgrestStandIn
from tests.support.waits import eventually

FUNCTION_DIR = REPO / "supabase" / "functions" / "flow-action"
DENO = REPO / "tests" / "deno" / "node_modules" / ".bin" / "deno"
# Deno's module cache (npm packages for the function's npm: imports).
DENO_DIR = REPO / ".cache" / "deno"


def deno_env() -> dict[str, str]:
    return {
        **os.environ,
        "DENO_DIR": str(DENO_DIR),
        "DENO_NO_UPDATE_CHECK": "1",
        "NO_COLOR": "1",
    }


@pytest.fixture(scope="session")
def function_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The function in a folder without a package.json above it: Deno will
    not resolve npm: imports in a folder that has one in a parent."""
    assert DENO.exists(), "deno is missing (make test installs it: npm ci in tests/deno)"
    target = tmp_path_factory.mktemp("edge") / "flow-action"
    shutil.copytree(FUNCTION_DIR, target)
    for parent in target.parents:
        assert not (parent / "package.json").exists(), f"{parent}/package.json confuses deno"
    return target


async def run_deno(*args: str, cwd: Path, timeout: float = 300) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(DENO),
        *args,
        cwd=cwd,
        env=deno_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.fixture(scope="session")
async def checked_function(function_copy: Path) -> Path:
    """The function after `deno check` passed (which also fetches its npm
    packages into the cache)."""
    code, output = await run_deno("check", "index.ts", cwd=function_copy)
    assert code == 0, f"deno check failed:\n{output}"
    return function_copy


async def test_deno_check_passes(checked_function: Path) -> None:
    """The function type-checks against the supabase-js it imports."""
    assert (checked_function / "index.ts").exists()


@pytest.fixture
async def edge_function(checked_function: Path, postgrest: PostgrestStandIn) -> AsyncIterator[str]:
    """The function served by Deno on a free port, as the edge runtime would,
    with SUPABASE_URL pointing at the PostgREST stand-in."""
    port = free_port()
    now = int(time.time())
    anon_key = jwt.encode(
        {"iss": "supabase", "role": "anon", "iat": now, "exp": now + 3600}, SECRET, "HS256"
    )
    proc = await asyncio.create_subprocess_exec(
        str(DENO),
        "run",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        "--allow-env",
        "index.ts",
        cwd=checked_function,
        env={
            **deno_env(),
            "DENO_SERVE_ADDRESS": f"tcp:127.0.0.1:{port}",
            "SUPABASE_URL": postgrest.base_url,
            "SUPABASE_ANON_KEY": anon_key,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/functions/v1/flow-action"

    async def listening() -> bool:
        if proc.returncode is not None:
            raise AssertionError(f"deno exited with {proc.returncode}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            return False
        writer.close()
        return True

    try:
        try:
            await eventually(listening, timeout=60, what="the function listening", interval=0.1)
        except AssertionError as exc:
            out = await proc.stdout.read() if proc.stdout else b""
            pytest.fail(f"the function did not start ({exc}):\n{out.decode(errors='replace')}")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()


async def post(url: str, body: Any, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def user_token(user_id: str, ttl: int = 3600) -> str:
    return mint_token(SECRET, user_id, ttl)


async def conversation(db: asyncpg.Connection, conversation_id: str) -> asyncpg.Record:
    row = await db.fetchrow(
        "select flow_state, awaiting_role::text, chat_status::text,"
        " (select count(*) from public.messages m where m.conversation_id = c.id) as messages"
        " from public.conversations c where id = $1",
        conversation_id,
    )
    assert row is not None
    return row


async def test_a_flow_step_over_http_changes_the_conversation(
    edge_function: str, postgrest: PostgrestStandIn, db: asyncpg.Connection
) -> None:
    """Ava confirms the bid through the edge function with her token: the
    answer is the conversation in work_in_progress, the row and its system
    message are in the database, and the RPC ran as `authenticated` with her
    claims."""
    status, body = await post(
        edge_function, {"action": "confirm", "conversation_id": BID_CONVERSATION}, user_token(AVA)
    )
    assert status == 200, body
    assert body["conversation"]["flow_state"] == "work_in_progress"
    assert body["conversation"]["chat_status"] == "active"
    row = await conversation(db, BID_CONVERSATION)
    assert (row["flow_state"], row["awaiting_role"], row["chat_status"]) == (
        "work_in_progress",
        "influencer",
        "active",
    )
    last = await db.fetchrow(
        "select content, sender_id::text from public.messages where conversation_id = $1"
        " order by seq desc limit 1",
        BID_CONVERSATION,
    )
    assert last is not None
    assert (last["content"], last["sender_id"]) == (
        "The brand owner confirmed the bid. Work can start.",
        AVA,
    )
    assert postgrest.calls == [
        (
            "authenticated",
            "apply_flow_action",
            {"p_conversation_id": BID_CONVERSATION, "p_action": "confirm"},
        )
    ]


async def test_starting_a_campaign_conversation_over_http(
    edge_function: str, db: asyncpg.Connection
) -> None:
    """Ava connects with Mia about a campaign: a new campaign conversation
    awaiting Mia; asking again returns the same one."""
    campaign = "aaaaaaaa-0000-4000-8000-000000000002"
    body = {"action": "start_campaign", "campaign_id": campaign, "influencer_id": MIA}
    status, first = await post(edge_function, body, user_token(AVA))
    assert status == 200, first
    assert first["conversation"]["flow_state"] == "influencer_responding"
    assert first["conversation"]["influencer_id"] == MIA
    status, again = await post(edge_function, body, user_token(AVA))
    assert status == 200 and again["conversation"]["id"] == first["conversation"]["id"]
    count = await db.fetchval(
        "select count(*) from public.conversations where campaign_id = $1 and influencer_id = $2",
        campaign,
        MIA,
    )
    assert count == 1


@pytest.mark.parametrize(
    ("who", "body", "status", "code", "message"),
    [
        (
            LEO,
            {"action": "confirm", "conversation_id": BID_CONVERSATION},
            403,
            "forbidden",
            'action "confirm" is for the brand_owner; you are the influencer',
        ),
        (
            MIA,
            {"action": "confirm", "conversation_id": BID_CONVERSATION},
            404,
            "not_found",
            f"conversation {BID_CONVERSATION} not found",
        ),
        (
            AVA,
            {"action": "approve_work", "conversation_id": BID_CONVERSATION},
            409,
            "illegal_transition",
            'action "approve_work" is not possible in state "brand_owner_confirming"',
        ),
        (
            LEO,
            {"action": "start_bid", "bid_id": "bbbbbbbb-0000-4000-8000-000000000001"},
            404,
            "not_found",
            "bid bbbbbbbb-0000-4000-8000-000000000001 not found",
        ),
    ],
    ids=["wrong-role", "not-a-participant", "not-now", "influencer-starts-bid"],
)
async def test_a_refused_actor_gets_the_right_status_and_nothing_changes(
    edge_function: str,
    db: asyncpg.Connection,
    who: str,
    body: dict[str, str],
    status: int,
    code: str,
    message: str,
) -> None:
    """A step the flow refuses answers with its status and the database's
    reason, and writes nothing."""
    before = await conversation(db, BID_CONVERSATION)
    got_status, got = await post(edge_function, body, user_token(who))
    assert (got_status, got) == (status, {"error": {"code": code, "message": message}})
    assert await conversation(db, BID_CONVERSATION) == before


async def test_a_closed_conversation_is_a_conflict(
    edge_function: str, db: asyncpg.Connection
) -> None:
    """Cancelling a campaign then acting again: the cancel succeeds, the next
    step is refused as not possible in `cancelled`."""
    status, body = await post(
        edge_function,
        {"action": "cancel", "conversation_id": CAMPAIGN_CONVERSATION},
        user_token(AVA),
    )
    assert status == 200 and body["conversation"]["chat_status"] == "closed", body
    status, body = await post(
        edge_function,
        {"action": "submit_work", "conversation_id": CAMPAIGN_CONVERSATION},
        user_token(LEO),
    )
    assert status == 409 and body["error"]["code"] == "illegal_transition", body


async def test_tokens_postgrest_refuses_are_unauthorized(
    edge_function: str, db: asyncpg.Connection
) -> None:
    """An expired token or one signed with another secret is 401 from the
    function (PostgREST refused it), and nothing changes."""
    before = await conversation(db, BID_CONVERSATION)
    body = {"action": "confirm", "conversation_id": BID_CONVERSATION}
    expired = mint_token(SECRET, AVA, ttl=-120)
    forged = mint_token("another-secret-that-is-32-characters-long", AVA)
    for token in (expired, forged):
        status, answer = await post(edge_function, body, token)
        assert status == 401 and answer["error"]["code"] == "unauthorized", answer
    status, answer = await post(edge_function, body, None)
    assert (status, answer["error"]["code"]) == (401, "unauthorized")
    assert await conversation(db, BID_CONVERSATION) == before


async def test_bad_requests_never_reach_the_database(
    edge_function: str, postgrest: PostgrestStandIn
) -> None:
    """Malformed bodies are answered by the function itself with 400."""
    token = user_token(AVA)
    cases = [
        ({"action": "Confirm!", "conversation_id": BID_CONVERSATION}, "invalid_action"),
        ({"action": "confirm", "conversation_id": "c0000000"}, "invalid_field"),
        ({"action": "start_bid"}, "invalid_field"),
    ]
    for body, code in cases:
        status, answer = await post(edge_function, body, token)
        assert (status, answer["error"]["code"]) == (400, code), answer
    assert postgrest.calls == []
