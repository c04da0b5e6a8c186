"""``${secret:NAME}`` in a channel's credentials: a channel from the config file names secrets
in the secrets store instead of holding their values.

The stored channel keeps the references; each delivery reads the values (as a monitor's probe
does), so a secret rotated through the API applies at the next notification and a file that
is loaded before its secrets exist still loads. Until then, a delivery fails naming the secret.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

SecretLookup = Callable[[str], Awaitable[str | None]]

# The credential fields of a channel's config (store/channel_seal.py seals the same ones).
CREDENTIALS = ("url", "urls", "secret", "password")
# A credential is one whole reference: NAME is a key (env "default") or "env/key".
REF = re.compile(
    r"^\$\{secret:(([A-Za-z0-9][A-Za-z0-9_.-]{0,63}/)?[A-Za-z_][A-Za-z0-9_.-]{0,127})\}$"
)
# Values in each credential's shape, put in place of the references so that everything else
# of the channel is validated as an API body would be when the file is loaded.
_STAND_IN = {
    "url": "https://secret.invalid/",
    "urls": "json://secret.invalid/",
    "secret": "stand-in-for-a-signing-secret",
    "password": "stand-in",
}


class SecretMissing(Exception):
    """A referenced secret cannot be read; the message names it, never a value."""


def credentials(config: dict[str, Any]) -> list[tuple[str, Any]]:
    """(path, value) of every credential in config: ``url``, ``urls[1]``, ``password``."""
    found: list[tuple[str, Any]] = []
    for key in CREDENTIALS:
        value = config.get(key)
        if isinstance(value, list):
            found += [(f"{key}[{i}]", v) for i, v in enumerate(value)]
        elif value is not None:
            found.append((key, value))
    return found


def ref_name(value: Any) -> str | None:
    """The secret a credential names, or None when it is not a reference."""
    match = REF.match(value) if isinstance(value, str) else None
    return match[1] if match else None


def has_refs(config: dict[str, Any]) -> bool:
    """True when any credential of config is a reference."""
    return any(ref_name(v) is not None for _, v in credentials(config))


def _mapped(config: dict[str, Any], change: Callable[[str, str], str]) -> dict[str, Any]:
    out = dict(config)
    for key in CREDENTIALS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [change(key, v) if ref_name(v) else v for v in value]
        elif isinstance(value, str) and ref_name(value):
            out[key] = change(key, value)
    return out


def stand_ins(config: dict[str, Any]) -> dict[str, Any]:
    """config with each reference replaced by a value of its field's shape."""
    return _mapped(config, lambda key, _: _STAND_IN[key])


async def resolve(config: dict[str, Any], lookup: SecretLookup | None) -> dict[str, Any]:
    """config with each reference replaced by its secret's value (SecretMissing naming it)."""
    values: dict[str, str] = {}
    for _, value in credentials(config):
        name = ref_name(value)
        if name is None or name in values:
            continue
        if lookup is None:
            raise SecretMissing(f"secret {name!r}: no secrets store here")
        try:
            found = await lookup(name)
        except Exception as exc:  # no key configured (503), an unreadable row: say which
            raise SecretMissing(f"secret {name!r} cannot be read ({type(exc).__name__})") from None
        if found is None:
            raise SecretMissing(f"secret {name!r} does not exist")
        values[name] = found
    return _mapped(config, lambda _, ref: values[ref_name(ref) or ""])
