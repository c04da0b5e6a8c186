"""Executors: what actually restarts, stops or starts a server.

``simulated`` waits and succeeds (or fails at a configured rate): demos and tests.
``webhook`` hands the action to a real orchestrator over HTTP and records its answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import msgspec

from ..config import ActionsConfig
from ..model.inventory import Server, Wire
from ..store.actions import Action, ActionKind

# Bytes of a webhook's answer kept with the action: enough for a job id or an error message.
MAX_RESULT = 2000


@dataclass(frozen=True)
class Job:
    """An action in the running state, and the server it acts on."""

    action: Action
    server: Server


@dataclass(frozen=True)
class Outcome:
    """How an action ended: ``error`` says why it failed; ``result`` is what the executor said."""

    ok: bool
    result: str | None = None
    error: str | None = None


class Executor(Protocol):
    """Carries out one action; a failure is an Outcome, an exception is a bug."""

    async def start(self) -> None:
        """Acquire what run() needs (inside the running loop)."""
        ...

    async def close(self) -> None:
        """Release it."""
        ...

    async def run(self, job: Job) -> Outcome:
        """Carry out the action; cancellable at any await."""
        ...


class SimulatedExecutor:
    """Waits ``duration`` seconds, then fails with probability ``failure_rate``."""

    def __init__(self, duration: float, failure_rate: float, rng: random.Random | None = None):
        self._duration = duration
        self._failure_rate = failure_rate
        self._rng = rng or random.Random()  # noqa: S311  # a simulation, not a secret

    async def start(self) -> None:
        """Nothing to acquire."""

    async def close(self) -> None:
        """Nothing to release."""

    async def run(self, job: Job) -> Outcome:
        """Pretend to act on the server."""
        await asyncio.sleep(self._duration)
        if self._rng.random() < self._failure_rate:
            return Outcome(ok=False, error=f"simulated failure (failure_rate {self._failure_rate})")
        return Outcome(ok=True, result=f"simulated {job.action.action} of {job.server.name}")


class WebhookCall(Wire, kw_only=True):
    """The JSON body a webhook receives."""

    id: str
    server_id: str
    server_name: str
    private_ip: str | None
    action: ActionKind


class WebhookExecutor:
    """POSTs the action to ``[actions] webhook_url``: a 2xx answer means done, anything else,
    a timeout or no connection means failed.

    The URL comes from the config file, never from an API caller, so unlike notification
    webhooks it needs no guard against metadata addresses. Redirects are not followed: an
    orchestrator that moved should be configured at its new address.
    """

    def __init__(self, url: str, timeout: float, secret: str = "") -> None:
        self._url = url
        self._timeout = timeout
        self._secret = secret.encode()
        self._session: aiohttp.ClientSession | None = None
        self._encode = msgspec.json.Encoder().encode

    async def start(self) -> None:
        """Open the HTTP session (one for the daemon's life: its connections are reused)."""
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, job: Job) -> Outcome:
        """One POST, bounded by the timeout as a whole (connect, send, answer)."""
        assert self._session is not None, "start() first"
        server = job.server
        body = self._encode(
            WebhookCall(
                id=job.action.id,
                server_id=server.id,
                server_name=server.name,
                private_ip=server.private_ip,
                action=job.action.action,
            )
        )
        # The action id lets the orchestrator spot an action that is retried after a restart.
        headers = {"Content-Type": "application/json", "X-DragonOps-Action": job.action.id}
        if self._secret:
            digest = hmac.new(self._secret, body, hashlib.sha256).hexdigest()
            headers["X-DragonOps-Signature"] = f"sha256={digest}"
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._session.post(
                    self._url, data=body, headers=headers, allow_redirects=False
                ) as resp,
            ):
                answer = await _read_some(resp, MAX_RESULT)
        except TimeoutError:
            return Outcome(ok=False, error=f"webhook timed out after {self._timeout:g} s")
        except (aiohttp.ClientError, OSError) as exc:
            return Outcome(ok=False, error=f"webhook unreachable ({type(exc).__name__})")
        if 200 <= resp.status < 300:
            return Outcome(ok=True, result=answer)
        return Outcome(ok=False, result=answer, error=f"webhook answered HTTP {resp.status}")


async def _read_some(resp: aiohttp.ClientResponse, limit: int) -> str:
    """Up to limit bytes of the body as text: a huge answer is cut, never buffered whole."""
    data = bytearray()
    while len(data) < limit and (chunk := await resp.content.read(limit - len(data))):
        data += chunk
    return data.decode(errors="replace")


def build_executor(cfg: ActionsConfig) -> Executor:
    """The executor ``[actions] executor`` names."""
    if cfg.executor == "webhook":
        return WebhookExecutor(cfg.webhook_url, cfg.webhook_timeout, cfg.webhook_secret)
    return SimulatedExecutor(cfg.duration_seconds, cfg.failure_rate)
