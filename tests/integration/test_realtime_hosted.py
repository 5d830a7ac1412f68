"""The Realtime doorbell against what a hosted Supabase project does today
(the stand-in learned it from supabase/realtime): channels that go deaf,
rings dropped over the tenant's events-per-second limit, projects that allow
only private channels, secret API keys with the legacy JWT secret revoked,
and configurations that cannot work stopping start-up."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from realtime import AsyncRealtimeClient, RealtimeSubscribeStates

from bridge.config import OutboxSettings
from bridge.db import open_pool
from bridge.outbox.doorbells.realtime import RealtimeDoorbell
from bridge.preflight import PreflightError, check
from tests.support.database import send_as
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import Client, running, settings_for, token
from tests.support.realtime_env import SERVICE_KEY, doorbell, idle, realtime, realtime_settings
from tests.support.realtime_standin import RealtimeStandIn
from tests.support.realtime_standin_auth import EventsPerSecond
from tests.support.waits import eventually

__all__ = ["realtime"]  # fixture

SECRET_KEY = "sb_secret_test_0123456789abcdef"


async def delivered(client: Client, text: str) -> None:
    await eventually(
        lambda: text in {d["message"]["content"] for d in client.received("new_message")}
    )


async def test_deaf_channel_is_noticed_and_rebuilt(
    db_dsn: str, realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """Realtime keeps the channel joined but stops delivering (a lost
    subscription): the relay's poll finds a message no ring announced, the
    doorbell counts the missed ring and rebuilds the channel, and the next
    message rings again. /healthz shows the state and the counters."""
    settings = realtime_settings(db_dsn, realtime.url, poll_interval=1.0)
    async with running(settings) as bridge:
        bell = doorbell(bridge)
        await asyncio.wait_for(bell.ready.wait(), 10)
        ava = await bridge.client(AVA)
        await idle(bridge, db)
        realtime.go_deaf()
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "while deaf")
        await delivered(ava, "while deaf")  # by the poll
        await eventually(lambda: bell.rings_missed >= 1 and bell.rebuilds >= 1)
        await asyncio.wait_for(bell.ready.wait(), 10)
        rings = bridge.app.metrics.counts["realtime_rings"]
        await idle(bridge, db)
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "heard again")
        await delivered(ava, "heard again")
        await eventually(lambda: bridge.app.metrics.counts["realtime_rings"] > rings)
        status, body = await bridge.request("GET", "/healthz")
        assert status == 200
        assert body["doorbell"]["kind"] == "realtime" and body["doorbell"]["state"] == "live"
        counters = body["counters"]
        assert counters["realtime_rings_missed"] >= 1 and counters["realtime_rebuilds"] >= 1
        assert counters["realtime_rings"] >= 1


async def test_rings_over_the_events_limit_are_dropped_and_noticed(
    db_dsn: str, realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """The app's own clients push the tenant over its events-per-second
    limit: Realtime drops the bridge's ring without a word. The message
    still arrives (the poll), and the doorbell counts the missed ring."""
    realtime.rate = EventsPerSecond(limit=5, tick=0.2)
    settings = realtime_settings(db_dsn, realtime.url, poll_interval=1.0)
    async with running(settings) as bridge:
        bell = doorbell(bridge)
        await asyncio.wait_for(bell.ready.wait(), 10)
        ava = await bridge.client(AVA)
        await idle(bridge, db)
        realtime.app_events(1000)
        await eventually(lambda: not realtime.rate.open())
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "over the limit")
        await delivered(ava, "over the limit")
        assert realtime.rate.dropped >= 1
        await eventually(lambda: bell.rings_missed >= 1)


async def test_private_only_project(
    db_dsn: str, realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """A project that allows only private channels refuses public joins
    ("PrivateOnly"); the doorbell joins privately, so it goes live and rings
    there without a single refusal."""
    realtime.private_only = True
    public = AsyncRealtimeClient(f"{realtime.url}/realtime/v1", SERVICE_KEY, auto_reconnect=False)
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
    try:
        await public.channel("anything").subscribe(lambda s, e: states.append((s, e)))
        await eventually(lambda: bool(states))
    finally:
        await public.close()
    assert states[0][0] == RealtimeSubscribeStates.CHANNEL_ERROR
    assert "PrivateOnly" in str(states[0][1])
    refused = len(realtime.refusals)
    async with running(realtime_settings(db_dsn, realtime.url)) as bridge:
        await asyncio.wait_for(doorbell(bridge).ready.wait(), 10)
        ava = await bridge.client(AVA)
        await idle(bridge, db)
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "private ring")
        await delivered(ava, "private ring")
    assert len(realtime.refusals) == refused


async def test_only_the_service_role_hears_the_doorbell(realtime: RealtimeStandIn) -> None:
    """Realtime authorizes private channels with the policies on
    realtime.messages: a signed-in user cannot join the bridge's topic, even
    on a project whose own policies let users read every topic."""
    conn = await asyncpg.connect(realtime.dsn)
    try:
        await conn.execute(
            'create policy "Users read every topic" on realtime.messages'
            " for select to authenticated using (true)"
        )
        await conn.execute(
            'create policy "Users write every topic" on realtime.messages'
            " for insert to authenticated with check (true)"
        )
    finally:
        await conn.close()
    states: list[tuple[RealtimeSubscribeStates, Exception | None]] = []
    user = AsyncRealtimeClient(f"{realtime.url}/realtime/v1", token(AVA), auto_reconnect=False)
    try:
        channel = user.channel("bridge:outbox", {"config": {"private": True}})  # type: ignore[typeddict-item]
        await channel.subscribe(lambda s, e: states.append((s, e)))
        await eventually(lambda: bool(states))
        other = user.channel("room:1", {"config": {"private": True}})  # type: ignore[typeddict-item]
        await other.subscribe(lambda s, e: states.append((s, e)))
        await eventually(lambda: len(states) >= 2)
    finally:
        await user.close()
    assert states[0][0] == RealtimeSubscribeStates.CHANNEL_ERROR
    assert "Unauthorized" in str(states[0][1])
    assert states[1][0] == RealtimeSubscribeStates.SUBSCRIBED  # the app's own topics still work


async def test_secret_api_key_with_the_legacy_secret_revoked(
    db_dsn: str, realtime: RealtimeStandIn, db: asyncpg.Connection
) -> None:
    """A project on asymmetric signing keys with the legacy JWT secret
    revoked: with a secret API key (sb_secret_...) the bridge starts, its
    channel runs on what the key stands for (nothing minted), and it rings."""
    realtime.keys.legacy_revoked = True
    realtime.keys.secret_keys.add(SECRET_KEY)
    settings = realtime_settings(db_dsn, realtime.url, key=SECRET_KEY)
    async with running(settings) as bridge:
        await asyncio.wait_for(doorbell(bridge).ready.wait(), 10)
        ava = await bridge.client(AVA)
        await idle(bridge, db)
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "new keys")
        await delivered(ava, "new keys")
    assert realtime.access_tokens == []
    assert not any("JwtSignature" in r for r in realtime.refusals)


async def test_asymmetric_tokens_are_accepted(realtime: RealtimeStandIn) -> None:
    """Tokens signed with the project's asymmetric key (ES256, published in
    its JWKS) open the channel and refresh it; the stand-in refuses HS256
    ones once the legacy secret is revoked."""
    realtime.keys.legacy_revoked = True
    realtime.keys.secret_keys.add(SECRET_KEY)
    bell = RealtimeDoorbell(
        realtime.url, SECRET_KEY, access_token=realtime.keys.service_token, refresh_every=0.5
    )
    await bell.start()
    try:
        await asyncio.wait_for(bell.ready.wait(), 10)
        await eventually(lambda: bell.token_refreshes >= 2)
        assert bell.rebuilds == 0 and realtime.expired_closes == 0
    finally:
        await bell.stop()
    assert realtime.keys.jwks()["keys"][0]["alg"] == "ES256"
    legacy = RealtimeDoorbell(realtime.url, SECRET_KEY, access_token=lambda: SERVICE_KEY)
    await legacy.start()
    try:
        await eventually(lambda: legacy.rebuilds >= 1)
        assert legacy.problem is not None and "JwtSignatureError" in legacy.problem
    finally:
        await legacy.stop()


async def test_legacy_key_on_a_revoked_project_stops_start_up(
    db_dsn: str, realtime: RealtimeStandIn
) -> None:
    """The legacy service-role JWT (and tokens minted with the legacy
    secret) on a project that revoked that secret: start-up stops with one
    message saying what to use instead, rather than rebuilding forever."""
    realtime.keys.legacy_revoked = True
    settings = realtime_settings(db_dsn, realtime.url)
    verdict = await check(settings, db_dsn)
    assert not verdict.ok
    message = verdict.render()
    assert "refuses the doorbell's private channel" in message
    assert "sb_secret_" in message
    with pytest.raises(PreflightError):
        async with running(settings):
            pass


async def test_unknown_secret_key_stops_start_up(db_dsn: str, realtime: RealtimeStandIn) -> None:
    """A secret key the project does not know (revoked, or another
    project's) is refused at the socket; start-up says so."""
    settings = realtime_settings(db_dsn, realtime.url, key="sb_secret_not_this_project")
    verdict = await check(settings, db_dsn)
    assert "not a key of this project" in verdict.render()


async def test_database_without_realtime_send_stops_start_up(db_dsn: str) -> None:
    """The Realtime doorbell on a database Realtime never set up (no
    realtime.send): writers could never ring it, and start-up says so."""
    settings = realtime_settings(db_dsn, "http://127.0.0.1:9")
    verdict = await check(settings, db_dsn)
    assert "no realtime.send()" in verdict.render()


async def test_realtime_policies_and_publication(realtime: RealtimeStandIn) -> None:
    """Where Realtime's schema exists the migration's policies are on
    realtime.messages, and the outbox is not in supabase_realtime: none of
    its inserts or prunes reach the replication poller."""
    conn = await asyncpg.connect(realtime.dsn)
    try:
        policies = {
            r["policyname"]
            for r in await conn.fetch(
                "select policyname from pg_policies where schemaname = 'realtime'"
            )
        }
        published = await conn.fetchval(
            "select count(*) from pg_publication_tables where pubname = 'supabase_realtime'"
            " and schemaname = 'bridge'"
        )
    finally:
        await conn.close()
    assert "The bridge hears its outbox doorbell" in policies
    assert "Only the bridge hears the outbox doorbell" in policies
    assert published == 0


async def test_pruning_goes_in_small_batches(db_dsn: str, db: asyncpg.Connection) -> None:
    """Pruning deletes every relayed row past the retention, batch after
    batch, and keeps rows not relayed yet however old."""
    from bridge.store import Store

    await db.execute(
        "insert into bridge.outbox (topic, recipients, payload, created_at)"
        " select 'profile.updated', '{}', '{}', now() - interval '4 days'"
        " from generate_series(1, 35)"
    )
    await db.execute("select bridge.skip_pending()")
    await db.execute(
        "insert into bridge.outbox (topic, recipients, payload, created_at)"
        " values ('profile.updated', '{}', '{}', now() - interval '4 days')"
    )
    old_relayed = await db.fetchval(
        "select count(*) from bridge.outbox where created_at < now() - interval '72 hours'"
        " and bridge.is_relayed(xid)"
    )
    pool = await open_pool(db_dsn, min_size=1, max_size=2)
    try:
        pruned = await Store(pool).prune_outbox(72, batch=10, pause=0)
    finally:
        await pool.close()
    assert old_relayed >= 35 and pruned == old_relayed
    assert await db.fetchval("select count(*) from bridge.outbox_pending") == 1


async def test_a_listen_bridge_takes_the_rings_back(db_dsn: str, db: asyncpg.Connection) -> None:
    """A database last rung through Realtime, then served by a LISTEN
    bridge: writers NOTIFY again, messages ring the relay, /healthz shows
    the LISTEN doorbell."""
    await db.execute("update bridge.doorbell set via = 'realtime'")
    settings = settings_for(db_dsn, outbox=OutboxSettings(doorbell="listen", poll_interval=60.0))
    async with running(settings) as bridge:
        await eventually(
            lambda: (
                bridge.app.doorbell is not None
                and bridge.app.doorbell.status()["state"] == "listening"
            )
        )
        assert await db.fetchval("select via from bridge.doorbell") == "listen"
        ava = await bridge.client(AVA)
        await idle(bridge, db)
        await send_as(db, LEO, CAMPAIGN_CONVERSATION, "rung by NOTIFY")
        await delivered(ava, "rung by NOTIFY")
        _, body = await bridge.request("GET", "/healthz")
        assert body["doorbell"]["kind"] == "listen"


async def test_policies_need_not_stop_a_migration(realtime: RealtimeStandIn) -> None:
    """A migrating role that may not create policies on realtime.messages
    (not its owner) gets a warning, not a failed migration."""
    conn = await asyncpg.connect(realtime.dsn)
    try:
        await conn.execute("create role doorbell_migrator nologin")
        await conn.execute("grant usage on schema bridge to doorbell_migrator")
        await conn.execute(
            "grant execute on function bridge.realtime_doorbell_policies() to doorbell_migrator"
        )
        async with conn.transaction():
            await conn.execute("set local role doorbell_migrator")
            installed = await conn.fetchval("select bridge.realtime_doorbell_policies()")
        assert installed is False
    finally:
        await conn.execute("drop owned by doorbell_migrator")
        await conn.execute("drop role doorbell_migrator")
        await conn.close()
