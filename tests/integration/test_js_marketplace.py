"""The marketplace features (issue 14: edit and unsend, block, mute,
delivery receipts, rate and connection limits) driven the way the seed's
React clients drive the bridge: the real socket.io-client from npm, two
sockets per user, sends emitted without waiting for acks, rooms joined on
every connect, socket.io-client's own buffering while offline. Each scenario
is a script in tests/js (market_*.mjs) that records everything each socket
receives; the tests count it (nothing lost, nothing leaked, no duplicates)
and validate every event, ack and connect_error against docs/asyncapi.yaml,
keys included, as a JS client reads them. One daemon serves the module;
the limits scenario has its own with tight limits."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from bridge.config import LimitsSettings
from tests.support.database import count_messages
from tests.support.demo import (
    AVA,
    BID_CONVERSATION,
    CAMPAIGN_CONVERSATION,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)
from tests.support.documents import (
    ack_ref,
    ack_validator,
    event_validator,
    problems,
    server_event_ref,
    server_events,
    undocumented_keys,
)
from tests.support.harness import Harness, run_seed_client, running, settings_for, token
from tests.support.services import connected

Out = dict[str, Any]


@pytest.fixture(scope="module")
async def shared(module_db_dsn: str) -> AsyncIterator[Harness]:
    """One daemon (no limits, as the other socket tests) for the module."""
    async with running(settings_for(module_db_dsn)) as harness:
        yield harness


@pytest.fixture
async def mdb(module_db_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    async with connected(module_db_dsn) as conn:
        yield conn


def tokens(**users: str) -> dict[str, str]:
    """`ava=AVA` -> {"ava": AVA, "avaToken": <her token>}."""
    config = {}
    for name, user in users.items():
        config[name] = user
        config[f"{name}Token"] = token(user)
    return config


def texts(*names: str) -> dict[str, str]:
    """Message texts of this run only (the module's database is shared)."""
    run = uuid.uuid4().hex[:8]
    return {name: f"{name} {run}" for name in names}


async def scenario(script: str, bridge: Harness, config: dict[str, Any]) -> Out:
    """Runs tests/js/`script`, then checks every recorded payload against
    docs/asyncapi.yaml: server events, acks and connect_errors validate,
    carry no key the document does not name, and no event is undocumented."""
    out: Out = await run_seed_client(script, bridge.url, config, 90)
    failures = []
    for name, socket in out["sockets"].items():
        for event, data in socket["events"]:
            if event not in server_events():
                failures.append(f"{name}: {event} is not documented")
                continue
            failures += [f"{name} {event}: {p}" for p in problems(event_validator(event), data)]
            failures += [
                f"{name} {event}: undocumented key {k}"
                for k in undocumented_keys(server_event_ref(event), data)
            ]
        for event, ack in socket["acks"]:
            failures += [f"{name} {event} ack: {p}" for p in problems(ack_validator(event), ack)]
            failures += [
                f"{name} {event} ack: undocumented key {k}"
                for k in undocumented_keys(ack_ref(event), ack)
            ]
        for refusal in socket["connectErrors"]:
            validator = event_validator("connect_error")
            failures += [f"{name} connect_error: {p}" for p in problems(validator, refusal)]
            failures += [
                f"{name} connect_error: undocumented key {k}"
                for k in undocumented_keys(server_event_ref("connect_error"), refusal)
            ]
    assert failures == [], failures
    return out


def got(out: Out, socket: str, event: str, conversation: str | None = None) -> list[Any]:
    """What one socket received of `event` (about `conversation`), in order."""
    return [
        data
        for name, data in out["sockets"][socket]["events"]
        if name == event
        and (
            conversation is None
            or data.get("conversation_id", data.get("conversationId")) == conversation
        )
    ]


def acks(out: Out, socket: str, event: str) -> list[Any]:
    return [ack for name, ack in out["sockets"][socket]["acks"] if name == event]


SOCKETS = ("ava1", "ava2", "leo1", "leo2")


async def test_edit_and_unsend_reach_every_socket_and_the_chat_list(shared: Harness) -> None:
    """Leo sends two messages from one of his two sockets without waiting
    for acks, edits the first and unsends the second (unread): all four
    sockets (two each, one with the chat open) get each message, the edit
    and the unsend exactly once; Ava's unread count goes up, down with the
    unsend and up again, on both her sockets and in the REST chat list,
    whose last message becomes the tombstone; an edit of the last message
    shows in both chat lists (event and REST), and reaches a socket that was
    closed meanwhile through `sync`, once. Ava editing or unsending
    Leo's message gets `forbidden` (as an ack, or as `bridge_error` on that
    socket only without one) and changes nothing anyone sees."""
    words = texts("first", "second", "edited", "foreign", "marker", "markerEdited")
    config = {
        **tokens(ava=AVA, leo=LEO),
        "conversationId": CAMPAIGN_CONVERSATION,
        "texts": words,
    }
    out = await scenario("market_edit_unsend.mjs", shared, config)
    first, second = out["notes"]["ids"]["first"], out["notes"]["ids"]["second"]
    cid = CAMPAIGN_CONVERSATION

    assert out["notes"]["edit"]["ok"] and out["notes"]["edit"]["message"]["edited_at"]
    tombstone = out["notes"]["unsend"]["message"]
    assert tombstone["id"] == second and tombstone["deleted_at"] and tombstone["content"] == ""
    for socket in SOCKETS:
        news = got(out, socket, "new_message", cid)
        assert [n["message"]["content"] for n in news] == [
            words["first"],
            words["second"],
            words["marker"],
        ], socket
        updated, last_edit = got(out, socket, "message_updated", cid)
        assert updated["message_id"] == first and updated["message"]["content"] == words["edited"]
        assert updated["message"]["edited_at"] is not None
        assert last_edit["message"]["content"] == words["markerEdited"]
        [deleted] = got(out, socket, "message_deleted", cid)
        assert deleted["message_id"] == second
        assert deleted["message"]["content"] == "" and deleted["message"]["media_url"] is None
        assert deleted["message"]["deleted_at"] is not None
        # The unsent message was the last one: every chat list hears of it once.
        listed = [
            u
            for u in got(out, socket, "conversation_list_updated", cid)
            if u["action"] == "message_deleted"
        ]
        assert [u["message"]["id"] for u in listed] == [second], socket
        assert listed[0]["is_last_message"] is True
        # Only the edit of the last message moves the chat list.
        listed = [
            u
            for u in got(out, socket, "conversation_list_updated", cid)
            if u["action"] == "message_updated"
        ]
        assert [u["message"]["content"] for u in listed] == [words["markerEdited"]], socket
        assert listed[0]["is_last_message"] is True

    base = out["rest"]["before"]["unread_count"]
    for socket in ("ava1", "ava2"):
        counts = [
            (u["action"], u["unread_count"]) for u in got(out, socket, "unread_count_updated", cid)
        ]
        assert counts == [
            ("new_message", base + 1),
            ("new_message", base + 2),
            ("message_deleted", base + 1),
            ("new_message", base + 2),
        ], socket
    for socket in ("leo1", "leo2"):
        assert got(out, socket, "unread_count_updated", cid) == []

    rest = out["rest"]
    assert rest["afterSends"]["unread_count"] == base + 2
    assert rest["afterSends"]["last_message"]["id"] == second
    assert rest["afterUnsend"]["unread_count"] == base + 1
    last = rest["afterUnsend"]["last_message"]
    assert last["id"] == second and last["deleted_at"] and last["content"] == ""
    assert rest["leoAfterUnsend"]["last_message"]["id"] == second
    assert rest["final"]["unread_count"] == base + 2
    assert out["notes"]["sync"]["ok"] and out["notes"]["sync"]["replayed"] >= 1
    for final in (rest["final"], rest["leoFinal"]):
        assert final["last_message"]["content"] == words["markerEdited"]
        assert final["last_message"]["edited_at"]

    # Ava on Leo's message: refused, nothing changed.
    for refusal in (out["notes"]["foreignEdit"], out["notes"]["foreignUnsend"]):
        assert refusal["ok"] is False and refusal["error"]["code"] == "forbidden", refusal
    [error] = got(out, "ava2", "bridge_error")
    assert error["event"] == "edit_message" and error["code"] == "forbidden"
    for socket in ("ava1", "leo1", "leo2"):
        assert got(out, socket, "bridge_error") == []
    history = {m["id"]: m for m in out["rest"]["history"]["messages"]}
    assert history[first]["content"] == words["edited"]
    assert history[second]["content"] == "" and history[second]["deleted_at"]
    assert words["foreign"] not in [m["content"] for m in history.values()]


async def test_a_block_refuses_leos_client_and_hides_him_until_unblocked(
    shared: Harness, mdb: asyncpg.Connection
) -> None:
    """Ava blocks Leo from one of her two sockets: each of her sockets sees
    him go offline once (and he her); his client's send is answered
    `blocked` (an ack, or `bridge_error` on the sending socket only without
    one) and nothing is stored; an edit of his message from before the block
    is refused `blocked` too (socket and REST), so no new words reach her;
    his typing, status changes and a reconnect of his phone reach none of
    Ava's sockets, nor her typing his. After Ava unblocks from her other socket each of hers
    sees him online again, his next message and edit arrive once on each,
    and his typing shows again."""
    words = texts(
        "beforeBlock",
        "blockedAck",
        "blockedNoAck",
        "blockedEdit",
        "afterUnblock",
        "editAfterUnblock",
    )
    config = {**tokens(ava=AVA, leo=LEO), "conversationId": BID_CONVERSATION, "texts": words}
    try:
        out = await scenario("market_block.mjs", shared, config)
    finally:
        # The module's daemon is shared: never leave the block behind.
        await shared.request("DELETE", f"/api/blocks/{LEO}", AVA)
    notes = out["notes"]
    assert notes["block"]["ok"] and notes["block"]["block"]["user_id"] == LEO
    for socket in ("ava1", "ava2"):
        offline = [
            e
            for e in got(out, socket, "user_status_update")
            if e["user_id"] == LEO and e["status"] == "offline"
        ]
        assert offline, socket
    for socket in ("leo1", "leo2"):
        offline = [
            e
            for e in got(out, socket, "user_status_update")
            if e["user_id"] == AVA and e["status"] == "offline"
        ]
        assert offline, socket

    # An edit of a message from before the block would show Ava new words:
    # refused on the socket and over REST, the text unchanged.
    assert notes["blockedEdit"]["ok"] is False
    assert notes["blockedEdit"]["error"]["code"] == "blocked"
    assert out["rest"]["blockedEdit"]["status"] == 403
    assert out["rest"]["blockedEdit"]["body"]["error"]["code"] == "blocked"
    assert await count_messages(mdb, words["blockedEdit"]) == 0
    assert notes["blockedSend"]["ok"] is False
    assert notes["blockedSend"]["error"]["code"] == "blocked"
    [error] = got(out, "leo2", "bridge_error")
    assert error == {**error, "event": "send_message", "code": "blocked"}
    assert got(out, "leo1", "bridge_error") == []
    assert await count_messages(mdb, words["blockedAck"], words["blockedNoAck"]) == 0
    # Nothing of Leo (typing, presence, messages) reached Ava while blocked.
    assert notes["whileBlocked"] == notes["atBlock"]
    assert notes["chatOpenWhileBlocked"]["partner"]["status"] == "offline"
    assert notes["avaTypingToLeo"] == [0, 0]  # nor hers to him
    assert acks(out, "leo1", "typing_start")[0]["ok"] is True  # nothing tells him

    assert notes["unblock"] == {"ok": True, "unblocked": True}
    assert notes["onlineAfterUnblock"] == [n + 1 for n in notes["onlineBeforeUnblock"]]
    assert notes["afterUnblock"]["ok"] is True
    for socket in ("ava1", "ava2"):
        after = [
            n
            for n in got(out, socket, "new_message", BID_CONVERSATION)
            if n["message"]["content"] == words["afterUnblock"]
        ]
        assert len(after) == 1, socket
    assert notes["editAfterUnblock"]["ok"] is True
    for socket in ("ava1", "ava2"):
        [edit] = got(out, socket, "message_updated", BID_CONVERSATION)
        assert edit["message"]["content"] == words["editAfterUnblock"], socket
    assert len(got(out, "ava1", "user_typing", BID_CONVERSATION)) == 4  # start/stop, twice
    assert await count_messages(mdb, words["afterUnblock"]) == 1


async def test_delivery_receipts_from_acks_sync_and_a_buffered_send(
    shared: Harness, mdb: asyncpg.Connection
) -> None:
    """Mia's app acknowledges each `new_message` on both her sockets: each of
    Ava's two sockets hears `message_delivered` once per message (the second
    device's ack delivers nothing new). Mia goes offline while Ava writes;
    back on one device her `sync` replays the missed messages, and that
    alone tells Ava's sockets they were delivered, once each. A send Ava's
    client buffered while its connection was down is flushed, stored once,
    acknowledged and receipted. History and chat list show every one
    delivered."""
    words = {
        "live": [f"live {i} {uuid.uuid4().hex[:6]}" for i in range(3)],
        "missed": [f"missed {i} {uuid.uuid4().hex[:6]}" for i in range(2)],
        "buffered": f"buffered {uuid.uuid4().hex[:6]}",
    }
    config = {**tokens(ava=AVA, mia=MIA), "conversationId": DIRECT_CONVERSATION, "texts": words}
    out = await scenario("market_receipts.mjs", shared, config)
    notes = out["notes"]
    live, missed, buffered = notes["liveIds"], notes["missedIds"], notes["bufferedId"]
    everything = [*live, *missed, buffered]
    for socket in ("ava1", "ava2"):
        receipts = got(out, socket, "message_delivered", DIRECT_CONVERSATION)
        assert all(r["userId"] == MIA for r in receipts)
        ids = [i for r in receipts for i in r["messageIds"]]
        assert sorted(ids) == sorted(everything), socket  # each once, none else
        contents = [n["message"]["content"] for n in got(out, socket, "new_message")]
        assert contents == [*words["live"], *words["missed"], words["buffered"]], socket

    # Both of Mia's devices acknowledged each live message; one delivered it.
    live_acks = acks(out, "mia1", "message_delivered")[: len(live)] + acks(
        out, "mia2", "message_delivered"
    )
    assert len(live_acks) == 2 * len(live) and all(a["ok"] for a in live_acks)
    assert sum(a["delivered"] for a in live_acks) == len(live)
    assert notes["sync"]["ok"] and notes["sync"]["resync"] is False
    assert notes["sync"]["replayed"] >= len(missed)
    replayed = [n["message"]["id"] for n in got(out, "mia1", "new_message", DIRECT_CONVERSATION)]
    assert replayed == everything  # live, then the replay, then the buffered one; once each
    assert (
        got(out, "mia2", "new_message", DIRECT_CONVERSATION)
        == got(out, "mia1", "new_message", DIRECT_CONVERSATION)[: len(live)]
    )

    history = {m["id"]: m for m in out["rest"]["history"]["messages"]}
    assert all(history[i]["delivered_at"] for i in everything)
    assert out["rest"]["entry"]["last_message"]["id"] == buffered
    assert out["rest"]["entry"]["last_message"]["delivered_at"]
    assert await count_messages(mdb, words["buffered"]) == 1


async def test_a_muted_conversation_still_delivers_and_counts(shared: Harness) -> None:
    """Ava mutes her chat with Leo from one socket: Leo's messages still
    arrive once on both her sockets with the unread count going up on each
    (and the in-app `notification` mirror, which is no push), and the REST
    chat list shows the mute (`muted`, `muted_until`) and the count; a mute
    until a time shows that time; unmuting (again is a no-op) clears it and
    messages go on arriving; so they do, counted, in quiet hours around now
    (`set_quiet_hours`, then `null` to clear them)."""
    words = texts("a", "b", "unmuted", "quiet")
    now = datetime.now(UTC)
    until = (now + timedelta(hours=2)).isoformat(timespec="seconds")
    quiet = {
        "start": (now - timedelta(hours=1)).strftime("%H:%M"),
        "end": (now + timedelta(hours=1)).strftime("%H:%M"),
        "timeZone": "UTC",
    }
    config = {
        **tokens(ava=AVA, leo=LEO),
        "conversationId": CAMPAIGN_CONVERSATION,
        "texts": {
            "muted": [words["a"], words["b"]],
            "unmuted": words["unmuted"],
            "quiet": words["quiet"],
        },
        "until": until,
        "quietHours": quiet,
    }
    out = await scenario("market_mute.mjs", shared, config)
    notes, rest = out["notes"], out["rest"]
    cid = CAMPAIGN_CONVERSATION
    assert notes["mute"] == {**notes["mute"], "ok": True, "muted": True, "muted_until": None}
    base = rest["before"]["unread_count"]
    assert rest["before"]["muted"] is False
    assert rest["muted"]["muted"] is True and rest["muted"]["muted_until"] is None
    for socket in ("ava1", "ava2"):
        contents = [n["message"]["content"] for n in got(out, socket, "new_message", cid)]
        assert contents == [words["a"], words["b"], words["unmuted"], words["quiet"]], socket
        counts = [u["unread_count"] for u in got(out, socket, "unread_count_updated", cid)]
        assert counts == [base + 1, base + 2, base + 3, base + 4], socket
    # The in-app mirror of each push intent still comes (README: it is an
    # event like the others; the FCM push is what a mute holds back).
    mirrored = [n["data"]["message_id"] for n in got(out, "ava1", "notification", cid)]
    assert mirrored == [n["message"]["id"] for n in got(out, "ava1", "new_message", cid)]
    assert rest["afterMessages"]["unread_count"] == base + 2
    assert rest["afterMessages"]["muted"] is True
    muted_until = datetime.fromisoformat(rest["mutedUntil"]["muted_until"])
    assert muted_until == datetime.fromisoformat(until)
    assert datetime.fromisoformat(notes["muteUntil"]["muted_until"]) == muted_until
    assert notes["unmute"]["unmuted"] is True and notes["unmuteAgain"]["unmuted"] is False
    assert rest["unmuted"]["muted"] is False and rest["unmuted"]["muted_until"] is None
    hours = notes["quiet"]["quietHours"]
    assert (hours["start"], hours["end"], hours["time_zone"]) == (
        quiet["start"],
        quiet["end"],
        "UTC",
    )
    assert hours["active_now"] is True
    assert notes["quietCleared"] == {"ok": True, "quietHours": None}


# A burst of BURST sends per user and per socket, then one send per 50 s:
# nothing refills during the scenario, even on a loaded machine. Two
# sockets per user, as the seed's app opens.
BURST = 5
TIGHT = LimitsSettings(send_rate=0.02, send_burst=BURST, max_sockets_per_user=2)


@pytest.fixture
async def limited(db_dsn: str) -> AsyncIterator[Harness]:
    async with running(settings_for(db_dsn, limits=TIGHT)) as harness:
        yield harness


async def test_a_flooding_client_is_limited_and_nobody_else_loses_messages(
    limited: Harness, db: asyncpg.Connection
) -> None:
    """Leo's client emits 12 sends at once without waiting: the first 5
    (the burst) are acked ok and stored, the other 7 are acked
    `rate_limited` (retryable, with `retry_after`) and not stored; his
    other socket's no-ack sends get a `bridge_error` each, on that socket
    only. Ava's client, sending her own burst to Mia meanwhile, gets every
    ack ok and each message reaches both of Mia's sockets once, in order;
    each of Ava's sockets gets Leo's 5 stored messages once. A third socket
    of Leo's is refused with `too_many_connections` (socket.io-client's
    `connect_error`, no retries); after he closes one, a new one gets in."""
    run = uuid.uuid4().hex[:6]
    flood = [f"flood {i} {run}" for i in range(12)]
    no_ack = [f"no ack {i} {run}" for i in range(3)]
    ava = [f"ava {i} {run}" for i in range(BURST)]
    config = {
        **tokens(ava=AVA, leo=LEO, mia=MIA),
        "leoConversation": BID_CONVERSATION,
        "avaConversation": DIRECT_CONVERSATION,
        "burst": BURST,
        "texts": {"flood": flood, "noAck": no_ack, "ava": ava},
    }
    out = await scenario("market_flood.mjs", limited, config)

    flood_acks = acks(out, "leo1", "send_message")
    accepted = [a["message"]["content"] for a in flood_acks if a["ok"]]
    refused = [a["error"] for a in flood_acks if not a["ok"]]
    # One socket's events are handled in order: the burst passes, the rest not.
    assert [a["ok"] for a in flood_acks] == [True] * BURST + [False] * (len(flood) - BURST)
    assert accepted == flood[:BURST]
    for error in refused:
        assert error["code"] == "rate_limited" and error["retryable"] is True
        assert 0 < error["retry_after"] <= 1 / TIGHT.send_rate
    errors = got(out, "leo2", "bridge_error")
    assert [(e["event"], e["code"]) for e in errors] == [("send_message", "rate_limited")] * 3
    assert all(e["retry_after"] > 0 for e in errors)
    assert got(out, "leo1", "bridge_error") == []
    stored = await db.fetch(
        "select content from public.messages where content like $1 order by seq", f"% {run}"
    )
    assert sorted(r["content"] for r in stored) == sorted(flood[:BURST] + ava)

    assert all(a["ok"] for a in acks(out, "ava1", "send_message"))
    for socket in ("mia1", "mia2"):
        contents = [n["message"]["content"] for n in got(out, socket, "new_message")]
        assert contents == ava, socket
    for socket in ("ava1", "ava2"):
        contents = [
            n["message"]["content"] for n in got(out, socket, "new_message", BID_CONVERSATION)
        ]
        assert contents == flood[:BURST], socket

    [refusal] = out["sockets"]["leo3"]["connectErrors"]
    assert refusal["data"]["code"] == "too_many_connections"
    assert refusal["message"] == refusal["data"]["message"]
    assert out["notes"]["leo3Active"] is False
    assert out["sockets"]["leo3"]["connects"] == 0 and out["sockets"]["leo3"]["events"] == []
    assert out["sockets"][out["notes"]["leo4"]]["connects"] == 1
