"""mqtt monitors: the machine's Mosquitto on 127.0.0.1:1883 (anonymous), and a Mosquitto this
test starts with a password file for the credential cases."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from service_probes import closed_port, probe, probe_env, silent_server

from dragonopsd.monitoring.conditions import evaluate_all, parse_all

PASSWORD = "mq-Pa55-" + secrets.token_hex(4)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[int]:
    """A Mosquitto that admits only user 'prober' with PASSWORD; its port."""
    passwords = tmp_path / "passwd"
    passwords.touch(mode=0o600)
    made = await asyncio.create_subprocess_exec(
        "mosquitto_passwd", "-b", str(passwords), "prober", PASSWORD
    )
    assert await made.wait() == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {passwords}\n"
        "user root\npersistence false\nlog_dest none\n"
    )
    proc = await asyncio.create_subprocess_exec("mosquitto", "-c", str(conf))
    try:
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        await proc.wait()


async def test_connect_publish_and_receive_it_back() -> None:
    topic = f"dragonops/test/{secrets.token_hex(4)}"
    conditions = ["[CONNECTED] == true", "[BODY].ok == true", "[BODY] == pat(*ping*)"]
    async with probe_env() as env:
        plain, _ = await probe(env, "mqtt", host="127.0.0.1")
        echoed, _ = await probe(
            env,
            "mqtt",
            host="127.0.0.1",
            topic=topic,
            body='{"ok": true, "msg": "ping"}',
            conditions=conditions,
        )
    assert plain.error is None and plain.context["CONNECTED"] is True
    assert "BODY" not in plain.context
    assert echoed.error is None, echoed.error
    assert echoed.context["BODY"] == b'{"ok": true, "msg": "ping"}'
    assert all(v.success for v in evaluate_all(parse_all(conditions), echoed.context))
    assert not evaluate_all(parse_all(["[BODY].ok == false"]), echoed.context)[0].success


async def test_wait_for_a_message_published_by_someone_else() -> None:
    topic = f"dragonops/test/{secrets.token_hex(4)}"

    async def publisher() -> None:
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            for _ in range(40):
                await client.publish(topic, payload=b"temperature=21")
                await asyncio.sleep(0.1)

    task = asyncio.create_task(publisher())
    try:
        async with probe_env() as env:
            result, _ = await probe(env, "mqtt", host="127.0.0.1", topic=topic)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert result.error is None, result.error
    assert result.context["BODY"] == b"temperature=21"


async def test_no_message_within_the_timeout_is_down() -> None:
    async with probe_env() as env:
        result, wall = await probe(
            env,
            "mqtt",
            host="127.0.0.1",
            topic=f"dragonops/quiet/{secrets.token_hex(4)}",
            timeout=1.0,
        )
    assert result.error == "timeout after 1.0s" and wall < 2.5


async def test_good_and_wrong_password(broker: int) -> None:
    wrong = "wrong-" + PASSWORD
    async with probe_env({"MQ": PASSWORD, "BAD": wrong}) as env:
        good, _ = await probe(
            env, "mqtt", host="127.0.0.1", port=broker, username="prober", password_secret="MQ"
        )
        bad, _ = await probe(
            env, "mqtt", host="127.0.0.1", port=broker, username="prober", password_secret="BAD"
        )
    assert good.error is None and good.context["CONNECTED"] is True
    assert bad.error == "authentication failed"
    assert wrong not in repr(bad) and PASSWORD not in repr(bad)


async def test_port_closed_is_down() -> None:
    async with probe_env() as env:
        result, _ = await probe(env, "mqtt", host="127.0.0.1", port=closed_port())
    assert result.error == "connection refused"


async def test_timeout_against_a_listener_that_never_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with silent_server() as silent, probe_env() as env:
        result, wall = await probe(env, "mqtt", host="127.0.0.1", port=silent.port, timeout=1.0)
        assert result.error == "timeout after 1.0s"
        assert wall < 2.5
        assert await silent.all_ended()  # the probe left no connection open behind it
    await asyncio.sleep(0.2)  # the listener has hung up: nothing may still react to that
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text
