"""redis monitors against the real Redis on 127.0.0.1:6379; a password user is made per test
with ACL SETUSER and deleted after."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from service_probes import closed_port, probe, probe_env, silent_server

from dragonopsd.monitoring.conditions import evaluate_all, parse_all

PASSWORD = "rd-Pa55-" + secrets.token_hex(4)


@pytest.fixture
async def acl_user() -> AsyncIterator[str]:
    """A Redis ACL user that may only PING and INFO, with PASSWORD; deleted after the test."""
    name = f"dragonops-probe-{secrets.token_hex(4)}"
    admin = aioredis.Redis(host="127.0.0.1", port=6379)
    await admin.execute_command("ACL", "SETUSER", name, "on", f">{PASSWORD}", "+ping", "+info")
    try:
        yield name
    finally:
        await admin.execute_command("ACL", "DELUSER", name)
        await admin.aclose()


async def test_up_with_acl_user_and_info_conditions(acl_user: str) -> None:
    conditions = ["[CONNECTED] == true", "[INFO].role == master", "[INFO].connected_slaves >= 0"]
    async with probe_env({"REDIS": PASSWORD}) as env:
        result, _ = await probe(
            env,
            "redis",
            host="127.0.0.1",
            username=acl_user,
            password_secret="REDIS",
            conditions=conditions,
        )
    assert result.error is None, result.error
    assert result.context["IP"] == "127.0.0.1" and result.context["RESPONSE_TIME"] > 0
    verdicts = evaluate_all(parse_all(conditions), result.context)
    assert all(v.success for v in verdicts), verdicts
    replica = evaluate_all(parse_all(["[INFO].role == slave"]), result.context)[0]
    assert not replica.success and "master" in replica.detail


async def test_info_is_not_asked_unless_a_condition_reads_it() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "redis", host="127.0.0.1")
    assert result.error is None and result.context["CONNECTED"] is True
    assert "INFO" not in result.context


async def test_wrong_password_says_authentication_and_never_the_password(acl_user: str) -> None:
    wrong = "wrong-" + PASSWORD
    async with probe_env({"REDIS": wrong}) as env:
        result, _ = await probe(
            env, "redis", host="127.0.0.1", username=acl_user, password_secret="REDIS"
        )
    assert result.error == "authentication failed"
    assert wrong not in repr(result) and PASSWORD not in repr(result)


async def test_port_closed_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "redis", host="127.0.0.1", port=closed_port())
    assert result.error == "connection refused"
    assert result.context["CONNECTED"] is False


async def test_timeout_against_a_listener_that_never_answers() -> None:
    async with silent_server() as silent, probe_env() as env:
        result, wall = await probe(env, "redis", host="127.0.0.1", port=silent.port, timeout=1.0)
    assert result.error == "timeout after 1.0s"
    assert wall < 2.5
    assert await silent.all_ended()  # the probe left no connection open behind it
