"""Which doorbell the relay listens to, and the Realtime one's tokens."""

from __future__ import annotations

from urllib.parse import urlsplit

from bridge.auth import mint_token
from bridge.config import Settings
from bridge.outbox.doorbells.realtime import RealtimeDoorbell

SUPABASE_POOLER_PORT = 6543  # Supavisor's transaction mode: no LISTEN there


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


REALTIME_TOKEN_TTL = 3600


def realtime_doorbell(settings: Settings) -> RealtimeDoorbell:
    """Connects with the service role key. With the project's JWT secret the
    channel gets its own short-lived service-role tokens, refreshed at half
    their life, so it never runs on an expired token."""
    secret = settings.supabase.jwt_secret

    def service_token() -> str:
        return mint_token(
            secret, "chat-bridge", REALTIME_TOKEN_TTL, role="service_role", iss="chat-bridge"
        )

    return RealtimeDoorbell(
        settings.supabase.url,
        settings.supabase.service_role_key,
        access_token=service_token if secret else None,
        refresh_every=REALTIME_TOKEN_TTL / 2 if secret else None,
    )
