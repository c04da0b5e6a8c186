"""Access control and the audit trail for one request.

Every route states the least role it needs (``Route.role``); this module checks the caller
against it and limits repeated failures per client address (api/forwarded.py). A credential
that checks out always passes; only failures are limited, so nobody can lock others out.

Audited routes get an entry that rides the request's first write transaction (store/audit.py),
or is written after the handler when nothing was written. Entries store the route template
with only entity ids filled in, never the raw path: a push token in a path stays a placeholder.
"""

from __future__ import annotations

import logging

from aiohttp import hdrs, web

from ..appkeys import (
    AUDIT,
    AUDIT_PENDING,
    AUTH_LIMITER,
    AUTHENTICATOR,
    DATABASE,
    INVENTORY_INDEX,
    PRINCIPAL,
    REQUEST_ID,
)
from ..auth.authenticator import AuthFailure
from ..clock import now_iso
from ..inventory.reach import Reach
from ..model.principal import Principal, allows
from ..problem import Problem
from ..store.audit import MAX_ID, MAX_PATH, AuditEntry, PendingEntry, clip
from ..store.sql import StoreUnavailable
from .forwarded import client_of
from .route import Route

log = logging.getLogger("dragonopsd.audit")
auth_log = logging.getLogger("dragonopsd.auth")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dragonopsd"'}
# Path parameters that name an entity. Any other parameter (a push monitor's token) is a
# credential and stays a placeholder in the stored path.
ENTITY_PARAMS = ("id", "key")


async def authorize(request: web.Request, route: Route) -> None:
    """Authenticate the caller and check its role; 401, 403 or 429 as a Problem otherwise."""
    principal = await authenticate(request, request.headers.get(hdrs.AUTHORIZATION))
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
    if principal.scope is not None and route.scope == "unscoped":
        raise Problem(
            403,
            f"this {principal.kind} is scoped to some clients; {route.method} {route.path} "
            "is global configuration (ask an admin, or use an unscoped token)",
        )


async def reach(request: web.Request) -> Reach:
    """What the caller may see (everything unless its token or profile carries a scope):
    handlers filter lists with it and answer 404 for what is outside it."""
    return await request.app[INVENTORY_INDEX].reach(request.get(PRINCIPAL))


async def authenticate(request: web.Request, header: str | None) -> Principal:
    """The principal an ``Authorization`` header stands for, else 401 (429 once the client
    is over ``[auth] failure_limit``) as a Problem."""
    try:
        return await request.app[AUTHENTICATOR].authenticate(header)
    except AuthFailure as exc:
        raise refusal(request, exc.reason) from None


def refusal(request: web.Request, reason: str) -> Problem:
    """Count a failed authentication (a missing header too) against the client address; the
    401 to answer, or 429 while the address is over the limit (then it is not counted)."""
    limiter = request.app[AUTH_LIMITER]
    address = client_of(request).address
    wait = limiter.retry_after(address)
    if wait is not None:
        return Problem(
            429,
            "too many failed authentication attempts; try again later",
            headers={"Retry-After": str(wait)},
        )
    if limiter.fail(address):
        auth_log.warning(
            "client %s failed to authenticate %d times within %gs; its failures get 429",
            address,
            limiter.limit,
            limiter.window,
        )
    return Problem(401, reason, headers=CHALLENGE)


def _entry(request: web.Request, route: Route, status: int) -> AuditEntry:
    principal = request.get(PRINCIPAL)
    address = client_of(request).address
    parts = [p for p in route.path.split("/") if p]
    path = route.path
    ident = None
    for name in ENTITY_PARAMS:
        value = request.match_info.get(name)
        if value is not None:
            ident = clip(value, MAX_ID)
            path = path.replace(f"{{{name}}}", ident)
    return AuditEntry(
        at=now_iso(),
        actor=principal.actor if principal else f"anonymous:{address}",
        actor_kind=principal.kind if principal else "anonymous",
        role=principal.role if principal else None,
        method=route.method,
        route=route.path,
        path=clip(path, MAX_PATH),
        entity=parts[1] if len(parts) > 1 and parts[0] == "api" else None,
        entity_id=ident,
        request_id=request[REQUEST_ID],
        status=status,
        outcome=_outcome(status),
        client=address,
    )


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "denied" if status in (401, 403, 429) else "failed"


def open_entry(request: web.Request, route: Route) -> PendingEntry:
    """The entry of an audited call about to run, as it reads if the call succeeds."""
    pending = request[AUDIT_PENDING] = PendingEntry(_entry(request, route, route.status))
    return pending


def name_entity(request: web.Request, entity: str, ident: str) -> None:
    """Name the entity an audited call acted on, when its path does not (a push token)."""
    pending = request.get(AUDIT_PENDING)
    if pending is not None:
        pending.name(entity, ident)


async def record(
    request: web.Request,
    route: Route,
    response: web.StreamResponse,
    pending: PendingEntry | None,
) -> None:
    """Settle the audit entry once the response is known. A failure to write it is logged,
    not raised: a change the call made already committed with its entry."""
    status = response.status
    if pending is None:  # refused before the handler ran (403)
        pending = PendingEntry(_entry(request, route, status))
    elif status == 201 and "Location" in response.headers:
        pending.created(response.headers["Location"].rsplit("/", 1)[-1])
    trouble = request.app[DATABASE].trouble
    if status == 503 and trouble is not None and pending.row_id is None:
        # The store has just refused this request's write: the entry would wait out the same
        # lock (doubling the answer's delay) or hit the same full disk. The log keeps it.
        pending.closed = True
        _not_written(pending.entry, trouble)
        return
    try:
        await request.app[AUDIT].settle(pending, status, _outcome(status))
    except StoreUnavailable as exc:
        _not_written(pending.entry, exc.trouble)
    except Exception:
        log.exception("could not write the audit entry for request %s", request[REQUEST_ID])


def _not_written(entry: AuditEntry, trouble: str) -> None:
    log.warning(
        "audit entry not written (database %s): %s %s %s -> %d [request %s]",
        trouble,
        entry.actor,
        entry.method,
        entry.path,
        entry.status,
        entry.request_id,
    )
