"""GET /api/maintenance/preview: a cron's next occurrences in a time zone before any window is
saved (the dashboard's cron helper), computed by the schedule code the service runs."""

from __future__ import annotations

import pytest
from conftest import Client, token_for

pytestmark = pytest.mark.backends

PATH = "/api/maintenance/preview"


async def test_five_sundays_at_2am_berlin_across_the_spring_forward(client: Client) -> None:
    viewer = {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}
    resp = await client.get(
        PATH,
        params={
            "cron": "0 2 * * sun",
            "timezone": "Europe/Berlin",
            "count": "5",
            "duration": "3600",
            "from": "2027-03-10T00:00:00Z",
        },
        headers=viewer,
    )
    assert resp.status == 200, await resp.text()
    starts = [(o["start"], o["end"]) for o in (await resp.json())["items"]]
    assert starts == [
        ("2027-03-14T01:00:00.000Z", "2027-03-14T02:00:00.000Z"),  # CET, UTC+1
        ("2027-03-21T01:00:00.000Z", "2027-03-21T02:00:00.000Z"),
        # 02:00 does not exist on 28 March: it starts when the clock jumps to 03:00 CEST.
        ("2027-03-28T01:00:00.000Z", "2027-03-28T02:00:00.000Z"),
        ("2027-04-04T00:00:00.000Z", "2027-04-04T01:00:00.000Z"),  # CEST, UTC+2
        ("2027-04-11T00:00:00.000Z", "2027-04-11T01:00:00.000Z"),
    ]


async def test_defaults_are_utc_five_and_now(client: Client) -> None:
    resp = await client.get(PATH, params={"cron": "*/5 * * * *"})
    items = (await resp.json())["items"]
    assert resp.status == 200 and len(items) == 5
    assert all(
        o["start"] == o["end"]
        and o["start"][14:16]
        in {"00", "05", "10", "15", "20", "25", "30", "35", "40", "45", "50", "55"}
        for o in items
    ), items


@pytest.mark.parametrize(
    ("query", "field", "says"),
    [
        ({}, "cron", "required"),
        ({"cron": "0 2 * *"}, "cron", "5 fields"),
        ({"cron": "61 2 * * *"}, "cron", "invalid cron"),
        ({"cron": "0 0 30 2 *"}, "cron", "never fires"),
        ({"cron": "0 2 * * sun", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
        ({"cron": "0 2 * * sun", "count": "0"}, "count", "between 1 and"),
        ({"cron": "0 2 * * sun", "duration": "-1"}, "duration", "between 0 and"),
        ({"cron": "0 2 * * sun", "from": "2027-01-01T00:00:00"}, "from", "offset"),
    ],
)
async def test_bad_input_is_422_naming_the_parameter(
    client: Client, query: dict[str, str], field: str, says: str
) -> None:
    resp = await client.get(PATH, params=query)
    problem = await resp.json(content_type="application/problem+json")
    assert resp.status == 422, problem
    assert [e["field"] for e in problem["errors"]] == [field], problem
    assert says in problem["errors"][0]["message"], problem
