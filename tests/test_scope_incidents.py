"""Scoped callers and incidents: an incident is in reach only when all its targets are.

Two clients, Acme (in the tokens' scope) and Globex (out), each with a project, environment,
server and an HTTP monitor on it (tests/scope_world.py). A scoped viewer and operator see and
change only incidents that name Acme alone; everything naming Globex answers as if it did not
exist and stays unchanged.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import post
from scope_world import (
    NOWHERE,
    World,
    all_pages,
    same_as_missing,
    wait_until,
    world_fixture,  # noqa: F401  -- the fixture "world", which pytest finds by its name
)

pytestmark = pytest.mark.backends


# ---------------------------------------------------------------------------- incidents


async def _incidents(w: World) -> dict[str, str]:
    """Both monitors' incidents (their site is down) and manual ones on each side, on both,
    and on the whole Acme client and environment."""
    admin = w.client

    async def both_down() -> bool:
        page = await (await admin.get("/api/incidents?kind=monitor")).json()
        return {i["monitorId"] for i in page["items"]} >= {
            w.ids("acme", "monitor"),
            w.ids("globex", "monitor"),
        }

    await wait_until(both_down)
    page = await (await admin.get("/api/incidents?kind=monitor")).json()
    by_monitor = {i["monitorId"]: i["id"] for i in page["items"]}
    made = {
        "acme-auto": by_monitor[w.ids("acme", "monitor")],
        "globex-auto": by_monitor[w.ids("globex", "monitor")],
    }

    async def manual(name: str, *targets: tuple[str, str, str]) -> None:
        body = {
            "title": name,
            "severity": "minor",
            "targets": [{"kind": k, "id": w.ids(side, kind)} for k, side, kind in targets],
        }
        made[name] = (await post(admin, "/api/incidents", body))["id"]

    await manual("acme-server", ("server", "acme", "server"))
    await manual("acme-client", ("client", "acme", "client"))
    await manual(
        "acme-env-monitor", ("environment", "acme", "environment"), ("monitor", "acme", "monitor")
    )
    await manual("globex-server", ("server", "globex", "server"))
    await manual("both", ("server", "acme", "server"), ("server", "globex", "server"))
    await manual("globex-monitor", ("monitor", "globex", "monitor"))
    return made


ACME_INCIDENTS = {"acme-auto", "acme-server", "acme-client", "acme-env-monitor"}
GLOBEX_INCIDENTS = {"globex-auto", "globex-server", "both", "globex-monitor"}


async def test_a_scoped_caller_reads_only_incidents_wholly_in_its_scope(world: World) -> None:
    w = world
    made = await _incidents(w)
    mine = {made[n] for n in ACME_INCIDENTS}
    theirs = {made[n] for n in GLOBEX_INCIDENTS}

    status, page = await w.call(w.viewer, "GET", "/api/incidents?limit=100")
    assert status == 200
    assert {i["id"] for i in page["items"]} == mine
    paged = await all_pages(w, w.viewer, "/api/incidents")
    assert sorted(paged) == sorted(mine)
    for kind in ("monitor", "manual"):
        status, page = await w.call(w.viewer, "GET", f"/api/incidents?kind={kind}&limit=100")
        assert {i["id"] for i in page["items"]} <= mine
    # Filtering on Globex's monitor finds nothing, rather than its incidents.
    globex_monitor = w.ids("globex", "monitor")
    status, page = await w.call(w.viewer, "GET", f"/api/incidents?monitorId={globex_monitor}")
    assert status == 200 and page["items"] == []

    for ident in mine:
        status, body = await w.call(w.viewer, "GET", f"/api/incidents/{ident}")
        assert status == 200 and body["id"] == ident
    missing = await w.call(w.viewer, "GET", f"/api/incidents/{NOWHERE}")
    for ident in theirs:
        got = await w.call(w.viewer, "GET", f"/api/incidents/{ident}")
        same_as_missing(got, missing, ident, NOWHERE)

    # An unscoped viewer still reads every one.
    status, page = await w.call(w.plain_viewer, "GET", "/api/incidents?limit=100")
    assert {i["id"] for i in page["items"]} >= mine | theirs


async def test_a_scoped_operator_writes_only_incidents_in_its_scope(world: World) -> None:
    w = world
    made = await _incidents(w)
    acme_server, globex_server = w.ids("acme", "server"), w.ids("globex", "server")

    def body(*targets: tuple[str, str]) -> dict[str, Any]:
        return {
            "title": "Checkout slow",
            "severity": "major",
            "targets": [{"kind": k, "id": i} for k, i in targets],
        }

    before = await (await w.client.get("/api/incidents?kind=manual&limit=100")).json()
    missing = await w.call(w.operator, "POST", "/api/incidents", body(("server", NOWHERE)))
    assert missing[0] == 422
    got = await w.call(w.operator, "POST", "/api/incidents", body(("server", globex_server)))
    same_as_missing(got, missing, globex_server, NOWHERE)
    status, problem = await w.call(
        w.operator,
        "POST",
        "/api/incidents",
        body(("server", acme_server), ("monitor", w.ids("globex", "monitor"))),
    )
    assert status == 422 and problem["errors"][0]["field"] == "$.targets[1].id"
    after = await (await w.client.get("/api/incidents?kind=manual&limit=100")).json()
    assert after == before

    status, created = await w.call(
        w.operator, "POST", "/api/incidents", body(("server", acme_server))
    )
    assert status == 201, created
    status, _ = await w.call(w.viewer, "POST", "/api/incidents", body(("server", acme_server)))
    assert status == 403  # the role still decides first

    update = {"state": "identified", "message": "found it"}
    for name in ("acme-server", "acme-auto"):
        ident = made[name]
        status, found = await w.call(w.operator, "POST", f"/api/incidents/{ident}/updates", update)
        assert status == 201 and found["updates"][-1]["message"] == "found it"
        status, found = await w.call(w.operator, "POST", f"/api/incidents/{ident}/acknowledge")
        assert status == 200 and found["acknowledgedBy"]

    missing_update = await w.call(w.operator, "POST", f"/api/incidents/{NOWHERE}/updates", update)
    missing_ack = await w.call(w.operator, "POST", f"/api/incidents/{NOWHERE}/acknowledge")
    for name in ("globex-auto", "globex-server", "both"):
        ident = made[name]
        got = await w.call(w.operator, "POST", f"/api/incidents/{ident}/updates", update)
        same_as_missing(got, missing_update, ident, NOWHERE)
        got = await w.call(w.operator, "POST", f"/api/incidents/{ident}/acknowledge")
        same_as_missing(got, missing_ack, ident, NOWHERE)
        stored = await (await w.client.get(f"/api/incidents/{ident}")).json()
        assert stored["updates"] == [] and stored["acknowledgedBy"] is None


async def test_a_project_scope_does_not_reach_incidents_on_the_whole_client(
    world: World,
) -> None:
    w = world
    made = await _incidents(w)
    project = await post(
        w.client,
        "/api/tokens",
        {"name": "portal", "role": "operator", "scope": {"projects": [w.ids("acme", "project")]}},
    )
    status, page = await w.call(project["token"], "GET", "/api/incidents?limit=100")
    assert status == 200
    seen = {i["id"] for i in page["items"]}
    assert made["acme-server"] in seen and made["acme-auto"] in seen
    assert made["acme-client"] not in seen  # about Acme's other projects too
