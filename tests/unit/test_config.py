"""Settings: config.toml, then environment; bad or unknown keys stop start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import LOCAL_JWT_SECRET, ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_repository_config_is_the_embedded_default() -> None:
    """The shipped config.toml loads and means: embedded Postgres on port 3000."""
    settings = load_settings(REPO / "config.toml", env={})
    assert settings.embedded and settings.server.port == 3000
    assert settings.jwt_secret == LOCAL_JWT_SECRET
    assert "http://localhost:5173" in settings.server.cors_origins


def test_seed_environment_names_are_honoured(tmp_path: Path) -> None:
    """SOCKET_PORT, CORS_ORIGIN, DATABASE_URL and friends override the file."""
    env = {
        "SOCKET_PORT": "4000",
        "CORS_ORIGIN": "https://app.example.com, https://admin.example.com",
        "DATABASE_URL": "postgresql://db/chat",
        "SUPABASE_JWT_SECRET": "s" * 40,
        "FCM_PROJECT_ID": "proj",
        "REDIS_URL": "redis://localhost:6379/0",
    }
    settings = load_settings(write(tmp_path, "[server]\nport = 3000\n"), env=env)
    assert settings.server.port == 4000
    assert settings.server.cors_origins == ("https://app.example.com", "https://admin.example.com")
    assert not settings.embedded and settings.jwt_secret == "s" * 40
    assert (settings.fcm.project_id, settings.redis.url) == ("proj", "redis://localhost:6379/0")


def test_every_key_has_a_bridge_variable(tmp_path: Path) -> None:
    """BRIDGE_<SECTION>_<KEY> sets any key, and wins over the seed's alias."""
    env = {
        "BRIDGE_OUTBOX_POLL_INTERVAL": "0.5",
        "BRIDGE_SERVER_PORT": "5000",
        "SOCKET_PORT": "4000",
        "BRIDGE_DATABASE_MIGRATE": "yes",
    }
    settings = load_settings(write(tmp_path, ""), env=env)
    assert settings.outbox.poll_interval == 0.5
    assert settings.server.port == 5000
    assert settings.database.migrate is True


@pytest.mark.parametrize(
    ("text", "env", "says"),
    [
        ("[server]\nprot = 3000\n", {}, "server.prot: unknown key"),
        ("[servers]\nport = 3000\n", {}, "unknown section"),
        ("[server]\nport = '3000'\n", {}, "expected int"),
        ("[server]\nport = 70000\n", {}, "not a TCP port"),
        ("[outbox]\ndoorbell = 'carrier-pigeon'\n", {}, "must be one of"),
        ("[server]\nport = 3000", {"SOCKET_PORT": "three"}, "SOCKET_PORT: expected int"),
        ("", {"BRIDGE_SERVER_PROT": "1"}, "unknown setting BRIDGE_SERVER_PROT"),
        ("[server\n", {}, "not valid TOML"),
        ("", {"DATABASE_URL": "postgresql://x/y", "SUPABASE_URL": ""}, "tokens could not"),
        ("[outbox]\nbatch_size = 0\n", {}, "batch_size"),
        ("[push]\nlease_seconds = 0.0\n", {}, "push.lease_seconds"),
    ],
    ids=[
        "unknown-key",
        "unknown-section",
        "wrong-type",
        "bad-port",
        "bad-choice",
        "bad-env-type",
        "unknown-env",
        "bad-toml",
        "no-way-to-verify-tokens",
        "zero-batch",
        "zero-push-lease",
    ],
)
def test_bad_settings_fail_fast_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], says: str
) -> None:
    """Start-up stops with a message that names the offending setting."""
    with pytest.raises(ConfigError, match=says):
        load_settings(write(tmp_path, text), env=env)


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    """BRIDGE_CONFIG pointing nowhere is an error, not a silent default."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env={"BRIDGE_CONFIG": str(tmp_path / "missing.toml")})


def test_secrets_stay_out_of_repr() -> None:
    """Printing the settings never shows the JWT secret or service key."""
    settings = load_settings(
        env={
            "SUPABASE_JWT_SECRET": "top-secret-value-xyz" * 2,
            "SUPABASE_SERVICE_ROLE_KEY": "service-key-abc",
        }
    )
    assert "top-secret" not in repr(settings) and "service-key" not in repr(settings)


def test_a_queue_bound_below_a_page_of_packets_is_refused(tmp_path: Path) -> None:
    """A per-socket bound that one relayed page could reach by itself would
    cut off sockets that read fine: start-up says so."""
    with pytest.raises(ConfigError, match="max_queued_packets"):
        load_settings(
            write(tmp_path, ""),
            {"BRIDGE_SERVER_MAX_QUEUED_PACKETS": "100", "BRIDGE_OUTBOX_BATCH_SIZE": "200"},
        )
