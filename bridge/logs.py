"""Log lines with their structured context: `message key=value ...`, the
`extra` fields of each call appended. Secrets and push tokens are never
passed as context, so they never reach a log line.

Hostile input is logged at a bounded rate: what a client can provoke (junk
packets, malformed requests, refused events) is one `refused client input`
line per kind and minute with the count left out since, never a traceback.
The libraries' own per-packet error logs are routed there by a filter;
tracebacks through the bridge's own code pass unchanged."""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class ContextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if context:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(context.items()))
        return line


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(ContextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp/engineio are chatty at INFO about every connection.
    logging.getLogger("engineio.server").setLevel(logging.WARNING)
    logging.getLogger("socketio.server").setLevel(logging.WARNING)


# -- hostile input ---------------------------------------------------------------

# The libraries that log once per malformed packet or request, with a
# traceback: anyone could fill the log through them.
LIBRARY_LOGGERS = (
    "engineio.server",
    "socketio.server",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",  # e.g. a Sec-WebSocket-Protocol nobody speaks
    "aiohttp.internal",  # e.g. illegal cookie names
)
NOISE_INTERVAL = 60.0  # seconds: at most one line per kind of junk in this time
_BRIDGE_DIR = Path(__file__).resolve().parent
# Frames of these bridge modules only pass client input on to the libraries;
# an error under them alone is the client's, not the bridge's.
_PLUMBING = {_BRIDGE_DIR / "hostile.py", _BRIDGE_DIR / "eio_socket.py"}

noise_log = logging.getLogger("bridge.hostile")


class Noise:
    """Counts client-caused errors per kind and logs at most one line per
    kind every `interval` seconds, with how many were suppressed since."""

    def __init__(self, interval: float = NOISE_INTERVAL, clock: Any = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.counts: Counter[str] = Counter()
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def should_log(self, kind: str) -> int | None:
        """Counts one occurrence; returns the number suppressed before it
        when a line is due now, else None."""
        self.counts[kind] += 1
        now = self.clock()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] += 1
            return None
        self._last[kind] = now
        return self._suppressed.pop(kind, 0)

    def note(self, kind: str, detail: str = "") -> None:
        """One hostile-input occurrence of `kind`, logged rate-limited."""
        suppressed = self.should_log(kind)
        if suppressed is not None:
            noise_log.warning(
                "refused client input",
                extra={"kind": kind, "detail": one_line(detail), "suppressed": suppressed},
            )


NOISE = Noise()


def describe(exc: BaseException) -> str:
    """An exception in a few words, without traceback (for one log line):
    its type, and its message if it has one."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"  # caused by client input: its message is noise
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}(\.[A-Za-z0-9_-]*){0,2}")


def one_line(text: str, limit: int = 160) -> str:
    """Client-controlled text made safe for one log line: anything shaped
    like a JWT blanked, escaped, cut."""
    return repr(_JWT.sub("<jwt>", text)[:limit])[1:-1]


def _raised_in_bridge(record: logging.LogRecord) -> bool:
    """Whether the record's traceback runs through the bridge's own code
    (a bug of ours: keep the traceback)."""
    exc = record.exc_info[1] if record.exc_info else None
    tb = exc.__traceback__ if exc is not None else None
    while tb is not None:
        path = Path(tb.tb_frame.f_code.co_filename)
        if path.is_relative_to(_BRIDGE_DIR) and path not in _PLUMBING:
            return True
        tb = tb.tb_next
    return False


class LibraryNoiseFilter(logging.Filter):
    """On the libraries' loggers: warnings and errors about what a client
    sent become one rate-limited line without traceback (`bridge.hostile`);
    tracebacks through the bridge's own code pass unchanged."""

    def __init__(self, noise: Noise) -> None:
        super().__init__()
        self.noise = noise

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or _raised_in_bridge(record):
            return True
        exc = record.exc_info[1] if record.exc_info else None
        kind = f"{record.name}:{type(exc).__name__ if exc else record.levelname.lower()}"
        detail = record.getMessage()
        if exc is not None and not record.name.startswith("aiohttp"):
            # aiohttp's parser errors may quote request lines and headers.
            detail = f"{detail}: {describe(exc)}"
        self.noise.note(kind, detail)
        return False


def install_noise_filters(noise: Noise = NOISE) -> LibraryNoiseFilter:
    flt = LibraryNoiseFilter(noise)
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).addFilter(flt)
    return flt


def remove_noise_filters(flt: LibraryNoiseFilter) -> None:
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).removeFilter(flt)
