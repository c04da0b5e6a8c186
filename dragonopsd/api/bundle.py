"""The built-in dashboard's files, read once from the package and versioned by content.

Every file sits under one versioned directory, ``/assets/<build>/<name>``, where ``build`` is a
hash of all of them. ES modules import each other by relative path (``./api.js``), so those
imports resolve inside the same versioned directory with no rewriting of JavaScript and no
import map (an inline one would need a CSP exception). Any change to any file changes the
build, so every asset can be cached forever (``immutable``); only ``index.html`` and the status
pages, which name the build, are revalidated. The cost: a release re-downloads all ~20 small
files rather than just the changed ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

PACKAGE = "dragonopsd.web"
FOLDER = "dashboard"
INDEX = "index.html"
PLACEHOLDER = b"%BUILD%"
TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}
IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes and content type."""

    body: bytes
    content_type: str


@dataclass(frozen=True)
class Bundle:
    """The dashboard: the index page (naming the build) and the versioned assets."""

    build: str
    index: bytes
    assets: dict[str, Asset]

    def url(self, name: str) -> str:
        """The versioned URL of an asset."""
        return f"/assets/{self.build}/{name}"


def _type(name: str) -> str | None:
    dot = name.rfind(".")
    return TYPES.get(name[dot:]) if dot >= 0 else None


def load() -> Bundle:
    """Read the dashboard's files from the installed package (a few KB, at build time)."""
    folder = resources.files(PACKAGE).joinpath(FOLDER)
    index = b""
    assets: dict[str, Asset] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.is_file():
            continue
        if entry.name == INDEX:
            index = entry.read_bytes()
        elif (kind := _type(entry.name)) is not None:
            assets[entry.name] = Asset(entry.read_bytes(), kind)
    if not index:
        raise RuntimeError(f"{PACKAGE}/{FOLDER}/{INDEX} is missing from the package")
    digest = hashlib.sha256(index)
    for name, asset in assets.items():
        digest.update(b"\0" + name.encode() + b"\0" + asset.body)
    build = digest.hexdigest()[:12]
    return Bundle(build=build, index=index.replace(PLACEHOLDER, build.encode()), assets=assets)


# The built-in dashboard: index page and versioned assets. Keys of api types live beside them.
WEB_BUNDLE: web.AppKey[Bundle] = web.AppKey("web_bundle")
