"""A grant missing on a path RLS allows: the client gets a clear 503 without
the database's words, the operator one log line per kind, a counter and a
degraded /healthz; RLS refusals stay the client's 403 and are not counted."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.support.database import count_messages
from tests.support.demo import BID_CONVERSATION, CAMPAIGN_CONVERSATION, LEO, MIA
from tests.support.harness import Harness

LOG_LINE = "database refused a request RLS allows: a grant is missing"


async def test_missing_grant_is_reported_once_counted_and_degrades_health(
    bridge: Harness, db: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """With SELECT on messages revoked (a project without default grants and
    a migration that forgot one), three sends over REST and the socket fail
    with `unavailable`; the log has one line naming SQLSTATE and table; the
    counter says 3; /healthz answers 200 "degraded" with the reason."""
    await db.execute("revoke select on public.messages from authenticated")
    caplog.set_level(logging.ERROR, logger="bridge.permissions")
    body = {"conversation_id": CAMPAIGN_CONVERSATION, "message": "hi"}
    for _ in range(2):
        status, reply = await bridge.request("POST", "/api/messages/send", LEO, json=body)
        assert status == 503 and reply["error"]["code"] == "unavailable"
        assert "permission denied" not in reply["error"]["message"]
    leo = await bridge.client(LEO)
    ack = await leo.call("send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "hi"})
    assert ack["ok"] is False and ack["error"]["code"] == "unavailable"

    lines = [r for r in caplog.records if r.getMessage() == LOG_LINE]
    assert len(lines) == 1
    assert (lines[0].sqlstate, lines[0].kind, lines[0].db_object) == (
        "42501",
        "table",
        "messages",
    )
    status, health = await bridge.request("GET", "/healthz")
    assert status == 200 and health["status"] == "degraded"
    assert health["counters"]["permission_errors"] == 3
    assert any("table messages" in p for p in health["problems"])
    assert await count_messages(db, "hi") == 0


async def test_rls_refusals_stay_the_clients_and_leave_health_alone(bridge: Harness) -> None:
    """Mia writing into Ava and Leo's conversation is her fault: 404 (as for
    a conversation that does not exist), not counted, /healthz stays ok."""
    status, reply = await bridge.request(
        "POST",
        "/api/messages/send",
        MIA,
        json={"conversation_id": BID_CONVERSATION, "message": "hi"},
    )
    assert status == 404 and reply["error"]["code"] == "not_found"
    status, health = await bridge.request("GET", "/healthz")
    assert status == 200 and health["status"] == "ok" and health["problems"] == []
    assert "permission_errors" not in health["counters"]
