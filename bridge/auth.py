"""Supabase access tokens, verified locally: HS256 with the project's JWT
secret, ES256/RS256 through the project's JWKS (cached, refetched when an
unknown key id shows up, at most once a minute)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from bridge.errors import AuthError

log = logging.getLogger(__name__)

AUDIENCE = "authenticated"
ASYMMETRIC = ("ES256", "RS256")
JWKS_TTL = 600.0
JWKS_MIN_REFETCH = 60.0
LEEWAY = 5


@dataclass(frozen=True)
class Identity:
    user_id: str
    claims: dict[str, Any]
    expires_at: float | None


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def mint_token(secret: str, user_id: str, ttl: int = 3600, **extra: Any) -> str:
    """An HS256 access token shaped like Supabase Auth's, for development."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "role": "authenticated",
        "aud": AUDIENCE,
        "iss": "chat-bridge-dev",
        "iat": now,
        "exp": now + ttl,
        **extra,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class TokenVerifier:
    def __init__(
        self,
        hs256_secret: str,
        jwks_url: str | None = None,
        *,
        min_refetch: float = JWKS_MIN_REFETCH,
    ) -> None:
        self._secret = hs256_secret
        self._jwks_url = jwks_url
        self._min_refetch = min_refetch
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def verify(self, token: str | None) -> Identity:
        if not token or not isinstance(token, str):
            raise AuthError(
                "missing_token",
                "no access token: connect with auth: { token } or an Authorization: Bearer header",
            )
        if not token.isascii():  # a JWT is base64url and dots; "\ud800" cannot even be encoded
            raise AuthError("malformed_token", "the access token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed_token", "the access token is not a JWT") from None
        alg = header.get("alg")
        if alg == "HS256":
            if not self._secret:
                raise AuthError("invalid_signature", "HS256 tokens are not accepted here")
            key: Any = self._secret
        elif alg in ASYMMETRIC:
            key = await self._key_for(str(header.get("kid") or ""))
        else:
            raise AuthError("malformed_token", f"unsupported token algorithm {alg!r}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                leeway=LEEWAY,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired_token", "the access token has expired; refresh it") from None
        except jwt.InvalidSignatureError:
            raise AuthError("invalid_signature", "the access token's signature is wrong") from None
        except jwt.InvalidAudienceError:
            raise AuthError(
                "invalid_claims", "the access token is not for signed-in users"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(
                "invalid_claims", f"the access token has no {exc.claim} claim"
            ) from None
        except jwt.PyJWTError as exc:
            raise AuthError("malformed_token", f"the access token is invalid: {exc}") from None
        if claims.get("role") != "authenticated":
            raise AuthError("invalid_claims", "a signed-in user's access token is required")
        try:
            user_id = str(uuid.UUID(str(claims["sub"])))
        except ValueError:
            raise AuthError("invalid_claims", "the token's subject is not a user id") from None
        exp = claims.get("exp")
        return Identity(user_id, claims, float(exp) if exp is not None else None)

    async def _key_for(self, kid: str) -> Any:
        if not self._jwks_url:
            raise AuthError("invalid_signature", "asymmetric tokens need the project's JWKS")
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > JWKS_TTL
            unknown = kid not in self._keys
            if stale or (unknown and time.monotonic() - self._fetched_at >= self._min_refetch):
                await self._fetch_jwks()
        if kid not in self._keys:
            raise AuthError("invalid_signature", "the token was signed with an unknown key")
        return self._keys[kid]

    async def _fetch_jwks(self) -> None:
        assert self._jwks_url is not None
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self._jwks_url) as resp,
            ):
                resp.raise_for_status()
                document = await resp.json()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("JWKS fetch failed", extra={"error": repr(exc)})
            self._fetched_at = time.monotonic()
            return
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []):
            try:
                keys[str(jwk.get("kid", ""))] = jwt.PyJWK(jwk).key
            except jwt.PyJWTError:
                continue
        self._keys = keys
        self._fetched_at = time.monotonic()
