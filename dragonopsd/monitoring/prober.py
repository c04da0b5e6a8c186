"""The local probe runner: one HTTP session and one probe environment for every check here."""

from __future__ import annotations

import asyncio
import dataclasses
import urllib.parse
from typing import Any

import aiohttp
import msgspec

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
        """One probe of spec, never longer than its timeout (plus a margin). A probe that read
        a secret answers with that secret's value replaced by ``***`` wherever it shows (a
        target that echoes a header back): conditions, heartbeat messages and check reports
        are read by viewers, and a secret's value is an admin's to reveal."""
        assert self._env is not None, "engine not started"
        if self._secrets is None or not uses_secret(spec):
            return await self._run(spec, self._env)
        lookup = self._secrets
        used: list[str] = []

        async def recording(name: str) -> str | None:
            value = await lookup(name)
            if value:
                used.append(value)
            return value

        result = await self._run(spec, dataclasses.replace(self._env, secrets=recording))
        return scrubbed(result, used) if used else result

    @staticmethod
    async def _run(spec: MonitorSpec, env: ProbeEnv) -> ProbeResult:
        if spec.kind == "http":
            # Two bounds already: run_probe's and the request's own total timeout (aiohttp's
            # timer). A third timer for the commonest check cost more than the rest of its
            # bookkeeping.
            return await run_probe(spec, env)
        try:  # the probe has its own budget; this only guards against a probe bug hanging
            async with asyncio.timeout(spec.timeout + 5):
                return await run_probe(spec, env)
        except TimeoutError:
            return ProbeResult(context={}, error=f"timeout after {spec.timeout}s")


def uses_secret(spec: MonitorSpec) -> bool:
    """Whether a probe of spec reads a secret (a reference in the URL or a header, or a
    passwordSecret). Cheap: the commonest check has neither."""
    if spec.password_secret is not None or (spec.url is not None and "${" in spec.url):
        return True
    return spec.headers is not None and any("${" in v for v in spec.headers.values())


def scrubbed(result: ProbeResult, values: list[str]) -> ProbeResult:
    """result with every secret value (as read, and percent-encoded as a URL carries it)
    replaced by ``***`` in its context and error."""
    forms = sorted({f for v in values for f in (v, urllib.parse.quote(v, safe=""))}, key=len)
    forms.reverse()  # the longest first, so a value inside another is not left half-masked

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            for form in forms:
                value = value.replace(form, "***")
            return value
        if isinstance(value, bytes):
            for form in forms:
                value = value.replace(form.encode(), b"***")
            return value
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return msgspec.structs.replace(
        result,
        context=clean(result.context),
        error=clean(result.error) if result.error is not None else None,
    )
