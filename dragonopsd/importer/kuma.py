"""Uptime Kuma's SQLite database (1.23.x and 2.x) read into a plan, opened read-only.

Columns added by later versions are read when present (``json_path_operator`` in 2.x), so
one reader serves both schemas. Monitors map by type, notifications by provider, maintenance
by strategy; basic-auth passwords go to the secrets store and the monitor's URL references
them. What has no counterpart here is skipped with the reason.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.parse
from pathlib import Path
from typing import Any

from .plan import (
    Plan,
    PlannedChannel,
    PlannedMonitor,
    PlannedSecret,
    PlannedWindow,
    channel_body,
    entry,
    monitor_spec,
    skip,
    window_spec,
)
from .report import ImportFailed

_TABLES = ("monitor", "notification", "monitor_notification", "tag", "monitor_tag")
_JSON_PATH = re.compile(
    r"^\$?\.?([A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?(?:\.[A-Za-z_][A-Za-z0-9_]*(?:\[\d+\])?)*)$"
)
_OPS = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


def parse_file(path: Path) -> Plan:
    """Read kuma.db without ever writing it (mode=ro); ImportFailed when it is not one."""
    if not path.is_file():
        raise ImportFailed(f"{path}: no such file")
    uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise ImportFailed(f"{path}: cannot open: {exc}") from None
    conn.row_factory = sqlite3.Row
    try:
        return _read(conn)
    except sqlite3.DatabaseError as exc:
        raise ImportFailed(f"{path}: not a readable Uptime Kuma database: {exc}") from None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection) -> Plan:
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in _TABLES if t not in have]
    if missing:
        raise ImportFailed(f"not an Uptime Kuma database: no table {', '.join(missing)}")
    plan = Plan(source="uptime-kuma")
    monitors = {r["id"]: dict(r) for r in conn.execute("SELECT * FROM monitor ORDER BY id")}
    tags: dict[int, list[str]] = {}
    for r in conn.execute(
        "SELECT mt.monitor_id, t.name, mt.value FROM monitor_tag mt JOIN tag t ON t.id = mt.tag_id"
    ):
        tags.setdefault(r[0], []).append(f"{r[1]}:{r[2]}" if r[2] else str(r[1]))
    routes: dict[int, list[int]] = {}
    for r in conn.execute("SELECT monitor_id, notification_id FROM monitor_notification"):
        routes.setdefault(r[1], []).append(r[0])
    names = {ident: str(m["name"] or f"monitor {ident}") for ident, m in monitors.items()}
    for ident, m in monitors.items():
        if m["type"] == "group":
            skip(plan, "monitor", names[ident], "a group: its name became a tag of its members")
            continue
        _monitor(plan, m, names[ident], _tags(m, monitors, tags))
    for r in conn.execute("SELECT * FROM notification ORDER BY id"):
        _notification(plan, dict(r), [names[i] for i in routes.get(r["id"], []) if i in names])
    if "maintenance" in have and "monitor_maintenance" in have:
        covered: dict[int, list[str]] = {}
        for r in conn.execute("SELECT maintenance_id, monitor_id FROM monitor_maintenance"):
            if r[1] in names:
                covered.setdefault(r[0], []).append(names[r[1]])
        for r in conn.execute("SELECT * FROM maintenance ORDER BY id"):
            _maintenance(plan, dict(r), covered.get(r["id"], []))
    return plan


def _tags(
    m: dict[str, Any], monitors: dict[int, dict[str, Any]], tags: dict[int, list[str]]
) -> list[str]:
    """The monitor's tags, then the names of the groups it sits in (Kuma's parent chain)."""
    out = list(tags.get(m["id"], []))
    parent, seen = m.get("parent"), set()
    while parent in monitors and parent not in seen:
        seen.add(parent)
        out.append(str(monitors[parent]["name"]))
        parent = monitors[parent].get("parent")
    return [t[:64] for t in dict.fromkeys(out)][:50]


def _status_conditions(m: dict[str, Any], notes: list[str]) -> list[str]:
    """accepted_statuscodes_json as conditions (Kuma's default, 200-299, included)."""
    try:
        codes = json.loads(m.get("accepted_statuscodes_json") or '["200-299"]')
    except ValueError:
        codes = ["200-299"]
    singles, ranges = [], []
    for code in codes:
        low, _, high = str(code).partition("-")
        if high:
            ranges.append((int(low), int(high)))
        else:
            singles.append(int(low))
    if ranges and not singles and len(ranges) == 1:
        first, last = ranges[0]
        return [f"[STATUS] >= {first}", f"[STATUS] <= {last}"]
    if singles and not ranges:
        if len(singles) == 1:
            return [f"[STATUS] == {singles[0]}"]
        return [f"[STATUS] == any({', '.join(map(str, singles))})"]
    bounds = [c for r in ranges for c in r] + singles
    notes.append(f"accepted status codes {codes}: widened to {min(bounds)}-{max(bounds)}")
    return [f"[STATUS] >= {min(bounds)}", f"[STATUS] <= {max(bounds)}"]


def _http(plan: Plan, m: dict[str, Any], raw: dict[str, Any], notes: list[str]) -> str | None:
    """The http, keyword, json-query and real-browser fields; a reason to skip, or None."""
    url = str(m.get("url") or "")
    conditions = _status_conditions(m, notes)
    kind = m["type"]
    if kind == "keyword":
        keyword = str(m.get("keyword") or "").replace(")", "")
        op = "!=" if m.get("invert_keyword") else "=="
        conditions.append(f"[BODY] {op} pat(*{keyword}*)")
    elif kind == "json-query":
        path = _JSON_PATH.match(str(m.get("json_path") or "").strip())
        if path is None:
            return f"json query {m.get('json_path')!r} is a JSONata expression beyond a path"
        compare = _OPS.get(str(m.get("json_path_operator") or "=="))
        if compare is None:
            return f"json query operator {m.get('json_path_operator')!r} has no counterpart"
        conditions.append(f"[BODY].{path[1]} {compare} {m.get('expected_value')}")
    elif kind == "real-browser":
        notes.append("real-browser: checked as a plain HTTP request (no browser here)")
    user, password = m.get("basic_auth_user"), m.get("basic_auth_pass")
    if user and (m.get("auth_method") in (None, "", "basic")):
        key = f"KUMA_MONITOR_{m['id']}_PASSWORD"
        parts = urllib.parse.urlsplit(url)
        login = urllib.parse.quote(str(user), safe="")
        netloc = f"{login}:${{secret:{key}}}@{parts.netloc.rpartition('@')[2]}"
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
        plan.secrets.append(
            PlannedSecret(key=key, value=str(password or ""), entry=entry("secret", key, []))
        )
        notes.append(f"basic auth: the password is the secret {key}, referenced in the URL")
    elif m.get("auth_method") not in (None, "", "basic"):
        notes.append(f"auth method {m['auth_method']} dropped")
    raw |= {"kind": "http", "url": url, "conditions": conditions}
    method = str(m.get("method") or "GET").upper()
    if method != "GET":
        raw["method"] = method
    if m.get("body"):
        raw["body"] = str(m["body"])
    if m.get("headers"):
        try:
            headers = json.loads(m["headers"])
            raw["headers"] = {str(k): str(v) for k, v in dict(headers).items()}
        except (ValueError, TypeError):
            notes.append("headers are not a JSON object: dropped")
    if m.get("ignore_tls"):
        raw["verifyTls"] = False
    redirects = m.get("maxredirects")
    if redirects == 0:
        raw["followRedirects"] = False
    elif redirects not in (None, 10):
        notes.append(f"max redirects {redirects}: redirects are followed up to our own limit")
    return None


def _monitor(plan: Plan, m: dict[str, Any], name: str, tags: list[str]) -> None:
    notes: list[str] = []
    kind = m["type"]
    raw: dict[str, Any] = {"name": name, "enabled": bool(m.get("active", 1))}
    if not raw["enabled"]:
        notes.append("paused in Uptime Kuma: stays paused (disabled)")
    if kind in ("http", "keyword", "json-query", "real-browser"):
        reason = _http(plan, m, raw, notes)
        if reason:
            skip(plan, "monitor", name, reason)
            return
    elif kind == "port":
        raw |= {"kind": "tcp", "host": m.get("hostname"), "port": m.get("port")}
    elif kind == "ping":
        raw |= {"kind": "icmp", "host": m.get("hostname")}
    elif kind == "dns":
        raw |= {
            "kind": "dns",
            "host": m.get("hostname"),
            "recordType": m.get("dns_resolve_type") or "A",
        }
        server, port = m.get("dns_resolve_server"), m.get("port")
        if server:
            raw["resolver"] = (
                f"{server}:{port}"
                if port and port != 53 and ":" not in str(server)
                else str(server)
            )
    elif kind == "push":
        raw |= {"kind": "push"}
        notes.append("a push monitor: push to /api/push/{pushToken} (Kuma's token is not reused)")
    else:
        skip(plan, "monitor", name, f"monitor type {kind!r} is not imported")
        return
    if m.get("upside_down"):
        if raw["kind"] in ("tcp", "icmp"):
            raw["conditions"] = ["[CONNECTED] == false"]
            notes.append("upside-down: up when it cannot connect ([CONNECTED] == false)")
        else:
            skip(plan, "monitor", name, f"upside-down mode on a {kind} monitor has no counterpart")
            return
    interval = float(m.get("interval") or 60)
    raw["interval"] = min(max(interval, 1.0), 86_400.0)
    if kind != "push":
        timeout = float(m.get("timeout") or 0)
        if timeout > 0:
            raw["timeout"] = min(timeout, 300.0, raw["interval"])
    raw["retries"] = min(int(m.get("maxretries") or 0), 10)
    if int(m.get("maxretries") or 0) > 10:
        notes.append(f"retries {m['maxretries']} capped to 10")
    retry = float(m.get("retry_interval") or 0)
    raw["retryInterval"] = min(max(retry, 1.0), 86_400.0) if retry else raw["interval"]
    if tags:
        raw["tags"] = tags
    if m.get("description"):
        raw["description"] = str(m["description"])[:4000]
    spec = monitor_spec(raw)
    if isinstance(spec, str):
        skip(plan, "monitor", name, f"not a valid monitor here: {spec}")
        return
    plan.monitors.append(PlannedMonitor(spec=spec, entry=entry("monitor", name, notes)))


def _apprise_url(kind: str, c: dict[str, Any]) -> str | None:
    def host(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return (parts.netloc + parts.path).rstrip("/")

    if kind == "apprise":
        return str(c.get("appriseURL") or "") or None
    if kind == "telegram" and c.get("telegramBotToken") and c.get("telegramChatID"):
        return f"tgram://{c['telegramBotToken']}/{c['telegramChatID']}"
    if kind == "ntfy" and c.get("ntfytopic"):
        server = str(c.get("ntfyserverurl") or "https://ntfy.sh")
        scheme = "ntfy" if server.startswith("http:") else "ntfys"
        return f"{scheme}://{host(server)}/{c['ntfytopic']}"
    if kind == "gotify" and c.get("gotifyserverurl") and c.get("gotifyapplicationToken"):
        server = str(c["gotifyserverurl"])
        scheme = "gotifys" if server.startswith("https") else "gotify"
        return f"{scheme}://{host(server)}/{c['gotifyapplicationToken']}"
    if kind == "pushover" and c.get("pushoveruserkey") and c.get("pushoverapptoken"):
        return f"pover://{c['pushoveruserkey']}@{c['pushoverapptoken']}"
    return None


_PRESET_FIELDS = {
    "slack": "slackwebhookURL",
    "discord": "discordWebhookUrl",
    "teams": "webhookUrl",
    "mattermost": "mattermostWebhookUrl",
}


def _notification(plan: Plan, n: dict[str, Any], monitors: list[str]) -> None:
    name = str(n.get("name") or f"notification {n['id']}")
    try:
        c = json.loads(n.get("config") or "{}")
    except ValueError:
        skip(plan, "channel", name, "its config is not JSON")
        return
    kind = str(c.get("type") or "")
    notes: list[str] = []
    raw: dict[str, Any] = {"name": name, "enabled": bool(n.get("active", 1))}
    if kind in _PRESET_FIELDS:
        raw |= {"kind": kind, "config": {"url": c.get(_PRESET_FIELDS[kind]) or ""}}
    elif kind == "webhook":
        raw |= {"kind": "webhook", "config": {"url": c.get("webhookURL") or ""}}
        if c.get("webhookCustomBody") or c.get("webhookAdditionalHeaders"):
            notes.append("webhook custom body and headers dropped: the event is posted as JSON")
    elif kind == "smtp":
        config: dict[str, Any] = {
            "host": c.get("smtpHost"),
            "port": int(c.get("smtpPort") or 587),
            "from": _address(c.get("smtpFrom")),
            "to": [a.strip() for a in str(c.get("smtpTo") or "").split(",") if a.strip()],
            "security": "tls" if c.get("smtpSecure") else "starttls",
        }
        if c.get("smtpUsername"):
            config["username"] = c["smtpUsername"]
        if c.get("smtpPassword"):
            config["password"] = c["smtpPassword"]
        if c.get("smtpIgnoreTLSError"):
            config["verifyTls"] = False
        raw |= {"kind": "email", "config": config}
    elif (url := _apprise_url(kind, c)) is not None:
        raw |= {"kind": "apprise", "config": {"urls": [url]}}
        notes.append(f"{kind} delivered through Apprise")
    else:
        skip(
            plan, "channel", name, f"provider {kind!r} has no channel kind or Apprise mapping here"
        )
        return
    if c.get("isDefault") or n.get("is_default"):
        notes.append("default for new monitors in Kuma: here it serves the monitors it had")
    if not monitors:
        raw["enabled"] = False
        notes.append("no monitor uses it: imported disabled")
    body = channel_body(raw)
    if isinstance(body, str):
        skip(plan, "channel", name, f"not a valid channel here: {body}")
        return
    plan.channels.append(
        PlannedChannel(body=body, entry=entry("channel", name, notes), scope_all=not monitors)
    )
    for monitor in plan.monitors:
        if monitor.entry.name in monitors:
            monitor.channels.append(name)


def _address(value: Any) -> str:
    """ "Name <a@b.c>" or "a@b.c" -> a@b.c."""
    text = str(value or "")
    m = re.search(r"<([^>]+)>", text)
    return m[1] if m else text.strip()


def _maintenance(plan: Plan, w: dict[str, Any], monitors: list[str]) -> None:
    name = str(w.get("title") or f"maintenance {w['id']}")
    strategy = str(w.get("strategy") or "")
    notes: list[str] = []
    zone = w.get("timezone")
    if not zone or zone == "SAME_AS_SERVER":
        zone = "UTC"
        notes.append("timezone: same as Kuma's server there, UTC here")
    raw: dict[str, Any] = {
        "name": name,
        "enabled": bool(w.get("active", 1)),
        "scope": {"all": True},
    }
    if w.get("description"):
        raw["description"] = str(w["description"])[:4000]
    if strategy == "single":
        if not w.get("start_date") or not w.get("end_date"):
            skip(plan, "maintenance", name, "a single window without start and end dates")
            return
        raw |= {
            "kind": "one-off",
            "startsAt": _instant(w["start_date"]),
            "endsAt": _instant(w["end_date"]),
        }
        notes.append("dates read as UTC")
    elif strategy in ("cron", "recurring-weekday", "recurring-day-of-month") and w.get("cron"):
        raw |= {
            "kind": "recurring",
            "cron": str(w["cron"]),
            "timezone": zone,
            "duration": int(w.get("duration") or 3600),
        }
    else:
        skip(
            plan,
            "maintenance",
            name,
            f"strategy {strategy!r} has no counterpart (manual or every N days): create it by hand",
        )
        return
    if not monitors:
        skip(
            plan,
            "maintenance",
            name,
            "it covers no monitor (Kuma windows may cover status pages only)",
        )
        return
    spec = window_spec(raw)
    if isinstance(spec, str):
        skip(plan, "maintenance", name, f"not a valid window here: {spec}")
        return
    plan.windows.append(
        PlannedWindow(spec=spec, entry=entry("maintenance", name, notes), monitors=monitors)
    )


def _instant(value: Any) -> str:
    text = str(value).strip().replace(" ", "T")
    return text if text.endswith("Z") or "+" in text[10:] else text + "Z"
