"""Edit and unsend with real clients: python-socketio sockets, the REST API,
and supabase-js-style writes straight into Postgres as the user. The sender
alone, within the window, never a system message; `message_updated` and
`message_deleted` reach the room and both people; the chat list and the
unread counters follow; every refusal is clear and changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from typing import Any

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.conftest import both_grant_modes
from tests.support.database import fingerprint
from tests.support.demo import ABSENT, AVA, CAMPAIGN_CONVERSATION, DIRECT_CONVERSATION, LEO, MIA
from tests.support.harness import (
    Harness,
    about,
    chat_entry,
    page,
    running,
    seed_client,
    settings_for,
    socket_send,
)
from tests.support.waits import QUIET

pytestmark = both_grant_modes


async def backdate(db: asyncpg.Connection, message_id: str, minutes: int) -> None:
    """The message was sent `minutes` ago (as the owner: no rules apply)."""
    await db.execute(
        "update public.messages set created_at = now() - make_interval(mins => $2) where id = $1",
        message_id,
        minutes,
    )


async def system_message(db: asyncpg.Connection, sender: str) -> str:
    return str(
        await db.fetchval(
            "select id from public.messages where conversation_id = $1 and sender_id = $2"
            " and message_type = 'system' limit 1",
            CAMPAIGN_CONVERSATION,
            sender,
        )
    )


async def test_an_edit_reaches_both_people_and_the_chat_list(bridge: Harness) -> None:
    """Leo fixes a typo: his ack has the new text and edited_at; Ava's open
    chat gets message_updated, her chat list entry follows (it is the last
    message), and REST history and the chat list show the new text in place."""
    ava, leo = await seed_client(bridge, AVA), await seed_client(bridge, LEO)
    await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
    message_id = await socket_send(leo, "Draft is uo")
    await ava.wait_for("new_message", lambda d: d["message"]["id"] == message_id)

    ack = await leo.call("edit_message", {"messageId": message_id, "message": "Draft is up"})
    assert ack["ok"], ack
    assert ack["message"]["content"] == "Draft is up" and ack["message"]["edited_at"]

    updated = await ava.wait_for("message_updated", about(CAMPAIGN_CONVERSATION))
    assert updated["message"]["id"] == message_id
    assert updated["message"]["content"] == "Draft is up"
    assert updated["message"]["edited_at"] == ack["message"]["edited_at"]
    listed = await ava.wait_for(
        "conversation_list_updated", lambda d: d["action"] == "message_updated"
    )
    assert listed["is_last_message"] and listed["message"]["content"] == "Draft is up"
    await leo.wait_for("message_updated", about(CAMPAIGN_CONVERSATION))

    history = await page(bridge, AVA, CAMPAIGN_CONVERSATION)
    assert history[-1]["id"] == message_id and history[-1]["content"] == "Draft is up"
    entry = await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION)
    assert entry["last_message"]["content"] == "Draft is up"
    assert entry["last_message"]["edited_at"]


async def test_unsending_an_unread_message_leaves_a_tombstone_and_lowers_the_count(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Leo sends two, Ava has read neither, Leo unsends the last: everyone
    gets message_deleted with a tombstone (no text, deleted_at), Ava's
    unread count drops by one, the chat list shows the tombstone as last
    message in its place; unsending again is a quiet no-op; marking all
    read afterwards counts only the message left."""
    ava, leo = await seed_client(bridge, AVA), await seed_client(bridge, LEO)
    await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
    first = await socket_send(leo, "Here is the invoice")
    second = await socket_send(leo, "Oops, wrong file")
    await ava.wait_count("unread_count_updated", 2, about(CAMPAIGN_CONVERSATION))
    before = (await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION))["unread_count"]

    ack = await leo.call("unsend_message", second)
    assert ack["ok"], ack
    assert ack["message"]["content"] == "" and ack["message"]["deleted_at"]
    deleted = await ava.wait_for("message_deleted", about(CAMPAIGN_CONVERSATION))
    assert deleted["message_id"] == second
    assert deleted["message"]["content"] == "" and deleted["message"]["media_url"] is None
    unread = await ava.wait_for("unread_count_updated", lambda d: d["action"] == "message_deleted")
    assert unread["unread_count"] == before - 1
    await leo.wait_for("message_deleted", about(CAMPAIGN_CONVERSATION))

    entry = await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION)
    assert entry["unread_count"] == before - 1
    assert entry["last_message"]["id"] == second and entry["last_message"]["deleted_at"]
    history = await page(bridge, AVA, CAMPAIGN_CONVERSATION)
    assert [m["id"] for m in history[-2:]] == [first, second]
    assert history[-1]["content"] == "" and history[-1]["seq"] == history[-2]["seq"] + 1

    again = await leo.call("unsend_message", {"messageId": second})
    assert again["ok"] and again["message"]["deleted_at"] == ack["message"]["deleted_at"]
    await asyncio.sleep(QUIET)
    assert len(ava.received("message_deleted")) == 1  # nothing changed, nothing announced

    seen = await ava.call("mark_seen", {"conversationId": CAMPAIGN_CONVERSATION})
    assert seen["ok"]
    assert (await chat_entry(bridge, AVA, CAMPAIGN_CONVERSATION))["unread_count"] == 0
    assert await db.fetchval("select is_read from public.messages where id = $1", first)


@pytest.mark.parametrize(
    ("who", "event", "payload", "code"),
    [
        ("ava", "edit_message", {"message": "mine now"}, "forbidden"),
        ("ava", "unsend_message", {}, "forbidden"),
        ("mia", "edit_message", {"message": "hi"}, "not_found"),
        ("mia", "unsend_message", {}, "not_found"),
        ("leo", "edit_message", {"messageId": ABSENT, "message": "x"}, "not_found"),
        ("leo", "unsend_message", {"messageId": ABSENT}, "not_found"),
        (
            "leo",
            "edit_message",
            {"conversationId": DIRECT_CONVERSATION, "message": "x"},
            "not_found",
        ),
        ("leo", "edit_message", {"message": "   "}, "missing_field"),
        ("leo", "edit_message", {"message": ["x"]}, "invalid_field"),
        ("leo", "edit_message", {"messageId": 7, "message": "x"}, "invalid_field"),
        ("leo", "unsend_message", {"messageId": "nope"}, "invalid_field"),
        ("leo", "edit_message", "not-an-object", "invalid_field"),
    ],
    ids=[
        "receiver-edits",
        "receiver-unsends",
        "outsider-edits",
        "outsider-unsends",
        "unknown-edit",
        "unknown-unsend",
        "wrong-conversation",
        "blank-text",
        "text-not-a-string",
        "id-not-a-string",
        "id-not-a-uuid",
        "payload-not-an-object",
    ],
)
async def test_bad_edits_and_unsends_are_refused_and_change_nothing(
    bridge: Harness, db: asyncpg.Connection, who: str, event: str, payload: Any, code: str
) -> None:
    """Someone else's message, a conversation of others, unknown ids and
    wrong types: an error ack with a clear code, no row or outbox change."""
    leo = await seed_client(bridge, LEO)
    message_id = await socket_send(leo, "Only I may change this")
    clients = {"ava": await seed_client(bridge, AVA), "mia": await seed_client(bridge, MIA)}
    clients["leo"] = leo
    if isinstance(payload, dict):
        payload = {"messageId": message_id, **payload}
    before = await fingerprint(db)
    ack = await clients[who].call(event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == code, ack
    assert ack["error"]["message"]
    assert await fingerprint(db) == before


async def test_system_messages_and_closed_windows_are_refused(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """A flow step's message cannot be edited or unsent, even by its actor;
    a message older than the window cannot either; an unsent one cannot be
    edited. Each says why, and nothing changes."""
    ava, leo = await seed_client(bridge, AVA), await seed_client(bridge, LEO)
    flow = await system_message(db, AVA)
    old = await socket_send(leo, "Sent a while ago")
    await backdate(db, old, 16)
    gone = await socket_send(leo, "Unsent soon")
    assert (await leo.call("unsend_message", gone))["ok"]
    before = await fingerprint(db)
    cases = [
        (ava, "edit_message", {"messageId": flow, "message": "rewritten"}, "not_editable"),
        (ava, "unsend_message", flow, "not_editable"),
        (leo, "edit_message", {"messageId": old, "message": "late"}, "edit_window_closed"),
        (leo, "unsend_message", old, "edit_window_closed"),
        (leo, "edit_message", {"messageId": gone, "message": "back"}, "not_editable"),
    ]
    for client, event, payload, code in cases:
        ack = await client.call(event, payload)
        assert ack["ok"] is False and ack["error"]["code"] == code, (event, payload, ack)
    assert "15 min" in (await leo.call("unsend_message", old))["error"]["message"]
    assert await fingerprint(db) == before


async def test_rest_edits_and_unsends(bridge: Harness, db: asyncpg.Connection) -> None:
    """PATCH and DELETE /api/messages/:id: 200 with the message; 403, 404,
    409 and 400 with `{ error }` for the refusals, nothing changed."""
    leo = await seed_client(bridge, LEO)
    message_id = await socket_send(leo, "Over REST")
    path = f"/api/messages/{message_id}"
    status, body = await bridge.request("PATCH", path, LEO, json={"message": "Over REST, edited"})
    assert status == 200 and body["message"]["content"] == "Over REST, edited", body
    before = await fingerprint(db)
    refusals = [
        ("PATCH", path, AVA, {"message": "x"}, 403, "forbidden"),
        ("DELETE", path, MIA, None, 404, "not_found"),
        ("PATCH", path, LEO, {"message": ""}, 400, "missing_field"),
        ("PATCH", path, LEO, {"content": 3}, 400, "invalid_field"),
        ("PATCH", "/api/messages/not-a-uuid", LEO, {"message": "x"}, 400, "invalid_field"),
        ("DELETE", f"/api/messages/{ABSENT}", LEO, None, 404, "not_found"),
    ]
    for method, where, user, json, expected, code in refusals:
        status, body = await bridge.request(method, where, user, json=json)
        assert (status, body["error"]["code"]) == (expected, code), (method, where, body)
    assert await fingerprint(db) == before
    status, body = await bridge.request("DELETE", path, LEO)
    assert status == 200 and body["message"]["deleted_at"] and body["message"]["content"] == ""
    await backdate(db, message_id, 30)
    status, body = await bridge.request("PATCH", path, LEO, json={"message": "x"})
    assert (status, body["error"]["code"]) == (409, "not_editable")


async def test_supabase_js_writes_follow_the_same_rules(
    bridge: Harness, db: asyncpg.Connection
) -> None:
    """Straight into Postgres as the user (what supabase-js does): the sender
    updates content and deleted_at and the bridge relays both; the receiver
    cannot touch the text; the window and system messages hold; a receiver's
    read of a tombstone and a sender's "read" of their own message change
    nothing; the RPCs answer as the bridge does."""
    ava = await seed_client(bridge, AVA)
    await ava.call("join_conversation", CAMPAIGN_CONVERSATION)
    leo = await seed_client(bridge, LEO)
    message_id = await socket_send(leo, "typed in the app")
    async with acting_as(db, user_claims(LEO)):
        await db.execute(
            "update public.messages set content = 'fixed in the app' where id = $1", message_id
        )
    updated = await ava.wait_for("message_updated", about(CAMPAIGN_CONVERSATION))
    assert updated["message"]["content"] == "fixed in the app"

    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        async with acting_as(db, user_claims(AVA)):
            await db.execute(
                "update public.messages set content = 'mine' where id = $1", message_id
            )
    assert refused.value.hint == "forbidden"
    flow = await system_message(db, LEO)
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        async with acting_as(db, user_claims(LEO)):
            await db.execute("update public.messages set deleted_at = now() where id = $1", flow)
    assert refused.value.hint == "not_editable"
    async with acting_as(db, user_claims(LEO)):
        await db.execute("update public.messages set is_read = true where id = $1", message_id)
    assert not await db.fetchval("select is_read from public.messages where id = $1", message_id)

    async with acting_as(db, user_claims(LEO)):
        tombstone = await db.fetchrow("select * from public.unsend_message($1)", message_id)
    assert tombstone["content"] == "" and tombstone["deleted_at"] is not None
    await ava.wait_for("message_deleted", about(CAMPAIGN_CONVERSATION))
    async with acting_as(db, user_claims(AVA)):
        await db.execute("update public.messages set is_read = true where id = $1", message_id)
    assert not await db.fetchval("select is_read from public.messages where id = $1", message_id)

    late = await socket_send(leo, "an hour ago")
    await backdate(db, late, 60)
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        async with acting_as(db, user_claims(LEO)):
            await db.fetchrow("select * from public.edit_message($1, 'late')", late)
    assert refused.value.hint == "edit_window_closed"
    async with acting_as(db, user_claims(MIA)):
        with pytest.raises(asyncpg.NoDataFoundError):
            await db.fetchrow("select * from public.unsend_message($1)", late)


async def test_the_window_is_the_setting(db_dsn: str, db: asyncpg.Connection) -> None:
    """`server.edit_window` is what SQL enforces: with 0, nothing can be
    edited any more, also not by a supabase-js client."""
    base = settings_for(db_dsn)
    settings = dataclasses.replace(base, server=dataclasses.replace(base.server, edit_window=0.0))
    async with running(settings) as bridge:
        leo = await bridge.client(LEO)
        message_id = await socket_send(leo, "final")
        ack = await leo.call("edit_message", {"messageId": message_id, "message": "not final"})
        assert ack["error"]["code"] == "edit_window_closed", ack
    assert await db.fetchval("select edit_window from public.message_rules") == datetime.timedelta(
        0
    )
    with pytest.raises(asyncpg.CheckViolationError):
        async with acting_as(db, user_claims(LEO)):
            await db.execute(
                "update public.messages set deleted_at = now() where id = $1", message_id
            )
