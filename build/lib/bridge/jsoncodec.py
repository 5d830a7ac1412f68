"""JSON on the hot paths (Socket.IO packets, outbox payloads): orjson where
it can, the standard library where orjson declines (lone surrogates, ints
beyond 64 bits, unusual types), so what is accepted and produced is what the
standard library would accept and produce; only faster. Nesting too deep to
decode is a ValueError, never a RecursionError."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(obj: Any, **_options: Any) -> str:
    try:
        return orjson.dumps(obj).decode()
    except TypeError:
        return json.dumps(obj, separators=(",", ":"))


def loads(data: str | bytes, **_options: Any) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
