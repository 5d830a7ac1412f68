"""Errors of client requests against the database: which SQLSTATEs are the
client's fault (a StoreError with the HTTP status it maps to) and which are
the database's (raised as they are).

Our own triggers and functions name the code of a refusal in HINT
(`forbidden`, `not_found`, `not_editable`, `edit_window_closed`, `blocked`,
`attachment_removed`): that code is what the client sees, whichever path
(a send, an edit, an unsend, a delivery receipt) ran into it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from bridge.errors import StoreError, attachment_removed, blocked
from bridge.permissions import PermissionWatch, grant_problem


def _says(code: str, status: int) -> Callable[[str], StoreError]:
    """A refusal with the database's own message."""
    return lambda message: StoreError(code, message, status)


# HINT of a refusal of ours -> the error the client gets (given the
# database's message). Checked before the SQLSTATE: a hinted error is never
# the database's fault.
_HINTED: dict[str, Callable[[str], StoreError]] = {
    "forbidden": _says("forbidden", 403),
    "not_found": _says("not_found", 404),
    "not_editable": _says("not_editable", 409),
    "edit_window_closed": _says("edit_window_closed", 409),
    # public.messages_refuse_blocked (issue 14) and messages_refuse_blocked_edit:
    # a block either way reads the same on every path.
    "blocked": lambda _message: blocked(),
    # public.refuse_removed_attachment: a path of an unsent message's attachment.
    "attachment_removed": lambda _message: attachment_removed(),
}

# SQLSTATE class or code -> (code, status). Client faults only; anything
# else is the database's (or our) fault and is re-raised as it is.
_CLIENT_ERRORS: dict[str, tuple[str, int]] = {
    "42501": ("forbidden", 403),
    "P0002": ("not_found", 404),
    "23503": ("not_found", 404),
    "23514": ("rejected", 409),
    "23505": ("conflict", 409),
    "22023": ("invalid_request", 400),
    "22P02": ("invalid_request", 400),
    "22001": ("too_long", 400),
    "22021": ("invalid_request", 400),
    "54000": ("too_long", 400),
}


@asynccontextmanager
async def client_errors(permissions: PermissionWatch | None = None) -> AsyncIterator[None]:
    try:
        yield
    except asyncpg.PostgresError as exc:
        message = str(getattr(exc, "message", None) or exc)
        hinted = _HINTED.get(getattr(exc, "hint", None) or "")
        if hinted is not None:
            raise hinted(message) from exc
        state = getattr(exc, "sqlstate", None) or ""
        mapped = _CLIENT_ERRORS.get(state)
        if mapped is None:
            raise
        missing_grant = grant_problem(state, message)
        if missing_grant is not None:
            # Not the client's fault: the operator hears of it, the client
            # gets no internals and may retry once the grant is fixed.
            if permissions is not None:
                permissions.report(missing_grant)
            raise StoreError(
                "unavailable", "the server cannot do this right now (database permissions)", 503
            ) from exc
        if state == "42501" and "row-level security" in message:
            # Writing into someone else's conversation: the same answer as
            # for one that does not exist, so ids of others' leak nothing.
            raise StoreError("not_found", "conversation not found", 404) from exc
        raise StoreError(mapped[0], message, mapped[1]) from exc
