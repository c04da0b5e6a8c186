"""An import is one transaction: when the database refuses an object late in the write (here the
last maintenance window, refused by a trigger the site added, after the secret, every monitor,
every channel and the first window were written), nothing of the import is left, nothing is
scheduled or announced, and the daemon carries on."""

from __future__ import annotations

import base64
import sqlite3
from pathlib import Path

import pytest
from conftest import Client
from pg import psql
from test_import_kuma import build

from dragonopsd.appkeys import BUS, CONFIG
from dragonopsd.cli import main

pytestmark = pytest.mark.backends

TABLES = ("secrets", "monitors", "notification_channels", "maintenance_windows")
# Kuma's windows are written in source order: "migration" is the last object of the import.
SQLITE_TRIGGER = (
    "CREATE TRIGGER refuse_window BEFORE INSERT ON maintenance_windows "
    "WHEN NEW.name = 'migration' BEGIN SELECT RAISE(ABORT, 'no window named migration'); END"
)
PG_TRIGGER = """
CREATE FUNCTION refuse_window() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'migration' THEN
        RAISE EXCEPTION 'no window named migration' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER refuse_window BEFORE INSERT ON maintenance_windows
    FOR EACH ROW EXECUTE FUNCTION refuse_window();
"""


def run_sql(storage_url: str, sqlite_file: Path, script: str) -> str:
    """Run script on the test's database from outside the daemon (psql, or sqlite3); the
    first column of the first row, if any."""
    if storage_url:
        return psql(script, storage_url.rsplit("/", 1)[1])
    conn = sqlite3.connect(sqlite_file)
    try:
        if script.startswith("SELECT"):
            return str(conn.execute(script).fetchone()[0])
        conn.executescript(script)
        return ""
    finally:
        conn.close()


def refuse_window(storage_url: str, sqlite_file: Path) -> None:
    run_sql(storage_url, sqlite_file, PG_TRIGGER if storage_url else SQLITE_TRIGGER)


def allow_window(storage_url: str, sqlite_file: Path) -> None:
    on = " ON maintenance_windows" if storage_url else ""
    run_sql(storage_url, sqlite_file, f"DROP TRIGGER refuse_window{on}")


def counts(storage_url: str, sqlite_file: Path) -> dict[str, int]:
    return {
        table: int(run_sql(storage_url, sqlite_file, f"SELECT count(*) FROM {table}"))
        for table in TABLES
    }


NOTHING = dict.fromkeys(TABLES, 0)


def test_cli_import_refused_late_exits_2_and_writes_nothing(
    storage_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.delenv("DRAGONOPS_SECRETS_KEYS", raising=False)
    if storage_url:
        monkeypatch.setenv("DRAGONOPS_STORAGE__URL", storage_url)
    state = tmp_path / "state"
    assert main(["db", "migrate", "--state-dir", str(state)]) == 0
    assert main(["keys", "generate", "--state-dir", str(state)]) == 0
    db_file = state / "dragonops.db"
    kuma = tmp_path / "kuma.db"
    build(kuma)
    refuse_window(storage_url, db_file)
    capsys.readouterr()

    argv = ["import", "uptime-kuma", str(kuma), "--state-dir", str(state)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "nothing imported: maintenance 'migration'" in err, err
    assert "no window named migration" in err
    assert counts(storage_url, db_file) == NOTHING

    # Nothing was left behind to trip over: without the trigger the same file imports whole.
    allow_window(storage_url, db_file)
    assert main(argv) == 0
    assert counts(storage_url, db_file) == {
        "secrets": 1,
        "monitors": 10,
        "notification_channels": 7,
        "maintenance_windows": 2,
    }


async def test_api_import_refused_late_is_422_and_writes_nothing(
    client: Client, storage_url: str, tmp_path: Path
) -> None:
    cfg = client.app[CONFIG]
    db_file = cfg.resolve(cfg.storage.path)
    kuma = tmp_path / "kuma.db"
    build(kuma)
    body = {"source": "uptime-kuma", "content": base64.b64encode(kuma.read_bytes()).decode()}
    refuse_window(storage_url, db_file)
    events = client.app[BUS].subscribe(["secrets", "notify.channels"])

    resp = await client.post("/api/import", json=body)
    problem = await resp.json(content_type=None)
    assert resp.status == 422, problem
    assert resp.content_type == "application/problem+json"
    assert "$.content" in str(problem) and "maintenance 'migration'" in str(problem)
    assert counts(storage_url, db_file) == NOTHING
    for path in ("/api/monitors", "/api/notifications", "/api/maintenance", "/api/secrets"):
        resp = await client.get(path)
        assert resp.status == 200 and (await resp.json())["items"] == [], path
    # Nothing scheduled, nothing announced: those wait for a COMMIT that never came.
    board = await (await client.get("/api/monitoring")).json()
    assert board["items"] == []
    assert events.queue.empty()

    # The daemon carries on: ready, and the same import goes through once the trigger is gone.
    assert (await client.get("/readyz")).status == 200
    allow_window(storage_url, db_file)
    resp = await client.post("/api/import", json=body)
    assert resp.status == 200, await resp.text()
    assert counts(storage_url, db_file)["monitors"] == 10
    board = await (await client.get("/api/monitoring")).json()
    assert len(board["items"]) == 10
    assert not events.queue.empty()  # the secret's event, now that it committed
