"""A push about a message that is then unsent, through the real
firebase-admin SDK to the local FCM endpoint: one already on the device is
replaced (same Android tag, APNs collapse id, web push Topic) with the badge
recounted; one not sent yet is withdrawn or speaks of the message before."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.fcm_standin import FcmStandIn
from tests.support.harness import Harness, running
from tests.support.push import push_settings, register, send
from tests.support.waits import eventually


async def unsend(bridge: Harness, message_id: str) -> None:
    status, body = await bridge.request("DELETE", f"/api/messages/{message_id}", AVA)
    assert status == 200, body


async def leo_unread(db: asyncpg.Connection) -> int:
    return int(
        await db.fetchval(
            "select sum(influencer_unread_count) from public.conversations"
            " where influencer_id = $1",
            LEO,
        )
    )


def same_slot(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Both pushes occupy the same place in the tray on every platform."""
    return (
        first["android"]["notification"]["tag"] == second["android"]["notification"]["tag"]
        and first["apns"]["headers"]["apns-collapse-id"]
        == second["apns"]["headers"]["apns-collapse-id"]
        and first["webpush"]["headers"]["Topic"] == second["webpush"]["headers"]["Topic"]
    )


async def test_a_shown_push_is_replaced_when_its_message_is_unsent(
    db_dsn: str, db: asyncpg.Connection, fcm: FcmStandIn, tmp_path: Path
) -> None:
    """Ava's message (the only one Leo has not read there) reaches his
    phone; she unsends it: his phone gets a push in the same slot saying it
    was unsent, typed message_deleted with the unsent id, and the badge is
    his unread total without it."""
    async with running(push_settings(db_dsn, fcm, tmp_path)) as bridge:
        await register(bridge, LEO, "leo-phone")
        status, _ = await bridge.request(
            "POST",
            "/api/messages/mark-seen",
            LEO,
            json={"conversation_id": CAMPAIGN_CONVERSATION},
        )
        assert status == 200  # nothing else unread in this conversation
        message_id = await send(bridge, AVA, CAMPAIGN_CONVERSATION, "Our budget is 5k")
        await eventually(lambda: len(fcm.messages_to("leo-phone")) == 1)
        await unsend(bridge, message_id)
        await eventually(lambda: len(fcm.messages_to("leo-phone")) == 2)
    shown, replacement = fcm.messages_to("leo-phone")
    assert shown["notification"]["body"] == "Our budget is 5k"
    assert same_slot(shown, replacement)
    assert replacement["notification"] == {"title": "Ava Brandt", "body": "This message was unsent"}
    assert replacement["data"]["type"] == "message_deleted"
    assert replacement["data"]["unsent_message_id"] == message_id
    badge = await leo_unread(db)
    assert replacement["android"]["notification"]["notification_count"] == badge
    assert replacement["apns"]["payload"]["aps"]["badge"] == badge
    assert shown["android"]["notification"]["notification_count"] == badge + 1
    # The replacement does not ring again.
    assert shown["apns"]["payload"]["aps"]["sound"] == "default"
    assert "sound" not in replacement["apns"]["payload"]["aps"]
    assert (shown["android"]["priority"], replacement["android"]["priority"]) == ("high", "normal")


async def test_the_replacement_shows_the_message_still_unread(
    db_dsn: str, fcm: FcmStandIn, tmp_path: Path
) -> None:
    """Two messages pushed one after the other; the second unsent: the
    tray shows the first one again."""
    async with running(push_settings(db_dsn, fcm, tmp_path)) as bridge:
        await register(bridge, LEO, "leo-phone")
        first = await send(bridge, AVA, CAMPAIGN_CONVERSATION, "First thought")
        await eventually(lambda: len(fcm.messages_to("leo-phone")) == 1)
        second = await send(bridge, AVA, CAMPAIGN_CONVERSATION, "Second thought")
        await eventually(lambda: len(fcm.messages_to("leo-phone")) == 2)
        await unsend(bridge, second)
        await eventually(lambda: len(fcm.messages_to("leo-phone")) == 3)
    replacement = fcm.messages_to("leo-phone")[2]
    assert replacement["notification"]["body"] == "First thought"
    assert replacement["data"]["message_id"] == first
    assert replacement["data"]["type"] == "new_message"


async def test_a_push_not_sent_yet_never_shows_the_unsent_text(
    db_dsn: str, db: asyncpg.Connection, fcm: FcmStandIn, tmp_path: Path
) -> None:
    """While the cooldown holds pushes back, Ava sends two more and unsends
    the last: the waiting push now speaks of the one before (one message);
    unsending that too withdraws it. The unsent texts never reach FCM."""
    async with running(push_settings(db_dsn, fcm, tmp_path, cooldown=60.0)) as bridge:
        await register(bridge, LEO, "leo-phone")
        await send(bridge, AVA, CAMPAIGN_CONVERSATION, "Hello")
        await eventually(lambda: len(fcm.messages_to("leo-phone")) == 1)
        middle = await send(bridge, AVA, CAMPAIGN_CONVERSATION, "Middle")
        last = await send(bridge, AVA, CAMPAIGN_CONVERSATION, "Secret")

        async def pending() -> list[asyncpg.Record]:
            return list(
                await db.fetch(
                    "select merged, body, data->>'message_id' as shows from bridge.push_jobs"
                    " where user_id = $1 and status = 'pending'",
                    LEO,
                )
            )

        def pending_where(check: Callable[[list[asyncpg.Record]], bool]) -> Callable[[], Any]:
            async def holds() -> bool:
                return check(await pending())

            return holds

        await eventually(pending_where(lambda jobs: bool(jobs) and jobs[0]["merged"] == 2))
        assert [(j["merged"], j["shows"]) for j in await pending()] == [(2, last)]
        await unsend(bridge, last)
        await eventually(pending_where(lambda jobs: bool(jobs) and jobs[0]["shows"] == middle))
        [job] = await pending()
        assert (job["merged"], job["body"]) == (1, "Middle")
        await unsend(bridge, middle)
        await eventually(pending_where(lambda jobs: not jobs))
    assert [m["notification"]["body"] for m in fcm.messages_to("leo-phone")] == ["Hello"]
