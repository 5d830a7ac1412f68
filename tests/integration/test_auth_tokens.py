"""Token verification: HS256 with the project secret, and ES256 / RS256
through a JWKS served over real HTTP (as Supabase serves
/auth/v1/.well-known/jwks.json), cached and refetched on key rotation."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bridge.auth import TokenVerifier, mint_token
from bridge.errors import AuthError

SECRET = "x" * 64
USER = "22222222-2222-4222-8222-222222222222"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "sub": USER,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 600,
        **overrides,
    }


class Jwks:
    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.fetches = 0

    def add(self, kid: str, private: Any, alg: str) -> None:
        public = private.public_key()
        algorithm = jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.RSAAlgorithm
        jwk = json.loads(algorithm.to_jwk(public))
        self.keys[kid] = {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    async def handle(self, _request: web.Request) -> web.Response:
        self.fetches += 1
        return web.json_response({"keys": list(self.keys.values())})


@pytest.fixture
async def jwks() -> AsyncIterator[tuple[Jwks, str]]:
    store = Jwks()
    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", store.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield store, f"http://127.0.0.1:{port}/auth/v1/.well-known/jwks.json"
    finally:
        await runner.cleanup()


async def test_hs256_token_of_the_project_is_accepted() -> None:
    """A token minted with the project's secret names its user."""
    identity = await TokenVerifier(SECRET).verify(mint_token(SECRET, USER))
    assert identity.user_id == USER and identity.expires_at is not None


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "missing_token"),
        ("a.b", "malformed_token"),
        (jwt.encode(claims(exp=int(time.time()) - 60), SECRET, "HS256"), "expired_token"),
        (jwt.encode(claims(), "y" * 64, "HS256"), "invalid_signature"),
        (jwt.encode(claims(aud="other"), SECRET, "HS256"), "invalid_claims"),
        (jwt.encode(claims(role="service_role"), SECRET, "HS256"), "invalid_claims"),
        (jwt.encode(claims(sub="not-a-uuid"), SECRET, "HS256"), "invalid_claims"),
        (
            jwt.encode({k: v for k, v in claims().items() if k != "exp"}, SECRET, "HS256"),
            "invalid_claims",
        ),
        (jwt.encode(claims(), SECRET, "HS512"), "malformed_token"),
        ("eyJhbGciOiJIUzI1NiJ9.\ud800.x", "malformed_token"),
        ("\udcff\udcfe", "malformed_token"),
    ],
    ids=[
        "missing",
        "malformed",
        "expired",
        "wrong-secret",
        "wrong-audience",
        "service-role",
        "bad-subject",
        "no-expiry",
        "other-algorithm",
        "lone-surrogate",
        "undecodable-header-bytes",
    ],
)
async def test_bad_hs256_tokens_say_why(token: str | None, code: str) -> None:
    """Each way a token can be wrong has its own code."""
    with pytest.raises(AuthError) as info:
        await TokenVerifier(SECRET).verify(token)
    assert info.value.code == code


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
async def test_asymmetric_tokens_verify_through_the_jwks(jwks: tuple[Jwks, str], alg: str) -> None:
    """Signing keys come from the JWKS endpoint and are cached."""
    store, url = jwks
    private = (
        ec.generate_private_key(ec.SECP256R1())
        if alg == "ES256"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    store.add("k1", private, alg)
    verifier = TokenVerifier(SECRET, url)
    for _ in range(3):
        token = jwt.encode(claims(), private, alg, headers={"kid": "k1"})
        assert (await verifier.verify(token)).user_id == USER
    assert store.fetches == 1


async def test_unknown_key_is_refused_and_rotation_is_picked_up(jwks: tuple[Jwks, str]) -> None:
    """A token from a key the JWKS does not list is refused; once the
    project publishes the new key it verifies (no pause between refetches
    here; the daemon waits a minute between them)."""
    store, url = jwks
    old, new = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    store.add("old", old, "ES256")
    verifier = TokenVerifier(SECRET, url, min_refetch=0)
    await verifier.verify(jwt.encode(claims(), old, "ES256", headers={"kid": "old"}))
    rotated = jwt.encode(claims(), new, "ES256", headers={"kid": "new"})
    with pytest.raises(AuthError, match="unknown key"):
        await verifier.verify(rotated)
    store.add("new", new, "ES256")
    assert (await verifier.verify(rotated)).user_id == USER
    forged = jwt.encode(
        claims(), ec.generate_private_key(ec.SECP256R1()), "ES256", headers={"kid": "new"}
    )
    with pytest.raises(AuthError) as info:
        await verifier.verify(forged)
    assert info.value.code == "invalid_signature"
