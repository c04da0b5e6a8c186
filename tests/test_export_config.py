"""`dragonopsd export` to GitOps and back: monitors, maintenance windows and notification
channels made through the API of a real daemon, exported, then loaded with --config by a fresh
daemon on an empty database with the same key file and secrets. The same set comes back, the
secrets stay out of the file, and the channels' references resolve to the same values."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import sqlite3
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemon import Daemon
from test_cli import http

from dragonopsd.cli import main
from dragonopsd.store.vault import KEYCHECK

HOOK_TOKEN = "hook-path-token-6a1f9c"
SIGNING = "signing-secret-0123456789abcdef"
SMTP_PASSWORD = "smtp-pass-77c1e0"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-token-93bd2a"
API_TOKEN = "api-bearer-3f0e4d"
CLEAR = (HOOK_TOKEN, SIGNING, SMTP_PASSWORD, "slack-token-93bd2a", API_TOKEN, "apprise-path-5d2c")


class Receiver(ThreadingHTTPServer):
    """Records each POST: path, headers, body."""

    seen: list[tuple[str, dict[str, str], bytes]]


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.seen.append((self.path, dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), _Handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def ok(d: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    status, doc = http(d, method, path, body)
    assert status < 300, (method, path, status, doc)
    return doc


def _create(d: Daemon, hook: str, apprise: str) -> None:
    ok(d, "POST", "/api/secrets", {"key": "API_TOKEN", "value": API_TOKEN})
    shop = ok(d, "POST", "/api/monitors", {
        "name": "shop", "kind": "http", "url": "http://127.0.0.1:9/health", "interval": 30,
        "tags": ["shop"], "headers": {"Authorization": "Bearer ${secret:API_TOKEN}"},
        "conditions": ["[STATUS] == 200"],
    })  # fmt: skip
    db = ok(d, "POST", "/api/monitors", {"name": "db", "kind": "tcp", "host": "127.0.0.1",
                                         "port": 9, "interval": 15})  # fmt: skip
    ok(d, "POST", "/api/monitors", {"name": "nightly", "kind": "push", "cron": "30 2 * * *",
                                    "timezone": "Europe/Berlin", "grace": 1800})  # fmt: skip
    client = ok(d, "POST", "/api/clients", {"name": "Umbrella"})
    ok(d, "POST", "/api/maintenance", {
        "name": "weekly patching", "kind": "recurring", "cron": "0 2 * * 0",
        "timezone": "Europe/Berlin", "duration": 7200,
        "scope": {"monitorIds": [shop["id"], db["id"]], "clientIds": [client["id"]]},
    })  # fmt: skip
    ok(d, "POST", "/api/maintenance", {
        "name": "migration", "kind": "one-off", "description": "move to the new rack",
        "startsAt": "2027-03-01T22:00:00Z", "endsAt": "2027-03-02T02:00:00Z",
        "scope": {"all": True}, "enabled": False,
    })  # fmt: skip
    ok(d, "POST", "/api/notifications", {
        "name": "on-call", "kind": "webhook", "events": ["down", "up"],
        "config": {"url": hook, "secret": SIGNING}, "scope": {"monitorIds": [shop["id"]]},
    })  # fmt: skip
    ok(d, "POST", "/api/notifications", {"name": "team chat", "kind": "slack",
        "config": {"url": SLACK_URL}, "scope": {"tags": ["shop"]}})  # fmt: skip
    ok(d, "POST", "/api/notifications", {
        "name": "mail", "kind": "email", "enabled": False,
        "config": {"host": "smtp.example", "port": 465, "security": "tls", "username": "ops",
                   "password": SMTP_PASSWORD, "from": "ops@example.com",
                   "to": ["oncall@example.com"]},
    })  # fmt: skip
    ok(d, "POST", "/api/notifications", {"name": "phones", "kind": "apprise", "events": ["down"],
        "config": {"urls": [apprise]}})  # fmt: skip


def _snapshot(d: Daemon) -> dict[str, Any]:
    """Everything a user set, monitors named by name instead of by id."""
    monitors = ok(d, "GET", "/api/monitors?limit=100")["items"]
    names = {m["id"]: m["name"] for m in monitors}
    drop = {"id", "createdAt", "updatedAt", "status", "managedBy", "pushToken", "activeNow",
            "next", "hasSecret"}  # fmt: skip

    def clean(item: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in item.items() if k not in drop}
        if "scope" in out:
            scope = dict(out["scope"])
            scope["monitorIds"] = sorted(names[i] for i in scope["monitorIds"])
            out["scope"] = scope
        return out

    return {
        "monitors": {m["name"]: clean(m) for m in monitors},
        "maintenance": {w["name"]: clean(w) for w in ok(d, "GET", "/api/maintenance")["items"]},
        "notifications": {c["name"]: clean(c) for c in ok(d, "GET", "/api/notifications")["items"]},
    }


def _copy_secrets(one: Path, two: Path) -> None:
    """The secrets (sealed as they are, with their key checks) into the new database."""
    with sqlite3.connect(two) as conn:
        conn.execute("ATTACH DATABASE ? AS one", (str(one),))
        conn.execute("INSERT INTO secrets SELECT * FROM one.secrets")
        conn.execute("INSERT INTO meta SELECT * FROM one.meta WHERE key LIKE ?", (KEYCHECK + "%",))
    conn.close()


def test_export_loads_back_as_the_same_set(
    tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    base = f"http://127.0.0.1:{receiver.server_address[1]}"
    hook, apprise = (
        f"{base}/hook/{HOOK_TOKEN}",
        f"json://127.0.0.1:{receiver.server_address[1]}/apprise-path-5d2c",
    )
    with Daemon(one) as d:
        d.wait_listening()
        _create(d, hook, apprise)
        want = _snapshot(d)
        capsys.readouterr()
        # Beside the running daemon: the channels' credentials go to its secrets store.
        assert main(["export", "--state-dir", str(one)]) == 0
        text, notes = capsys.readouterr()
        assert main(["export", "--format", "json", "--state-dir", str(one)]) == 0
        as_json, again = capsys.readouterr()
        assert "kept as secret CHANNEL_ON_CALL_URL" in again  # a second export reuses them
        secrets = {s["key"] for s in ok(d, "GET", "/api/secrets")["items"]}
        d.stop()
    for value in CLEAR:
        assert value not in text and value not in as_json and value not in notes
    assert "config.url created as secret CHANNEL_ON_CALL_URL" in notes
    assert {"CHANNEL_ON_CALL_URL", "CHANNEL_ON_CALL_SECRET", "CHANNEL_TEAM_CHAT_URL",
            "CHANNEL_MAIL_PASSWORD", "CHANNEL_PHONES_URLS_1"} <= secrets  # fmt: skip
    doc = tomllib.loads(text)
    assert json.loads(as_json) == doc  # the same tables in either format
    assert [len(doc[k]) for k in ("monitors", "maintenance", "notifications")] == [3, 2, 4]
    weekly = next(t for t in doc["maintenance"] if t["name"] == "weekly patching")
    assert weekly["scope"]["monitors"] == ["shop", "db"]  # by name: ids differ elsewhere
    on_call = next(t for t in doc["notifications"] if t["name"] == "on-call")
    assert on_call["config"] == {
        "url": "${secret:CHANNEL_ON_CALL_URL}",
        "secret": "${secret:CHANNEL_ON_CALL_SECRET}",
    }
    exported = tmp_path / "exported.toml"
    exported.write_text(text)
    assert main(["check-config", "--config", str(exported), "--state-dir", str(two)]) == 0

    # A fresh database with the same key file and the same secrets.
    assert main(["db", "migrate", "--state-dir", str(two)]) == 0
    shutil.copy2(one / "secrets.key", two / "secrets.key")
    _copy_secrets(one / "dragonops.db", two / "dragonops.db")
    with Daemon(two, "--config", str(exported)) as d:
        d.wait_listening()
        assert _snapshot(d) == _with_references(want)
        channels = {c["name"]: c for c in ok(d, "GET", "/api/notifications")["items"]}
        windows = ok(d, "GET", "/api/maintenance")["items"]
        assert {c["managedBy"] for c in channels.values()} == {"config"}
        assert {w["managedBy"] for w in windows} == {"config"}
        # The file owns them now: the API refuses to change them.
        ident = channels["on-call"]["id"]
        status, problem = http(d, "PATCH", f"/api/notifications/{ident}", {"enabled": False})
        assert status == 409 and "[[notifications]]" in problem["detail"]
        assert http(d, "DELETE", f"/api/maintenance/{windows[0]['id']}")[0] == 409
        # The references resolve to the values the channels had.
        receiver.seen.clear()
        assert ok(d, "POST", f"/api/notifications/{ident}/test")["ok"] is True
        assert ok(d, "POST", f"/api/notifications/{channels['phones']['id']}/test")["ok"]
        paths = {p: (h, b) for p, h, b in receiver.seen}
        headers, body = paths[f"/hook/{HOOK_TOKEN}"]
        mac = hmac.new(SIGNING.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-DragonOps-Signature"] == f"sha256={mac}"
        assert "/apprise-path-5d2c" in paths
        for value in CLEAR:
            assert value not in d.log


def _with_references(want: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of the exported channels: references where values were masked."""
    out = json.loads(json.dumps(want))
    refs = {
        "on-call": {"url": "${secret:CHANNEL_ON_CALL_URL}",
                    "secret": "${secret:CHANNEL_ON_CALL_SECRET}"},
        "team chat": {"url": "${secret:CHANNEL_TEAM_CHAT_URL}"},
        "mail": {"password": "${secret:CHANNEL_MAIL_PASSWORD}"},
        "phones": {"urls": ["${secret:CHANNEL_PHONES_URLS_1}"]},
    }  # fmt: skip
    for name, config in refs.items():
        out["notifications"][name]["config"] |= config
    return out
