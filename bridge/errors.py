"""Errors that carry their policy, as sygnal's do: every error the bridge
raises on purpose is a `BridgeError` with a `code` (one word a client or an
operator can match on), a `message` (a sentence), whether trying again may
succeed (`retryable`) and the HTTP `status` it maps to. A socket ack and a
REST error body are both rendered from it (`as_dict`), so one refusal reads
the same on every path.

The client-facing ones live here; errors only an operator meets (settings,
start-up checks, migrations, the embedded Postgres, FCM retries) subclass
the base in their own modules.
"""

from __future__ import annotations

from typing import Any


class BridgeError(Exception):
    code = "internal"
    status = 500
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if retryable is not None:
            self.retryable = retryable
        self.field = field

    def as_dict(self) -> dict[str, Any]:
        """The `error` object of a socket ack and of a REST error body."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        if self.retryable:
            out["retryable"] = True
        return out

    def ack(self) -> dict[str, Any]:
        """The ack of a refused socket event."""
        return {"ok": False, "error": self.as_dict()}


class AuthError(BridgeError):
    """A token was refused; `code` says why in one word."""

    status = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class PayloadError(BridgeError, ValueError):
    """A client sent something malformed; nothing was changed."""

    status = 400

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message, code=code, field=field)


class StoreError(BridgeError):
    """A request the database refused, or could not take (retryable)."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int,
        *,
        retryable: bool = False,
        field: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status, retryable=retryable, field=field)


def unavailable(message: str = "the database cannot be reached; try again") -> StoreError:
    """A retryable refusal: nothing was wrong with the request."""
    return StoreError("unavailable", message, 503, retryable=True)


def blocked() -> StoreError:
    """A message between two people one of whom blocked the other."""
    return StoreError("blocked", "you cannot message this user: one of you blocked the other", 403)


def attachment_removed() -> StoreError:
    """A message naming the attachment of an unsent message, queued for
    removal from storage (public.refuse_removed_attachment). A StoreError:
    the database raises it from inside a group-committed send batch."""
    return StoreError(
        "attachment_removed",
        "the attachment was removed (its message was unsent)",
        410,
        field="mediaUrl",
    )


class RateLimited(BridgeError):
    """Over a rate limit (bridge/limits/): nothing was done; try again after
    `retry_after` seconds (REST: 429 with Retry-After)."""

    code = "rate_limited"
    status = 429
    retryable = True

    def __init__(self, kind: str, retry_after: float) -> None:
        super().__init__(f"too many {kind} requests; try again in {retry_after:.2f} s")
        self.kind = kind
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "retry_after": round(self.retry_after, 3)}
