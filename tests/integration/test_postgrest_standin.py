"""The PostgREST stand-in answers as PostgREST does on the paths the edge
function depends on: statuses, error bodies and headers, and the role and
claims the function runs with."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import jwt

from bridge.auth import mint_token
from tests.support.demo import AVA, BID_CONVERSATION, LEO
from tests.support.postgrest_standin import SECRET, PostgrestStandIn, status_for_sqlstate


async def rpc(
    standin: PostgrestStandIn,
    function: str,
    body: Any,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{standin.base_url}/rest/v1/rpc/{function}",
            data=data,
            headers={"Content-Type": "application/json", **sent},
        ) as response,
    ):
        text = await response.text()
        return response.status, dict(response.headers), json.loads(text) if text else None


def test_status_mapping_follows_postgrest() -> None:
    """SQLSTATEs map to PostgREST's statuses, e.g. P0001 400, P0002 500,
    42501 403 signed in and 401 anonymous, unique violation 409."""
    assert status_for_sqlstate("P0001", "x", True) == 400
    assert status_for_sqlstate("P0002", "x", True) == 500
    assert status_for_sqlstate("42501", "x", True) == 403
    assert status_for_sqlstate("42501", "x", False) == 401
    assert status_for_sqlstate("23505", "x", True) == 409
    assert status_for_sqlstate("23514", "x", True) == 400
    assert status_for_sqlstate("22023", 'role "x" does not exist', True) == 401
    assert status_for_sqlstate("PT402", "x", True) == 402
    assert status_for_sqlstate("08006", "x", True) == 503


async def test_a_call_runs_as_the_token_s_user_in_one_transaction(
    postgrest: PostgrestStandIn,
) -> None:
    """A scalar function sees the role and claims PostgREST would set."""
    status, _, body = await rpc(
        postgrest,
        "mark_conversation_read",
        {"p_conversation_id": BID_CONVERSATION},
        mint_token(SECRET, AVA),
    )
    assert (status, body) == (200, 1)  # Leo's one unread message to Ava
    assert postgrest.calls == [
        ("authenticated", "mark_conversation_read", {"p_conversation_id": BID_CONVERSATION})
    ]


async def test_database_errors_keep_postgres_fields(postgrest: PostgrestStandIn) -> None:
    """A refused flow step is 403 with the SQLSTATE, message, details and
    hint fields, as PostgREST sends them."""
    status, headers, body = await rpc(
        postgrest,
        "apply_flow_action",
        {"p_conversation_id": BID_CONVERSATION, "p_action": "confirm"},
        mint_token(SECRET, LEO),
    )
    assert status == 403
    assert body == {
        "code": "42501",
        "details": None,
        "hint": None,
        "message": 'action "confirm" is for the brand_owner; you are the influencer',
    }
    assert headers["Proxy-Status"] == "PostgREST; error=42501"


async def test_anonymous_callers_get_401_for_missing_privileges(
    postgrest: PostgrestStandIn,
) -> None:
    """Without a token the call runs as anon, which may not execute the flow
    functions: 401 with `WWW-Authenticate: Bearer`."""
    status, headers, body = await rpc(
        postgrest, "apply_flow_action", {"p_conversation_id": BID_CONVERSATION, "p_action": "x"}
    )
    assert (status, body["code"]) == (401, "42501")
    assert headers["WWW-Authenticate"] == "Bearer"
    assert postgrest.calls[0][0] == "anon"


async def test_refused_tokens(postgrest: PostgrestStandIn) -> None:
    """Expired: 401 PGRST303 "JWT expired"; wrong secret: 401 PGRST301; both
    with an invalid_token WWW-Authenticate header; nothing is called."""
    args = {"p_conversation_id": BID_CONVERSATION}
    expired = mint_token(SECRET, AVA, ttl=-120)
    status, headers, body = await rpc(postgrest, "mark_conversation_read", args, expired)
    assert (status, body["code"], body["message"]) == (401, "PGRST303", "JWT expired")
    assert headers["WWW-Authenticate"].startswith('Bearer error="invalid_token"')
    forged = jwt.encode(
        {"sub": AVA, "role": "authenticated", "exp": int(time.time()) + 60},
        "another-secret-of-at-least-32-characters",
        "HS256",
    )
    status, _, body = await rpc(postgrest, "mark_conversation_read", args, forged)
    assert (status, body["code"]) == (401, "PGRST301")
    status, _, body = await rpc(postgrest, "mark_conversation_read", args, "abc.def")
    assert (status, body["message"]) == (401, "Expected 3 parts in JWT; got 2")
    assert postgrest.calls == []


async def test_unknown_functions_and_arguments_are_404(postgrest: PostgrestStandIn) -> None:
    """A function name or argument names the schema does not have: 404
    PGRST202, naming what was searched for."""
    token = mint_token(SECRET, AVA)
    status, _, body = await rpc(postgrest, "apply_flow_step", {"p_action": "x"}, token)
    assert (status, body["code"]) == (404, "PGRST202")
    assert body["message"] == (
        "Could not find the function public.apply_flow_step(p_action) in the schema cache"
    )
    status, _, body = await rpc(
        postgrest, "apply_flow_action", {"conversation_id": BID_CONVERSATION}, token
    )
    assert (status, body["code"]) == (404, "PGRST202")


async def test_bad_bodies_and_schemas(postgrest: PostgrestStandIn) -> None:
    """Invalid JSON is 400 PGRST102; a Content-Profile naming a schema that is
    not exposed is 406 PGRST106."""
    token = mint_token(SECRET, AVA)
    status, _, body = await rpc(postgrest, "mark_conversation_read", b"{nope", token)
    assert (status, body["code"]) == (400, "PGRST102")
    status, _, body = await rpc(
        postgrest,
        "mark_conversation_read",
        {"p_conversation_id": BID_CONVERSATION},
        token,
        {"Content-Profile": "bridge"},
    )
    assert (status, body["code"]) == (406, "PGRST106")
