"""Gatus' alerting providers as our channels: the chat presets, the custom webhook, email, and
the providers Apprise speaks (as one Apprise URL each). A provider we cannot map is skipped
with the reason."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

from .plan import Plan, PlannedChannel, channel_body, entry, skip
from .report import ImportFailed

# Gatus provider name -> our channel kind (teams-workflows is Teams' current webhook).
_PRESETS = {
    "slack": "slack",
    "discord": "discord",
    "teams": "teams",
    "teams-workflows": "teams",
    "mattermost": "mattermost",
}
# Providers Apprise speaks, and how a Gatus block becomes the Apprise URL.
_APPRISE: dict[str, Callable[[dict[str, Any]], str | None]] = {
    "telegram": lambda c: f"tgram://{c['token']}/{c['id']}" if "token" in c and "id" in c else None,
    "ntfy": lambda c: (
        f"{_ntfy_scheme(c)}://{_host(c.get('url', 'https://ntfy.sh'))}/{c['topic']}"
        if "topic" in c
        else None
    ),
    "gotify": lambda c: (
        f"gotify{'s' if str(c.get('server-url', '')).startswith('https') else ''}://"
        f"{_host(c['server-url'])}/{c['token']}"
        if "server-url" in c and "token" in c
        else None
    ),
    "pushover": lambda c: (
        f"pover://{c['user-key']}@{c['application-token']}"
        if "user-key" in c and "application-token" in c
        else None
    ),
    "pagerduty": lambda c: (
        f"pagerduty://{c['integration-key']}@{c['integration-key']}"
        if "integration-key" in c
        else None
    ),
    "opsgenie": lambda c: f"opsgenie://{c['api-key']}" if "api-key" in c else None,
    "google-chat": lambda c: _gchat(str(c.get("webhook-url", ""))),
}


def _host(url: str) -> str:
    parts = urllib.parse.urlsplit(str(url))
    return (parts.netloc + parts.path).rstrip("/")


def _ntfy_scheme(c: dict[str, Any]) -> str:
    return "ntfy" if str(c.get("url", "https")).startswith("http:") else "ntfys"


def _gchat(url: str) -> str | None:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    space = parts.path.rstrip("/").split("/")
    if "key" not in query or "token" not in query or len(space) < 3:
        return None
    return f"gchat://{space[-2]}/{query['key'][0]}/{query['token'][0]}"


def mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ImportFailed(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def provider(plan: Plan, provider: str, conf: dict[str, Any], users: dict[str, list[str]]) -> None:
    name = f"gatus {provider}"
    notes: list[str] = []
    raw: dict[str, Any] = {"name": name}
    if provider in _PRESETS:
        raw |= {"kind": _PRESETS[provider], "config": {"url": conf.get("webhook-url", "")}}
    elif provider == "custom":
        raw |= {"kind": "webhook", "config": {"url": conf.get("url", "")}}
        notes.append(
            "custom: our webhook posts the event as JSON; Gatus' method, body and "
            "headers templates are dropped"
        )
    elif provider == "email":
        to = [a.strip() for a in str(conf.get("to", "")).split(",") if a.strip()]
        config: dict[str, Any] = {
            "host": conf.get("host"),
            "port": conf.get("port") or 587,
            "from": conf.get("from"),
            "to": to,
        }
        if conf.get("password"):
            config |= {
                "username": conf.get("username") or conf.get("from"),
                "password": str(conf["password"]),
            }
        if mapping(conf.get("client"), "alerting.email.client").get("insecure"):
            config["verifyTls"] = False
        if config["port"] == 465:
            config["security"] = "tls"
        raw |= {"kind": "email", "config": config}
    elif provider in _APPRISE:
        url = _APPRISE[provider](conf)
        if url is None:
            skip(plan, "channel", name, f"alerting.{provider}: a required field is missing")
            return
        raw |= {"kind": "apprise", "config": {"urls": [url]}}
        notes.append(f"{provider} delivered through Apprise")
    else:
        skip(
            plan,
            "channel",
            name,
            f"provider {provider} has no channel kind or Apprise "
            "mapping here: add it as an apprise channel by hand",
        )
        return
    if conf.get("overrides"):
        notes.append("overrides per group dropped: one channel per provider")
    monitors = users.get(provider, [])
    if not monitors:
        raw["enabled"] = False
        notes.append("no endpoint alerts through it: imported disabled")
    body = channel_body(raw)
    if isinstance(body, str):
        skip(plan, "channel", name, f"not a valid channel here: {body}")
        return
    planned = PlannedChannel(body=body, entry=entry("channel", name, notes), scope_all=not monitors)
    plan.channels.append(planned)
    for monitor in plan.monitors:
        if monitor.entry.name in monitors:
            monitor.channels.append(name)
