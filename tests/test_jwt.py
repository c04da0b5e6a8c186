"""JWT verification against a real JWKS served on loopback, tokens minted with PyJWT."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt as pyjwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from dragonopsd.auth import jwt as jwtmod
from dragonopsd.auth.jwt import JwtError, JwtIdentity, JwtVerifier
from dragonopsd.config import from_mapping

SECRET = "super-secret-jwt-key-with-at-least-32-bytes"
ES_KEY = ec.generate_private_key(ec.SECP256R1())
ES_KEY_2 = ec.generate_private_key(ec.SECP256R1())
RS_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk(private: Any, kid: str) -> dict[str, Any]:
    """The public JWK of a private key, as a JWKS server would publish it."""
    algo = ECAlgorithm if isinstance(private, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    data: dict[str, Any] = algo.to_jwk(private.public_key(), as_dict=True)
    return data | {"kid": kid, "use": "sig"}


def claims(**extra: Any) -> dict[str, Any]:
    """Supabase-like claims, valid for an hour; extra=None drops a claim."""
    base = {"sub": "user-1", "email": "a@example.com", "aud": "authenticated"}
    base["exp"] = int(time.time()) + 3600
    return {k: v for k, v in (base | extra).items() if v is not None}


def mint(key: Any, alg: str, kid: str | None = None, **extra: Any) -> str:
    """A token signed with key."""
    headers = {"kid": kid} if kid else None
    return pyjwt.encode(claims(**extra), key, algorithm=alg, headers=headers)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], key: bytes | None) -> str:
    """A token PyJWT refuses to mint: unsigned, or HMAC'd with an arbitrary key."""
    signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    sig = b"" if key is None else hmac.new(key, signing.encode(), hashlib.sha256).digest()
    return f"{signing}.{b64(sig)}"


@dataclass
class Jwks:
    """What the loopback JWKS server serves, and how often it was asked."""

    url: str = ""
    keys: list[Any] = field(default_factory=list)
    requests: int = 0
    status: int = 200
    body: bytes | None = None
    delay: float = 0.0


@pytest.fixture
async def jwks(aiohttp_server: Any) -> Jwks:
    state = Jwks(keys=[jwk(ES_KEY, "es1"), jwk(RS_KEY, "rs1")])

    async def handler(request: web.Request) -> web.Response:
        state.requests += 1
        if state.delay:
            await asyncio.sleep(state.delay)
        if state.body is not None:
            return web.Response(body=state.body, content_type="application/json")
        return web.json_response({"keys": state.keys}, status=state.status)

    app = web.Application()
    app.router.add_get("/jwks.json", handler)
    server = await aiohttp_server(app)
    state.url = str(server.make_url("/jwks.json"))
    return state


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


Make = Callable[..., JwtVerifier]


@pytest.fixture
async def make(jwks: Jwks, clock: Clock) -> AsyncIterator[Make]:
    """Verifier factory over [auth] keys; every verifier made is closed afterwards."""
    made: list[JwtVerifier] = []

    def build(**auth: Any) -> JwtVerifier:
        auth = {k: (jwks.url if v is JWKS else v) for k, v in auth.items()}
        verifier = JwtVerifier(from_mapping({"auth": auth}, env={}).auth, clock=clock)
        made.append(verifier)
        return verifier

    yield build
    for verifier in made:
        await verifier.close()


JWKS = object()  # placeholder for the loopback JWKS URL in make(jwks_url=JWKS)


async def refused(verifier: JwtVerifier, token: str, reason: str) -> None:
    with pytest.raises(JwtError) as info:
        await verifier.verify(token)
    assert info.value.reason == reason
    assert str(info.value) == reason


# --- accepted -------------------------------------------------------------------------------


async def test_hs256_secret_accepts_a_supabase_token(make: Make) -> None:
    verifier = make(jwt_secret=SECRET)
    assert verifier.enabled
    token = mint(SECRET, "HS256")
    identity = await verifier.verify(token)
    assert identity == JwtIdentity("user-1", "a@example.com", float(claims()["exp"]))
    assert await verifier.verify(token) == identity  # second time from the cache


@pytest.mark.parametrize(
    ("key", "alg", "kid"), [(ES_KEY, "ES256", "es1"), (RS_KEY, "RS256", "rs1")]
)
async def test_jwks_accepts_es256_and_rs256(
    make: Make, jwks: Jwks, key: Any, alg: str, kid: str
) -> None:
    verifier = make(jwks_url=JWKS)
    identity = await verifier.verify(mint(key, alg, kid, email=None))
    assert (identity.sub, identity.email) == ("user-1", None)
    assert jwks.requests == 1


async def test_disabled_without_secret_or_jwks(make: Make) -> None:
    assert not make().enabled


async def test_issuer_checked_only_when_configured(make: Make) -> None:
    verifier = make(jwt_secret=SECRET, issuer="https://x.supabase.co/auth/v1")
    await verifier.verify(mint(SECRET, "HS256", iss="https://x.supabase.co/auth/v1"))
    await refused(
        verifier, mint(SECRET, "HS256", iss="https://evil.example/auth/v1"), "wrong issuer"
    )
    await refused(verifier, mint(SECRET, "HS256"), "missing iss")


# --- refused claims -------------------------------------------------------------------------


async def test_wrong_audience(make: Make) -> None:
    verifier = make(jwt_secret=SECRET)
    await refused(verifier, mint(SECRET, "HS256", aud="anon"), "wrong audience")
    await refused(verifier, mint(SECRET, "HS256", aud=None), "missing aud")


async def test_expired_beyond_leeway_refused_within_leeway_accepted(make: Make) -> None:
    verifier = make(jwt_secret=SECRET, leeway=30)
    now = int(time.time())
    await refused(verifier, mint(SECRET, "HS256", exp=now - 120), "expired")
    identity = await verifier.verify(mint(SECRET, "HS256", exp=now - 10))
    assert identity.exp == now - 10


async def test_missing_exp(make: Make) -> None:
    verifier = make(jwt_secret=SECRET)
    await refused(verifier, mint(SECRET, "HS256", exp=None), "missing exp")
    far = str(int(time.time()) + 3600)  # PyJWT would take a string; we do not
    await refused(verifier, mint(SECRET, "HS256", exp=far), "malformed exp")


@pytest.mark.parametrize(("sub", "reason"), [(None, "missing sub"), ("", "missing sub")])
async def test_missing_or_empty_sub(make: Make, sub: str | None, reason: str) -> None:
    await refused(make(jwt_secret=SECRET), mint(SECRET, "HS256", sub=sub), reason)


async def test_non_string_sub(make: Make) -> None:
    await refused(make(jwt_secret=SECRET), mint(SECRET, "HS256", sub=42), "invalid token")


# --- refused signatures and algorithms ------------------------------------------------------


async def test_alg_none_is_refused_everywhere(make: Make) -> None:
    token = handmade({"alg": "none", "typ": "JWT", "kid": "es1"}, claims(), None)
    await refused(make(jwt_secret=SECRET), token, "algorithm not allowed")
    await refused(make(jwks_url=JWKS), token, "algorithm not allowed")
    await refused(make(jwt_secret=SECRET, jwks_url=JWKS), token, "algorithm not allowed")


async def test_tampered_signature(make: Make) -> None:
    verifier = make(jwks_url=JWKS)
    head, body, sig = mint(ES_KEY, "ES256", "es1").split(".")
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    await refused(verifier, f"{head}.{body}.{flipped}", "bad signature")


async def test_tampered_payload(make: Make) -> None:
    verifier = make(jwks_url=JWKS, jwt_secret=SECRET)
    for token in (mint(ES_KEY, "ES256", "es1"), mint(SECRET, "HS256")):
        head, _, sig = token.split(".")
        forged = b64(json.dumps(claims(sub="admin")).encode())
        await refused(verifier, f"{head}.{forged}.{sig}", "bad signature")


async def test_hs256_refused_when_only_jwks_is_configured(make: Make) -> None:
    await refused(make(jwks_url=JWKS), mint(SECRET, "HS256"), "algorithm not allowed")


async def test_hs256_signed_with_the_public_key_is_refused(make: Make) -> None:
    pem = ES_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = handmade({"alg": "HS256", "typ": "JWT", "kid": "es1"}, claims(), pem)
    await refused(make(jwks_url=JWKS), token, "algorithm not allowed")
    await refused(make(jwks_url=JWKS, jwt_secret=SECRET), token, "bad signature")


async def test_header_alg_must_match_the_key_type(make: Make) -> None:
    verifier = make(jwks_url=JWKS)
    # An RS256 token naming the EC key: no RS256 key has that kid.
    await refused(verifier, mint(RS_KEY, "RS256", "es1"), "unknown key")
    # A configured-out algorithm is refused before any key lookup.
    es384 = ec.generate_private_key(ec.SECP384R1())
    await refused(verifier, mint(es384, "ES384", "es1"), "algorithm not allowed")


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c", "...", "é.é.é", os.urandom(48).hex(), os.urandom(40).decode("latin-1")],
)
async def test_garbage_strings(make: Make, jwks: Jwks, token: str) -> None:
    with pytest.raises(JwtError):
        await make(jwt_secret=SECRET, jwks_url=JWKS).verify(token)
    assert jwks.requests == 0


async def test_garbage_header_fields(make: Make) -> None:
    verifier = make(jwks_url=JWKS)
    await refused(verifier, handmade({"alg": ["ES256"]}, claims(), b"k"), "malformed token")
    await refused(verifier, handmade({"alg": "ES256", "kid": {}}, claims(), b"k"), "invalid token")
    await refused(verifier, "x" * 20_000, "malformed token")


# --- JWKS fetching --------------------------------------------------------------------------


async def test_unknown_kid_refetches_once_then_not_again_within_30s(
    make: Make, jwks: Jwks, clock: Clock
) -> None:
    verifier = make(jwks_url=JWKS)
    await verifier.verify(mint(ES_KEY, "ES256", "es1"))
    assert jwks.requests == 1
    clock.now += 31
    await refused(verifier, mint(ES_KEY, "ES256", "nope"), "unknown key")
    assert jwks.requests == 2
    clock.now += 10
    await refused(verifier, mint(ES_KEY, "ES256", "other"), "unknown key")
    assert jwks.requests == 2


async def test_concurrent_unknown_kids_share_one_fetch(make: Make, jwks: Jwks) -> None:
    verifier = make(jwks_url=JWKS)
    jwks.delay = 0.05
    tokens = [mint(ES_KEY, "ES256", f"k{i}") for i in range(10)] + [mint(ES_KEY, "ES256", "es1")]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert jwks.requests == 1
    assert all(isinstance(r, JwtError) and r.reason == "unknown key" for r in results[:-1])
    assert isinstance(results[-1], JwtIdentity)


async def test_key_rotation_is_picked_up(make: Make, jwks: Jwks, clock: Clock) -> None:
    verifier = make(jwks_url=JWKS)
    await verifier.verify(mint(ES_KEY, "ES256", "es1"))
    jwks.keys = [jwk(ES_KEY_2, "es2")]
    clock.now += 31
    identity = await verifier.verify(mint(ES_KEY_2, "ES256", "es2", sub="user-2"))
    assert identity.sub == "user-2"
    assert jwks.requests == 2
    await refused(verifier, mint(ES_KEY, "ES256", "es1", sub="new"), "unknown key")  # retired


async def test_jwks_down_then_recovers(make: Make, jwks: Jwks, clock: Clock) -> None:
    verifier = make(jwks_url=JWKS)
    token = mint(ES_KEY, "ES256", "es1")
    jwks.status = 503
    await refused(verifier, token, "jwks unavailable")
    await refused(verifier, token, "jwks unavailable")  # too soon to ask again
    assert jwks.requests == 1
    jwks.status = 200
    clock.now += jwtmod.RETRY_INTERVAL + 1
    assert (await verifier.verify(token)).sub == "user-1"
    assert jwks.requests == 2


async def test_jwks_connection_refused(make: Make, clock: Clock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    verifier = make(jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    await refused(verifier, mint(ES_KEY, "ES256", "es1"), "jwks unavailable")


async def test_jwks_timeout(make: Make, jwks: Jwks, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwtmod, "JWKS_TIMEOUT", 0.1)
    jwks.delay = 1.0
    await refused(make(jwks_url=JWKS), mint(ES_KEY, "ES256", "es1"), "jwks unavailable")


@pytest.mark.parametrize(
    "body", [b"x" * (jwtmod.JWKS_MAX_BYTES + 1), b"not json", b'{"keys": 7}', b"[]"]
)
async def test_jwks_oversized_or_malformed(make: Make, jwks: Jwks, body: bytes) -> None:
    jwks.body = body
    await refused(make(jwks_url=JWKS), mint(ES_KEY, "ES256", "es1"), "jwks unavailable")


async def test_unusable_keys_are_skipped_with_a_warning(
    make: Make, jwks: Jwks, caplog: pytest.LogCaptureFixture
) -> None:
    jwks.keys = [
        "not a key",
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA", "kid": "broken"},
        {"kty": "oct", "k": b64(b"symmetric keys are not published"), "kid": "oct"},
        {"kty": "EC", "crv": "P-256", "kid": 5},
        jwk(ES_KEY, "es1") | {"use": "enc", "kid": "enc"},
        jwk(ES_KEY, "es1"),
    ]
    with caplog.at_level(logging.WARNING, "dragonopsd.auth"):
        assert (await make(jwks_url=JWKS).verify(mint(ES_KEY, "ES256", "es1"))).sub == "user-1"
    assert "kid=broken" in caplog.text
    assert "kid=oct" in caplog.text
    assert "malformed" in caplog.text


async def test_close_stops_fetching(make: Make, jwks: Jwks) -> None:
    verifier = make(jwks_url=JWKS)
    await verifier.verify(mint(ES_KEY, "ES256", "es1"))
    await verifier.close()
    await refused(verifier, mint(ES_KEY, "ES256", "zz"), "jwks unavailable")
    assert jwks.requests == 1
    await verifier.close()  # twice is fine


# --- cache and hygiene ----------------------------------------------------------------------


async def test_cache_is_bounded(make: Make) -> None:
    verifier = make(jwt_secret=SECRET)
    for i in range(jwtmod.CACHE_SIZE + 10):
        await verifier.verify(mint(SECRET, "HS256", sub=f"u{i}"))
    assert len(verifier._cache) == jwtmod.CACHE_SIZE


async def test_cache_never_outlives_exp(make: Make) -> None:
    verifier = make(jwt_secret=SECRET, leeway=0)
    token = mint(SECRET, "HS256", exp=int(time.time()) + 1)
    await verifier.verify(token)
    verifier._cache[token] = (time.time() - 1, verifier._cache[token][1])  # as if exp passed
    verifier._cache.move_to_end(token)
    identity = await verifier.verify(token)  # falls through to full verification
    assert identity.sub == "user-1"
    assert verifier._cache[token][0] <= identity.exp  # type: ignore[operator]


async def test_tokens_and_secret_never_reach_reasons_or_logs(
    make: Make, jwks: Jwks, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = make(jwt_secret=SECRET, jwks_url=JWKS)
    now = int(time.time())
    tokens = [
        mint(SECRET, "HS256", exp=now - 999),
        mint("wrong-secret-that-is-also-32-bytes-long", "HS256"),
        mint(ES_KEY, "ES256", "ghost"),
        handmade({"alg": "HS256"}, claims(), b"x"),
        "eyJhbGciOiJIUzI1NiJ9.%%%.sig",
    ]
    jwks.status = 500
    with caplog.at_level(logging.DEBUG):
        for token in tokens:
            with pytest.raises(JwtError) as info:
                await verifier.verify(token)
            for part in [token, *token.split(".")[:2], SECRET]:
                assert part not in str(info.value)
                assert part not in caplog.text
