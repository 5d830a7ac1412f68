"""Errors of client requests against the database: which SQLSTATEs are the
client's fault (a StoreError with the HTTP status it maps to) and which are
the database's (raised as they are)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from bridge.errors import StoreError, blocked
from bridge.permissions import PermissionWatch, grant_problem

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
        state = getattr(exc, "sqlstate", None) or ""
        mapped = _CLIENT_ERRORS.get(state)
        if mapped is None:
            raise
        message = str(getattr(exc, "message", None) or exc)
        missing_grant = grant_problem(state, message)
        if missing_grant is not None:
            # Not the client's fault: the operator hears of it, the client
            # gets no internals and may retry once the grant is fixed.
            if permissions is not None:
                permissions.report(missing_grant)
            raise StoreError(
                "unavailable", "the server cannot do this right now (database permissions)", 503
            ) from exc
        if state == "42501" and getattr(exc, "hint", None) == "blocked":
            # public.messages_refuse_blocked (issue 14): a block either way.
            raise blocked() from exc
        if state == "42501" and "row-level security" in message:
            # Writing into someone else's conversation: the same answer as
            # for one that does not exist, so ids of others' leak nothing.
            raise StoreError("not_found", "conversation not found", 404) from exc
        raise StoreError(mapped[0], message, mapped[1]) from exc
