"""Websocket frames the bridge writes itself (bridge.eio_socket.ws_frame),
read back as RFC 6455 says a client reads them."""

from __future__ import annotations

import pytest

from bridge.eio_socket import ws_frame


def read_back(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each frame: final bit set, unmasked, 7-, 16- or
    64-bit length, as a server sends them."""
    frames = []
    while data:
        first, second = data[0], data[1]
        assert first & 0x80, "final frame"
        assert not first & 0x70, "no extension bits"
        assert not second & 0x80, "a server does not mask"
        size, start = second & 0x7F, 2
        if size == 126:
            size, start = int.from_bytes(data[2:4], "big"), 4
        elif size == 127:
            size, start = int.from_bytes(data[2:10], "big"), 10
        frames.append((first & 0x0F, data[start : start + size]))
        data = data[start + size :]
    return frames


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 4000, 65535, 65536, 200_000])
def test_text_frames_of_every_length_form_read_back(size: int) -> None:
    """Short, 16- and 64-bit-length and multi-byte UTF-8 texts, several frames in
    one write: each reads back as the text it was (sized in bytes), in order."""
    texts = ["a" * size, "é" * (size // 2), '42["new_message"]']
    got = read_back(b"".join(ws_frame(t) for t in texts))
    assert got == [(0x1, t.encode()) for t in texts]


def test_bytes_become_a_binary_frame() -> None:
    """An Engine.IO binary packet (bytes) goes out as a binary frame."""
    assert read_back(ws_frame(b"\x04\x00\x01")) == [(0x2, b"\x04\x00\x01")]
