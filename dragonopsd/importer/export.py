"""Monitors, maintenance windows and notification channels as the ``[[monitors]]``,
``[[maintenance]]`` and ``[[notifications]]`` tables the config file accepts, in TOML or JSON.

Each table holds what differs from a new object's defaults, spelt as the API spells it
(camelCase keys are accepted in the file), so loading the export with ``--config`` gives the
same set back. A window's or channel's monitors are named by name (``scope.monitors``), since
ids differ from one database to the next. Credentials are ``${secret:NAME}`` references to the
secrets store, never the values behind them (``channel_secrets`` moves a channel's own
credentials there first).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from ..model.monitor import MonitorSpec
from ..notify.refs import credentials, ref_name
from ..secrets.vault import DEFAULT_ENV, VaultService
from ..store.maintenance import Window, spec_body
from ..store.notifications import StoredChannel

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_DEFAULTS = msgspec.to_builtins(MonitorSpec(name="x", kind="push"))
_ALL_EVENTS = ["down", "up", "certificate"]
_SLUG = re.compile(r"[^A-Z0-9]+")
LISTS = ("monitors", "maintenance", "notifications")
Names = Mapping[str, str]  # monitor id -> name


def table(spec: MonitorSpec) -> dict[str, Any]:
    """The spec as a [[monitors]] table: name and kind, then each field not at its default."""
    wire = msgspec.to_builtins(spec)
    out = {"name": wire.pop("name"), "kind": wire.pop("kind")}
    for key, value in wire.items():
        if value is not None and (key not in _DEFAULTS or _DEFAULTS[key] != value):
            out[key] = value
    return out


def _scope(scope: dict[str, Any], names: Names) -> dict[str, Any]:
    """A scope with its monitors by name (ids no monitor has stay ids) and empty lists left
    out."""
    out: dict[str, Any] = {"all": True} if scope.get("all") else {}
    ids = [str(i) for i in scope.get("monitorIds", [])]
    if named := [names[i] for i in ids if i in names]:
        out["monitors"] = list(dict.fromkeys(named))
    if dangling := [i for i in ids if i not in names]:
        out["monitorIds"] = dangling
    for key, value in scope.items():
        if key not in ("all", "monitorIds") and value:
            out[key] = value
    return out


def window_table(window: Window, names: Names) -> dict[str, Any]:
    """The window as a [[maintenance]] table."""
    body = spec_body(window)
    out = {"name": body.pop("name"), "kind": body.pop("kind")}
    scope = body.pop("scope")
    for key, value in body.items():
        if value is not None and not (key == "enabled" and value is True):
            out[key] = value
    out["scope"] = _scope(scope, names)
    return out


def channel_table(row: StoredChannel, names: Names) -> dict[str, Any]:
    """The channel as a [[notifications]] table; its credentials must be references by now."""
    if any(ref_name(v) is None for _, v in credentials(row.config)):
        raise ValueError(f"channel {row.name!r} still holds credentials")  # a bug, not input
    out: dict[str, Any] = {"name": row.name, "kind": row.kind}
    if not row.enabled:
        out["enabled"] = False
    if sorted(row.events) != sorted(_ALL_EVENTS):
        out["events"] = list(row.events)
    scope = _scope(row.scope, names)
    if scope != {"all": True}:
        out["scope"] = scope
    out["config"] = {k: v for k, v in row.config.items() if v is not None}
    return out


def secret_key(channel: str, field: str, taken: set[str]) -> str:
    """``CHANNEL_ON_CALL_URL``: the secret a channel's credential is stored as (a suffix when
    two channel names make the same key)."""
    base = _SLUG.sub("_", channel.upper()).strip("_")[:80] or "UNNAMED"
    what = re.sub(r"\[(\d+)\]", lambda m: f"_{int(m[1]) + 1}", field).upper()
    key, n = f"CHANNEL_{base}_{what}", 1
    while key in taken:
        n += 1
        key = f"CHANNEL_{base}_{n}_{what}"
    taken.add(key)
    return key


async def _put(vault: VaultService, key: str, value: str) -> str:
    """Store value as the default env's secret key: 'created', 'updated' or 'kept'."""
    cursor: str | None = None
    while True:
        items, cursor = await vault.list(DEFAULT_ENV, key, 500, cursor)
        for meta in items:
            if meta.key == key:
                if (await vault.reveal(meta.id))[1] == value:
                    return "kept"
                await vault.update(meta.id, value, msgspec.UNSET)
                return "updated"
        if cursor is None:
            break
    await vault.create(key, DEFAULT_ENV, value, "a notification channel's credential (export)")
    return "created"


async def channel_secrets(
    vault: VaultService, rows: list[StoredChannel]
) -> tuple[list[StoredChannel], list[str]]:
    """The channels with every credential held in clear moved into the secrets store and
    replaced by its reference; and one note per secret written (names only, never values)."""
    taken: set[str] = set()
    out, notes = [], []
    for row in rows:
        config = dict(row.config)
        for path, value in credentials(config):
            if ref_name(value) is not None:
                continue
            key = secret_key(row.name, path, taken)
            done = await _put(vault, key, str(value))
            notes.append(f"channel {row.name!r}: config.{path} {done} as secret {key}")
            ref = f"${{secret:{key}}}"
            field, _, index = path.partition("[")
            if index:
                items = list(config[field])
                items[int(index.rstrip("]"))] = ref
                config[field] = items
            else:
                config[field] = ref
        out.append(msgspec.structs.replace(row, config=config))
    return out, notes


def document(
    monitors: list[MonitorSpec], windows: list[Window], channels: list[StoredChannel], names: Names
) -> dict[str, list[dict[str, Any]]]:
    """Every list's tables, in name order."""
    return {
        "monitors": [table(s) for s in sorted(monitors, key=lambda s: s.name)],
        "maintenance": [window_table(w, names) for w in sorted(windows, key=lambda w: w.name)],
        "notifications": [channel_table(c, names) for c in sorted(channels, key=lambda c: c.name)],
    }


def as_json(doc: dict[str, list[dict[str, Any]]]) -> str:
    """{"monitors": [...], "maintenance": [...], "notifications": [...]}."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key, ensure_ascii=False)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string (both escape \" \\ and controls as \uXXXX).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def as_toml(doc: dict[str, list[dict[str, Any]]]) -> str:
    """[[monitors]], [[maintenance]] and [[notifications]] tables, ready for ``--config``."""
    parts = [
        "# dragonopsd export: load with --config (these are then managed by the file).",
        "# ${secret:NAME} names a secret in the secrets store: the values are not in this file.",
    ]
    for name in LISTS:
        for item in doc.get(name, []):
            lines = ["", f"[[{name}]]"]
            lines += [f"{_key(k)} = {_value(v)}" for k, v in item.items() if k != "config"]
            if "config" in item:  # a channel's config reads better as a table of its own
                lines.append(f"[{name}.config]")
                lines += [f"{_key(k)} = {_value(v)}" for k, v in item["config"].items()]
            parts.append("\n".join(lines))
    return "\n".join(parts) + "\n"
