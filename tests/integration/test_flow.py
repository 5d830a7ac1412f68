"""The flow machine of bid and campaign conversations: legal steps move the
state and post a system message in one transaction; illegal steps, wrong
roles and strangers are refused and write nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from bridge.db import acting_as, user_claims
from bridge.embedded import EmbeddedPostgres
from tests.conftest import both_grant_modes
from tests.support.database import place_bid
from tests.support.demo import (
    AVA,
    BID_CONVERSATION,
    CAMPAIGN_AUTUMN,
    CAMPAIGN_CONVERSATION,
    CAMPAIGN_SUMMER,
    DIRECT_CONVERSATION,
    LEO,
    MIA,
)

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


# -- every transition of docs/flow.md, for its allowed and refused actors ------

FLOW_DOC = Path(__file__).resolve().parents[2] / "docs" / "flow.md"
# How to reach each state from a new conversation.
PATH_TO = {
    "influencer_responding": [],
    "brand_owner_confirming": ["accept"],
    "work_in_progress": ["accept", "confirm"],
    "work_review": ["accept", "confirm", "submit_work"],
}
ROLE = {"brand owner": "brand_owner", "influencer": "influencer", "—": None}


@dataclass(frozen=True)
class Transition:
    from_state: str
    action: str
    actor: str
    to_state: str
    awaiting: str | None
    chat_status: str
    message: str


def documented_transitions() -> list[Transition]:
    """The transition table of docs/flow.md, as written there."""
    found = []
    for line in FLOW_DOC.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("from state", "---"):
            continue
        from_state, action, who, to_state, awaiting, chat_status, message = cells
        found.append(
            Transition(
                from_state, action, ROLE[who], to_state, ROLE[awaiting], chat_status, message
            )
        )
    return found


TRANSITIONS = [t for t in documented_transitions() if t.action != "connect"]


def _doc_message(t: Transition, conversation_type: str) -> str:
    return t.message.replace("bid (campaign)", conversation_type)


async def _conversation_in(
    db: asyncpg.Connection, conversation_type: str, flow_state: str
) -> tuple[str, dict[str, str]]:
    """A fresh bid (Ava and Leo) or campaign (Ava and Mia) conversation
    walked to `flow_state`; returns its id and who plays which part."""
    if conversation_type == "bid":
        people = {"brand_owner": AVA, "influencer": LEO, "stranger": MIA}
        bid = await place_bid(db, LEO, AVA)
        async with acting_as(db, user_claims(AVA)):
            conv = await db.fetchval("select id from public.start_bid_conversation($1)", bid)
    else:
        people = {"brand_owner": AVA, "influencer": MIA, "stranger": LEO}
        async with acting_as(db, user_claims(AVA)):
            conv = await db.fetchval(
                "select id from public.start_campaign_conversation($1, $2)", CAMPAIGN_SUMMER, MIA
            )
    steps = {t.action: t.actor for t in TRANSITIONS}
    for action in PATH_TO[flow_state]:
        actor = steps[action]
        assert actor is not None
        await act(db, people[actor], str(conv), action)
    return str(conv), people


async def test_the_documented_table_is_the_one_the_database_enforces(
    pg_cluster: EmbeddedPostgres, template_db: str
) -> None:
    """docs/flow.md lists the nine transitions (cancel in two states) and
    public.flow_transitions holds exactly those, for bids and campaigns."""
    documented = {
        (
            "new" if t.from_state == "(new)" else t.from_state,
            t.action,
            t.actor,
            t.to_state,
            t.awaiting,
            t.chat_status,
        )
        for t in documented_transitions()
    }
    assert len(documented) == 9
    assert {("work_in_progress", "cancel"), ("brand_owner_confirming", "cancel")} <= {
        (d[0], d[1]) for d in documented
    }
    conn = await asyncpg.connect(pg_cluster.dsn_for(template_db))
    try:
        for conversation_type in ("bid", "campaign"):
            rows = await conn.fetch(
                "select from_state, action, actor_role::text, to_state, awaiting_role::text,"
                " chat_status::text from public.flow_transitions where conversation_type = $1",
                conversation_type,
            )
            assert {tuple(r) for r in rows} == documented
    finally:
        await conn.close()


@pytest.mark.parametrize("conversation_type", ["bid", "campaign"])
@pytest.mark.parametrize("t", TRANSITIONS, ids=lambda t: f"{t.from_state}-{t.action}")
async def test_every_documented_transition_for_its_allowed_and_refused_actors(
    db: asyncpg.Connection, conversation_type: str, t: Transition
) -> None:
    """From its state, the action is refused to the other participant (the
    message names the role it needs and the caller's) and to a stranger
    ("not found"), writing nothing; the documented actor takes it: state,
    turn and chat status move as documented, the system message is posted,
    and the answer is the conversation as committed (with that message)."""
    conv, people = await _conversation_in(db, conversation_type, t.from_state)
    assert t.actor is not None
    other = "influencer" if t.actor == "brand_owner" else "brand_owner"
    before = await state(db, conv)
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        await act(db, people[other], conv, t.action)
    assert str(refused.value) == f'action "{t.action}" is for the {t.actor}; you are the {other}'
    with pytest.raises(asyncpg.NoDataFoundError):
        await act(db, people["stranger"], conv, t.action)
    assert await state(db, conv) == before

    row = await act(db, people[t.actor], conv, t.action)
    assert (row["flow_state"], row["awaiting_role"], row["chat_status"]) == (
        t.to_state,
        t.awaiting,
        t.chat_status,
    )
    last = await db.fetchrow(
        "select id, sender_id, content, message_type from public.messages"
        " where conversation_id = $1 order by created_at desc, id desc limit 1",
        conv,
    )
    assert (last["sender_id"], last["content"], last["message_type"]) == (
        uuid.UUID(people[t.actor]),
        _doc_message(t, conversation_type),
        "system",
    )
    assert row["last_message_id"] == last["id"]


@pytest.mark.parametrize("conversation_type", ["bid", "campaign"])
async def test_only_the_brand_owner_connects(
    db: asyncpg.Connection, conversation_type: str
) -> None:
    """The first transition, (new) → connect: the influencer cannot start the
    conversation ("not found", nothing written); the brand owner can."""
    bid = await place_bid(db, LEO, AVA)
    start = {
        "bid": ("select id from public.start_bid_conversation($1)", (bid,)),
        "campaign": (
            "select id from public.start_campaign_conversation($1, $2)",
            (CAMPAIGN_SUMMER, MIA),
        ),
    }[conversation_type]
    influencer = LEO if conversation_type == "bid" else MIA
    before = await db.fetchval("select count(*) from public.conversations")
    with pytest.raises(asyncpg.NoDataFoundError):
        async with acting_as(db, user_claims(influencer)):
            await db.fetchval(start[0], *start[1])
    assert await db.fetchval("select count(*) from public.conversations") == before
    async with acting_as(db, user_claims(AVA)):
        assert await db.fetchval(start[0], *start[1]) is not None
