"""The fan-out's own EVENT encoding is byte for byte what python-socketio's
Packet would send, so clients cannot tell the difference."""

from __future__ import annotations

import json
from typing import Any

import pytest
from socketio import packet

from bridge.fanout import _encode_event

CASES: list[tuple[str, list[Any]]] = [
    ("/", ["new_message", {"conversation_id": "c1", "message": {"content": "hi", "seq": 3}}]),
    ("/", ["user_typing", {"isTyping": True, "userId": None}]),
    ("/", ["token_expired"]),
    ("/", ["list", [1, 2.5, "x", {"nested": [False]}]]),
    ("/", ["unicode", {"text": "Grüße 📷 — ok"}]),
    ("/admin", ["new_message", {"a": 1}]),
]


@pytest.mark.parametrize(("namespace", "data"), CASES)
def test_same_packet_as_the_library(namespace: str, data: list[Any]) -> None:
    """Decoded, our packet and the library's carry the same type, namespace
    and data."""
    (ours,) = _encode_event(packet.Packet, namespace, data)
    theirs = packet.Packet(packet.EVENT, namespace=namespace, data=data).encode()
    assert ours[0] == theirs[0] == "2"
    ours_packet = packet.Packet(encoded_packet=ours)
    theirs_packet = packet.Packet(encoded_packet=theirs)
    assert (ours_packet.packet_type, ours_packet.namespace, ours_packet.data) == (
        theirs_packet.packet_type,
        theirs_packet.namespace,
        theirs_packet.data,
    )
    assert ours_packet.data == json.loads(json.dumps(data))
