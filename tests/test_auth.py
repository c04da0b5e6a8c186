"""Tokens, roles, JWTs through the real app, failure limiting, audit log, settings, headers."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt as pyjwt
import pytest
from aiohttp import web
from conftest import Client, post, token_for
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from dragonopsd.api.route import ROUTE_INDEX
from dragonopsd.appkeys import AUTH_LIMITER, AUTHENTICATOR
from dragonopsd.model.principal import ROLES, Role, allows

# Every test here that starts the app runs on SQLite and on PostgreSQL (conftest.py).
pytestmark = pytest.mark.backends

MakeClient = Callable[..., Awaitable[Client]]
ZERO = "00000000-0000-4000-8000-000000000000"

# Every route's role decision, stated here on purpose: a new route fails this test until
# someone writes down who may call it.
EXPECTED_ROLES = {
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    # Prometheus holds no API token; [metrics] token, when set, is checked by the handler.
    ("GET", "/metrics"): "public",
    ("GET", "/api/openapi.json"): "public",
    ("GET", "/api/docs"): "public",
    ("GET", "/api/docs/docs.css"): "public",
    ("GET", "/api/docs/docs.js"): "public",
    ("GET", "/api/stats/dashboard"): "viewer",
    **{
        (method, path.format(kind=kind)): role
        for kind in ("clients", "projects", "environments", "servers")
        for method, path, role in (
            ("GET", "/api/{kind}", "viewer"),
            ("POST", "/api/{kind}", "operator"),
            ("GET", "/api/{kind}/{{id}}", "viewer"),
            ("PATCH", "/api/{kind}/{{id}}", "operator"),
            ("DELETE", "/api/{kind}/{{id}}", "operator"),
        )
    },
    ("GET", "/api/settings"): "viewer",
    ("GET", "/api/settings/{key}"): "viewer",
    ("PUT", "/api/settings/{key}"): "admin",
    ("DELETE", "/api/settings/{key}"): "admin",
    ("GET", "/api/tokens"): "admin",
    ("POST", "/api/tokens"): "admin",
    ("DELETE", "/api/tokens/{id}"): "admin",
    ("GET", "/api/profiles"): "admin",
    ("GET", "/api/profiles/{id}"): "admin",
    ("PATCH", "/api/profiles/{id}"): "admin",
    ("GET", "/api/audit"): "admin",
    ("GET", "/api/monitors"): "viewer",
    ("POST", "/api/monitors"): "operator",
    ("GET", "/api/monitors/{id}"): "viewer",
    ("PATCH", "/api/monitors/{id}"): "operator",
    ("DELETE", "/api/monitors/{id}"): "operator",
    ("POST", "/api/monitors/{id}/check"): "operator",
    ("POST", "/api/monitors/test"): "operator",
    ("GET", "/api/monitors/{id}/history"): "viewer",
    ("GET", "/api/monitors/{id}/uptime"): "viewer",
    ("GET", "/api/monitoring"): "viewer",
    ("GET", "/api/stats/engine"): "viewer",
    ("GET", "/api/incidents"): "viewer",
    ("GET", "/api/incidents/{id}"): "viewer",
    ("POST", "/api/incidents"): "operator",
    ("POST", "/api/incidents/{id}/updates"): "operator",
    ("POST", "/api/incidents/{id}/acknowledge"): "operator",
    ("GET", "/api/push/{token}"): "public",
    ("POST", "/api/push/{token}"): "public",
    # The push signals are public too: the token in the path is the credential.
    ("GET", "/api/push/{token}/start"): "public",
    ("POST", "/api/push/{token}/start"): "public",
    ("GET", "/api/push/{token}/fail"): "public",
    ("POST", "/api/push/{token}/fail"): "public",
    ("GET", "/api/push/{token}/{exitCode}"): "public",
    ("POST", "/api/push/{token}/{exitCode}"): "public",
    ("GET", "/api/monitors/{id}/pings"): "viewer",
    ("GET", "/api/secrets"): "viewer",
    ("POST", "/api/secrets"): "admin",
    ("GET", "/api/secrets/{id}"): "viewer",
    ("PATCH", "/api/secrets/{id}"): "admin",
    ("DELETE", "/api/secrets/{id}"): "admin",
    ("GET", "/api/secrets/{id}/value"): "admin",
    ("GET", "/api/notifications"): "viewer",
    ("POST", "/api/notifications"): "admin",
    ("GET", "/api/notifications/{id}"): "viewer",
    ("PATCH", "/api/notifications/{id}"): "admin",
    ("DELETE", "/api/notifications/{id}"): "admin",
    ("POST", "/api/notifications/{id}/test"): "admin",
    ("GET", "/api/maintenance"): "viewer",
    ("POST", "/api/maintenance"): "operator",
    ("GET", "/api/maintenance/{id}"): "viewer",
    ("PATCH", "/api/maintenance/{id}"): "operator",
    ("DELETE", "/api/maintenance/{id}"): "operator",
    ("GET", "/api/maintenance/{id}/occurrences"): "viewer",
    ("GET", "/api/maintenance/preview"): "viewer",
    ("GET", "/api/servers/{id}/metrics"): "viewer",
    # Agent routes admit agent tokens (for their own server, checked in the handler) and admins.
    ("POST", "/api/servers/{id}/samples"): "agent",
    # Websockets authenticate in the handler (header, or a first {"op":"auth"} frame, since
    # browsers cannot set headers); without an upgrade they answer 400 (tests/test_ws.py).
    ("GET", "/api/ws"): "public",
    ("GET", "/api/servers/{id}/stream"): "public",
    ("POST", "/api/servers/{id}/actions"): "operator",
    ("GET", "/api/actions"): "viewer",
    ("GET", "/api/actions/{id}"): "viewer",
    ("POST", "/api/ai/generate"): "operator",
    ("GET", "/api/monitors/{id}/heartbeats"): "viewer",
    # The built-in dashboard holds no data (it calls the API with the user's token), and the
    # status pages show only what [status_page] publishes: names, statuses, uptime.
    ("GET", "/"): "public",
    ("GET", "/assets/{build}/{name}"): "public",
    ("GET", "/status"): "public",
    ("GET", "/status/feed.atom"): "public",
    ("GET", "/status/{slug}"): "public",
    ("GET", "/status/{slug}/feed.atom"): "public",
    ("GET", "/api/status-page"): "public",
    ("GET", "/api/status-page/{slug}"): "public",
    # Badges go into READMEs, so no token: only for monitors a status page already publishes,
    # and the same 404 for every other id, so they reveal nothing the status page does not.
    ("GET", "/api/badge/{id}/status.svg"): "public",
    ("GET", "/api/badge/{id}/uptime.svg"): "public",
    ("GET", "/api/badge/{id}/response.svg"): "public",
    ("GET", "/api/cluster"): "viewer",
    ("GET", "/api/locations"): "viewer",
    ("GET", "/api/alert-rules"): "viewer",
    ("POST", "/api/alert-rules"): "operator",
    ("GET", "/api/alert-rules/{id}"): "viewer",
    ("PATCH", "/api/alert-rules/{id}"): "operator",
    ("DELETE", "/api/alert-rules/{id}"): "operator",
    ("GET", "/api/servers/{id}/alerts"): "viewer",
    ("POST", "/api/import"): "admin",
}


def concrete(path: str) -> str:
    return path.replace("{id}", ZERO).replace("{key}", "some.key")


async def test_every_route_has_the_expected_role(client: Client) -> None:
    table = client.app[ROUTE_INDEX]
    assert {k: r.role for k, r in table.items()} == EXPECTED_ROLES


async def test_route_table_times_roles(make_client: MakeClient) -> None:
    """Walk every route as nobody, viewer, operator, admin and an agent."""
    # Each anonymous call is a failure counted against 127.0.0.1: more than the default limit.
    client = await make_client(auth={"failure_limit": 100_000})
    app: web.Application = client.app
    tokens: dict[Role, str] = {role: await token_for(app, role) for role in ROLES}
    # Scoped to the server the concrete paths name: past the samples route's checks (then 404
    # for the missing server), and refused everywhere else, even what a viewer may read.
    _, tokens["agent"] = await app[AUTHENTICATOR].tokens.create(
        "a", "agent", None, "t", server_id=ZERO
    )
    for (method, path), route in app[ROUTE_INDEX].items():
        url = concrete(path)
        body = {} if method in ("POST", "PUT", "PATCH") else None
        anon = await client.request(method, url, json=body, headers={"Authorization": ""})
        if route.role == "public":
            assert anon.status not in (401, 403), (method, path)
        else:
            assert anon.status == 401, (method, path, anon.status)
            assert anon.headers["WWW-Authenticate"].startswith("Bearer")
        for role, token in tokens.items():
            resp = await client.request(
                method, url, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            if allows(role, route.role):
                assert resp.status not in (401, 403), (method, path, role, resp.status)
            else:
                assert resp.status == 403, (method, path, role, resp.status)
                problem = await resp.json(content_type="application/problem+json")
                assert route.role in problem["detail"]


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer    ", "Basic dXNlcjpwYXNz", "Bearer dro_not-a-real-token", "token x"],
)
async def test_missing_or_bad_credentials_are_401(client: Client, header: str) -> None:
    resp = await client.get("/api/clients", headers={"Authorization": header})
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"] == 'Bearer realm="dragonopsd"'
    assert resp.content_type == "application/problem+json"


async def test_token_api_create_use_list_revoke(client: Client) -> None:
    created = await post(
        client, "/api/tokens", {"name": "ci", "role": "operator", "expiresDays": 30}
    )
    token, meta = created["token"], created["meta"]
    assert token.startswith("dro_") and meta["role"] == "operator" and meta["expiresAt"]
    as_op = {"Authorization": f"Bearer {token}"}
    assert (await client.post("/api/clients", json={"name": "x"}, headers=as_op)).status == 201
    listed = await (await client.get("/api/tokens")).text()
    assert token not in listed and token[10:] not in listed and "hash" not in listed
    assert (await client.delete(f"/api/tokens/{meta['id']}")).status == 204
    assert (await client.get("/api/clients", headers=as_op)).status == 401
    assert (await client.delete(f"/api/tokens/{ZERO}")).status == 404
    bad = await client.post("/api/tokens", json={"name": "x", "role": "root"})
    assert bad.status == 422


async def test_expired_token_is_401(client: Client) -> None:
    store = client.app[AUTHENTICATOR].tokens
    _, plain = await store.create("old", "admin", "2020-01-01T00:00:00.000Z", "tests")
    resp = await client.get("/api/clients", headers={"Authorization": f"Bearer {plain}"})
    assert resp.status == 401


async def test_token_used_then_expiring_is_401(client: Client) -> None:
    """A token the daemon already accepted (and remembers) stops working when it expires."""
    soon = datetime.fromtimestamp(time.time() + 1.0, UTC).isoformat(timespec="milliseconds")
    _, plain = await client.app[AUTHENTICATOR].tokens.create("brief", "viewer", soon, "tests")
    header = {"Authorization": f"Bearer {plain}"}
    assert (await client.get("/api/clients", headers=header)).status == 200
    assert (await client.get("/api/clients", headers=header)).status == 200
    await asyncio.sleep(max(0.0, datetime.fromisoformat(soon).timestamp() - time.time()) + 0.1)
    assert (await client.get("/api/clients", headers=header)).status == 401


async def test_repeated_failures_get_429_with_retry_after(make_client: MakeClient) -> None:
    client = await make_client(auth={"failure_limit": 3, "failure_window": 60})
    for _ in range(3):
        resp = await client.get("/api/clients", headers={"Authorization": "Bearer wrong"})
        assert resp.status == 401
    blocked = await client.get("/api/clients", headers={"Authorization": "Bearer wrong"})
    assert blocked.status == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    # while blocked, the right token still passes: tokens carry 256 random bits, so a guess
    # cannot succeed, and everyone behind the same proxy address must not be locked out
    assert (await client.get("/api/clients")).status == 200
    assert (await client.get("/healthz")).status == 200  # public routes are not limited


async def test_failures_expire_and_the_block_lifts(make_client: MakeClient) -> None:
    client = await make_client(auth={"failure_limit": 2, "failure_window": 1.0})
    limiter = client.app[AUTH_LIMITER]
    assert not limiter.active
    for _ in range(2):
        resp = await client.get("/api/clients", headers={"Authorization": "Bearer wrong"})
        assert resp.status == 401
    assert limiter.active
    assert (
        await client.get("/api/clients", headers={"Authorization": "Bearer wrong"})
    ).status == 429
    await asyncio.sleep(1.1)
    assert not limiter.active  # the stale address is dropped, not kept forever
    assert (
        await client.get("/api/clients", headers={"Authorization": "Bearer wrong"})
    ).status == 401


async def test_bootstrap_admin_token_file(make_client: MakeClient, make_config: Any) -> None:
    client = await make_client()
    path = make_config().resolve("admin.token")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    tokens = await client.app[AUTHENTICATOR].tokens.store.all()
    assert [(t.name, t.role) for t in tokens] == [("bootstrap-admin", "admin")]
    again = await make_client()  # same database: no second bootstrap token
    assert len(await again.app[AUTHENTICATOR].tokens.store.all()) == 1


async def test_no_bootstrap_token_when_jwt_is_configured(
    make_client: MakeClient, make_config: Any
) -> None:
    await make_client(auth={"jwt_secret": "s" * 32})
    assert not make_config().resolve("admin.token").exists()


def hs256(secret: str, **claims: Any) -> str:
    base = {
        "sub": "user-1",
        "aud": "authenticated",
        "exp": time.time() + 300,
        "email": "ada@example.com",
    }
    return pyjwt.encode(base | claims, secret, algorithm="HS256")


async def test_supabase_jwt_creates_a_viewer_profile_that_admins_promote(
    make_client: MakeClient,
) -> None:
    secret = "super-secret-jwt-key-with-32-bytes!"
    client = await make_client(auth={"jwt_secret": secret})
    user = {"Authorization": f"Bearer {hs256(secret)}"}
    assert (await client.get("/api/clients", headers=user)).status == 200
    assert (await client.post("/api/clients", json={"name": "x"}, headers=user)).status == 403
    profiles = await (await client.get("/api/profiles")).json()
    assert [(p["id"], p["email"], p["role"]) for p in profiles["items"]] == [
        ("user-1", "ada@example.com", "viewer")
    ]
    resp = await client.patch("/api/profiles/user-1", json={"role": "operator"})
    assert resp.status == 200
    assert (await client.post("/api/clients", json={"name": "x"}, headers=user)).status == 201
    for bad in (
        hs256(secret, aud="anon"),
        hs256(secret, exp=time.time() - 3600),
        hs256("another-secret-entirely-32-bytes!!"),
        hs256(secret)[:-4] + "AAAA",
    ):
        assert (
            await client.get("/api/clients", headers={"Authorization": f"Bearer {bad}"})
        ).status == 401


async def test_default_role_none_gives_signups_no_access_until_promoted(
    make_client: MakeClient,
) -> None:
    secret = "super-secret-jwt-key-with-32-bytes!"
    client = await make_client(auth={"jwt_secret": secret, "default_role": "none"})
    user = {"Authorization": f"Bearer {hs256(secret)}"}
    for path in ("/api/clients", "/api/monitors", "/api/stats/dashboard"):
        resp = await client.get(path, headers=user)
        body = await resp.json(content_type=None)
        assert resp.status == 403 and resp.content_type == "application/problem+json", path
        assert "no role yet" in body["detail"] and "/api/profiles/user-1" in body["detail"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/ws", headers=user)
    assert refused.value.status == 403
    assert (await client.get("/healthz", headers=user)).status == 200  # public stays public
    profiles = await (await client.get("/api/profiles")).json()
    assert [(p["id"], p["role"]) for p in profiles["items"]] == [("user-1", "none")]
    resp = await client.patch("/api/profiles/user-1", json={"role": "viewer"})
    assert resp.status == 200
    assert (await client.get("/api/clients", headers=user)).status == 200
    assert (await client.patch("/api/profiles/user-1", json={"role": "none"})).status == 200
    assert (await client.get("/api/clients", headers=user)).status == 403
    # "none" is for profiles only: no token can be minted without a role.
    resp = await client.post("/api/tokens", json={"name": "x", "role": "none"})
    assert resp.status == 422


async def test_es256_jwt_from_a_jwks_server(make_client: MakeClient, aiohttp_server: Any) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "k1", "alg": "ES256"}

    async def jwks(request: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    jwks_app = web.Application()
    jwks_app.router.add_get("/jwks.json", jwks)
    server = await aiohttp_server(jwks_app)
    client = await make_client(
        auth={
            "jwks_url": str(server.make_url("/jwks.json")),
            "issuer": "https://proj.supabase.co/auth/v1",
        }
    )
    claims = {
        "sub": "es-user",
        "aud": "authenticated",
        "exp": time.time() + 60,
        "iss": "https://proj.supabase.co/auth/v1",
    }
    good = pyjwt.encode(claims, key, algorithm="ES256", headers={"kid": "k1"})
    assert (
        await client.get("/api/clients", headers={"Authorization": f"Bearer {good}"})
    ).status == 200
    for bad in (
        pyjwt.encode(claims, key, algorithm="ES256", headers={"kid": "k2"}),  # unknown kid
        pyjwt.encode(
            claims | {"iss": "https://evil"}, key, algorithm="ES256", headers={"kid": "k1"}
        ),
        pyjwt.encode(claims, None, algorithm="none", headers={"kid": "k1"}),
    ):
        resp = await client.get("/api/clients", headers={"Authorization": f"Bearer {bad}"})
        assert resp.status == 401
