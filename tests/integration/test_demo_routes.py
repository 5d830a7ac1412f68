"""The demo page's routes over HTTP: present outside production when the
embedded default or `server.dev` is on, absent otherwise; its dev-only
sign-in and flow endpoints refuse bad input clearly and change nothing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.support.demo import AVA, BID_CONVERSATION, LEO
from tests.support.harness import Client, Harness, running, settings_for

DEMO_PATHS = ("/", "/demo/static/demo.js", "/demo/api/users")


def _server(settings: Any, **changes: Any) -> Any:
    return dataclasses.replace(settings, server=dataclasses.replace(settings.server, **changes))


@pytest.fixture
async def demo(db_dsn: str) -> AsyncIterator[Harness]:
    """The daemon with `server.dev` on (a database URL is set, as in the suite)."""
    settings = settings_for(db_dsn)
    async with running(_server(settings, dev=True)) as harness:
        yield harness


async def test_production_has_no_demo_page_and_no_token_endpoint(db_dsn: str) -> None:
    """With production settings the page, its files and the token endpoint do
    not exist: 404 even for a signed-in caller, and no token is handed out to
    anyone; the REST API works as before."""
    settings = _server(settings_for(db_dsn), environment="production")
    async with running(settings) as bridge:
        for path in DEMO_PATHS:
            status, body = await bridge.request("GET", path, LEO)
            assert status == 404, (path, body)
        status, body = await bridge.request("POST", "/demo/api/token", LEO, json={"user_id": LEO})
        assert status == 404 and "access_token" not in str(body)
        status, body = await bridge.request("POST", "/demo/api/token", json={"user_id": LEO})
        assert status == 401 and "access_token" not in str(body)
        status, _ = await bridge.request("GET", "/api/conversations", LEO)
        assert status == 200


async def test_without_dev_and_with_a_database_url_there_is_no_demo(bridge: Harness) -> None:
    """A bridge on a configured database (not embedded) without `server.dev`
    serves no demo page: `/` stays the API's 401 / 404."""
    status, _ = await bridge.request("GET", "/")
    assert status == 401
    status, _ = await bridge.request("POST", "/demo/api/token", LEO, json={"user_id": LEO})
    assert status == 404


async def test_the_page_and_its_files_are_served_without_a_token(demo: Harness) -> None:
    """A browser opening / gets the HTML page; its script, stylesheet and
    the vendored socket.io-client come as JavaScript / CSS; paths outside
    the static folder are not served."""
    async with demo.http.get(demo.url + "/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        assert "Pick a demo user" in await resp.text()
    for path, kind in (
        ("/demo/static/demo.js", "javascript"),
        ("/demo/static/demo.css", "text/css"),
        ("/demo/static/vendor/socket.io.esm.min.js", "javascript"),
    ):
        async with demo.http.get(demo.url + path) as resp:
            assert resp.status == 200, path
            assert kind in resp.content_type, (path, resp.content_type)
    async with demo.http.get(demo.url + "/demo/static/vendor/socket.io.esm.min.js") as resp:
        assert "Socket.IO v4.8.4" in (await resp.text())[:200]
    for path in ("/demo/static/../routes.py", "/demo/static/%2e%2e/routes.py", "/demo/static/nope"):
        status, body = await demo.request("GET", path)
        # 404, or 401 where the client's URL normalising led outside /demo/static/.
        assert status in (401, 404) and "DemoApi" not in str(body), path


async def test_the_token_endpoint_signs_in_a_demo_user(demo: Harness) -> None:
    """The users list names the seed's people; the token handed out for Leo
    opens a socket as Leo and reads Leo's chat list over REST."""
    status, body = await demo.request("GET", "/demo/api/users")
    assert status == 200
    names = {u["name"]: u for u in body["users"]}
    assert {"Ava Brandt", "Leo Creator", "Mia Maker"} <= set(names)
    assert names["Leo Creator"]["profile_image_url"].endswith("/leo.jpg")
    status, session = await demo.request("POST", "/demo/api/token", json={"user_id": LEO})
    assert status == 200 and session["token_type"] == "bearer"
    client = Client(demo.url)
    demo.clients.append(client)
    await client.connect(auth={"token": session["access_token"]})
    ack = await client.call("join", LEO)
    assert ack["ok"] and ack["room"] == f"user_{LEO}"
    status, chats = await demo.request("GET", "/api/conversations", bearer=session["access_token"])
    assert status == 200 and len(chats["conversations"]) == 2


async def test_the_token_endpoint_refuses_bad_input(demo: Harness) -> None:
    """Not a UUID, no body, or someone without a chat profile: a clear 4xx
    that names the problem, and no token."""
    cases: list[tuple[Any, int, str]] = [
        ({"user_id": "leo"}, 400, "invalid_field"),
        ({}, 400, "invalid_field"),
        ([LEO], 400, "invalid_payload"),
        ({"user_id": "99999999-9999-4999-8999-999999999999"}, 404, "not_found"),
    ]
    for body, status, code in cases:
        got, answer = await demo.request("POST", "/demo/api/token", json=body)
        assert (got, answer["error"]["code"]) == (status, code), body
        assert "access_token" not in answer


async def test_flow_action_steps_as_the_signed_in_user(demo: Harness, db: Any) -> None:
    """The flow endpoint runs the step as the caller: Leo may not confirm
    the bid (the brand owner's step) and nothing changes; without a token it
    is refused; Ava confirms it and both hear the system message."""
    leo = await demo.client(LEO)
    await leo.call("join", LEO)
    status, body = await demo.request(
        "POST",
        "/demo/api/flow-action",
        LEO,
        json={"action": "confirm", "conversation_id": BID_CONVERSATION},
    )
    assert status == 403 and "brand_owner" in body["error"]["message"]
    status, _ = await demo.request(
        "POST", "/demo/api/flow-action", json={"action": "confirm", "conversation_id": AVA}
    )
    assert status == 401
    status, body = await demo.request(
        "POST", "/demo/api/flow-action", AVA, json={"action": "confirm", "conversation_id": "x"}
    )
    assert status == 400 and body["error"]["field"] == "conversation_id"
    state = await db.fetchval(
        "select flow_state from public.conversations where id = $1", BID_CONVERSATION
    )
    assert state == "brand_owner_confirming"

    status, body = await demo.request(
        "POST",
        "/demo/api/flow-action",
        AVA,
        json={"action": "confirm", "conversation_id": BID_CONVERSATION},
    )
    assert status == 200 and body["conversation"]["flow_state"] == "work_in_progress"
    message = await leo.wait_for("new_message", lambda p: p["message"]["message_type"] == "system")
    assert message["message"]["content"].startswith("The brand owner confirmed the bid")


async def test_campaigns_are_the_signed_in_brand_owners_own(demo: Harness) -> None:
    """Ava's two campaigns for Ava; none for Leo (he owns none, RLS shows
    him only what he is in conversation about, and he is no owner); no
    token, no answer."""
    status, body = await demo.request("GET", "/demo/api/campaigns", AVA)
    assert status == 200
    assert {c["title"] for c in body["campaigns"]} == {"Summer Glow Launch", "Autumn Collection"}
    status, body = await demo.request("GET", "/demo/api/campaigns", LEO)
    assert (status, body) == (200, {"campaigns": []})
    status, _ = await demo.request("GET", "/demo/api/campaigns")
    assert status == 401


def test_a_built_package_ships_the_demo_page(tmp_path: Path) -> None:
    """What a non-editable install gets (setuptools' build of the package):
    the page, its script, stylesheet and the vendored socket.io-client."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import setup; setup()",
            "-q",
            "build_py",
            "-d",
            str(tmp_path),
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    static = tmp_path / "bridge" / "demo" / "static"
    for name in ("index.html", "demo.js", "demo.css", "vendor/socket.io.esm.min.js"):
        assert (static / name).is_file(), name
    assert (tmp_path / "bridge" / "demo" / "routes.py").is_file()
