"""Maintenance windows and notification channels carry an ETag and honour If-Match, so the
dashboard's forms report a change made meanwhile (412) instead of overwriting it."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import Client, post

from dragonopsd.appkeys import AUTHENTICATOR

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


async def test_a_secret_rotate_or_delete_with_a_stale_if_match_is_refused(client: Client) -> None:
    made = await post(client, "/api/secrets", {"key": "DB_PASSWORD", "value": "first"})
    path = f"/api/secrets/{made['id']}"
    read = await client.get(path)
    etag = read.headers["ETag"]
    assert (await client.get(path, headers={"If-None-Match": etag})).status == 304
    rotated = await client.patch(path, json={"value": "second"}, headers={"If-Match": etag})
    assert rotated.status == 200, await rotated.text()
    fresh = rotated.headers["ETag"]
    assert fresh != etag and fresh == (await client.get(path)).headers["ETag"]
    for method, extra in (("PATCH", {"json": {"value": "mine"}}), ("DELETE", {})):
        resp = await client.request(method, path, headers={"If-Match": etag}, **extra)
        assert resp.status == 412, (method, await resp.text())
        assert resp.content_type == "application/problem+json"
    value = await (await client.get(f"{path}/value")).json()
    assert (value["version"], value["value"]) == (2, "second")
    # Without If-Match, as before: the write goes through.
    plain = await client.patch(path, json={"description": "no precondition"})
    assert plain.status == 200 and (await plain.json())["version"] == 2
    assert (await client.delete(path, headers={"If-Match": etag})).status == 412
    current = (await client.get(path)).headers["ETag"]
    assert (await client.delete(path, headers={"If-Match": current})).status == 204
    assert (await client.get(path)).status == 404


async def test_a_setting_put_or_delete_with_a_stale_if_match_is_refused(client: Client) -> None:
    path = "/api/settings/status.banner"
    made = await client.put(path, json={"value": "first"})
    assert made.status == 201
    etag = (await client.get(path)).headers["ETag"]
    assert made.headers["ETag"] == etag
    assert (await client.get(path, headers={"If-None-Match": etag})).status == 304
    changed = await client.put(path, json={"value": "second"}, headers={"If-Match": etag})
    assert changed.status == 200, await changed.text()
    fresh = changed.headers["ETag"]
    assert fresh != etag
    for method, extra in (("PUT", {"json": {"value": "mine"}}), ("DELETE", {})):
        resp = await client.request(method, path, headers={"If-Match": etag}, **extra)
        assert resp.status == 412, (method, await resp.text())
        assert resp.content_type == "application/problem+json"
    assert (await (await client.get(path)).json())["value"] == "second"
    # Without If-Match, as before.
    assert (await client.put(path, json={"value": "third"})).status == 200
    current = (await client.get(path)).headers["ETag"]
    assert (await client.delete(path, headers={"If-Match": current})).status == 204
    # If-Match on a setting that is gone does not quietly create it again.
    gone = await client.put(path, json={"value": "again"}, headers={"If-Match": current})
    assert gone.status == 412
    assert (await client.get(path)).status == 404
    assert (await client.put(path, json={"value": "again"})).status == 201


async def test_a_create_only_setting_put_does_not_replace_one(client: Client) -> None:
    path = "/api/settings/status.banner"
    first = await client.put(path, json={"value": "first"}, headers={"If-None-Match": "*"})
    assert first.status == 201, await first.text()
    again = await client.put(path, json={"value": "second"}, headers={"If-None-Match": "*"})
    assert again.status == 412
    problem = await again.json(content_type="application/problem+json")
    assert problem["errors"] == [
        {"field": "key", "message": "a setting named status.banner exists already"}
    ]
    assert (await (await client.get(path)).json())["value"] == "first"


async def test_a_profile_change_honours_if_match(client: Client) -> None:
    store = client.app[AUTHENTICATOR].store
    await store.ensure_profile("user-1", "ada@example.com", "viewer")
    path = "/api/profiles/user-1"
    first = await client.get(path)
    assert first.status == 200 and (await first.json())["role"] == "viewer"
    etag = first.headers["ETag"]
    assert (await client.get(path, headers={"If-None-Match": etag})).status == 304
    changed = await client.patch(path, json={"role": "operator"}, headers={"If-Match": etag})
    assert changed.status == 200, await changed.text()
    assert changed.headers["ETag"] != etag
    stale = await client.patch(path, json={"role": "admin"}, headers={"If-Match": etag})
    assert stale.status == 412
    assert stale.content_type == "application/problem+json"
    assert (await (await client.get(path)).json())["role"] == "operator"
    plain = await client.patch(path, json={"role": "viewer"})
    assert plain.status == 200 and (await plain.json())["role"] == "viewer"
    assert (await client.get("/api/profiles/nobody")).status == 404
