"""DRAGONOPS_<SECTION>__<KEY> overrides, each read by the type of the key it sets: a string key
takes the variable's text as written, so an all-digit secret stays a string."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

import msgspec

ENV_PREFIX = "DRAGONOPS_"

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _env_kind(tp: Any) -> str:
    """How an env override for a key of type tp is read: str, int, float, bool or toml."""
    info = msgspec.inspect.type_info(tp)
    if isinstance(info, msgspec.inspect.UnionType):  # e.g. `int | None`: the non-None part
        kinds = {_env_kind_of(t) for t in info.types if not isinstance(t, msgspec.inspect.NoneType)}
        return "str" if "str" in kinds else kinds.pop() if len(kinds) == 1 else "toml"
    return _env_kind_of(info)


def _env_kind_of(info: msgspec.inspect.Type) -> str:
    if isinstance(info, msgspec.inspect.LiteralType):
        values = info.values
        if all(isinstance(v, str) for v in values):
            return "str"
        return "int" if all(isinstance(v, int) for v in values) else "toml"
    kinds: dict[type[msgspec.inspect.Type], str] = {
        msgspec.inspect.StrType: "str",
        msgspec.inspect.IntType: "int",
        msgspec.inspect.FloatType: "float",
        msgspec.inspect.BoolType: "bool",
    }
    return kinds.get(type(info), "toml")


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "toml": 'a TOML value (an array is written ["a", "b"])',
}


def _env_value(text: str, kind: str) -> Any:
    """An env override read by its key's type: a string key takes the text as it is (digits,
    quotes and all); numbers and booleans must be exactly that; lists and tables are TOML.
    Raises ValueError (without the value: it may be a secret set in the wrong variable)."""
    if kind == "str":
        return text
    word = text.strip()
    if kind == "int" and re.fullmatch(r"[+-]?\d+", word):
        return int(word)
    if kind == "float" and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", word):
        return float(word)
    if kind == "bool" and word.lower() in _TRUE | _FALSE:
        return word.lower() in _TRUE
    if kind == "toml":
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            pass
    raise ValueError(f"expected {_EXPECTED[kind]}")


def apply_env(
    raw: dict[str, Any],
    env: Mapping[str, str],
    sections: Mapping[str, type[msgspec.Struct]],
    problems: list[str],
) -> dict[str, str]:
    """Put DRAGONOPS_<SECTION>__<KEY> values into raw, each read by its key's type in
    sections; returns dotted key -> variable name (errors then say where a value came from)."""
    origins: dict[str, str] = {}
    for name, text in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in sections:
            problems.append(f"{name}: unknown section '{section}'")
            continue
        fields = {f.encode_name: f for f in msgspec.structs.fields(sections[section])}
        if key not in fields:
            problems.append(f"{name}: unknown key '{key}' in [{section}]")
            continue
        table = raw.setdefault(section, {})
        if not isinstance(table, dict):
            continue  # the file's own problem is reported for the section
        try:
            table[key] = _env_value(text, _env_kind(fields[key].type))
        except ValueError as exc:
            problems.append(f"{name}: {exc} for {section}.{key}")
            table.pop(key, None)  # one problem per key: the file's value is not checked again
            continue
        origins[f"{section}.{key}"] = name
    return origins
