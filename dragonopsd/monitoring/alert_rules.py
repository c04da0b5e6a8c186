"""The alert rule book: rules from the API (stored) and from ``[[alert_rules]]`` (in memory),
and which of them apply to a server.

Inheritance: a rule targets a server, an environment, a project, a client, or every server.
For each metric, the most specific level that has a rule for it wins, and every enabled rule
of that metric at that level applies (two thresholds on one level both hold). A disabled rule
still wins its level: it mutes the same metric's rules inherited from above, so one noisy
server can be exempted from its environment's ``cpu > 80``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import msgspec

from ..bus import Bus
from ..clock import now_iso
from ..model.inventory import FieldError, in_words
from ..problem import FieldIssue, Problem, not_found
from ..store.alerts import AlertRule, AlertRuleSpec, rule_of
from ..store.links import Hierarchy
from ..store.protocols import AlertRepo

# uuid5 namespace of config rules: a table keeps its id (and its incidents) across reloads.
CONFIG_NAMESPACE = uuid.UUID("0b8f7c2e-4a51-4a4f-9d6e-3c1c5a2f7e10")
_SNAKE = re.compile(r"_([a-z])")
# Bus topic of stored rule writes: every core's book reloads on another core's write.
CHANGED = "alert-rules"


def parse_alert_tables(tables: list[dict[str, Any]]) -> tuple[list[AlertRule], list[str]]:
    """``[[alert_rules]]`` as rules, and each problem as ``alert_rules[i].key: message``."""
    rules: list[AlertRule] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    stamp = now_iso()
    for i, table in enumerate(tables):
        prefix = f"alert_rules[{i}]"
        raw = {_SNAKE.sub(lambda m: m[1].upper(), k): v for k, v in table.items()}
        try:
            spec = msgspec.convert(raw, AlertRuleSpec)
        except msgspec.ValidationError as exc:
            message, _, path = str(exc).partition(" - at `")
            problems.append(f"{prefix}{path.rstrip('`')[1:]}: {in_words(message)}")
            continue
        except FieldError as exc:
            problems.append(f"{prefix}{exc.path[1:]}: {exc.message}")
            continue
        key = msgspec.json.encode(spec).decode() if spec.name is None else spec.name
        if key in seen:
            problems.append(f"{prefix}: the same rule as alert_rules[{seen[key]}]")
            continue
        seen[key] = i
        ident = str(uuid.uuid5(CONFIG_NAMESPACE, key))
        rules.append(rule_of(ident, spec, stamp, stamp, "config"))
    return rules, problems


Levels = tuple[str | None, str | None, str | None, str | None]


class RuleBook:
    """Every rule in memory; writes go to the store, then the book reloads (and, given a bus,
    tells the other cores to: the owner of a server may be another core than the writer)."""

    def __init__(self, store: AlertRepo, bus: Bus | None = None) -> None:
        self.store: AlertRepo = store
        self._bus = bus
        self._api: list[AlertRule] = []
        self._config: list[AlertRule] = []
        self._by_id: dict[str, AlertRule] = {}
        # (server, environment, project, client) ids -> the rules in force there.
        self._resolved: dict[Levels, tuple[AlertRule, ...]] = {}
        self._lock = asyncio.Lock()
        self.version = 0  # bumped on every change: the evaluator re-checks its state then

    async def load(self) -> None:
        """Read the stored rules."""
        self._install(await self.store.rules(), self._config)

    def configure(self, tables: list[dict[str, Any]]) -> list[str]:
        """Take ``[[alert_rules]]``: all of them, or none when any table is invalid."""
        rules, problems = parse_alert_tables(tables)
        if not problems:
            self._install(self._api, rules)
        return problems

    def _install(self, api: list[AlertRule], config: list[AlertRule]) -> None:
        self._api, self._config = api, config
        self._by_id = {r.id: r for r in (*config, *api)}
        self._resolved = {}
        self.version += 1

    # ---------------------------------------------------------------- reads

    def all(self) -> list[AlertRule]:
        """Every rule, config ones first, each part by name."""
        return [*sorted(self._config, key=lambda r: r.name), *self._api]

    def get(self, ident: str) -> AlertRule:
        """One rule or 404."""
        rule = self._by_id.get(ident)
        if rule is None:
            raise not_found("alert rule", ident)
        return rule

    def for_server(self, tree: Hierarchy, server_id: str) -> tuple[AlertRule, ...]:
        """The enabled rules in force on a server (see the module docstring)."""
        server = tree.servers.get(server_id)
        if server is None:
            return ()
        env = server.environment_id
        project = tree.environments.get(env, (None, None))[1]
        client = tree.projects.get(project, (None, None))[1] if project else None
        key = (server_id, env, project, client)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolved[key] = self._resolve(key)
        return found

    def _resolve(self, key: Levels) -> tuple[AlertRule, ...]:
        rules = self._by_id.values()
        winners: dict[str, int] = {}  # metric -> the most specific level with a rule for it
        placed: list[tuple[int, AlertRule]] = []
        for rule in rules:
            level = _level(rule, key)
            if level is None:
                continue
            placed.append((level, rule))
            winners[rule.metric] = min(winners.get(rule.metric, level), level)
        return tuple(
            r
            for level, r in sorted(placed, key=lambda p: (p[1].name, p[1].id))
            if r.enabled and winners[r.metric] == level
        )

    # ---------------------------------------------------------------- writes

    async def create(self, spec: AlertRuleSpec) -> AlertRule:
        """Store a rule and start evaluating it."""
        async with self._lock:
            rule = await self.store.insert(spec)
            await self._reload()
        return rule

    async def replace(self, ident: str, spec: AlertRuleSpec) -> AlertRule:
        """Overwrite a rule (PATCH merges first)."""
        self._writable(ident)
        async with self._lock:
            rule = await self.store.replace(ident, spec)
            await self._reload()
        return rule

    async def delete(self, ident: str) -> None:
        """Remove a rule; what it had open closes."""
        self._writable(ident)
        async with self._lock:
            await self.store.delete(ident)
            await self._reload()

    async def _reload(self) -> None:
        await self.load()
        if self._bus is not None:
            self._bus.publish(CHANGED, {"version": self.version}, "alert-rules.changed")

    def _writable(self, ident: str) -> None:
        rule = self.get(ident)
        if rule.managed_by == "config":
            raise Problem(
                409,
                f"alert rule {ident} is managed by [[alert_rules]] in the config file; "
                "change it there",
                errors=[FieldIssue("id", "managed by the config file")],
            )


def _level(rule: AlertRule, key: Levels) -> int | None:
    """0 (server) .. 4 (every server) when rule covers the server at key, else None."""
    for level, (target, ident) in enumerate(
        zip(
            (rule.server_id, rule.environment_id, rule.project_id, rule.client_id),
            key,
            strict=True,
        )
    ):
        if target is not None:
            return level if target == ident else None
    return 4
