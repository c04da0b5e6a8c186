"""Conditions give the verdict Gatus gives: one table per rule where we used to differ.

Each row is (condition, probe context, verdict Gatus reaches per its documentation and tests).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from dragonopsd.monitoring.conditions import ConditionError, parse


def body(value: Any) -> bytes:
    return msgspec.json.encode(value)


def verdict(text: str, ctx: dict[str, Any]) -> bool:
    return parse(text).evaluate(ctx).success


# Numbers written as Go integer literals in a body (hex, octal, binary) compare as integers.
INTEGER_FORMS: list[tuple[str, dict[str, Any], bool]] = [
    ("[BODY].v == 1", {"BODY": body({"v": "0x1"})}, True),
    ("[BODY].v == 0x1", {"BODY": body({"v": "0x1"})}, True),
    ("[BODY].v == 31", {"BODY": body({"v": "0x1F"})}, True),
    ("[BODY].v == 30", {"BODY": body({"v": "0x1F"})}, False),
    ("[BODY].v == 12648243", {"BODY": body({"v": "0xC0ff33"})}, True),
    ("[BODY].v > 0", {"BODY": body({"v": "0x01"})}, True),
    ("[BODY].v >= 2", {"BODY": body({"v": "0x01"})}, False),
    ("[BODY].v == 2", {"BODY": body({"v": "0o2"})}, True),
    ("[BODY].v == 0o2", {"BODY": body({"v": "0o2"})}, True),
    ("[BODY].v > 7", {"BODY": body({"v": "0o10"})}, True),
    ("[BODY].v == 2", {"BODY": body({"v": "0b0010"})}, True),
    ("[BODY].v == 0b10", {"BODY": body({"v": "0b0010"})}, True),
    ("[BODY].v < 1", {"BODY": body({"v": "0b1"})}, False),
    ("[BODY].v == 8", {"BODY": body({"v": "010"})}, True),  # Go's legacy octal
    ("[BODY].v == 1000", {"BODY": body({"v": "1_000"})}, True),
    ("[BODY].v == 16", {"BODY": body({"v": 16})}, True),
    ("[BODY] == 255", {"BODY": b"0xff"}, True),
    ("[STATUS] == 0xC8", {"STATUS": 200}, True),
    ("[RESPONSE_TIME] < 0x1F4", {"RESPONSE_TIME": 499}, True),
    ("[BODY].v == 0x1", {"BODY": body({"v": "0xg"})}, False),  # not an integer: compared as text
    ("[BODY].v == 0xg", {"BODY": body({"v": "0xg"})}, True),
]

# No certificate (plain http, tcp, a failed handshake) reads as 0, as Gatus resolves it.
CERTIFICATE: list[tuple[str, dict[str, Any], bool]] = [
    ("[CERTIFICATE_EXPIRATION] == 0", {"STATUS": 200}, True),
    ("[CERTIFICATE_EXPIRATION] > 48h", {"STATUS": 200}, False),
    ("[CERTIFICATE_EXPIRATION] < 1h", {"STATUS": 200}, True),
    ("[CERTIFICATE_EXPIRATION] > 48h", {"CERTIFICATE_EXPIRATION": 50 * 3600.0}, True),
]

# A duration may be a bare number of milliseconds, or any unit Go's ParseDuration reads.
DURATIONS: list[tuple[str, dict[str, Any], bool]] = [
    ("[CERTIFICATE_EXPIRATION] > 2419200000", {"CERTIFICATE_EXPIRATION": 60 * 86400.0}, True),
    ("[CERTIFICATE_EXPIRATION] > 2419200000", {"CERTIFICATE_EXPIRATION": 14 * 86400.0}, False),
    ("[CERTIFICATE_EXPIRATION] >= 1500", {"CERTIFICATE_EXPIRATION": 1.5}, True),
    ("[CERTIFICATE_EXPIRATION] > 1.5e3", {"CERTIFICATE_EXPIRATION": 1.0}, False),
    ("[CERTIFICATE_EXPIRATION] > 90000000us", {"CERTIFICATE_EXPIRATION": 91.0}, True),
    ("[CERTIFICATE_EXPIRATION] > -1h", {"CERTIFICATE_EXPIRATION": -60.0}, True),
    ("[CERTIFICATE_EXPIRATION] > 1h30m", {"CERTIFICATE_EXPIRATION": 5401.0}, True),
    ("[RESPONSE_TIME] < 1500000000ns", {"RESPONSE_TIME": 1499}, True),
]

# len(): an array counts its elements; anything else measures its text, an object as the
# minified JSON Go would write (keys sorted), a string in bytes.
LENGTHS: list[tuple[str, dict[str, Any], bool]] = [
    ("len([BODY].o) == 23", {"BODY": b'{"o": {"age": 18, "adult": true}}'}, True),
    ("len([BODY].o) == 2", {"BODY": b'{"o": {"age": 18, "adult": true}}'}, False),
    ("len([BODY][0]) == 23", {"BODY": b'[{"age":18,"adult":true}]'}, True),
    ("len([BODY].o) == 2", {"BODY": b'{"o": {}}'}, True),
    ("len([BODY].o) == 21", {"BODY": b'{"o": {"h": "<b>"}}'}, True),  # Go writes < as \u003c
    ("len([BODY].a) == 3", {"BODY": b'{"a": [1, {"x": 2}, []]}'}, True),
    ("len([BODY].s) == 8", {"BODY": b'{"s": "john.doe"}'}, True),
    ("len([BODY].s) == 6", {"BODY": body({"s": "héhé"})}, True),
    ("len([BODY].n) == 2", {"BODY": b'{"n": 18}'}, True),
    ("len([BODY].b) == 4", {"BODY": b'{"b": true}'}, True),
    ("len([BODY].z) == 4", {"BODY": b'{"z": null}'}, False),
    ("len([BODY].z) < 9", {"BODY": b'{"z": null}'}, False),
    ("len([BODY]) == 3", {"BODY": b"[1, 2, 3]"}, True),
    ("len([BODY]) == 20", {"BODY": b'{"name": "john.doe"}'}, True),
]

# has(): Gatus cannot walk onto a JSON null, so a null field is not there.
HAS: list[tuple[str, dict[str, Any], bool]] = [
    ("has([BODY].z) == false", {"BODY": b'{"z": null}'}, True),
    ("has([BODY].z) == true", {"BODY": b'{"z": 0}'}, True),
    ("has([BODY].z) == true", {"BODY": b"{}"}, False),
]

# any(...) and pat(...) on the left-hand side, equality being symmetric in Gatus.
LEFT_HAND: list[tuple[str, dict[str, Any], bool]] = [
    ("any(200, 429) == [STATUS]", {"STATUS": 429}, True),
    ("any(200, 429) == [STATUS]", {"STATUS": 404}, False),
    ("any(200, 429) != [STATUS]", {"STATUS": 404}, True),
    ("any(john.doe, jane.doe) == [BODY].name", {"BODY": b'{"name": "jane.doe"}'}, True),
    ("any(1, 2) == len([BODY].items)", {"BODY": b'{"items": [0, 0]}'}, True),
    ("pat(4*) == [STATUS]", {"STATUS": 404}, True),
    ('pat(*<div id="u">jo</div>*) == [BODY]', {"BODY": b'<p><div id="u">jo</div></p>'}, True),
    ('pat(*<div id="u">jo</div>*) == [BODY]', {"BODY": b'<p><div id="u">al</div></p>'}, False),
    ("pat(10.*) != [IP]", {"IP": "192.168.0.1"}, True),
    ("any([STATUS], 200, 204)", {"STATUS": 204}, True),  # our own form keeps working
]


@pytest.mark.parametrize(
    ("text", "ctx", "success"),
    INTEGER_FORMS + CERTIFICATE + DURATIONS + LENGTHS + HAS + LEFT_HAND,
)
def test_verdict_matches_gatus(text: str, ctx: dict[str, Any], success: bool) -> None:
    assert verdict(text, ctx) is success, parse(text).evaluate(ctx).detail


def test_left_hand_any_reads_back_as_the_usual_detail() -> None:
    result = parse("any(200, 429) == [STATUS]").evaluate({"STATUS": 429})
    assert result.detail == "[STATUS] (429) == any(200, 429)"


# Where Gatus would only fail at run time, we still refuse the condition when it is saved.
STRICT: list[tuple[str, str]] = [
    ("any(200, 429) == 200", "expected a placeholder"),
    ("any(200, 429) < [STATUS]", "any() compares only with == or !="),
    ("any(ok, 429) == [STATUS]", "[STATUS] compares with a number"),
    ("any(200, 429 == [STATUS]", "any( is not closed"),
    ("any(200) x == [STATUS]", "any( is not closed"),
    ("any(200) == [STATUS] 5", "unexpected '5'"),
    ("[CERTIFICATE_EXPIRATION] > soon", "a duration such as 72h, or a number of milliseconds"),
    ("[STATUS] == 0xZZ", "[STATUS] compares with a number"),
]


@pytest.mark.parametrize(("text", "message"), STRICT)
def test_stricter_parse_errors_are_kept(text: str, message: str) -> None:
    with pytest.raises(ConditionError, match=re.escape(message)):
        parse(text)
