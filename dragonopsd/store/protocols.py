"""What the services and the API ask of the store: one protocol per noun, no backend in sight.

Each protocol lists exactly the members its callers use, so a second backend (PostgreSQL over
asyncpg, next) implements these and nothing else. No signature names a connection or a driver
type: transactions stay inside the implementation. The SQLite classes beside this module satisfy
them structurally; app.py builds those and hands them out typed as these, and
tests/test_store_protocols.py catches drift. A protocol's ``list`` method comes last in its class
so that ``list[...]`` in the annotations before it still means the builtin.

Still reaching past them, to fix before a second backend: the sampler's and metrics labels'
functions over ``Database``, and the audit entry that rides the request's write transaction
(``PendingEntry.board(conn)``). The value Structs still live in the SQLite modules.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, Protocol, runtime_checkable

from msgspec import UnsetType

from ..buckets import Buckets
from ..model.inventory import AnyCreate, AnyEntity, AnyPatch, DashboardStats
from ..model.monitor import MonitorSpec
from ..model.principal import ProfileRole, TokenRole
from ..model.sample import Sample
from ..secrets.crypto import KeyRing
from .actions import Action, ActionState, NewAction
from .alerts import AlertIncident, AlertRule, AlertRuleSpec
from .audit import AuditEntry, AuditQuery, PendingEntry
from .history import Heartbeat
from .history_query import Point, UptimeWindow
from .incident_notes import (
    Acknowledgement,
    Change,
    IncidentSpec,
    IncidentUpdate,
    ManualIncident,
    MonitorIncident,
    UpdateSpec,
)
from .inventory import ListQuery
from .maintenance import Window, WindowSpec
from .monitors import Closing, Incident, MonitorRow
from .notifications import ChannelFields, StoredChannel
from .pings import Ping
from .placement import Within
from .samples import Point as SamplePoint
from .settings import Setting
from .tokens import AccessScope, Profile, Token
from .vault import Sealed, Secret


@runtime_checkable
class StoreHealth(Protocol):
    """What readiness and the request front read: is the store up, and at which schema."""

    @property
    def state(self) -> str: ...
    @property
    def schema_version(self) -> int: ...
    @property
    def trouble(self) -> str | None: ...


@runtime_checkable
class InventoryRepo(Protocol):
    """Projects, environments and servers: CRUD with keyset pages, counts, and meta flags."""

    async def get(self, table: str, ident: str, depth: int = 0) -> AnyEntity: ...
    async def create(self, table: str, body: AnyCreate, ident: str | None = None) -> AnyEntity: ...
    async def update(
        self,
        table: str,
        ident: str,
        patch: AnyPatch,
        precondition: Callable[[AnyEntity], None] | None = None,
    ) -> AnyEntity: ...
    async def delete(
        self,
        table: str,
        ident: str,
        *,
        cascade: bool = False,
        precondition: Callable[[AnyEntity], None] | None = None,
    ) -> AnyEntity: ...
    async def stats(self) -> DashboardStats: ...
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...
    async def list(self, table: str, query: ListQuery) -> tuple[list[AnyEntity], str | None]: ...


@runtime_checkable
class MonitorRepo(Protocol):
    """Monitors, their last persisted status, and the incidents status changes open and close."""

    async def create(self, spec: MonitorSpec, managed_by: str = "api") -> MonitorRow: ...
    async def replace(
        self,
        ident: str,
        spec: MonitorSpec,
        precondition: Callable[[MonitorRow], None] | None = None,
    ) -> MonitorRow: ...
    async def apply_config(
        self,
        create: dict[str, MonitorSpec],
        replace: dict[str, tuple[MonitorRow, MonitorSpec]],
        delete: list[MonitorRow],
        adopt: Collection[str] = (),
    ) -> list[MonitorRow]: ...
    async def delete(
        self, ident: str, precondition: Callable[[MonitorRow], None] | None = None
    ) -> MonitorRow: ...
    async def get(self, ident: str) -> MonitorRow: ...
    async def all(self, managed_by: str | None = None) -> list[MonitorRow]: ...
    async def names(self) -> list[tuple[str, str]]: ...
    async def versions(self) -> dict[str, tuple[int, str]]: ...
    async def states(self) -> dict[int, tuple[str, str, str | None]]: ...
    async def transition(
        self,
        seq: int,
        status: str | None,
        message: str | None,
        opened: Incident | None,
        closed: Closing | None,
    ) -> None: ...
    async def open_incidents(self) -> dict[str, Incident]: ...
    async def incident(self, ident: str) -> Incident | None: ...
    async def incidents(
        self,
        *,
        monitor_id: str | None,
        state: str | None,
        since: str | None,
        before: tuple[str, str] | None,
        limit: int,
        within: Within | None = None,
    ) -> list[Incident]: ...


@runtime_checkable
class PingRepo(Protocol):
    """The ping log of push monitors: the newest pings of each, bodies included."""

    async def add(self, monitor: int, at: float, ping: Ping) -> None: ...
    async def recent(self, monitor: int, limit: int) -> list[Ping]: ...


@runtime_checkable
class HistoryReader(Protocol):
    """Heartbeat history as read back: series and uptime over raw rows and rollups."""

    async def series(
        self, monitor: int, since: float, until: float, step: float
    ) -> list[Point]: ...
    async def uptime(
        self, monitor: int, windows: Sequence[float], *, now: float | None = None
    ) -> list[UptimeWindow]: ...
    async def recent(self, monitor: int, limit: int) -> list[Heartbeat]: ...
    async def latest(self) -> dict[int, Heartbeat]: ...
    async def delete_monitor(self, monitor: int) -> None: ...


@runtime_checkable
class HistorySink(Protocol):
    """Heartbeats in: a bounded queue flushed in batches; ``maintain`` runs rollups and retention.

    ``submit`` is synchronous and O(1) on the loop; ``sync`` waits until what was submitted so
    far is committed (the Redis consumer acknowledges only then).
    """

    @property
    def queue_depth(self) -> int: ...
    @property
    def dropped(self) -> int: ...
    @property
    def flushed_total(self) -> int: ...
    @property
    def last_flush_seconds(self) -> float: ...
    @property
    def flush_buckets(self) -> Buckets: ...
    def submit(self, hb: Heartbeat) -> None: ...
    async def sync(self, within: float) -> bool: ...
    async def run(self) -> None: ...
    async def maintain(self, interval: float = ...) -> None: ...


@runtime_checkable
class SampleReader(Protocol):
    """Server resource samples as read back, raw or rolled up to the step asked for."""

    async def series(
        self, server_id: str, since: float, until: float, step: float
    ) -> list[SamplePoint]: ...


@runtime_checkable
class SampleSink(Protocol):
    """Samples in: batched like heartbeats; ``maintain`` runs rollups, retention and cleanup."""

    def submit(self, sample: Sample) -> None: ...
    async def run(self) -> None: ...
    async def maintain(self, interval: float = ...) -> None: ...


@runtime_checkable
class TokenRepo(Protocol):
    """API tokens (stored hashed; the plain one is returned once) and SSO user profiles."""

    async def create(
        self,
        name: str,
        role: TokenRole,
        expires_at: str | None,
        created_by: str | None,
        *,
        server_id: str | None = None,
        scope: AccessScope | None = None,
    ) -> tuple[Token, str]: ...
    async def all(self) -> list[Token]: ...
    async def count(self) -> int: ...
    async def revoke(self, ident: str) -> Token: ...
    async def usable(self) -> dict[str, Token]: ...
    async def revision(self) -> str: ...
    async def ensure_profile(self, sub: str, email: str | None, role: ProfileRole) -> Profile: ...
    async def profile(self, sub: str) -> Profile: ...
    async def profiles(self) -> list[Profile]: ...
    async def update_profile(
        self,
        sub: str,
        role: ProfileRole | None,
        email: str | UnsetType | None,
        scope: AccessScope | UnsetType | None = ...,
        precondition: Callable[[Profile], None] | None = None,
    ) -> Profile: ...


@runtime_checkable
class VaultRepo(Protocol):
    """Sealed secrets and the key checks that prove which keys sealed them; ``reseal_batch``
    moves rows to a new primary key (``dragonopsd keys rotate``)."""

    async def get(self, ident: str) -> Sealed: ...
    async def insert(
        self, meta: Secret, key_id: str, blob: bytes, check: tuple[str, bytes] | None
    ) -> Secret: ...
    async def update(
        self,
        ident: str,
        now: str,
        description: str | UnsetType | None,
        sealed: tuple[str, bytes] | None,
        check: tuple[str, bytes] | None,
        *,
        precondition: Callable[[Secret], None] | None = None,
    ) -> Secret: ...
    async def delete(
        self, ident: str, precondition: Callable[[Secret], None] | None = None
    ) -> Secret: ...
    async def key_ids(self) -> set[str]: ...
    async def checks(self) -> dict[str, bytes]: ...
    async def put_check(self, check: tuple[str, bytes]) -> None: ...
    async def reseal_batch(
        self,
        primary: str,
        limit: int,
        reseal: Callable[[Sealed], bytes],
        check: tuple[str, bytes],
    ) -> int: ...
    async def count_not_under(self, primary: str) -> int: ...
    async def list(
        self, env: str | None, q: str | None, limit: int, cursor: str | None
    ) -> tuple[list[Secret], str | None]: ...


@runtime_checkable
class SettingsRepo(Protocol):
    """Free-form JSON settings by key."""

    async def get(self, key: str) -> Setting: ...
    async def put(
        self, key: str, value: Any, precondition: Callable[[Setting | None], None] | None = None
    ) -> tuple[Setting, bool]: ...
    async def delete(
        self, key: str, precondition: Callable[[Setting], None] | None = None
    ) -> None: ...
    async def list(self) -> list[Setting]: ...


@runtime_checkable
class AuditLog(Protocol):
    """Who changed what: entries settled after the request, read newest first, pruned by age."""

    async def settle(self, pending: PendingEntry, status: int, outcome: str) -> None: ...
    async def query(self, q: AuditQuery) -> tuple[list[AuditEntry], int | None]: ...
    async def prune(self, older_than: str) -> int: ...


@runtime_checkable
class MaintenanceRepo(Protocol):
    """Maintenance windows, read whole at start and written one at a time."""

    async def all(self) -> list[Window]: ...
    async def insert(self, spec: WindowSpec, managed_by: str = "api") -> Window: ...
    async def replace(
        self, ident: str, spec: WindowSpec, managed_by: str | None = None
    ) -> Window: ...
    async def delete(self, ident: str) -> None: ...


@runtime_checkable
class ChannelRepo(Protocol):
    """Notification channels, their credentials sealed under the vault's keys when it has any."""

    async def get(self, ident: str) -> StoredChannel: ...
    async def create(self, fields: ChannelFields, managed_by: str = "api") -> StoredChannel: ...
    async def update(
        self,
        ident: str,
        change: Callable[[StoredChannel], ChannelFields],
        managed_by: str | None = None,
    ) -> StoredChannel: ...
    async def delete(self, ident: str) -> None: ...
    async def seal_pending(self) -> int: ...
    async def seal_all(self, ring: KeyRing) -> int: ...
    async def list(self) -> list[StoredChannel]: ...


@runtime_checkable
class ActionRepo(Protocol):
    """Server actions and their state machine; ``move`` is a compare-and-set on the state."""

    async def get(self, ident: str) -> Action: ...
    async def page(
        self,
        server_id: str | None,
        states: tuple[str, ...],
        limit: int,
        cursor: str | None,
        servers: Collection[str] | None = None,
    ) -> tuple[list[Action], str | None]: ...
    async def create(
        self, new: NewAction, check: Callable[[str, Action | None], None]
    ) -> tuple[Action, bool]: ...
    async def move(
        self, ident: str, source: ActionState, target: ActionState, **fields: str | None
    ) -> Action | None: ...
    async def recover(self, reason: str) -> tuple[list[Action], list[Action]]: ...


@runtime_checkable
class AlertRepo(Protocol):
    """Resource alert rules (read whole at start, written one at a time) and the incidents
    they open on servers, opened and closed one at a time."""

    async def rules(self) -> list[AlertRule]: ...
    async def insert(self, spec: AlertRuleSpec) -> AlertRule: ...
    async def replace(self, ident: str, spec: AlertRuleSpec) -> AlertRule: ...
    async def delete(self, ident: str) -> AlertRule: ...
    async def open_incidents(self) -> list[AlertIncident]: ...
    async def incidents(self, server_id: str, limit: int) -> list[AlertIncident]: ...
    async def open(
        self, incident: AlertIncident, *, stored_rule: bool
    ) -> tuple[AlertIncident | None, bool]: ...
    async def close(self, incident: AlertIncident) -> bool: ...


@runtime_checkable
class IncidentNotesRepo(Protocol):
    """Manual incidents, and the updates and acknowledgements people add to any incident."""

    async def create(self, spec: IncidentSpec, author: str) -> ManualIncident: ...
    async def manual(self, ident: str) -> ManualIncident | None: ...
    async def manual_incidents(
        self,
        *,
        state: str | None,
        since: str | None,
        before: tuple[str, str] | None,
        limit: int,
        target: tuple[str, str] | None = None,
        within: Within | None = None,
    ) -> list[ManualIncident]: ...
    async def add_update(self, ident: str, spec: UpdateSpec, author: str) -> Change: ...
    async def acknowledge(self, ident: str, by: str) -> tuple[Acknowledgement, bool]: ...
    async def acknowledged(self, ids: list[str]) -> dict[str, Acknowledgement]: ...
    async def updates(self, ids: list[str]) -> dict[str, list[IncidentUpdate]]: ...
    async def annotate(self, incidents: list[Incident]) -> list[MonitorIncident]: ...
