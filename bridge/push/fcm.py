"""Sending through the real firebase-admin SDK (FCM HTTP v1), and sorting
each device's answer by what it means for the token and for a retry.

`FCM_ENDPOINT` replaces the v1 base URL (emulators, tests). firebase-admin
has no option for it, so the messaging service's URL is set after the app
is created; everything else (OAuth with the service account, encoding,
error parsing) is the SDK's own.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import uuid
import warnings
from dataclasses import dataclass
from typing import Any

import firebase_admin
from firebase_admin import credentials, exceptions, messaging
from google.auth import exceptions as google_auth_exceptions
from google.auth.transport import requests as google_auth_requests

from bridge.push.message import PushMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Device:
    token_id: str
    token: str = ""
    platform: str = ""

    def __repr__(self) -> str:  # the token itself never reaches a log line
        return f"Device({self.token_id}, {self.platform})"


@dataclass(frozen=True)
class Outcome:
    device: Device
    # sent: delivered to FCM; dead: the token is gone, switch it off;
    # transient: try again later; failed: this push will not reach it.
    status: str
    reason: str = ""
    retry_after: float | None = None


def _retry_after(error: exceptions.FirebaseError) -> float | None:
    response = getattr(error, "http_response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify(device: Device, error: exceptions.FirebaseError | None) -> Outcome:
    """What an FCM answer means for this device's token."""
    if error is None:
        return Outcome(device, "sent")
    if isinstance(error, messaging.UnregisteredError):
        return Outcome(device, "dead", "UNREGISTERED")
    if isinstance(error, messaging.SenderIdMismatchError):
        return Outcome(device, "dead", "SENDER_ID_MISMATCH")
    if isinstance(error, messaging.ThirdPartyAuthError):
        # APNs / web push credentials of the project are wrong: no retry helps.
        return Outcome(device, "failed", "THIRD_PARTY_AUTH_ERROR")
    if isinstance(error, exceptions.InvalidArgumentError):
        text = str(error).lower()
        if "token" in text:
            return Outcome(device, "dead", "INVALID_ARGUMENT")
        return Outcome(device, "failed", "INVALID_ARGUMENT")
    if isinstance(
        error,
        messaging.QuotaExceededError
        | exceptions.ResourceExhaustedError
        | exceptions.UnavailableError
        | exceptions.InternalError
        | exceptions.DeadlineExceededError
        | exceptions.UnknownError
        | exceptions.UnauthenticatedError,
    ):
        return Outcome(device, "transient", error.code, _retry_after(error))
    return Outcome(device, "failed", getattr(error, "code", type(error).__name__))


def collapse_id(conversation_id: str) -> str:
    """A short, stable id per conversation for replacing a push on the
    device: the conversation uuid's 16 bytes in URL-safe base64 (22 chars;
    APNs takes up to 64 bytes, web push's Topic 32 URL-safe base64 chars)."""
    try:
        raw = uuid.UUID(conversation_id).bytes
    except ValueError:
        raw = uuid.uuid5(uuid.NAMESPACE_URL, conversation_id).bytes
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def build(message: PushMessage, device: Device) -> messaging.Message:
    """One FCM message: grouped per conversation (Android tag, APNs
    thread-id, web tag), the badge as the user's total unread. A push sent
    again (after a crash mid-send) replaces the earlier one instead of
    stacking: the same Android tag, `apns-collapse-id` and web push `Topic`
    for every push about the conversation on the person's devices."""
    group = message.conversation_id
    with warnings.catch_warnings():
        # Clients register FCM registration tokens (the seed's fcm_tokens);
        # the SDK now prefers installation ids but the v1 API takes both.
        warnings.filterwarnings("ignore", "Message.token is deprecated", DeprecationWarning)
        return _message(message, device, group)


def _message(message: PushMessage, device: Device, group: str) -> messaging.Message:
    collapse = collapse_id(group)
    # Replacing a push about a message that was unsent: no sound on iOS, no
    # heads-up on Android (web push does not alert for a replaced tag).
    replacing = "unsent_message_id" in message.data
    return messaging.Message(
        token=device.token,
        notification=messaging.Notification(title=message.title, body=message.body),
        data=message.data,
        android=messaging.AndroidConfig(
            priority="normal" if replacing else "high",
            notification=messaging.AndroidNotification(
                tag=group, notification_count=message.badge, channel_id="chat"
            ),
        ),
        apns=messaging.APNSConfig(
            headers={"apns-collapse-id": collapse},
            payload=messaging.APNSPayload(
                aps=messaging.Aps(
                    badge=message.badge, thread_id=group, sound=None if replacing else "default"
                )
            ),
        ),
        webpush=messaging.WebpushConfig(
            headers={"Topic": collapse},
            notification=messaging.WebpushNotification(tag=group),
        ),
    )


class FcmSender:
    def __init__(self, credentials_path: str, project_id: str, endpoint: str) -> None:
        cred = credentials.Certificate(credentials_path)
        options: dict[str, Any] = {"httpTimeout": 10}
        if project_id:
            options["projectId"] = project_id
        self.app = firebase_admin.initialize_app(
            cred, options, name=f"chat-bridge-{uuid.uuid4().hex[:8]}"
        )
        self.project_id = project_id or self.app.project_id
        self._refreshing = asyncio.Lock()
        if endpoint:
            service = messaging._get_messaging_service(self.app)
            service._fcm_url = f"{endpoint.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        log.info("pushes on", extra={"project": self.project_id, "endpoint": endpoint or "FCM"})

    async def _fresh_access_token(self) -> None:
        """The SDK refreshes its OAuth token with a blocking HTTP call inside
        the request; doing it first in a thread keeps the event loop free."""
        credential = self.app.credential.get_credential()
        if credential.valid:
            return
        async with self._refreshing:  # one refresh for all the sends waiting on it
            if not credential.valid:
                await asyncio.to_thread(credential.refresh, google_auth_requests.Request())

    async def send(self, message: PushMessage, devices: list[Device]) -> list[Outcome]:
        if not devices:
            return []
        try:
            await self._fresh_access_token()
        except google_auth_exceptions.TransportError as exc:
            log.warning("FCM OAuth endpoint unreachable", extra={"error": type(exc).__name__})
            return [Outcome(d, "transient", "OAUTH_UNREACHABLE") for d in devices]
        except google_auth_exceptions.RefreshError as exc:
            log.error("FCM OAuth refused the service account", extra={"error": str(exc)[:200]})
            return [Outcome(d, "failed", "OAUTH_REFUSED") for d in devices]
        batch = await messaging.send_each_async(
            [build(message, d) for d in devices], dry_run=False, app=self.app
        )
        return [
            classify(device, response.exception)
            for device, response in zip(devices, batch.responses, strict=True)
        ]

    async def close(self) -> None:
        # The SDK's own close runs asyncio.run(), which cannot happen inside a
        # running loop: close its async HTTP client here, the rest in a thread.
        service = messaging._get_messaging_service(self.app)
        await service._async_client.aclose()
        await asyncio.to_thread(firebase_admin.delete_app, self.app)
