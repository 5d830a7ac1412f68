"""When the demo page is on: the embedded default or `server.dev`, never in
production; the vendored socket.io-client is the version its note names."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from bridge.config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]
VENDOR = REPO / "bridge" / "demo" / "static" / "vendor"
DSN = "postgresql://db.example.com/chat"
SECRET = "s" * 40


def test_the_repository_config_runs_the_demo_page() -> None:
    """`make run` (config.toml, no DATABASE_URL): the demo page is on."""
    assert load_settings(REPO / "config.toml", env={}).demo


@pytest.mark.parametrize(
    ("env", "demo"),
    [
        ({}, True),
        ({"DATABASE_URL": DSN, "SUPABASE_JWT_SECRET": SECRET}, False),
        ({"DATABASE_URL": DSN, "SUPABASE_JWT_SECRET": SECRET, "BRIDGE_SERVER_DEV": "true"}, True),
        (
            {
                "DATABASE_URL": DSN,
                "SUPABASE_JWT_SECRET": SECRET,
                "BRIDGE_SERVER_ENVIRONMENT": "test",
                "BRIDGE_SERVER_DEV": "1",
            },
            True,
        ),
        (
            {
                "DATABASE_URL": DSN,
                "SUPABASE_JWT_SECRET": SECRET,
                "BRIDGE_SERVER_ENVIRONMENT": "production",
            },
            False,
        ),
        ({"BRIDGE_SERVER_ENVIRONMENT": "production"}, False),
    ],
)
def test_demo_is_on_for_the_embedded_default_or_dev_and_never_in_production(
    env: dict[str, str], demo: bool
) -> None:
    """Embedded or `server.dev` turns the page on; production keeps it off
    (the embedded default included)."""
    assert load_settings(REPO / "config.toml", env=env).demo is demo


def test_dev_in_production_is_refused(tmp_path: Path) -> None:
    """`server.dev = true` with production settings stops start-up with a
    message naming both settings, rather than quietly serving tokens."""
    env = {
        "DATABASE_URL": DSN,
        "SUPABASE_JWT_SECRET": SECRET,
        "BRIDGE_SERVER_ENVIRONMENT": "production",
        "BRIDGE_SERVER_DEV": "true",
    }
    with pytest.raises(ConfigError, match=r"server\.dev.*production"):
        load_settings(REPO / "config.toml", env=env)


def test_the_vendored_socket_io_client_is_the_noted_version() -> None:
    """The note beside the vendored build names its version and checksum;
    the file's banner and bytes agree with it, and its licence is there."""
    note = (VENDOR / "README.md").read_text()
    version = re.search(r"version: (\S+)", note)
    checksum = re.search(r"sha256: ([0-9a-f]{64})", note)
    assert version and checksum
    build = (VENDOR / "socket.io.esm.min.js").read_bytes()
    assert f"Socket.IO v{version[1]}".encode() in build[:100]
    assert hashlib.sha256(build).hexdigest() == checksum[1]
    assert "MIT License" in (VENDOR / "socket.io-client.LICENSE").read_text()
