"""Pushes through the real firebase-admin SDK to a local FCM v1 endpoint
that behaves like FCM: what is pushed, to whom, when it is held back, what
happens to dead tokens, retries and giving up, and no push lost or doubled
across a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.support.database import place_bid
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, CAMPAIGN_SUMMER, LEO, MIA
from tests.support.fcm_standin import FcmStandIn
from tests.support.harness import Harness, settings_for, started
from tests.support.push import push_settings, register, send
from tests.support.waits import eventually


async def test_new_message_is_pushed_to_every_device_of_the_receiver(
    pushing: Harness, fcm: FcmStandIn
) -> None:
    """Leo's phone and tablet both get Ava's message: her name, the text,
    string data with the ids, grouped by conversation, badge = his total
    unread; his notifications room gets the same as an in-app notification."""
    await register(pushing, LEO, "leo-phone", "android")
    await register(pushing, LEO, "leo-tablet", "ios")
    leo = await pushing.client(LEO)
    await leo.call("request_global_notifications", LEO)
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "Can you send the draft?")
    await eventually(lambda: len(fcm.sent) == 2)
    phone = fcm.messages_to("leo-phone")[0]
    assert phone["notification"] == {"title": "Ava Brandt", "body": "Can you send the draft?"}
    assert phone["data"]["conversation_id"] == CAMPAIGN_CONVERSATION
    assert phone["data"]["type"] == "new_message"
    assert all(isinstance(v, str) for v in phone["data"].values())
    assert phone["android"]["notification"]["tag"] == CAMPAIGN_CONVERSATION
    assert phone["android"]["notification"]["notification_count"] == 2
    tablet = fcm.messages_to("leo-tablet")[0]
    assert tablet["apns"]["payload"]["aps"]["thread-id"] == CAMPAIGN_CONVERSATION
    assert tablet["apns"]["payload"]["aps"]["badge"] == 2
    note = await leo.wait_for("notification")
    assert note["title"] == "Ava Brandt" and note["type"] == "message"
    assert not fcm.messages_to("ava")  # the sender is never pushed


async def test_media_messages_get_a_fitting_text(pushing: Harness, fcm: FcmStandIn) -> None:
    """An image shows as "📷 Image", a file as "📎 File"."""
    await register(pushing, LEO, "leo-phone")
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "", media_url="https://x/y.png")
    await eventually(lambda: len(fcm.sent) == 1)
    assert fcm.sent[0]["notification"]["body"] == "📷 Image"


async def test_flow_steps_notify_the_other_side(
    pushing: Harness, fcm: FcmStandIn, db: asyncpg.Connection
) -> None:
    """Connection request to the influencer, her answer to the brand owner,
    the brand owner's steps and the review result back to her."""
    await register(pushing, AVA, "ava-phone")
    await register(pushing, MIA, "mia-phone")

    async def act(user: str, sql: str, *args: Any) -> Any:
        async with acting_as(db, user_claims(user)):
            return await db.fetchval(sql, *args)

    conversation = await act(
        AVA, "select id from public.start_campaign_conversation($1, $2)", CAMPAIGN_SUMMER, MIA
    )
    steps = [
        (MIA, "accept", "ava-phone"),
        (AVA, "confirm", "mia-phone"),
        (MIA, "submit_work", "ava-phone"),
        (AVA, "approve_work", "mia-phone"),
    ]
    await eventually(lambda: len(fcm.messages_to("mia-phone")) == 1)
    first = fcm.messages_to("mia-phone")[0]
    assert first["notification"]["body"] == "You have a new connection request"
    assert first["data"]["type"] == "flow_state"
    assert first["data"]["flow_state"] == "influencer_responding"
    for user, action, receiver in steps:
        before = len(fcm.messages_to(receiver))
        await act(
            user, "select flow_state from public.apply_flow_action($1, $2)", conversation, action
        )
        await eventually(lambda r=receiver, b=before: len(fcm.messages_to(r)) == b + 1)
    bodies = [m["notification"]["body"] for m in fcm.messages_to("ava-phone")]
    assert bodies == [
        "The influencer accepted the connection request",
        "Work was submitted for review",
    ]
    assert fcm.messages_to("mia-phone")[-1]["notification"]["body"] == (
        "The work was approved. Collaboration completed."
    )


async def test_no_push_while_the_conversation_is_open(pushing: Harness, fcm: FcmStandIn) -> None:
    """Leo has the conversation open: no push. In the background ("away")
    or after leaving it, pushes come again."""
    await register(pushing, LEO, "leo-phone")
    leo = await pushing.client(LEO)
    await leo.call("join_conversation", CAMPAIGN_CONVERSATION)
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "you are looking at this")
    await leo.wait_for("new_message")
    await asyncio.sleep(0.5)
    assert fcm.sent == []
    assert pushing.app.metrics.snapshot()["pushes_suppressed"] == 1
    await leo.call("user_status", {"userId": LEO, "status": "away"})
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "app in the background")
    await eventually(lambda: len(fcm.sent) == 1)
    await leo.call("user_status", {"userId": LEO, "status": "online"})
    await leo.call("leave_conversation", CAMPAIGN_CONVERSATION)
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "after leaving")
    await eventually(lambda: len(fcm.sent) == 2)


async def test_a_burst_is_one_push(db_dsn: str, fcm: FcmStandIn, tmp_path: Path) -> None:
    """Five quick messages while a push is cooling down become one more push
    that says how many there were."""
    bridge = await started(push_settings(db_dsn, fcm, tmp_path, cooldown=1.5))
    try:
        await register(bridge, LEO, "leo-phone")
        await send(bridge, AVA, CAMPAIGN_CONVERSATION, "first")
        await eventually(lambda: len(fcm.sent) == 1)
        for n in range(5):
            await send(bridge, AVA, CAMPAIGN_CONVERSATION, f"more {n}")
        await eventually(lambda: len(fcm.sent) == 2)
        await asyncio.sleep(2.0)
        assert len(fcm.sent) == 2
        assert fcm.sent[1]["notification"]["body"] == "5 new messages · more 4"
        assert fcm.sent[1]["data"]["merged"] == "5"
    finally:
        await bridge.stop()


async def test_dead_tokens_are_switched_off(
    pushing: Harness, fcm: FcmStandIn, db: asyncpg.Connection
) -> None:
    """UNREGISTERED, INVALID_ARGUMENT naming the token and SENDER_ID_MISMATCH
    switch the token off (with the reason); the live device still gets the
    push, and the next push goes to it alone."""
    for token in ("dead-1", "invalid-1", "mismatch-1", "leo-phone"):
        await register(pushing, LEO, token)
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "hello")
    await eventually(lambda: len(fcm.sent) == 1)
    await eventually(lambda: pushing.app.metrics.snapshot().get("tokens_deactivated") == 3)
    rows = await db.fetch(
        "select token, is_active, deactivated_reason from public.fcm_tokens order by token"
    )
    assert [tuple(r) for r in rows] == [
        ("dead-1", False, "UNREGISTERED"),
        ("invalid-1", False, "INVALID_ARGUMENT"),
        ("leo-phone", True, None),
        ("mismatch-1", False, "SENDER_ID_MISMATCH"),
    ]
    attempts = dict(fcm.attempts)
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "again")
    await eventually(lambda: len(fcm.sent) == 2)
    assert {t: fcm.attempts[t] - attempts.get(t, 0) for t in fcm.attempts} == {
        "dead-1": 0,
        "invalid-1": 0,
        "mismatch-1": 0,
        "leo-phone": 1,
    }
    # A device that registers again is switched back on.
    await register(pushing, LEO, "dead-1")
    assert await db.fetchval("select is_active from public.fcm_tokens where token = 'dead-1'")


async def test_quota_and_outages_are_retried(pushing: Harness, fcm: FcmStandIn) -> None:
    """429 with Retry-After (twice) and a passing 503 end in one delivery each."""
    await register(pushing, LEO, "busy2-phone")
    await register(pushing, LEO, "flaky1-tablet")
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "try again")
    await eventually(lambda: len(fcm.sent) == 2, timeout=20)
    assert fcm.attempts["busy2-phone"] == 3
    assert fcm.attempts["flaky1-tablet"] == 2
    assert len(fcm.messages_to("busy2-phone")) == 1
    assert pushing.app.metrics.snapshot()["push_retries"] >= 1


async def test_giving_up_after_the_last_attempt(
    pushing: Harness, fcm: FcmStandIn, db: asyncpg.Connection
) -> None:
    """A device that stays over quota is tried max_attempts times, then the
    job is failed with the reason; the token stays on (it is not dead)."""
    await register(pushing, LEO, "busy99-phone")
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "never arrives")
    await eventually(lambda: pushing.app.metrics.snapshot().get("pushes_failed") == 1, timeout=20)
    assert fcm.attempts["busy99-phone"] == 3
    job = await db.fetchrow("select status, last_error from bridge.push_jobs")
    assert job["status"] == "failed" and "gave up after 3 attempts" in job["last_error"]
    assert await db.fetchval("select is_active from public.fcm_tokens")


async def test_slow_fcm_does_not_delay_sockets(pushing: Harness, fcm: FcmStandIn) -> None:
    """With FCM taking seconds to answer, the socket event still arrives first."""
    await register(pushing, LEO, "leo-phone")
    fcm.delay = 2.0
    leo = await pushing.client(LEO)
    await send(pushing, AVA, CAMPAIGN_CONVERSATION, "fast lane")
    await leo.wait_for("new_message", timeout=1.5)
    assert fcm.sent == []
    await eventually(lambda: len(fcm.sent) == 1)


async def test_restart_neither_loses_nor_repeats_a_push(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """A push held back by the cooldown when the bridge stops is sent by the
    next bridge, once; pushes already sent are not sent again."""
    settings = push_settings(db_dsn, fcm, tmp_path, cooldown=1.0)
    first = await started(settings)
    await register(first, LEO, "leo-phone")
    await send(first, AVA, CAMPAIGN_CONVERSATION, "one")
    await eventually(lambda: len(fcm.sent) == 1)
    await send(first, AVA, CAMPAIGN_CONVERSATION, "two")
    pending = "select count(*) from bridge.push_jobs where status = 'pending'"

    async def held_back() -> bool:  # relayed, and held back by the cooldown
        return bool(await db.fetchval(pending) == 1)

    await eventually(held_back, what="one push held back")
    await first.stop()
    assert await db.fetchval(pending) == 1
    assert len(fcm.sent) == 1
    second = await started(settings)
    try:
        await eventually(lambda: len(fcm.sent) == 2)
        await asyncio.sleep(1.5)
        assert [m["notification"]["body"] for m in fcm.sent] == ["one", "two"]
    finally:
        await second.stop()


async def test_without_credentials_pushes_are_off(
    db_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No service account: the daemon runs and says pushes are off."""
    with caplog.at_level(logging.WARNING):
        bridge = await started(settings_for(db_dsn))
    try:
        assert "pushes are off" in caplog.text
        status, _ = await bridge.request("GET", "/healthz")
        assert status == 200
    finally:
        await bridge.stop()


async def test_tokens_never_reach_the_logs(
    pushing: Harness, fcm: FcmStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """Registering, pushing and switching off tokens logs none of them."""
    with caplog.at_level(logging.DEBUG):
        await register(pushing, LEO, "secret-token-abc123")
        await register(pushing, LEO, "dead-secret-xyz789")
        await send(pushing, AVA, CAMPAIGN_CONVERSATION, "hi")
        await eventually(lambda: len(fcm.sent) == 1)
        await eventually(lambda: pushing.app.metrics.snapshot().get("tokens_deactivated") == 1)
    assert "secret-token-abc123" not in caplog.text
    assert "dead-secret-xyz789" not in caplog.text


async def test_bid_connection_request_reaches_the_influencer(
    pushing: Harness, fcm: FcmStandIn, db: asyncpg.Connection
) -> None:
    """Ava connects with Leo about his bid: Leo is told of the request."""
    await register(pushing, LEO, "leo-phone")
    bid = await place_bid(db, LEO, AVA)
    async with acting_as(db, user_claims(AVA)):
        await db.execute("select public.start_bid_conversation($1)", bid)
    await eventually(lambda: len(fcm.sent) == 1)
    assert fcm.sent[0]["notification"]["body"] == "You have a new connection request"


async def test_unreachable_fcm_is_retried_then_given_up(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """With FCM gone from the network, sending is retried and then the job
    fails with the reason; the daemon and the sockets carry on."""
    bridge = await started(push_settings(db_dsn, fcm, tmp_path))
    try:
        await register(bridge, LEO, "leo-phone")
        fcm.stop()  # connection refused from now on (the OAuth token is not cached yet)
        leo = await bridge.client(LEO)
        await send(bridge, AVA, CAMPAIGN_CONVERSATION, "into the void")
        await leo.wait_for("new_message")
        await eventually(
            lambda: bridge.app.metrics.snapshot().get("pushes_failed") == 1, timeout=20
        )
        job = await db.fetchrow("select status, attempts, last_error from bridge.push_jobs")
        assert job["status"] == "failed" and "gave up" in job["last_error"]
    finally:
        await bridge.stop()
