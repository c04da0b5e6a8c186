"""Monitors as the ``[[monitors]]`` tables the config file accepts, in TOML or JSON.

Each table holds what differs from a new monitor's defaults, spelt as the API spells it
(camelCase keys are accepted in [[monitors]]), so loading the export with ``--config`` gives
the same monitors back. Credentials stay what they are in the monitor: ``${secret:NAME}``
references to the secrets store, never the values behind them.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from ..model.monitor import MonitorSpec

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
_DEFAULTS = msgspec.to_builtins(MonitorSpec(name="x", kind="push"))


def table(spec: MonitorSpec) -> dict[str, Any]:
    """The spec as a [[monitors]] table: name and kind, then each field not at its default."""
    wire = msgspec.to_builtins(spec)
    out = {"name": wire.pop("name"), "kind": wire.pop("kind")}
    for key, value in wire.items():
        if value is not None and (key not in _DEFAULTS or _DEFAULTS[key] != value):
            out[key] = value
    return out


def as_json(specs: list[MonitorSpec]) -> str:
    """{"monitors": [...]}: the same tables as JSON."""
    return json.dumps({"monitors": [table(s) for s in specs]}, indent=2, ensure_ascii=False)


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


def as_toml(specs: list[MonitorSpec]) -> str:
    """[[monitors]] tables, one per monitor, ready for ``--config``."""
    parts = ["# dragonopsd export: load with --config (monitors are then managed by the file)"]
    for spec in specs:
        lines = ["", "[[monitors]]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table(spec).items()]
        parts.append("\n".join(lines))
    return "\n".join(parts) + "\n"
