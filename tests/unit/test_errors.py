"""Errors carry their policy: the code, message, retryability and HTTP
status a client or operator sees come from the error itself, and a socket
ack and a REST body render the same object."""

from __future__ import annotations

import pytest

from bridge.config import ConfigError
from bridge.embedded import EmbeddedPostgresError
from bridge.errors import AuthError, BridgeError, PayloadError, StoreError, unavailable
from bridge.hostile import MalformedPacket
from bridge.migrate import MigrationError
from bridge.preflight import PreflightError
from bridge.push.worker import TransientPushError
from bridge.translate import TranslationError


@pytest.mark.parametrize(
    ("error", "code", "status", "retryable"),
    [
        (AuthError("token_expired", "the token has expired"), "token_expired", 401, False),
        (
            PayloadError("missing_field", "message is required", "message"),
            "missing_field",
            400,
            False,
        ),
        (StoreError("not_found", "conversation not found", 404), "not_found", 404, False),
        (unavailable(), "unavailable", 503, True),
        (MalformedPacket("binary packets are not accepted"), "invalid_packet", 400, False),
        (ConfigError("unknown setting"), "invalid_setting", 500, False),
        (TranslationError("unknown topic"), "untranslatable", 500, False),
        (TransientPushError([], None), "push_retry", 500, True),
        (PreflightError("no way to verify tokens"), "preflight_failed", 500, False),
        (MigrationError("bad name"), "migration_failed", 500, False),
        (EmbeddedPostgresError("no binaries"), "embedded_postgres", 500, False),
    ],
)
def test_each_error_carries_its_policy(
    error: BridgeError, code: str, status: int, retryable: bool
) -> None:
    """Every error the bridge raises on purpose is a BridgeError with its
    code, HTTP status and retryability."""
    assert isinstance(error, BridgeError)
    assert (error.code, error.status, error.retryable) == (code, status, retryable)


def test_ack_and_rest_body_render_the_same_error() -> None:
    """A refused socket event and a refused REST call read the same: the
    field when there is one, `retryable` only when trying again may help."""
    error = PayloadError("invalid_field", "messageType must be text", "messageType")
    assert error.ack() == {"ok": False, "error": error.as_dict()}
    assert error.as_dict() == {
        "code": "invalid_field",
        "message": "messageType must be text",
        "field": "messageType",
    }
    assert unavailable().as_dict()["retryable"] is True
    assert "retryable" not in StoreError("not_found", "gone", 404).as_dict()
