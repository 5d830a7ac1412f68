"""What translation takes and gives: one outbox change in; emits (event,
rooms, payload) and push intents out."""

from __future__ import annotations

from dataclasses import dataclass, field

from bridge.errors import BridgeError
from bridge.views import Json


@dataclass(frozen=True)
class Change:
    """One outbox row."""

    id: int
    topic: str
    conversation_id: str | None
    recipients: tuple[str, ...]
    payload: Json
    created_at: str


@dataclass(frozen=True)
class Emit:
    event: str
    rooms: tuple[str, ...]
    payload: Json


@dataclass(frozen=True)
class PushIntent:
    """A push notification due to one user because of one change."""

    user_id: str
    kind: str  # "message" | "flow" | "retract" (replaces a push about an unsent message)
    conversation_id: str
    title: str
    body: str
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Translation:
    emits: tuple[Emit, ...] = ()
    pushes: tuple[PushIntent, ...] = ()


class TranslationError(BridgeError, ValueError):
    """The change cannot be translated (unknown topic, missing keys)."""

    code = "untranslatable"
