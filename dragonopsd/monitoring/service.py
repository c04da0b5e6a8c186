"""Monitor writes: validate, store, (re)schedule; and the ``[[monitors]]`` config sync."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from ..clock import now_iso
from ..model.inventory import FieldError, in_words
from ..model.monitor import Monitor, MonitorSpec
from ..problem import FieldIssue, Problem
from ..store.monitors import MonitorRow
from ..store.protocols import HistoryReader, MonitorRepo
from .conditions import DEFAULTS, ConditionError, evaluate_all, parse_all
from .engine import Engine
from .prober import Prober
from .report import TrialReport
from .views import EngineView

log = logging.getLogger("dragonopsd.monitors")
_SNAKE = re.compile(r"_([a-z])")
# A trial probe answers an open HTTP request (the dashboard's "Test now"): it may not take as
# long as a scheduled check may, whatever timeout the monitor asks for.
TRIAL_TIMEOUT = 10.0
# Trials at once per core: each may hold outbound sockets for up to TRIAL_TIMEOUT, outside the
# scheduler's [probes] concurrency, so an operator's script cannot open them without bound.
TRIAL_SLOTS = 4


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
        raise _problem(prefix + path[1:], in_words(message)) from None
    except FieldError as exc:
        raise _problem(prefix + exc.path[1:], exc.message) from None
    validate_conditions(spec, prefix)
    return spec


def _camel(key: str) -> str:
    return _SNAKE.sub(lambda m: m[1].upper(), key)


def camel_keys(table: dict[str, Any]) -> dict[str, Any]:
    """TOML tables are snake_case by habit; the API's names are camelCase. Accept both."""
    return {_camel(k): v for k, v in table.items()}


class MonitorService:
    """The API's and the config file's way to change monitors."""

    def __init__(
        self,
        engine: Engine,
        view: EngineView,
        history: HistoryReader,
        config_path: Path | None,
        prober: Prober,
    ) -> None:
        self.engine = engine
        self._prober = prober  # the engine's: same session, same SSRF guard, same secrets
        self._engine_view = view
        self.store: MonitorRepo = engine.store
        self._history = history
        self._config_path = config_path
        self._trials = asyncio.Semaphore(TRIAL_SLOTS)

    def _writable(self, row: MonitorRow) -> None:
        if row.monitor.managed_by == "config":
            where = self._config_path or "the config file"
            raise Problem(409, f"monitor {row.monitor.id} is managed by {where}; change it there")

    def view(self, row: MonitorRow) -> Monitor:
        """The public shape with the latest status filled in."""
        return msgspec.structs.replace(
            row.monitor, status=self._engine_view.status_of(row.monitor.id)
        )

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

    async def trial(self, spec: MonitorSpec) -> TrialReport:
        """Probe spec once from here without saving it: no heartbeat, status or event, just
        the result and each condition's verdict (POST /api/monitors/test). It runs on this
        core whatever locations the spec names: a trial answers the request that asked."""
        if spec.kind == "push":
            raise _problem("$.kind", "a push monitor is checked by its push calls; nothing to test")
        if spec.timeout > TRIAL_TIMEOUT:
            spec = msgspec.structs.replace(spec, given_timeout=TRIAL_TIMEOUT)
        conditions = parse_all(spec.conditions or list(DEFAULTS.get(spec.kind, ())))
        if self._trials.locked():
            raise Problem(
                429,
                f"{TRIAL_SLOTS} trials are already running on this core; try again in a moment",
                headers={"Retry-After": str(int(TRIAL_TIMEOUT))},
            )
        async with self._trials:
            result = await self._prober.probe(spec)
        context = result.context
        if result.latency_ms is not None:
            context.setdefault("RESPONSE_TIME", result.latency_ms)
        outcomes = evaluate_all(conditions, context)
        ok = all(o.success for o in outcomes)  # as the verdict judges a scheduled check
        failed = next((o for o in outcomes if not o.success), None)
        return TrialReport(
            status="up" if ok else "down",
            ok=ok,
            at=now_iso(),
            latency_ms=result.latency_ms,
            message=None if ok else result.error or (failed.detail if failed else None),
            error=result.error,
            conditions=outcomes,
            context={k: v for k, v in context.items() if k != "BODY"},  # as check reports do
        )

    async def sync_config(self, tables: list[dict[str, Any]]) -> list[str]:
        """Make the config-managed monitors match ``[[monitors]]``; returns problems found.

        Identity is the name. All or nothing: with any table invalid (or naming a server that
        does not exist) nothing is created, changed or deleted, because a table whose name
        cannot be read would otherwise take its monitor and that monitor's history with it.
        """
        wanted, problems = parse_monitor_tables(tables)
        if not problems:
            problems = await self._apply(wanted, tables)
        for p in problems:
            log.error("[[monitors]] %s", p)
        if problems:
            log.error(
                "[[monitors]] not synced (%d problem(s)): the monitors stay as they were",
                len(problems),
            )
        return problems

    async def _apply(
        self, wanted: dict[str, tuple[int, MonitorSpec]], tables: list[dict[str, Any]]
    ) -> list[str]:
        current = {r.monitor.name: r for r in await self.store.all(managed_by="config")}
        # A table named like one monitor made through the API takes it over, history and all
        # (an export loaded on the database it came from); with several, a new one is made.
        # Every row is read only when the file names a monitor it does not manage yet: a
        # restart with 25,000 monitors would otherwise decode them all a second time.
        by_api: dict[str, list[MonitorRow]] = {}
        if any(name not in current for name in wanted):
            for r in await self.store.all():
                if r.monitor.managed_by != "config":
                    by_api.setdefault(r.monitor.name, []).append(r)
        adopt = {
            f"monitors[{i}]": (by_api[name][0], spec)
            for name, (i, spec) in wanted.items()
            if name not in current and len(by_api.get(name, ())) == 1
        }
        create = {
            f"monitors[{i}]": spec
            for name, (i, spec) in wanted.items()
            if name not in current and f"monitors[{i}]" not in adopt
        }
        replace = {
            f"monitors[{i}]": (current[name], spec)
            for name, (i, spec) in wanted.items()
            if name in current and current[name].spec != spec
        }
        delete = [row for name, row in current.items() if name not in wanted]
        try:
            changed = await self.store.apply_config(create, replace | adopt, delete, adopt)
        except Problem as exc:
            spelt = []
            for issue in exc.errors:
                index = re.match(r"monitors\[(\d+)\]", issue.field)
                if index is None:
                    spelt.append(f"{issue.field}: {issue.message}")
                else:
                    spelt.append(_as_written(issue, index[0], tables[int(index[1])]))
            return spelt or [exc.detail]
        for row in changed:
            await self.engine.upsert(row, soon=False)
        for row in delete:
            self.engine.remove(row.seq)
            await self._history.delete_monitor(row.seq)
        if changed or delete:
            log.info(
                "[[monitors]] synced: %d created, %d changed, %d taken over, %d deleted",
                len(create),
                len(replace),
                len(adopt),
                len(delete),
            )
        return []


def parse_monitor_tables(
    tables: list[dict[str, Any]],
) -> tuple[dict[str, tuple[int, MonitorSpec]], list[str]]:
    """Validate ``[[monitors]]`` as the sync does (check-config calls this too): name ->
    (table index, spec), and each problem as ``monitors[i].key: message``, keys as written."""
    problems: list[str] = []
    wanted: dict[str, tuple[int, MonitorSpec]] = {}
    for i, table in enumerate(tables):
        prefix = f"monitors[{i}]"
        try:
            spec = decode_spec(camel_keys(table), prefix)
        except Problem as exc:
            problems += [_as_written(e, prefix, table) for e in exc.errors] or [exc.detail]
            continue
        if spec.name in wanted:
            first = wanted[spec.name][0]
            problems.append(f"{prefix}.name: {spec.name!r} is also monitors[{first}]'s name")
            continue
        wanted[spec.name] = (i, spec)
    return wanted, problems


def _as_written(issue: FieldIssue, prefix: str, table: dict[str, Any]) -> str:
    """The problem with its key spelt as in the file (failure_threshold, not failureThreshold)."""
    head, sep, rest = issue.field.removeprefix(prefix + ".").partition(".")
    key, bracket, index = head.partition("[")
    spelt = {_camel(k): k for k in table}
    message = issue.message.removeprefix(f"{head}: ")  # conditions[i] says where it is already
    return f"{prefix}.{spelt.get(key, key)}{bracket}{index}{sep}{rest}: {message}"
