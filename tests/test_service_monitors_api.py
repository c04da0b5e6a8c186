"""Service monitors through the real app: each kind takes only its own fields, a password is
only ever a reference to the secrets store, and /check runs the probe with the secret's value."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from conftest import Client, post, token_for

from dragonopsd.monitoring.service import decode_spec
from dragonopsd.secrets.crypto import KeyRing, write_key_file

pytestmark = pytest.mark.backends

PASSWORD = "api-Pa55-" + secrets.token_hex(4)


@pytest.fixture
async def pg_role() -> AsyncIterator[str]:
    """A PostgreSQL role that must give PASSWORD (member of dragonops_pw, see .ci/services)."""
    role = f"prober_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}' IN ROLE dragonops_pw")
    try:
        yield role
    finally:
        await admin.execute(f"DROP ROLE IF EXISTS {role}")
        await admin.close()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        (
            {"kind": "postgres", "host": "db.test", "username": "u", "url": "http://x.test/"},
            "$.url",
        ),
        ({"kind": "postgres", "host": "db.test"}, "$.username"),
        ({"kind": "redis", "host": "r.test", "query": "SELECT 1"}, "$.query"),
        ({"kind": "mqtt", "host": "m.test", "queue": "q"}, "$.queue"),
        ({"kind": "amqp", "host": "a.test", "topic": "t"}, "$.topic"),
        ({"kind": "grpc", "host": "g.test"}, "$.port"),
        ({"kind": "grpc", "host": "g.test", "port": 50051, "verifyTls": False}, "$.verifyTls"),
        ({"kind": "websocket", "url": "http://w.test/"}, "$.url"),
        ({"kind": "http", "url": "ws://w.test/"}, "$.url"),
        ({"kind": "mysql", "host": "m.test", "passwordSecret": "DB"}, "$.username"),
        (
            {"kind": "mysql", "host": "m.test", "username": "u", "passwordSecret": "no such"},
            "$.passwordSecret",
        ),
        ({"kind": "mysql", "host": "m.test", "username": "u", "password": "plain"}, "$.password"),
        ({"kind": "mqtt", "host": "m.test", "topic": "a/#"}, "$.topic"),
    ],
)
async def test_each_kind_takes_only_its_fields(
    client: Client, fields: dict[str, Any], field: str
) -> None:
    resp = await client.post("/api/monitors", json={"name": "x", "enabled": False, **fields})
    body = await resp.json()
    assert resp.status == 422 and body["errors"][0]["field"] == field, body
    assert (await (await client.get("/api/monitors")).json())["items"] == []


async def test_openapi_lists_each_kinds_fields(client: Client) -> None:
    spec = await (await client.get("/api/openapi.json")).json()
    schema = spec["components"]["schemas"]["MonitorSpec"]
    kinds = schema["x-kinds"]
    assert kinds["postgres"]["required"] == ["host", "username"]
    assert "query" in kinds["mysql"]["fields"] and "query" not in kinds["redis"]["fields"]
    assert kinds["grpc"]["fields"] == ["host", "port", "service", "tls"]
    assert kinds["websocket"]["required"] == ["url"]
    assert "password" not in schema["properties"]
    assert schema["properties"]["vhost"]["description"] == "Only for kind amqp."


async def test_postgres_check_reads_the_password_from_the_secrets_store(
    tmp_path: Path, make_client: Any, pg_role: str
) -> None:
    write_key_file(
        tmp_path / "secrets.key", KeyRing.new(str(tmp_path / "secrets.key")), overwrite=False
    )
    client: Client = await make_client()
    await post(client, "/api/secrets", {"key": "PG_PASS", "value": PASSWORD})
    await post(client, "/api/secrets", {"key": "PG_WRONG", "value": "nope-" + PASSWORD})
    base = {
        "kind": "postgres",
        "enabled": False,
        "host": "127.0.0.1",
        "username": pg_role,
        "database": "postgres",
        "query": "SELECT current_user",
        "conditions": [f"[RESULT] == {pg_role}", "[ROWS] == 1"],
    }
    good = await post(client, "/api/monitors", {**base, "name": "db", "passwordSecret": "PG_PASS"})
    bad = await post(client, "/api/monitors", {**base, "name": "bad", "passwordSecret": "PG_WRONG"})
    assert good["passwordSecret"] == "PG_PASS"
    report = await (await client.post(f"/api/monitors/{good['id']}/check")).json()
    assert report["ok"] is True, report
    report = await (await client.post(f"/api/monitors/{bad['id']}/check")).json()
    assert report["ok"] is False and report["error"] == "authentication failed"
    assert PASSWORD not in str(report)
    listed = await (await client.get("/api/monitors")).text()
    assert PASSWORD not in listed
    viewer = {"Authorization": f"Bearer {await token_for(client.app, 'viewer')}"}
    seen = await (await client.get(f"/api/monitors/{good['id']}", headers=viewer)).json()
    assert seen["username"] != pg_role and seen["passwordSecret"] == "PG_PASS"
    await client.close()  # checkpoints the WAL into the main file
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("dragonops.db"))
    assert PASSWORD.encode() not in raw


def test_the_readme_examples_are_valid_monitors() -> None:
    """Each service monitor body in the README's Monitoring section is one the API accepts."""
    text = (Path(__file__).parent.parent / "README.md").read_text()
    start = text.index("<!-- not run: the hosts are examples; tests/test_service_monitors_api")
    block = text[start : text.index("```\n", text.index("```sh", start) + 5)]
    bodies = [json.loads(m) for m in re.findall(r"-d '(\{.*?\})'", block, re.DOTALL)]
    kinds = [decode_spec(b).kind for b in bodies if "kind" in b]
    assert kinds == ["postgres", "mysql", "redis", "mqtt", "amqp", "websocket", "grpc"]
