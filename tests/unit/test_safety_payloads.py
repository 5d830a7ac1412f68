"""Payloads of blocks, reports, mutes and quiet hours, checked without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bridge.errors import PayloadError
from bridge.safety import payloads

ME = "11111111-1111-4111-8111-111111111111"
OTHER = "22222222-2222-4222-8222-222222222222"
CONVERSATION = "c0000000-0000-4000-8000-000000000001"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_a_block_names_someone_else() -> None:
    """A bare id or `{ userId }`; never oneself."""
    assert payloads.block_target(OTHER, ME) == OTHER
    assert payloads.block_target({"userId": OTHER}, ME) == OTHER
    with pytest.raises(PayloadError) as refused:
        payloads.block_target({"userId": ME}, ME)
    assert refused.value.field == "userId"


def test_a_report_names_one_thing_with_a_known_reason() -> None:
    """A message or a user, a reason from the list, optional details."""
    report = payloads.report({"userId": OTHER, "reason": "scam", "details": "fake"})
    assert (report.user_id, report.message_id, report.reason) == (OTHER, None, "scam")
    for bad in (
        {"reason": "spam"},
        {"userId": OTHER, "messageId": OTHER, "reason": "spam"},
        {"userId": OTHER, "reason": "Spam"},
        {"userId": OTHER, "reason": "spam", "details": 3},
        ["spam"],
    ):
        with pytest.raises(PayloadError):
            payloads.report(bad)


def test_a_mute_lasts_until_a_future_time_or_until_unmuted() -> None:
    """No `until`: until unmuted; `until` must be in the future and carry
    its offset."""
    assert payloads.mute(CONVERSATION, NOW).until is None
    later = (NOW + timedelta(hours=2)).isoformat()
    assert payloads.mute({"conversationId": CONVERSATION, "until": later}, NOW).until == (
        NOW + timedelta(hours=2)
    )
    for until in ("2026-11-25T11:00:00Z", "2026-11-26T00:00:00", "soon", 1234):
        with pytest.raises(PayloadError) as refused:
            payloads.mute({"conversationId": CONVERSATION, "until": until}, NOW)
        assert refused.value.field == "until"


@pytest.mark.parametrize(
    "bad",
    [
        {"start": "24:00", "end": "07:00", "timeZone": "UTC"},
        {"start": "9:00", "end": "17:00", "timeZone": "UTC"},
        {"start": "22:00", "end": "22:00", "timeZone": "UTC"},
        {"start": "22:00", "end": "07:00", "timeZone": "Nowhere/City"},
        {"start": "22:00", "end": "07:00", "timeZone": "../etc/passwd"},
        {"start": "22:00", "end": "07:00"},
        "22:00-07:00",
    ],
)
def test_quiet_hours_are_two_clock_times_and_a_known_zone(bad: Any) -> None:
    """HH:MM times that differ and an IANA zone; anything else is refused."""
    with pytest.raises(PayloadError):
        payloads.quiet_hours(bad)


def test_quiet_hours_may_span_midnight_or_be_cleared() -> None:
    hours = payloads.quiet_hours({"start": "22:00", "end": "07:00", "time_zone": "Asia/Tokyo"})
    assert hours == payloads.QuietHours("22:00", "07:00", "Asia/Tokyo")
    assert payloads.quiet_hours(None) is None and payloads.quiet_hours({}) is None
