"""Fixtures: the real app on real SQLite files in tmp_path, talked to over HTTP."""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cluster_helpers import target  # noqa: F401  (fixture)
from pg import BACKENDS, fresh_database
from processes import OWNER, RUN, reap
from redis_helpers import private_redis, redis_prefix  # noqa: F401  (fixtures)

from dragonopsd.app import build_app
from dragonopsd.appkeys import AUTHENTICATOR
from dragonopsd.config import Config, from_mapping
from dragonopsd.model.principal import Role

Client = TestClient[Any, Any]
_serial = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    os.environ[OWNER] = f"{RUN}-session"
    config.addinivalue_line(
        "markers", "backends: run the tests that use storage_url on SQLite and on PostgreSQL"
    )
    config.addinivalue_line(
        "markers", "sqlite_file: reads or writes the SQLite file itself (SQLite run only)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Under the backends mark, a test whose fixtures reach storage_url (make_client, client,
    make_config…) runs once per backend; the others in the module run once."""
    marks = metafunc.definition
    if (
        "storage_url" in metafunc.fixturenames
        and marks.get_closest_marker("backends")
        and not marks.get_closest_marker("sqlite_file")
    ):
        metafunc.parametrize("storage_url", BACKENDS, indirect=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The final check: no process any test or fixture started outlives the suite."""
    left = reap()
    if left:
        print("\nprocesses left running by the suite (now killed):\n  " + "\n  ".join(left))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _stop_processes() -> Iterator[None]:
    """Whatever this test started is stopped when it ends, pass or fail; one it left running
    fails it (after being killed)."""
    tag = f"{RUN}-{next(_serial)}"
    os.environ[OWNER] = tag
    try:
        yield
    finally:
        os.environ[OWNER] = f"{RUN}-session"
        left = reap(tag)
    if left:
        pytest.fail("processes left running by this test (now killed):\n  " + "\n  ".join(left))


@pytest.fixture
def storage_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty string (SQLite, the default), or with the "postgres" param a fresh database's
    URL (tests/pg.py), dropped after the test."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield ""
        return
    with fresh_database() as url:
        yield url


@pytest.fixture
def make_config(tmp_path: Path, storage_url: str) -> Callable[..., Config]:
    """Config factory: state in tmp_path, no environment overrides leaking in; the database is
    the storage_url fixture's (SQLite unless the module runs on both backends)."""

    def make(**sections: dict[str, Any]) -> Config:
        backend = {"url": storage_url} if storage_url else {}
        storage = {"state_dir": str(tmp_path), **backend, **sections.pop("storage", {})}
        return from_mapping({"storage": storage, **sections}, env={})

    return make


async def token_for(app: web.Application, role: Role) -> str:
    """Mint a real API token with role through the running app's token service."""
    _, plain = await app[AUTHENTICATOR].tokens.create(f"test-{role}", role, None, "tests")
    return plain


@pytest.fixture
def make_client(
    make_config: Callable[..., Config], aiohttp_client: Any
) -> Callable[..., Awaitable[Client]]:
    """Start the real app with config overrides; the client calls as admin. make_config comes
    first: set up before aiohttp_client, its database outlives the apps the client closes."""

    async def make(**sections: dict[str, Any]) -> Client:
        cfg = make_config(**sections)
        client: Client = await aiohttp_client(build_app(cfg))
        bootstrap = cfg.resolve(cfg.auth.admin_token_file)
        # With a JWT configured there is no bootstrap token: mint an admin one instead.
        token = (
            bootstrap.read_text().strip()
            if bootstrap.exists()
            else await token_for(client.app, "admin")
        )
        client.session.headers["Authorization"] = f"Bearer {token}"
        return client

    return make


@pytest.fixture
async def client(make_client: Callable[..., Awaitable[Client]]) -> Client:
    """The real app with default settings, called as admin."""
    return await make_client()


async def post(client: Client, path: str, body: dict[str, Any], status: int = 201) -> Any:
    """POST JSON and return the decoded response, asserting the status."""
    resp = await client.post(path, json=body)
    data = await resp.json(content_type=None)
    assert resp.status == status, data
    return data


async def pushing_server(client: Client) -> str:
    """Acme -> Portal -> Production -> web-1, a server whose agent pushes its samples; its id."""
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Production"})
    body = {"environmentId": e["id"], "name": "web-1", "sampling": "agent"}
    return str((await post(client, "/api/servers", body))["id"])


@pytest.fixture
def tree(client: Client) -> Callable[[], Awaitable[dict[str, Any]]]:
    """Create one client -> project -> environment -> server chain; returns the four entities."""

    async def make() -> dict[str, Any]:
        c = await post(client, "/api/clients", {"name": "Acme"})
        p = await post(
            client,
            "/api/projects",
            {"clientId": c["id"], "name": "Portal", "technology": ["React"]},
        )
        e = await post(
            client,
            "/api/environments",
            {"projectId": p["id"], "name": "Production", "url": "https://acme.example"},
        )
        s = await post(
            client,
            "/api/servers",
            {"environmentId": e["id"], "name": "web-1", "type": "web", "privateIp": "10.0.0.5"},
        )
        return {"client": c, "project": p, "environment": e, "server": s}

    return make


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright, one per test module (tests/browser.py says how).
    Imported here, not at the top: most tests never start a browser."""
    from browser import CHROMIUM, CHROMIUM_ARGS  # noqa: PLC0415
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install -y chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()
