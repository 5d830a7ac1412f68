"""conversation.created and conversation.state_changed: a new chat in both
chat lists, and the flow state (bid, campaign) moving on."""

from __future__ import annotations

from bridge.translate.model import Change, Emit, Translation
from bridge.views import (
    Json,
    bid_room,
    campaign_room,
    conversation_context,
    conversation_room,
    other_participant,
    public_user,
    unread_count_for,
    user_rooms,
)


def subject_rooms(conversation: Json) -> tuple[str, ...]:
    rooms = [conversation_room(conversation["id"])]
    if conversation.get("bid_id"):
        rooms.append(bid_room(conversation["bid_id"]))
    if conversation.get("campaign_id"):
        rooms.append(campaign_room(conversation["campaign_id"]))
    return tuple(rooms)


def conversation_created(change: Change, base: str) -> Translation:
    p = change.payload
    conversation = p["conversation"]
    cid = str(conversation["id"])
    people = {
        str(conversation["brand_owner_id"]): public_user(p.get("brand_owner"), base),
        str(conversation["influencer_id"]): public_user(p.get("influencer"), base),
    }
    emits = []
    for user in people:
        other = other_participant(conversation, user)
        emits.append(
            Emit(
                "conversation_list_updated",
                user_rooms(user),
                {
                    "conversation_id": cid,
                    "action": "conversation_created",
                    "conversation": {
                        "id": cid,
                        **conversation_context(conversation),
                        "other_user": people[other],
                        "last_message": None,
                        "unread_count": unread_count_for(conversation, user),
                        "created_at": conversation.get("created_at"),
                        "updated_at": conversation.get("updated_at"),
                    },
                    "timestamp": conversation.get("created_at") or change.created_at,
                    "flow_state": conversation.get("flow_state"),
                    "awaiting_role": conversation.get("awaiting_role"),
                },
            )
        )
    return Translation(tuple(emits))


def state_changed(change: Change, base: str) -> Translation:
    p = change.payload
    conversation = p["conversation"]
    cid = str(conversation["id"])
    bo, inf = str(conversation["brand_owner_id"]), str(conversation["influencer_id"])
    ts = conversation.get("updated_at") or change.created_at
    state = {
        "flow_state": conversation.get("flow_state"),
        "awaiting_role": conversation.get("awaiting_role"),
        "chat_status": conversation.get("chat_status"),
    }
    return Translation(
        (
            Emit(
                "conversation_state_changed",
                (*subject_rooms(conversation), *user_rooms(bo), *user_rooms(inf)),
                {
                    "conversation_id": cid,
                    **state,
                    "previous": p.get("previous"),
                    "timestamp": ts,
                },
            ),
            Emit(
                "conversation_list_updated",
                (*user_rooms(bo), *user_rooms(inf)),
                {"conversation_id": cid, "action": "state_changed", "timestamp": ts, **state},
            ),
        )
    )
