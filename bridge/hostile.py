"""What a hostile or broken client may send below the bridge's event
handlers, refused before python-socketio acts on it.

python-socketio dispatches a client's EVENT packet named `connect` or
`disconnect` to the same handlers its own handshake and teardown call, and
raises (with a traceback in the log) on packets of the wrong shape. This
server subclass checks every Socket.IO packet first: only CONNECT,
DISCONNECT, EVENT and ACK are accepted; an event must be a list whose first
item is the name of one of the bridge's client events, never a reserved
one. The library's own handshake and teardown do not pass through here, so
they still reach `connect` / `disconnect`.

A refused event is answered like any refused event: with an error ack when
the client asked for one, else with a `bridge_error` event to that socket
only, `{ event, code, message, field? }`. Junk that cannot be answered (no
session, undecodable) is counted and logged rate-limited (bridge/logs.py).
"""

from __future__ import annotations

from typing import Any

import socketio
from socketio import packet

from bridge.errors import BridgeError
from bridge.logs import NOISE, describe, one_line
from bridge.metrics import OTHER_EVENT, Metrics

ERROR_EVENT = "bridge_error"
# Events that Socket.IO and Engine.IO use themselves, on the server or in
# socket.io-client: never client events, whatever handler exists.
RESERVED_EVENTS = frozenset(
    {
        "connect",
        "connect_error",
        "disconnect",
        "disconnecting",
        "newListener",
        "removeListener",
        "error",
        "message",
        "ping",
        "pong",
        "open",
        "close",
        "upgrade",
        "*",
        ERROR_EVENT,
    }
)
MAX_EVENT_NAME = 100


class MalformedPacket(BridgeError, ValueError):
    """A client packet python-socketio must not act on."""

    code = "invalid_packet"
    status = 400


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's AsyncServer, with every client packet checked first.
    With `metrics` set, every emit and every refusal here is counted."""

    metrics: Metrics | None = None

    async def emit(self, event: str, *args: Any, **kwargs: Any) -> None:
        if self.metrics is not None:
            self.metrics.emitted(event)
        await super().emit(event, *args, **kwargs)

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        try:
            pkt = self._decode(eio_sid, data)
        except MalformedPacket as exc:
            NOISE.note("socketio:malformed_packet", str(exc))
            return
        except (ValueError, TypeError, RecursionError, IndexError) as exc:
            NOISE.note("socketio:malformed_packet", describe(exc))
            return
        namespace = pkt.namespace or "/"
        if pkt.packet_type == packet.CONNECT:
            if self.manager.sid_from_eio_sid(eio_sid, namespace) is not None:
                NOISE.note("socketio:second_connect", namespace)
                return
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif pkt.packet_type == packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif pkt.packet_type == packet.EVENT:
            await self._checked_event(eio_sid, namespace, pkt.id, pkt.data)
        else:  # ACK: the bridge asks clients for none, but the library keeps count
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)

    def _decode(self, eio_sid: str, data: Any) -> Any:
        if not isinstance(data, str):
            raise MalformedPacket("binary packets are not accepted")
        pkt = self.packet_class(encoded_packet=data)
        if pkt.packet_type not in (packet.CONNECT, packet.DISCONNECT, packet.EVENT, packet.ACK):
            raise MalformedPacket(f"packet type {one_line(str(pkt.packet_type), 20)} refused")
        if pkt.packet_type == packet.ACK and not isinstance(pkt.data, list):
            raise MalformedPacket("an ack must carry a list")
        return pkt

    async def _checked_event(
        self, eio_sid: str, namespace: str, ack_id: int | None, data: Any
    ) -> None:
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            NOISE.note("socketio:event_before_connect", namespace)
            return
        if not isinstance(data, list) or not data or not isinstance(data[0], str):
            await self.refuse(
                eio_sid, sid, namespace, ack_id, "", "invalid_event", "an event needs a name"
            )
            return
        event = data[0]
        if event in RESERVED_EVENTS:
            await self.refuse(
                eio_sid,
                sid,
                namespace,
                ack_id,
                event,
                "reserved_event",
                f"{event} is reserved by Socket.IO and cannot be sent",
            )
            return
        if event not in self.handlers.get(namespace, {}):
            await self.refuse(
                eio_sid, sid, namespace, ack_id, event, "unknown_event", "no such event"
            )
            return
        # The handler at once: python-socketio's _handle_event and
        # _trigger_event would look up again what was checked above.
        # (Events are handled inline, in the socket's order: bridge.sockets.)
        result = await self.handlers[namespace][event](sid, *data[1:])
        if ack_id is not None:
            answer = self.packet_class(packet.ACK, namespace=namespace, id=ack_id, data=[result])
            await self._send_packet(eio_sid, answer)
        elif isinstance(result, dict) and result.get("ok") is False:
            error = result.get("error")
            await self.tell(sid, event, error if isinstance(error, dict) else {}, namespace)

    async def refuse(
        self,
        eio_sid: str,
        sid: str,
        namespace: str,
        ack_id: int | None,
        event: str,
        code: str,
        message: str,
    ) -> None:
        error = {"code": code, "message": message}
        if self.metrics is not None:  # the name is the client's: not a label
            self.metrics.client_event(OTHER_EVENT, code)
        if ack_id is not None:
            await self._send_packet(
                eio_sid,
                self.packet_class(
                    packet.ACK,
                    namespace=namespace,
                    id=ack_id,
                    data=[{"ok": False, "error": error}],
                ),
            )
        else:
            await self.tell(sid, event, error, namespace)

    async def tell(self, sid: str, event: str, error: dict[str, Any], namespace: str) -> None:
        """The `bridge_error` event for a refusal the client asked no ack for."""
        await self.emit(
            ERROR_EVENT, {"event": event[:MAX_EVENT_NAME], **error}, to=sid, namespace=namespace
        )
