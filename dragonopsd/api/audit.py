"""GET /api/audit: the audit log for admins, filtered and paginated (newest first)."""

from __future__ import annotations

from aiohttp import web

from ..appkeys import AUDIT
from ..model.inventory import Wire
from ..problem import invalid
from ..store.audit import AuditEntry, AuditQuery
from .codec import json_response, page_limit, page_params
from .route import Param, Route

FILTERS = ("actor", "client", "entity", "entityId", "method", "outcome", "since", "until")


class AuditPage(Wire, kw_only=True):
    """A page of entries and the cursor of the next (older) page."""

    items: list[AuditEntry]
    next_cursor: str | None


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise invalid("cursor", "expected an integer") from None


def _query(request: web.Request) -> AuditQuery:
    q = request.query
    limit = page_limit(q, 50)
    before = _cursor(q.get("cursor"))
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
    params += page_params(50)
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
            # The issue filters audit entries to the reader's scope; only admins read them,
            # and admins are never scoped, so every reader is global: a scoped token (never
            # admin) is refused here even if the role check changes.
            scope="unscoped",
        ),
    ]
