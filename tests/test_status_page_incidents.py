"""What people write shows on the public status page: incidents' updates (messages only),
manual incidents on what a listed monitor sits under, planned maintenance; and a page that
names a monitor that does not exist, or a name several carry, says so."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import Client, post

pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
ANON = {"Authorization": ""}


def _at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_updates_and_planned_maintenance_show_and_bad_references_warn(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(
        status_page={"monitors": ["api", "ghost", "twin"], "cache_seconds": 0}
    )
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    env = await post(client, "/api/environments", {"projectId": p["id"], "name": "Prod"})
    other = await post(client, "/api/environments", {"projectId": p["id"], "name": "Staging"})
    api = await post(
        client, "/api/monitors", {"name": "api", "kind": "push", "environmentId": env["id"]}
    )
    for _ in range(2):
        await post(client, "/api/monitors", {"name": "twin", "kind": "push"})
    shown = await post(
        client,
        "/api/incidents",
        {
            "title": "Checkout is slow",
            "severity": "major",
            "targets": [{"kind": "environment", "id": env["id"]}],
            "message": "Looking into it",
        },
    )
    await post(
        client,
        f"/api/incidents/{shown['id']}/updates",
        {"state": "identified", "message": "A missing index"},
    )
    staging = [{"kind": "environment", "id": other["id"]}]
    body = {"title": "Staging only", "severity": "minor", "targets": staging}
    await post(client, "/api/incidents", body)
    window = {
        "name": "Database upgrade",
        "kind": "one-off",
        "startsAt": _at(24),
        "endsAt": _at(26),
        "scope": {"monitorIds": [api["id"]]},
    }
    await post(client, "/api/maintenance", window)
    elsewhere = {**window, "name": "Unrelated", "scope": {"environmentIds": [other["id"]]}}
    await post(client, "/api/maintenance", elsewhere)

    with caplog.at_level(logging.WARNING, logger="dragonopsd.statuspage"):
        resp = await client.get("/api/status-page", headers=ANON)
    page = await resp.json()
    assert resp.status == 200
    [incident] = page["incidents"]
    assert incident["title"] == "Checkout is slow" and incident["monitorName"] == "api"
    assert incident["state"] == "identified" and incident["severity"] == "major"
    assert [u["message"] for u in incident["updates"]] == ["Looking into it", "A missing index"]
    assert set(incident["updates"][0]) == {"state", "message", "at"}  # no author
    [planned] = page["planned"]
    assert planned["name"] == "Database upgrade" and not planned["active"]
    assert planned["startsAt"] < planned["endsAt"]
    assert any("'ghost' names no monitor" in w for w in page["warnings"]), page["warnings"]
    assert any("'twin' matches 2 monitors" in w for w in page["warnings"]), page["warnings"]
    assert "'ghost' names no monitor" in caplog.text
    resp_text = await (await client.get("/status", headers=ANON)).text()
    assert "A missing index" in resp_text and "Checkout is slow" in resp_text
    assert "Planned maintenance" in resp_text and "Database upgrade" in resp_text
    for leak in (env["id"], "Staging only", "Unrelated", "openedBy", "admin"):
        assert leak not in resp_text and leak not in str(page), leak


def test_check_config_warns_about_page_references(tmp_path: Path) -> None:
    conf = tmp_path / "dragonops.toml"
    conf.write_text(
        f"""
[storage]
state_dir = "{tmp_path}"

[status_page]
monitors = ["api", "ghost"]

[[status_page.pages]]
slug = "team"
title = "Team"
monitors = ["nobody"]

[[monitors]]
name = "api"
kind = "push"
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONOPS_")}
    done = subprocess.run(
        [sys.executable, "-m", "dragonopsd", "check-config", "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr  # warnings, not errors: the daemon still starts
    assert "warning: status_page.monitors: 'ghost' names no monitor" in done.stderr
    assert "warning: status_page.pages[0].monitors: 'nobody' names no monitor" in done.stderr
    assert "'api'" not in done.stderr
