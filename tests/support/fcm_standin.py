"""A local FCM HTTP v1 endpoint and OAuth token endpoint, for the real
firebase-admin SDK. It runs in its own thread and event loop, like a remote
service, and answers the way FCM does:

- POST /token: Google's OAuth 2.0 JWT-bearer grant. The assertion must be an
  RS256 JWT signed by the generated service account's key, for this token
  URI, unexpired; the answer is a bearer access token.
- POST /v1/projects/<project>/messages:send: needs a bearer token it issued;
  refuses bad messages (no target, non-string data values, over 4 KB) with
  400 INVALID_ARGUMENT; otherwise answers by the registration token's
  prefix, with FCM's error bodies (google.rpc status + FcmError details):
    dead-...       404 NOT_FOUND / UNREGISTERED
    invalid-...    400 INVALID_ARGUMENT, naming message.token
    mismatch-...   403 PERMISSION_DENIED / SENDER_ID_MISMATCH
    busy<N>-...    429 RESOURCE_EXHAUSTED / QUOTA_EXCEEDED with Retry-After,
                   for the first N attempts of that token, then success
    flaky<N>-...   503 UNAVAILABLE for the first N attempts, then success
    down-...       503 UNAVAILABLE always
    anything else  200 {"name": "projects/<p>/messages/<id>"}
  `delay` slows every answer (a slow FCM); `retry_after` is the 429s'
  Retry-After in seconds; `arrived` counts requests fully received, before
  the delay (a send in progress).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
MAX_PAYLOAD = 4096
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def fcm_error(
    http: int,
    status: str,
    message: str,
    code: str | None,
    extra: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    details: list[dict[str, Any]] = []
    if code:
        details.append({"@type": FCM_ERROR, "errorCode": code})
    details.extend(extra or [])
    return {"error": {"code": http, "message": message, "status": status, "details": details}}


class FcmStandIn:
    def __init__(self, project_id: str = "chat-bridge-test") -> None:
        self.project_id = project_id
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com"
        self.delay = 0.0
        self.retry_after = 1.0
        self.arrived = 0
        self.sent: list[dict[str, Any]] = []  # accepted messages, in order
        self.attempts: Counter[str] = Counter()  # send attempts per registration token
        self.oauth_grants = 0
        self.refused: list[tuple[int, str]] = []
        self._access_tokens: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle (in a thread of its own) -------------------------------------

    def start(self) -> str:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/token", self._token)
            app.router.add_post("/v1/projects/{project}/messages:send", self._send)
            self._runner = web.AppRunner(app)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.base_url = f"http://127.0.0.1:{port}"
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="fcm-stand-in", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self.base_url

    def stop(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def service_account(self, path: Path) -> Path:
        """A service-account JSON whose token URI is this stand-in."""
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": self.project_id,
                    "private_key_id": "test-key-1",
                    "private_key": pem,
                    "client_email": self.client_email,
                    "client_id": "1234567890",
                    "token_uri": f"{self.base_url}/token",
                }
            )
        )
        return path

    def messages_to(self, token: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.sent if m.get("token") == token]

    # -- OAuth ------------------------------------------------------------------

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        try:
            claims = jwt.decode(
                str(form.get("assertion", "")),
                self.key.public_key(),
                algorithms=["RS256"],
                # google-auth always addresses Google's token endpoint.
                audience=[GOOGLE_TOKEN_AUDIENCE, f"{self.base_url}/token"],
            )
        except jwt.PyJWTError as exc:
            return web.json_response(
                {"error": "invalid_grant", "error_description": str(exc)}, status=400
            )
        if claims.get("iss") != self.client_email:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid issuer"}, status=400
            )
        access = f"ya29.stand-in-{next(self._ids)}"
        with self._lock:
            self._access_tokens.add(access)
            self.oauth_grants += 1
        return web.json_response(
            {"access_token": access, "expires_in": 3599, "token_type": "Bearer"}
        )

    # -- messages:send ----------------------------------------------------------

    async def _send(self, request: web.Request) -> web.Response:
        # The whole request is in before FCM is slow to answer: a sender that
        # dies meanwhile has still sent the push (as with FCM).
        raw = await request.read()
        with self._lock:
            self.arrived += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._access_tokens:
            return self._refuse(
                401,
                fcm_error(
                    401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", None
                ),
            )
        if request.match_info["project"] != self.project_id:
            return self._refuse(
                403, fcm_error(403, "PERMISSION_DENIED", "Permission denied on the project.", None)
            )
        try:
            body = json.loads(raw)
            message = body["message"]
        except (ValueError, KeyError, TypeError):
            return self._refuse(
                400, fcm_error(400, "INVALID_ARGUMENT", "Invalid JSON payload.", "INVALID_ARGUMENT")
            )
        invalid = self._validate(message, raw)
        if invalid:
            return self._refuse(
                400, fcm_error(400, "INVALID_ARGUMENT", invalid, "INVALID_ARGUMENT")
            )
        token = str(message["token"])
        with self._lock:
            self.attempts[token] += 1
            attempt = self.attempts[token]
        answer = self._scripted(token, attempt)
        if answer is not None:
            return answer
        name = f"projects/{self.project_id}/messages/{next(self._ids)}"
        with self._lock:
            self.sent.append(message)
        return web.json_response({"name": name})

    def _validate(self, message: Any, raw: bytes) -> str | None:
        if not isinstance(message, dict):
            return "Invalid value at 'message'"
        targets = [k for k in ("token", "topic", "condition") if k in message]
        if len(targets) != 1:
            return "Exactly one of token, topic or condition must be specified."
        for i, (key, value) in enumerate((message.get("data") or {}).items()):
            if not isinstance(value, str):
                return f"Invalid value at 'message.data[{i}].value' ({key}), expected a string"
        if len(raw) > MAX_PAYLOAD + 1024:  # the envelope around the 4 KB payload
            return "Message is too big"
        return None

    def _refuse(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        with self._lock:
            self.refused.append((status, body["error"]["status"]))
        return web.json_response(body, status=status, headers=headers)

    def _scripted(self, token: str, attempt: int) -> web.Response | None:
        if token.startswith("dead-"):
            return self._refuse(
                404, fcm_error(404, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")
            )
        if token.startswith("invalid-"):
            return self._refuse(
                400,
                fcm_error(
                    400,
                    "INVALID_ARGUMENT",
                    "The registration token is not a valid FCM registration token",
                    "INVALID_ARGUMENT",
                    [
                        {
                            "@type": BAD_REQUEST,
                            "fieldViolations": [
                                {
                                    "field": "message.token",
                                    "description": "Invalid registration token",
                                }
                            ],
                        }
                    ],
                ),
            )
        if token.startswith("mismatch-"):
            return self._refuse(
                403, fcm_error(403, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")
            )
        if token.startswith("down-"):
            return self._refuse(
                503, fcm_error(503, "UNAVAILABLE", "The service is unavailable.", "UNAVAILABLE")
            )
        busy = re.match(r"busy(\d+)-", token)
        if busy and attempt <= int(busy.group(1)):
            return self._refuse(
                429,
                fcm_error(
                    429,
                    "RESOURCE_EXHAUSTED",
                    "Quota exceeded for sending messages.",
                    "QUOTA_EXCEEDED",
                ),
                headers={"Retry-After": f"{self.retry_after:g}"},
            )
        flaky = re.match(r"flaky(\d+)-", token)
        if flaky and attempt <= int(flaky.group(1)):
            return self._refuse(
                503, fcm_error(503, "UNAVAILABLE", "The service is unavailable.", "UNAVAILABLE")
            )
        return None
