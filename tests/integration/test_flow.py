"""The flow machine of bid and campaign conversations: legal steps move the
state and post a system message in one transaction; illegal steps, wrong
roles and strangers are refused and write nothing."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from tests.conftest import (
    AVA,
    BID_CONVERSATION,
    CAMPAIGN_AUTUMN,
    CAMPAIGN_CONVERSATION,
    CAMPAIGN_SUMMER,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
    both_grant_modes,
)
from tests.integration.bridge_harness import place_bid

# Runs on projects with and without Supabase's default privileges on public.
pytestmark = both_grant_modes


async def act(db: asyncpg.Connection, user: str, conversation: str, action: str) -> asyncpg.Record:
    async with acting_as(db, user_claims(user)):
        row = await db.fetchrow(
            "select * from public.apply_flow_action($1, $2)", conversation, action
        )
    assert row is not None
    return row


async def state(db: asyncpg.Connection, conversation: str) -> tuple[object, ...]:
    row = await db.fetchrow(
        "select flow_state, awaiting_role, chat_status,"
        " (select count(*) from public.messages where conversation_id = c.id) as messages,"
        " (select count(*) from bridge.outbox) as outbox"
        " from public.conversations c where id = $1",
        conversation,
    )
    assert row is not None
    return tuple(row)


async def test_bid_conversation_runs_from_connection_request_to_completion(
    db: asyncpg.Connection,
) -> None:
    """Leo bids, Ava connects, and the two walk the whole flow: every step
    moves the state, hands the turn over and posts its system message."""
    bid = await place_bid(db, LEO, AVA, CAMPAIGN_AUTUMN)
    async with acting_as(db, user_claims(AVA)):
        conv = await db.fetchrow("select * from public.start_bid_conversation($1)", bid)
    assert conv["flow_state"] == "influencer_responding"
    assert conv["awaiting_role"] == "influencer"
    assert conv["chat_status"] == "automated"
    first = await db.fetchrow(
        "select sender_id, content, message_type from public.messages where conversation_id = $1",
        conv["id"],
    )
    assert dict(first) == {
        "sender_id": uuid.UUID(AVA),
        "content": "You have a new connection request",
        "message_type": "system",
    }
    steps = [
        (LEO, "accept", "brand_owner_confirming", "brand_owner", "automated"),
        (AVA, "confirm", "work_in_progress", "influencer", "active"),
        (LEO, "submit_work", "work_review", "brand_owner", "active"),
        (AVA, "request_revision", "work_in_progress", "influencer", "active"),
        (LEO, "submit_work", "work_review", "brand_owner", "active"),
        (AVA, "approve_work", "completed", None, "closed"),
    ]
    for user, action, flow_state, awaiting, chat_status in steps:
        row = await act(db, user, str(conv["id"]), action)
        assert (row["flow_state"], row["awaiting_role"], row["chat_status"]) == (
            flow_state,
            awaiting,
            chat_status,
        ), action
    texts = await db.fetch(
        "select content from public.messages where conversation_id = $1 order by created_at, id",
        conv["id"],
    )
    assert len(texts) == 1 + len(steps)
    assert texts[-1]["content"] == "The work was approved. Collaboration completed."


async def test_flow_functions_answer_with_the_row_as_committed(db: asyncpg.Connection) -> None:
    """What the edge function returns (start_bid_conversation,
    apply_flow_action) is the conversation after the system message: its
    last message is that message, and the receiver's unread count has it;
    the very row a fresh read shows."""

    async def committed(answer: asyncpg.Record) -> None:
        stored = await db.fetchrow("select * from public.conversations where id = $1", answer["id"])
        assert dict(answer) == dict(stored)
        last = await db.fetchval(
            "select id from public.messages where conversation_id = $1"
            " order by created_at desc, id desc limit 1",
            answer["id"],
        )
        assert answer["last_message_id"] == last

    bid = await place_bid(db, LEO, AVA, CAMPAIGN_AUTUMN)
    async with acting_as(db, user_claims(AVA)):
        started = await db.fetchrow("select * from public.start_bid_conversation($1)", bid)
    await committed(started)
    assert started["influencer_unread_count"] == 1
    accepted = await act(db, LEO, str(started["id"]), "accept")
    await committed(accepted)
    assert accepted["brand_owner_unread_count"] == 1


async def test_starting_a_bid_conversation_twice_returns_the_same_one(
    db: asyncpg.Connection,
) -> None:
    """A retried connect neither creates a second conversation nor a second
    connection request."""
    bid = await place_bid(db, LEO, AVA)
    async with acting_as(db, user_claims(AVA)):
        first = await db.fetchval("select id from public.start_bid_conversation($1)", bid)
        second = await db.fetchval("select id from public.start_bid_conversation($1)", bid)
    assert first == second
    assert (
        await db.fetchval("select count(*) from public.messages where conversation_id = $1", first)
        == 1
    )


async def test_campaign_conversation_starts_with_a_connection_request(
    db: asyncpg.Connection,
) -> None:
    """Ava invites Mia to a campaign: Mia is awaited and told of the request."""
    async with acting_as(db, user_claims(AVA)):
        conv = await db.fetchrow(
            "select * from public.start_campaign_conversation($1, $2)", CAMPAIGN_SUMMER, MIA
        )
    assert (conv["conversation_type"], conv["flow_state"], conv["awaiting_role"]) == (
        "campaign",
        "influencer_responding",
        "influencer",
    )


@pytest.mark.parametrize(
    ("user", "conversation", "action", "error"),
    [
        # Bid conversation is in brand_owner_confirming, awaiting Ava.
        (LEO, BID_CONVERSATION, "confirm", asyncpg.InsufficientPrivilegeError),
        (AVA, BID_CONVERSATION, "submit_work", asyncpg.InvalidParameterValueError),
        (AVA, BID_CONVERSATION, "accept", asyncpg.InvalidParameterValueError),
        (AVA, BID_CONVERSATION, "connect", asyncpg.InvalidParameterValueError),
        (AVA, BID_CONVERSATION, "no_such_action", asyncpg.InvalidParameterValueError),
        (MIA, BID_CONVERSATION, "confirm", asyncpg.NoDataFoundError),
        # Campaign conversation is in work_in_progress, awaiting Leo.
        (AVA, CAMPAIGN_CONVERSATION, "submit_work", asyncpg.InsufficientPrivilegeError),
        (AVA, DIRECT_CONVERSATION, "confirm", asyncpg.InvalidParameterValueError),
        (AVA, "00000000-0000-4000-8000-000000000000", "confirm", asyncpg.NoDataFoundError),
    ],
    ids=[
        "influencer-takes-brand-owner-step",
        "step-from-another-state",
        "other-side-accepts",
        "connect-again",
        "unknown-action",
        "stranger-acts",
        "brand-owner-submits-work",
        "direct-has-no-flow",
        "unknown-conversation",
    ],
)
async def test_refused_flow_actions_write_nothing(
    db: asyncpg.Connection, user: str, conversation: str, action: str, error: type[Exception]
) -> None:
    """A step that is not the caller's, not legal from the current state, or
    on a conversation the caller cannot see is refused with a clear error,
    and the state, the messages and the outbox stay as they were."""
    watched = BID_CONVERSATION if conversation != CAMPAIGN_CONVERSATION else conversation
    before = await state(db, watched)
    with pytest.raises(error):
        await act(db, user, conversation, action)
    assert await state(db, watched) == before


async def test_strangers_cannot_start_conversations_about_others_bids(
    db: asyncpg.Connection,
) -> None:
    """Only the bid's brand owner connects; anyone else hears "not found"."""
    bid = await place_bid(db, LEO, AVA)
    for user in (LEO, MIA):
        with pytest.raises(asyncpg.NoDataFoundError):
            async with acting_as(db, user_claims(user)):
                await db.fetchval("select id from public.start_bid_conversation($1)", bid)
    assert (
        await db.fetchval("select count(*) from public.conversations where bid_id = $1", bid) == 0
    )


async def test_closed_conversation_refuses_user_messages(db: asyncpg.Connection) -> None:
    """After a decline the chat is closed: new user messages are refused."""
    async with acting_as(db, user_claims(AVA)):
        conv = await db.fetchval(
            "select id from public.start_campaign_conversation($1, $2)", CAMPAIGN_SUMMER, MIA
        )
    await act(db, MIA, str(conv), "decline")
    with pytest.raises(asyncpg.CheckViolationError, match="closed"):
        async with acting_as(db, user_claims(MIA)):
            await db.execute(
                "insert into public.messages (conversation_id, sender_id, content)"
                " values ($1, $2, 'wait!')",
                conv,
                MIA,
            )
