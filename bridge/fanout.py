"""Socket.IO fan-out without a task per recipient.

python-socketio's AsyncManager.emit creates one asyncio task per recipient
socket and waits for all of them; each task only puts the already encoded
packet on that socket's queue. For chat traffic (a few recipients per emit,
thousands of emits a second) the task churn dominates. These managers encode
once and put the packet on each queue directly, in order. Emits that want an
ack callback keep the stock path. The Redis variant slots the same local
delivery under python-socketio's Redis pub/sub, so emits still cross
instances.
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet

from bridge import jsoncodec


def _encode_event(packet_class: Any, namespace: str, data: list[Any]) -> list[Any]:
    """A Socket.IO EVENT packet, encoded once for every recipient. Chat
    payloads are JSON: written straight as `2[<nsp>,]<json>`, which is what
    python-socketio's Packet writes for them, without its recursive search
    for binary parts (which showed in profiles at thousands of emits a
    second). Data that JSON cannot hold (bytes) takes the library's path."""
    try:
        body = jsoncodec.dumps(data)
    except TypeError:
        encoded = packet_class(packet.EVENT, namespace=namespace, data=data).encode()
        return encoded if isinstance(encoded, list) else [encoded]
    prefix = "2" if namespace in (None, "/") else f"2{namespace},"
    return [prefix + body]


class DirectAsyncManager(socketio.AsyncManager):  # type: ignore[misc]
    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        if callback is not None:
            await super().emit(
                event,
                data,
                namespace,
                room=room,
                skip_sid=skip_sid,
                callback=callback,
                to=to,
                **kwargs,
            )
            return
        room = to or room
        if namespace not in self.rooms:
            return
        if isinstance(data, tuple):
            args = list(data)
        elif data is not None:
            args = [data]
        else:
            args = []
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        parts = _encode_event(self.server.packet_class, namespace, [event, *args])
        eio_packets = [eio_packet.Packet(eio_packet.MESSAGE, p) for p in parts]
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            for eio_pkt in eio_packets:
                await self.server._send_eio_packet(eio_sid, eio_pkt)


class DirectAsyncRedisManager(socketio.AsyncRedisManager, DirectAsyncManager):  # type: ignore[misc]
    """Redis pub/sub across instances; direct local delivery on each."""
