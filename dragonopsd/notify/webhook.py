"""Webhook transport: POST a rendered body to a channel's URL over the dispatcher's session.

Nothing here logs or returns the URL (for chat presets it is the credential) or the receiver's
answer body: an ``Attempt`` names the status, or (for the log only) the kind of failure.
"""

from __future__ import annotations

import hashlib
import hmac

import aiohttp
from yarl import URL

from ..netguard import REFUSED, AddressGuard, AddressRefused, check_host_literal
from .channels import Channel, PresetConfig, WebhookConfig
from .delivery import Attempt, http_attempt
from .event import NotificationEvent
from .presets import render


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of the exact body bytes under the channel's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _failure(exc: aiohttp.ClientError | OSError) -> Attempt:
    """Map a client-side failure to an attempt; only the log learns the kind of failure."""
    if isinstance(exc, AddressRefused) or (
        isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, AddressRefused)
    ):
        return Attempt.unreached(REFUSED, retry=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Attempt.unreached(f"cannot connect ({type(exc.os_error).__name__})", retry=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return Attempt.unreached("invalid URL", retry=False)
    return Attempt.unreached(f"transport error ({type(exc).__name__})", retry=True)


async def post(
    session: aiohttp.ClientSession,
    channel: Channel,
    event: NotificationEvent,
    delivery_id: str,
    *,
    guard: AddressGuard,
) -> Attempt:
    """One POST of event to channel (the caller bounds it with a timeout)."""
    cfg = channel.config
    assert isinstance(cfg, WebhookConfig | PresetConfig)
    url = URL(cfg.url, encoded=False)
    if check_host_literal(guard, url.host or "") is not None:
        return Attempt.unreached(REFUSED, retry=False)
    body = render(channel.kind, event)
    headers = {
        "Content-Type": "application/json",
        "X-DragonOps-Event": event.event,
        # Same id on every retry of one notification: receivers can drop duplicates.
        "X-DragonOps-Delivery": delivery_id,
    }
    if isinstance(cfg, WebhookConfig) and cfg.secret:
        headers["X-DragonOps-Signature"] = signature(cfg.secret, body)
    try:
        async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
            return http_attempt(resp.status, resp.headers.get("Retry-After"))
    except TimeoutError:
        raise  # the dispatcher's attempt timeout, or aiohttp's own: both count as a timeout
    except (aiohttp.ClientError, OSError) as exc:
        return _failure(exc)
