"""Which errors mean "the database is not there" (retryable, one warning)
and which are the request's or the bridge's own."""

from __future__ import annotations

import asyncpg
import pytest

from bridge.db_health import is_outage


def postgres_error(cls: type[asyncpg.PostgresError]) -> asyncpg.PostgresError:
    return cls.new({"C": cls.sqlstate, "M": "x"})  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("exc", "outage"),
    [
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(), True),
        (asyncpg.InterfaceError("connection is closed"), True),
        (asyncpg.InternalClientError("cannot switch to state 15"), True),
        (postgres_error(asyncpg.ConnectionDoesNotExistError), True),
        (postgres_error(asyncpg.AdminShutdownError), True),
        (postgres_error(asyncpg.CannotConnectNowError), True),
        (postgres_error(asyncpg.TooManyConnectionsError), True),
        (postgres_error(asyncpg.InsufficientPrivilegeError), False),
        (postgres_error(asyncpg.UniqueViolationError), False),
        (postgres_error(asyncpg.CheckViolationError), False),
        (ValueError("bad"), False),
        (KeyError("x"), False),
    ],
)
def test_outage_or_not(exc: BaseException, outage: bool) -> None:
    """Connection failures and server shutdowns are outages; refusals,
    constraint errors and our own bugs are not."""
    assert is_outage(exc) is outage
