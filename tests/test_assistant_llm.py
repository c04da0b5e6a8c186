"""The model path against a real OpenAI-compatible server on loopback: what the SDK sends
(model, messages, schema; never a secret value) and how every failure falls back offline."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from conftest import Client, post
from openai_server import ANSWER, USAGE, FakeOpenAI
from prometheus_client.parser import text_string_to_metric_families

from dragonopsd.appkeys import ASSISTANT
from dragonopsd.assistant.llm import SYSTEM_PROMPT
from dragonopsd.secrets.crypto import KeyRing, write_key_file

URL = "/api/ai/generate"
MODEL = "test-model"
PROMPT = "Create an Nginx config for a React app, marker zebra-7731"


async def scraped(client: Client) -> dict[tuple[str, str, str], float]:
    """The dragonops_assistant_* samples of a scrape, as {(name, label, value): sample}."""
    resp = await client.get("/metrics")
    assert resp.status == 200
    return {
        (s.name, *next(iter(s.labels.items()), ("", ""))): s.value
        for family in text_string_to_metric_families(await resp.text())
        for s in family.samples
        if s.name.startswith("dragonops_assistant_")
    }


@pytest.fixture
async def fake(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    running = await aiohttp_server(server.app())
    server.url = str(running.make_url("/v1"))
    yield server
    server.release.set()  # let a held "slow" answer finish so the server can close


@pytest.fixture
def llm_client(
    make_client: Callable[..., Awaitable[Client]], fake: FakeOpenAI
) -> Callable[..., Awaitable[Client]]:
    async def make(**ai: Any) -> Client:
        settings = {
            "provider": "openai",
            "base_url": fake.url,
            "model": MODEL,
            "api_key": "sk-config",
            "timeout": 1.0,
            "max_tokens": 700,
            **ai,
        }
        return await make_client(ai=settings)

    return make


def new_key_file(state: Path) -> None:
    """A secrets key ring in the state directory, so the store accepts secrets."""
    write_key_file(state / "secrets.key", KeyRing.new(str(state / "secrets.key")), overwrite=False)


async def ask(client: Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = await client.post(URL, json=body)
    data: dict[str, Any] = await resp.json(content_type=None)
    assert resp.status == 200, data
    return data


async def test_the_model_answers_with_the_request_the_sdk_sends(
    llm_client: Callable[..., Awaitable[Client]], fake: FakeOpenAI
) -> None:
    client = await llm_client()
    data = await ask(client, {"prompt": PROMPT + "\x00\u200b"})
    assert data["source"] == "llm" and data["code"] == ANSWER["code"]
    assert data["filename"] == "etc/site.conf"  # no way out of the client's directory
    assert data["target"] == "nginx" and MODEL in data["warnings"][0]
    (seen,) = fake.requests  # max_retries=0 and one call per prompt
    assert seen.headers["Authorization"] == "Bearer sk-config"
    body = seen.body
    assert body["model"] == MODEL and body["max_tokens"] == 700
    assert body["response_format"]["type"] == "json_schema"
    schema = body["response_format"]["json_schema"]
    assert schema["strict"] is True
    assert set(schema["schema"]["required"]) == {*ANSWER}
    system, inventory, user = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_PROMPT}
    assert inventory["role"] == "system" and "zebra-7731" not in inventory["content"]
    assert user == {"role": "user", "content": PROMPT}  # cleaned, and only here
    usage = client.app[ASSISTANT].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        USAGE["prompt_tokens"],
        USAGE["completion_tokens"],
    )
    assert usage.requests["llm"] == 1 and not usage.fallbacks
    # The same counters on /metrics, for a dashboard of what the model costs.
    found = await scraped(client)
    assert found[("dragonops_assistant_tokens_total", "kind", "prompt")] == USAGE["prompt_tokens"]
    completion = found[("dragonops_assistant_tokens_total", "kind", "completion")]
    assert completion == USAGE["completion_tokens"]
    assert found[("dragonops_assistant_answers_total", "source", "llm")] == 1
    assert found[("dragonops_assistant_answers_total", "source", "template")] == 0
    assert found[("dragonops_assistant_fallbacks_total", "reason", "timeout")] == 0


async def test_no_secret_value_reaches_the_model(
    tmp_path: Path,
    llm_client: Callable[..., Awaitable[Client]],
    fake: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
) -> None:
    new_key_file(tmp_path)
    client = await llm_client(api_key="", api_key_secret="prod/OPENAI_TOKEN")
    api_key, db_password = "sk-live-7f3e9a1c0b", "hunter2-db-9d8c7b"
    await post(client, "/api/secrets", {"key": "OPENAI_TOKEN", "env": "prod", "value": api_key})
    await post(client, "/api/secrets", {"key": "OPENAI", "env": "prod", "value": "decoy"})
    await post(client, "/api/secrets", {"key": "DB_PASSWORD", "value": db_password})
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(
        client,
        "/api/projects",
        {"clientId": c["id"], "name": "Portal", "technology": ["React", "Node.js"]},
    )
    e = await post(
        client,
        "/api/environments",
        {"projectId": p["id"], "name": "Production", "url": "https://portal.acme.example"},
    )
    await post(
        client,
        "/api/servers",
        {"environmentId": e["id"], "name": "web-1", "type": "web", "privateIp": "10.9.8.7"},
    )
    caplog.set_level(logging.DEBUG)
    data = await ask(client, {"prompt": PROMPT, "environmentId": e["id"]})
    assert data["source"] == "llm"
    (seen,) = fake.requests
    assert seen.headers["Authorization"] == f"Bearer {api_key}"  # read from the store per call
    for value in (api_key, db_password, "decoy", "10.9.8.7"):
        assert value not in seen.raw  # neither secrets nor addresses in what the model reads
    inventory = json.loads(seen.body["messages"][1]["content"].split(": ", 1)[1])
    assert inventory["inventory"] == {
        "project": {"name": "Portal", "technology": ["React", "Node.js"]},
        "environment": {
            "name": "Production",
            "url": "https://portal.acme.example",
            "status": "active",
            "servers": [{"name": "web-1", "type": "web"}],
        },
    }
    for value in (api_key, db_password):
        assert value not in caplog.text


async def test_environment_url_credentials_never_reach_the_model(
    llm_client: Callable[..., Awaitable[Client]], fake: FakeOpenAI
) -> None:
    client = await llm_client()
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    stored = "https://deploy:pa55-w0rd-31337@[2001:db8::7]:8443/app?token=tok-9f8e7d#sig=zz-42"
    e = await post(
        client, "/api/environments", {"projectId": p["id"], "name": "Production", "url": stored}
    )
    data = await ask(client, {"prompt": PROMPT, "environmentId": e["id"]})
    assert data["source"] == "llm"
    (seen,) = fake.requests
    for value in ("deploy", "pa55-w0rd-31337", "tok-9f8e7d", "zz-42"):
        assert value not in seen.raw
    inventory = json.loads(seen.body["messages"][1]["content"].split(": ", 1)[1])
    assert inventory["inventory"]["environment"]["url"] == "https://[2001:db8::7]:8443/app"


async def test_the_key_comes_from_openai_api_key_last(
    llm_client: Callable[..., Awaitable[Client]],
    fake: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    client = await llm_client(api_key="")
    await ask(client, {"prompt": PROMPT})
    assert fake.requests[0].headers["Authorization"] == "Bearer sk-from-env"


@pytest.mark.parametrize(
    ("mode", "reason", "tokens"),
    [
        ("slow", "timeout", 0),
        ("error", "error", 0),
        ("malformed", "invalid", USAGE["completion_tokens"]),
        ("wrong-shape", "invalid", USAGE["completion_tokens"]),
        ("truncated", "invalid", USAGE["completion_tokens"]),
        ("refusal", "refused", USAGE["completion_tokens"]),
        ("html", "invalid", 0),
        ("not-chat", "invalid", 0),
    ],
)
async def test_every_failure_falls_back_to_the_templates_and_says_why(
    llm_client: Callable[..., Awaitable[Client]],
    fake: FakeOpenAI,
    mode: Any,
    reason: str,
    tokens: int,
) -> None:
    fake.mode = mode
    client = await llm_client(timeout=0.3)
    data = await ask(client, {"prompt": PROMPT})
    assert data["source"] == "template" and data["target"] == "nginx"
    assert "try_files" in data["code"]
    warning = data["warnings"][0]
    assert warning.startswith("answered from the offline templates") and f"({reason})" in warning
    assert len(fake.requests) == 1  # no retries: the fallback answers promptly
    usage = client.app[ASSISTANT].usage
    assert usage.fallbacks == {reason: 1} and usage.requests == {"template": 1}
    assert usage.completion_tokens == tokens  # a rejected answer still cost its tokens
    found = await scraped(client)
    assert found[("dragonops_assistant_fallbacks_total", "reason", reason)] == 1
    assert found[("dragonops_assistant_answers_total", "source", "template")] == 1
    assert found[("dragonops_assistant_answers_total", "source", "llm")] == 0


async def test_a_failure_with_no_template_to_fall_back_on_is_503(
    llm_client: Callable[..., Awaitable[Client]], fake: FakeOpenAI
) -> None:
    fake.mode = "error"
    client = await llm_client()
    resp = await client.post(URL, json={"prompt": "write me a poem about dragons"})
    data = await resp.json(content_type=None)
    assert resp.status == 503 and resp.content_type == "application/problem+json", data
    assert "HTTP 500" in data["detail"] and "nginx" in data["detail"]


async def test_a_missing_key_secret_falls_back(
    tmp_path: Path, llm_client: Callable[..., Awaitable[Client]], fake: FakeOpenAI
) -> None:
    new_key_file(tmp_path)
    client = await llm_client(api_key="", api_key_secret="NOPE")
    data = await ask(client, {"prompt": PROMPT})
    assert data["source"] == "template" and "(no-key)" in data["warnings"][0]
    assert fake.requests == []  # nothing is sent without the key


async def test_the_client_is_closed_on_shutdown(
    llm_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await llm_client()
    llm = client.app[ASSISTANT].llm
    assert llm is not None and not llm.client.is_closed()
    await client.close()
    assert llm.client.is_closed() and client.app[ASSISTANT].llm is None
