"""POST /api/import: the same import through the running daemon, which schedules it at once."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import Client, post, token_for
from test_import_gatus import CONFIG
from test_import_kuma import build

from dragonopsd.appkeys import MONITORS

pytestmark = pytest.mark.backends


async def names(client: Client, path: str) -> set[str]:
    resp = await client.get(path)
    assert resp.status == 200
    return {item["name"] for item in (await resp.json())["items"]}


async def test_gatus_dry_run_then_import_then_again(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "tok123")
    body: dict[str, Any] = {"source": "gatus", "content": CONFIG.read_text(), "dryRun": True}
    report = await post(client, "/api/import", body, status=200)
    assert report["dryRun"] is True and await names(client, "/api/monitors") == set()
    outcomes = {(e["kind"], e["name"]): e for e in report["entries"]}
    assert outcomes[("monitor", "front-end")]["action"] == "create"
    assert outcomes[("monitor", "ssh-example")]["outcome"] == "skipped"

    body["dryRun"] = False
    report = await post(client, "/api/import", body, status=200)
    assert len(await names(client, "/api/monitors")) == 7
    assert "gatus slack" in await names(client, "/api/notifications")
    assert {"maintenance", "api maintenance 1"} <= await names(client, "/api/maintenance")
    # Scheduled at once: the engine knows every imported monitor.
    rows = await client.app[MONITORS].store.all()
    assert all(client.app[MONITORS].view(r).status in ("pending", "up", "down") for r in rows)

    again = await post(client, "/api/import", body, status=200)
    assert {e["action"] for e in again["entries"]} <= {"unchanged", "none"}
    assert len(await names(client, "/api/monitors")) == 7


async def test_kuma_as_base64_stores_the_password_as_a_secret(
    client: Client, tmp_path: Path
) -> None:
    kuma = tmp_path / "kuma.db"
    build(kuma)
    content = base64.b64encode(kuma.read_bytes()).decode()
    report = await post(
        client, "/api/import", {"source": "uptime-kuma", "content": content}, status=200
    )
    assert report["source"] == "uptime-kuma"
    assert "shop api" in await names(client, "/api/monitors")
    resp = await client.get("/api/secrets")
    assert [s["key"] for s in (await resp.json())["items"]] == ["KUMA_MONITOR_2_PASSWORD"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "gatus", "content": "endpoints:\n  - name: 'a"}, "$.content"),
        ({"source": "gatus", "content": "web: {}\n"}, "$.content"),
        ({"source": "uptime-kuma", "content": "not base64!"}, "$.content"),
        ({"source": "uptime-kuma", "content": base64.b64encode(b"junk").decode()}, "$.content"),
        ({"source": "nagios", "content": "x"}, "$.source"),
        ({"source": "gatus", "content": "x", "extra": 1}, "$.extra"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/import", json=body)
    problem = await resp.json(content_type=None)
    assert resp.status == 422, problem
    assert resp.content_type == "application/problem+json"
    assert field in str(problem)
    assert await names(client, "/api/monitors") == set()


async def test_only_admins_import(client: Client) -> None:
    token = await token_for(client.app, "operator")
    resp = await client.post(
        "/api/import",
        json={"source": "gatus", "content": CONFIG.read_text()},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 403


async def test_multipart_upload_of_kuma_db(client: Client, tmp_path: Path) -> None:
    kuma = tmp_path / "kuma.db"
    build(kuma)
    form = aiohttp.FormData()
    form.add_field("source", "uptime-kuma")
    form.add_field("dryRun", "true")
    form.add_field("file", kuma.read_bytes(), filename="kuma.db")
    resp = await client.post("/api/import", data=form)
    report = await resp.json()
    assert resp.status == 200, report
    assert report["dryRun"] is True and report["source"] == "uptime-kuma"
    assert any(e["name"] == "shop api" and e["action"] == "create" for e in report["entries"])
    assert await names(client, "/api/monitors") == set()

    form = aiohttp.FormData()
    form.add_field("source", "gatus")
    resp = await client.post("/api/import", data=form)
    assert resp.status == 422 and "$.file" in await resp.text()
