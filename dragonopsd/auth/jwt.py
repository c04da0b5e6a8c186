"""Supabase-compatible JWT verification: an HS256 secret and/or ES/RS keys from a JWKS URL.

Algorithms are pinned by config (RFC 8725 §2.1): a token's ``alg`` header only picks one of the
configured algorithms, never widens them, and an asymmetric key is only ever used with an
algorithm of its own key type. The JWKS is fetched with aiohttp (PyJWKClient blocks on urllib).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import msgspec
from jwt.types import Options

from ..config import AuthConfig

log = logging.getLogger("dragonopsd.auth")

JWKS_TIMEOUT = 5.0
JWKS_MAX_BYTES = 1024 * 1024
REFETCH_INTERVAL = 30.0  # unknown kids cannot make us fetch more often than this
RETRY_INTERVAL = 5.0  # after a failed fetch: recover soon, but never hammer a dead server
CACHE_SIZE = 1024
CACHE_TTL = 60.0  # bounds how long a cached token outlives a key removed from the JWKS
MAX_TOKEN_CHARS = 16 * 1024

# Key type (and EC curve) each configurable algorithm may be used with.
_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "EdDSA": ("OKP", None),
}

# Fixed texts: PyJWT's own messages can quote header bytes, and reasons end up in logs.
_REASONS: list[tuple[type[jwt.PyJWTError], str]] = [
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.ImmatureSignatureError, "not yet valid"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.DecodeError, "malformed token"),
]


class JwtIdentity(msgspec.Struct, frozen=True):
    """What a verified token says about its caller."""

    sub: str
    email: str | None
    exp: float | None


class JwtError(Exception):
    """A token was refused; ``reason`` is short log text and never contains the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Jwks(msgspec.Struct):
    keys: list[Any]


def _reason(exc: jwt.PyJWTError) -> str:
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"missing {exc.claim}"
    for cls, text in _REASONS:
        if isinstance(exc, cls):
            return text
    return "invalid token"


class JwtVerifier:
    """Verifies bearer JWTs against the [auth] config; owns its JWKS cache and HTTP session."""

    def __init__(self, cfg: AuthConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._cfg = cfg
        self._clock = clock  # monotonic; paces JWKS fetches (tests pass a fake one)
        self._algorithms: frozenset[str] = frozenset()
        self._options: Options = {"require": ["exp", "sub"]}
        self._keys: dict[tuple[str | None, str], jwt.PyJWK] = {}
        self._fetch_failed = False
        self._next_fetch = 0.0
        self._inflight: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._cache: OrderedDict[str, tuple[float, JwtIdentity]] = OrderedDict()
        self.configure(cfg)

    def configure(self, cfg: AuthConfig) -> None:
        """Take a (re)loaded [auth] section (SIGHUP). Tokens verified under the old settings are
        forgotten, and with another JWKS URL or algorithm list the keys are fetched anew."""
        jwks_changed = (cfg.jwks_url, cfg.jwks_algorithms) != (
            self._cfg.jwks_url,
            self._cfg.jwks_algorithms,
        )
        self._cfg = cfg
        self._algorithms = frozenset(cfg.jwks_algorithms) if cfg.jwks_url else frozenset()
        self._options = {"require": ["exp", "sub"], "verify_aud": bool(cfg.audience)}
        self._cache.clear()
        if jwks_changed:
            self._keys = {}
            self._fetch_failed = False
            self._next_fetch = 0.0

    @property
    def enabled(self) -> bool:
        """True when a JWT secret or a JWKS URL is configured."""
        return bool(self._cfg.jwt_secret or self._cfg.jwks_url)

    async def verify(self, token: str) -> JwtIdentity:
        """The identity in a valid token; raises JwtError for anything else."""
        hit = self._cache.get(token)
        if hit is not None:
            if time.time() < hit[0]:
                self._cache.move_to_end(token)
                return hit[1]
            del self._cache[token]
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise JwtError("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise JwtError(_reason(exc)) from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or not (kid is None or isinstance(kid, str)):
            raise JwtError("malformed token")
        key: str | jwt.PyJWK
        if alg == "HS256" and self._cfg.jwt_secret:
            key = self._cfg.jwt_secret
        elif alg in self._algorithms:
            key = await self._key(kid, alg)
        else:
            raise JwtError("algorithm not allowed")
        identity = self._decode(token, key, alg)
        self._remember(token, identity)
        return identity

    def _decode(self, token: str, key: str | jwt.PyJWK, alg: str) -> JwtIdentity:
        cfg = self._cfg
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],  # the one configured algorithm the header picked
                options=self._options,
                audience=cfg.audience or None,
                issuer=cfg.issuer or None,
                leeway=cfg.leeway,
            )
        except jwt.PyJWTError as exc:
            raise JwtError(_reason(exc)) from None
        sub, exp, email = claims.get("sub"), claims.get("exp"), claims.get("email")
        if not isinstance(sub, str) or not sub:
            raise JwtError("missing sub")
        # PyJWT accepts anything int() takes, e.g. the string "9999999999".
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            raise JwtError("malformed exp")
        return JwtIdentity(sub, email if isinstance(email, str) and email else None, float(exp))

    def _remember(self, token: str, identity: JwtIdentity) -> None:
        # Never past exp; no leeway here, a late token just goes the full way again.
        deadline = min(identity.exp or 0.0, time.time() + CACHE_TTL)
        self._cache[token] = (deadline, identity)
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    async def _key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        key = self._keys.get((kid, alg))
        if key is not None:
            return key
        if self._inflight is None and self._clock() >= self._next_fetch and not self._closed:
            self._inflight = asyncio.create_task(self._refresh())
        if self._inflight is not None:
            # Shielded: a caller that goes away must not cancel the fetch others wait on.
            await asyncio.shield(self._inflight)
        key = self._keys.get((kid, alg))
        if key is not None:
            return key
        raise JwtError("jwks unavailable" if self._fetch_failed or self._closed else "unknown key")

    async def _refresh(self) -> None:
        """Fetch the JWKS once; on failure keep the keys we had and retry after a pause."""
        self._next_fetch = self._clock() + REFETCH_INTERVAL
        cfg = self._cfg
        try:
            body = await self._fetch()
            keys = self._parse(msgspec.json.decode(body, type=_Jwks).keys)
            if (cfg.jwks_url, cfg.jwks_algorithms) != (
                self._cfg.jwks_url,
                self._cfg.jwks_algorithms,
            ):  # reconfigured meanwhile: these are the old URL's keys
                self._next_fetch = 0.0
                return
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # msgspec.DecodeError is a ValueError; the URL is config, not a secret.
            log.warning("JWKS fetch from %s failed: %s", self._cfg.jwks_url, exc)
            self._fetch_failed = True
            self._next_fetch = self._clock() + RETRY_INTERVAL
        else:
            self._keys = keys
            self._fetch_failed = False
            log.info("JWKS loaded from %s: %d usable key(s)", self._cfg.jwks_url, len(keys))
        finally:
            self._inflight = None

    async def _fetch(self) -> bytes:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=JWKS_TIMEOUT))
        headers = {"Accept": "application/json"}
        async with self._session.get(self._cfg.jwks_url, headers=headers) as resp:
            if resp.status != 200:
                raise ValueError(f"HTTP {resp.status}")
            if (resp.content_length or 0) > JWKS_MAX_BYTES:
                raise ValueError(f"response over {JWKS_MAX_BYTES} bytes")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > JWKS_MAX_BYTES:  # Content-Length may be absent or lie
                    raise ValueError(f"response over {JWKS_MAX_BYTES} bytes")
            return bytes(body)

    def _parse(self, entries: list[Any]) -> dict[tuple[str | None, str], jwt.PyJWK]:
        """One PyJWK per (kid, configured algorithm) a key fits; unusable keys are skipped."""
        keys: dict[tuple[str | None, str], jwt.PyJWK] = {}
        for entry in entries:
            kid = entry.get("kid") if isinstance(entry, dict) else None
            if not isinstance(entry, dict) or not (kid is None or isinstance(kid, str)):
                log.warning("JWKS: skipping a malformed key entry")
                continue
            if entry.get("use", "sig") != "sig":
                continue  # an encryption key is not ours to verify with
            fits = [alg for alg in sorted(self._algorithms) if _fits(entry, alg)]
            if not fits:
                log.warning(
                    "JWKS: skipping key kid=%s (kty=%s alg=%s): no configured algorithm fits",
                    kid,
                    entry.get("kty"),
                    entry.get("alg"),
                )
            for alg in fits:
                try:
                    keys.setdefault((kid, alg), jwt.PyJWK(entry, algorithm=alg))
                except (jwt.PyJWTError, ValueError, TypeError) as exc:
                    log.warning(
                        "JWKS: skipping key kid=%s for %s: %s", kid, alg, type(exc).__name__
                    )
        return keys

    async def close(self) -> None:
        """Stop any JWKS fetch in flight and close the HTTP session, if one was made."""
        self._closed = True
        task, self._inflight = self._inflight, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()
            self._session = None


def _fits(entry: dict[str, Any], alg: str) -> bool:
    """True when a JWK may verify alg: its kty (and EC curve) match, and its own alg if set."""
    kty, crv = _KEY_TYPES[alg]
    if entry.get("kty") != kty or entry.get("alg", alg) != alg:
        return False
    return crv is None or entry.get("crv") == crv
