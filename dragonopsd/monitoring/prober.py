"""The local probe runner: one HTTP session and one probe environment for every check here."""

from __future__ import annotations

import asyncio

import aiohttp

from ..config import ProbesConfig
from ..model.monitor import MonitorSpec
from .probes import ProbeEnv, ProbeResult, run_probe
from .probes.guard import AddressGuard, make_session
from .probes.result import SecretLookup


class Prober:
    """Runs one monitor's probe here, within its timeout; started and stopped by the engine."""

    def __init__(
        self, cfg: ProbesConfig, guard: AddressGuard, secrets: SecretLookup | None = None
    ) -> None:
        self._cfg = cfg
        self._guard = guard  # shared with notifications; a reload swaps its rules in place
        self._secrets = secrets
        self._session: aiohttp.ClientSession | None = None
        self._env: ProbeEnv | None = None

    def start(self) -> None:
        """Open the probe session (on the running loop)."""
        self._session = make_session(self._cfg, self._guard)
        # One env for every probe: it caches the CA store and nameservers it loads.
        self._env = ProbeEnv(
            self._session, self._guard, self._cfg.user_agent, secrets=self._secrets
        )

    async def stop(self) -> None:
        """Close the probe session."""
        if self._session is not None:
            await self._session.close()

    async def probe(self, spec: MonitorSpec) -> ProbeResult:
        """One probe of spec, never longer than its timeout (plus a margin)."""
        assert self._env is not None, "engine not started"
        if spec.kind == "http":
            # Two bounds already: run_probe's and the request's own total timeout (aiohttp's
            # timer). A third timer for the commonest check cost more than the rest of its
            # bookkeeping.
            return await run_probe(spec, self._env)
        try:  # the probe has its own budget; this only guards against a probe bug hanging
            async with asyncio.timeout(spec.timeout + 5):
                return await run_probe(spec, self._env)
        except TimeoutError:
            return ProbeResult(context={}, error=f"timeout after {spec.timeout}s")
