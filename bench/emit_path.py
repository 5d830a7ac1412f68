"""The daemon's fan-out of one sent message, in isolation: CPU time per
message for its emits (new_message to the conversation's room and both
users' rooms, conversation_list_updated to each user, unread_count_updated
to the receiver) through bridge.fanout's DirectAsyncManager and
bridge.eio_socket's DirectSocket, two websocket sockets whose transport
takes the bytes and drops them. No network, no database: what the emit
path itself costs, steady enough to compare two versions on a busy
machine (the send-path bench's CPU per message moves by tens of percent).

    .venv/bin/python bench/emit_path.py [--messages N] [--repeat R]

To measure another working tree, run it from outside the checkout with
PYTHONPATH=/that/tree (it prints which bridge it imported).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import socketio

from bridge import eio_socket, jsoncodec
from bridge.fanout import DirectAsyncManager

FRAMES_PER_MESSAGE = 5  # new_message x2 (rooms deduplicated), list x2, unread x1


class Transport:
    """A websocket transport that is always writable and counts frames."""

    def __init__(self) -> None:
        self.frames = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def write(self, data: bytes) -> None:
        self.frames += data.count(b"\x81")  # text frames; payloads are ASCII here


class Websocket:
    compress = False

    def __init__(self, transport: Transport) -> None:
        self.transport = transport


async def run(messages: int) -> float:
    """Seconds of CPU per message."""
    sio = socketio.AsyncServer(
        client_manager=DirectAsyncManager(), async_mode="aiohttp", json=jsoncodec
    )
    manager = sio.manager
    manager.initialize()
    transport = Transport()
    for user in ("ava", "leo"):
        socket = eio_socket.DirectSocket(sio.eio, f"eio-{user}")
        socket._ws = Websocket(transport)
        sio.eio.sockets[socket.sid] = socket
        sid = await manager.connect(socket.sid, "/")
        await manager.enter_room(sid, "/", f"user_{user}")
        await manager.enter_room(sid, "/", "conversation_c")
    message: dict[str, Any] = {
        "id": "6f1c7d1e-3b0a-4d7e-9a51-0c2b9d3e4f5a",
        "conversation_id": "c",
        "content": "see you at the shoot tomorrow, 9 am sharp " * 2,
        "message_type": "text",
        "sender": {"id": "ava", "name": "Ava", "avatar_url": None},
        "created_at": "2026-11-25T14:00:00.000000+00:00",
    }
    start = time.process_time()
    for i in range(messages):
        base = {"conversation_id": "c", "event_id": i}
        rooms = ["conversation_c", "user_ava", "user_leo"]
        await manager.emit("new_message", {**base, "message": message}, "/", room=rooms)
        for user in ("ava", "leo"):
            listed = {**base, "action": "new_message", "message": message, "unread_count": 1}
            await manager.emit("conversation_list_updated", listed, "/", room=[f"user_{user}"])
        unread = {**base, "unread_count": 1, "action": "new_message"}
        await manager.emit("unread_count_updated", unread, "/", room=["user_leo"])
        await asyncio.sleep(0)  # the corked frames are written
    spent = time.process_time() - start
    assert transport.frames == FRAMES_PER_MESSAGE * messages, transport.frames
    return spent / messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"bridge from {eio_socket.__file__}")
    for _ in range(args.repeat):
        print(f"{asyncio.run(run(args.messages)) * 1e6:.1f} µs of CPU per message")


if __name__ == "__main__":
    main()
