"""Presence bookkeeping: connection counts over devices, the offline grace
period, typing throttle and expiry."""

from __future__ import annotations

from bridge.presence import Presence


def test_online_once_over_many_devices_and_offline_after_grace() -> None:
    """Two devices are one "online"; dropping one is silent; dropping the
    last announces "offline" only once the grace period has passed."""
    p = Presence(grace=3.0)
    assert p.connect("u", "phone") is True
    assert p.connect("u", "laptop") is False
    assert p.disconnect("u", "phone", now=10.0) is False
    assert p.disconnect("u", "laptop", now=11.0) is True
    assert p.went_offline("u", now=12.0) is False
    assert p.status("u") != "offline"
    assert p.went_offline("u", now=14.0) is True
    assert p.status("u") == "offline"


def test_reconnect_within_grace_does_not_flap() -> None:
    """Back before the grace period ends: neither offline nor a new online."""
    p = Presence(grace=3.0)
    p.connect("u", "a")
    p.disconnect("u", "a", now=1.0)
    assert p.connect("u", "b") is False
    assert p.went_offline("u", now=10.0) is False
    assert p.status("u") == "online"


def test_status_choice_needs_a_connection() -> None:
    """A connected user may be "away"; a status for an absent user is ignored."""
    p = Presence()
    assert p.set_status("u", "away") is False
    p.connect("u", "a")
    assert p.set_status("u", "away") is True
    assert p.set_status("u", "away") is False
    assert p.status("u") == "away"


def test_typing_is_throttled_and_expires() -> None:
    """Repeated typing_start is relayed once per throttle window; silence
    past the TTL expires it; a stop after expiry relays nothing."""
    p = Presence(typing_ttl=5.0, typing_throttle=2.0)
    assert p.typing_start("c", "u", now=0.0) is True
    assert p.typing_start("c", "u", now=1.0) is False
    assert p.typing_start("c", "u", now=2.5) is True
    assert p.expired_typing(now=7.0) == []
    assert p.expired_typing(now=7.5) == [("c", "u")]
    assert p.typing_stop("c", "u") is False


def test_leaving_clears_typing() -> None:
    """When a user's last connection drops, their typing is cleared."""
    p = Presence()
    p.typing_start("c1", "u", now=0.0)
    p.typing_start("c2", "u", now=0.0)
    p.typing_start("c1", "v", now=0.0)
    assert sorted(p.typing_of("u")) == ["c1", "c2"]
    assert p.expired_typing(now=100.0) == [("c1", "v")]
