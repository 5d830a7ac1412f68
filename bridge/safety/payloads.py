"""Client payloads of blocks, reports, mutes and quiet hours, checked
without I/O: each bad field is a PayloadError naming it, before anything is
written."""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.errors import PayloadError
from bridge.payloads import _get, as_uuid, id_payload, text

REASONS = ("spam", "harassment", "scam", "inappropriate", "impersonation", "other")
MAX_DETAILS = 1000
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def block_target(payload: Any, user_id: str) -> str:
    """The user to block or unblock: a bare id or `{ userId }`; not oneself."""
    target = id_payload(payload, "userId", "user_id", field="userId")
    assert target is not None
    if target == user_id:
        raise PayloadError("invalid_field", "you cannot block yourself", "userId")
    return target


@dataclass(frozen=True)
class Report:
    reason: str
    message_id: str | None
    user_id: str | None
    details: str | None


def report(payload: Any) -> Report:
    """`{ messageId | userId, reason, details? }`: exactly one of the two ids."""
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload", "expected a JSON object")
    message = _get(payload, "messageId", "message_id")
    user = _get(payload, "userId", "user_id")
    if (message is None) == (user is None):
        raise PayloadError("missing_field", "report either a messageId or a userId", "messageId")
    reason = _get(payload, "reason")
    if reason not in REASONS:
        raise PayloadError("invalid_field", f"reason must be one of {', '.join(REASONS)}", "reason")
    details = _get(payload, "details")
    return Report(
        reason=reason,
        message_id=None if message is None else as_uuid(message, "messageId"),
        user_id=None if user is None else as_uuid(user, "userId"),
        details=None if details is None else text(details, "details", MAX_DETAILS),
    )


def timestamp(value: Any, field: str) -> datetime:
    """An ISO 8601 time with its offset (`2026-11-25T18:00:00Z`)."""
    if not isinstance(value, str):
        raise PayloadError("invalid_field", f"{field} must be an ISO 8601 time string", field)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError("invalid_field", f"{field} is not an ISO 8601 time", field) from None
    if parsed.tzinfo is None:
        raise PayloadError("invalid_field", f"{field} needs a time zone offset (e.g. Z)", field)
    return parsed


@dataclass(frozen=True)
class Mute:
    conversation_id: str
    until: datetime | None  # None: until unmuted


def mute(payload: Any, now: datetime | None = None) -> Mute:
    """`{ conversationId, until? }`: `until` in the future, or absent / null
    for "until I unmute"."""
    conversation_id = id_payload(
        payload, "conversationId", "conversation_id", field="conversationId"
    )
    assert conversation_id is not None
    until = _get(payload, "until") if isinstance(payload, dict) else None
    if until is None:
        return Mute(conversation_id, None)
    when = timestamp(until, "until")
    if when <= (now or datetime.now(UTC)):
        raise PayloadError("invalid_field", "until must be in the future", "until")
    return Mute(conversation_id, when)


@dataclass(frozen=True)
class QuietHours:
    start: str  # "HH:MM", local time in time_zone
    end: str
    time_zone: str


def clock(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _CLOCK.match(value):
        raise PayloadError("invalid_field", f"{field} must be a time of day as HH:MM", field)
    return value


def quiet_hours(payload: Any) -> QuietHours | None:
    """`{ start: "22:00", end: "07:00", timeZone: "Europe/Berlin" }` (end
    before start spans midnight); null or `{}` clears them."""
    if payload is None or payload == {}:
        return None
    if not isinstance(payload, dict):
        raise PayloadError("invalid_payload", "expected a JSON object or null")
    start = clock(_get(payload, "start"), "start")
    end = clock(_get(payload, "end"), "end")
    if start == end:
        raise PayloadError("invalid_field", "end must differ from start", "end")
    zone = _get(payload, "timeZone", "time_zone")
    if not isinstance(zone, str) or not zone or len(zone) > 64:
        raise PayloadError("invalid_field", "timeZone must be an IANA time zone name", "timeZone")
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PayloadError(
            "invalid_field", f"timeZone {zone!r} is not a known IANA time zone", "timeZone"
        ) from None
    return QuietHours(start, end, zone)
