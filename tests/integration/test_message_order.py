"""One order per conversation: what the partner sees live, what history
shows after a reload, and the chat list's last message agree, for messages
sent back to back from one socket, flushed after a reconnect, and written
concurrently through the socket, REST and supabase-js."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.support.database import send_as
from tests.support.demo import AVA, DIRECT_CONVERSATION, MIA
from tests.support.harness import Client, Harness, chat_entry, run_seed_client, token


def starting(items: list[str], prefix: str) -> list[str]:
    return [i for i in items if i.startswith(prefix)]


def in_conversation(data: Any) -> bool:
    return bool(data["conversation_id"] == DIRECT_CONVERSATION)


def live_texts(client: Client) -> list[str]:
    return [d["message"]["content"] for d in client.received("new_message") if in_conversation(d)]


async def assert_one_order(bridge: Harness, db: asyncpg.Connection, live: list[str]) -> None:
    """History (by seq) shows the live order; seq and created_at both
    increase along it; both chat lists end on its last message; the unread
    counters match the rows."""
    status, body = await bridge.request(
        "GET", f"/api/conversations/{DIRECT_CONVERSATION}/messages?limit=100", AVA
    )
    assert status == 200, body
    wanted = set(live)
    messages = [m for m in body["messages"] if m["content"] in wanted]
    assert [m["content"] for m in messages] == live
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    times = [m["created_at"] for m in messages]
    assert times == sorted(times) and len(set(times)) == len(times)
    for user in (AVA, MIA):
        entry = await chat_entry(bridge, user, DIRECT_CONVERSATION)
        assert entry["last_message"]["content"] == live[-1]
    counters = await db.fetchrow(
        "select brand_owner_unread_count as owner, influencer_unread_count as influencer,"
        " (select count(*) from public.messages m where m.conversation_id = c.id"
        "   and not m.is_read and m.sender_id = c.influencer_id) as owner_rows,"
        " (select count(*) from public.messages m where m.conversation_id = c.id"
        "   and not m.is_read and m.sender_id = c.brand_owner_id) as influencer_rows"
        " from public.conversations c where c.id = $1",
        DIRECT_CONVERSATION,
    )
    assert counters["owner"] == counters["owner_rows"]
    assert counters["influencer"] == counters["influencer_rows"]


async def watcher(bridge: Harness, user: str) -> Client:
    client = await bridge.client(user)
    assert (await client.call("join_conversation", DIRECT_CONVERSATION))["ok"]
    return client


async def test_back_to_back_sends_from_one_socket_arrive_in_order(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Ava's app emits 40 send_message without waiting for acks; Mia sees
    them live in that order, a reload shows the same order, and the chat
    list ends on the last one."""
    sender = await bridge.client(AVA)
    mia = await watcher(bridge, MIA)
    texts = [f"burst-{i}" for i in range(40)]
    for text in texts:
        await sender.sio.emit(
            "send_message", {"conversationId": DIRECT_CONVERSATION, "message": text}
        )
    await mia.wait_for("new_message", lambda d: d["message"]["content"] == texts[-1], 15)
    assert live_texts(mia) == texts
    await assert_one_order(bridge, db, texts)


async def test_seed_client_bursts_two_sockets_and_reconnect_flush_keep_order(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """The real socket.io-client: Ava's phone and laptop each send 25
    messages back to back (no acks, `mediaUrl: ''` as the seed sends it),
    then the phone's connection drops and 25 more, buffered by the client
    while offline, are flushed on reconnect. Mia receives all 75 with each
    socket's messages in the order sent, and history shows her live order."""
    config = {
        "conversationId": DIRECT_CONVERSATION,
        "sender": AVA,
        "receiver": MIA,
        "senderToken": token(AVA),
        "receiverToken": token(MIA),
        "perBurst": 25,
    }
    out = await run_seed_client("send_order.mjs", bridge.url, config, 40)
    assert out["reconnected"] is True
    live: list[str] = out["received"]
    assert len(live) == 75 and len(set(live)) == 75
    for prefix in ("phone-", "laptop-", "offline-"):
        assert starting(live, prefix) == [f"{prefix}{i}" for i in range(25)]
    await assert_one_order(bridge, db, live)


async def test_concurrent_senders_on_every_path_agree_on_one_order(
    bridge: Harness, db: asyncpg.Connection, db_dsn: str
) -> None:
    """At the same time Ava sends 30 messages back to back over her socket,
    Mia 30 over REST and 30 more through supabase-js (straight into
    Postgres under RLS). Both see the same live order; history, seq,
    created_at, both chat lists and the unread counters agree with it, and
    each path's own messages keep the order they were sent in."""
    ava_socket = await bridge.client(AVA)
    ava_view = await watcher(bridge, AVA)
    mia_view = await watcher(bridge, MIA)
    direct = await asyncpg.connect(db_dsn)

    async def by_socket() -> None:
        for i in range(30):
            await ava_socket.sio.emit(
                "send_message", {"conversationId": DIRECT_CONVERSATION, "message": f"socket-{i}"}
            )

    async def by_rest() -> None:
        for i in range(30):
            status, body = await bridge.request(
                "POST",
                "/api/messages/send",
                MIA,
                json={"conversation_id": DIRECT_CONVERSATION, "message": f"rest-{i}"},
            )
            assert status == 201, body

    async def by_supabase_js() -> None:
        for i in range(30):
            await send_as(direct, MIA, DIRECT_CONVERSATION, f"js-{i}")

    try:
        await asyncio.gather(by_socket(), by_rest(), by_supabase_js())
    finally:
        await direct.close()
    for view in (ava_view, mia_view):
        await view.wait_count("new_message", 90, in_conversation, 15)
    live = live_texts(mia_view)
    assert live_texts(ava_view) == live
    assert len(live) == 90
    for prefix in ("socket-", "rest-", "js-"):
        assert starting(live, prefix) == [f"{prefix}{i}" for i in range(30)]
    await assert_one_order(bridge, db, live)
