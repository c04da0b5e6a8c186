"""`dragonopsd agent`: read this host every interval and push the samples to a daemon.

Sampling never waits for the network: readings queue up (the newest MAX_PENDING) while the
daemon is away, and sending backs off exponentially with jitter up to BACKOFF_CAP, then sends
the backlog in batches. SIGTERM or SIGINT stops it at once with exit 0. A token scoped to
another server or a server that does not exist (403/404) is a configuration error: exit 1. An
unknown token (401) is retried like an outage: one just made with `dragonopsd token create`
reaches a running daemon within a second. So is a server whose sampling is not "agent" (409):
the log says to change it, and the queued samples go as soon as someone does.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import sys
import uuid
from collections import deque
from itertools import islice
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import msgspec

from .. import __version__, logs
from ..config import Config
from ..model.sample import MAX_BATCH, Sample, SampleIn
from ..sampling.local import LocalReader, LocalUnavailable
from .common import EPILOG, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, run

log = logging.getLogger("dragonopsd.agent")

TOKEN_ENV = "DRAGONOPS_AGENT_TOKEN"
MAX_PENDING = 720  # an hour of readings at 5 s; older ones are dropped first
BACKOFF_START = 1.0
BACKOFF_CAP = 60.0
REQUEST_TIMEOUT = 10.0
FATAL = frozenset({403, 404})


class Fatal(Exception):
    """The daemon refused us in a way retrying cannot fix."""


def _url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http(s):// URL")
    if parts.query or parts.fragment:
        raise argparse.ArgumentTypeError("the daemon's base URL, without ?query or #fragment")
    return text.strip().rstrip("/")


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a server id (a UUID)") from None


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 1 <= value <= 3600:
        raise argparse.ArgumentTypeError("must be between 1 and 3600 seconds")
    return value


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the agent command."""
    agent = sub.add_parser("agent", help="push this host's samples to a daemon", epilog=EPILOG)
    agent.add_argument("--url", required=True, type=_url, help="the daemon, e.g. http://h:8750")
    token = agent.add_mutually_exclusive_group()
    token.add_argument("--token", help=f"an agent token for this server (default: ${TOKEN_ENV})")
    token.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="read the token from a file (systemd: ${CREDENTIALS_DIRECTORY}/agent.token); "
        "keeps it out of the process list",
    )
    agent.add_argument("--server-id", required=True, type=_uuid, metavar="ID", help="this server")
    agent.add_argument(
        "--interval", type=_interval, default=5.0, metavar="S", help="seconds between samples"
    )
    # No config file or state of its own: [log] comes from the defaults and DRAGONOPS_LOG__*.
    agent.set_defaults(handler=main, config=None)


def main(cfg: Config, args: argparse.Namespace) -> int:
    """Push samples until stopped."""
    if args.token_file is not None:
        try:
            token = args.token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"--token-file: cannot read {args.token_file}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not token.strip() or len(token.strip().splitlines()) != 1:
            print(f"--token-file: {args.token_file} must hold one token", file=sys.stderr)
            return EXIT_USAGE
    else:
        token = args.token or os.environ.get(TOKEN_ENV, "")
    if not token.strip():
        print(f"--token: required (or --token-file, or set {TOKEN_ENV})", file=sys.stderr)
        return EXIT_USAGE
    logs.setup(cfg.log.level, cfg.log.format)
    return run(_main(args.url, token.strip(), args.server_id, args.interval))


async def _main(url: str, token: str, server_id: str, interval: float) -> int:
    """Run the loop as a task that SIGTERM/SIGINT cancel, even in the middle of a send."""
    loop = asyncio.get_running_loop()
    work = asyncio.create_task(_loop(url, token, server_id, interval))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, work.cancel)
    try:
        return await work
    except asyncio.CancelledError:
        log.info("agent stopped")
        return EXIT_OK
    except Fatal as exc:
        log.error("%s", exc)
        return EXIT_FAILURE
    except LocalUnavailable as exc:
        log.error("%s", exc)
        return EXIT_FAILURE


async def _loop(url: str, token: str, server_id: str, interval: float) -> int:
    loop = asyncio.get_running_loop()
    reader = LocalReader()
    pending: deque[SampleIn] = deque(maxlen=MAX_PENDING)
    endpoint = f"{url}/api/servers/{server_id}/samples"
    headers = {
        "Authorization": f"Bearer {token}",
        "User-Agent": f"dragonopsd-agent/{__version__}",
    }
    failures = 0
    retry_at = next_at = loop.time()
    log.info("agent: sampling every %gs for server %s, pushing to %s", interval, server_id, url)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        while True:
            pending.append(_body(await reader.sample(server_id)))
            if loop.time() >= retry_at:
                try:
                    sent = await _send(session, endpoint, pending, interval, server_id)
                except _Retry as exc:
                    failures += 1
                    delay = _backoff(failures)
                    retry_at = loop.time() + delay
                    log.warning(
                        "%s; %d samples queued, retrying in %.1fs", exc, len(pending), delay
                    )
                else:
                    if failures:
                        log.info("the daemon takes samples again; sent %d queued samples", sent)
                    failures = 0
            next_at += interval
            now = loop.time()
            if next_at < now:  # the host was suspended or overloaded: skip, do not bunch
                next_at = now + interval
            await asyncio.sleep(next_at - now)


class _Retry(Exception):
    """Sending failed in a way that may pass (daemon down, restarting, overloaded, or a
    server setting someone can change while the agent runs); the message says which."""


def _detail(text: str) -> str:
    """The detail of a problem+json answer, else the text as it came."""
    try:
        doc = msgspec.json.decode(text)
    except msgspec.DecodeError:
        return text[:300]
    detail = doc.get("detail") if isinstance(doc, dict) else None
    return str(detail)[:300] if detail else text[:300]


def _body(sample: Sample) -> SampleIn:
    return SampleIn(
        cpu=sample.cpu,
        memory=sample.memory,
        load=sample.load,
        disk=sample.disk,
        net_in=sample.net_in,
        net_out=sample.net_out,
        at=sample.at,
    )


def _backoff(failures: int) -> float:
    """Exponential, capped, with jitter so agents restarted together do not call together."""
    ceiling = min(BACKOFF_CAP, BACKOFF_START * 2.0 ** min(failures - 1, 16))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311  -- jitter, not a secret


async def _send(
    session: aiohttp.ClientSession,
    endpoint: str,
    pending: deque[SampleIn],
    interval: float,
    server_id: str,
) -> int:
    """Send everything pending, oldest first, in batches; returns how many were sent."""
    sent = 0
    while pending:
        batch = list(islice(pending, MAX_BATCH))
        try:
            async with session.post(
                endpoint,
                data=msgspec.json.encode(batch),
                params={"interval": f"{interval:g}"},
                headers={"Content-Type": "application/json"},
            ) as resp:
                status, detail = resp.status, _detail(await resp.text())
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise _Retry(f"daemon unavailable ({str(exc) or type(exc).__name__})") from None
        if status in FATAL:
            raise Fatal(f"the daemon refused the samples ({status}): {detail}")
        if status == 409:  # the server is sampled by the daemon: fixed there, not here
            raise _Retry(
                f"the daemon takes no pushed samples for server {server_id}: set the server's "
                f'sampling to "agent" (it said: {detail})'
            )
        if status == 422:  # e.g. readings older than raw history: these will never be taken
            log.warning("daemon rejected %d samples: %s", len(batch), detail)
        elif status >= 300:
            raise _Retry(
                f"daemon unavailable (HTTP {status}: {detail})"
                if status < 500
                else f"daemon unavailable (HTTP {status})"
            )
        else:
            sent += len(batch)
        for _ in batch:
            pending.popleft()
    return sent
