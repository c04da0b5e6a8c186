"""amqp monitors against the real RabbitMQ on 127.0.0.1:5672 (guest/guest)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import aiormq
import pytest
from service_probes import closed_port, probe, probe_env, silent_server

from dragonopsd.monitoring.conditions import evaluate_all, parse_all

URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def queue() -> AsyncIterator[str]:
    """A queue holding two messages; deleted after the test."""
    name = f"dragonops-probe-{secrets.token_hex(4)}"
    connection = await aiormq.connect(URL)
    channel = await connection.channel()
    await channel.queue_declare(name)
    for body in (b"one", b"two"):
        await channel.basic_publish(body, routing_key=name)
    try:
        yield name
    finally:
        await channel.queue_delete(name)
        await connection.close()


async def exists(name: str) -> bool:
    connection = await aiormq.connect(URL)
    try:
        channel = await connection.channel()
        await channel.queue_declare(name, passive=True)
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        await connection.close()


async def test_up_with_queue_depth_and_consumers(queue: str) -> None:
    conditions = ["[CONNECTED] == true", "[QUEUE_MESSAGES] == 2", "[QUEUE_CONSUMERS] < 1"]
    async with probe_env({"MQ": "guest"}) as env:
        plain, _ = await probe(
            env, "amqp", host="127.0.0.1", username="guest", password_secret="MQ"
        )
        result, _ = await probe(
            env,
            "amqp",
            host="127.0.0.1",
            username="guest",
            password_secret="MQ",
            vhost="/",
            queue=queue,
        )
    assert plain.error is None and "QUEUE_MESSAGES" not in plain.context
    assert result.error is None, result.error
    assert result.context["QUEUE_MESSAGES"] == 2 and result.context["QUEUE_CONSUMERS"] == 0
    assert all(v.success for v in evaluate_all(parse_all(conditions), result.context))
    assert not evaluate_all(parse_all(["[QUEUE_MESSAGES] > 100"]), result.context)[0].success


async def test_a_missing_queue_is_down_and_never_created() -> None:
    name = f"dragonops-missing-{secrets.token_hex(4)}"
    async with probe_env() as env:
        result, _ = await probe(env, "amqp", host="127.0.0.1", queue=name)
    assert result.error == f"queue {name!r} does not exist"
    assert not await exists(name)


async def test_a_missing_vhost_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "amqp", host="127.0.0.1", vhost="no-such-vhost")
    assert result.error == "the broker refused vhost 'no-such-vhost'"


async def test_wrong_password_says_authentication_and_never_the_password() -> None:
    wrong = "wrong-" + secrets.token_hex(4)
    async with probe_env({"MQ": wrong}) as env:
        result, _ = await probe(
            env, "amqp", host="127.0.0.1", username="guest", password_secret="MQ"
        )
    assert result.error == "authentication failed"
    assert wrong not in repr(result)


async def test_port_closed_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "amqp", host="127.0.0.1", port=closed_port())
    assert result.error == "connection refused"


async def test_timeout_against_a_listener_that_never_answers() -> None:
    async with silent_server() as silent, probe_env() as env:
        result, wall = await probe(env, "amqp", host="127.0.0.1", port=silent.port, timeout=1.0)
    assert result.error == "timeout after 1.0s"
    assert wall < 2.5
    assert await silent.all_ended()  # the probe left no connection open behind it
