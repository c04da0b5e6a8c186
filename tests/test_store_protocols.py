"""The SQLite store the app wires satisfies store/protocols.py member by member, signature by
signature, and the protocols name no driver type (a PostgreSQL store must fit them too)."""

from __future__ import annotations

import ast
import inspect
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from dragonopsd.appkeys import (
    ACTIONS,
    ALERTS,
    AUDIT,
    AUTHENTICATOR,
    DATABASE,
    HISTORY_QUERY,
    HISTORY_WRITER,
    INCIDENTS,
    INVENTORY,
    MAINTENANCE,
    MONITORS,
    NOTIFIER,
    PUSHES,
    SAMPLER,
    SETTINGS,
    VAULT,
)
from dragonopsd.store import protocols as p
from dragonopsd.store.actions import ActionStore
from dragonopsd.store.alerts import AlertStore
from dragonopsd.store.audit import AuditStore
from dragonopsd.store.db import Database
from dragonopsd.store.history import HistoryWriter
from dragonopsd.store.history_query import HistoryQuery
from dragonopsd.store.incident_notes import IncidentNotesStore
from dragonopsd.store.inventory import InventoryStore
from dragonopsd.store.maintenance import MaintenanceStore
from dragonopsd.store.monitors import MonitorStore
from dragonopsd.store.notifications import NotificationStore
from dragonopsd.store.pings import PingStore
from dragonopsd.store.postgres import PostgresDatabase
from dragonopsd.store.samples import SampleQuery, SampleWriter
from dragonopsd.store.settings import SettingsStore
from dragonopsd.store.tokens import TokenStore
from dragonopsd.store.vault import VaultStore

Client = TestClient[Any, Any]
pytestmark = pytest.mark.backends

# protocol -> (the SQLite class behind it, where the running app hands that object out)
WIRED: dict[type, tuple[type, typing.Callable[[web.Application], object]]] = {
    p.StoreHealth: (Database, lambda app: app[DATABASE]),
    p.InventoryRepo: (InventoryStore, lambda app: app[INVENTORY].store),
    p.MonitorRepo: (MonitorStore, lambda app: app[MONITORS].store),
    p.HistoryReader: (HistoryQuery, lambda app: app[HISTORY_QUERY]),
    p.HistorySink: (HistoryWriter, lambda app: app[HISTORY_WRITER]),
    p.SampleReader: (SampleQuery, lambda app: app[SAMPLER].query),
    p.SampleSink: (SampleWriter, lambda app: app[SAMPLER].writer),
    p.TokenRepo: (TokenStore, lambda app: app[AUTHENTICATOR].store),
    p.VaultRepo: (VaultStore, lambda app: app[VAULT].store),
    p.SettingsRepo: (SettingsStore, lambda app: app[SETTINGS]),
    p.AuditLog: (AuditStore, lambda app: app[AUDIT]),
    p.MaintenanceRepo: (MaintenanceStore, lambda app: app[MAINTENANCE].store),
    p.ChannelRepo: (NotificationStore, lambda app: app[NOTIFIER].store),
    p.ActionRepo: (ActionStore, lambda app: app[ACTIONS].store),
    p.AlertRepo: (AlertStore, lambda app: app[ALERTS].rules.store),
    p.PingRepo: (PingStore, lambda app: app[PUSHES].pings),
    p.IncidentNotesRepo: (IncidentNotesStore, lambda app: app[INCIDENTS].notes),
}

PROTOCOLS = [
    obj
    for obj in vars(p).values()
    if isinstance(obj, type) and obj.__module__ == p.__name__ and typing.Protocol in obj.__bases__
]


def _members(proto: type) -> dict[str, Any]:
    """The protocol's own members: methods and read-only properties, as declared."""
    return {
        name: value
        for name, value in vars(proto).items()
        if callable(value) or isinstance(value, property)
        if not name.startswith("_")
    }


def _shape(fn: Any) -> list[tuple[str, Any, bool, Any]]:
    """Each parameter after self: name, kind, whether it has a default, resolved annotation."""
    hints = typing.get_type_hints(fn)
    return [
        (q.name, q.kind, q.default is not inspect.Parameter.empty, hints.get(q.name))
        for q in list(inspect.signature(fn).parameters.values())[1:]
    ]


def drift(proto: type, impl: type, instance: object | None = None) -> list[str]:
    """Every way impl differs from proto: a missing member, a method that is not one (or not
    async), a parameter or return type that is not the declared one."""
    found: list[str] = []
    for name, want in _members(proto).items():
        if isinstance(want, property):
            target = instance if instance is not None else impl
            if not hasattr(target, name):
                found.append(f"{name}: missing")
            elif instance is not None:
                kind = typing.get_type_hints(want.fget)["return"]
                if not isinstance(getattr(instance, name), kind):
                    found.append(f"{name}: not a {kind}")
            continue
        have = inspect.getattr_static(impl, name, None)
        if not inspect.isfunction(have):
            found.append(f"{name}: missing or not a method")
            continue
        if inspect.iscoroutinefunction(have) != inspect.iscoroutinefunction(want):
            found.append(f"{name}: async in one, not the other")
        if _shape(have) != _shape(want):
            found.append(f"{name}: parameters {_shape(have)} != {_shape(want)}")
        ret_have = typing.get_type_hints(have).get("return")
        ret_want = typing.get_type_hints(want).get("return")
        if ret_have != ret_want:
            found.append(f"{name}: returns {ret_have} != {ret_want}")
    return found


def test_every_protocol_has_its_sqlite_class() -> None:
    assert set(PROTOCOLS) == set(WIRED)


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda proto: proto.__name__)
async def test_the_wired_object_satisfies_its_protocol(
    client: Client, storage_url: str, proto: type
) -> None:
    impl, wired = WIRED[proto]
    # The stores are the same classes on both backends; only the database object differs.
    if storage_url and impl is Database:
        impl = PostgresDatabase
    instance = wired(client.app)
    assert type(instance) is impl
    assert isinstance(instance, proto)
    assert drift(proto, impl, instance) == []


def _types_in(hint: Any) -> typing.Iterator[Any]:
    yield hint
    for arg in typing.get_args(hint):
        if isinstance(arg, list):  # Callable's parameter list
            for inner in arg:
                yield from _types_in(inner)
        else:
            yield from _types_in(arg)


@pytest.mark.parametrize("proto", PROTOCOLS, ids=lambda proto: proto.__name__)
def test_no_protocol_signature_names_a_driver_type(proto: type) -> None:
    for name, member in _members(proto).items():
        fn = member.fget if isinstance(member, property) else member
        for hint in typing.get_type_hints(fn).values():
            for part in _types_in(hint):
                origin = typing.get_origin(part) or part
                module = getattr(origin, "__module__", "") or ""
                assert not module.startswith(("aiosqlite", "sqlite3")), (proto.__name__, name)


def test_drift_is_reported() -> None:
    """The checker itself: a renamed parameter, a changed type, a lost method, a sync method."""

    class Renamed(SettingsStore):
        async def put(self, name: str, value: Any) -> tuple[Any, bool]:  # type: ignore[override]
            raise NotImplementedError

    class Lost:
        async def get(self, key: str) -> Any:
            raise NotImplementedError

    class Blocking(MaintenanceStore):
        def all(self) -> Any:  # type: ignore[override]
            raise NotImplementedError

    assert [d.split(":")[0] for d in drift(p.SettingsRepo, Renamed)] == ["put", "put"]
    lost = {d.split(":")[0] for d in drift(p.SettingsRepo, Lost)}
    assert lost == {"get", "put", "delete", "list"}
    assert drift(p.MaintenanceRepo, Blocking)[0] == "all: async in one, not the other"
    assert drift(p.MaintenanceRepo, MaintenanceStore) == []
    assert isinstance(types.SimpleNamespace(), p.SampleSink) is False


# The services: they get their stores typed as the protocols above, from app.py (or a command).
SERVICES = (
    "monitoring",
    "sampling",
    "inventory",
    "secrets",
    "notify",
    "actions",
    "auth",
    "assistant",
    "dashboard.py",
)


def test_no_service_names_a_concrete_store_class() -> None:
    """A service that imports ``MonitorStore`` (not ``MonitorRepo``) is tied to SQLite; value
    Structs from the store modules are fine."""
    root = Path(p.__file__).parent.parent
    found = []
    for name in SERVICES:
        files = [root / name] if name.endswith(".py") else sorted((root / name).rglob("*.py"))
        for path in files:
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("store"):
                    found += [
                        f"{path.relative_to(root)}: {a.name}"
                        for a in node.names
                        if a.name.endswith("Store")
                    ]
    assert found == []
