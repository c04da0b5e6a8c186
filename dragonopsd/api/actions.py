"""Server action routes: operators ask for restart / stop / start, everyone follows them."""

from __future__ import annotations

import re

from aiohttp import web

from ..actions.service import request_hash
from ..appkeys import ACTIONS, PRINCIPAL
from ..model.inventory import Body, Wire
from ..problem import invalid, not_found
from ..store.actions import Action, ActionKind, ActionState, NewAction
from .access import reach
from .codec import (
    UUID_SCHEMA,
    id_param,
    json_response,
    no_repeats,
    page_limit,
    page_params,
    path_uuid,
    query_list,
    query_uuid,
    read_json,
)
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
    if not (await reach(request)).server(server_id):  # as one that does not exist
        raise not_found("server", server_id)
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
    action = await request.app[ACTIONS].store.get(ident)
    if not (await reach(request)).server(action.server_id):  # as one that does not exist
        raise not_found("action", ident)
    return json_response(action)


async def list_actions(request: web.Request) -> web.Response:
    """Actions, newest first, optionally of one server and in some states."""
    no_repeats(request)
    q = request.query
    server_id = query_uuid(q, "serverId")
    states = query_list(q, "state", STATES)
    limit = page_limit(q, DEFAULT_LIMIT)
    seen = await reach(request)
    items, cursor = await request.app[ACTIONS].store.page(
        server_id, states, limit, q.get("cursor") or None, seen.servers
    )
    return json_response(ActionPage(items=items, next_cursor=cursor))


def routes() -> list[Route]:
    """/api/servers/{id}/actions and /api/actions."""
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
                id_param("server"),
                Param(
                    "Idempotency-Key",
                    "Sending the same key with the same request within 24 h returns the "
                    "original action instead of starting another; with a different request, 422",
                    {"type": "string", "minLength": 1, "maxLength": 255},
                    "header",
                ),
            ),
            errors=(400, 404, 409, 413, 415, 422),
            scope="filtered",
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
                Param("serverId", "Only this server's actions", UUID_SCHEMA),
                Param(
                    "state",
                    "Comma-separated states",
                    {"type": "string", "examples": ["queued,running"]},
                ),
                *page_params(DEFAULT_LIMIT),
            ),
            errors=(422,),
            scope="filtered",
        ),
        Route(
            "GET",
            f"{BASE}/{{id}}",
            get_action,
            "Get an action",
            "Actions",
            "viewer",
            response=Action,
            params=(id_param("action"),),
            errors=(404, 422),
            scope="filtered",
        ),
    ]
