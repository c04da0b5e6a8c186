"""Each key of a decoded config document checked by its type, so every problem is listed at
once as ``key: message`` (the whole-document decode would stop at the first)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

# The [[...]] arrays of tables; the layers that own their shapes validate each table.
TABLE_LISTS = ("monitors", "alert_rules", "maintenance", "notifications")


def check_keys(
    raw: dict[str, Any],
    sections: Mapping[str, type[msgspec.Struct]],
    origins: Mapping[str, str],
    problems: list[str],
) -> None:
    """Append a problem for every unknown section or key and every value of the wrong type."""
    for name, table in raw.items():
        if name in TABLE_LISTS:
            if not isinstance(table, list) or not all(isinstance(m, dict) for m in table):
                problems.append(f"{name}: expected [[{name}]] tables")
        elif name not in sections:
            problems.append(f"{name}: unknown section")
        else:
            _check_section(sections[name], name, table, problems, origins)


def _check_section(
    cls: type[msgspec.Struct],
    name: str,
    table: Any,
    problems: list[str],
    origins: Mapping[str, str],
) -> None:
    if not isinstance(table, dict):
        problems.append(f"{name}: expected a table, got {type(table).__name__}")
        return
    fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
    for key, value in table.items():
        field = fields.get(key)
        if field is None:
            problems.append(f"{name}.{key}: unknown key")
            continue
        try:
            msgspec.convert(value, field.type)
        except msgspec.ValidationError as exc:
            message = str(exc).split(" - at `", 1)[0]
            origin = origins.get(f"{name}.{key}")
            problems.append(f"{name}.{key}: {message}" + (f" (from {origin})" if origin else ""))
