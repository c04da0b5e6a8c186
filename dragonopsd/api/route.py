"""A route: handler plus everything OpenAPI and the auth layer need to know about it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from ..model.principal import RouteRole

# How a scoped caller (a token or profile limited to some clients, model/principal.py) meets
# a route; every route states one, as it states its role (tests/test_scope_routes.py):
#   "global"   - it holds nothing of any client (health, docs, settings, the cluster, and the
#                public routes whose credential is in the path): answered as to anyone;
#   "filtered" - the handler shows only what the caller's reach holds (api/access.py reach())
#                and answers 404 for an id outside it, as for one that does not exist;
#   "unscoped" - global configuration a scoped caller may not read or change (secrets,
#                channels, imports): 403 before the handler runs.
ScopeRule = Literal["global", "filtered", "unscoped"]


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
    # None until decided: tests/test_scope_routes.py fails for a route without a decision.
    scope: ScopeRule | None = None

    @property
    def audited(self) -> bool:
        """Whether a call lands in the audit log."""
        return self.audit if self.audit is not None else self.method not in ("GET", "HEAD")


# (method, path template) -> Route: the route table as registered.
ROUTE_INDEX: web.AppKey[dict[tuple[str, str], Route]] = web.AppKey("route_index")
