"""Maintenance windows and notification channels carry an ETag and honour If-Match, so the
dashboard's forms report a change made meanwhile (412) instead of overwriting it."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Client, post

pytestmark = pytest.mark.backends

WINDOW = {
    "name": "Sunday patching",
    "kind": "recurring",
    "cron": "0 2 * * sun",
    "timezone": "Europe/Berlin",
    "duration": 3600,
    "scope": {"all": True},
}
CHANNEL = {"name": "Ops", "kind": "webhook", "config": {"url": "https://hooks.example.com/x"}}


@pytest.mark.parametrize(
    ("base", "body"), [("/api/maintenance", WINDOW), ("/api/notifications", CHANNEL)]
)
async def test_a_stale_if_match_is_refused_and_changes_nothing(
    client: Client, base: str, body: dict[str, Any]
) -> None:
    path = f"{base}/{(await post(client, base, body))['id']}"
    first = await client.get(path)
    etag = first.headers["ETag"]
    assert (await client.get(path, headers={"If-None-Match": etag})).status == 304
    changed = await client.patch(
        path, json={"name": "Renamed elsewhere"}, headers={"If-Match": etag}
    )
    assert changed.status == 200, await changed.text()
    fresh = changed.headers["ETag"]
    assert fresh != etag
    for method, extra in (("PATCH", {"json": {"name": "Mine"}}), ("DELETE", {})):
        resp = await client.request(method, path, headers={"If-Match": etag}, **extra)
        assert resp.status == 412, (method, await resp.text())
    assert (await (await client.get(path)).json())["name"] == "Renamed elsewhere"
    assert (await client.delete(path, headers={"If-Match": fresh})).status == 204
    assert (await client.get(path)).status == 404
