"""GET /metrics as Prometheus scrapes it: the figures move when real
traffic flows (sockets sending, a push to the FCM stand-in, a refused
connect), the outbox lag shows while nobody relays, and a metrics token
keeps out scrapers without it."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import asyncpg
import pytest
import socketio
from prometheus_client.parser import text_string_to_metric_families

from bridge.config import MetricsSettings, RedisSettings
from bridge.locks import RELAY_LEASE
from tests.support.database import send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.fcm_standin import FcmStandIn
from tests.support.harness import Harness, running, settings_for, token
from tests.support.push import register
from tests.support.waits import eventually

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(bridge: Harness, bearer: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with bridge.http.get(f"{bridge.url}/metrics", headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for a series not there yet (a counter never moved)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def has(samples: Samples, name: str, **labels: str) -> bool:
    return (name, frozenset(labels.items())) in samples


async def test_figures_move_when_traffic_flows(pushing: Harness, fcm: FcmStandIn) -> None:
    """Ava and Leo connect, a stranger's token is refused, Ava sends three
    messages over her socket that Leo receives, one bad event is answered,
    Leo's phone gets pushes and his dead tablet token is switched off: each
    of these shows on /metrics as an operator would chart it, and /healthz
    still reports its counters."""
    before = await scrape(pushing)
    await register(pushing, LEO, "leo-phone")
    await register(pushing, LEO, "dead-leo-tablet")
    ava = await pushing.client(AVA)
    leo = await pushing.client(LEO)
    refused = pushing.unconnected()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await refused.connect(auth={"token": token(LEO, secret="not-the-project-secret" * 2)})
    assert refused.connect_errors[0]["data"]["code"] == "invalid_signature"
    bad = await ava.call("join_conversation", {"conversationId": "not-a-uuid"})
    assert bad["ok"] is False
    for n in range(3):
        ack = await ava.call(
            "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": f"hi {n}"}
        )
        assert ack["ok"], ack
    await leo.wait_count("new_message", 3)
    await eventually(lambda: len(fcm.messages_to("leo-phone")) >= 1)

    async def pushes_recorded() -> Samples | None:
        now = await scrape(pushing)
        dead = value(now, "bridge_push_sends_total", outcome="dead", reason="UNREGISTERED")
        # A job is counted once its outcome is recorded, after FCM's answers.
        if dead >= 1 and value(now, "bridge_push_jobs_total", status="sent", reason="") >= 1:
            return now
        return None

    after: Samples = await eventually(pushes_recorded, what="the pushes recorded", interval=0.1)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert value(after, "bridge_sockets_connected") == 2
    assert moved("bridge_socket_connects_total", result="accepted") == 2
    assert moved("bridge_socket_connects_total", result="invalid_signature") == 1
    assert moved("bridge_client_events_total", event="send_message", result="ok") == 3
    assert moved("bridge_client_events_total", event="join_conversation", result="invalid_field")
    assert moved("bridge_emits_total", event="new_message") == 3
    assert moved("bridge_emits_total", event="unread_count_updated") == 3
    assert moved("bridge_commit_to_emit_seconds_count") == 3
    assert value(after, "bridge_commit_to_emit_seconds_bucket", le="+Inf") >= 3
    assert moved("bridge_outbox_batch_changes_count", reader="relay") >= 1
    assert moved("bridge_push_jobs_total", status="sent", reason="") >= 1
    assert moved("bridge_push_sends_total", outcome="sent", reason="") >= 1
    assert moved("bridge_push_sends_total", outcome="dead", reason="UNREGISTERED") == 1
    assert value(after, "bridge_pushes_queued_total") >= 1  # the /healthz counters too
    assert value(after, "bridge_database_up") == 1
    assert value(after, "bridge_doorbell_up", kind="listen") == 1
    assert value(after, "bridge_doorbell_state", kind="listen", state="listening") == 1
    assert value(after, "bridge_relay_lease_held") == 1
    assert value(after, "bridge_db_pool_max_connections") == pushing.app.settings.database.pool_size
    assert has(after, "bridge_db_pool_connections", state="in_use")
    assert has(after, "bridge_outbox_lag_seconds", reader="relay")
    assert not has(after, "bridge_redis_up")  # no Redis configured: no figure

    status, health = await pushing.request("GET", "/healthz")
    assert status == 200 and health["status"] == "ok"
    assert health["counters"]["connects"] == value(after, "bridge_connects_total")
    assert health["counters"]["connects_refused"] == value(after, "bridge_connects_refused_total")


async def test_outbox_lag_shows_while_no_instance_relays(
    db_dsn: str, db: asyncpg.Connection
) -> None:
    """While another instance holds the relay lease and relays nothing (a
    stuck leader), a change written meanwhile shows as pending with a
    growing lag and this instance as standby; once the lease is free the
    bridge takes over, relays it and the lag is gone."""
    holder = await asyncpg.connect(db_dsn)
    assert await holder.fetchval("select pg_try_advisory_lock($1)", RELAY_LEASE)
    async with running(settings_for(db_dsn)) as bridge:
        try:
            await send_as(db, AVA, CAMPAIGN_CONVERSATION, "while nobody relays")
            first = await scrape(bridge)
            assert value(first, "bridge_outbox_pending_changes", reader="relay") == 1
            assert value(first, "bridge_relay_lease_held") == 0
            await asyncio.sleep(0.2)
            later = await scrape(bridge)
            assert value(later, "bridge_outbox_lag_seconds", reader="relay") > value(
                first, "bridge_outbox_lag_seconds", reader="relay"
            )
        finally:
            await holder.close()

        async def drained() -> Samples | None:
            now = await scrape(bridge)
            return now if value(now, "bridge_outbox_pending_changes", reader="relay") == 0 else None

        done: Samples = await eventually(drained, what="the outbox drained", interval=0.2)
        assert value(done, "bridge_outbox_lag_seconds", reader="relay") == 0
        assert value(done, "bridge_relay_lease_held") == 1
        assert value(done, "bridge_outbox_batch_changes_count", reader="relay") >= 1


async def test_metrics_token_and_redis_figures(db_dsn: str, redis_url: str) -> None:
    """With `metrics.token` set, a scraper without it gets 401 and one with
    it the figures; with Redis, its reachability and each instance's own
    outbox reader (the tail) are on the page."""
    settings = dataclasses.replace(
        settings_for(db_dsn),
        metrics=MetricsSettings(token="scrape-me"),
        redis=RedisSettings(url=redis_url),
    )
    async with running(settings) as bridge:
        async with bridge.http.get(f"{bridge.url}/metrics") as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"
        headers: dict[str, Any] = {"Authorization": "Bearer wrong"}
        async with bridge.http.get(f"{bridge.url}/metrics", headers=headers) as resp:
            assert resp.status == 401
        ava = await bridge.client(AVA)
        ack = await ava.call(
            "send_message", {"conversationId": CAMPAIGN_CONVERSATION, "message": "tail"}
        )
        assert ack["ok"]
        await ava.wait_for("new_message")
        samples = await scrape(bridge, bearer="scrape-me")
        assert value(samples, "bridge_redis_up") == 1
        assert has(samples, "bridge_outbox_lag_seconds", reader="tail")
        assert value(samples, "bridge_emits_total", event="new_message") >= 1
        assert value(samples, "bridge_outbox_batch_changes_count", reader="tail") >= 1
