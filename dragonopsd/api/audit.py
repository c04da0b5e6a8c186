"""GET /api/audit: the audit log for admins, filtered and paginated (newest first)."""

from __future__ import annotations

from aiohttp import web

from ..keys import AUDIT
from ..model import Wire
from ..problem import invalid
from ..store.audit import AuditEntry, AuditQuery
from .http import json_response
from .route import Param, Route

FILTERS = ("actor", "client", "entity", "entityId", "method", "outcome", "since", "until")
MAX_LIMIT = 500


class AuditPage(Wire, kw_only=True):
    """A page of entries and the cursor of the next (older) page."""

    items: list[AuditEntry]
    next_cursor: str | None


def _int(request: web.Request, name: str, default: int | None) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid(name, "expected an integer") from None


def _query(request: web.Request) -> AuditQuery:
    q = request.query
    for name in q:
        if name not in (*FILTERS, "limit", "cursor"):
            raise invalid(name, "unknown query parameter")
    limit = _int(request, "limit", 50)
    before = _int(request, "cursor", None)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise invalid("limit", f"must be between 1 and {MAX_LIMIT}")
    if q.get("outcome") not in (None, "ok", "denied", "failed"):
        raise invalid("outcome", "one of ok, denied, failed")
    return AuditQuery(
        actor=q.get("actor"),
        client=q.get("client"),
        entity=q.get("entity"),
        entity_id=q.get("entityId"),
        method=q.get("method", "").upper() or None,
        outcome=q.get("outcome"),
        since=q.get("since"),
        until=q.get("until"),
        before_id=before,
        limit=limit,
    )


async def list_audit(request: web.Request) -> web.Response:
    """Entries matching the filters, newest first."""
    items, before = await request.app[AUDIT].query(_query(request))
    return json_response(
        AuditPage(items=items, next_cursor=None if before is None else str(before))
    )


def routes() -> list[Route]:
    """/api/audit."""
    params = tuple(Param(n, f"Only entries with this {n}", {"type": "string"}) for n in FILTERS)
    params += (
        Param("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
        Param("cursor", "nextCursor of the previous page", {"type": "string"}),
    )
    return [
        Route(
            "GET",
            "/api/audit",
            list_audit,
            "Read the audit log",
            "Audit",
            "admin",
            response=AuditPage,
            params=params,
            errors=(422,),
        ),
    ]
