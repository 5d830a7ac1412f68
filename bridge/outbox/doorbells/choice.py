"""Which doorbell the relay listens to, opening it, and the Realtime one's keys. The
`realtime` client is imported only when its doorbell is chosen: a release of
it that breaks cannot take down a bridge that rings through LISTEN."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import jwt

from bridge.auth import mint_token
from bridge.db_health import DatabaseHealth
from bridge.metrics import Metrics
from bridge.outbox.doorbells.base import Doorbell, PollDoorbell
from bridge.outbox.doorbells.listen import ListenDoorbell
from bridge.settings import Settings

if TYPE_CHECKING:
    from bridge.outbox.doorbells.realtime import RealtimeDoorbell

log = logging.getLogger(__name__)

SUPABASE_POOLER_PORT = 6543  # Supavisor's transaction mode: no LISTEN there
SECRET_KEY_PREFIX = "sb_secret_"
PUBLISHABLE_KEY_PREFIX = "sb_publishable_"
REALTIME_TOKEN_TTL = 3600


def doorbell_choice(settings: Settings) -> str:
    """`auto`: Supabase Realtime when the bridge talks to Supabase through the
    transaction pooler (where LISTEN cannot work), else LISTEN."""
    choice = settings.outbox.doorbell
    if choice != "auto":
        return choice
    port = urlsplit(settings.database.url).port if settings.database.url else None
    if settings.supabase.service_role_key and port == SUPABASE_POOLER_PORT:
        return "realtime"
    return "listen"


def open_doorbell(
    settings: Settings, choice: str, *, metrics: Metrics, health: DatabaseHealth, dsn: str
) -> Doorbell:
    """The doorbell of `choice` (see doorbell_choice), not yet started."""
    log.info("outbox doorbell", extra={"doorbell": choice})
    if choice == "poll":
        return PollDoorbell()
    if choice == "realtime":
        return realtime_doorbell(settings, metrics=metrics, dsn=dsn)
    return ListenDoorbell(dsn, health)


def realtime_key_problem(settings: Settings) -> str | None:
    """Why the configured keys cannot open the doorbell's private channel
    (pure; None: they can, as far as can be told without asking Realtime).
    Works: a secret API key (`sb_secret_...`; the project may have revoked
    the legacy JWT secret), or the legacy service-role JWT, with or without
    the legacy JWT secret that signed it."""
    key = settings.supabase.service_role_key
    name = "supabase.service_role_key (SUPABASE_SERVICE_ROLE_KEY)"
    if not key:
        return f"the Realtime doorbell needs {name}: a secret API key (sb_secret_...)"
    if key.startswith(SECRET_KEY_PREFIX):
        return None
    if key.startswith(PUBLISHABLE_KEY_PREFIX):
        return (
            f"{name} is a publishable key (sb_publishable_...): the Realtime doorbell joins a"
            " private channel only the service role may read; use a secret key (sb_secret_...)"
        )
    try:
        claims = jwt.decode(key, options={"verify_signature": False})
        header = jwt.get_unverified_header(key)
    except jwt.PyJWTError:
        return f"{name} is neither a secret API key (sb_secret_...) nor a JWT"
    if claims.get("role") != "service_role":
        return (
            f"{name} is a JWT for role {claims.get('role')!r}, not service_role: the Realtime"
            " doorbell's private channel is readable by the service role only"
        )
    secret = settings.supabase.jwt_secret
    if secret and header.get("alg") == "HS256":
        try:
            jwt.decode(key, secret, algorithms=["HS256"], options={"verify_aud": False})
        except jwt.InvalidSignatureError:
            return (
                f"{name} was not signed with supabase.jwt_secret (SUPABASE_JWT_SECRET): one of"
                " them belongs to another project, or the secret was rotated"
            )
        except jwt.PyJWTError:
            pass  # expiry and the like: Realtime has the last word
    return None


def realtime_doorbell(
    settings: Settings, *, metrics: Metrics | None = None, dsn: str | None = None
) -> RealtimeDoorbell:
    """A secret API key is all the channel needs: Realtime runs the channel
    on the service-role token the key stands for (nothing to mint or
    refresh; asymmetric signing keys are the project's business). With a
    legacy service-role JWT and the legacy JWT secret, the channel gets its
    own short-lived tokens, refreshed at half their life."""
    from bridge.outbox.doorbells.realtime import RealtimeDoorbell

    key = settings.supabase.service_role_key
    secret = settings.supabase.jwt_secret
    mint = bool(secret) and not key.startswith(SECRET_KEY_PREFIX)

    def service_token() -> str:
        return mint_token(
            secret, "chat-bridge", REALTIME_TOKEN_TTL, role="service_role", iss="chat-bridge"
        )

    return RealtimeDoorbell(
        settings.supabase.url,
        key,
        access_token=service_token if mint else None,
        refresh_every=REALTIME_TOKEN_TTL / 2 if mint else None,
        metrics=metrics,
        dsn=dsn,
    )
