"""Notifications end to end: channels through the real API, delivered to real receivers on
loopback (aiohttp webhooks, an aiosmtpd SMTP server), with retries, timeouts, dedupe, routing
and the rule that no credential leaves through a response, a problem or a log line."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from conftest import Client, post
from notify_helpers import (
    FAST,
    SIGNING_SECRET,
    Mailbox,
    Receiver,
    daemon_logs,
    event,
    free_port,
    receiver_fixture,  # noqa: F401 - the `receiver` fixture
    smtp_server,
    until,
)

from dragonopsd.appkeys import DATABASE, NOTIFIER, VAULT
from dragonopsd.config import ProbesConfig
from dragonopsd.netguard import REFUSED, AddressGuard
from dragonopsd.notify import mail as smtp
from dragonopsd.notify.channels import Channel
from dragonopsd.notify.delivery import UNDELIVERED, DeliveryPolicy
from dragonopsd.notify.dispatcher import Dispatcher
from dragonopsd.store.notifications import NotificationStore, StoredChannel

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

EMAIL_TO_LOOPBACK = {
    "host": "127.0.0.1",
    "from": "dragonops@example.com",
    "to": ["oncall@example.com"],
    "security": "none",
}
MakeDispatcher = Callable[..., Awaitable[Dispatcher]]
SLACK_URL_TOKEN = "T0001/B0002/XyZsEcReTtOkEn"


@pytest.fixture
async def make_dispatcher(client: Client) -> AsyncIterator[MakeDispatcher]:
    """A dispatcher on the app's database with fast retries (the app's own keeps defaults)."""
    made: list[Dispatcher] = []

    async def make(**kwargs: Any) -> Dispatcher:
        kwargs.setdefault("policy", FAST)
        store = NotificationStore(client.app[DATABASE], keys=client.app[VAULT])
        d = Dispatcher(store, **kwargs)
        await d.start()
        made.append(d)
        return d

    yield make
    for d in made:
        await d.stop()


async def channel(client: Client, kind: str, config: dict[str, Any], **fields: Any) -> Any:
    body = {"name": f"{kind} channel", "kind": kind, "config": config, **fields}
    return await post(client, "/api/notifications", body)


async def test_webhook_is_signed_json_with_delivery_headers(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    ch = await channel(client, "webhook", {"url": receiver.url("/hook"), "secret": SIGNING_SECRET})
    assert ch["hasSecret"] is True and "secret" not in ch["config"]
    d = await make_dispatcher()
    d.publish(event("down", tags=("db",), environment_id="env-1"))
    await until(lambda: len(receiver.at("/hook")) == 1)
    got = receiver.at("/hook")[0]
    assert receiver.bad_signatures == 0
    assert got.headers["X-DragonOps-Signature"].startswith("sha256=")
    assert got.headers["X-DragonOps-Event"] == "down"
    assert len(got.headers["X-DragonOps-Delivery"]) == 36
    body = got.json()
    assert body["event"] == "down" and body["monitorId"] == "m1" and body["previous"] == "up"
    assert body["scope"] == {
        "monitorId": "m1",
        "tags": ["db"],
        "serverId": None,
        "environmentId": "env-1",
        "projectId": None,
        "clientId": None,
    }
    await until(lambda: d.stats[ch["id"]].sent == 1)


async def test_presets_post_their_own_shapes(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    for kind in ("slack", "discord", "teams", "mattermost"):
        await channel(client, kind, {"url": receiver.url(f"/{kind}")})
    d = await make_dispatcher()
    d.publish(event("down", message="connection refused @channel"))
    d.publish(event("up", downtime_seconds=312))
    await until(lambda: len(receiver.seen) == 8)
    down = "🔴 DOWN: api (https://api.example) — connection refused"
    up = "🟢 UP: api (https://api.example) after 5m 12s"
    s_down, s_up = (x.json() for x in receiver.at("/slack"))
    assert s_down["text"].startswith(down) and s_up["text"] == up
    assert [b["type"] for b in s_down["blocks"]] == ["section", "section", "context"]
    disc = receiver.at("/discord")[0].json()
    assert disc["content"].startswith(down) and disc["allowed_mentions"] == {"parse": []}
    assert disc["embeds"][0]["fields"][0] == {"name": "Monitor", "value": "api", "inline": True}
    card = receiver.at("/teams")[1].json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert card["content"]["type"] == "AdaptiveCard"
    assert card["content"]["body"][0]["text"] == up
    mm_down, mm_up = (x.json()["text"] for x in receiver.at("/mattermost"))
    assert up in mm_up and "Downtime**: 5m 12s" in mm_up
    assert "@\u200bchannel" in mm_down and "@channel" not in mm_down  # no workspace ping


async def test_retries_keep_one_delivery_id_and_are_counted(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    ch = await channel(client, "webhook", {"url": receiver.url("/flaky")})
    receiver.plans["/flaky"] = [503, 503]
    d = await make_dispatcher()
    d.publish(event())
    await until(lambda: d.stats[ch["id"]].sent == 1)
    seen = receiver.at("/flaky")
    assert len(seen) == 3
    assert len({x.headers["X-DragonOps-Delivery"] for x in seen}) == 1
    stats = d.stats[ch["id"]]
    assert (stats.sent, stats.retried, stats.failed) == (1, 2, 0)


async def test_client_errors_are_not_retried_but_429_honours_retry_after(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    bad = await channel(client, "webhook", {"url": receiver.url("/bad")})
    slow = await channel(client, "webhook", {"url": receiver.url("/slow")})
    receiver.plans["/bad"] = [400, 400, 400]
    receiver.plans["/slow"] = [(429, {"Retry-After": "1"})]
    d = await make_dispatcher()
    started = time.monotonic()
    d.publish(event())
    await until(lambda: d.stats[bad["id"]].failed == 1 and d.stats[slow["id"]].sent == 1)
    assert len(receiver.at("/bad")) == 1 and d.stats[bad["id"]].retried == 0
    assert d.stats[bad["id"]].last_error == "HTTP 400"
    # Backoff alone is ~10 ms here; Retry-After (capped at 0.3 s by the policy) set the pace.
    assert time.monotonic() - started >= 0.3
    assert d.stats[slow["id"]].retried == 1


async def test_hanging_receiver_times_out_and_never_blocks_publish(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    hung = await channel(client, "webhook", {"url": receiver.url("/hang")})
    fine = await channel(client, "webhook", {"url": receiver.url("/fine")}, events=["up"])
    receiver.hang.add("/hang")
    policy = DeliveryPolicy(
        attempt_timeout=0.2, max_attempts=2, backoff_base=0.01, queue_size=100, drain_timeout=0
    )
    d = await make_dispatcher(policy=policy)
    started = time.perf_counter()
    for i in range(1000):
        d.publish(event("down", monitor=f"m{i}"))
    assert time.perf_counter() - started < 0.25
    stats = d.stats[hung["id"]]
    assert stats.dropped >= 1000 - 100 - 1
    d.publish(event("up", monitor="other"))  # another channel is not held up by the hung one
    await until(lambda: d.stats[fine["id"]].sent == 1, timeout=1.0)
    await until(lambda: stats.failed >= 1, timeout=2.0)
    assert stats.last_error == "timed out after 0.2s" and stats.retried >= 1


async def test_dedupe_sends_a_repeat_once_but_never_hides_recovery(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    ch = await channel(client, "webhook", {"url": receiver.url("/hook")})
    now = [1000.0]
    d = await make_dispatcher(clock=lambda: now[0])
    for kind in ("down", "down", "up", "up", "down", "certificate", "certificate"):
        d.publish(event(kind))
    now[0] += 301  # past the window the same 'down' goes out again
    d.publish(event("down"))
    await until(lambda: d.stats[ch["id"]].sent == 5)
    assert [x.json()["event"] for x in receiver.at("/hook")] == [
        "down",
        "up",
        "down",
        "certificate",
        "down",
    ]
    assert d.deduped == 3


async def test_routing_by_scope_and_events(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    a = await channel(client, "webhook", {"url": receiver.url("/a")}, scope={"monitorIds": ["m1"]})
    b = await channel(client, "webhook", {"url": receiver.url("/b")}, scope={"tags": ["db"]})
    c = await channel(
        client,
        "webhook",
        {"url": receiver.url("/c")},
        scope={"environmentIds": ["env-1"]},
        events=["up"],
    )
    off = await channel(client, "webhook", {"url": receiver.url("/off")}, enabled=False)
    d = await make_dispatcher()
    assert set(d.backlog()) == {a["id"], b["id"], c["id"]}  # disabled: no worker
    # publish only queues, so what each channel got is visible before any worker runs
    d.publish(event("down", "m1"))
    d.publish(event("down", "m2", tags=("web", "db")))
    d.publish(event("down", "m3", environment_id="env-1"))
    d.publish(event("up", "m3", environment_id="env-1"))
    assert d.backlog() == {a["id"]: 1, b["id"]: 1, c["id"]: 1}
    await until(lambda: len(receiver.seen) == 3)
    assert [x.json()["monitorId"] for x in receiver.at("/c")] == ["m3"]
    assert receiver.at("/c")[0].json()["event"] == "up" and not receiver.at("/off")
    # an API write reloads the app's own dispatcher
    assert off["id"] not in client.app[NOTIFIER].backlog()
    resp = await client.patch(f"/api/notifications/{off['id']}", json={"enabled": True})
    assert resp.status == 200
    assert off["id"] in client.app[NOTIFIER].backlog()
    assert (await client.delete(f"/api/notifications/{off['id']}")).status == 204
    assert off["id"] not in client.app[NOTIFIER].backlog()


async def test_test_endpoint_reports_success_and_failure(
    client: Client, receiver: Receiver
) -> None:
    ok = await channel(client, "webhook", {"url": receiver.url("/hook"), "secret": SIGNING_SECRET})
    resp = await client.post(f"/api/notifications/{ok['id']}/test")
    result = await resp.json()
    assert resp.status == 200 and result["ok"] is True and result["status"] == 200
    got = receiver.at("/hook")[0]
    assert got.headers["X-DragonOps-Event"] == "test" and receiver.bad_signatures == 0
    assert got.json()["event"] == "test"

    receiver.plans["/down/" + SLACK_URL_TOKEN] = [503]
    failing = await channel(client, "slack", {"url": receiver.url("/down/" + SLACK_URL_TOKEN)})
    resp = await client.post(f"/api/notifications/{failing['id']}/test")
    text = await resp.text()
    result = await resp.json()
    assert resp.status == 200 and result["ok"] is False
    assert result["status"] == 503 and result["error"] == "HTTP 503" and result["attempts"] == 1
    assert SLACK_URL_TOKEN not in text

    port = free_port()  # nothing listens there
    refused = await channel(client, "mattermost", {"url": f"http://127.0.0.1:{port}/hooks/x"})
    result = await (await client.post(f"/api/notifications/{refused['id']}/test")).json()
    assert result["ok"] is False and result["error"] == UNDELIVERED and result["status"] is None
    missing = "00000000-0000-4000-8000-000000000000"
    assert (await client.post(f"/api/notifications/{missing}/test")).status == 404


async def test_deny_cidrs_refuse_channels_by_literal_and_by_name(
    client: Client, receiver: Receiver, make_dispatcher: MakeDispatcher
) -> None:
    guard = AddressGuard(ProbesConfig(deny_cidrs=["127.0.0.0/8", "::1/128"]))
    d = await make_dispatcher(guard=guard)
    literal = await channel(client, "webhook", {"url": receiver.url("/hook")})
    named = receiver.url("/hook").replace("127.0.0.1", "localhost")
    by_name = await channel(client, "webhook", {"url": named})
    mail = await channel(client, "email", {**EMAIL_TO_LOOPBACK, "port": free_port()})
    for ch in (literal, by_name, mail):
        result = await d.test(ch["id"])
        assert result.ok is False and result.error == UNDELIVERED, ch["kind"]
    assert receiver.at("/hook") == []


async def test_email_through_a_real_smtp_server(
    client: Client, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    # aiosqlite's DEBUG trace prints SQL parameters (config included): see the report.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="dragonopsd")
    mailbox = Mailbox()
    server = smtp_server(mailbox)
    await asyncio.to_thread(server.start)
    try:
        config = {
            "host": "127.0.0.1",
            "port": server.port,
            "security": "none",
            "username": "alerts",
            "password": "smtp-pass-123",
            "from": "dragonops@example.com",
            "to": ["oncall@example.com", "boss@example.com"],
        }
        ch = await channel(client, "email", config)
        assert ch["hasSecret"] is True and "password" not in ch["config"]
        result = await (await client.post(f"/api/notifications/{ch['id']}/test")).json()
        assert result["ok"] is True, result
        d = await make_dispatcher()
        d.publish(event("down", monitor_name="api\r\nBcc: evil@example.com"))
        await until(lambda: len(mailbox.envelopes) == 2)
    finally:
        await asyncio.to_thread(server.stop)
    envelope = mailbox.envelopes[1]
    assert envelope.mail_from == "dragonops@example.com"
    assert envelope.rcpt_tos == ["oncall@example.com", "boss@example.com"]
    msg = mailbox.message(1)
    subject = str(msg["Subject"])
    assert "DOWN: api" in subject and "\n" not in subject
    assert msg["Bcc"] is None and msg["X-DragonOps-Event"] == "down"
    assert "connection refused" in msg.get_content()
    assert "TEST" in str(mailbox.message(0)["Subject"])
    assert mailbox.logins == [(b"alerts", b"smtp-pass-123")] * 2
    assert "smtp-pass-123" not in daemon_logs(caplog)


LOOPBACK_SPELLINGS = ("2130706433", "0x7f000001", "127.1", "localhost")


async def test_email_hosts_are_resolved_and_judged_not_read_literally(
    client: Client, make_dispatcher: MakeDispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dragonopsd")
    mailbox = Mailbox()
    server = smtp_server(mailbox)
    await asyncio.to_thread(server.start)
    try:
        channels = [
            await channel(client, "email", {**EMAIL_TO_LOOPBACK, "host": host, "port": server.port})
            for host in LOOPBACK_SPELLINGS
        ]
        denied = await make_dispatcher(
            guard=AddressGuard(ProbesConfig(deny_cidrs=["127.0.0.0/8", "::1/128"]))
        )
        for ch in channels:
            result = await denied.test(ch["id"])
            assert result.ok is False and result.error == UNDELIVERED, ch["config"]["host"]
        assert mailbox.envelopes == []
        assert daemon_logs(caplog).count(f"test failed: {REFUSED}") == len(LOOPBACK_SPELLINGS)
        # The same spellings with loopback allowed: each reaches the server through the
        # address that was checked.
        allowed = await make_dispatcher()
        for ch in channels:
            assert (await allowed.test(ch["id"])).ok is True, ch["config"]["host"]
        assert len(mailbox.envelopes) == len(LOOPBACK_SPELLINGS)
    finally:
        await asyncio.to_thread(server.stop)


@pytest.mark.parametrize(
    "host", ["2851998206", "0xa9fea9fe", "169.254.43518", "0251.0376.0251.0376"]
)
async def test_email_metadata_spellings_are_refused_before_connecting(host: str) -> None:
    row = await _stored_email(host)
    async with asyncio.timeout(2):  # refused outright, not a connect attempt that times out
        attempt = await smtp.send(row, event("down"), "d-1", guard=AddressGuard(ProbesConfig()))
    assert attempt.ok is False and attempt.error == UNDELIVERED and attempt.detail == REFUSED


async def _stored_email(host: str) -> Channel:
    row = StoredChannel(
        id="c-1",
        name="mail",
        kind="email",
        enabled=True,
        events=["down"],
        scope={"all": True},
        config={**EMAIL_TO_LOOPBACK, "host": host, "port": 25},
        created_at="",
        updated_at="",
    )
    return Channel.parse(row)


async def test_test_endpoint_is_no_port_scan_oracle(
    make_client: Callable[..., Awaitable[Client]], receiver: Receiver
) -> None:
    client = await make_client(probes={"deny_cidrs": ["10.0.0.0/8"]})
    listening = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    silent_port = listening.sockets[0].getsockname()[1]
    targets = {
        "refused": ("0x0a000001", free_port()),  # 10.0.0.1 spelled as a name: denied
        "closed": ("127.0.0.1", free_port()),
        "not smtp": ("127.0.0.1", silent_port),  # accepts, then hangs up without a greeting
        "unknown": ("no-such-host.invalid", 25),
    }
    answers = {}
    try:
        for label, (host, port) in targets.items():
            ch = await channel(client, "email", {**EMAIL_TO_LOOPBACK, "host": host, "port": port})
            resp = await client.post(f"/api/notifications/{ch['id']}/test")
            body = await resp.json()
            answers[label] = (resp.status, body["ok"], body["status"], body["error"])
        hook = await channel(client, "webhook", {"url": f"http://0x0a000001:{free_port()}/h"})
        body = await (await client.post(f"/api/notifications/{hook['id']}/test")).json()
        answers["refused webhook"] = (200, body["ok"], body["status"], body["error"])
    finally:
        listening.close()
        await listening.wait_closed()
    assert set(answers.values()) == {(200, False, None, UNDELIVERED)}, answers


async def test_email_over_starttls(client: Client) -> None:
    mailbox = Mailbox()
    server = smtp_server(mailbox, starttls=True)
    await asyncio.to_thread(server.start)
    try:
        base = {"host": "127.0.0.1", "port": server.port, "from": "a@example.com"}
        tls = await channel(client, "email", {**base, "to": ["b@example.com"], "verifyTls": False})
        plain = await channel(
            client, "email", {**base, "to": ["b@example.com"], "security": "none"}
        )
        good = await (await client.post(f"/api/notifications/{tls['id']}/test")).json()
        bad = await (await client.post(f"/api/notifications/{plain['id']}/test")).json()
    finally:
        await asyncio.to_thread(server.stop)
    assert good["ok"] is True and len(mailbox.envelopes) == 1
    # the server insists on STARTTLS: a permanent 5xx, reported by code only
    assert bad["ok"] is False and bad["error"].startswith("SMTP 5")


def _strings(doc: Any) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in _strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in _strings(v)]
    return []


async def test_push_message_cannot_forge_lines_in_any_channel(
    client: Client, receiver: Receiver
) -> None:
    mailbox = Mailbox()
    server = smtp_server(mailbox)
    await asyncio.to_thread(server.start)
    try:
        await channel(client, "email", {**EMAIL_TO_LOOPBACK, "port": server.port})
        for kind in ("webhook", "slack", "discord", "teams", "mattermost"):
            await channel(client, kind, {"url": receiver.url(f"/{kind}")})
        m = await post(client, "/api/monitors", {"name": "backup", "kind": "push"})
        forged = "disk full\r\nBcc: evil@example.com\r\n\u2028Subject: pwned\x85x"
        query = {"status": "down", "msg": forged}
        resp = await client.get(f"/api/push/{m['pushToken']}", params=query)
        assert resp.status == 200
        await until(lambda: len(mailbox.envelopes) == 1 and len(receiver.seen) == 5)
    finally:
        await asyncio.to_thread(server.stop)
    assert mailbox.envelopes[0].rcpt_tos == ["oncall@example.com"]
    msg = mailbox.message(0)
    assert msg["Bcc"] is None
    body = msg.get_content()
    assert "disk full Bcc: evil@example.com Subject: pwned x" in body
    assert not any(line.startswith(("Bcc:", "Subject:")) for line in body.splitlines())
    for delivery in receiver.seen:
        texts = _strings(delivery.json())
        assert any("Bcc: evil@" in t for t in texts), delivery.path
        assert not any(ch in t for t in texts for ch in "\r\x85\u2028"), delivery.path
        # Mattermost's Markdown uses real line breaks of its own; the forged text adds none.
        assert not any("\nBcc:" in t or "\nSubject:" in t for t in texts), delivery.path
