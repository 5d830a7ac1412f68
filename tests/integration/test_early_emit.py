"""Socket sends go out right after their commit (bridge/early_emit.py),
not after the relay read them back, and only when that keeps the
conversation's one order; nothing arrives twice."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import asyncpg

from bridge.db import acting_as, user_claims
from tests.support.demo import AVA, DIRECT_CONVERSATION, MIA
from tests.support.harness import Harness, running, settings_for


def in_conversation(data: Any) -> bool:
    return bool(data["conversation_id"] == DIRECT_CONVERSATION)


async def test_sends_go_out_at_their_commit_once_each_in_order(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Ava sends 20 messages one after the other (each once Mia has the
    previous one), with a message Mia writes straight into the database (as
    supabase-js does) in the middle. Mia's socket gets all 21 once each, in
    the order history shows. Ava's first send went through the relay
    (nothing from this conversation had gone out since the bridge started),
    Mia's too (not a socket send); the 19 others went out at their commit
    (or sooner, when the relay read one before its commit's answer came)."""
    app = bridge.app
    ava = await bridge.client(AVA)
    mia = await bridge.client(MIA)
    sent: list[str] = []
    for i in range(20):
        if i == 10:
            async with acting_as(db, user_claims(MIA)):
                await db.execute(
                    "insert into public.messages (conversation_id, sender_id, content)"
                    " values ($1, $2, 'from supabase-js')",
                    DIRECT_CONVERSATION,
                    MIA,
                )
            sent.append("from supabase-js")
            await mia.wait_count("new_message", len(sent), where=in_conversation)
        text = f"early-{i}"
        ack = await ava.call(
            "send_message", {"conversationId": DIRECT_CONVERSATION, "content": text}
        )
        assert ack["ok"], ack
        sent.append(text)
        await mia.wait_count("new_message", len(sent), where=in_conversation)
    got = await mia.wait_count("new_message", 21, where=in_conversation)
    await asyncio.sleep(0.3)  # anything sent twice would be here by now
    live = [d["message"]["content"] for d in mia.received("new_message")]
    assert live == [d["message"]["content"] for d in got]
    assert sorted(live) == sorted(sent) and len(live) == 21
    history = await db.fetch(
        "select content from public.messages where conversation_id = $1 order by seq",
        DIRECT_CONVERSATION,
    )
    in_history = [r["content"] for r in history if r["content"] in set(sent)]
    assert live == in_history
    counts = app.metrics.snapshot()
    # Each of the 20 sends went out once: at its commit, or through the relay
    # (left to it, or read by it between the commit and the emit here, then
    # even sooner). Only the first one waited for the relay, if it did.
    went = [counts.get(f"early_emits{k}", 0) for k in ("", "_overtaken", "_left_to_relay")]
    assert sum(went) == 20 and went[2] <= 1, went


async def test_with_emit_at_commit_off_the_relay_delivers_every_send(db_dsn: str) -> None:
    """`outbox.emit_at_commit = false`: Ava's 5 sends all reach Mia, in
    order, through the relay; none went out at its commit."""
    base = settings_for(db_dsn)
    settings = dataclasses.replace(
        base, outbox=dataclasses.replace(base.outbox, emit_at_commit=False)
    )
    async with running(settings) as harness:
        ava = await harness.client(AVA)
        mia = await harness.client(MIA)
        texts = [f"late-{i}" for i in range(5)]
        for text in texts:
            ack = await ava.call(
                "send_message", {"conversationId": DIRECT_CONVERSATION, "content": text}
            )
            assert ack["ok"], ack
        got = await mia.wait_count("new_message", 5, where=in_conversation)
        assert [d["message"]["content"] for d in got] == texts
        assert "early_emits" not in harness.app.metrics.snapshot()


async def test_receipts_between_sends_leave_the_next_send_at_its_commit(bridge: Harness) -> None:
    """Ava and Mia chat with ticks: each message Ava sends, Mia's device acks
    (message_delivered) and Mia reads (mark_seen), and Ava sees both ticks
    before she sends the next. The receipts are written by the bridge but
    not by a send, so the relay delivers them; the relay waits for sends that
    went out at their commit, not for them. Ava's 8 messages reach Mia once
    each in order, Ava gets every tick, and none of Ava's sends after the
    first waited for the relay."""
    app = bridge.app
    ava = await bridge.client(AVA)
    mia = await bridge.client(MIA)
    # The demo's unread message first, so that each mark_seen below reads one.
    assert (await mia.call("mark_seen", {"conversationId": DIRECT_CONVERSATION}))["ok"]
    await ava.wait_for("message_seen")
    texts = [f"tick-{i}" for i in range(8)]
    for i, text in enumerate(texts):
        ack = await ava.call(
            "send_message", {"conversationId": DIRECT_CONVERSATION, "content": text}
        )
        assert ack["ok"], ack
        message_id = ack["message"]["id"]
        got = await mia.wait_count("new_message", i + 1, where=in_conversation)
        assert got[-1]["message"]["id"] == message_id
        assert (await mia.call("message_delivered", {"messageIds": [message_id]}))["ok"]
        await ava.wait_for("message_delivered", lambda d, m=message_id: m in d["messageIds"])
        assert (await mia.call("mark_seen", {"messageId": message_id}))["marked"] == 1
        await ava.wait_for("message_seen", lambda d, m=message_id: d["messageId"] == m)
    await asyncio.sleep(0.3)  # anything sent twice would be here by now
    live = [d["message"]["content"] for d in mia.received("new_message") if in_conversation(d)]
    assert live == texts
    counts = app.metrics.snapshot()
    went = [counts.get(f"early_emits{k}", 0) for k in ("", "_overtaken", "_left_to_relay")]
    assert sum(went) == 8 and went[2] <= 1, went
