"""The model's API key from the secrets store, by name, read for each call (rotation-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .failure import LlmFailure

if TYPE_CHECKING:
    from ..secrets.vault import VaultService


async def secret_value(vault: VaultService, name: str) -> str:
    """The value of the secret ``key`` (env "default") or ``env/key``; LlmFailure if absent.

    The value goes straight into the request's Authorization header: never logged, never in
    an exception message.
    """
    value = await vault.value_by_name(name)
    if value is None:
        raise LlmFailure("no-key", f"the secret {name!r} does not exist")
    return value
