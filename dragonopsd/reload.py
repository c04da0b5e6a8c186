"""SIGHUP: bring a re-read config into the running daemon, live where that is safe.

``LIVE`` names what is applied without a restart, next to the code that applies it. Every
other key whose value differs from the one the daemon started with is named as needing a
restart: in the log at each reload, and in /readyz ``restartRequired`` until the file matches
again or the daemon restarts. So no change is ever dropped silently.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import msgspec
from aiohttp import web

from . import logs
from .auth.authenticator import Authenticator
from .auth.jwt import JwtVerifier
from .auth.limiter import FailureLimiter
from .config import SECTIONS, Config
from .metrics.exporter import Exporter
from .monitoring.service import MonitorService
from .monitoring.statuspage import StatusPages
from .netguard import AddressGuard

log = logging.getLogger("dragonopsd")

# Whole sections, then single keys, that a reload applies to the running services.
LIVE_SECTIONS = frozenset({"log", "status_page"})
JWT_KEYS = frozenset(
    f"auth.{k}"
    for k in ("jwt_secret", "jwks_url", "jwks_algorithms", "issuer", "audience", "leeway")
)
LIVE = JWT_KEYS | {
    "auth.default_role",
    "auth.failure_limit",
    "auth.failure_window",
    "metrics.token",
    "probes.deny_cidrs",
    "probes.allow_metadata",
}


def changed_keys(old: Config, new: Config) -> list[str]:
    """Dotted names (``server.port``) of the section keys whose values differ."""
    keys = []
    for name in SECTIONS:
        a, b = getattr(old, name), getattr(new, name)
        if a != b:
            keys += [
                f"{name}.{f.encode_name}"
                for f in msgspec.structs.fields(a)
                if getattr(a, f.name) != getattr(b, f.name)
            ]
    return keys


def is_live(key: str) -> bool:
    """Whether a reload applies this dotted key to the running daemon."""
    return key in LIVE or key.partition(".")[0] in LIVE_SECTIONS


@dataclass
class ReloadReport:
    """What one reload did: keys applied live, keys waiting for a restart, monitor problems."""

    applied: list[str] = field(default_factory=list)
    restart_required: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Reloader:
    """Applies re-read configs, one at a time, to the services that can take them; remembers
    which changed keys only a restart applies (what /readyz reports)."""

    def __init__(
        self,
        started: Config,
        *,
        guard: AddressGuard,
        authenticator: Authenticator,
        jwt: JwtVerifier,
        limiter: FailureLimiter,
        exporter: Exporter,
        monitors: MonitorService,
        status_pages: StatusPages,
    ) -> None:
        self._started = started
        self._current = started
        self._guard = guard
        self._authenticator = authenticator
        self._jwt = jwt
        self._limiter = limiter
        self._exporter = exporter
        self._monitors = monitors
        self._status_pages = status_pages
        self._lock = asyncio.Lock()  # two quick SIGHUPs apply in order, never interleaved
        self.restart_required: list[str] = []

    async def apply(self, new: Config) -> ReloadReport:
        """Apply new as far as it can be, and log what waits for a restart (by key name only:
        values may be secrets)."""
        async with self._lock:
            report = ReloadReport()
            changed = changed_keys(self._current, new)
            report.applied = [k for k in changed if is_live(k)]
            self._apply_sections(new, set(report.applied))
            report.problems = await self._monitors.sync_config(new.monitors)
            self._status_pages.configure(new.status_page)  # after: names may be new
            self._current = new
            report.restart_required = [
                k for k in changed_keys(self._started, new) if not is_live(k)
            ]
            self.restart_required[:] = report.restart_required  # the list /readyz reads
            if report.applied:
                log.info("applied without a restart: %s", ", ".join(report.applied))
            for key in report.restart_required:
                log.warning("%s needs a restart: the daemon keeps its value until then", key)
            return report

    def _apply_sections(self, new: Config, changed: set[str]) -> None:
        logs.setup(new.log.level, new.log.format)
        if changed & {"probes.deny_cidrs", "probes.allow_metadata"}:
            self._guard.configure(new.probes)  # probes and notifications: the next connect
        if changed & JWT_KEYS:
            self._jwt.configure(new.auth)
        self._authenticator.configure(new.auth, jwt_changed=bool(changed & JWT_KEYS))
        self._limiter.limit = new.auth.failure_limit
        self._limiter.window = new.auth.failure_window
        if "metrics.token" in changed:
            self._exporter.token = new.metrics.token  # the next scrape needs the new one
            log.info("[metrics] token %s", "changed" if new.metrics.token else "removed")


# SIGHUP: applies a re-read config (cli/serve.py installs the signal handler).
RELOADER: web.AppKey[Reloader] = web.AppKey("reloader")
