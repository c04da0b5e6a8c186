"""SIGHUP: bring a re-read config into the running daemon, live where that is safe.

``LIVE`` names what is applied without a restart, next to the code that applies it. Every
other key whose value differs from the one the daemon started with is named as needing a
restart: in the log at each reload, and in /readyz ``restartRequired`` until the file matches
again or the daemon restarts. So no change is ever dropped silently.

``sighup_ctx`` is the app's cleanup context that installs the signal handler: the app factory
registers it when given a way to re-read the config (``dragonopsd serve`` passes one).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
from aiohttp import web

from . import logs
from .auth.authenticator import Authenticator
from .auth.jwt import JwtVerifier
from .auth.limiter import FailureLimiter
from .config import SECTIONS, Config, ConfigError
from .metrics.exporter import Exporter
from .monitoring.alert_rules import RuleBook
from .monitoring.config_sync import ConfigSync
from .monitoring.statuspage import StatusPages
from .netguard import AddressGuard
from .systemd import Notifier

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
    """What one reload did: keys applied live, keys waiting for a restart, problems of the
    declared lists ([[monitors]], [[maintenance]], [[notifications]], [[alert_rules]])."""

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
        declared: ConfigSync,
        status_pages: StatusPages,
        alert_rules: RuleBook,
    ) -> None:
        self._started = started
        self._current = started
        self._guard = guard
        self._authenticator = authenticator
        self._jwt = jwt
        self._limiter = limiter
        self._exporter = exporter
        self._declared = declared
        self._status_pages = status_pages
        self._alert_rules = alert_rules
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
            # [[monitors]], [[maintenance]], [[notifications]]
            report.problems = await self._declared.sync(new)
            alert_problems = self._alert_rules.configure(new.alert_rules)
            for problem in alert_problems:
                log.error("[[alert_rules]] %s (the rules stay as they were)", problem)
            report.problems += alert_problems
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
        self._limiter.configure(new.auth.failure_limit, new.auth.failure_window)
        if "metrics.token" in changed:
            self._exporter.rotate_token(new.metrics.token)
            log.info("[metrics] token %s", "changed" if new.metrics.token else "removed")


def sighup_ctx(
    reloader: Reloader,
    reread: Callable[[], Config],
    path: Path | None,
    notifier: Notifier | None = None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """While the app runs, SIGHUP re-reads the file (reread(): flags still win) and applies it;
    on a broken file everything stays as it is. notifier tells systemd RELOADING, then READY.

    Registered last, so it is removed first: no reload reaches a service that has stopped. A
    reload under way when the app stops is finished first (applies are short and hold a lock).
    From then until the loop closes a SIGHUP is ignored: its default action would kill a daemon
    that is still flushing its history (logrotate sends HUP whenever it likes).
    """
    tasks: set[asyncio.Task[None]] = set()

    async def apply(new: Config) -> None:
        try:
            report = await reloader.apply(new)
        except Exception:  # a bug here must not end the daemon or leave systemd waiting
            log.exception("reload of %s failed part way", path or "defaults")
        else:
            log.info(
                "reloaded %s (log level %s, %d problems%s)",
                path or "defaults",
                new.log.level,
                len(report.problems),
                f"; needs a restart: {', '.join(report.restart_required)}"
                if report.restart_required
                else "",
            )
        if notifier is not None:
            notifier.reloaded()

    def on_sighup() -> None:
        if notifier is not None:
            notifier.reloading()
        try:
            new = reread()
        except ConfigError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
            if notifier is not None:
                notifier.reloaded()
            return
        task = asyncio.create_task(apply(new))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def stopping() -> None:
        log.info("SIGHUP ignored: the daemon is stopping")

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        try:
            yield
        finally:
            loop.add_signal_handler(signal.SIGHUP, stopping)  # replaces on_sighup
            if tasks:
                await asyncio.gather(*tasks)

    return ctx


# SIGHUP: applies a re-read config (sighup_ctx above installs the signal handler).
RELOADER: web.AppKey[Reloader] = web.AppKey("reloader")
