"""Access control and the audit trail for one request.

Every route states the least role it needs (``Route.role``); this module checks the caller
against it, limits repeated failures per address, and writes the audit entry afterwards.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from ..auth.authenticator import AuthFailure
from ..clock import now_iso
from ..keys import AUDIT, AUTH_LIMITER, AUTHENTICATOR, PRINCIPAL, REQUEST_ID
from ..principal import allows
from ..problem import Problem
from ..store.audit import AuditEntry
from .route import Route

log = logging.getLogger("dragonopsd.audit")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dragonopsd"'}


async def authorize(request: web.Request, route: Route) -> None:
    """Authenticate the caller and check its role; 401, 403 or 429 as a Problem otherwise."""
    limiter = request.app[AUTH_LIMITER]
    if limiter.active:  # the common case, nobody failing, skips the address lookup
        wait = limiter.retry_after(request.remote or "unknown")
        if wait is not None:
            raise Problem(
                429,
                "too many failed authentication attempts; try again later",
                headers={"Retry-After": str(wait)},
            )
    try:
        principal = await request.app[AUTHENTICATOR].authenticate(
            request.headers.get(hdrs.AUTHORIZATION)
        )
    except AuthFailure as exc:
        if exc.guess:
            limiter.fail(request.remote or "unknown")
        raise Problem(401, exc.reason, headers=CHALLENGE) from None
    request[PRINCIPAL] = principal
    if principal.role == "none" and route.role != "public":
        raise Problem(
            403,
            'this account has no role yet ([auth] default_role = "none"): an admin grants one '
            f"with PATCH /api/profiles/{principal.id}",
        )
    if not allows(principal.role, route.role):
        raise Problem(
            403, f"role {principal.role} may not {route.method} {route.path} (needs {route.role})"
        )


def _entity(
    route: Route, request: web.Request, response: web.StreamResponse
) -> tuple[str | None, str | None]:
    parts = [p for p in route.path.split("/") if p]
    entity = parts[1] if len(parts) > 1 and parts[0] == "api" else None
    ident = request.match_info.get("id") or request.match_info.get("key")
    if ident is None and response.status == 201 and "Location" in response.headers:
        ident = response.headers["Location"].rsplit("/", 1)[-1]
    return entity, ident


async def record(request: web.Request, route: Route, response: web.StreamResponse) -> None:
    """Write the audit entry for an audited route; a failure to audit is logged, not raised."""
    principal = request.get(PRINCIPAL)
    status = response.status
    outcome = "ok" if status < 400 else "denied" if status in (401, 403, 429) else "failed"
    entity, ident = _entity(route, request, response)
    entry = AuditEntry(
        at=now_iso(),
        actor=principal.actor if principal else f"anonymous:{request.remote or 'unknown'}",
        actor_kind=principal.kind if principal else "anonymous",
        role=principal.role if principal else None,
        method=route.method,
        route=route.path,
        path=request.path,
        entity=entity,
        entity_id=ident,
        request_id=request[REQUEST_ID],
        status=status,
        outcome=outcome,
    )
    try:
        await request.app[AUDIT].append(entry)
    except Exception:
        log.exception("could not write the audit entry for request %s", request[REQUEST_ID])
