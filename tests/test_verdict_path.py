"""One verdict path: every probe result, local or from a location, goes through
monitoring/verdict.py, and the engine is built from collaborators rather than mixins."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Client, post
from test_engine import Target, http_monitor, serve, status_of, until

pytestmark = pytest.mark.backends

PACKAGE = Path(__file__).resolve().parent.parent / "dragonopsd"
MONITORING = PACKAGE / "monitoring"


def _trees(folder: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _calls(tree: ast.Module, method: str) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == method
    ]


def test_no_monitoring_class_inherits_from_another() -> None:
    """Composition, not mixins: no class in monitoring/ derives from one defined there."""
    trees = list(_trees(MONITORING))
    defined = {n.name for _, t in trees for n in ast.walk(t) if isinstance(n, ast.ClassDef)}
    mixed = [
        f"{path.name}:{node.name}({ast.unparse(base)})"
        for path, tree in trees
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        for base in node.bases
        if isinstance(base, ast.Name) and base.id in defined
    ]
    assert mixed == []


def test_heartbeats_are_stored_and_published_in_one_module() -> None:
    """The only heartbeat built for history and the only monitor.heartbeat event: verdict.py."""
    builders, publishers = set(), set()
    for path, tree in _trees(MONITORING):
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Heartbeat"
            ):
                builders.add(path.name)
        for call in _calls(tree, "publish"):
            if any(
                isinstance(a, ast.Constant) and a.value == "monitor.heartbeat" for a in call.args
            ):
                publishers.add(path.name)
    assert (builders, publishers) == ({"verdict.py"}, {"verdict.py"})


def test_metrics_read_the_view_not_the_engine() -> None:
    """metrics/ gets the read-only view: it imports neither the engine nor its runtimes."""
    imported = {
        f"{path.name}: {node.module}"
        for path, tree in _trees(PACKAGE / "metrics")
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module in ("monitoring.engine", "monitoring.runtime")
    }
    assert imported == set()


def test_app_patches_no_attribute_onto_the_engine() -> None:
    """The engine's collaborators are constructor arguments (engine.remote = ... was one)."""
    tree = ast.parse((PACKAGE / "app.py").read_text())
    patched = [
        ast.unparse(target)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "engine"
    ]
    assert patched == []


async def test_a_round_that_wants_a_retry_gets_it(client: Client, aiohttp_server: Any) -> None:
    """A round's verdict asks for the quick rechecks of ``retries`` like a local check does:
    the round closes through the verdict path and its retry decision reaches the scheduler."""
    target = Target()
    target.status = 500
    url = await serve(aiohttp_server, "/h", target.handle)
    # Without Redis "eu" has no worker: the local failure alone meets a quorum of 1.
    spec = http_monitor(
        url, interval=30, retries=2, retryInterval=1, locations=["local", "eu"], quorum=1
    )
    m = await post(client, "/api/monitors", spec)
    report = await (await client.post(f"/api/monitors/{m['id']}/check")).json()
    assert report["status"] == "pending" and not report["ok"]
    # the two quick retries (1 s apart) turn it down long before the 30 s interval
    await until(lambda: _is(client, m["id"], "down"), timeout=6)
    assert target.hits >= 3


async def _is(client: Client, monitor_id: str, status: str) -> bool:
    return await status_of(client, monitor_id) == status
