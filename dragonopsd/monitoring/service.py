"""Monitor writes: validate, store, (re)schedule; and the ``[[monitors]]`` config sync."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from ..model import FieldError
from ..monitor import Monitor, MonitorSpec
from ..problem import FieldIssue, Problem
from ..store.history_query import HistoryQuery
from ..store.monitors import MonitorRow
from .conditions import ConditionError, parse_all
from .engine import Engine

log = logging.getLogger("dragonopsd.monitors")
_SNAKE = re.compile(r"_([a-z])")


def _problem(field: str, message: str) -> Problem:
    return Problem(422, f"{field}: {message}", errors=[FieldIssue(field, message)])


def validate_conditions(spec: MonitorSpec, prefix: str = "$") -> None:
    """Parse the conditions once at save time; 422 naming the condition and position."""
    try:
        parse_all(spec.conditions)
    except ConditionError as exc:
        index = getattr(exc, "index", None)
        field = f"{prefix}.conditions" + (f"[{index}]" if index is not None else "")
        raise _problem(field, f"{exc.message} (at position {exc.position})") from None


def decode_spec(raw: Any, prefix: str = "$") -> MonitorSpec:
    """Validate a JSON object as a MonitorSpec, conditions included; 422 naming the field."""
    try:
        spec = msgspec.convert(raw, MonitorSpec)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, path = text.partition(" - at `")
        path = path.rstrip("`") or "$"
        named = re.search(r"(?:unknown|missing required) field `([^`]+)`", message)
        if named:
            path = f"{path}.{named[1]}"
        raise _problem(prefix + path[1:], message) from None
    except FieldError as exc:
        raise _problem(prefix + exc.path[1:], exc.message) from None
    validate_conditions(spec, prefix)
    return spec


def camel_keys(table: dict[str, Any]) -> dict[str, Any]:
    """TOML tables are snake_case by habit; the API's names are camelCase. Accept both."""
    return {_SNAKE.sub(lambda m: m[1].upper(), k): v for k, v in table.items()}


class MonitorService:
    """The API's and the config file's way to change monitors."""

    def __init__(self, engine: Engine, history: HistoryQuery, config_path: Path | None) -> None:
        self.engine = engine
        self.store = engine.store
        self._history = history
        self._config_path = config_path

    def _writable(self, row: MonitorRow) -> None:
        if row.monitor.managed_by == "config":
            where = self._config_path or "the config file"
            raise Problem(409, f"monitor {row.monitor.id} is managed by {where}; change it there")

    def view(self, row: MonitorRow) -> Monitor:
        """The public shape with the latest status filled in."""
        return msgspec.structs.replace(row.monitor, status=self.engine.status_of(row.monitor.id))

    async def create(self, spec: MonitorSpec) -> Monitor:
        """Store and schedule a new monitor."""
        row = await self.store.create(spec)
        await self.engine.upsert(row)
        return self.view(row)

    async def update(
        self,
        ident: str,
        patch: dict[str, Any],
        precondition: Callable[[MonitorRow], None] | None = None,
    ) -> Monitor:
        """JSON merge-patch onto the stored spec, validated as a whole; precondition (the
        client's If-Match) is checked on the row as it is when the write commits."""
        row = await self.store.get(ident)
        self._writable(row)
        merged = msgspec.to_builtins(row.spec)
        for key, value in patch.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        row = await self.store.replace(ident, decode_spec(merged), precondition)
        await self.engine.upsert(row)
        return self.view(row)

    async def delete(
        self, ident: str, precondition: Callable[[MonitorRow], None] | None = None
    ) -> None:
        """Stop, delete, and drop the monitor's history."""
        row = await self.store.get(ident)
        self._writable(row)
        await self.store.delete(ident, precondition)
        self.engine.remove(row.seq)
        await self._history.delete_monitor(row.seq)

    async def sync_config(self, tables: list[dict[str, Any]]) -> list[str]:
        """Make the config-managed monitors match ``[[monitors]]``; returns problems found.

        Identity is the name; an invalid table is reported and skipped, leaving its previous
        version running, so one typo does not take monitors down.
        """
        problems: list[str] = []
        wanted: dict[str, MonitorSpec] = {}
        for i, table in enumerate(tables):
            try:
                spec = decode_spec(camel_keys(table), f"monitors[{i}]")
            except Problem as exc:
                problems.append(exc.detail)
                continue
            if spec.name in wanted:
                problems.append(f"monitors[{i}].name: duplicate name {spec.name!r}")
                continue
            wanted[spec.name] = spec
        current = {
            r.monitor.name: r for r in await self.store.all() if r.monitor.managed_by == "config"
        }
        new = [spec for name, spec in wanted.items() if name not in current]
        try:
            created = await self.store.create_many(new, "config")
        except Problem:  # e.g. a serverId that does not exist: find which, one by one
            created = []
            for spec in new:
                try:
                    created.append(await self.store.create(spec, managed_by="config"))
                except Problem as exc:
                    problems.append(f"monitors ({spec.name}): {exc.detail}")
        for row in created:
            await self.engine.upsert(row, soon=False)
        for name, spec in wanted.items():
            if name in current and current[name].spec != spec:
                try:
                    row = await self.store.replace(current[name].monitor.id, spec)
                except Problem as exc:
                    problems.append(f"monitors ({name}): {exc.detail}")
                else:
                    await self.engine.upsert(row, soon=False)
        invalid_names = {t.get("name") for t in tables} - set(wanted)
        for name, row in current.items():
            if name not in wanted and name not in invalid_names:
                await self.store.delete(row.monitor.id)
                self.engine.remove(row.seq)
                await self._history.delete_monitor(row.seq)
        for p in problems:
            log.error("config monitor skipped: %s", p)
        return problems
