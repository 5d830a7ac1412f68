"""How often a push goes out, through the real firebase-admin SDK to the
local FCM v1 endpoint: one in flight per person and conversation however
slow FCM is, a lease the live sender keeps while it retries, a crashed
sender's push taken over, and repeats that replace each other on the device."""

from __future__ import annotations

import asyncio
import re
import signal
from pathlib import Path
from typing import Any

import asyncpg

from bridge.embedded import free_port
from tests.support.database import send_as
from tests.support.demo import AVA, BID_CONVERSATION, CAMPAIGN_CONVERSATION, LEO
from tests.support.fcm_standin import FcmStandIn
from tests.support.harness import Harness, start_daemon, started
from tests.support.push import push_settings, register, send
from tests.support.waits import eventually


async def job_settled(db: asyncpg.Connection, timeout: float = 30.0) -> list[asyncpg.Record]:
    """Waits until no push job is pending or being sent; returns them all."""

    async def settled() -> list[asyncpg.Record] | None:
        jobs = await db.fetch("select status, attempts, merged from bridge.push_jobs order by id")
        return (
            jobs if jobs and all(j["status"] not in ("pending", "sending") for j in jobs) else None
        )

    jobs: list[asyncpg.Record] = await eventually(
        settled, timeout=timeout, what="push jobs settled", interval=0.1
    )
    return jobs


def merged(messages: list[dict[str, Any]]) -> list[int]:
    return [int(m["data"]["merged"]) for m in messages]


async def test_a_burst_during_a_slow_push_is_one_more_push(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """Twelve messages in three seconds while FCM takes a second per
    request: the first is pushed at once, the rest wait for that push and
    merge into one more after the cooldown. The bound: a burst lasting T
    gives at most 1 + ceil(T / (cooldown + FCM latency)) pushes per device,
    here 1 + ceil(3 / 6) = 2; the merged counts add up to twelve."""
    bridge = await started(push_settings(db_dsn, fcm, tmp_path, cooldown=5.0))
    try:
        await register(bridge, LEO, "leo-phone", "android")
        await register(bridge, LEO, "leo-tablet", "ios")
        fcm.delay = 1.0
        for n in range(12):
            await send(bridge, AVA, CAMPAIGN_CONVERSATION, f"burst {n}")
            await asyncio.sleep(0.25)
        for device in ("leo-phone", "leo-tablet"):
            await eventually(lambda d=device: sum(merged(fcm.messages_to(d))) >= 12, timeout=30)
        await job_settled(db)
        for device in ("leo-phone", "leo-tablet"):
            counts = merged(fcm.messages_to(device))
            assert len(counts) <= 2, counts
            assert sum(counts) == 12, counts
        assert fcm.messages_to("leo-phone")[-1]["notification"]["body"].endswith("burst 11")
    finally:
        await bridge.stop()


async def test_retries_outlasting_the_lease_reach_fcm_once(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """Two 429s whose Retry-After (2 s) is longer than the job's lease (1 s):
    the sender renews its lease while it waits, so nobody takes the job
    over and each device gets exactly one push (the over-quota phone on
    its third attempt, the tablet at once)."""
    settings = push_settings(db_dsn, fcm, tmp_path, lease_seconds=1.0, max_backoff=5.0)
    fcm.retry_after = 2.0
    bridge = await started(settings)
    try:
        await register(bridge, LEO, "busy2-phone")
        await register(bridge, LEO, "leo-tablet", "ios")
        await send(bridge, AVA, CAMPAIGN_CONVERSATION, "after the quota")
        jobs = await job_settled(db)
        await asyncio.sleep(1.5)  # longer than a lease: a re-claim would have shown
        assert [(j["status"], j["attempts"]) for j in jobs] == [("sent", 1)]
        assert fcm.attempts["busy2-phone"] == 3
        assert len(fcm.messages_to("busy2-phone")) == 1
        assert len(fcm.messages_to("leo-tablet")) == 1
    finally:
        await bridge.stop()


async def test_a_sender_whose_lease_ran_out_does_not_take_its_own_push_over(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """The lease of a push runs out while its sender waits out a Retry-After
    (its heartbeat was late: a stalled event loop; here the lease is ended
    in the database): the sender does not claim its own push a second
    time, sends it once more when the wait is over, and it is recorded sent
    on its first claim, the phone getting it once."""
    settings = push_settings(db_dsn, fcm, tmp_path, lease_seconds=30.0)
    fcm.retry_after = 2.0
    bridge = await started(settings)
    try:
        await register(bridge, LEO, "busy1-phone")
        await send(bridge, AVA, CAMPAIGN_CONVERSATION, "a late heartbeat")
        await eventually(lambda: fcm.attempts["busy1-phone"] == 1)
        await db.execute("update bridge.push_jobs set lease_until = now() where status = 'sending'")
        jobs = await job_settled(db)
        assert [(j["status"], j["attempts"]) for j in jobs] == [("sent", 1)]
        assert fcm.attempts["busy1-phone"] == 2
        assert len(fcm.messages_to("busy1-phone")) == 1
    finally:
        await bridge.stop()


async def test_a_killed_senders_push_is_taken_over(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """The daemon sending a push is SIGKILLed mid-request: once the lease
    runs out the next instance takes the job over and sends it. At least
    once to FCM: the copy that got through before the kill carries the same
    tag and collapse ids as the new one, so the device shows one."""
    settings = push_settings(db_dsn, fcm, tmp_path, lease_seconds=1.0)
    env = {
        "GOOGLE_APPLICATION_CREDENTIALS": settings.fcm.credentials,
        "FCM_PROJECT_ID": fcm.project_id,
        "FCM_ENDPOINT": fcm.base_url,
        "BRIDGE_PUSH_COOLDOWN": "0",
        "BRIDGE_PUSH_LEASE_SECONDS": "1",
        "BRIDGE_PUSH_POLL_INTERVAL": "0.2",
    }
    await db.execute(
        "insert into public.fcm_tokens (user_id, token, platform)"
        " values ($1, 'leo-phone', 'android')",
        LEO,
    )
    fcm.delay = 2.0
    first = await start_daemon(db_dsn, free_port(), env=env)
    try:
        await send_as(db, AVA, CAMPAIGN_CONVERSATION, "are you there?")
        await eventually(lambda: fcm.arrived >= 1)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert await db.fetchval("select status from bridge.push_jobs") == "sending"
    second = await started(settings)
    try:
        jobs = await job_settled(db)
        assert [(j["status"], j["attempts"]) for j in jobs] == [("sent", 2)]
        await eventually(lambda: len(fcm.messages_to("leo-phone")) == 2)  # both reached FCM
        copies = fcm.messages_to("leo-phone")
        assert {m["notification"]["body"] for m in copies} == {"are you there?"}
        assert len({collapse_keys(m) for m in copies}) == 1
    finally:
        await second.stop()


async def test_a_stop_lets_a_push_in_progress_finish(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """Stopping the bridge while FCM is still answering a push waits for the
    answer and records it, so the next start does not send it again."""
    settings = push_settings(db_dsn, fcm, tmp_path, lease_seconds=1.0)
    first = await started(settings)
    await register(first, LEO, "leo-phone")
    fcm.delay = 1.0
    await send(first, AVA, CAMPAIGN_CONVERSATION, "one push only")
    await eventually(lambda: fcm.arrived >= 1)
    await first.stop()
    assert [(j["status"], j["attempts"]) for j in await job_settled(db)] == [("sent", 1)]
    second = await started(settings)
    try:
        await asyncio.sleep(1.5)  # longer than a lease: a re-send would have shown
        assert len(fcm.messages_to("leo-phone")) == 1
    finally:
        await second.stop()


async def test_a_stop_hands_a_retrying_push_over_at_once(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path, db: asyncpg.Connection
) -> None:
    """A push waiting out a long Retry-After when the bridge stops is not
    waited for: its lease is released, and the next instance sends it
    without waiting for the (30 s) lease to run out."""
    settings = push_settings(db_dsn, fcm, tmp_path, lease_seconds=30.0, max_backoff=60.0)
    fcm.retry_after = 60.0
    first = await started(settings)
    await register(first, LEO, "busy1-phone")
    await send(first, AVA, CAMPAIGN_CONVERSATION, "after the quota")
    await eventually(lambda: fcm.attempts["busy1-phone"] == 1)
    await first.stop()
    released = "select lease_until <= now() from bridge.push_jobs where status = 'sending'"
    assert await db.fetchval(released)
    second = await started(settings)
    try:
        jobs = await job_settled(db, timeout=20)
        assert [(j["status"], j["attempts"]) for j in jobs] == [("sent", 2)]
        assert len(fcm.messages_to("busy1-phone")) == 1
    finally:
        await second.stop()


def collapse_keys(message: dict[str, Any]) -> tuple[str, ...]:
    return (
        message["android"]["notification"]["tag"],
        message["apns"]["headers"]["apns-collapse-id"],
        message["webpush"]["headers"]["Topic"],
        message["webpush"]["notification"]["tag"],
    )


async def test_pushes_about_a_conversation_replace_each_other(
    pushing: Harness, fcm: FcmStandIn
) -> None:
    """Every push about a conversation carries the same Android tag, APNs
    collapse id and web push Topic (so a repeat replaces the notification
    instead of stacking); another conversation gets its own. The collapse
    id fits APNs (64 bytes) and Topic web push (32 URL-safe base64 chars)."""
    for token, platform in (("leo-phone", "android"), ("leo-mac", "ios"), ("leo-web", "web")):
        await register(pushing, LEO, token, platform)
    for n, conversation in enumerate(
        (CAMPAIGN_CONVERSATION, CAMPAIGN_CONVERSATION, BID_CONVERSATION)
    ):
        await send(pushing, AVA, conversation, f"note {n}")
        await eventually(lambda n=n: len(fcm.sent) == 3 * (n + 1))
    for token in ("leo-phone", "leo-mac", "leo-web"):
        first, again, other = (collapse_keys(m) for m in fcm.messages_to(token))
        assert first == again
        assert set(first).isdisjoint(other)
        assert first[0] == CAMPAIGN_CONVERSATION
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,32}", first[2])
        assert len(first[1].encode()) <= 64
