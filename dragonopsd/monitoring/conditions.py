"""Gatus-style monitor conditions: parsed once into an immutable tree, evaluated after each probe.

No eval: a hand-written scanner and recursive-descent parser build the tree, and every check
(placeholder kinds, literal types, durations) that can happen at parse time happens there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from .condition_parser import PLACEHOLDERS, _Parser
from .condition_tree import Call, Comparison, ConditionError, Ref, _Env

__all__ = [
    "DEFAULTS",
    "PLACEHOLDERS",
    "Condition",
    "ConditionError",
    "ConditionResult",
    "evaluate_all",
    "parse",
    "parse_all",
]

MAX_LENGTH: Final = 500
MAX_CONDITIONS: Final = 32

DEFAULTS: dict[str, tuple[str, ...]] = {
    "http": ("[STATUS] < 400",),
    "tcp": ("[CONNECTED] == true",),
    "tls": ("[CONNECTED] == true",),
    "dns": ("[DNS_RCODE] == NOERROR",),
    "icmp": ("[CONNECTED] == true",),
    "push": (),
    "postgres": ("[CONNECTED] == true",),
    "mysql": ("[CONNECTED] == true",),
    "redis": ("[CONNECTED] == true",),
    "mqtt": ("[CONNECTED] == true",),
    "amqp": ("[CONNECTED] == true",),
    "websocket": ("[CONNECTED] == true",),
    "grpc": ("[GRPC_STATUS] == SERVING",),
}


# gc=False: three plain values, no cycle possible; and a tuple holding structs the collector
# could track is never untracked, so each monitor's last outcomes stayed in every collection.
class ConditionResult(msgspec.Struct, frozen=True, gc=False):
    """One condition's verdict after a probe, with the values that decided it."""

    condition: str
    success: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed condition; build it only through parse(). Equal when the source text is."""

    source: str
    tree: Comparison = field(repr=False, compare=False)
    placeholders: frozenset[str] = field(repr=False, compare=False)

    def evaluate(self, context: Mapping[str, Any]) -> ConditionResult:
        """Judge one probe result; never raises, a failure says why in detail."""
        return self._run(_Env(context))

    def _run(self, env: _Env) -> ConditionResult:
        try:
            ok, detail = self.tree.check(env)
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            # Context values come from probes, not from us: an odd type fails the condition.
            ok, detail = False, f"cannot evaluate: {type(exc).__name__}"
        return ConditionResult(self.source, ok, detail)


def parse(text: str) -> Condition:
    """Parse one condition; raises ConditionError pointing at the offending character."""
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"condition is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    tree = _Parser(text).condition()
    names = {tree.lhs.name if isinstance(tree.lhs, Ref) else tree.lhs.ref.name}
    if isinstance(tree.rhs, Ref | Call):
        names.add(tree.rhs.name if isinstance(tree.rhs, Ref) else tree.rhs.ref.name)
    return Condition(text.strip(), tree, frozenset(names))


def parse_all(texts: Sequence[str]) -> list[Condition]:
    """Parse a monitor's conditions; errors name the failing index as conditions[i]."""
    if len(texts) > MAX_CONDITIONS:
        raise ConditionError(f"at most {MAX_CONDITIONS} conditions per monitor", 0)
    parsed = []
    for index, text in enumerate(texts):
        try:
            parsed.append(parse(text))
        except ConditionError as exc:
            message = f"conditions[{index}]: {exc.message}"
            raise ConditionError(message, exc.position, index) from None
    return parsed


def evaluate_all(
    conditions: Sequence[Condition], context: Mapping[str, Any]
) -> tuple[ConditionResult, ...]:
    """Evaluate every condition against one probe result, decoding the body at most once."""
    env = _Env(context)
    return tuple([condition._run(env) for condition in conditions])
