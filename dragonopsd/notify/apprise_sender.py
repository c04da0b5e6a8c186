"""Delivery through Apprise (channel kind ``apprise``): one channel, one or more service URLs.

Apprise is synchronous (requests underneath), so every send runs on this sender's own small
thread pool, never on the event loop, and never starving the loop's default executor. Each
URL's socket timeouts are set to the dispatcher's attempt timeout, so a thread cannot outlive
the attempt by much. A retry of one notification goes only to the URLs that have not taken it
yet (remembered per delivery id), so one failing service does not spam the others.

Address guard: Apprise connects on its own, so the guard judges before it does. For schemes
whose host is a server the user names (``HOSTED_SCHEMES``: json/form/xml and self-hosted
services), the host is resolved and every address it gives must pass [probes] allow_metadata /
deny_cidrs, else that URL is refused like any other channel's target. Cloud services' schemes
(tgram, pover, opsgenie, …) go to the service's fixed endpoint and are not judged.

Apprise's own log lines quote URLs (tokens), so logs.py keeps its logger silent; a failure
reaches our log as the scheme and the kind of failure, never the URL.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Final

from ..model.inventory import HOSTED_SCHEMES
from ..netguard import REFUSED, AddressGuard, resolve
from .channels import AppriseConfig, Channel, instantiate
from .delivery import Attempt
from .event import NotificationEvent, facts, headline, sanitised

if TYPE_CHECKING:
    import apprise

# Apprise's NotifyType member (by name) per event: apprise itself is imported on first use
# (channels.instantiate), not at every start of a daemon that may have no Apprise channel.
_TYPES: Final = {
    "down": "FAILURE",
    "up": "SUCCESS",
    "certificate": "WARNING",
    "test": "INFO",
    "reminder": "FAILURE",
    "acknowledged": "INFO",
    "incident": "WARNING",
    "resolved": "SUCCESS",
}
# Delivery ids whose partial progress is remembered; older ones are forgotten first.
_REMEMBERED: Final = 1000
_DEFAULT_PORTS: Final = {False: 80, True: 443}


def message(event: NotificationEvent) -> tuple[str, str]:
    """(title, body) of the notification: the headline, then one fact per line."""
    event = sanitised(event)
    return headline(event), "\n".join(f"{label}: {value}" for label, value in facts(event))


class AppriseSender:
    """Sends to a channel's Apprise URLs off the loop; owned and stopped by the dispatcher."""

    def __init__(self, guard: AddressGuard, *, timeout: float, workers: int = 4) -> None:
        self._guard = guard
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apprise")
        self._done: OrderedDict[str, set[int]] = OrderedDict()
        self._warm: asyncio.Future[object] | None = None

    @property
    def warming(self) -> bool:
        """Whether warm() has begun."""
        return self._warm is not None

    async def warm(self) -> None:
        """Load Apprise's plugins (~0.3 s the first time) off the loop, before any channel is
        parsed on it; afterwards reading a URL takes about a millisecond. Once per sender, but
        again after a failure: kept, it would fail every reload of the channels for good."""
        failed = self._warm is not None and self._warm.done() and not _loaded(self._warm)
        if self._warm is None or failed:
            loop = asyncio.get_running_loop()
            self._warm = loop.run_in_executor(self._pool, instantiate, "json://localhost")
        await asyncio.shield(self._warm)

    def close(self) -> None:
        """Stop taking work; a send still running finishes within its socket timeouts."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def send(self, channel: Channel, event: NotificationEvent, delivery_id: str) -> Attempt:
        """One attempt at every URL not yet delivered for this delivery id."""
        cfg = channel.config
        assert isinstance(cfg, AppriseConfig)
        done = self._done.setdefault(delivery_id, set())
        self._done.move_to_end(delivery_id)
        while len(self._done) > _REMEMBERED:
            self._done.popitem(last=False)
        title, body = message(event)
        kind = _TYPES[event.event]
        todo = [(i, url) for i, url in enumerate(cfg.urls) if i not in done]
        # All at once: one slow service must not use up the attempt's time for the others.
        outcomes = await asyncio.gather(*(self._one(url, title, body, kind) for _, url in todo))
        failures: list[str] = []
        refused = 0
        for (index, url), failed in zip(todo, outcomes, strict=True):
            if failed is None:
                done.add(index)
                continue
            refused += failed == REFUSED
            failures.append(f"{url.partition('://')[0].lower()}: {failed}")
        if not failures:
            self._done.pop(delivery_id, None)
            return Attempt(ok=True)
        detail = f"{len(failures)} of {len(cfg.urls)} Apprise URL(s) failed ({'; '.join(failures)})"
        # Refused targets stay refused; the others (a service down, a timeout) may come back.
        return Attempt.unreached(detail, retry=refused < len(failures))

    async def _one(self, url: str, title: str, body: str, kind: str) -> str | None:
        """Send to one URL; None when delivered, else why not (REFUSED: the guard said no)."""
        plugin = instantiate(url)
        if plugin is None:
            return "not usable"
        judged = await self._judge(plugin, url.partition("://")[0].lower())
        if judged is not None:
            return judged
        plugin.socket_connect_timeout = self._timeout
        plugin.socket_read_timeout = self._timeout
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, _notify, plugin, title, body, kind)

    async def _judge(self, plugin: apprise.plugins.NotifyBase, scheme: str) -> str | None:
        """None when the guard lets this URL's host be reached, else why not."""
        if scheme not in HOSTED_SCHEMES:
            return None
        host = str(getattr(plugin, "host", "") or "")
        port = getattr(plugin, "port", None)
        port = port if isinstance(port, int) else _DEFAULT_PORTS[bool(plugin.secure)]
        try:
            addresses = await resolve(host, port)
        except OSError:
            return "cannot resolve"
        # requests resolves again and may take any of them: every one must pass.
        if not addresses or any(self._guard.check(a) is not None for a in addresses):
            return REFUSED
        return None


def _loaded(warm: asyncio.Future[object]) -> bool:
    """Whether a finished warm-up loaded Apprise (it may have failed, or been cancelled)."""
    return not warm.cancelled() and warm.exception() is None


def _notify(plugin: apprise.plugins.NotifyBase, title: str, body: str, kind: str) -> str | None:
    """On a pool thread: one service, one message. None when delivered, else why not."""
    import apprise  # noqa: PLC0415  -- loaded by instantiate() already: a sys.modules lookup

    try:
        delivered = plugin.notify(body=body, title=title, notify_type=apprise.NotifyType[kind])
    except Exception as exc:  # a plugin's own bug: reported by type, the worker lives on
        return f"Apprise failed ({type(exc).__name__})"
    return None if delivered else "not delivered"
