"""What the Realtime stand-in checks before it lets anyone in, as a hosted
project does today (supabase/realtime realtime_channel.ex and
ChannelsAuthorization, with the API gateway in front):

- API keys: new `sb_secret_...` keys (the gateway swaps them for a
  service-role token), `sb_publishable_...` keys (anon), or legacy JWTs.
- Access tokens: HS256 with the legacy JWT secret, unless the project revoked
  it; ES256 with the project's asymmetric signing key (its JWKS). A join whose
  `access_token` starts with `sb_` runs on the socket's own token.
- Refusals read like the server's: "<Code>: <message>".

And the tenant's events-per-second limit: Realtime's RateCounter averages
5 s buckets over the last minute; while the average is over the limit the
replication poller and the broadcast handler drop changes, telling nobody.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

SIGNING_KID = "standin-es256"


class Refused(Exception):
    """A token or key the project does not accept; `reason` as on the wire."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProjectKeys:
    def __init__(self, legacy_secret: str) -> None:
        self.legacy_secret = legacy_secret
        self.legacy_revoked = False
        self.secret_keys: set[str] = set()
        self.publishable_keys: set[str] = set()
        self._signing_key = ec.generate_private_key(ec.SECP256R1())

    def sign(self, claims: dict[str, Any]) -> str:
        """An ES256 token from the project's current signing key (what
        Supabase Auth issues once a project moved to asymmetric keys)."""
        key = self._signing_key
        return jwt.encode(claims, key, algorithm="ES256", headers={"kid": SIGNING_KID})

    def service_token(self, ttl: int = 3600) -> str:
        now = int(time.time())
        return self.sign({"role": "service_role", "iss": "supabase", "iat": now, "exp": now + ttl})

    def jwks(self) -> dict[str, Any]:
        public = jwt.algorithms.ECAlgorithm.to_jwk(self._signing_key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": SIGNING_KID, "alg": "ES256", "use": "sig"}]}

    def api_key_token(self, apikey: str) -> str:
        """What the gateway forwards for a socket's `apikey`: a token."""
        if apikey.startswith("sb_secret_"):
            if apikey not in self.secret_keys:
                raise Refused("Invalid API key")
            return self.service_token()
        if apikey.startswith("sb_publishable_"):
            if apikey not in self.publishable_keys:
                raise Refused("Invalid API key")
            now = int(time.time())
            return self.sign({"role": "anon", "iat": now, "exp": now + 3600})
        self.claims(apikey)  # a legacy key is a JWT: refused if it does not verify
        return apikey

    def claims(self, token: str, *, verify_exp: bool = True) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Refused("MalformedJWT: The token provided is not a valid JWT") from None
        options = {"verify_aud": False, "verify_exp": verify_exp}
        try:
            if header.get("alg") == "HS256":
                if self.legacy_revoked:
                    raise Refused("JwtSignatureError: Failed to validate JWT signature")
                claims: dict[str, Any] = jwt.decode(
                    token, self.legacy_secret, algorithms=["HS256"], options=options
                )
            elif header.get("alg") == "ES256" and header.get("kid") == SIGNING_KID:
                claims = jwt.decode(
                    token, self._signing_key.public_key(), algorithms=["ES256"], options=options
                )
            else:
                raise Refused(
                    f"JwtSignerError: Failed to generate JWT signer for key ID (kid)"
                    f" {header.get('kid')!r}, check your JWT secret or JWKS configuration"
                )
        except jwt.ExpiredSignatureError:
            raise Refused("InvalidJWTToken: Token has expired 0 seconds ago") from None
        except jwt.PyJWTError:
            raise Refused("JwtSignatureError: Failed to validate JWT signature") from None
        if "role" not in claims or "exp" not in claims:
            raise Refused("InvalidJWTToken: Fields `role` and `exp` are required in JWT")
        return claims


class EventsPerSecond:
    """The tenant's events-per-second RateCounter: events counted in `tick`
    buckets, averaged per second over the last 12; triggered while the
    average is over `limit`."""

    def __init__(self, limit: int = 100, tick: float = 5.0, buckets: int = 12) -> None:
        self.limit = limit
        self.tick = tick
        self._buckets: deque[int] = deque(maxlen=buckets)
        self._current = 0
        self._bucket_started = time.monotonic()
        self.triggered = False
        self.dropped = 0

    def _roll(self) -> None:
        now = time.monotonic()
        while now - self._bucket_started >= self.tick:
            self._buckets.append(self._current)
            self._current = 0
            self._bucket_started += self.tick
            average = sum(self._buckets) / (len(self._buckets) * self.tick)
            self.triggered = average > self.limit

    def open(self) -> bool:
        """Whether events get through now (the limit is not triggered)."""
        self._roll()
        return not self.triggered

    def admit(self, events: int = 1) -> bool:
        """Counts `events` unless the limit is triggered; False: drop them."""
        self._roll()
        if self.triggered:
            self.dropped += events
            return False
        self._current += events
        return True

    def reset(self) -> None:
        self._buckets.clear()
        self._current = 0
        self.triggered = False
