"""The database goes away and comes back: clients get a retryable answer,
the log gets one line each way instead of a traceback per request, /healthz
says so, and deliveries resume once it is back."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import pytest

from bridge.embedded import EmbeddedPostgres
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import running, settings_for
from tests.support.waits import eventually


async def test_outage_is_retryable_quiet_and_healed(
    own_cluster: EmbeddedPostgres, caplog: pytest.LogCaptureFixture
) -> None:
    """Postgres stops: socket sends are acked `unavailable` and retryable,
    REST answers 503 with Retry-After, /healthz says degraded; ten socket
    calls and five REST calls leave one warning and no traceback. Postgres
    starts again: /healthz is ok, "back" is logged once, and Leo's next
    message reaches Ava."""
    async with running(settings_for(own_cluster.dsn)) as bridge:
        ava = await bridge.client(AVA)
        leo = await bridge.client(LEO)
        send = {"conversationId": CAMPAIGN_CONVERSATION, "message": "before"}
        assert (await leo.call("send_message", send))["ok"]
        await ava.wait_for("new_message", lambda d: d["message"]["content"] == "before")
        caplog.clear()
        with caplog.at_level(logging.INFO):
            await asyncio.to_thread(own_cluster.stop)
            for i in range(10):
                ack = await leo.call("send_message", {**send, "message": f"during {i}"})
                assert ack["ok"] is False
                assert ack["error"]["code"] == "unavailable" and ack["error"]["retryable"]
            for _ in range(5):
                status, body = await bridge.request(
                    "POST",
                    "/api/messages/send",
                    LEO,
                    json={"conversation_id": CAMPAIGN_CONVERSATION, "message": "rest"},
                )
                assert status == 503 and body["error"]["code"] == "unavailable"
            async with bridge.http.post(f"{bridge.url}/api/messages/mark-seen") as resp:
                assert resp.status in (401, 503)
            status, health = await bridge.request("GET", "/healthz")
            assert status == 503 and health["status"] == "degraded"
            assert any("unreachable" in p for p in health["problems"])
            gone = [r for r in caplog.records if r.getMessage() == "database unreachable"]
            assert len(gone) == 1
            assert [r for r in caplog.records if r.exc_info] == []

            await asyncio.to_thread(own_cluster.start)

            async def healthy() -> tuple[int, Any] | None:
                status, health = await bridge.request("GET", "/healthz")
                return (status, health) if status == 200 else None

            status, health = await eventually(healthy, what="healthy again", interval=0.1)
            assert status == 200 and health["status"] == "ok"
            assert (await leo.call("send_message", {**send, "message": "after"}))["ok"]
            await ava.wait_for("new_message", lambda d: d["message"]["content"] == "after")
            back = [r for r in caplog.records if r.getMessage() == "database back"]
            assert len(back) == 1
            assert [r for r in caplog.records if r.exc_info] == []


async def test_sessions_ended_by_the_server_cost_no_send(db_dsn: str) -> None:
    """While the bridge idles, the database ends every session of its
    (`pg_terminate_backend`, as an administrator or a failover would): the
    connections the send path keeps between sends are among them. The
    next send is acked ok on its first try and reaches the receiver."""
    async with running(settings_for(db_dsn)) as bridge:
        ava = await bridge.client(AVA)
        leo = await bridge.client(LEO)
        send = {"conversationId": CAMPAIGN_CONVERSATION, "message": "before"}
        for i in range(3):  # the send path has its connections by now
            assert (await leo.call("send_message", {**send, "message": f"before {i}"}))["ok"]
        admin = await asyncpg.connect(db_dsn)
        try:
            ended = await admin.fetchval(
                "select array_agg(pid) from pg_stat_activity"
                " where datname = current_database() and pid <> pg_backend_pid()"
                " and backend_type = 'client backend'"
            )
            assert len(ended) >= 2
            await admin.execute("select pg_terminate_backend(p) from unnest($1::int[]) p", ended)

            async def all_gone() -> bool:
                left = await admin.fetchval(
                    "select count(*) from pg_stat_activity where pid = any($1::int[])", ended
                )
                return left == 0 or None  # type: ignore[return-value]

            await eventually(all_gone, what="the old sessions gone", interval=0.05)

            async def reconnected() -> bool:  # so the daemon has read the ends
                new = await admin.fetchval(
                    "select count(*) from pg_stat_activity where datname = current_database()"
                    " and pid <> pg_backend_pid() and backend_type = 'client backend'"
                    " and not pid = any($1::int[])",
                    ended,
                )
                return new > 0 or None  # type: ignore[return-value]

            await eventually(reconnected, what="the daemon back on the database", interval=0.05)
        finally:
            await admin.close()
        ack = await leo.call("send_message", {**send, "message": "after"})
        assert ack["ok"], ack
        await ava.wait_for("new_message", lambda d: d["message"]["content"] == "after")
