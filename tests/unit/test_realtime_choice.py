"""Which keys can run the Realtime doorbell (pure), and that the `realtime`
client is imported only when that doorbell is chosen."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import jwt
import pytest

from bridge.auth import mint_token
from bridge.config import OutboxSettings, Settings, SupabaseSettings
from bridge.outbox.doorbells.choice import realtime_doorbell, realtime_key_problem
from bridge.outbox.doorbells.realtime import PERMANENT_REFUSALS, refusal_reason

SECRET = "unit-secret-that-is-at-least-32-characters-long"


def settings(key: str, secret: str = "") -> Settings:
    return dataclasses.replace(
        Settings(),
        supabase=SupabaseSettings(
            url="https://x.supabase.co", service_role_key=key, jwt_secret=secret
        ),
        outbox=OutboxSettings(doorbell="realtime"),
    )


def service_jwt(secret: str = SECRET, role: str = "service_role") -> str:
    return mint_token(secret, "x", 3600, role=role)


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("sb_secret_abc", ""),
        ("sb_secret_abc", SECRET),  # the legacy secret may be long gone: never used
        (service_jwt(), SECRET),
        (service_jwt(), ""),
    ],
)
def test_keys_that_can_work(key: str, secret: str) -> None:
    """Secret API keys, and the legacy service-role JWT with or without the
    legacy secret, pass the configuration check."""
    assert realtime_key_problem(settings(key, secret)) is None


@pytest.mark.parametrize(
    ("key", "secret", "words"),
    [
        ("sb_publishable_abc", "", "publishable key"),
        (service_jwt(role="anon"), SECRET, "not service_role"),
        (service_jwt(secret="another-secret-that-is-32-characters-long!"), SECRET, "not signed"),
        ("not-a-key", "", "neither a secret API key"),
    ],
)
def test_keys_that_cannot_work(key: str, secret: str, words: str) -> None:
    """A publishable key, a JWT for another role, a JWT the configured
    secret did not sign, or garbage: one clear sentence each."""
    problem = realtime_key_problem(settings(key, secret))
    assert problem is not None and words in problem


def test_secret_keys_mint_nothing_legacy_keys_mint_fresh_tokens() -> None:
    """With a secret API key the channel runs on the key; with the legacy
    service-role JWT and secret the channel gets minted service-role tokens."""
    assert realtime_doorbell(settings("sb_secret_abc", SECRET))._access_token is None
    minted = realtime_doorbell(settings(service_jwt(), SECRET))._access_token
    assert minted is not None
    assert (
        jwt.decode(minted(), SECRET, algorithms=["HS256"], audience="authenticated")["role"]
        == "service_role"
    )


def test_refusals_read_like_the_server() -> None:
    """A refused join's reason is taken from the reply; refusals no retry can
    cure are recognised."""
    reason = refusal_reason(
        Exception('{"reason": "PrivateOnly: This project only allows private channels"}')
    )
    assert reason.startswith("PrivateOnly")
    assert any(m in reason for m in PERMANENT_REFUSALS)
    assert not any(m in "RealtimeRestarting: Realtime is restarting" for m in PERMANENT_REFUSALS)


def test_realtime_client_is_not_imported_unless_chosen() -> None:
    """Importing the daemon (LISTEN or poll doorbell) never imports the
    `realtime` client, so a broken release of it cannot stop such a bridge."""
    code = "import sys, bridge.app, bridge.preflight, bridge.cli; print('realtime' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
