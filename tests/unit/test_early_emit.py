"""EarlyEmits (bridge/early_emit.py) on its own: which committed sends go
out at once, which are left to the relay, and what the answer tells the
relay (whether it may gather them)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bridge.early_emit import EarlyEmits
from bridge.metrics import Metrics
from bridge.outbox.delivery import emit_change
from tests.unit.test_translate import BASE, BO, CONV, INF, SENDER, conversation, message

# As asyncpg reads the send statement's timestamptz (bridge/send_changes.py).
CREATED = datetime(2026, 11, 24, 10, 0, 1, tzinfo=UTC)


class Sockets:
    """Where the emits go: the new_message events in order."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def __call__(self, event: str, payload: dict[str, Any], rooms: Sequence[str]) -> None:
        if event == "new_message":
            self.messages.append(payload["message"]["id"])


def sent(outbox_id: int, prev: int | None) -> list[dict[str, Any]]:
    """The groups of one committed send: message m-<outbox_id>."""
    payload = {
        "message": message(id=f"m-{outbox_id}"),
        "conversation": conversation(),
        "sender": SENDER,
    }
    row = {
        "id": outbox_id,
        "topic": "message.created",
        "recipients": [BO, INF],
        "payload": payload,
        "created_at": CREATED,
    }
    return [{"conversation_id": CONV, "prev": prev, "rows": [row]}]


def early() -> tuple[EarlyEmits, Sockets, Metrics]:
    sockets, metrics = Sockets(), Metrics()
    return EarlyEmits(sockets, BASE, metrics), sockets, metrics


async def test_a_send_after_the_relay_passed_its_predecessor_goes_out_at_once() -> None:
    """The relay emitted change 10; the send after it (prev 10) goes out at
    its commit, and the relay may gather it: it owes nothing else."""
    emits, sockets, _ = early()
    assert emits.passed(10, CONV) is False
    assert await emits.committed(sent(11, 10)) is True
    assert sockets.messages == ["m-11"]
    assert emits.passed(11, CONV) is True  # the relay skips it


async def test_a_send_whose_predecessor_has_not_gone_out_is_left_to_the_relay() -> None:
    """Nothing from the conversation went out since the start: the send is
    left to the relay, which must read at once."""
    emits, sockets, metrics = early()
    assert await emits.committed(sent(11, 10)) is False
    assert sockets.messages == []
    assert metrics.counts["early_emits_left_to_relay"] == 1


async def test_the_relay_passing_an_older_change_late_does_not_hold_up_the_next_send() -> None:
    """Changes 11 and 12 went out at their commit; the relay then passes 11
    and 12 one at a time. Send 13 (prev 12) arriving between those two
    passes still goes out at once, in order."""
    emits, sockets, _ = early()
    emits.passed(10, CONV)
    assert await emits.committed(sent(11, 10)) is True
    assert await emits.committed(sent(12, 11)) is True
    assert emits.passed(11, CONV) is True
    assert await emits.committed(sent(13, 12)) is True
    assert sockets.messages == ["m-11", "m-12", "m-13"]


async def test_a_send_the_relay_emitted_first_is_not_emitted_again() -> None:
    """The relay read send 11 between its commit and its emit at commit and
    emitted it: the emit at commit sends nothing twice and owes the relay
    nothing."""
    emits, sockets, metrics = early()
    emits.passed(10, CONV)
    emits.passed(11, CONV)  # the relay emitted it itself
    assert await emits.committed(sent(11, 10)) is True
    assert sockets.messages == []
    assert metrics.counts["early_emits_overtaken"] == 1


async def test_a_send_with_a_push_to_write_still_needs_the_relay() -> None:
    """With FCM configured the relay writes each message's push job: the
    send goes out at its commit all the same, but the relay must read now."""
    emits, sockets, _ = early()
    emits.pushes_owed = True
    emits.passed(10, CONV)
    assert await emits.committed(sent(11, 10)) is False
    assert sockets.messages == ["m-11"]


async def test_a_later_change_relayed_first_leaves_the_send_to_the_relay() -> None:
    """A receipt (change 12) committed before send 11 and the relay emitted
    it, while 11 was still open: the relay has not emitted 11, so 11 is left
    to it (and it must read now), not taken as already out."""
    emits, sockets, metrics = early()
    emits.passed(10, CONV)
    emits.passed(12, CONV)
    assert await emits.committed(sent(11, 10)) is False
    assert sockets.messages == []
    assert metrics.counts["early_emits_left_to_relay"] == 1


async def test_a_send_emitted_at_its_commit_reads_as_the_relay_reads_it() -> None:
    """The same outbox row, as the send statement hands it over (grouped by
    conversation) and as the relay reads it (with its conversation_id),
    becomes the same change with the same emits: a client cannot tell which
    path delivered it."""
    (group,) = sent(11, 10)
    (row,) = group["rows"]
    early_way = await emit_change(row, None, BASE, Metrics(), CONV)
    relay_way = await emit_change({**row, "conversation_id": CONV}, None, BASE, Metrics())
    assert early_way is not None and relay_way is not None
    assert early_way == relay_way
    assert early_way[0].conversation_id == CONV
    assert early_way[0].created_at == "2026-11-24T10:00:01+00:00"
