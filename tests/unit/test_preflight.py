"""Start-up checks on the settings alone: what a production configuration
must not look like."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import load_settings
from bridge.preflight import config_problems

REPO = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "BRIDGE_SERVER_ENVIRONMENT": "production",
    "DATABASE_URL": "postgresql://postgres@db.example.supabase.co:5432/postgres",
    "SUPABASE_JWT_SECRET": "s" * 40,
    "SUPABASE_URL": "https://example.supabase.co",
}


def test_a_complete_production_configuration_passes() -> None:
    """Database, project URL and secret set: nothing to object to."""
    assert config_problems(load_settings(REPO / "config.toml", env=PRODUCTION)) == []


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:54321", "http://localhost:54321", "http://[::1]:54321", ""]
)
def test_production_refuses_a_supabase_url_on_this_machine(url: str) -> None:
    """The Dockerfile's config.toml names the local CLI's URL; in production
    that must be replaced by the project's, or JWKS and avatars point at the
    container itself."""
    problems = config_problems(
        load_settings(REPO / "config.toml", env={**PRODUCTION, "SUPABASE_URL": url})
    )
    assert len(problems) == 1 and "SUPABASE_URL" in problems[0]


def test_production_refuses_the_embedded_database() -> None:
    """No DATABASE_URL in production is a mistake, not a demo."""
    env = {k: v for k, v in PRODUCTION.items() if k != "DATABASE_URL"}
    problems = config_problems(load_settings(REPO / "config.toml", env=env))
    assert any("DATABASE_URL" in p for p in problems)


def test_development_is_not_held_to_production_rules() -> None:
    """`make run` (embedded, local URL) has nothing to object to."""
    assert config_problems(load_settings(REPO / "config.toml", env={})) == []
