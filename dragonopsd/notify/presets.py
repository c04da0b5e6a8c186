"""Payload shapes per webhook kind: the generic JSON event, and the Slack, Discord, Microsoft
Teams (Adaptive Card) and Mattermost presets, each within its service's documented limits.

Monitor names and messages come from users and probe answers, so each preset neutralises the
mention syntax of its chat (``@channel``, ``<!here>``, ``@everyone``): an outage page should not
be able to ping a whole workspace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from ..model.monitor import camel
from .event import COLOURS, NotificationEvent, facts, headline, sanitised

_encode = msgspec.json.Encoder().encode
FOOTER = "dragonopsd"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slack_escape(text: str) -> str:
    # Slack's only escapes; they also defuse <!channel> and <url|label> links in user text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _unmention(text: str) -> str:
    # A zero-width space after @ keeps the text readable but no longer a mention.
    return text.replace("@", "@\u200b")


def generic(event: NotificationEvent) -> Any:
    """The event itself, camelCase all the way down (Scope is a snake_case Struct)."""
    doc = msgspec.to_builtins(event)
    doc["scope"] = {camel(k): v for k, v in doc["scope"].items()}
    return doc


def slack(event: NotificationEvent) -> Any:
    """Slack incoming webhook: ``text`` (notification fallback) plus Block Kit blocks."""
    title = _slack_escape(headline(event))
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{label}*\n{_slack_escape(value)}", 2000)}
        for label, value in facts(event)[:10]
    ]
    return {
        "text": _cut(title, 3000),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": _cut(f"*{title}*", 3000)}},
            {"type": "section", "fields": fields},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": FOOTER}]},
        ],
    }


def discord(event: NotificationEvent) -> Any:
    """Discord webhook: ``content`` plus one embed; mentions disabled outright."""
    title = headline(event)
    embed: dict[str, Any] = {
        "title": _cut(title, 256),
        "color": COLOURS[event.event],
        "fields": [
            {"name": _cut(label, 256), "value": _cut(value, 1024), "inline": True}
            for label, value in facts(event)[:25]
        ],
        "footer": {"text": FOOTER},
    }
    if event.message or event.cause:  # Discord refuses an empty description
        embed["description"] = _cut(event.message or event.cause or "", 4096)
    return {
        "content": _cut(title, 2000),
        "allowed_mentions": {"parse": []},
        "embeds": [embed],
    }


_TEAMS_COLOUR = {
    "down": "Attention",
    "up": "Good",
    "certificate": "Warning",
    "test": "Accent",
    "reminder": "Attention",
    "acknowledged": "Accent",
    "incident": "Warning",
    "resolved": "Good",
}


def teams(event: NotificationEvent) -> Any:
    """Microsoft Teams workflow webhook: a message with one Adaptive Card (1.4)."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": _unmention(headline(event)),
                "weight": "Bolder",
                "size": "Medium",
                "color": _TEAMS_COLOUR[event.event],
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [
                    {"title": label, "value": _unmention(value)} for label, value in facts(event)
                ],
            },
        ],
    }
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }


def mattermost(event: NotificationEvent) -> Any:
    """Mattermost incoming webhook: Markdown ``text``."""
    lines = [f"**{_unmention(headline(event))}**", ""]
    lines += [f"- **{label}**: {_unmention(value)}" for label, value in facts(event)]
    return {"text": _cut("\n".join(lines), 16_000)}


RENDERERS: dict[str, Callable[[NotificationEvent], Any]] = {
    "webhook": generic,
    "slack": slack,
    "discord": discord,
    "teams": teams,
    "mattermost": mattermost,
}


def render(kind: str, event: NotificationEvent) -> bytes:
    """The JSON body a webhook of this kind receives (control characters folded out)."""
    return _encode(RENDERERS[kind](sanitised(event)))
