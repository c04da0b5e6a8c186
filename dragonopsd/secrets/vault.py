"""Secrets service: seals values on the way in, opens them only for an explicit reveal.

The associated data of every value binds its row id, key, env and key id, so a ciphertext
copied into another row (or relabelled with another key id) does not open. The key ring comes
from the key file or ``DRAGONOPS_SECRETS_KEYS``. The default key file is created on the first
start, while nothing is sealed yet (as the admin token is); a key file the config names, or
one whose secrets are stored, is never replaced: while it is missing every call answers 503
and the rest of the daemon carries on. ``dragonopsd keys rotate`` rewrites the key file from another
process, so the file is re-read (off the loop) when it changes, checked at most once a second
and at once when a row names a key id the ring does not hold.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import msgspec
from msgspec import UNSET, UnsetType

from ..bus import Bus
from ..clock import now_iso
from ..model.inventory import Wire
from ..problem import Problem
from ..store.protocols import ChannelRepo, VaultRepo
from ..store.unit import on_commit
from ..store.vault import Precondition, Sealed, Secret
from .crypto import (
    KeyRing,
    KeyRingError,
    SealError,
    file_signature,
    load_keys,
    read_key_file,
    write_key_file,
)

log = logging.getLogger("dragonopsd.secrets")

NO_KEY = (
    "no secrets key: the key file is missing; restore it, or create one with "
    "`dragonopsd keys generate`"
)
RECHECK_SECONDS = 1.0
DEFAULT_ENV = "default"
_NAME_PAGE = 500
_CHECK_PLAIN = b"dragonopsd key check"
_encode = msgspec.json.Encoder().encode


class SecretChanged(Wire, kw_only=True):
    """Event on topic ``secrets``: which secret changed (never its value)."""

    id: str
    key: str
    env: str
    version: int
    op: Literal["created", "updated", "deleted"]


def secret_aad(ident: str, key: str, env: str, key_id: str) -> bytes:
    """Associated data of a secret value: a JSON array, so no two rows can encode alike."""
    return _encode(["dragonopsd.secret/1", ident, key, env, key_id])


def check_aad(key_id: str) -> bytes:
    """Associated data of a key's check value."""
    return _encode(["dragonopsd.keycheck/1", key_id])


def key_check(ring: KeyRing, key_id: str) -> tuple[str, bytes]:
    """A fresh check value for key_id, stored the first time the key seals anything."""
    return ring.seal(_CHECK_PLAIN, check_aad(key_id), key_id)


def _seal(ring: KeyRing, meta: Secret, plain: bytes) -> tuple[str, bytes]:
    kid = ring.primary
    return ring.seal(plain, secret_aad(meta.id, meta.key, meta.env, kid), kid)


def _open(ring: KeyRing, row: Sealed) -> bytes:
    meta = row.meta
    try:
        return ring.open(row.key_id, row.blob, secret_aad(meta.id, meta.key, meta.env, row.key_id))
    except SealError as exc:
        raise SealError(f"secret {meta.id} ({meta.key} in {meta.env}): {exc}") from None


async def verify(store: VaultRepo, ring: KeyRing) -> None:
    """KeyRingError unless ring holds every key rows use and each used key opens its check."""
    missing = sorted(await store.key_ids() - ring.keys.keys())
    if missing:
        raise KeyRingError(
            f"{ring.source}: secrets are sealed with key {', '.join(missing)}, which it does not "
            "hold; restore the key file that has it"
        )
    for kid, blob in sorted((await store.checks()).items()):
        if kid not in ring.keys:
            continue
        try:
            ring.open(kid, blob, check_aad(kid))
        except SealError:
            raise KeyRingError(
                f"{ring.source}: key {kid} is not the key this database's secrets were sealed "
                "with (its key check does not open); restore the right key file"
            ) from None


def create_key_file(path: Path) -> KeyRing:
    """Write a new one-key ring to path (0600); if another process wrote one meanwhile
    (`keys generate`), that one is read instead. Blocking."""
    ring = KeyRing.new(str(path))
    try:
        write_key_file(path, ring, overwrite=False)
    except KeyRingError:
        if file_signature(path) is None:
            raise
        return read_key_file(path)
    return ring


async def reseal_all(
    store: VaultRepo,
    channels: ChannelRepo,
    ring: KeyRing,
    batch: int,
    progress: Callable[[int, int], None],
) -> int:
    """Re-seal every row not under the primary, batch rows per transaction, then the channels'
    credentials (sealing any still in clear); returns the count."""
    total = await store.count_not_under(ring.primary)
    done = 0

    def reseal(row: Sealed) -> bytes:
        return _seal(ring, row.meta, _open(ring, row))[1]

    check = key_check(ring, ring.primary)
    while count := await store.reseal_batch(ring.primary, batch, reseal, check):
        done += count
        progress(done, max(total, done))
    await store.put_check(check)
    if count := await channels.seal_all(ring):
        done += count
        progress(done, max(total, done))
    return done


class VaultService:
    """The API's one way to secrets; plaintext exists only between request and seal."""

    def __init__(
        self,
        store: VaultRepo,
        key_file: Path,
        env_keys: str | None,
        bus: Bus | None = None,
        *,
        create: bool = False,
        shared: bool = False,
    ) -> None:
        self.store = store
        self.key_file = key_file
        self._env = env_keys if env_keys and env_keys.strip() else None
        # True for the default key file: the first start makes it, as it does the admin token.
        self._create = create
        # True when other cores share the database (PostgreSQL): one of them sealed what is
        # stored, so a core without its key file is a deployment mistake to refuse at start,
        # not a single host's lost file to serve 503s through until restored.
        self._shared = shared
        self._bus = bus
        self._ring: KeyRing | None = None
        self._signature: tuple[int, int, int] | None = None
        self._checked_at = -math.inf
        self._lock = asyncio.Lock()
        self._checked: set[str] = set()  # key ids whose check value is known to be stored

    @property
    def ring(self) -> KeyRing | None:
        """The loaded key ring, None when no key is configured."""
        return self._ring

    async def start(self) -> None:
        """Load the ring and check it against the database; KeyRingError refuses the start."""
        self._signature = await asyncio.to_thread(file_signature, self.key_file)
        self._checked_at = asyncio.get_running_loop().time()
        ring = await asyncio.to_thread(load_keys, self.key_file, self._env)
        if ring is None and self._create and not await self._ever_sealed():
            ring = await asyncio.to_thread(create_key_file, self.key_file)
            self._signature = await asyncio.to_thread(file_signature, self.key_file)
            log.warning(
                "no secrets key existed: created %s (mode 0600); back it up with the database, "
                "the secrets cannot be read without it",
                self.key_file,
            )
        if ring is None and self._shared and await self._ever_sealed():
            raise KeyRingError(
                f"{self.key_file}: no key file, and the secrets in the shared database are "
                "sealed: copy the key file the other cores use here (mode 0600), or point "
                "[secrets] key_file at it"
            )
        if ring is None:
            stored = len(await self.store.key_ids())
            log.warning(
                "%s%s; /api/secrets answers 503 until %s exists",
                NO_KEY,
                " (secrets are stored: restore their key file)" if stored else "",
                self.key_file,
            )
            return
        await verify(self.store, ring)
        self._ring = ring
        log.info(
            "secrets: %d key(s) from %s, primary %s", len(ring.keys), ring.source, ring.primary
        )

    async def _ever_sealed(self) -> bool:
        """Whether any key has sealed anything here (each leaves its key check): a new key
        would open none of it, so only the lost file will do."""
        return bool(await self.store.key_ids() or await self.store.checks())

    async def _refresh(self, force: bool) -> None:
        """Re-read the key file if it changed since it was loaded (never the env var)."""
        loop = asyncio.get_running_loop()
        if self._env is not None or (
            not force and loop.time() - self._checked_at < RECHECK_SECONDS
        ):
            return
        async with self._lock:
            if not force and loop.time() - self._checked_at < RECHECK_SECONDS:
                return
            self._checked_at = loop.time()
            signature = await asyncio.to_thread(file_signature, self.key_file)
            if signature == self._signature or signature is None:
                return
            self._signature = signature
            try:
                ring = await asyncio.to_thread(read_key_file, self.key_file)
                await verify(self.store, ring)
            except KeyRingError as exc:
                log.error("key file changed but is not usable, keeping the loaded keys: %s", exc)
                return
            self._ring = ring
            log.info("secrets: reloaded %d key(s), primary %s", len(ring.keys), ring.primary)

    async def _keys(self, needed: str | None = None) -> KeyRing:
        ring = self._ring
        await self._refresh(
            force=ring is not None and needed is not None and needed not in ring.keys
        )
        if self._ring is None:
            raise Problem(503, NO_KEY, kind="secrets-unavailable")
        return self._ring

    async def keyring(self, needed: str | None = None) -> KeyRing | None:
        """The ring for sealing other rows with (channel credentials), None without a key.

        The primary's key check is recorded first, so a wrong key file is caught at start
        even when only channels were ever sealed with it.
        """
        try:
            ring = await self._keys(needed)
        except Problem:
            return None
        if ring.primary not in self._checked:
            primary = ring.primary
            await self.store.put_check(key_check(ring, primary))
            # Inside a larger write (an import) the check is stored only if that commits.
            on_commit(lambda: self._checked.add(primary))
        return ring

    def _changed(self, meta: Secret, op: Literal["created", "updated", "deleted"]) -> None:
        bus = self._bus
        if bus is not None:
            event = SecretChanged(
                id=meta.id, key=meta.key, env=meta.env, version=meta.version, op=op
            )
            # Inside a larger write (an import), announced when that commits, never otherwise.
            on_commit(lambda: bus.publish("secrets", event, "secret.changed"))

    async def list(
        self, env: str | None, q: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Secret], str | None]:
        """One page of metadata."""
        await self._keys()
        return await self.store.list(env, q, limit, cursor)

    async def get(self, ident: str) -> Secret:
        """One secret's metadata."""
        await self._keys()
        return (await self.store.get(ident)).meta

    async def create(self, key: str, env: str, value: str, description: str | None) -> Secret:
        """Seal and insert a new secret; 409 when (key, env) exists."""
        ring = await self._keys()
        now = now_iso()
        meta = Secret(
            id=str(uuid.uuid4()),
            key=key,
            env=env,
            version=1,
            description=description,
            created_at=now,
            updated_at=now,
        )
        kid, blob = _seal(ring, meta, value.encode())
        await self.store.insert(meta, kid, blob, key_check(ring, kid))
        self._changed(meta, "created")
        return meta

    async def update(
        self,
        ident: str,
        value: str | UnsetType,
        description: str | UnsetType | None,
        precondition: Precondition | None = None,
    ) -> Secret:
        """Replace the value (a new version) and/or the description. ``precondition`` (an
        If-Match) is checked on the row inside the write, so nothing between counts."""
        ring = await self._keys()
        sealed = check = None
        if value is not UNSET:
            current = (await self.store.get(ident)).meta  # key and env never change
            sealed = _seal(ring, current, value.encode())
            check = key_check(ring, sealed[0])
        elif description is UNSET:
            meta = (await self.store.get(ident)).meta
            if precondition is not None:
                precondition(meta)
            return meta
        meta = await self.store.update(
            ident, now_iso(), description, sealed, check, precondition=precondition
        )
        self._changed(meta, "updated")
        return meta

    async def delete(self, ident: str, precondition: Precondition | None = None) -> None:
        """Remove a secret (``precondition`` as for update)."""
        await self._keys()
        self._changed(await self.store.delete(ident, precondition), "deleted")

    async def value_by_name(self, name: str) -> str | None:
        """The value of the secret ``key`` (env "default") or ``env/key``; None if there is
        none. For the daemon's own use (probe headers, the model's API key), never an answer."""
        env, _, key = name.rpartition("/")
        env = env or DEFAULT_ENV
        cursor: str | None = None
        while True:
            # q is a substring match; the exact key is picked from the page.
            items, cursor = await self.list(env, key, _NAME_PAGE, cursor)
            for meta in items:
                if meta.key == key:
                    return (await self.reveal(meta.id))[1]
            if cursor is None:
                return None

    async def reveal(self, ident: str) -> tuple[Secret, str]:
        """A secret's metadata and plaintext value (the only way out)."""
        await self._keys()
        row = await self.store.get(ident)
        ring = await self._keys(row.key_id)
        try:
            plain = _open(ring, row)
        except SealError as exc:
            log.error("%s", exc)
            raise Problem(500, f"{exc}", kind="secret-unreadable") from None
        return row.meta, plain.decode()
