"""POST /api/ai/generate over HTTP: roles, bad input, inventory context, the per-token limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import Client, token_for

from dragonopsd.appkeys import ASSISTANT
from dragonopsd.assistant.model import TARGETS

URL = "/api/ai/generate"


async def generate(client: Client, body: dict[str, Any], status: int = 200, **kw: Any) -> Any:
    resp = await client.post(URL, json=body, **kw)
    data = await resp.json(content_type=None)
    assert resp.status == status, data
    if status >= 400:
        assert resp.content_type == "application/problem+json"
    return data


async def test_an_operator_gets_a_file_with_what_it_assumed(client: Client) -> None:
    operator = await token_for(client.app, "operator")
    resp = await client.post(
        URL,
        json={"prompt": "Create an Nginx config for a React app"},
        headers={"Authorization": f"Bearer {operator}"},
    )
    data = await resp.json()
    assert resp.status == 200, data
    assert resp.headers["Cache-Control"] == "no-store"
    assert set(data) == {
        "code",
        "language",
        "filename",
        "explanation",
        "source",
        "target",
        "warnings",
    }
    assert (data["source"], data["target"], data["language"]) == ("template", "nginx", "nginx")
    assert "try_files $uri $uri/ /index.html" in data["code"]
    assert "Assumed:" in data["explanation"] and "app.example.com" in data["explanation"]
    assert client.app[ASSISTANT].usage.requests["template"] == 1


async def test_a_viewer_may_not_generate(client: Client) -> None:
    viewer = await token_for(client.app, "viewer")
    headers = {"Authorization": f"Bearer {viewer}"}
    await generate(client, {"prompt": "nginx for react"}, 403, headers=headers)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": ""}, "$.prompt"),
        ({"prompt": "\x00\x07\u200b\u202e  \n"}, "$.prompt"),
        ({"prompt": "nginx " * 700}, "$.prompt"),  # 4,200 characters
        ({"prompt": "x" * 16_001}, "$.prompt"),
        ({"prompt": 42}, "$.prompt"),
        ({}, "$.prompt"),
        ({"prompt": "nginx", "target": "terraform"}, "$.target"),
        ({"prompt": "nginx", "projectId": "not-a-uuid"}, "$.projectId"),
        ({"prompt": "nginx", "temperature": 2}, "$.temperature"),
    ],
)
async def test_bad_bodies_get_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    data = await generate(client, body, 422)
    assert [e["field"] for e in data["errors"]] == [field], data


async def test_control_characters_do_not_count_towards_the_limit(client: Client) -> None:
    prompt = "nginx for react " + "\u200b" * 5000  # 5,016 raw characters, 15 after cleaning
    data = await generate(client, {"prompt": prompt})
    assert data["target"] == "nginx"


async def test_malformed_json_and_wrong_content_type(client: Client) -> None:
    resp = await client.post(URL, data=b"{", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post(URL, data=b"prompt=x", headers={"Content-Type": "text/plain"})
    assert resp.status == 415
    resp = await client.post(f"{URL}?debug=1", json={"prompt": "nginx"})
    assert resp.status == 422


async def test_a_prompt_that_matches_nothing_lists_the_targets(client: Client) -> None:
    data = await generate(client, {"prompt": "write me a poem about dragons"}, 422)
    assert data["errors"][0]["field"] == "$.prompt"
    for target in TARGETS:
        assert target in data["detail"], data
    # The same prompt with a target is answered.
    data = await generate(client, {"prompt": "write me a poem about dragons", "target": "systemd"})
    assert data["target"] == "systemd" and data["filename"].endswith(".service")


async def test_ids_name_the_context(
    client: Client, tree: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    t = await tree()  # Acme / Portal (React) / Production (https://acme.example) / web-1
    data = await generate(client, {"prompt": "nginx config", "projectId": t["project"]["id"]})
    assert "root /var/www/portal;" in data["code"] and "React" in data["explanation"]
    data = await generate(
        client, {"prompt": "nginx config", "environmentId": t["environment"]["id"]}
    )
    assert "server_name acme.example;" in data["code"]
    assert "listen 443 ssl" in data["code"]  # the environment's URL is https
    assert "From the inventory" in data["explanation"]


async def test_unknown_or_mismatched_ids_get_422(
    client: Client, tree: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    t = await tree()
    missing = "00000000-0000-4000-8000-000000000000"
    data = await generate(client, {"prompt": "nginx", "projectId": missing}, 422)
    assert data["errors"][0]["field"] == "$.projectId" and missing in data["detail"]
    data = await generate(client, {"prompt": "nginx", "environmentId": missing}, 422)
    assert data["errors"][0]["field"] == "$.environmentId"
    other = await client.post(
        "/api/projects", json={"clientId": t["client"]["id"], "name": "Other"}
    )
    body = {
        "prompt": "nginx",
        "projectId": (await other.json())["id"],
        "environmentId": t["environment"]["id"],
    }
    data = await generate(client, body, 422)
    assert data["errors"][0]["field"] == "$.environmentId" and "another project" in data["detail"]


async def test_a_project_named_in_the_prompt_is_the_context(
    client: Client, tree: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    await tree()
    data = await generate(client, {"prompt": "Dockerfile for portal"})
    assert "FROM nginx" in data["code"]  # Portal is a React project: built, then served
    assert "portal" in data["explanation"].lower()


async def test_each_token_is_limited_on_its_own(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await make_client(ai={"rate_limit": 2})
    for _ in range(2):
        await generate(client, {"prompt": "nginx for react"})
    resp = await client.post(URL, json={"prompt": "nginx for react"})
    data = await resp.json(content_type=None)
    assert resp.status == 429, data
    assert resp.content_type == "application/problem+json"
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    # Bad requests count too: a flood of them is limited like good ones.
    resp = await client.post(URL, data=b"{", headers={"Content-Type": "application/json"})
    assert resp.status == 429
    operator = await token_for(client.app, "operator")
    headers = {"Authorization": f"Bearer {operator}"}
    await generate(client, {"prompt": "nginx for react"}, headers=headers)
    assert client.app[ASSISTANT].usage.rate_limited == 2
    text = await (await client.get("/metrics")).text()
    assert "\ndragonops_assistant_rate_limited_total 2.0\n" in text
