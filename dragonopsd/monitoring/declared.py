"""``[[maintenance]]`` windows and ``[[notifications]]`` channels of the config file, validated
as the API validates their bodies (check-config and the sync both call these).

A table is spelt as the API spells its body (snake_case keys are accepted too, as in
``[[monitors]]``). Two things differ, so that a file means the same on any database:

* ``scope.monitors`` names monitors by name (ids differ from one database to the next); the
  sync turns the names into ids, and ``monitorIds`` still works for ids;
* a channel's credentials (``config.url``, ``urls``, ``secret``, ``password``) are each one
  ``${secret:NAME}`` reference to the secrets store, never a value: a config file is read by
  more people than the secrets are.

Problems read ``maintenance[i].key: message`` with the key as written in the file.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, cast

import msgspec

from ..model.inventory import FieldError, in_words
from ..notify.channels import ChannelBody, ChannelCreate
from ..notify.refs import CREDENTIALS, credentials, ref_name, stand_ins
from ..store.maintenance import WindowSpec
from ..store.notifications import ChannelFields

_SNAKE = re.compile(r"_([a-z])")
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED = re.compile(r"(?:unknown|missing required) field `([^`]+)`")
NAMES_KEY = "monitors"  # scope.monitors: monitors by name
_CREATE = cast("type[ChannelBody]", ChannelCreate)
MonitorIds = dict[str, list[str]]  # monitor name -> the ids of the monitors of that name


def _camel(key: str) -> str:
    return _SNAKE.sub(lambda m: m[1].upper(), key)


def _camel_keys(table: dict[str, Any]) -> dict[str, Any]:
    return {_camel(k): v for k, v in table.items()}


@dataclass(frozen=True)
class Declared:
    """One valid table: where it is, its API body with ids in place of names (``body``) and
    the monitor names of its scope, turned into ids by ``with_monitors``."""

    index: int
    body: dict[str, Any]
    names: tuple[str, ...]

    def with_monitors(self, ids: MonitorIds) -> tuple[dict[str, Any], list[str]]:
        """The body with scope.monitors as ids, and the names no monitor has."""
        missing = [name for name in self.names if name not in ids]
        found = [i for name in self.names for i in ids.get(name, [])]
        scope = dict(self.body["scope"])
        scope["monitorIds"] = list(dict.fromkeys([*scope.get("monitorIds", []), *found]))
        return {**self.body, "scope": scope}, missing


def _spelt(path: str, table: dict[str, Any]) -> str:
    """$.scope.clientIds as written in the table (scope.client_ids), one level per step."""
    out: list[str] = []
    node: Any = table
    for part in path.removeprefix("$").lstrip(".").split("."):
        if not part:
            continue
        key, bracket, rest = part.partition("[")
        written = key
        if isinstance(node, dict):
            written = next((k for k in node if _camel(k) == key), key)
            node = node.get(written)
        else:
            node = None
        out.append(written + bracket + rest)
    return ".".join(out)


def _problem(prefix: str, exc: Exception, table: dict[str, Any]) -> str:
    if isinstance(exc, FieldError):
        path, message = exc.path, exc.message
    else:
        m = _AT.match(str(exc))
        assert m is not None
        message, path = in_words(m["msg"]), m["path"] or "$"
        named = _NAMED.search(message)
        if named:
            path = f"{path}.{named[1]}"
            message = "unknown key" if message.startswith("Object contains") else "required"
    where = _spelt(path, table)
    return f"{prefix}{'.' + where if where else ''}: {message}"


def _scope(table: dict[str, Any], prefix: str, problems: list[str]) -> tuple[Any, tuple[str, ...]]:
    """The scope in API spelling without scope.monitors, and those names."""
    scope = table.get("scope")
    if not isinstance(scope, dict):
        return scope, ()
    scope = _camel_keys(scope)
    names = scope.pop(NAMES_KEY, [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        problems.append(f"{prefix}.scope.monitors: expected a list of monitor names")
        return scope, ()
    if names:
        # Stand-in ids while validating, so a scope of names alone is not "empty".
        scope = {**scope, "monitorIds": [*scope.get("monitorIds", []), *map(_stand_in, names)]}
    return scope, tuple(dict.fromkeys(names))


def _duplicate(name: str, prefix: str, seen: dict[str, Declared]) -> str | None:
    """The problem when an earlier table has the same name (names are the identity)."""
    if name in seen:
        list_name = prefix.partition("[")[0]
        return f"{prefix}.name: {name!r} is also {list_name}[{seen[name].index}]'s name"
    return None


def parse_window_tables(tables: list[dict[str, Any]]) -> tuple[dict[str, Declared], list[str]]:
    """Validate ``[[maintenance]]``: name -> the window, and the problems found."""
    wanted: dict[str, Declared] = {}
    problems: list[str] = []
    for i, table in enumerate(tables):
        prefix = f"maintenance[{i}]"
        before = len(problems)
        scope, names = _scope(table, prefix, problems)
        doc = {**_camel_keys(table), "scope": scope} if "scope" in table else _camel_keys(table)
        try:
            spec = msgspec.convert(doc, WindowSpec)
        except (msgspec.ValidationError, FieldError) as exc:
            problems.append(_problem(prefix, exc, table))
            continue
        if len(problems) > before:
            continue
        if twin := _duplicate(spec.name, prefix, wanted):
            problems.append(twin)
            continue
        body = msgspec.to_builtins(spec)
        body["scope"]["monitorIds"] = _listed(body["scope"], names)
        wanted[spec.name] = Declared(i, body, names)
    return wanted, problems


def parse_channel_tables(tables: list[dict[str, Any]]) -> tuple[dict[str, Declared], list[str]]:
    """Validate ``[[notifications]]``: name -> the channel, and the problems found."""
    wanted: dict[str, Declared] = {}
    problems: list[str] = []
    for i, table in enumerate(tables):
        prefix = f"notifications[{i}]"
        before = len(problems)
        scope, names = _scope(table, prefix, problems)
        doc = _camel_keys(table)
        if "scope" in table:
            doc["scope"] = scope
        config = doc.get("config")
        if isinstance(config, dict):
            config = _camel_keys(config)
            for path, value in credentials(config):
                if ref_name(value) is None:
                    problems.append(
                        f"{prefix}.config.{path}: a credential: write a ${{secret:NAME}} "
                        "reference and keep the value in the secrets store"
                    )
            doc["config"] = stand_ins(config)
        if len(problems) > before:
            continue
        try:
            body = msgspec.convert(doc, _CREATE)
        except (msgspec.ValidationError, FieldError) as exc:
            problems.append(_problem(prefix, exc, table))
            continue
        if twin := _duplicate(body.name, prefix, wanted):
            problems.append(twin)
            continue
        wire = msgspec.to_builtins(body)
        assert isinstance(config, dict)  # a valid body has one
        # Defaults filled in as the API stores them, the references put back in place.
        wire["config"] |= {k: config[k] for k in CREDENTIALS if k in config}
        wire["scope"]["monitorIds"] = _listed(wire["scope"], names)
        wanted[body.name] = Declared(i, wire, names)
    return wanted, problems


def _listed(scope: dict[str, Any], names: tuple[str, ...]) -> list[str]:
    """The monitor ids the table listed itself, without its names' stand-ins."""
    stand_in = {_stand_in(n) for n in names}
    return [str(m) for m in scope.get("monitorIds", []) if str(m) not in stand_in]


def _stand_in(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def channel_fields(body: dict[str, Any]) -> ChannelFields:
    """The row a declared channel's body (names turned to ids) stores."""
    return ChannelFields(
        name=body["name"],
        kind=body["kind"],
        enabled=body["enabled"],
        events=list(body["events"]),
        scope=body["scope"],
        config=body["config"],
    )


def window_spec(body: dict[str, Any]) -> WindowSpec:
    """The spec a declared window's body (names turned to ids) stores."""
    return msgspec.convert(body, WindowSpec)
