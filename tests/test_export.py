"""`dragonopsd export`: monitors out as [[monitors]], loaded back with --config: the same set."""

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


def test_toml_round_trips_through_config(
    state: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    want = asyncio.run(stored(state))
    assert len(want) == 7
    capsys.readouterr()
    assert main(["export", "--state-dir", str(state)]) == 0
    text = capsys.readouterr().out
    path = tmp_path / "exported.toml"
    path.write_text(text)
    tomllib.loads(text)  # valid TOML
    cfg = load(path)
    got, problems = parse_monitor_tables(cfg.monitors)
    assert problems == []
    assert {name: spec for name, (_, spec) in got.items()} == want
    assert main(["check-config", "--config", str(path), "--state-dir", str(state)]) == 0


def test_json_has_the_same_tables(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["export", "--format", "json", "--state-dir", str(state)]) == 0
    doc = json.loads(capsys.readouterr().out)
    got, problems = parse_monitor_tables(doc["monitors"])
    assert problems == [] and {n: s for n, (_, s) in got.items()} == asyncio.run(stored(state))
    api = next(t for t in doc["monitors"] if t["name"] == "api")
    assert api["headers"]["Authorization"] == "Bearer ${UNSET_GATUS_TOKEN}"
    assert "enabled" not in api  # defaults left out
