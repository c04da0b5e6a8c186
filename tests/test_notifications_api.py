"""/api/notifications: validation naming fields, roles, credentials masked everywhere, and the
pure pieces (backoff, Retry-After, durations, the address guard)."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from conftest import Client, post, token_for
from notify_helpers import (
    SIGNING_SECRET,
    Receiver,
    daemon_logs,
    event,
    receiver_fixture,  # noqa: F401 - the `receiver` fixture
    until,
)

from dragonopsd.appkeys import NOTIFIER
from dragonopsd.config import ProbesConfig
from dragonopsd.netguard import (
    AddressGuard,
    AddressRefused,
    GuardedResolver,
    check_host_literal,
)
from dragonopsd.notify.delivery import DeliveryPolicy, http_attempt, parse_retry_after
from dragonopsd.notify.event import duration, headline

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

PROBLEM = "application/problem+json"
HOOK = "https://hooks.slack.com/services/T0001/B0002/SuPeRsEcReTtOkEn"
EMAIL = {
    "host": "smtp.example.com",
    "username": "alerts",
    "password": "pa55-w0rd-value",
    "from": "dragonops@example.com",
    "to": ["oncall@example.com"],
}
SECRETS = ("SuPeRsEcReTtOkEn", "pa55-w0rd-value", SIGNING_SECRET)


async def create(client: Client, kind: str, config: dict[str, Any], **extra: Any) -> Any:
    body = {"name": f"{kind} channel", "kind": kind, "config": config, **extra}
    return await post(client, "/api/notifications", body)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "config": {"url": "https://a.example/"}}, "$.kind"),
        ({"name": "x", "kind": "pager", "config": {}}, "$.kind"),
        ({"name": "x", "kind": "webhook"}, "$.config"),
        ({"kind": "slack", "config": {"url": "https://a.example/"}}, "$.name"),
        ({"name": "x", "kind": "slack", "config": {"url": "ftp://a.example/SuPeRsEcReTtOkEn"}},
         "$.config.url"),
        ({"name": "x", "kind": "slack", "config": {"url": HOOK, "extra": 1}}, "$.config.extra"),
        ({"name": "x", "kind": "teams", "config": {"url": "https://[zz/x"}}, "$.config.url"),
        ({"name": "x", "kind": "teams", "config": {"url": "https://a.example:99999/"}},
         "$.config.url"),
        ({"name": "x", "kind": "webhook", "config": {"url": HOOK, "secret": "short"}},
         "$.config.secret"),
        ({"name": "x", "kind": "webhook", "config": {"url": "http://169.254.169.254/latest"}},
         "$.config.url"),
        ({"name": "x", "kind": "email", "config": {**EMAIL, "to": ["nobody"]}}, "$.config.to[0]"),
        ({"name": "x", "kind": "email", "config": {**EMAIL, "to": []}}, "$.config.to"),
        ({"name": "x", "kind": "email", "config": {**EMAIL, "from": "a@b\r\nBcc: c@d.e"}},
         "$.config.from"),
        ({"name": "x", "kind": "email", "config": {**EMAIL, "port": 70000}}, "$.config.port"),
        ({"name": "x", "kind": "email", "config": {**EMAIL, "username": None}},
         "$.config.username"),
        ({"name": "x", "kind": "email", "config": {**EMAIL, "security": "ssl"}},
         "$.config.security"),
        ({"name": "x", "kind": "slack", "config": {"url": HOOK}, "scope": {}}, "$.scope"),
        ({"name": "x", "kind": "slack", "config": {"url": HOOK},
          "scope": {"all": True, "tags": ["db"]}}, "$.scope.all"),
        ({"name": "x", "kind": "slack", "config": {"url": HOOK}, "events": []}, "$.events"),
        ({"name": "x", "kind": "slack", "config": {"url": HOOK}, "events": ["up", "up"]},
         "$.events"),
        ({"name": "x", "kind": "slack", "config": {"url": HOOK}, "events": ["test"]},
         "$.events[0]"),
    ],
)  # fmt: skip
async def test_bad_channels_are_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/notifications", json=body)
    text = await resp.text()
    assert resp.status == 422, text
    assert resp.content_type == PROBLEM
    assert (await resp.json(content_type=PROBLEM))["errors"][0]["field"] == field
    assert not any(s in text for s in SECRETS)
    assert (await (await client.get("/api/notifications")).json())["items"] == []


async def test_bad_patches_are_422_and_change_nothing(client: Client) -> None:
    ch = await create(client, "email", EMAIL)
    path = f"/api/notifications/{ch['id']}"
    for patch, field in [
        ({"kind": "slack"}, "$.kind"),
        ({"config": {"port": 0}}, "$.config.port"),
        ({"config": {"host": None}}, "$.config.host"),
        ({"config": {"url": HOOK}}, "$.config.url"),
        ({"scope": {"all": False}}, "$.scope"),
    ]:
        resp = await client.patch(path, json=patch)
        assert resp.status == 422, (patch, await resp.text())
        assert (await resp.json(content_type=PROBLEM))["errors"][0]["field"] == field, patch
    assert await (await client.get(path)).json() == ch
    missing = "/api/notifications/00000000-0000-4000-8000-000000000000"
    assert (await client.patch(missing, json={"name": "y"})).status == 404
    assert (await client.get("/api/notifications/not-a-uuid")).status == 404


async def test_credentials_are_masked_kept_on_patch_and_never_logged(
    client: Client, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="dragonopsd")
    # scoped away from monitor m1, so only the failing channel below hears the published event
    away = {"scope": {"monitorIds": ["elsewhere"]}}
    slack = await create(client, "slack", {"url": HOOK}, **away)
    assert slack["config"] == {"url": "https://hooks.slack.com/****"}
    assert slack["hasSecret"] is True
    hook = await create(client, "webhook", {"url": HOOK, "secret": SIGNING_SECRET}, **away)
    mail = await create(client, "email", EMAIL, **away)
    assert mail["config"]["username"] == "alerts" and "password" not in mail["config"]
    for path in ["/api/notifications", *(f"/api/notifications/{c['id']}" for c in (hook, mail))]:
        text = await (await client.get(path)).text()
        assert not any(s in text for s in SECRETS), path

    store = client.app[NOTIFIER].store
    # a GET -> PATCH round trip sends the mask back: the stored URL stays
    resp = await client.patch(
        f"/api/notifications/{slack['id']}", json={"name": "ops", "config": slack["config"]}
    )
    assert resp.status == 200 and (await resp.json())["name"] == "ops"
    assert (await store.get(slack["id"])).config["url"] == HOOK
    # omitted secrets stay; null removes the optional one
    await client.patch(f"/api/notifications/{mail['id']}", json={"config": {"port": 2525}})
    assert (await store.get(mail["id"])).config["password"] == EMAIL["password"]
    resp = await client.patch(f"/api/notifications/{hook['id']}", json={"config": {"secret": None}})
    assert (await resp.json())["hasSecret"] is False

    # a failing delivery and a failing test log the channel, never its URL
    token_url = receiver.url("/hooks/SuPeRsEcReTtOkEn")
    receiver.plans["/hooks/SuPeRsEcReTtOkEn"] = [400, 400]
    failing = await create(client, "discord", {"url": token_url})
    result = await (await client.post(f"/api/notifications/{failing['id']}/test")).json()
    assert result["ok"] is False
    notifier = client.app[NOTIFIER]
    notifier.publish(event("down"))
    assert notifier.backlog()[failing["id"]] == 1
    await until(lambda: notifier.stats[failing["id"]].failed == 1)
    logs = daemon_logs(caplog)
    assert failing["id"] in logs and "HTTP 400" in logs
    assert not any(s in logs for s in SECRETS)
    assert "/hooks/" not in logs


async def test_viewer_reads_but_only_admins_write_or_test(client: Client) -> None:
    ch = await create(client, "slack", {"url": HOOK})
    viewer = {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}
    operator = {"Authorization": f"Bearer {await token_for(client.app, 'operator')}"}
    path = f"/api/notifications/{ch['id']}"
    assert (await client.get("/api/notifications", headers=viewer)).status == 200
    text = await (await client.get(path, headers=viewer)).text()
    assert "SuPeRsEcReTtOkEn" not in text
    body = {"name": "x", "kind": "slack", "config": {"url": HOOK}}
    for headers in (viewer, operator):
        assert (await client.post("/api/notifications", json=body, headers=headers)).status == 403
        assert (await client.patch(path, json={"name": "y"}, headers=headers)).status == 403
        assert (await client.delete(path, headers=headers)).status == 403
        assert (await client.post(f"{path}/test", headers=headers)).status == 403


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    policy = DeliveryPolicy(backoff_base=1.0, backoff_max=8.0, retry_after_max=30.0)
    assert [policy.backoff(n, None, rand=lambda: 1.0) for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 8]
    assert policy.backoff(3, None, rand=lambda: 0.0) == 2.0
    assert policy.backoff(1, 12.0, rand=lambda: 1.0) == 12.0
    assert policy.backoff(1, 3600.0) == 30.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert http_attempt(429, "2").retry_after == 2.0
    assert (http_attempt(408, None).retry, http_attempt(404, None).retry) == (True, False)
    assert http_attempt(301, None).retry is False and http_attempt(204, None).ok


def test_human_text() -> None:
    assert duration(312) == "5m 12s" and duration(7380) == "2h 3m" and duration(3) == "3s"
    assert duration(90061) == "1d 1h"
    cert = event("certificate", cert_expires_at="2026-01-15T00:00:00.000Z")
    assert headline(cert) == (
        "🟠 CERTIFICATE: api (https://api.example) — certificate expires "
        "2026-01-15T00:00:00.000Z (in 14 days)"
    )


class _Fixed(AbstractResolver):
    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0)
            for h in self.hosts
        ]

    async def close(self) -> None:
        return None


async def test_guard_refuses_metadata_addresses_after_resolution() -> None:
    guard = AddressGuard(ProbesConfig())
    for refused in ("169.254.169.254", "::ffff:169.254.169.254", "fe80::1%eth0", "fd00:ec2::254"):
        assert guard.check(refused) is not None, refused
    assert guard.check("100.100.100.200") is not None
    assert guard.check("127.0.0.1") is None and guard.check("10.0.0.5") is None
    with pytest.raises(AddressRefused):
        await GuardedResolver(_Fixed("169.254.169.254"), guard).resolve("rebind.example", 80)
    kept = await GuardedResolver(_Fixed("169.254.169.254", "10.0.0.5"), guard).resolve("x.example")
    assert [r["host"] for r in kept] == ["10.0.0.5"]


def test_host_literals_are_checked_names_pass() -> None:
    guard = AddressGuard(ProbesConfig(deny_cidrs=["10.0.0.0/8"]))
    assert check_host_literal(guard, "[fd00:ec2::254]") is not None
    assert check_host_literal(guard, "10.1.2.3") is not None  # deny_cidrs apply to channels too
    assert check_host_literal(guard, "smtp.example.com") is None  # checked once resolved
    assert check_host_literal(guard, "127.0.0.1") is None
    relaxed = AddressGuard(ProbesConfig(allow_metadata=True, deny_cidrs=["10.0.0.0/8"]))
    assert check_host_literal(relaxed, "169.254.169.254") is None
    assert check_host_literal(relaxed, "10.1.2.3") is not None
