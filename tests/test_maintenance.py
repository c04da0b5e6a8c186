"""Maintenance windows: the schedule math and scope index with an injected clock, then the
/api/maintenance routes through the real app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from conftest import Client, post, token_for

from dragonopsd.appkeys import MAINTENANCE
from dragonopsd.model.monitor import Scope
from dragonopsd.monitoring.maintenance import MaintenanceService
from dragonopsd.monitoring.window_schedule import Schedule
from dragonopsd.store.db import Database
from dragonopsd.store.maintenance import MaintenanceStore, Window, WindowSpec

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MON, SRV, ENV, PRJ, CLI = (str(uuid.uuid4()) for _ in range(5))
SCOPE = Scope(MON, server_id=SRV, environment_id=ENV, project_id=PRJ, client_id=CLI)
OTHER = Scope(str(uuid.uuid4()), server_id=str(uuid.uuid4()))
ZERO = "00000000-0000-4000-8000-000000000000"


def at(text: str) -> float:
    """Unix time of an ISO string (the service's clock is injected as a float)."""
    return datetime.fromisoformat(text).timestamp()


def spec(**wire: Any) -> WindowSpec:
    """A WindowSpec from its wire form, validated as the API would."""
    return msgspec.convert({"name": "w", "scope": {"monitorIds": [MON]}, **wire}, WindowSpec)


def one_off(start: str, end: str, **wire: Any) -> WindowSpec:
    return spec(kind="one-off", startsAt=start, endsAt=end, **wire)


def sundays_2am_berlin(**wire: Any) -> WindowSpec:
    return spec(kind="recurring", cron="0 2 * * 0", timezone="Europe/Berlin", duration=7200, **wire)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[MaintenanceService]:
    """The service on a real SQLite file, loaded and empty."""
    db = Database(tmp_path / "maintenance.db")
    await db.open()
    svc = MaintenanceService(MaintenanceStore(db))
    await svc.load()
    yield svc
    await db.close()


# ------------------------------------------------------------------ the service, clock injected


async def test_one_off_start_inclusive_end_exclusive(service: MaintenanceService) -> None:
    w = await service.create(one_off("2027-01-10T10:00:00Z", "2027-01-10T12:00:00Z"))
    assert service.active_for(SCOPE, at("2027-01-10T09:59:59.999Z")) is None
    assert service.active_for(SCOPE, at("2027-01-10T10:00:00Z")) == w
    assert service.active_for(SCOPE, at("2027-01-10T11:59:59.999Z")) == w
    assert service.active_for(SCOPE, at("2027-01-10T12:00:00Z")) is None
    assert service.active_for(OTHER, at("2027-01-10T11:00:00Z")) is None
    assert service.active_for(SCOPE, at("2027-01-10T11:00:00Z")) == w  # the clock went back


async def test_next_change_is_the_next_start_or_end(service: MaintenanceService) -> None:
    await service.create(one_off("2027-01-10T10:00:00Z", "2027-01-10T12:00:00Z"))
    assert service.next_change(at("2027-01-10T09:00:00Z")) == at("2027-01-10T10:00:00Z")
    assert service.next_change(at("2027-01-10T10:30:00Z")) == at("2027-01-10T12:00:00Z")
    assert service.next_change(at("2027-01-10T12:00:00Z")) is None


# Europe/Berlin: 2027-03-28 02:00 CET jumps to 03:00 CEST; 2027-10-31 03:00 CEST falls back to
# 02:00 CET. "0 2 * * 0" for 2 h, checked as UTC instants.
SPRING = [
    # (instant, active?)
    ("2027-03-21T00:59:59Z", False),
    ("2027-03-21T01:00:00Z", True),  # 02:00 CET
    ("2027-03-21T02:59:59Z", True),
    ("2027-03-21T03:00:00Z", False),
    ("2027-03-28T00:59:59Z", False),
    # 02:00 does not exist that day: the window opens when the clock jumps (03:00 CEST, the
    # same instant as 02:00 CET would have been) and still lasts 7200 s.
    ("2027-03-28T01:00:00Z", True),
    ("2027-03-28T02:59:59Z", True),
    ("2027-03-28T03:00:00Z", False),
    ("2027-04-03T23:59:59Z", False),
    ("2027-04-04T00:00:00Z", True),  # 02:00 CEST
    ("2027-04-04T01:59:59Z", True),
    ("2027-04-04T02:00:00Z", False),
]


@pytest.mark.parametrize(("instant", "active"), SPRING)
async def test_recurring_across_spring_forward(
    service: MaintenanceService, instant: str, active: bool
) -> None:
    w = await service.create(sundays_2am_berlin())
    assert service.active_for(SCOPE, at(instant)) == (w if active else None)


async def test_recurring_walked_forward_like_a_scheduler(service: MaintenanceService) -> None:
    """One service, time only moving on: the cached occurrence is replaced at each end."""
    w = await service.create(sundays_2am_berlin())
    for instant, active in SPRING:
        assert service.active_for(SCOPE, at(instant)) == (w if active else None), instant


async def test_repeated_hour_of_fall_back_starts_once(service: MaintenanceService) -> None:
    w = await service.create(sundays_2am_berlin())
    # 02:00 CEST = 00:00 UTC; the second 02:00 (CET, 01:00 UTC) does not start another window,
    # so it ends after exactly 7200 s, at 03:00 CET.
    assert service.active_for(SCOPE, at("2027-10-31T00:00:00Z")) == w
    assert service.active_for(SCOPE, at("2027-10-31T01:59:59Z")) == w
    assert service.active_for(SCOPE, at("2027-10-31T02:00:00Z")) is None
    assert service.occurrences(w.id, at("2027-10-30T00:00:00Z"), 2)[0].end == (
        "2027-10-31T02:00:00.000Z"
    )


async def test_wildcard_hour_runs_in_both_copies_of_the_repeated_hour(
    service: MaintenanceService,
) -> None:
    w = await service.create(
        spec(kind="recurring", cron="30 * * * *", timezone="Europe/Berlin", duration=600)
    )
    starts = [o.start for o in service.occurrences(w.id, at("2027-10-30T23:00:00Z"), 4)]
    assert starts == [
        "2027-10-30T23:30:00.000Z",  # 01:30 CEST
        "2027-10-31T00:30:00.000Z",  # 02:30 CEST
        "2027-10-31T01:30:00.000Z",  # 02:30 CET
        "2027-10-31T02:30:00.000Z",  # 03:30 CET
    ]


async def test_active_from_and_until_bound_the_occurrences(service: MaintenanceService) -> None:
    w = await service.create(
        spec(
            kind="recurring",
            cron="0 3 * * *",
            duration=3600,
            activeFrom="2027-05-02T03:00:00Z",
            activeUntil="2027-05-04T03:00:00Z",
        )
    )
    assert w.timezone == "UTC"  # the default
    assert service.active_for(SCOPE, at("2027-05-01T03:30:00Z")) is None
    assert service.active_for(SCOPE, at("2027-05-02T03:30:00Z")) == w
    assert service.active_for(SCOPE, at("2027-05-03T03:30:00Z")) == w
    assert service.active_for(SCOPE, at("2027-05-04T03:30:00Z")) is None  # starts at the bound
    assert service.next_change(at("2027-05-04T03:30:00Z")) is None


@pytest.mark.parametrize(
    "scope",
    [
        {"monitorIds": [MON]},
        {"serverIds": [SRV]},
        {"environmentIds": [ENV]},
        {"projectIds": [PRJ]},
        {"clientIds": [CLI]},
        {"all": True},
    ],
)
async def test_each_scope_level_matches(service: MaintenanceService, scope: Any) -> None:
    w = await service.create(one_off("2027-01-10T10:00:00Z", "2027-01-10T12:00:00Z", scope=scope))
    now = at("2027-01-10T11:00:00Z")
    assert service.active_for(SCOPE, now) == w
    assert service.active_for(OTHER, now) == (w if "all" in scope else None)
    assert service.active_for(Scope(MON), now) == (w if {"monitorIds", "all"} & {*scope} else None)


async def test_most_specific_window_wins(service: MaintenanceService) -> None:
    window = ("2027-01-10T10:00:00Z", "2027-01-10T12:00:00Z")
    everyone = await service.create(one_off(*window, name="all", scope={"all": True}))
    server = await service.create(one_off(*window, name="srv", scope={"serverIds": [SRV]}))
    now = at("2027-01-10T11:00:00Z")
    assert service.active_for(SCOPE, now) == server
    assert service.active_for(OTHER, now) == everyone


async def test_disabled_window_is_ignored_until_enabled(service: MaintenanceService) -> None:
    w = await service.create(one_off("2027-01-10T10:00:00Z", "2027-01-10T12:00:00Z", enabled=False))
    now = at("2027-01-10T11:00:00Z")
    assert service.active_for(SCOPE, now) is None
    assert service.view(w, now).next is None
    enabled = await service.replace(
        w.id, one_off("2027-01-10T10:00:00Z", "2027-01-10T12:00:00Z", enabled=True)
    )
    assert service.active_for(SCOPE, now) == enabled
    await service.delete(w.id)
    assert service.active_for(SCOPE, now) is None


async def test_windows_survive_a_reload(service: MaintenanceService) -> None:
    w = await service.create(sundays_2am_berlin())
    await service.load()
    assert service.active_for(SCOPE, at("2027-03-21T01:30:00Z")) == w


# Rows as an older build (or a hand edit) could have stored them, which the API now refuses:
# each must be skipped with a warning and leave every other window working.
FAR = {  # the reported one: croniter overflows past year 9999 looking for its first start
    "name": "far",
    "kind": "recurring",
    "cron": "0 2 * * 0",
    "timezone": "UTC",
    "duration": 3600,
    "active_from": "9999-12-31T22:00:00.000Z",
    "scope": '{"all": true}',
}
BROKEN = [
    FAR,
    {**FAR, "name": "late", "active_from": "9999-12-20T00:00:00.000Z", "duration": 31 * 86400},
    {**FAR, "name": "cron", "cron": "not a cron", "active_from": None},
    {**FAR, "name": "zone", "timezone": "Mars/Olympus_Mons", "active_from": None},
    {**FAR, "name": "from", "active_from": "someday"},
    {**FAR, "name": "scope", "scope": "{not json", "active_from": None},
]


async def store_raw(db: Database, row: dict[str, Any]) -> str:
    """INSERT a window row directly, past every check the API makes."""
    ident = str(uuid.uuid4())
    values = {"id": ident, "created_at": "2026-01-01T00:00:00.000Z", **row}
    values["updated_at"] = values["created_at"]
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    async with db.write() as conn:
        await conn.execute(
            f"INSERT INTO maintenance_windows ({names}) VALUES ({marks})", [*values.values()]
        )
    return ident


async def test_a_broken_stored_window_is_skipped_and_the_others_work(
    service: MaintenanceService, caplog: pytest.LogCaptureFixture
) -> None:
    good = await service.create(one_off("2027-01-10T10:00:00Z", "2027-01-10T12:00:00Z"))
    broken = [await store_raw(service.store.db, row) for row in BROKEN]
    caplog.set_level("WARNING", logger="dragonopsd.maintenance")
    await service.load()
    now = at("2027-01-10T11:00:00Z")
    assert service.active_for(SCOPE, now) == good
    assert service.next_change(now) == at("2027-01-10T12:00:00Z")
    assert service.active_for(SCOPE, at("9999-12-31T23:30:00Z")) is None
    for ident in broken[:-1]:  # every readable one is listed, with no occurrence
        window = service.get(ident)
        assert service.view(window, now).next is None
        assert service.occurrences(ident, now, 5) == []
    assert {w.id for w in service.page(100, None)[0]} == {good.id, *broken[:-1]}
    logged = caplog.text
    for name in ("cron", "zone", "from"):
        assert f"({name}) cannot be scheduled and is ignored" in logged
    assert f"{broken[-1]} is unreadable and is ignored" in logged


async def test_no_next_occurrence_past_the_end_of_the_calendar(
    service: MaintenanceService,
) -> None:
    w = await service.create(spec(kind="recurring", cron="0 2 * * 0", duration=3600))
    assert service.occurrences(w.id, at("8999-12-31T00:00:00Z"), 3)  # still far from the end
    window = service.get(w.id)
    assert service.view(window, at("2027-01-01T00:00:00Z")).next is not None
    late = msgspec.structs.replace(window, active_from="9999-12-31T22:00:00.000Z")
    assert Schedule(late).upcoming(at("2027-01-01T00:00:00Z"), 3) == []


# ------------------------------------------------------------------ the API

RECURRING = {
    "name": "Sunday patching",
    "kind": "recurring",
    "cron": "0 2 * * 0",
    "timezone": "Europe/Berlin",
    "duration": 7200,
    "scope": {"serverIds": [SRV]},
}


def now_window(**extra: Any) -> dict[str, Any]:
    """A one-off window covering the real now."""
    return {
        "name": "now",
        "kind": "one-off",
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2100-01-01T00:00:00Z",
        "scope": {"all": True},
        **extra,
    }


async def test_crud(client: Client) -> None:
    created = await post(client, "/api/maintenance", RECURRING)
    ident = created["id"]
    assert created["timezone"] == "Europe/Berlin" and created["activeFrom"] is None
    assert created["next"]["end"] > created["next"]["start"]
    assert created["scope"] == {
        "all": False,
        "monitorIds": [],
        "serverIds": [SRV],
        "environmentIds": [],
        "projectIds": [],
        "clientIds": [],
    }
    got = await (await client.get(f"/api/maintenance/{ident}")).json()
    assert got == created

    live = await post(client, "/api/maintenance", now_window())
    assert live["activeNow"] is True and live["next"]["start"] == "2020-01-01T00:00:00.000Z"
    page = await (await client.get("/api/maintenance?limit=1")).json()
    assert [w["name"] for w in page["items"]] == ["Sunday patching"] and page["nextCursor"]
    rest = await (await client.get(f"/api/maintenance?cursor={page['nextCursor']}")).json()
    assert [w["name"] for w in rest["items"]] == ["now"] and rest["nextCursor"] is None

    resp = await client.patch(f"/api/maintenance/{ident}", json={"name": "Renamed"})
    patched = await resp.json()
    assert resp.status == 200 and patched["name"] == "Renamed" and patched["cron"] == "0 2 * * 0"

    # Switching kind drops the old kind's fields; the patch need not null them.
    resp = await client.patch(
        f"/api/maintenance/{ident}",
        json={
            "kind": "one-off",
            "startsAt": "2027-01-01T00:00:00Z",
            "endsAt": "2027-01-02T00:00:00Z",
        },
    )
    switched = await resp.json()
    assert resp.status == 200, switched
    assert switched["cron"] is None and switched["duration"] is None
    assert switched["endsAt"] == "2027-01-02T00:00:00.000Z"

    assert (await client.delete(f"/api/maintenance/{ident}")).status == 204
    assert (await client.get(f"/api/maintenance/{ident}")).status == 404
    assert (await client.delete(f"/api/maintenance/{ident}")).status == 404
    assert (await client.get("/api/maintenance/not-a-uuid")).status == 404


async def test_active_window_reaches_the_running_service(client: Client) -> None:
    live = await post(client, "/api/maintenance", now_window(scope={"clientIds": [CLI]}))
    found = client.app[MAINTENANCE].active_for(SCOPE, datetime.now(UTC).timestamp())
    assert isinstance(found, Window) and found.id == live["id"]


BAD = [
    ({**RECURRING, "cron": "61 2 * * *"}, "$.cron"),
    ({**RECURRING, "cron": "0 2 * * * *"}, "$.cron"),  # seconds field
    ({**RECURRING, "cron": "R 2 * * *"}, "$.cron"),  # random: not a schedule
    ({**RECURRING, "cron": "0 0 30 2 *"}, "$.cron"),  # February 30th never comes
    ({**RECURRING, "timezone": "Mars/Olympus_Mons"}, "$.timezone"),
    ({**RECURRING, "timezone": "Europe"}, "$.timezone"),
    ({**RECURRING, "duration": 0}, "$.duration"),
    ({**RECURRING, "duration": 31 * 86400 + 1}, "$.duration"),
    ({**RECURRING, "duration": None}, "$.duration"),
    ({**RECURRING, "startsAt": "2027-01-01T00:00:00Z"}, "$.startsAt"),
    (
        {**RECURRING, "activeFrom": "2027-01-02T00:00:00Z", "activeUntil": "2027-01-01T00:00:00Z"},
        "$.activeUntil",
    ),
    (now_window(endsAt="2020-01-01T00:00:00Z"), "$.endsAt"),
    (now_window(endsAt="2019-01-01T00:00:00Z"), "$.endsAt"),
    (now_window(startsAt="2020-01-01T00:00:00"), "$.startsAt"),  # no zone
    (now_window(startsAt=None), "$.startsAt"),
    (now_window(cron="0 2 * * *"), "$.cron"),
    (now_window(scope={}), "$.scope"),
    (now_window(scope={"all": False, "monitorIds": []}), "$.scope"),
    (now_window(scope={"all": True, "serverIds": [SRV]}), "$.scope.all"),
    (now_window(scope={"serverIds": ["web-1"]}), "$.scope.serverIds[0]"),
    (now_window(scope={"hosts": ["x"]}), "$.scope.hosts"),
    (now_window(kind="sometimes"), "$.kind"),
    (now_window(colour="blue"), "$.colour"),
]


@pytest.mark.parametrize(("body", "field"), BAD)
async def test_validation_names_the_field(client: Client, body: Any, field: str) -> None:
    resp = await client.post("/api/maintenance", json=body)
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422, problem
    assert [e["field"] for e in problem["errors"]] == [field], problem


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"duration": 0}, "$.duration"),
        ({"timezone": "Nowhere/City"}, "$.timezone"),
        ({"scope": {}}, "$.scope"),
        ({"kind": "one-off"}, "$.startsAt"),
        ({"activeFrom": "9999-12-31T22:00:00Z"}, "$.activeFrom"),
        ({"id": ZERO}, "$.id"),
    ],
)
async def test_patch_validates_the_result(client: Client, patch: Any, field: str) -> None:
    ident = (await post(client, "/api/maintenance", RECURRING))["id"]
    resp = await client.patch(f"/api/maintenance/{ident}", json=patch)
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422 and [e["field"] for e in problem["errors"]] == [field], problem
    assert (await (await client.get(f"/api/maintenance/{ident}")).json())["duration"] == 7200


async def test_viewer_reads_but_may_not_write(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await make_client()
    ident = (await post(client, "/api/maintenance", RECURRING))["id"]
    viewer = {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}
    assert (await client.get("/api/maintenance", headers=viewer)).status == 200
    assert (await client.get(f"/api/maintenance/{ident}", headers=viewer)).status == 200
    path = f"/api/maintenance/{ident}/occurrences"
    assert (await client.get(path, headers=viewer)).status == 200
    for method, url, body in (
        ("POST", "/api/maintenance", RECURRING),
        ("PATCH", f"/api/maintenance/{ident}", {"name": "x"}),
        ("DELETE", f"/api/maintenance/{ident}", None),
    ):
        resp = await client.request(method, url, json=body, headers=viewer)
        assert resp.status == 403, (method, resp.status)
    operator = {"Authorization": f"Bearer {await token_for(client.app, 'operator')}"}
    resp = await client.patch(f"/api/maintenance/{ident}", json={"name": "x"}, headers=operator)
    assert resp.status == 200


async def test_occurrences_show_the_dst_shift(client: Client) -> None:
    ident = (await post(client, "/api/maintenance", RECURRING))["id"]
    resp = await client.get(
        f"/api/maintenance/{ident}/occurrences", params={"from": "2027-03-14T00:00:00Z", "count": 3}
    )
    assert resp.status == 200
    assert (await resp.json())["items"] == [
        {"start": "2027-03-14T01:00:00.000Z", "end": "2027-03-14T03:00:00.000Z"},
        {"start": "2027-03-21T01:00:00.000Z", "end": "2027-03-21T03:00:00.000Z"},
        {"start": "2027-03-28T01:00:00.000Z", "end": "2027-03-28T03:00:00.000Z"},
    ]
    default = await (await client.get(f"/api/maintenance/{ident}/occurrences")).json()
    assert len(default["items"]) == 5
    # The occurrence covering `from` comes first.
    covering = await client.get(
        f"/api/maintenance/{ident}/occurrences", params={"from": "2027-03-14T02:00:00+00:00"}
    )
    assert (await covering.json())["items"][0]["start"] == "2027-03-14T01:00:00.000Z"


async def test_one_off_occurrences_and_bad_parameters(client: Client) -> None:
    ident = (await post(client, "/api/maintenance", now_window()))["id"]
    items = (await (await client.get(f"/api/maintenance/{ident}/occurrences")).json())["items"]
    assert items == [{"start": "2020-01-01T00:00:00.000Z", "end": "2100-01-01T00:00:00.000Z"}]
    path = f"/api/maintenance/{ident}/occurrences"
    for query, name in (
        ({"count": "0"}, "count"),
        ({"count": "101"}, "count"),
        ({"count": "many"}, "count"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2027-01-01T00:00:00"}, "from"),
        ({"limit": "3"}, "limit"),
    ):
        resp = await client.get(path, params=query)
        problem = await resp.json(content_type="application/problem+json")
        assert resp.status == 422 and problem["errors"][0]["field"] == name, (query, problem)
    assert (await client.get(f"/api/maintenance/{ZERO}/occurrences")).status == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "name": "far",
                "kind": "recurring",
                "cron": "0 2 * * 0",
                "timezone": "UTC",
                "duration": 3600,
                "activeFrom": "9999-12-31T22:00:00Z",
                "scope": {"all": True},
            },
            "$.activeFrom",
        ),
        ({**RECURRING, "activeUntil": "9000-01-01T00:00:00Z"}, "$.activeUntil"),
        ({**RECURRING, "activeFrom": "1969-12-31T23:59:59Z"}, "$.activeFrom"),
        (now_window(startsAt="0001-01-01T00:00:00Z"), "$.startsAt"),
        (now_window(endsAt="9999-12-31T23:59:59Z"), "$.endsAt"),
    ],
)
async def test_dates_out_of_range_are_refused(client: Client, body: Any, field: str) -> None:
    resp = await client.post("/api/maintenance", json=body)
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422, problem
    assert [e["field"] for e in problem["errors"]] == [field], problem
    listed = await client.get("/api/maintenance")
    assert listed.status == 200 and (await listed.json())["items"] == []  # nothing stored


async def test_occurrences_from_out_of_range_is_refused(client: Client) -> None:
    ident = (await post(client, "/api/maintenance", RECURRING))["id"]
    path = f"/api/maintenance/{ident}/occurrences"
    for start in ("9999-12-31T23:00:00Z", "0001-01-01T00:00:00Z", "9000-01-01T00:00:00Z"):
        resp = await client.get(path, params={"from": start})
        problem = await resp.json(content_type="application/problem+json")
        assert resp.status == 422 and problem["errors"][0]["field"] == "from", (start, problem)
    resp = await client.get(path, params={"from": "8999-12-01T00:00:00Z", "count": 100})
    assert resp.status == 200 and len((await resp.json())["items"]) == 100


@pytest.mark.sqlite_file
async def test_a_broken_window_in_the_database_stops_no_check(
    make_client: Callable[..., Awaitable[Client]],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The reported case: a window saved before the fix, found in the database at start."""
    first = await make_client()
    push = await post(first, "/api/monitors", {"name": "cron", "kind": "push", "interval": 60})
    probe = await post(
        first,
        "/api/monitors",
        {"name": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": 1, "interval": 1, "timeout": 1},
    )
    held = await post(first, "/api/monitors", {"name": "held", "kind": "push", "interval": 60})
    await post(first, "/api/maintenance", now_window(scope={"monitorIds": [held["id"]]}))
    await first.close()
    db = Database(tmp_path / "dragonops.db")
    await db.open()
    try:
        broken = [await store_raw(db, row) for row in BROKEN]
    finally:
        await db.close()

    caplog.set_level("WARNING")
    client = await make_client()  # the restart: the rows are loaded from the file
    listed = await client.get("/api/maintenance")
    assert listed.status == 200, await listed.text()
    assert broken[0] in {w["id"] for w in (await listed.json())["items"]}
    anon = {"Authorization": ""}
    token, other = push["pushToken"], held["pushToken"]
    assert (await client.get(f"/api/push/{token}?status=down", headers=anon)).status == 200
    assert (await client.get(f"/api/push/{other}?status=down", headers=anon)).status == 200
    run = await client.post(f"/api/monitors/{probe['id']}/check")
    assert run.status == 200 and (await run.json())["status"] in ("pending", "down")
    board = {m["name"]: m for m in (await (await client.get("/api/monitoring")).json())["items"]}
    assert board["cron"]["status"] == "down" and board["cron"]["incidentId"]
    assert board["held"]["status"] == "maintenance"  # the good window still applies

    async def scheduled_checks_recorded() -> bool:
        hist = await client.get(f"/api/monitors/{probe['id']}/history?step=1h")
        points = (await hist.json())["points"]
        return sum(p["down"] + p["pending"] for p in points) >= 3  # run-now + 2 scheduled

    deadline = asyncio.get_running_loop().time() + 15
    while not await scheduled_checks_recorded():
        assert asyncio.get_running_loop().time() < deadline, "no heartbeats recorded"
        await asyncio.sleep(0.2)
    hist = await client.get(f"/api/monitors/{push['id']}/history?step=1h")
    assert sum(p["down"] for p in (await hist.json())["points"]) == 1
    assert "check of monitor" not in caplog.text
    assert f"{broken[-1]} is unreadable and is ignored" in caplog.text
