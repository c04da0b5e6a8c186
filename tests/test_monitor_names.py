"""MonitorStore.names(): every monitor's (name, id), read without decoding any spec.

The config sync resolves windows' and channels' monitor names with it at every start; decoding
25,000 specs a second time for that cost ~0.35 s of a restart (issue 20).
"""

from __future__ import annotations

import pytest
from conftest import Client, post

from dragonopsd.appkeys import MONITORS

pytestmark = pytest.mark.backends


async def test_names_are_each_monitors_name_and_id_by_name(client: Client) -> None:
    made = [
        await post(client, "/api/monitors", {"name": name, "kind": "push", "interval": 60})
        for name in ("web", "api", "web")
    ]
    want = sorted((m["name"], m["id"]) for m in made)
    assert await client.app[MONITORS].store.names() == want
    renamed = await client.patch(f"/api/monitors/{made[1]['id']}", json={"name": "db"})
    assert renamed.status == 200, await renamed.text()
    assert await client.app[MONITORS].store.names() == sorted(
        [("db", made[1]["id"]), *((m["name"], m["id"]) for m in (made[0], made[2]))]
    )
