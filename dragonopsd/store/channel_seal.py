"""Sealing a notification channel's credentials with the secrets key ring.

A channel's ``config`` keeps its settings in clear, but the credentials (``CREDENTIALS``: the
webhook URL, for chat presets the credential itself; Apprise's URLs; the signing secret; the
SMTP password)
go into one sealed JSON object beside it, AES-256-GCM under the ring's primary key, associated
data binding the channel id and key id. In clear, the URL is kept as ``masked_url`` shows it,
so lists work without opening anything. Without a key ring rows stay in clear and are sealed
at the next start that has one.
"""

from __future__ import annotations

from typing import Any, Protocol

import msgspec

from ..model.inventory import masked_service_url, masked_url
from ..secrets.crypto import KeyRing

CREDENTIALS = ("url", "urls", "secret", "password")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(dict[str, Any]).decode


class KeySource(Protocol):
    """Where the store gets the key ring (the secrets service, or the keys CLI's ring)."""

    async def keyring(self, needed: str | None = None) -> KeyRing | None:
        """The current ring (re-read if it lacks needed), None when no key is configured."""
        ...


class FixedKeys:
    """A KeySource over one ring: for the keys CLI, which holds the ring itself."""

    def __init__(self, ring: KeyRing | None) -> None:
        self._ring = ring

    async def keyring(self, needed: str | None = None) -> KeyRing | None:
        """The ring given."""
        return self._ring


def channel_aad(ident: str, key_id: str) -> bytes:
    """Associated data of a channel's sealed credentials: a JSON array, unambiguous."""
    return _encode(["dragonopsd.channel/1", ident, key_id])


def has_credentials(config: dict[str, Any]) -> bool:
    """True when config holds something to seal."""
    return any(config.get(name) for name in CREDENTIALS)


def seal(ring: KeyRing, ident: str, config: dict[str, Any]) -> tuple[dict[str, Any], str, bytes]:
    """(config to store in clear, key id, sealed credentials) under the ring's primary."""
    secret = {k: v for k, v in config.items() if k in CREDENTIALS and v is not None}
    clear = {k: v for k, v in config.items() if k not in secret}
    if isinstance(secret.get("url"), str):
        clear["url"] = masked_url(secret["url"])
    if isinstance(secret.get("urls"), list):  # Apprise URLs: each carries its service's token
        clear["urls"] = [masked_service_url(str(u)) for u in secret["urls"]]
    kid, blob = ring.seal(_encode(secret), channel_aad(ident, ring.primary), ring.primary)
    return clear, kid, blob


def unseal(ring: KeyRing, ident: str, clear: dict[str, Any], key_id: str, blob: bytes) -> Any:
    """The whole config again (SealError when the blob does not open)."""
    return {**clear, **_decode(ring.open(key_id, blob, channel_aad(ident, key_id)))}
