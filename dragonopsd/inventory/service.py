"""Inventory service: store writes followed by cache invalidation and ``inventory`` events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from ..bus import Bus
from ..model.inventory import AnyCreate, AnyEntity, AnyPatch, InventoryChanged
from ..store.inventory import ListQuery
from ..store.protocols import InventoryRepo

Hook = Callable[[InventoryChanged], Awaitable[None]]


class InventoryService:
    """The API's one way into the inventory; every committed write is announced."""

    def __init__(self, store: InventoryRepo, bus: Bus, hooks: list[Hook] | None = None) -> None:
        self.store = store
        self._bus = bus
        self._hooks = hooks or []

    async def _changed(
        self, table: str, ident: str, op: Literal["created", "updated", "deleted"]
    ) -> None:
        event = InventoryChanged(entity=table[:-1], id=ident, op=op)
        for hook in self._hooks:
            await hook(event)
        self._bus.publish("inventory", event, "inventory.changed")

    async def get(self, table: str, ident: str, depth: int = 0) -> AnyEntity:
        """One entity with depth levels of children."""
        return await self.store.get(table, ident, depth)

    async def list(self, table: str, query: ListQuery) -> tuple[list[AnyEntity], str | None]:
        """One page and the next cursor."""
        return await self.store.list(table, query)

    async def create(self, table: str, body: AnyCreate) -> AnyEntity:
        """Insert, then announce."""
        item = await self.store.create(table, body)
        await self._changed(table, item.id, "created")
        return item

    async def update(
        self,
        table: str,
        ident: str,
        patch: AnyPatch,
        precondition: Callable[[AnyEntity], None] | None = None,
    ) -> AnyEntity:
        """Apply a patch, then announce."""
        item = await self.store.update(table, ident, patch, precondition)
        await self._changed(table, ident, "updated")
        return item

    async def delete(
        self,
        table: str,
        ident: str,
        *,
        cascade: bool,
        precondition: Callable[[AnyEntity], None] | None = None,
    ) -> None:
        """Delete (children too with cascade), then announce."""
        await self.store.delete(table, ident, cascade=cascade, precondition=precondition)
        await self._changed(table, ident, "deleted")
