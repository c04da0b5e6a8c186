"""Gatus' config.yaml read into a plan, following the configuration Gatus documents.

Endpoints become monitors by URL scheme (http(s), tcp, icmp, tls, ws(s), and a ``dns`` block),
their conditions kept verbatim (our conditions follow Gatus' semantics); alerting providers
become channels routed to the endpoints that alert through them; ``maintenance`` and
per-endpoint ``maintenance-windows`` become recurring windows; external endpoints become push
monitors. What has no counterpart here is skipped with the reason.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from typing import Any

from .gatus_alerting import mapping, provider
from .plan import (
    Plan,
    PlannedMonitor,
    PlannedWindow,
    entry,
    monitor_spec,
    skip,
    window_spec,
)
from .report import ImportFailed

_ENV = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def expand_env(text: str, warnings: list[str]) -> str:
    """${VAR} and $VAR from the environment, $$ as a $, as Gatus does before parsing; an
    unset variable stays as written, with a warning."""
    missing: list[str] = []

    def one(m: re.Match[str]) -> str:
        if m[0] == "$$":
            return "$"
        name = m[1] or m[2]
        if name in os.environ:
            return os.environ[name]
        missing.append(name)
        return m[0]

    out = _ENV.sub(one, text)
    for name in dict.fromkeys(missing):
        warnings.append(f"${{{name}}} is not set in the environment: left as written")
    return out


def duration(value: Any) -> float | None:
    """A Go duration ("1h30m", "45s", "500ms") in seconds; None when it is not one."""
    text = str(value).strip()
    if text in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        total += float(m[1]) * _UNIT[m[2]]
        pos = m.end()
    return total if pos == len(text) and pos else None


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ImportFailed(f"{where}: expected a list, got {type(value).__name__}")
    return value


def parse(text: str) -> Plan:
    """config.yaml as a plan; ImportFailed when it is not YAML or not shaped as Gatus reads it."""
    # PyYAML loads on the first Gatus import, not at every daemon start (issue 20).
    import yaml  # noqa: PLC0415

    plan = Plan(source="gatus")
    text = expand_env(text, plan.warnings)
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # The problem and where, not PyYAML's snippet of the line (it may hold a credential).
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ImportFailed(
            f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}"
        ) from None
    doc = mapping(doc, "the document")
    if not doc.get("endpoints") and not doc.get("external-endpoints"):
        raise ImportFailed("no endpoints: a Gatus configuration lists them under `endpoints`")
    alerting = mapping(doc.get("alerting"), "alerting")
    users: dict[str, list[str]] = {}
    names: set[str] = set()
    for i, raw in enumerate(_list(doc.get("endpoints"), "endpoints")):
        where = f"endpoints[{i}]"
        ep = mapping(raw, where)
        name = _name(ep, where, names)
        _endpoint(plan, ep, name, alerting, users)
    for i, raw in enumerate(_list(doc.get("external-endpoints"), "external-endpoints")):
        where = f"external-endpoints[{i}]"
        ep = mapping(raw, where)
        name = _name(ep, where, names)
        _external(plan, ep, name, alerting, users)
    for key, raw in alerting.items():
        provider(plan, str(key), mapping(raw, f"alerting.{key}"), users)
    if doc.get("maintenance") is not None:
        _window(plan, mapping(doc["maintenance"], "maintenance"), "maintenance", [])
    return plan


def _name(ep: dict[str, Any], where: str, seen: set[str]) -> str:
    """The endpoint's name here: Gatus keys an endpoint by group and name, so a name used in
    two groups takes its group as a prefix."""
    name = str(ep.get("name") or "").strip()
    if not name:
        raise ImportFailed(f"{where}.name: required")
    group = str(ep.get("group") or "").strip()
    if name in seen and group:
        name = f"{group}/{name}"
    base, n = name, 1
    while name in seen:  # the same name twice in one group: keep both, numbered
        n += 1
        name = f"{base} ({n})"
    seen.add(name)
    return name


def _interval(ep: dict[str, Any], raw: dict[str, Any], notes: list[str]) -> None:
    seconds = duration(ep.get("interval", "60s"))
    if seconds is None:
        raise ImportFailed(f"endpoint {ep.get('name')!r}: interval {ep['interval']!r} unreadable")
    if seconds < 1 or seconds > 86_400:
        kept = min(max(seconds, 1), 86_400)
        notes.append(f"interval {ep['interval']} is outside 1 s..24 h here: {kept:g} s")
        seconds = kept
    raw["interval"] = seconds


def _alerts(
    ep: dict[str, Any],
    name: str,
    *,
    alerting: dict[str, Any],
    users: dict[str, list[str]],
    raw: dict[str, Any],
    notes: list[str],
) -> None:
    """Alerts route the endpoint to its providers' channels; failure-threshold becomes the
    number of failed checks before the monitor counts as down (the largest when several)."""
    thresholds = []
    for item in _list(ep.get("alerts"), f"endpoint {name!r} alerts"):
        alert = mapping(item, f"endpoint {name!r} alert")
        kind = str(alert.get("type", ""))
        if alert.get("enabled", True) is False:
            notes.append(f"alert {kind} is disabled in Gatus: not routed")
            continue
        if kind not in alerting:
            notes.append(f"alert {kind}: no alerting.{kind} provider is configured: dropped")
            continue
        users.setdefault(kind, []).append(name)
        thresholds.append(int(alert.get("failure-threshold", 3)))
        if "success-threshold" in alert and int(alert["success-threshold"]) != 1:
            notes.append(
                f"alert {kind}: success-threshold {alert['success-threshold']} has no "
                "counterpart (one good check resolves)"
            )
        if alert.get("provider-override"):
            notes.append(f"alert {kind}: provider-override dropped (one channel per provider)")
    if thresholds:
        raw["failureThreshold"] = max(1, min(max(thresholds), 100))
        notes.append(f"alert failure-threshold became failureThreshold {raw['failureThreshold']}")
        if len(set(thresholds)) > 1:
            notes.append(f"failure thresholds {sorted(set(thresholds))}: the largest is kept")


def _endpoint(
    plan: Plan,
    ep: dict[str, Any],
    name: str,
    alerting: dict[str, Any],
    users: dict[str, list[str]],
) -> None:
    notes: list[str] = []
    url = str(ep.get("url") or "")
    if not url:
        raise ImportFailed(f"endpoint {name!r}: url is required")
    raw: dict[str, Any] = {"name": name, "enabled": ep.get("enabled", True) is not False}
    scheme = url.partition("://")[0].lower() if "://" in url else ""
    client = mapping(ep.get("client"), f"endpoint {name!r} client")
    if ep.get("dns"):
        dns = mapping(ep["dns"], f"endpoint {name!r} dns")
        raw |= {"kind": "dns", "host": str(dns.get("query-name", "")).rstrip(".")}
        raw["recordType"] = str(dns.get("query-type", "A")).upper()
        raw["resolver"] = url.partition("://")[2] if scheme else url
    elif scheme in ("http", "https"):
        _http(ep, url, client, raw, notes)
    elif scheme in ("ws", "wss"):
        raw |= {"kind": "websocket", "url": url}
        if ep.get("body"):
            raw["body"] = ep["body"]
        if ep.get("headers"):
            raw["headers"] = ep["headers"]
    elif scheme in ("tcp", "tls"):
        parts = urllib.parse.urlsplit(url)
        raw |= {"kind": scheme, "host": parts.hostname, "port": parts.port}
        if scheme == "tls" and client.get("insecure"):
            raw["verifyTls"] = False
        if scheme == "tcp" and ep.get("body"):
            notes.append("tcp body dropped: a tcp monitor here only connects")
    elif scheme == "icmp":
        raw |= {"kind": "icmp", "host": urllib.parse.urlsplit(url).hostname}
    else:
        skip(plan, "monitor", name, f"url scheme {scheme or url!r} has no monitor kind here")
        return
    _interval(ep, raw, notes)
    if "timeout" in client:
        seconds = duration(client["timeout"])
        if seconds and seconds > 0:
            raw["timeout"] = min(seconds, 300.0, raw["interval"])
            if raw["timeout"] != seconds:
                notes.append(f"timeout {client['timeout']} capped to {raw['timeout']:g} s")
    if ep.get("conditions"):
        raw["conditions"] = [str(c) for c in _list(ep["conditions"], f"{name} conditions")]
    if ep.get("group"):
        raw["tags"] = [str(ep["group"])[:64]]
        notes.append(f"group {ep['group']!r} became a tag")
    _alerts(ep, name, alerting=alerting, users=users, raw=raw, notes=notes)
    for key in ("ssh", "ui", "extra-labels", "store"):
        if ep.get(key):
            notes.append(f"{key} has no counterpart here: dropped")
    _add_monitor(plan, name, raw, notes)
    for i, mw in enumerate(_list(ep.get("maintenance-windows"), f"{name} maintenance-windows")):
        _window(
            plan, mapping(mw, f"{name} maintenance-windows"), f"{name} maintenance {i + 1}", [name]
        )


def _http(
    ep: dict[str, Any], url: str, client: dict[str, Any], raw: dict[str, Any], notes: list[str]
) -> None:
    raw |= {"kind": "http", "url": url}
    for key in ("method", "body", "headers"):
        if ep.get(key) not in (None, "", {}):
            raw[key] = ep[key]
    if "method" in raw:
        raw["method"] = str(raw["method"]).upper()
    if ep.get("graphql"):
        notes.append("graphql: the body is sent as written, not wrapped in {query: …}")
    if client.get("insecure"):
        raw["verifyTls"] = False
    if client.get("ignore-redirect"):
        raw["followRedirects"] = False


def _external(
    plan: Plan,
    ep: dict[str, Any],
    name: str,
    alerting: dict[str, Any],
    users: dict[str, list[str]],
) -> None:
    notes = ["a push monitor: push to /api/push/{pushToken} (Gatus' token is not reused)"]
    raw: dict[str, Any] = {"name": name, "kind": "push", "enabled": ep.get("enabled", True)}
    beat = mapping(ep.get("heartbeat"), f"{name} heartbeat")
    seconds = duration(beat.get("interval", 0)) or 0.0
    if seconds >= 1:
        raw["interval"] = min(seconds, 86_400.0)
    else:
        raw["interval"] = 3600.0
        notes.append("no heartbeat interval in Gatus (never late there): 1 h here")
    if ep.get("group"):
        raw["tags"] = [str(ep["group"])[:64]]
        notes.append(f"group {ep['group']!r} became a tag")
    _alerts(ep, name, alerting=alerting, users=users, raw=raw, notes=notes)
    _add_monitor(plan, name, raw, notes)


def _add_monitor(plan: Plan, name: str, raw: dict[str, Any], notes: list[str]) -> None:
    spec = monitor_spec(raw)
    if isinstance(spec, str):
        skip(plan, "monitor", name, f"not a valid monitor here: {spec}")
        return
    plan.monitors.append(PlannedMonitor(spec=spec, entry=entry("monitor", name, notes)))


def _window(plan: Plan, mw: dict[str, Any], name: str, monitors: list[str]) -> None:
    """Gatus' daily (or on some weekdays) window as a recurring window with a cron start."""
    start = str(mw.get("start", ""))
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", start)
    seconds = duration(mw.get("duration", ""))
    if m is None or not seconds:
        skip(plan, "maintenance", name, "start (hh:mm) and duration are required")
        return
    days = [str(d).lower() for d in _list(mw.get("every"), f"{name} every")]
    if any(d not in _DAYS for d in days):
        skip(plan, "maintenance", name, f"every: {days} are not all weekday names")
        return
    dow = ",".join(str(_DAYS.index(d)) for d in days) if days else "*"
    raw = {
        "name": name,
        "kind": "recurring",
        "enabled": mw.get("enabled", True) is not False,
        "cron": f"{int(m[2])} {int(m[1])} * * {dow}",
        "timezone": str(mw.get("timezone") or "UTC"),
        "duration": int(seconds),
        # The scope is set by apply.py (monitor ids exist only then); this stands in for it.
        "scope": {"all": True},
    }
    spec = window_spec(raw)
    if isinstance(spec, str):
        skip(plan, "maintenance", name, f"not a valid window here: {spec}")
        return
    plan.windows.append(
        PlannedWindow(spec=spec, entry=entry("maintenance", name, []), monitors=monitors)
    )
