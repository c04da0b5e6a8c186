"""Channel kind ``apprise``: delivered through the real Apprise library to a real receiver on
loopback (its json:// and form:// schemes), routed, retried, guarded, masked and sealed like
every other channel."""

from __future__ import annotations

import asyncio
import logging
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Client, post
from notify_helpers import (
    Receiver,
    daemon_logs,
    event,
    receiver_fixture,  # noqa: F401 - the `receiver` fixture
    until,
)

from dragonopsd.appkeys import NOTIFIER
from dragonopsd.notify import dispatcher as dispatcher_module
from dragonopsd.secrets.crypto import KeyRing, write_key_file

MakeClient = Callable[..., Awaitable[Client]]
PROBLEM = "application/problem+json"
TOKEN = "tok-7Hq2xZ9c"  # stands for the token an Apprise URL carries


def hosted(receiver: Receiver, scheme: str, path: str) -> str:
    """receiver's address in an Apprise URL of scheme (json://127.0.0.1:port/path)."""
    return f"{scheme}://{receiver.base.removeprefix('http://')}{path}"


async def create(client: Client, urls: list[str], **extra: Any) -> Any:
    body = {"name": "apprise ch", "kind": "apprise", "config": {"urls": urls}, **extra}
    return await post(client, "/api/notifications", body)


async def test_test_send_reaches_json_and_form_receivers(
    client: Client, receiver: Receiver
) -> None:
    urls = [hosted(receiver, "json", f"/j/{TOKEN}"), hosted(receiver, "form", "/f")]
    ch = await create(client, urls)
    resp = await client.post(f"/api/notifications/{ch['id']}/test")
    result = await resp.json()
    assert resp.status == 200 and result["ok"] is True, result

    [sent] = receiver.at(f"/j/{TOKEN}")
    doc = sent.json()
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"] == "dragonopsd"
    assert doc["version"] == "1.0" and doc["type"] == "info"
    assert doc["title"].endswith("TEST: dragonopsd reaches notification channel 'apprise ch'")
    assert "dragonopsd reaches notification channel 'apprise ch'" in doc["message"]

    [form] = receiver.at("/f")
    fields = urllib.parse.parse_qs(form.body.decode())
    assert form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert fields["type"] == ["info"] and fields["title"] == [doc["title"]]
    assert fields["message"] == [doc["message"]]


async def test_events_are_routed_templated_and_retried_per_url(
    client: Client, receiver: Receiver
) -> None:
    urls = [hosted(receiver, "json", "/a"), hosted(receiver, "form", "/b")]
    ch = await create(client, urls, scope={"tags": ["shop"]}, events=["down"])
    notifier = client.app[NOTIFIER]
    notifier.publish(event("down", "m2", tags=("other",)))  # out of scope
    notifier.publish(event("up", "m3", tags=("shop",)))  # an event it does not take
    receiver.plans["/a"] = [503]  # the json receiver fails once
    notifier.publish(event("down", "m1", tags=("shop",), monitor_name="checkout"))
    await until(lambda: notifier.stats[ch["id"]].sent == 1, timeout=15)
    stats = notifier.stats[ch["id"]]
    assert (stats.retried, stats.failed) == (1, 0)
    first, second = receiver.at("/a")
    assert first.body == second.body
    doc = second.json()
    assert doc["type"] == "failure"
    assert doc["title"] == "🔴 DOWN: checkout (https://api.example) — connection refused"
    assert "Monitor: checkout" in doc["message"]
    # the retry went only to the URL that had failed
    assert len(receiver.at("/b")) == 1
    assert {d.path for d in receiver.seen} == {"/a", "/b"}


@pytest.mark.parametrize(
    ("urls", "field"),
    [
        ([], "$.config.urls"),
        (["nosuchscheme://host/x"], "$.config.urls[0]"),
        (["tgram://"], "$.config.urls[0]"),
        (["json://127.0.0.1/ok", "not a url"], "$.config.urls[1]"),
        (["json://h/" + "x" * 2048], "$.config.urls[0]"),
        (["json://h/x"] * 21, "$.config.urls"),
    ],
)
async def test_bad_urls_are_422_naming_the_field(
    client: Client, urls: list[str], field: str
) -> None:
    body = {"name": "x", "kind": "apprise", "config": {"urls": urls}}
    resp = await client.post("/api/notifications", json=body)
    assert resp.status == 422, await resp.text()
    assert resp.content_type == PROBLEM
    assert (await resp.json(content_type=PROBLEM))["errors"][0]["field"] == field
    assert (await (await client.get("/api/notifications")).json())["items"] == []


async def test_urls_are_masked_kept_on_patch_and_a_bad_patch_is_422(client: Client) -> None:
    urls = [f"json://hooks.example:8080/x/{TOKEN}", f"tgram://123456789:{TOKEN}/-1001234"]
    ch = await create(client, urls)
    assert ch["config"] == {"urls": ["json://hooks.example:8080/****", "tgram://****"]}
    assert ch["hasSecret"] is True
    for path in ("/api/notifications", f"/api/notifications/{ch['id']}"):
        assert TOKEN not in await (await client.get(path)).text()
    path = f"/api/notifications/{ch['id']}"
    store = client.app[NOTIFIER].store
    # the masks sent back keep the stored URLs; a new one beside them is taken as given
    new = "ntfy://ntfy.example/alerts"
    resp = await client.patch(path, json={"config": {"urls": [*ch["config"]["urls"], new]}})
    assert resp.status == 200, await resp.text()
    assert (await store.get(ch["id"])).config["urls"] == [*urls, new]
    resp = await client.patch(path, json={"config": {"urls": ["tgram://****", "bad://x"]}})
    assert resp.status == 422
    assert (await resp.json(content_type=PROBLEM))["errors"][0]["field"] == "$.config.urls[0]"
    assert (await store.get(ch["id"])).config["urls"] == [*urls, new]


async def test_the_guard_judges_the_host_of_json_form_and_xml(
    client: Client, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dragonopsd")
    for scheme in ("json", "form", "xml"):
        ch = await create(client, [f"{scheme}://169.254.169.254/latest/{TOKEN}"])
        result = await (await client.post(f"/api/notifications/{ch['id']}/test")).json()
        assert result["ok"] is False and result["error"] == "delivery failed", result
    logs = daemon_logs(caplog)
    for scheme in ("json", "form", "xml"):
        assert f"({scheme}: address refused" in logs
    assert TOKEN not in logs and "169.254.169.254/latest" not in logs
    assert receiver.seen == []


async def test_a_name_resolving_to_a_denied_address_is_refused(
    make_client: MakeClient, receiver: Receiver
) -> None:
    client = await make_client(probes={"deny_cidrs": ["127.0.0.0/8"]})
    url = hosted(receiver, "json", "/x").replace("127.0.0.1", "localhost")
    ch = await create(client, [url])
    result = await (await client.post(f"/api/notifications/{ch['id']}/test")).json()
    assert result["ok"] is False and result["error"] == "delivery failed"
    assert receiver.seen == []


async def test_urls_are_sealed_at_rest(
    tmp_path: Path, make_client: MakeClient, receiver: Receiver
) -> None:
    write_key_file(tmp_path / "secrets.key", KeyRing.new("k1"), overwrite=False)
    client = await make_client()
    ch = await create(client, [hosted(receiver, "json", f"/sealed/{TOKEN}")])
    result = await (await client.post(f"/api/notifications/{ch['id']}/test")).json()
    assert result["ok"] is True
    assert len(receiver.at(f"/sealed/{TOKEN}")) == 1
    await client.close()  # checkpoints the WAL into the main file
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("dragonops"))
    assert raw and TOKEN.encode() not in raw


async def test_a_failed_warm_up_is_tried_again_by_the_first_apprise_channel(
    make_client: MakeClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apprise's plugins failing to load in the warm-up after the start (here the import is
    refused for a moment) must not stay failed: the first Apprise channel posted loads them
    again (before: every reload re-raised the first error, the POST was a 500 with the row
    stored and no worker for it)."""
    monkeypatch.setattr(dispatcher_module, "WARM_AFTER", 0)
    loaded = sys.modules.get("apprise")
    sys.modules["apprise"] = None  # type: ignore[assignment]  # import apprise: ImportError
    try:
        client = await make_client()
        warming = client.app[NOTIFIER]._warming
        assert warming is not None
        await asyncio.gather(warming, return_exceptions=True)
    finally:
        if loaded is None:
            del sys.modules["apprise"]
        else:
            sys.modules["apprise"] = loaded
    ch = await create(client, [hosted(receiver, "json", f"/j/{TOKEN}")])
    result = await (await client.post(f"/api/notifications/{ch['id']}/test")).json()
    assert result["ok"] is True, result
    await until(lambda: ch["id"] in client.app[NOTIFIER].backlog())
