"""Loading the daemon's settings (the sections in bridge/settings.py): one
frozen, typed object built from `config.toml` and then the environment, and
checked. The environment is read here and nowhere else.

Every key `section.key` can be overridden by `BRIDGE_SECTION_KEY`; the names
the seed document and Supabase use (`SOCKET_PORT`, `DATABASE_URL`, ...) are
honoured too. Unknown keys, unknown `BRIDGE_*` variables and values of the
wrong type stop start-up with a message that names them.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from bridge.errors import BridgeError
from bridge.settings import (
    LIMIT_KINDS,
    LOCAL_JWT_SECRET,
    DatabaseSettings,
    FcmSettings,
    LimitsSettings,
    MetricsSettings,
    OutboxSettings,
    PresenceSettings,
    PushSettings,
    RedisSettings,
    ServerSettings,
    Settings,
    SupabaseSettings,
)

# The sections are defined in bridge/settings.py and still importable from here.
__all__ = [
    "ENV_ALIASES",
    "ENV_PREFIX",
    "ENV_RESERVED",
    "LOCAL_JWT_SECRET",
    "ConfigError",
    "DatabaseSettings",
    "FcmSettings",
    "LimitsSettings",
    "MetricsSettings",
    "OutboxSettings",
    "PresenceSettings",
    "PushSettings",
    "RedisSettings",
    "ServerSettings",
    "Settings",
    "SupabaseSettings",
    "load_settings",
]


class ConfigError(BridgeError, ValueError):
    """A setting is unknown, missing or of the wrong type."""

    code = "invalid_setting"


# Names other programs already use for some settings.
ENV_ALIASES: dict[str, tuple[str, str]] = {
    "SOCKET_PORT": ("server", "port"),
    "CORS_ORIGIN": ("server", "cors_origins"),
    "DATABASE_URL": ("database", "url"),
    "SUPABASE_URL": ("supabase", "url"),
    "SUPABASE_SERVICE_ROLE_KEY": ("supabase", "service_role_key"),
    "SUPABASE_JWT_SECRET": ("supabase", "jwt_secret"),
    "FCM_PROJECT_ID": ("fcm", "project_id"),
    "GOOGLE_APPLICATION_CREDENTIALS": ("fcm", "credentials"),
    "FCM_ENDPOINT": ("fcm", "endpoint"),
    "REDIS_URL": ("redis", "url"),
}
ENV_PREFIX = "BRIDGE_"
# BRIDGE_* variables that are not settings keys.
ENV_RESERVED = {"BRIDGE_CONFIG"}

_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("server", "environment"): ("development", "test", "production"),
    ("outbox", "doorbell"): ("auto", "listen", "realtime", "poll"),
    ("server", "fanout"): ("direct", "stock"),
    ("attachments", "backend"): ("auto", "local", "storage"),
}


def _sections() -> dict[str, type[Any]]:
    return {f.name: get_type_hints(Settings)[f.name] for f in dataclasses.fields(Settings)}


def _coerce(where: str, raw: Any, kind: Any, from_env: bool) -> Any:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if from_env and isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on"):
            return True
        if from_env and isinstance(raw, str) and raw.lower() in ("0", "false", "no", "off", ""):
            return False
    elif kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if from_env and isinstance(raw, str):
            try:
                return int(raw.strip())
            except ValueError:
                pass
    elif kind is float:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            return float(raw)
        if from_env and isinstance(raw, str):
            try:
                return float(raw.strip())
            except ValueError:
                pass
    elif kind is str:
        if isinstance(raw, str):
            return raw
    elif kind == tuple[str, ...]:
        if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            return tuple(raw)
        if from_env and isinstance(raw, str):
            return tuple(x.strip() for x in raw.split(",") if x.strip())
    name = getattr(kind, "__name__", str(kind))
    raise ConfigError(f"{where}: expected {name}, got {raw!r}")


def _check_value(section: str, key: str, where: str, value: Any) -> None:
    choices = _CHOICES.get((section, key))
    if choices and value not in choices:
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"{where}: must not be negative, got {value!r}")
    if key.endswith("port") and isinstance(value, int) and not 0 <= value <= 65535:
        raise ConfigError(f"{where}: not a TCP port: {value}")


def load_settings(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Builds the settings from a TOML file (if it exists) and the environment.

    `path` defaults to `$BRIDGE_CONFIG`, else `config.toml` in the working
    directory; a missing default file is fine, a missing named file is not.
    """
    env = os.environ if env is None else env
    named = path is not None or "BRIDGE_CONFIG" in env
    file = Path(path if path is not None else env.get("BRIDGE_CONFIG", "config.toml"))
    data: dict[str, Any] = {}
    if file.is_file():
        try:
            data = tomllib.loads(file.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    elif named:
        raise ConfigError(f"config file {file} does not exist")

    sections = _sections()
    values: dict[str, dict[str, Any]] = {name: {} for name in sections}
    for section, table in data.items():
        if section not in sections:
            raise ConfigError(f"{file}: unknown section [{section}]")
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: [{section}] must be a table")
        hints = get_type_hints(sections[section])
        for key, raw in table.items():
            where = f"{file}: {section}.{key}"
            if key not in hints:
                raise ConfigError(f"{where}: unknown key")
            values[section][key] = _coerce(where, raw, hints[key], from_env=False)

    overrides: list[tuple[str, str, str, str]] = []
    for name, raw in env.items():
        if name in ENV_ALIASES:
            section, key = ENV_ALIASES[name]
            overrides.append((name, section, key, raw))
        elif name.startswith(ENV_PREFIX) and name not in ENV_RESERVED:
            rest = name[len(ENV_PREFIX) :].lower()
            section, _, key = rest.partition("_")
            if section not in sections or key not in get_type_hints(sections[section]):
                raise ConfigError(f"environment: unknown setting {name}")
            overrides.append((name, section, key, raw))
    # BRIDGE_* names win over aliases when both are set.
    overrides.sort(key=lambda o: o[0].startswith(ENV_PREFIX))
    for name, section, key, raw in overrides:
        hints = get_type_hints(sections[section])
        values[section][key] = _coerce(f"environment: {name}", raw, hints[key], from_env=True)

    built: dict[str, Any] = {}
    for section, cls in sections.items():
        for key, value in values[section].items():
            _check_value(section, key, f"{section}.{key}", value)
        built[section] = cls(**values[section])
    settings = Settings(**built)
    _check_whole(settings)
    return settings


def _check_whole(settings: Settings) -> None:
    if not settings.embedded and not settings.jwt_secret and not settings.supabase.url:
        raise ConfigError(
            "database.url is set but neither supabase.jwt_secret (SUPABASE_JWT_SECRET) "
            "nor supabase.url (for the JWKS) is: tokens could not be verified"
        )
    if settings.outbox.doorbell == "realtime" and not settings.supabase.service_role_key:
        raise ConfigError(
            "outbox.doorbell = realtime needs supabase.service_role_key (SUPABASE_SERVICE_ROLE_KEY)"
        )
    if settings.server.dev and settings.production:
        raise ConfigError(
            "server.dev = true with server.environment = production: the demo page"
            " hands out tokens for any user; turn one of them off"
        )
    if settings.outbox.batch_size < 1:
        raise ConfigError("outbox.batch_size: must be at least 1")
    if settings.outbox.poll_interval <= 0:
        raise ConfigError("outbox.poll_interval: must be positive")
    # One relayed page can put up to 4 packets per change on one socket at
    # once; a bound below that would cut off sockets that read just fine.
    queued, page = settings.server.max_queued_packets, settings.outbox.batch_size
    if queued and queued < 5 * page:
        raise ConfigError(
            f"server.max_queued_packets: must be 0 or at least 5 x outbox.batch_size"
            f" ({5 * page}), got {queued}"
        )
    if settings.push.lease_seconds <= 0 or settings.push.poll_interval <= 0:
        raise ConfigError("push.lease_seconds and push.poll_interval: must be positive")
    limits = settings.limits
    for kind in LIMIT_KINDS:
        if getattr(limits, f"{kind}_rate") > 0 and getattr(limits, f"{kind}_burst") < 1:
            raise ConfigError(f"limits.{kind}_burst: must be at least 1 when {kind}_rate is set")
    if settings.attachments_backend == "storage" and not settings.supabase.service_role_key:
        raise ConfigError(
            "attachments.backend = storage needs supabase.service_role_key"
            " (SUPABASE_SERVICE_ROLE_KEY)"
        )
    if settings.attachments.max_bytes < 1 or settings.attachments.read_ttl < 1:
        raise ConfigError("attachments.max_bytes and attachments.read_ttl: must be positive")
    if settings.attachments.upload_ttl < 1:
        raise ConfigError("attachments.upload_ttl: must be positive")
    if settings.push.concurrency < 1 or settings.push.max_attempts < 1:
        raise ConfigError("push.concurrency and push.max_attempts: must be at least 1")
