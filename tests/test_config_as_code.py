"""[[maintenance]] and [[notifications]] in the config file: validated with the key named,
synced at start and on reload like [[monitors]] (all or nothing, API rows left alone), owned by
the file (the API answers 409), channel credentials as ${secret:NAME} read at delivery."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from cluster_helpers import call, start_core
from conftest import Client, post
from pg import fresh_database
from redis_helpers import SHARED_URL

from dragonopsd.appkeys import CONFIG
from dragonopsd.cli import main
from dragonopsd.reload import RELOADER

pytestmark = pytest.mark.backends

MONITORS = [
    {"name": "shop", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": 60},
    {"name": "db", "kind": "tcp", "host": "127.0.0.1", "port": 9, "interval": 60},
]
WEEKLY = {
    "name": "weekly",
    "kind": "recurring",
    "cron": "0 2 * * 0",
    "duration": 3600,
    "scope": {"monitors": ["shop"]},
}
HOOK = {
    "name": "hook",
    "kind": "webhook",
    "events": ["down"],
    "scope": {"monitors": ["db"], "tags": ["x"]},
    "config": {"url": "${secret:HOOK_URL}", "secret": "${secret:prod/HOOK_SIGNING}"},
}


def test_check_config_names_each_bad_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        """
[[maintenance]]
name = "a"
kind = "recurring"
cron = "0 2 * * 0"
duration = 3600
every = "1w"
scope = {all = true}

[[maintenance]]
name = "b"
kind = "recurring"
cron = "0 25 * * *"
duration = 3600
scope = {monitors = ["shop"]}

[[maintenance]]
name = "c"
kind = "one-off"
starts_at = "2027-01-01T00:00:00Z"
ends_at = "2027-01-01T01:00:00Z"
scope = {client_ids = ["not-a-uuid"]}

[[notifications]]
name = "chat"
kind = "slack"
config = {url = "https://hooks.slack.com/services/T/B/plain-token"}

[[notifications]]
name = "mail"
kind = "email"
[notifications.config]
host = "smtp.example"
from = "a@example.com"
to = ["b@example.com"]
verify_tlss = false

[[notifications]]
name = "pager"
kind = "pagerduty"
config = {}

[[notifications]]
name = "hook"
kind = "webhook"
scope = {monitors = "shop"}
config = {url = "${secret:HOOK}"}
"""
    )
    capsys.readouterr()
    assert main(["check-config", "--config", str(path), "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    for expected in (
        "maintenance[0].every: unknown key",
        "maintenance[1].cron: invalid cron expression",
        "maintenance[2].scope.client_ids[0]: Invalid UUID",
        "notifications[0].config.url: a credential: write a ${secret:NAME} reference",
        "notifications[1].config.verify_tlss: unknown key",
        "notifications[2].kind: Invalid value 'pagerduty'",
        "notifications[3].scope.monitors: expected a list of monitor names",
    ):
        assert expected in err, err
    assert "plain-token" not in err


async def _lists(client: Client) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    monitors = (await (await client.get("/api/monitors")).json())["items"]
    windows = (await (await client.get("/api/maintenance")).json())["items"]
    channels = (await (await client.get("/api/notifications")).json())["items"]
    return (
        {w["name"]: w for w in windows},
        {c["name"]: c for c in channels},
        {m["name"]: m["id"] for m in monitors},
    )


async def test_synced_at_start_and_reload_and_owned_by_the_file(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await make_client(monitors=MONITORS, maintenance=[WEEKLY], notifications=[HOOK])
    by_api = await post(
        client, "/api/maintenance", {**WEEKLY, "name": "by api", "scope": {"all": True}}
    )
    windows, channels, ids = await _lists(client)
    assert windows["weekly"]["managedBy"] == "config" and by_api["managedBy"] == "api"
    assert windows["weekly"]["scope"]["monitorIds"] == [ids["shop"]]
    hook = channels["hook"]
    assert hook["managedBy"] == "config"
    assert hook["scope"]["monitorIds"] == [ids["db"]] and hook["scope"]["tags"] == ["x"]
    assert hook["config"] == HOOK["config"]  # references, shown as written

    # The file owns them: the API refuses, and changes nothing.
    for method, path, body in (
        ("PATCH", f"/api/maintenance/{windows['weekly']['id']}", {"duration": 60}),
        ("DELETE", f"/api/maintenance/{windows['weekly']['id']}", None),
        ("PATCH", f"/api/notifications/{hook['id']}", {"enabled": False}),
        ("DELETE", f"/api/notifications/{hook['id']}", None),
    ):
        resp = await client.request(method, path, json=body)
        assert resp.status == 409, await resp.text()
        assert "managed by the config file" in (await resp.json())["detail"]

    # A referenced secret that does not exist yet: the delivery says which, never a value.
    result = await (await client.post(f"/api/notifications/{hook['id']}/test")).json()
    assert result["ok"] is False and "HOOK_URL" in result["error"]

    weekly_id = windows["weekly"]["id"]
    reloader = client.app[RELOADER]
    cfg = client.app[CONFIG]
    # The same file again changes nothing (not even updatedAt).
    assert (await reloader.apply(cfg)).problems == []
    assert await _lists(client) == (windows, channels, ids)
    changed = {**WEEKLY, "duration": 7200, "scope": {"monitors": ["shop", "db"]}}
    once = {"name": "once", "kind": "one-off", "startsAt": "2027-01-01T00:00:00Z",
            "endsAt": "2027-01-01T01:00:00Z", "scope": {"all": True}}  # fmt: skip
    report = await reloader.apply(
        msgspec.structs.replace(cfg, maintenance=[changed, once], notifications=[])
    )
    assert report.problems == []
    windows, channels, ids = await _lists(client)
    assert windows["weekly"]["duration"] == 7200 and windows["weekly"]["id"] == weekly_id
    assert sorted(windows["weekly"]["scope"]["monitorIds"]) == sorted([ids["shop"], ids["db"]])
    assert windows["once"]["managedBy"] == "config" and "by api" in windows
    assert channels == {}

    # All or nothing: one bad table and the file's windows stay as they were.
    bad = {**WEEKLY, "name": "extra", "scope": {"monitors": ["nope"]}}
    report = await reloader.apply(
        msgspec.structs.replace(cfg, maintenance=[WEEKLY, bad], notifications=[HOOK])
    )
    assert report.problems == ["maintenance[1].scope.monitors: no monitor is named 'nope'"]
    after, channels, _ = await _lists(client)
    assert after == windows
    assert set(channels) == {"hook"}  # the channels list was fine on its own


TABLES = """
[[monitors]]
name = "shop"
kind = "tcp"
host = "127.0.0.1"
port = 9
interval = 60

[[maintenance]]
name = "weekly"
kind = "recurring"
cron = "0 2 * * 0"
duration = 3600
scope = { monitors = ["shop"] }

[[notifications]]
name = "hook"
kind = "webhook"
config = { url = "${secret:HOOK_URL}" }
"""


def test_two_cores_sync_the_file_once_and_both_see_it(tmp_path: Path, redis_prefix: str) -> None:
    """Cores on one PostgreSQL database: one syncs under the lease, none doubles a row, and
    each serves the windows and channels the file declared."""
    with fresh_database() as url:
        first = start_core(
            tmp_path, "core-a", SHARED_URL, redis_prefix, None, storage_url=url, tables=TABLES
        )
        token, key = first.token, first.state_dir / "secrets.key"
        cores = [first]
        try:
            cores.append(
                start_core(
                    tmp_path,
                    "core-b",
                    SHARED_URL,
                    redis_prefix,
                    key,
                    storage_url=url,
                    tables=TABLES,
                )
            )
            for core in cores:
                for path, name in (("/api/maintenance", "weekly"), ("/api/notifications", "hook")):
                    status, body = call(core, token, "GET", path)
                    assert status == 200, body
                    assert [(i["name"], i["managedBy"]) for i in body["items"]] == [
                        (name, "config")
                    ]
        finally:
            for core in cores:
                core.kill()
