"""`dragonopsd import uptime-kuma`: a kuma.db with Kuma's real schema, one monitor per type."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from kuma_schema import V1_23, V2
from test_import_gatus import rows

from dragonopsd.cli import main

NOTIFY = [
    (1, "hooks", {"type": "webhook", "webhookURL": "https://hooks.example.com/kuma"}),
    (2, "team slack", {"type": "slack", "slackwebhookURL": "https://hooks.slack.com/services/X"}),
    (
        3,
        "discord",
        {"type": "discord", "discordWebhookUrl": "https://discord.com/api/webhooks/1/a"},
    ),
    (4, "teams", {"type": "teams", "webhookUrl": "https://example.webhook.office.com/x"}),
    (5, "mm", {"type": "mattermost", "mattermostWebhookUrl": "https://mm.example.com/hooks/x"}),
    (
        6,
        "mail",
        {
            "type": "smtp",
            "smtpHost": "smtp.example.com",
            "smtpPort": 465,
            "smtpSecure": True,
            "smtpUsername": "kuma",
            "smtpPassword": "s3cret",
            "smtpFrom": "Kuma <kuma@example.com>",
            "smtpTo": "ops@example.com",
        },
    ),
    (7, "tg", {"type": "telegram", "telegramBotToken": "123:abc", "telegramChatID": "42"}),
    (8, "line", {"type": "line", "lineChannelAccessToken": "x"}),
]


def build(path: Path, *, v2: bool = False) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_23 + (V2 if v2 else ""))
    conn.execute("INSERT INTO user (id, username) VALUES (1, 'admin')")
    monitor = (
        "INSERT INTO monitor (id, name, active, type, url, hostname, port, interval, maxretries, "
        "retry_interval, timeout, keyword, invert_keyword, json_path, expected_value, method, "
        "body, headers, basic_auth_user, basic_auth_pass, ignore_tls, maxredirects, "
        "accepted_statuscodes_json, dns_resolve_type, dns_resolve_server, upside_down, parent, "
        "user_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)"
    )
    m = [
        (1, "shop group", 1, "group", None, None, None, 60, 0, 60, 48, None, 0, None, None,
         "GET", None, None, None, None, 0, 10, '["200-299"]', None, None, 0, None),
        (2, "shop api", 1, "http", "https://shop.example.com/api", None, None, 30, 3, 20, 24,
         None, 0, None, None, "POST", '{"a":1}', '{"X-Env":"prod"}', "bob", "hunter2", 1, 0,
         '["200-299"]', None, None, 0, 1),
        (3, "shop keyword", 1, "keyword", "https://shop.example.com/", None, None, 60, 0, 60,
         48, "Welcome", 0, None, None, "GET", None, None, None, None, 0, 10, '["200", "201"]',
         None, None, 0, 1),
        (4, "no errors", 0, "keyword", "https://shop.example.com/", None, None, 60, 0, 60, 48,
         "Error", 1, None, None, "GET", None, None, None, None, 0, 10, '["200-299"]', None, None,
         0, None),
        (5, "json health", 1, "json-query", "https://api.example.com/health", None, None, 60, 0,
         60, 48, None, 0, "status", "ok", "GET", None, None, None, None, 0, 10, '["200-299"]',
         None, None, 0, None),
        (6, "db port", 1, "port", None, "db.example.com", 5432, 60, 2, 30, 48, None, 0, None,
         None, "GET", None, None, None, None, 0, 10, '["200-299"]', None, None, 0, None),
        (7, "gateway ping", 1, "ping", None, "10.0.0.1", None, 60, 0, 60, 48, None, 0, None, None,
         "GET", None, None, None, None, 0, 10, '["200-299"]', None, None, 0, None),
        (8, "mx record", 1, "dns", None, "example.com", 53, 300, 0, 60, 48, None, 0, None, None,
         "GET", None, None, None, None, 0, 10, '["200-299"]', "MX", "1.1.1.1", 0, None),
        (9, "nightly job", 1, "push", None, None, None, 3600, 0, 60, 0, None, 0, None, None,
         "GET", None, None, None, None, 0, 10, '["200-299"]', None, None, 0, None),
        (10, "browser", 1, "real-browser", "https://app.example.com/", None, None, 120, 0, 60,
         48, None, 0, None, None, "GET", None, None, None, None, 0, 10, '["200-299"]', None,
         None, 0, None),
        (11, "container", 1, "docker", None, None, None, 60, 0, 60, 48, None, 0, None, None,
         "GET", None, None, None, None, 0, 10, '["200-299"]', None, None, 0, None),
        (12, "jsonata", 1, "json-query", "https://api.example.com/", None, None, 60, 0, 60, 48,
         None, 0, "$sum(items.price)", "3", "GET", None, None, None, None, 0, 10, '["200-299"]',
         None, None, 0, None),
        (13, "must be down", 1, "port", None, "old.example.com", 22, 60, 0, 60, 48, None, 0,
         None, None, "GET", None, None, None, None, 0, 10, '["200-299"]', None, None, 1, None),
    ]  # fmt: skip
    conn.executemany(monitor, m)
    conn.execute(
        "INSERT INTO tag (id, name, color) VALUES (1, 'prod', '#f00'), (2, 'team', '#0f0')"
    )
    conn.execute(
        "INSERT INTO monitor_tag (monitor_id, tag_id, value) VALUES (2, 1, ''), (2, 2, 'web')"
    )
    for ident, name, config in NOTIFY:
        conn.execute(
            "INSERT INTO notification (id, name, active, user_id, config) VALUES (?, ?, 1, 1, ?)",
            (ident, name, json.dumps(config)),
        )
    conn.execute(
        "INSERT INTO monitor_notification (id, monitor_id, notification_id) VALUES "
        "(1, 2, 2), (2, 3, 2), (3, 6, 6), (4, 2, 7)"
    )
    conn.execute(
        "INSERT INTO maintenance (id, title, description, strategy, cron, timezone, duration, "
        "weekdays) VALUES (1, 'sunday patching', '', 'recurring-weekday', '0 3 * * 0', "
        "'Europe/Paris', 7200, '[0]'), (2, 'by hand', '', 'manual', NULL, NULL, NULL, '[]')"
    )
    conn.execute(
        "INSERT INTO maintenance (id, title, description, strategy, start_date, end_date) "
        "VALUES (3, 'migration', 'db move', 'single', '2027-01-10 22:00:00', '2027-01-11 02:00:00')"
    )
    conn.execute(
        "INSERT INTO monitor_maintenance (monitor_id, maintenance_id) VALUES (2, 1), (6, 1), (6, 3)"
    )
    if v2:
        conn.execute("UPDATE monitor SET json_path_operator = '!=' WHERE id = 5")
    conn.commit()
    conn.close()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("DRAGONOPS_SECRETS_KEYS", raising=False)
    state = tmp_path / "state"
    assert main(["db", "migrate", "--state-dir", str(state)]) == 0
    assert main(["keys", "generate", "--state-dir", str(state)]) == 0
    return state


def secret_keys(state: Path) -> list[str]:
    conn = sqlite3.connect(state / "dragonops.db")
    try:
        return [r[0] for r in conn.execute("SELECT key FROM secrets")]
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_kuma_123_maps_each_type_and_never_writes_the_source(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kuma = tmp_path / "kuma.db"
    build(kuma)
    before = digest(kuma)
    assert main(["import", "uptime-kuma", str(kuma), "--dry-run", "--state-dir", str(state)]) == 0
    assert rows(state, "monitors") == {} and secret_keys(state) == []
    capsys.readouterr()
    assert main(["import", "uptime-kuma", str(kuma), "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert digest(kuma) == before and not (tmp_path / "kuma.db-wal").exists()

    monitors = {name: row["spec"] for name, row in rows(state, "monitors").items()}
    assert set(monitors) == {
        "shop api", "shop keyword", "no errors", "json health", "db port", "gateway ping",
        "mx record", "nightly job", "browser", "must be down",
    }  # fmt: skip
    api = monitors["shop api"]
    assert api["url"] == "https://bob:${secret:KUMA_MONITOR_2_PASSWORD}@shop.example.com/api"
    assert (
        api["method"] == "POST" and api["body"] == '{"a":1}' and api["headers"] == {"X-Env": "prod"}
    )
    assert api["verifyTls"] is False and api["followRedirects"] is False
    assert (api["interval"], api["retries"], api["retryInterval"], api["timeout"]) == (
        30,
        3,
        20,
        24,
    )
    assert api["conditions"] == ["[STATUS] >= 200", "[STATUS] <= 299"]
    assert api["tags"] == ["prod", "team:web", "shop group"]
    assert "hunter2" not in json.dumps(rows(state, "monitors"))
    keyword = monitors["shop keyword"]
    assert keyword["conditions"] == ["[STATUS] == any(200, 201)", "[BODY] == pat(*Welcome*)"]
    inverted = monitors["no errors"]
    assert inverted["enabled"] is False and inverted["conditions"][-1] == "[BODY] != pat(*Error*)"
    assert monitors["json health"]["conditions"][-1] == "[BODY].status == ok"
    assert (monitors["db port"]["kind"], monitors["db port"]["port"]) == ("tcp", 5432)
    assert monitors["gateway ping"]["kind"] == "icmp"
    mx = monitors["mx record"]
    assert (mx["kind"], mx["recordType"], mx["resolver"]) == ("dns", "MX", "1.1.1.1")
    assert monitors["nightly job"]["kind"] == "push"
    assert monitors["browser"]["kind"] == "http"
    assert monitors["must be down"]["conditions"] == ["[CONNECTED] == false"]
    assert "monitor type 'docker' is not imported" in out
    assert "'$sum(items.price)' is a JSONata expression" in out
    assert "a group: its name became a tag" in out

    assert secret_keys(state) == ["KUMA_MONITOR_2_PASSWORD"]

    channels = rows(state, "notification_channels")
    assert set(channels) == {"hooks", "team slack", "discord", "teams", "mm", "mail", "tg"}
    ids = {name: row["id"] for name, row in rows(state, "monitors").items()}
    assert sorted(channels["team slack"]["scope"]["monitorIds"]) == sorted(
        [ids["shop api"], ids["shop keyword"]]
    )
    assert channels["hooks"]["enabled"] == 0  # no monitor used it
    assert channels["tg"]["kind"] == "apprise"
    assert channels["mail"]["kind"] == "email"
    assert "s3cret" not in json.dumps(channels["mail"]["config"])  # sealed at rest
    assert "provider 'line' has no channel kind" in out

    windows = rows(state, "maintenance_windows")
    assert set(windows) == {"sunday patching", "migration"}
    assert windows["sunday patching"]["cron"] == "0 3 * * 0"
    assert windows["sunday patching"]["timezone"] == "Europe/Paris"
    assert windows["migration"]["kind"] == "one-off"
    assert "strategy 'manual' has no counterpart" in out

    # Twice: nothing new, nothing changed.
    assert main(["import", "uptime-kuma", str(kuma), "--state-dir", str(state)]) == 0
    again = capsys.readouterr().out
    assert "(create)" not in again and "(update)" not in again
    assert len(rows(state, "monitors")) == 10 and digest(kuma) == before


def test_kuma_2x_columns_and_bad_files(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kuma = tmp_path / "kuma2.db"
    build(kuma, v2=True)
    assert main(["import", "uptime-kuma", str(kuma), "--state-dir", str(state)]) == 0
    spec = rows(state, "monitors")["json health"]["spec"]
    assert spec["conditions"][-1] == "[BODY].status != ok"
    capsys.readouterr()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\x07" * 300)
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(kuma.read_bytes()[:2000])
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    for path in (garbage, truncated, other, tmp_path / "missing.db"):
        assert main(["import", "uptime-kuma", str(path), "--state-dir", str(state)]) == 2
        assert "nothing imported" in capsys.readouterr().err


def test_without_a_secrets_key_the_password_is_not_stored_and_said_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("DRAGONOPS_SECRETS_KEYS", raising=False)
    state = tmp_path / "nokey"
    assert main(["db", "migrate", "--state-dir", str(state)]) == 0
    kuma = tmp_path / "kuma.db"
    build(kuma)
    capsys.readouterr()
    assert main(["import", "uptime-kuma", str(kuma), "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "warning: KUMA_MONITOR_2_PASSWORD is referenced but not stored" in out
    assert "skipped  secret      'KUMA_MONITOR_2_PASSWORD'" in out
    assert secret_keys(state) == [] and "hunter2" not in out
