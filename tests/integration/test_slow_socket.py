"""A socket that stops reading: what is queued for it is bounded, it is cut
off and released, and nobody else's deliveries wait for it."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import socket
import struct
from collections.abc import AsyncIterator

import asyncpg
import pytest

from bridge.config import OutboxSettings
from bridge.db import acting_as, user_claims
from tests.support.demo import AVA, CAMPAIGN_CONVERSATION, LEO
from tests.support.harness import Harness, running, settings_for, token
from tests.support.waits import eventually


def masked_text_frame(text: str) -> bytes:
    """One client-to-server websocket text frame (clients must mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def stalled_client(port: int, user: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A seed client that completes the Engine.IO and Socket.IO handshakes
    and then never reads again (a small receive buffer, so the stall shows
    up quickly)."""
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=raw, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    seen = b""
    while b'0{"sid"' not in seen:  # the Engine.IO OPEN packet
        seen += await asyncio.wait_for(reader.read(1024), 5)
    writer.write(masked_text_frame('40{"token":"' + token(user) + '"}'))
    while b'40{"sid"' not in seen:  # the Socket.IO CONNECT answer
        seen += await asyncio.wait_for(reader.read(1024), 5)
    return reader, writer


@pytest.fixture
async def bounded_bridge(db_dsn: str) -> AsyncIterator[Harness]:
    """Pages of 10 changes (at most 40 packets to one socket at once) and a
    bound of 100 packets per socket, so only a socket that stopped reading
    reaches it."""
    base = settings_for(db_dsn)
    settings = dataclasses.replace(
        base,
        server=dataclasses.replace(base.server, max_queued_packets=100),
        outbox=OutboxSettings(poll_interval=2.0, batch_size=10),
    )
    async with running(settings) as harness:
        yield harness


async def test_a_socket_that_never_reads_is_cut_off_and_others_get_everything(
    bounded_bridge: Harness, db: asyncpg.Connection
) -> None:
    """Ava's phone completes the handshake and stops reading; Leo sends 600
    long messages. Ava's phone is cut off once 100 packets wait for it (its
    session ends, its connection closes), while Leo's other socket receives
    every one of the 600."""
    app = bounded_bridge.app
    assert app.port is not None and app.gateway is not None
    reader, writer = await stalled_client(app.port, AVA)
    watcher = await bounded_bridge.client(LEO)
    assert any(s.user_id == AVA for s in app.gateway.sessions.values())
    text = "x" * 3900
    async with acting_as(db, user_claims(LEO)):
        await db.execute(
            "insert into public.messages (conversation_id, sender_id, content)"
            " select $1, $2, $3 || n from generate_series(1, 600) n",
            CAMPAIGN_CONVERSATION,
            LEO,
            text,
        )
    got = await watcher.wait_count("new_message", 600, timeout=60)
    assert len(got) == 600
    gateway = app.gateway
    await eventually(
        lambda: not any(s.user_id == AVA for s in gateway.sessions.values()),
        what="Ava's slow socket dropped",
    )
    assert app.metrics.snapshot()["slow_sockets_dropped"] == 1
    # Reading now drains what the kernel held, then the connection is gone.
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), 5)
            if not chunk:
                raise asyncio.IncompleteReadError(b"", None)
    writer.close()
