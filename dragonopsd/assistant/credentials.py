"""The model's API key from the secrets store, by name, read for each call (rotation-safe)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .llm import LlmFailure

if TYPE_CHECKING:
    from ..vault import VaultService

DEFAULT_ENV = "default"
PAGE = 500


async def secret_value(vault: VaultService, name: str) -> str:
    """The value of the secret ``key`` (env "default") or ``env/key``; LlmFailure if absent.

    The value goes straight into the request's Authorization header: never logged, never in
    an exception message.
    """
    env, _, key = name.rpartition("/")
    env = env or DEFAULT_ENV
    cursor: str | None = None
    while True:
        # q is a substring match; the exact key is picked from the page.
        items, cursor = await vault.list(env, key, PAGE, cursor)
        for meta in items:
            if meta.key == key:
                _, value = await vault.reveal(meta.id)
                return value
        if cursor is None:
            raise LlmFailure("no-key", f"the secret {name!r} does not exist")
