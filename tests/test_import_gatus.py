"""`dragonopsd import gatus`: a Gatus config.yaml as Gatus documents it, into a real database."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from dragonopsd.cli import main
from dragonopsd.cli.state import lock
from dragonopsd.config import load, with_overrides

CONFIG = Path(__file__).parent / "imports" / "gatus.yaml"


def rows(state: Path, table: str) -> dict[str, dict[str, object]]:
    """name -> the row, the JSON columns decoded."""
    conn = sqlite3.connect(state / "dragonops.db")
    conn.row_factory = sqlite3.Row
    try:
        out = {}
        for r in conn.execute(f"SELECT * FROM {table}"):
            row = dict(r)
            for key in ("spec", "config", "scope", "events"):
                if isinstance(row.get(key), str):
                    row[key] = json.loads(row[key])
            out[row["name"]] = row
        return out
    finally:
        conn.close()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("SLACK_TOKEN", "tok123")
    monkeypatch.delenv("UNSET_GATUS_TOKEN", raising=False)
    state = tmp_path / "state"
    assert main(["db", "migrate", "--state-dir", str(state)]) == 0
    return state


def test_dry_run_reports_everything_and_writes_nothing(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "gatus", str(CONFIG), "--dry-run", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert rows(state, "monitors") == {} and rows(state, "notification_channels") == {}
    assert rows(state, "maintenance_windows") == {}
    assert "skipped  monitor     'starttls-smtp-example'" in out
    assert "url scheme 'ssh' has no monitor kind here" in out
    assert "provider zulip has no channel kind" in out
    assert "${UNSET_GATUS_TOKEN} is not set in the environment" in out
    assert "mapped   monitor     'front-end' (create)" in out
    assert "8 imported, 6 mapped with a change, 3 skipped; would be written" in out


def test_import_maps_each_part_and_twice_changes_nothing(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "gatus", str(CONFIG), "--state-dir", str(state)]) == 0
    monitors = rows(state, "monitors")
    assert set(monitors) == {
        "front-end", "api", "example-dns-query", "icmp-ping", "redis-tcp",
        "tls-ldaps-example", "ext-ep-test",
    }  # fmt: skip
    front = monitors["front-end"]["spec"]
    assert front["kind"] == "http" and front["interval"] == 300 and front["tags"] == ["core"]
    assert front["conditions"] == [
        "[STATUS] == 200",
        "[BODY].status == UP",
        "[RESPONSE_TIME] < 150",
    ]
    assert front["failureThreshold"] == 5
    api = monitors["api"]["spec"]
    assert api["method"] == "POST" and api["body"] == '{"ping": true}'
    assert api["verifyTls"] is False and api["timeout"] == 5
    assert api["headers"]["Authorization"] == "Bearer ${UNSET_GATUS_TOKEN}"  # left, warned
    dns = monitors["example-dns-query"]["spec"]
    assert (dns["kind"], dns["host"], dns["recordType"], dns["resolver"]) == (
        "dns", "example.com", "A", "8.8.8.8",
    )  # fmt: skip
    tcp = monitors["redis-tcp"]["spec"]
    assert (tcp["kind"], tcp["host"], tcp["port"], tcp["interval"]) == (
        "tcp",
        "127.0.0.1",
        6379,
        30,
    )
    assert monitors["icmp-ping"]["spec"]["kind"] == "icmp"
    assert monitors["tls-ldaps-example"]["spec"]["port"] == 636
    push = monitors["ext-ep-test"]
    assert push["spec"]["kind"] == "push" and push["spec"]["interval"] == 1800
    assert push["push_token"]

    channels = rows(state, "notification_channels")
    assert set(channels) == {
        "gatus slack", "gatus discord", "gatus email", "gatus telegram", "gatus custom",
    }  # fmt: skip
    slack = channels["gatus slack"]
    assert slack["config"]["url"] == "https://hooks.slack.com/services/T000/B000/tok123"  # ${VAR}
    assert slack["scope"] == {"monitorIds": [monitors["front-end"]["id"]]}
    discord = channels["gatus discord"]["scope"]["monitorIds"]
    assert sorted(discord) == sorted([monitors["redis-tcp"]["id"], monitors["ext-ep-test"]["id"]])
    email = channels["gatus email"]["config"]
    assert email["to"] == ["ops@example.com", "oncall@example.com"] and email["port"] == 587
    assert channels["gatus telegram"]["kind"] == "apprise"
    assert channels["gatus telegram"]["config"]["urls"] == ["tgram://123456:ABCdef/987654"]
    assert channels["gatus telegram"]["enabled"] == 0  # no endpoint alerts through it

    windows = rows(state, "maintenance_windows")
    assert set(windows) == {"maintenance", "api maintenance 1"}
    everyone = windows["maintenance"]
    assert everyone["cron"] == "0 23 * * 1,4" and everyone["duration"] == 3600
    assert everyone["timezone"] == "Europe/Amsterdam"
    assert windows["api maintenance 1"]["cron"] == "30 7 * * *"
    capsys.readouterr()

    # Twice: matched by name, nothing duplicated, nothing rewritten.
    assert main(["import", "gatus", str(CONFIG), "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "(create)" not in out and "(update)" not in out
    assert out.count("(unchanged)") == 14
    assert rows(state, "monitors").keys() == monitors.keys()
    assert len(rows(state, "notification_channels")) == 5

    # A changed source updates the one it matches by name.
    changed = CONFIG.read_text().replace("interval: 5m", "interval: 2m")
    edited = state.parent / "config.yaml"
    edited.write_text(changed)
    assert main(["import", "gatus", str(edited), "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out
    assert "'front-end' (update)" in out
    after = rows(state, "monitors")
    assert (
        after["front-end"]["id"] == front_id(monitors)
        and after["front-end"]["spec"]["interval"] == 120
    )


def front_id(monitors: dict[str, dict[str, object]]) -> object:
    return monitors["front-end"]["id"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "endpoints:\n  - name: a\n    url: 'https://a.example/?k=S3CR3T",
            "not valid YAML at line 3",
        ),
        ("endpoints: 3\n", "endpoints: expected a list"),
        ("web:\n  port: 8080\n", "no endpoints"),
        ("endpoints:\n  - url: https://a.example\n", "endpoints[0].name: required"),
        ("endpoints:\n  - name: a\n    url: https://a.example\n    interval: soon\n", "interval"),
    ],
)
def test_invalid_or_truncated_input_exits_2_and_writes_nothing(
    state: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    good = CONFIG.read_text()
    path = state.parent / "config.yaml"
    path.write_text(text)
    assert main(["import", "gatus", str(path), "--state-dir", str(state)]) == 2
    err = capsys.readouterr().err
    assert "nothing imported" in err and message in err
    assert "S3CR3T" not in err  # the offending line is located, never quoted
    assert rows(state, "monitors") == {}
    # Truncating the real file anywhere in its endpoints still writes nothing or all of it.
    path.write_text(good[: good.index("endpoints:") + 40])
    code = main(["import", "gatus", str(path), "--state-dir", str(state)])
    assert code == 2 and rows(state, "monitors") == {}


def test_refused_while_a_daemon_serves_the_state_directory(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The lock `serve` holds for as long as it runs (flock: a second open description conflicts).
    held = lock(with_overrides(load(None), storage={"state_dir": str(state)}))
    try:
        assert main(["import", "gatus", str(CONFIG), "--state-dir", str(state)]) == 2
    finally:
        os.close(held)
    err = capsys.readouterr().err
    assert "POST /api/import" in err and "already serving" in err
    assert rows(state, "monitors") == {}
