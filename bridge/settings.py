"""The daemon's settings as frozen, typed sections: every key's type,
default and documentation. The README's settings table is rendered from
these (bridge/settings_table.py); loading them from `config.toml` and the
environment, and checking them, is bridge/config.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


def setting(default: Any, doc: str, *, secret: bool = False) -> Any:
    """A settings field with its documentation: the README's settings table
    is rendered from these (bridge/settings_table.py)."""
    return field(default=default, repr=not secret, metadata={"doc": doc, "secret": secret})


@dataclass(frozen=True)
class ServerSettings:
    host: str = setting("0.0.0.0", "address Socket.IO and REST listen on")
    port: int = setting(3000, "port of Socket.IO and REST")
    cors_origins: tuple[str, ...] = setting(
        (
            "http://localhost:3000",
            "http://localhost:3001",
            "http://localhost:5173",
            "http://localhost:8081",
        ),
        "browser origins allowed (REST and Socket.IO polling); comma-separated in the environment",
    )
    environment: str = setting(
        "development",
        "`development`, `test` or `production`; production turns off the seed's test endpoints"
        " and the demo page",
    )
    max_message_chars: int = setting(4000, "longest message text accepted")
    ping_interval: float = setting(
        25.0, "engine.io pingInterval: seconds between the server's pings"
    )
    ping_timeout: float = setting(
        20.0,
        "engine.io pingTimeout: a client silent for ping_interval + ping_timeout is cut"
        " (and a client that hears no ping for as long reconnects)",
    )
    edit_window: float = setting(
        900.0,
        "seconds after sending during which the sender may edit or unsend a message (0: never);"
        " written to the database on start, where RLS and triggers enforce it for every client",
    )
    fanout: str = setting(
        "direct",
        "`direct`: one write per recipient without a task each; `stock`: python-socketio's"
        " own manager (for comparison in bench/)",
    )
    websocket_compression: bool = setting(
        False,
        "permessage-deflate on websockets and gzip on polling: ~140 KB of zlib state per"
        " socket and CPU per frame, for small chat frames",
    )
    max_queued_packets: int = setting(
        1000,
        "packets waiting for one socket at most; a socket this far behind (it stopped"
        " reading) is cut off and released; 0: no bound; at least 5 x outbox.batch_size",
    )
    dev: bool = setting(
        False,
        "the demo chat page at / and its dev-only token endpoint, also with a database URL;"
        " always on embedded, never in production",
    )


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = setting(
        "", "Postgres URL; empty: the embedded default, a local Postgres under data_dir"
    )
    data_dir: str = setting(".data", "the embedded Postgres's folder")
    embedded_port: int = setting(54329, "the embedded Postgres's port")
    supabase_dir: str = setting(
        "supabase", "folder with migrations/ and seed.sql, as the supabase CLI lays it out"
    )
    migrate: bool = setting(False, "apply pending migrations on start (always on embedded)")
    pool_size: int = setting(10, "connections in the pool for client requests")


@dataclass(frozen=True)
class SupabaseSettings:
    url: str = setting(
        "http://127.0.0.1:54321",
        "the project's API URL (JWKS, Storage, Realtime); the supabase CLI's local default",
    )
    service_role_key: str = setting("", "service role key, for the Realtime doorbell", secret=True)
    jwt_secret: str = setting(
        "",
        "legacy HS256 JWT secret; embedded: the supabase CLI's local default",
        secret=True,
    )
    jwks_url: str = setting(
        "", "JWKS for ES256/RS256 tokens; empty: `<url>/auth/v1/.well-known/jwks.json`"
    )
    avatars_bucket: str = setting("avatars", "public Storage bucket of profile images")


@dataclass(frozen=True)
class FcmSettings:
    project_id: str = setting("", "Firebase project; empty: read from the credentials")
    credentials: str = setting("", "service account JSON file; without credentials pushes are off")
    endpoint: str = setting("", "replaces the FCM v1 base URL, for emulators and tests")


@dataclass(frozen=True)
class PushSettings:
    cooldown: float = setting(
        5.0,
        "seconds after a push to a person about a conversation during which further"
        " changes merge into one next push",
    )
    max_attempts: int = setting(
        5, "sending attempts per push for transient FCM errors (429, 5xx, network)"
    )
    max_backoff: float = setting(
        60.0, "longest wait between attempts (Retry-After is honoured up to it)"
    )
    concurrency: int = setting(32, "pushes sent at once")
    lease_seconds: float = setting(
        15.0,
        "a push being sent by an instance that died is taken over after this; renewed"
        " every third of it while trying",
    )
    poll_interval: float = setting(
        1.0, "how often the worker looks for due pushes when nothing woke it"
    )


@dataclass(frozen=True)
class RedisSettings:
    url: str = setting("", "Redis for several instances (presence, typing, rings)")


@dataclass(frozen=True)
class OutboxSettings:
    doorbell: str = setting("auto", "what wakes the relay: `auto`, `listen`, `realtime` or `poll`")
    poll_interval: float = setting(5.0, "seconds between looks at the outbox without a ring")
    batch_size: int = setting(200, "changes relayed per page")
    retention_hours: float = setting(
        72.0, "how long relayed changes stay for `sync` (at most 1,000 are replayed)"
    )
    emit_at_commit: bool = setting(
        True,
        "a single instance emits socket and REST sends right after their commit instead of"
        " after the relay reads them back (one hand-over less; a little Postgres CPU more)",
    )


@dataclass(frozen=True)
class PresenceSettings:
    offline_grace: float = setting(
        3.0,
        "seconds a user may be gone before partners hear offline (reconnects within it"
        " do not flap)",
    )
    typing_ttl: float = setting(6.0, "a typing_start without typing_stop expires after this")
    typing_throttle: float = setting(2.0, "repeated typing_start within this is not relayed again")
    instance_ttl: float = setting(
        20.0,
        "with several instances: one silent this long is gone, and a survivor announces"
        " its users offline",
    )


@dataclass(frozen=True)
class MetricsSettings:
    token: str = setting(
        "",
        "empty: `GET /metrics` is open (it shows no user data, like /healthz); set: it wants"
        " `Authorization: Bearer <token>`",
        secret=True,
    )


# The kinds of client calls with a rate limit each (`<kind>_rate`, `<kind>_burst`).
LIMIT_KINDS = ("send", "typing", "read", "join", "other")


@dataclass(frozen=True)
class LimitsSettings:
    send_rate: float = setting(
        5.0,
        "messages a user may send per second (socket and REST), and each socket alone; 0: no limit",
    )
    send_burst: int = setting(20, "messages sent at once before send_rate applies")
    typing_rate: float = setting(3.0, "typing_start / typing_stop per second; 0: no limit")
    typing_burst: int = setting(10, "typing events at once before typing_rate applies")
    read_rate: float = setting(5.0, "mark_seen (socket and REST) per second; 0: no limit")
    read_burst: int = setting(30, "mark_seen at once before read_rate applies")
    join_rate: float = setting(10.0, "join_* and leave_conversation per second; 0: no limit")
    join_burst: int = setting(
        100, "joins at once (a client joining its chat list) before join_rate"
    )
    other_rate: float = setting(
        10.0, "every other client event and REST request per second; 0: no limit"
    )
    other_burst: int = setting(50, "other events at once before other_rate applies")
    max_sockets_per_user: int = setting(
        20,
        "concurrent sockets per user over all instances; one more is refused"
        " (`too_many_connections`); 0: no cap",
    )


DEFAULT_ATTACHMENT_TYPES = (
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/heic",
    "application/pdf",
    "text/plain",
    "text/csv",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/zip",
)


@dataclass(frozen=True)
class AttachmentsSettings:
    backend: str = setting(
        "auto",
        "where attachment bytes live: `storage` (Supabase Storage through its API, with"
        " supabase.service_role_key), `local` (files under attachments.dir, served by the"
        " bridge), `auto` (storage when a service role key is set, else local)",
    )
    bucket: str = setting("chat-attachments", "private Storage bucket of message attachments")
    dir: str = setting(
        "", "folder of the local backend's files; empty: `attachments` under database.data_dir"
    )
    max_bytes: int = setting(10 * 1024 * 1024, "largest attachment accepted, in bytes")
    allowed_types: tuple[str, ...] = setting(
        DEFAULT_ATTACHMENT_TYPES,
        "MIME types accepted (images, PDF, common office documents); comma-separated in the"
        " environment",
    )
    upload_ttl: float = setting(
        600.0, "seconds a signed upload URL stays valid (Supabase Storage: always 2 hours)"
    )
    read_ttl: float = setting(300.0, "seconds a signed read URL of an attachment stays valid")
    sweep_interval: float = setting(
        30.0,
        "seconds between sweeps removing unsent attachments from storage (an unsend through"
        " the bridge removes at once; this catches supabase-js unsends and retries failures)",
    )
    public_url: str = setting(
        "",
        "the bridge's address as clients reach it, for the local backend's signed URLs"
        " (behind a proxy); empty: from each request's Host",
    )


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = ServerSettings()
    database: DatabaseSettings = DatabaseSettings()
    supabase: SupabaseSettings = SupabaseSettings()
    fcm: FcmSettings = FcmSettings()
    redis: RedisSettings = RedisSettings()
    outbox: OutboxSettings = OutboxSettings()
    presence: PresenceSettings = PresenceSettings()
    push: PushSettings = PushSettings()
    metrics: MetricsSettings = MetricsSettings()
    limits: LimitsSettings = LimitsSettings()
    attachments: AttachmentsSettings = AttachmentsSettings()

    @property
    def embedded(self) -> bool:
        return not self.database.url

    @property
    def jwt_secret(self) -> str:
        """The HS256 secret; the supabase CLI's local default in embedded mode."""
        if self.supabase.jwt_secret:
            return self.supabase.jwt_secret
        return LOCAL_JWT_SECRET if self.embedded else ""

    @property
    def storage_public_base(self) -> str:
        """Where the avatars bucket's public objects are (profile image URLs)."""
        base = self.supabase.url.rstrip("/")
        return f"{base}/storage/v1/object/public/{self.supabase.avatars_bucket}"

    @property
    def attachments_backend(self) -> str:
        """`storage` or `local` (bridge/attachments/)."""
        backend = self.attachments.backend
        if backend == "auto":
            return "storage" if self.supabase.service_role_key else "local"
        return backend

    @property
    def attachments_dir(self) -> str:
        return self.attachments.dir or str(Path(self.database.data_dir) / "attachments")

    @property
    def production(self) -> bool:
        return self.server.environment == "production"

    @property
    def demo(self) -> bool:
        """The demo page and its dev-only endpoints: on the embedded default
        or with `server.dev`, never in production."""
        return not self.production and (self.embedded or self.server.dev)
