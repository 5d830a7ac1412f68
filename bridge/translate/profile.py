"""profile.updated: a changed name or avatar in the chat lists of everyone
who talks with that user."""

from __future__ import annotations

from bridge.translate.model import Change, Emit, Translation
from bridge.views import public_user, user_rooms


def profile_updated(change: Change, base: str) -> Translation:
    user = public_user(change.payload.get("user"), base)
    rooms = tuple(room for r in change.recipients for room in user_rooms(r))
    return Translation(
        (
            Emit(
                "conversation_list_updated",
                rooms,
                {
                    "conversation_id": None,
                    "action": "profile_updated",
                    "user": user,
                    "timestamp": change.created_at,
                },
            ),
        )
    )
