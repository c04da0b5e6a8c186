"""API token checks from memory: the usable tokens are loaded once and reloaded on change.

Another process (``dragonopsd token revoke``) may change the table, so a cheap revision
counter in ``meta`` is polled once a second; API writes reload at once. A token that is not
in memory is looked for in the store before it is refused (``fresh``), so one that
``dragonopsd token create`` just minted works on its first request.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from ..model.principal import Principal, Scope, TokenRole
from ..store.protocols import TokenRepo
from ..store.tokens import AccessScope, Token, hash_token

log = logging.getLogger("dragonopsd.auth")
# Least time between two store checks asked for by unknown tokens. Every caller waits for a
# check that began after it asked, so none is refused a token committed before its request,
# and a flood of random tokens costs the database at most 1 / FRESH_GAP small reads a second.
FRESH_GAP = 0.1


def _timestamp(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def scope_of(stored: AccessScope | None) -> Scope | None:
    """The principal's scope from a token's or profile's stored one."""
    if stored is None:
        return None
    return Scope(frozenset(stored.clients), frozenset(stored.projects))


class TokenAuth:
    """Verifies bearer API tokens against an in-memory copy of the usable ones."""

    def __init__(self, store: TokenRepo) -> None:
        self.store = store
        self._by_hash: dict[str, Principal] = {}
        self._revision = ""
        # Bumped on every reload: whoever remembers a lookup forgets it when this moves.
        self.generation = 0
        # Awaited after each reload: what else the revision covers (profiles) is read again.
        self.reloaded: list[Callable[[], Awaitable[None]]] = []
        self._check: asyncio.Task[None] | None = None
        self._check_began = -math.inf  # loop time the last store check began at
        self._checked_from = -math.inf  # ... and the last one that finished

    async def reload(self) -> None:
        """Re-read the usable tokens (each one's Principal is built here, not per request)."""
        self._revision = await self.store.revision()
        usable = await self.store.usable()
        by_hash: dict[str, Principal] = {}
        for digest, t in usable.items():
            expires = _timestamp(t.expires_at)
            by_hash[digest] = Principal(
                "token", t.id, t.name, t.role, expires, t.server_id, scope_of(t.scope)
            )
        self._by_hash = by_hash
        self.generation += 1
        for hook in self.reloaded:
            await hook()

    async def watch(self, interval: float = 1.0) -> None:
        """Reload whenever another process changes the tokens (until cancelled)."""
        try:
            while True:
                await asyncio.sleep(interval)
                try:
                    if await self.store.revision() != self._revision:
                        await self.reload()
                except Exception:  # a locked or briefly unavailable store must not end it
                    log.exception("could not reload tokens")
        finally:
            if self._check is not None:
                self._check.cancel()

    async def fresh(self) -> None:
        """Return once a store check that began after this call has finished (FRESH_GAP)."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while self._checked_from < asked:
            if self._check is None:
                delay = max(0.0, self._check_began + FRESH_GAP - asked)
                self._check = loop.create_task(self._check_store(delay))
            # Shielded: a caller that goes away does not cancel the check the others wait on.
            await asyncio.shield(self._check)

    async def _check_store(self, delay: float) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.sleep(delay)
            began = self._check_began = loop.time()
            try:
                if await self.store.revision() != self._revision:
                    await self.reload()
            except Exception:  # the callers are refused, as they would have been anyway
                log.exception("could not look for new tokens")
            self._checked_from = began
        finally:
            self._check = None

    def principal(self, token: str) -> Principal | None:
        """The caller a token stands for, or None (unknown, revoked or expired)."""
        found = self._by_hash.get(hash_token(token))
        if found is None or (found.expires_at is not None and found.expires_at <= time.time()):
            return None
        return found

    async def create(
        self,
        name: str,
        role: TokenRole,
        expires_at: str | None,
        created_by: str | None,
        *,
        server_id: str | None = None,
        scope: AccessScope | None = None,
    ) -> tuple[Token, str]:
        """Mint a token and make it usable at once (agent tokens name their server)."""
        token, plain = await self.store.create(
            name, role, expires_at, created_by, server_id=server_id, scope=scope
        )
        await self.reload()
        return token, plain

    async def revoke(self, ident: str) -> Token:
        """Revoke a token; it stops working at once."""
        token = await self.store.revoke(ident)
        await self.reload()
        return token


def _write_private(path: Path, text: str) -> None:
    """Write text to path readable by the owner only (0600 from creation, no window)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text + "\n")
        f.flush()
        os.fsync(f.fileno())


async def bootstrap_admin(tokens: TokenAuth, path: Path) -> None:
    """First start without any token or JWT: mint an admin token and hand it over once.

    The value goes to a 0600 file, and to stderr only when that is a terminal: under systemd
    stderr is the journal, which more people can read than the file.
    """
    _, plain = await tokens.create("bootstrap-admin", "admin", None, "dragonopsd")
    await asyncio.to_thread(_write_private, path, plain)
    if sys.stderr.isatty():
        print(f"\n  admin token (shown once, also in {path}):\n    {plain}\n", file=sys.stderr)
    log.warning("no API tokens existed: created an admin token, saved to %s (mode 0600)", path)
