"""Pushes in tests: a daemon pointed at the FCM stand-in, and the REST calls
that register devices and send."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from bridge.config import FcmSettings, OutboxSettings, PushSettings, Settings
from tests.support.fcm_standin import FcmStandIn
from tests.support.harness import Harness, settings_for


def push_settings(dsn: str, fcm: FcmStandIn, tmp_path: Path, **push: Any) -> Settings:
    account = fcm.service_account(tmp_path / "service-account.json")
    return dataclasses.replace(
        settings_for(dsn),
        fcm=FcmSettings(project_id=fcm.project_id, credentials=str(account), endpoint=fcm.base_url),
        push=PushSettings(
            **{"cooldown": 0.0, "max_attempts": 3, "max_backoff": 2.0, "poll_interval": 0.2, **push}
        ),
        outbox=OutboxSettings(poll_interval=0.5),
    )


async def register(bridge: Harness, user: str, token: str, platform: str = "android") -> None:
    status, body = await bridge.request(
        "POST", "/api/fcm-tokens", user, json={"token": token, "platform": platform}
    )
    assert status == 200, body


async def send(bridge: Harness, user: str, conversation: str, text: str, **extra: Any) -> str:
    """Sends over REST as the seed's app does; returns the message id."""
    status, body = await bridge.request(
        "POST",
        "/api/messages/send",
        user,
        json={"conversation_id": conversation, "message": text, **extra},
    )
    assert status == 201, body
    return str(body["message"]["id"])
