"""Sealing secret values with AES-256-GCM under a key ring (key id -> 32-byte key, one primary).

The key file is JSON, mode 0600, written atomically::

    {"primary": "k20260101T120000-3f2a", "keys": {"k20260101T120000-3f2a": "<base64 of 32 bytes>"}}

``DRAGONOPS_SECRETS_KEYS`` (``kid1:base64,kid2:base64``, the first one primary) replaces the file
when set. A blob is ``nonce (12 bytes) || ciphertext+tag``; every seal draws a fresh nonce.
Messages of the errors here name files and key ids, never key material or secret values.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEYS_ENV = "DRAGONOPS_SECRETS_KEYS"
KEY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_BYTES = 32
NONCE_BYTES = 12


class KeyRingError(Exception):
    """The key ring cannot be loaded, written, or does not match the database."""


class SealError(Exception):
    """A blob did not open: wrong key, or sealed for other associated data, or altered."""


class _KeyFile(msgspec.Struct, forbid_unknown_fields=True):
    primary: str
    keys: dict[str, str]


def _decode_key(kid: str, text: str, where: str) -> bytes:
    if not KEY_ID.match(kid):
        raise KeyRingError(
            f"{where}: key id {kid!r} is not valid (letters, digits, '_', '.', '-'; at most 64)"
        )
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRingError(f"{where}: key {kid} is not valid base64") from None
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"{where}: key {kid} is {len(key)} bytes, expected {KEY_BYTES}")
    return key


def new_key_id() -> str:
    """A fresh key id: when it was made, plus a little randomness against same-second clashes."""
    return f"k{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.urandom(2).hex()}"


@dataclass(frozen=True)
class KeyRing:
    """Keys by id; new values are sealed with the primary, any key in the ring opens."""

    primary: str
    keys: dict[str, bytes]
    source: str = field(default=KEYS_ENV, compare=False)

    def __post_init__(self) -> None:
        if self.primary not in self.keys:
            raise KeyRingError(f"{self.source}: primary key {self.primary} is not among the keys")

    @classmethod
    def new(cls, source: str) -> KeyRing:
        """A ring holding one freshly generated key."""
        kid = new_key_id()
        return cls(kid, {kid: AESGCM.generate_key(bit_length=256)}, source)

    @classmethod
    def from_json(cls, data: bytes, source: str) -> KeyRing:
        """Parse the key file's JSON; the error names what is wrong, never a key."""
        try:
            doc = msgspec.json.decode(data, type=_KeyFile)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise KeyRingError(f"{source}: not a dragonopsd key file: {exc}") from None
        if not doc.keys:
            raise KeyRingError(f"{source}: holds no keys")
        keys = {kid: _decode_key(kid, text, source) for kid, text in doc.keys.items()}
        return cls(doc.primary, keys, source)

    @classmethod
    def from_env(cls, text: str) -> KeyRing:
        """Parse ``kid1:base64,kid2:base64``; the first key is the primary."""
        keys: dict[str, bytes] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            kid, sep, b64 = part.partition(":")
            if not sep:
                raise KeyRingError(f"{KEYS_ENV}: expected kid:base64 pairs separated by ','")
            if kid in keys:
                raise KeyRingError(f"{KEYS_ENV}: key {kid} is given twice")
            keys[kid] = _decode_key(kid, b64, KEYS_ENV)
        if not keys:
            raise KeyRingError(f"{KEYS_ENV}: holds no keys")
        return cls(next(iter(keys)), keys, KEYS_ENV)

    def to_json(self) -> bytes:
        """The key file's content."""
        keys = {kid: base64.b64encode(key).decode() for kid, key in self.keys.items()}
        return msgspec.json.format(msgspec.json.encode(_KeyFile(self.primary, keys))) + b"\n"

    def rotated(self) -> KeyRing:
        """This ring plus a new key that becomes the primary."""
        fresh = KeyRing.new(self.source)
        return KeyRing(fresh.primary, {**self.keys, **fresh.keys}, self.source)

    def without(self, drop: set[str]) -> KeyRing:
        """This ring minus some keys; the primary cannot be dropped."""
        if self.primary in drop:
            raise KeyRingError(f"{self.source}: refusing to drop the primary key {self.primary}")
        keys = {kid: key for kid, key in self.keys.items() if kid not in drop}
        return KeyRing(self.primary, keys, self.source)

    def seal(self, plaintext: bytes, aad: bytes, key_id: str | None = None) -> tuple[str, bytes]:
        """Encrypt under the primary (or key_id) with a fresh nonce; returns (key id, blob)."""
        kid = key_id or self.primary
        nonce = os.urandom(NONCE_BYTES)
        return kid, nonce + AESGCM(self.keys[kid]).encrypt(nonce, plaintext, aad)

    def open(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a blob sealed with key_id for aad, or raise SealError."""
        key = self.keys.get(key_id)
        if key is None:
            raise SealError(f"key {key_id} is not in {self.source}")
        if len(blob) < NONCE_BYTES + 16:
            raise SealError(f"sealed value is truncated (key {key_id})")
        try:
            return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], aad)
        except InvalidTag:
            raise SealError(
                f"sealed value does not open with key {key_id}: wrong key, sealed for another "
                "row, or altered"
            ) from None


def file_signature(path: Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime_ns) of the key file, None when absent: cheap change detection."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def read_key_file(path: Path) -> KeyRing:
    """Load the key file, refusing one that group or others may read (blocking)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyRingError(f"{path}: no key file; run `dragonopsd keys generate`") from None
    except OSError as exc:
        raise KeyRingError(f"{path}: cannot open the key file: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & 0o077:
            raise KeyRingError(
                f"{path}: key file mode is {stat.S_IMODE(mode):04o}; it must not be readable by "
                f"group or others (chmod 600 {path})"
            )
        data = f.read(1024 * 1024)
    return KeyRing.from_json(data, str(path))


def load_keys(path: Path, env: str | None) -> KeyRing | None:
    """The configured ring: the env var when set, else the key file, else None (blocking)."""
    if env is not None and env.strip():
        return KeyRing.from_env(env)
    if file_signature(path) is None:
        return None
    return read_key_file(path)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_key_file(path: Path, ring: KeyRing, *, overwrite: bool) -> None:
    """Write the ring atomically with mode 0600 (tmp + fsync + rename); blocking.

    Without overwrite an existing file is an error, checked atomically (hard link, not rename).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(ring.to_json())
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            tmp.replace(path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyRingError(
                    f"{path}: a key file already exists; not overwriting it"
                ) from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
