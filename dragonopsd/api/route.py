"""A route: handler plus everything OpenAPI and the auth layer need to know about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from ..model.principal import RouteRole


@dataclass(frozen=True)
class Param:
    """A query or path parameter, documented in OpenAPI."""

    name: str
    description: str
    schema: dict[str, Any]
    where: Literal["query", "path", "header"] = "query"
    required: bool = False


@dataclass(frozen=True)
class Route:
    """One row of the route table.

    ``role`` is the least role that may call it: every route states one, so none can ship
    without an access decision.
    """

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    role: RouteRole
    body: Any = None
    response: Any = None
    status: int = 200
    # Other success statuses with the same body (PUT answers 201 when it created the item).
    also: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    errors: tuple[int, ...] = ()
    content_type: str = "application/json"
    # Audited: every write by default; reads that reveal something (a secret value) opt in.
    audit: bool | None = None

    @property
    def audited(self) -> bool:
        """Whether a call lands in the audit log."""
        return self.audit if self.audit is not None else self.method not in ("GET", "HEAD")


# (method, path template) -> Route: the route table as registered.
ROUTE_INDEX: web.AppKey[dict[tuple[str, str], Route]] = web.AppKey("route_index")
