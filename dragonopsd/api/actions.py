"""Server action routes: operators ask for restart / stop / start, everyone follows them."""

from __future__ import annotations

import re
import uuid

from aiohttp import web

from ..actions.service import request_hash
from ..appkeys import ACTIONS, PRINCIPAL
from ..model.inventory import Body, Wire
from ..problem import invalid
from ..store.actions import Action, ActionKind, ActionState, NewAction
from .codec import MAX_LIMIT, json_response, no_repeats, page_limit, path_uuid, read_json
from .route import Param, Route

BASE = "/api/actions"
DEFAULT_LIMIT = 50
STATES: tuple[ActionState, ...] = ("queued", "running", "succeeded", "failed")
# Printable ASCII without spaces at the ends, as clients generate them (UUIDs, ULIDs, hashes).
_KEY = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]{0,253}[\x21-\x7e])?$")


class ActionRequest(Body, kw_only=True):
    """POST /api/servers/{id}/actions."""

    action: ActionKind


class ActionPage(Wire, kw_only=True):
    """A page of actions, newest first, and the cursor of the next page (null on the last)."""

    items: list[Action]
    next_cursor: str | None


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is not None and not _KEY.match(key):
        raise invalid("Idempotency-Key", "1 to 255 printable ASCII characters")
    return key


async def create_action(request: web.Request) -> web.Response:
    """Queue an action; 202 with the action and where to follow it."""
    server_id = path_uuid(request, "server")
    key = _idempotency_key(request)
    body = await read_json(request, ActionRequest)
    action, created = await request.app[ACTIONS].submit(
        NewAction(
            server_id=server_id,
            action=body.action,
            requested_by=request[PRINCIPAL].actor,
            idempotency_key=key,
            request_hash=request_hash(server_id, body.action),
        )
    )
    headers = {"Location": f"{BASE}/{action.id}"}
    if not created:  # the same answer as the first time, with the action as it is now
        headers["Idempotent-Replayed"] = "true"
    return json_response(action, status=202, headers=headers)


async def get_action(request: web.Request) -> web.Response:
    """One action."""
    ident = path_uuid(request, "action")
    return json_response(await request.app[ACTIONS].store.get(ident))


async def list_actions(request: web.Request) -> web.Response:
    """Actions, newest first, optionally of one server and in some states."""
    no_repeats(request)
    q = request.query
    server_id = None
    if "serverId" in q:
        try:
            server_id = str(uuid.UUID(q["serverId"]))
        except ValueError:
            raise invalid("serverId", "expected a UUID") from None
    states = tuple(s for s in q.get("state", "").split(",") if s)
    for s in states:
        if s not in STATES:
            raise invalid("state", f"unknown state '{s}' (one of {', '.join(STATES)})")
    limit = page_limit(q, DEFAULT_LIMIT)
    items, cursor = await request.app[ACTIONS].store.page(
        server_id, states, limit, q.get("cursor") or None
    )
    return json_response(ActionPage(items=items, next_cursor=cursor))


def routes() -> list[Route]:
    """/api/servers/{id}/actions and /api/actions."""
    uuid_schema = {"type": "string", "format": "uuid"}
    return [
        Route(
            "POST",
            "/api/servers/{id}/actions",
            create_action,
            "Restart, stop or start a server",
            "Actions",
            "operator",
            body=ActionRequest,
            response=Action,
            status=202,
            params=(
                Param("id", "The server's UUID", uuid_schema, "path", True),
                Param(
                    "Idempotency-Key",
                    "Sending the same key with the same request within 24 h returns the "
                    "original action instead of starting another; with a different request, 422",
                    {"type": "string", "minLength": 1, "maxLength": 255},
                    "header",
                ),
            ),
            errors=(400, 404, 409, 413, 415, 422),
        ),
        Route(
            "GET",
            BASE,
            list_actions,
            "List actions",
            "Actions",
            "viewer",
            response=ActionPage,
            params=(
                Param("serverId", "Only this server's actions", uuid_schema),
                Param(
                    "state",
                    "Comma-separated states",
                    {"type": "string", "examples": ["queued,running"]},
                ),
                Param(
                    "limit",
                    "Page size",
                    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 50},
                ),
                Param("cursor", "Opaque cursor from the previous nextCursor", {"type": "string"}),
            ),
            errors=(422,),
        ),
        Route(
            "GET",
            f"{BASE}/{{id}}",
            get_action,
            "Get an action",
            "Actions",
            "viewer",
            response=Action,
            params=(Param("id", "The action's UUID", uuid_schema, "path", True),),
            errors=(404, 422),
        ),
    ]
