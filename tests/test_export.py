"""`dragonopsd export`: monitors out as [[monitors]], loaded back with --config: the same set.
(tests/test_export_config.py round-trips windows and channels through a fresh daemon.)"""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest
from test_import_gatus import CONFIG

from dragonopsd.cli import main
from dragonopsd.config import load
from dragonopsd.model.monitor import MonitorSpec
from dragonopsd.monitoring.service import parse_monitor_tables
from dragonopsd.store.db import Database
from dragonopsd.store.monitors import MonitorStore


async def stored(state: Path) -> dict[str, MonitorSpec]:
    db = Database(state / "dragonops.db")
    await db.open()
    try:
        return {r.monitor.name: r.spec for r in await MonitorStore(db).all()}
    finally:
        await db.close()


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("SLACK_TOKEN", "tok123")
    state = tmp_path / "state"
    assert main(["db", "migrate", "--state-dir", str(state)]) == 0
    assert main(["import", "gatus", str(CONFIG), "--state-dir", str(state)]) == 0
    return state


def test_without_a_secrets_key_channel_credentials_stop_the_export(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The imported Slack channel holds its webhook URL: the export would have to print it."""
    capsys.readouterr()
    assert main(["export", "--state-dir", str(state)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "dragonopsd keys generate" in err and "tok123" not in err


@pytest.fixture
def keyed(state: Path) -> Path:
    """The state with a secrets key: the export moves channel credentials into secrets."""
    assert main(["keys", "generate", "--state-dir", str(state)]) == 0
    return state


def test_toml_round_trips_through_config(
    keyed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = keyed
    want = asyncio.run(stored(state))
    assert len(want) == 7
    capsys.readouterr()
    assert main(["export", "--state-dir", str(state)]) == 0
    text, err = capsys.readouterr()
    assert "tok123" not in text and "tok123" not in err
    assert "config.url created as secret CHANNEL_GATUS_SLACK_URL" in err
    path = tmp_path / "exported.toml"
    path.write_text(text)
    tomllib.loads(text)  # valid TOML
    cfg = load(path)
    got, problems = parse_monitor_tables(cfg.monitors)
    assert problems == []
    assert {name: spec for name, (_, spec) in got.items()} == want
    assert main(["check-config", "--config", str(path), "--state-dir", str(state)]) == 0


def test_json_has_the_same_tables(keyed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = keyed
    capsys.readouterr()
    assert main(["export", "--format", "json", "--state-dir", str(state)]) == 0
    doc = json.loads(capsys.readouterr().out)
    got, problems = parse_monitor_tables(doc["monitors"])
    assert problems == [] and {n: s for n, (_, s) in got.items()} == asyncio.run(stored(state))
    api = next(t for t in doc["monitors"] if t["name"] == "api")
    assert api["headers"]["Authorization"] == "Bearer ${UNSET_GATUS_TOKEN}"
    assert "enabled" not in api  # defaults left out
