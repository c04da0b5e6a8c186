"""Monitor conditions: every syntax form, the errors users see, and evaluation that never raises."""

from __future__ import annotations

import builtins
import dataclasses
from http import HTTPStatus
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dragonopsd.model.monitor import KINDS
from dragonopsd.monitoring import condition_tree
from dragonopsd.monitoring.conditions import (
    DEFAULTS,
    PLACEHOLDERS,
    Condition,
    ConditionError,
    ConditionResult,
    evaluate_all,
    parse,
    parse_all,
)
from dragonopsd.monitoring.wildcard import Glob

BODY = msgspec.json.encode(
    {
        "data": {"status": "UP", "version": "1.10", "ok": True, "note": None},
        "items": [{"id": 5, "name": "a b"}, {"id": "7"}],
        "errors": [],
        "ratio": 0.5,
    }
)
CTX: dict[str, Any] = {
    "STATUS": 200,
    "RESPONSE_TIME": 120.5,
    "BODY": BODY,
    "CERTIFICATE_EXPIRATION": 5 * 86400.0,
    "CONNECTED": True,
    "DNS_RCODE": "NOERROR",
    "IP": "10.0.0.5",
    "PACKET_LOSS": 0.0,
}


def run(text: str, **overrides: Any) -> ConditionResult:
    return parse(text).evaluate({**CTX, **overrides})


# (condition, context overrides, success, detail)
CASES: list[tuple[str, dict[str, Any], bool, str]] = [
    ("[STATUS] == 200", {}, True, "[STATUS] (200) == 200"),
    ("[STATUS] == 200", {"STATUS": 503}, False, "[STATUS] (503) == 200"),
    ("[STATUS] < 400", {"STATUS": HTTPStatus.NOT_FOUND}, False, "[STATUS] (404) < 400"),
    ("[STATUS] != 500", {}, True, "[STATUS] (200) != 500"),
    ("[STATUS] >= 200", {}, True, "[STATUS] (200) >= 200"),
    ("[STATUS] > 200", {}, False, "[STATUS] (200) > 200"),
    ("[STATUS] <= 199", {}, False, "[STATUS] (200) <= 199"),
    ("[RESPONSE_TIME] < 300", {}, True, "[RESPONSE_TIME] (120.5) < 300"),
    ("[RESPONSE_TIME] < 300", {"RESPONSE_TIME": 301.0}, False, "[RESPONSE_TIME] (301) < 300"),
    ("[RESPONSE_TIME] < 100ms", {}, False, "[RESPONSE_TIME] (120.5) < 100ms"),
    ("[RESPONSE_TIME] < 1s", {"RESPONSE_TIME": 999}, True, "[RESPONSE_TIME] (999) < 1s"),
    ("[BODY].data.status == UP", {}, True, "[BODY].data.status (UP) == UP"),
    ("[BODY].data.status == DOWN", {}, False, "[BODY].data.status (UP) == DOWN"),
    ("[BODY].items[0].id == 5", {}, True, "[BODY].items[0].id (5) == 5"),
    ("[BODY].items[1].id == 7", {}, True, "[BODY].items[1].id (7) == 7"),
    ("[BODY].items[0].id == 6", {}, False, "[BODY].items[0].id (5) == 6"),
    ("[BODY].items[0].name == a b", {}, True, "[BODY].items[0].name (a b) == a b"),
    ("[BODY].data.ok == true", {}, True, "[BODY].data.ok (true) == true"),
    ("[BODY].data.note == null", {}, True, "[BODY].data.note (null) == null"),
    ("[BODY].data.version == 1.1", {}, True, "[BODY].data.version (1.10) == 1.1"),
    ("[BODY].ratio < 1", {}, True, "[BODY].ratio (0.5) < 1"),
    ("[BODY].data.status < V", {}, True, "[BODY].data.status (UP) < V"),
    ("len([BODY].items) > 0", {}, True, "len([BODY].items) (2) > 0"),
    ("len([BODY].errors) > 0", {}, False, "len([BODY].errors) (0) > 0"),
    ("len([BODY].data.status) == 2", {}, True, "len([BODY].data.status) (2) == 2"),
    ("len([BODY]) < 1000", {}, True, f"len([BODY]) ({len(BODY)}) < 1000"),
    ("len([BODY]) < 1000", {"BODY": "x" * 1000}, False, "len([BODY]) (1000) < 1000"),
    ("len([BODY]) == 3", {"BODY": b"[1, 2, 3]"}, True, "len([BODY]) (3) == 3"),
    ("len([IP]) == 8", {}, True, "len([IP]) (8) == 8"),
    ("[BODY] == pat(*UP*)", {}, True, "[BODY] ("),
    ("[BODY] == pat(*healthy*)", {"BODY": b"all healthy\n"}, True, "[BODY] (all healthy) =="),
    ("[BODY] == pat(*Healthy*)", {"BODY": b"all healthy"}, False, "[BODY] (all healthy) =="),
    ("[BODY] != pat(*error*)", {"BODY": "fine"}, True, "[BODY] (fine) != pat(*error*)"),
    ("[BODY] != pat(*error*)", {"BODY": "an error"}, False, "[BODY] (an error) != pat(*error*)"),
    ("[BODY] == OK", {"BODY": b"OK\r\n"}, True, "[BODY] (OK) == OK"),
    ("[IP] == pat(10.0.*)", {}, True, "[IP] (10.0.0.5) == pat(10.0.*)"),
    ("[STATUS] == pat(2*)", {}, True, "[STATUS] (200) == pat(2*)"),
    ("[CERTIFICATE_EXPIRATION] > 72h", {}, True, "[CERTIFICATE_EXPIRATION] (5d) > 72h"),
    (
        "[CERTIFICATE_EXPIRATION] > 72h",
        {"CERTIFICATE_EXPIRATION": 3600.0 * 71 + 61},
        False,
        "[CERTIFICATE_EXPIRATION] (2d23h1m1s) > 72h",
    ),
    ("[CERTIFICATE_EXPIRATION] > 1h30m", {"CERTIFICATE_EXPIRATION": 5401}, True, "(1h30m1s) >"),
    ("[CERTIFICATE_EXPIRATION] > 1h30m", {"CERTIFICATE_EXPIRATION": 5400}, False, "(1h30m) >"),
    ("[CERTIFICATE_EXPIRATION] > 0", {"CERTIFICATE_EXPIRATION": -60}, False, "(-1m) > 0"),
    ("[CERTIFICATE_EXPIRATION] >= 2d", {"CERTIFICATE_EXPIRATION": 172800}, True, "(2d) >= 2d"),
    ("[CONNECTED] == true", {}, True, "[CONNECTED] (true) == true"),
    ("[CONNECTED] == true", {"CONNECTED": False}, False, "[CONNECTED] (false) == true"),
    ("[CONNECTED] == TRUE", {}, True, "[CONNECTED] (true) == TRUE"),
    ("[DNS_RCODE] == NOERROR", {}, True, "[DNS_RCODE] (NOERROR) == NOERROR"),
    ("[DNS_RCODE] == NOERROR", {"DNS_RCODE": "NXDOMAIN"}, False, "(NXDOMAIN) == NOERROR"),
    ("[IP] == 10.0.0.5", {}, True, "[IP] (10.0.0.5) == 10.0.0.5"),
    ("[IP] != 10.0.0.5", {}, False, "[IP] (10.0.0.5) != 10.0.0.5"),
    ("[PACKET_LOSS] <= 5", {"PACKET_LOSS": 12.5}, False, "[PACKET_LOSS] (12.5) <= 5"),
    ("any([STATUS], 200, 204)", {}, True, "[STATUS] (200) == any(200, 204)"),
    ("any([STATUS], 200, 204)", {"STATUS": 500}, False, "[STATUS] (500) == any(200, 204)"),
    ("[STATUS] == any(200, 204)", {"STATUS": 204}, True, "[STATUS] (204) == any(200, 204)"),
    ("[STATUS] != any(200, 204)", {"STATUS": 204}, False, "[STATUS] (204) != any(200, 204)"),
    ("[DNS_RCODE] == any(NOERROR, NXDOMAIN)", {"DNS_RCODE": "SERVFAIL"}, False, "(SERVFAIL)"),
    ("has([BODY].errors) == true", {}, True, "has([BODY].errors) (true) == true"),
    ("has([BODY].errors) == false", {}, False, "has([BODY].errors) (true) == false"),
    ("has([BODY].nope) == false", {}, True, "has([BODY].nope) (false) == false"),
    ("has([BODY].items[9]) == false", {}, True, "has([BODY].items[9]) (false) == false"),
    ("has([BODY]) == true", {"BODY": b""}, False, "has([BODY]) (false) == true"),
    ("has([IP]) == false", {"IP": None}, True, "has([IP]) (false) == false"),
    ("[BODY].items[0].id == [BODY].items[1].id", {}, False, "(5) == [BODY].items[1].id (7)"),
    ("[STATUS] == len([BODY].items)", {"STATUS": 2}, True, "[STATUS] (2) == len([BODY].items) (2)"),
    ("  [status]==200  ", {}, True, "[status] (200) == 200"),
]


@pytest.mark.parametrize(("text", "overrides", "success", "detail"), CASES)
def test_syntax_forms(text: str, overrides: dict[str, Any], success: bool, detail: str) -> None:
    result = run(text, **overrides)
    assert result.success is success, result
    assert result.condition == text.strip()
    assert detail in result.detail, result.detail


@pytest.mark.parametrize(
    ("text", "overrides", "detail"),
    [
        ("[BODY].data.nope == 1", {}, "[BODY].data.nope: no such field"),
        ("[BODY].data.status.deeper == 1", {}, "[BODY].data.status.deeper: no such field"),
        ("[BODY].items[2].id == 1", {}, "[BODY].items[2].id: no such field"),
        ("[BODY].data[0] == 1", {}, "[BODY].data[0]: no such field"),
        ("[BODY].items.id == 1", {}, "[BODY].items.id: no such field"),
        ("len([BODY].nope) > 0", {}, "[BODY].nope: no such field"),
        ("[BODY].status == UP", {"BODY": b"<html>oops</html>"}, "[BODY].status: body is not JSON"),
        ("has([BODY].errors) == false", {"BODY": "<html/>"}, "[BODY].errors: body is not JSON"),
        ("[BODY].a == 1", {"BODY": b"\xff\xfe"}, "[BODY].a: body is not JSON"),
        ("[BODY].a == 1", {"BODY": b"[" * 5000}, "[BODY].a: body is not JSON"),
        (
            "[BODY].a == 1",
            {"BODY": b'{"a":1}' + b" " * (1 << 20)},
            "[BODY].a: body is larger than 1 MiB, not parsed as JSON",
        ),
        ("[BODY].a == 1", {"BODY": None}, "[BODY] not available for this probe"),
        ("[STATUS] == 200", {"STATUS": None}, "[STATUS] not available for this probe"),
        ("[BODY] == pat(*x*)", {"BODY": None}, "[BODY] not available for this probe"),
        ("len([IP]) > 1", {"IP": None}, "[IP] not available for this probe"),
    ],
)
def test_unresolvable_values_fail_with_a_detail(
    text: str, overrides: dict[str, Any], detail: str
) -> None:
    result = run(text, **overrides)
    assert result.success is False
    assert result.detail == detail


def test_missing_placeholder_fails_without_raising() -> None:
    for name in PLACEHOLDERS:
        text = "[BODY] == x" if name == "BODY" else f"has([{name}]) == true"
        assert parse(text).evaluate({}).success is False
    result = parse("[STATUS] < 400").evaluate({"CONNECTED": True})
    detail = "[STATUS] not available for this probe"
    assert result == ConditionResult("[STATUS] < 400", False, detail)


def test_long_values_are_truncated_in_the_detail() -> None:
    body = "start " + "x" * 10_000 + " healthy"
    result = run("[BODY] == pat(*healthy*)", BODY=body)
    assert result.success is True
    assert len(result.detail) < 150
    assert "…" in result.detail
    listed = run("[BODY].items == x", BODY=msgspec.json.encode({"items": list(range(5000))}))
    assert len(listed.detail) < 150


# (condition, position, message fragment)
ERRORS: list[tuple[str, int, str]] = [
    ("[STATUS] = 200", 9, "expected an operator (==, !=, <, <=, >, >=)"),
    ("[STATUS] ==", 11, "expected a value after =="),
    ("[STATUS] ==   ", 11, "expected a value after =="),
    ("[STATUS]", 8, "expected an operator"),
    ("[STATUS] 200", 9, "expected an operator"),
    ("[NOPE] == 1", 0, "unknown placeholder [NOPE]"),
    ("[DOMAIN_EXPIRATION] > 1h", 0, "unknown placeholder"),
    ("len([STATUS]) > 1", 4, "len() takes [BODY], [IP], [DNS_RCODE] or [RESULT]"),
    ("[STATUS == 200", 7, "expected ']'"),
    ("[BODY].items[0 == 1", 14, "expected ']' to close the array index"),
    ("[BODY].items[*].id == 1", 13, "expected an array index"),
    ("[BODY].items[] == 1", 13, "expected an array index"),
    ("[BODY]. == 1", 7, "expected a field name"),
    ("len([BODY].items > 0", 17, "expected ')' to close len("),
    ("len(200) > 0", 4, "len() takes a placeholder"),
    ("[STATUS] == 200)", 15, "unexpected ')'"),
    ("[STATUS] == (200", 12, "expected a value"),
    ("[BODY] == pat(*x*", 17, "pat( is not closed"),
    ("foo([BODY]) == 1", 0, "unknown function foo()"),
    ("[BODY] == lower(x)", 10, "unknown function lower()"),
    ("pat(*x*) < [BODY]", 0, "pat() compares only with == or !="),
    ("200 == [STATUS]", 0, "expected a placeholder"),
    ("", 0, "empty condition"),
    ("   ", 0, "empty condition"),
    ("[STATUS] == " + "1" * 489, 500, "longer than 500 characters"),
    ("[STATUS] == abc", 12, "[STATUS] compares with a number"),
    ("[STATUS] == 200 300", 12, "compares with a number"),
    ("[RESPONSE_TIME] < fast", 18, "compares with a number"),
    ("[CERTIFICATE_EXPIRATION] > 72d2", 27, "compares with a duration such as 72h"),
    ("[CERTIFICATE_EXPIRATION] > 72x", 27, "compares with a duration"),
    ("[CONNECTED] == yes", 15, "compares with true or false"),
    ("[CONNECTED] < true", 12, "compares only with == or !="),
    ("has([BODY].x) >= true", 14, "compares only with == or !="),
    ("[STATUS] < pat(2*)", 11, "pat() works only with == and !="),
    ("[STATUS] > any(1, 2)", 11, "any() works only with == and !="),
    ("[STATUS] == any()", 16, "expected a value"),
    ("[STATUS] == any(200,, 204)", 20, "expected a value"),
    ("[BODY].x == any(a b", 19, "expected ',' or ')'"),
    ("any([STATUS] 200)", 13, "expected ','"),
    ("any([STATUS], 200) == true", 19, "unexpected '='"),
    ("[STATUS].code == 200", 8, "only [BODY] and [INFO] take a path"),
    ("[STATUS] === 200", 11, "unexpected operator '='"),
    ("[BODY].a == b == c", 14, "unexpected operator '=='"),
    ("[BODY] == pat(" + "*" * 300 + ")", 14, "pattern is longer than 256"),
    ("__import__('os').system('x')", 0, "unknown function __import__()"),
    ("[BODY] == __import__('os')", 10, "unknown function __import__()"),
    ("[STATUS] == 200; import os", 12, "compares with a number"),
]


@pytest.mark.parametrize(("text", "position", "message"), ERRORS)
def test_parse_errors_point_at_the_problem(text: str, position: int, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(text)
    assert caught.value.position == position, caught.value.message
    assert message in caught.value.message
    assert str(caught.value) == caught.value.message
    assert isinstance(caught.value, ValueError)


def test_parse_all_prefixes_the_index() -> None:
    good = parse_all(["[STATUS] == 200", "[RESPONSE_TIME] < 300"])
    assert [c.source for c in good] == ["[STATUS] == 200", "[RESPONSE_TIME] < 300"]
    with pytest.raises(ConditionError) as caught:
        parse_all(["[STATUS] == 200", "[CONNECTED] == true", "[STATUS] = 200"])
    assert caught.value.index == 2
    assert caught.value.position == 9
    assert caught.value.message.startswith("conditions[2]: expected an operator")


def test_parse_all_limits_the_count() -> None:
    assert len(parse_all(["[STATUS] < 400"] * 32)) == 32
    with pytest.raises(ConditionError, match="at most 32 conditions"):
        parse_all(["[STATUS] < 400"] * 33)


def test_defaults_parse_and_cover_every_kind() -> None:
    assert set(DEFAULTS) == set(KINDS)
    assert DEFAULTS["push"] == ()
    for kind, texts in DEFAULTS.items():
        assert all(
            c.evaluate({**CTX, "GRPC_STATUS": "SERVING"}).success for c in parse_all(texts)
        ), kind


def test_info_takes_a_path_into_the_redis_fields() -> None:
    ctx = {"INFO": {"role": "master", "connected_slaves": "2"}, "RESULT": "ok", "ROWS": 3}
    for text in (
        "[INFO].role == master",
        "[INFO].connected_slaves >= 1",
        "[ROWS] == 3",
        "len([RESULT]) == 2",
    ):
        assert parse(text).evaluate(ctx).success, text
    missing = parse("[INFO].nope == x").evaluate(ctx)
    assert not missing.success and "no such field" in missing.detail
    assert not parse("[INFO].role == master").evaluate({}).success


def test_condition_is_immutable_and_compares_by_source() -> None:
    condition = parse("[STATUS] == 200")
    with pytest.raises(dataclasses.FrozenInstanceError):
        condition.source = "[STATUS] == 500"  # type: ignore[misc]
    assert condition == parse("[STATUS] == 200")
    assert hash(condition) == hash(parse("[STATUS] == 200"))
    assert parse("[BODY].a == 1").placeholders == {"BODY"}
    assert parse("len([BODY]) < [STATUS]").placeholders == {"BODY", "STATUS"}


def test_evaluate_all_decodes_the_body_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = condition_tree._JSON

    class Counting:
        def decode(self, raw: Any) -> Any:
            calls.append(raw)
            return real.decode(raw)

    monkeypatch.setattr(condition_tree, "_JSON", Counting())
    texts = ["[STATUS] == 200", "[BODY].data.status == UP", "len([BODY].items) == 2"]
    texts += ["has([BODY].errors) == true", "[BODY].items[0].id == 5", "[BODY] == pat(*UP*)"]
    parsed = parse_all(texts)
    results = evaluate_all(parsed, CTX)
    assert [r.success for r in results] == [True] * 6
    assert len(calls) == 1
    evaluate_all(parsed[:1], CTX)
    assert len(calls) == 1  # no body path, no decoding at all


def test_no_eval_exec_or_compile_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("dynamic code execution")

    for name in ("eval", "exec", "compile", "__import__"):
        monkeypatch.setattr(builtins, name, refuse)
    for text, overrides, success, _ in CASES:
        assert parse(text).evaluate({**CTX, **overrides}).success is success


def test_odd_context_types_do_not_raise() -> None:
    odd: list[dict[str, Any]] = [
        {"STATUS": "abc", "RESPONSE_TIME": "slow", "CERTIFICATE_EXPIRATION": "x"},
        {"STATUS": [1], "BODY": 12, "CONNECTED": "yes", "IP": 5, "PACKET_LOSS": object()},
        {"CERTIFICATE_EXPIRATION": float("inf"), "RESPONSE_TIME": float("nan")},
        {"BODY": bytearray(b'{"a": [1]}'), "DNS_RCODE": b"NOERROR"},
        {"BODY": memoryview(b"[1,2]"), "STATUS": True},
    ]
    for context in odd:
        for text, _, _, _ in CASES:
            result = parse(text).evaluate(context)
            assert isinstance(result, ConditionResult)


def test_glob_matches_linearly() -> None:
    assert Glob.compile("*").match("")
    assert Glob.compile("a*b*c").match("aXbYc")
    assert Glob.compile("a*a").match("aa")
    assert not Glob.compile("a*a").match("a")
    assert Glob.compile("**x**").match("yxy")
    assert Glob.compile("a?c").match("a?c")  # only * is special
    assert not Glob.compile("a?c").match("abc")
    assert not Glob.compile("[ab]").match("a")
    assert not Glob.compile("*a*a*a*a*a*a*a*a*b").match("a" * 200_000)


FRAGMENTS = [
    "[STATUS]", "[BODY]", "[IP]", "[CONNECTED]", "[CERTIFICATE_EXPIRATION]", "[RESPONSE_TIME]",
    "[DNS_RCODE]", "[PACKET_LOSS]", "[NOPE]", ".data", ".items", "[0]", "[", "]", "(", ")", ",",
    "len(", "has(", "any(", "pat(", "==", "!=", "<", "<=", ">", ">=", "=", "!", " ", "  ", "200",
    "5", "-1", "1.5", "1e3", "72h", "1h30m", "500ms", "true", "false", "UP", "*", "x", "é", "\n",
    "\t", "'", '"', "__import__", "\\", "0x1F", "nan", "∞", "[BODY].items[0].id",
]  # fmt: skip

ODD_CONTEXTS: list[dict[str, Any]] = [
    CTX,
    {},
    {"BODY": b"not json", "STATUS": "200", "CONNECTED": 1},
    {"BODY": b"[" * 3000, "CERTIFICATE_EXPIRATION": float("nan"), "IP": ["x"]},
    {"BODY": "\u00e9" * 50, "STATUS": 10**30, "PACKET_LOSS": float("inf")},
]


ALPHABET = "[]().,=!<>*_ 0123456789abBODYSTATU\u00e9\x00"


@st.composite
def near_misses(draw: st.DrawFn) -> str:
    """A valid condition with a few fragments spliced in (zero edits keeps it valid)."""
    chars = list(draw(st.sampled_from(CASES))[0])
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(chars)))
        chars[at : at + draw(st.integers(0, 2))] = list(draw(st.sampled_from(FRAGMENTS)))
    return "".join(chars)


CONDITION_TEXTS = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=10).map("".join),
    st.text(alphabet=ALPHABET, max_size=40),
    near_misses(),
)


@settings(max_examples=300, deadline=None)
@given(CONDITION_TEXTS)
def test_any_text_parses_or_raises_condition_error_and_never_breaks_evaluate(text: str) -> None:
    try:
        condition = parse(text)
    except ConditionError as exc:
        assert 0 <= exc.position <= len(text)
        return
    assert isinstance(condition, Condition)
    for context in ODD_CONTEXTS:
        result = condition.evaluate(context)
        assert isinstance(result, ConditionResult)
        assert len(result.detail) < 400
