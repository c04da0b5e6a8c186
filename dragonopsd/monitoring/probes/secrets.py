"""``${secret:NAME}`` references in a monitor, replaced by the secrets' values at probe time.

The stored monitor only ever holds the reference; the value exists in memory for one request.
"""

from __future__ import annotations

import urllib.parse

from ...model.monitor import SECRET_REF
from .result import SecretLookup


class SecretUnavailable(Exception):
    """A referenced secret could not be read; the message names it, never a value."""


async def expand(text: str, lookup: SecretLookup | None, *, quote: bool = False) -> str:
    """text with every reference replaced by its secret's value (percent-encoded if quote,
    for a URL's password)."""
    names = SECRET_REF.findall(text)
    if not names:
        return text
    if lookup is None:
        raise SecretUnavailable(
            "secret references are resolved by dragonopsd serve only, not by probe workers"
        )
    values: dict[str, str] = {}
    for name in dict.fromkeys(names):
        try:
            value = await lookup(name)
        except Exception as exc:  # no key configured (503), unreadable row: say which secret
            raise SecretUnavailable(
                f"secret {name!r} cannot be read ({type(exc).__name__})"
            ) from None
        if value is None:
            raise SecretUnavailable(f"secret {name!r} does not exist")
        values[name] = urllib.parse.quote(value, safe="") if quote else value
    return SECRET_REF.sub(lambda m: values[m[1]], text)
