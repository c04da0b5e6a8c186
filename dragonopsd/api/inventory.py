"""Handlers for /api/clients, /api/projects, /api/environments and /api/servers.

The four resources behave identically, so one factory builds each one's routes from its table
name and Structs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from ..appkeys import INVENTORY
from ..model.inventory import (
    AnyEntity,
    Client,
    ClientCreate,
    ClientPatch,
    Environment,
    EnvironmentCreate,
    EnvironmentPatch,
    Project,
    ProjectCreate,
    ProjectPatch,
    Server,
    ServerCreate,
    ServerPatch,
)
from ..problem import invalid
from ..store.hierarchy import LEVELS, SORTS, camel, include_depth, includes_for
from ..store.inventory import ListQuery
from .codec import (
    IF_MATCH,
    IF_NONE_MATCH,
    UUID_SCHEMA,
    cacheable_response,
    id_param,
    if_match,
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

DEFAULT_LIMIT = 50


class Page(msgspec.Struct, rename="camel"):
    """A page of a list: the items and the opaque cursor of the next page (null on the last)."""

    items: list[Any]
    next_cursor: str | None


def _page_of(item: type) -> Any:
    """A named page type per entity, so OpenAPI shows ``ClientPage`` with typed items."""
    return msgspec.defstruct(
        f"{item.__name__}Page",
        [("items", list[item]), ("next_cursor", str | None)],  # type: ignore[valid-type]
        rename="camel",
    )


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value not in ("true", "false", "1", "0"):
        raise invalid(name, "expected true or false")
    return value in ("true", "1")


def _include(request: web.Request, table: str) -> int:
    raw = request.query.get("include", "")
    return include_depth(table, [p.strip() for p in raw.split(",") if p.strip()])


def _list_query(request: web.Request, table: str) -> ListQuery:
    level = LEVELS[table]
    parent = camel(level.parent_column) if level.parent_column else None
    no_repeats(request)
    q = request.query
    limit = page_limit(q, DEFAULT_LIMIT)
    sort = q.get("sort", "name")
    if sort.lstrip("-") not in SORTS:
        raise invalid("sort", f"unknown sort key (one of {', '.join(SORTS)}, '-' for descending)")
    statuses = query_list(q, "status", level.statuses)
    parent_id = query_uuid(q, parent) if parent else None
    text = q.get("q")
    if text is not None and len(text) > 200:
        raise invalid("q", "at most 200 characters")
    return ListQuery(
        parent_id=parent_id,
        statuses=statuses,
        q=text or None,
        sort=sort,
        limit=limit,
        cursor=q.get("cursor") or None,
        depth=_include(request, table),
    )


def _precondition(request: web.Request) -> Callable[[AnyEntity], None] | None:
    return if_match(request, lambda current: current)


def resource_routes(
    table: str, entity: type, create: type, patch: type, summary_name: str
) -> list[Route]:
    """GET/POST on the collection and GET/PATCH/DELETE on one item, for one inventory level."""
    level = LEVELS[table]
    singular = level.singular
    article = "an" if singular[0] in "aeiou" else "a"
    base = f"/api/{table}"

    async def list_items(request: web.Request) -> web.Response:
        items, cursor = await request.app[INVENTORY].list(table, _list_query(request, table))
        return json_response(Page(items=items, next_cursor=cursor))

    async def get_item(request: web.Request) -> web.StreamResponse:
        ident = path_uuid(request, singular)
        no_repeats(request)
        item = await request.app[INVENTORY].get(table, ident, _include(request, table))
        return cacheable_response(request, item)

    async def create_item(request: web.Request) -> web.Response:
        body: Any = await read_json(request, create)
        item = await request.app[INVENTORY].create(table, body)
        return json_response(item, status=201, etag=True, headers={"Location": f"{base}/{item.id}"})

    async def patch_item(request: web.Request) -> web.Response:
        ident = path_uuid(request, singular)
        body: Any = await read_json(request, patch)
        item = await request.app[INVENTORY].update(table, ident, body, _precondition(request))
        return json_response(item, etag=True)

    async def delete_item(request: web.Request) -> web.Response:
        ident = path_uuid(request, singular)
        no_repeats(request)
        await request.app[INVENTORY].delete(
            table, ident, cascade=_flag(request, "cascade"), precondition=_precondition(request)
        )
        return web.Response(status=204)

    includes = sorted(includes_for(table))
    include_param = Param(
        "include",
        f"Comma-separated children to embed: {', '.join(includes)}"
        if includes
        else "Nothing to embed",
        {"type": "string"},
    )
    item_id = id_param(singular)
    list_params = [
        *page_params(DEFAULT_LIMIT),
        Param(
            "sort",
            "Sort key, '-' prefix for descending",
            {"type": "string", "enum": [*SORTS, *(f"-{s}" for s in SORTS)], "default": "name"},
        ),
        Param("q", "Case-insensitive substring of the name", {"type": "string", "maxLength": 200}),
        Param("status", "Comma-separated statuses", {"type": "string"}),
        include_param,
    ]
    if level.parent_column:
        parent = camel(level.parent_column)
        list_params.insert(0, Param(parent, "Only children of this parent", UUID_SCHEMA))
    item_path = f"{base}/{{id}}"
    return [
        Route(
            "GET",
            base,
            list_items,
            f"List {table}",
            summary_name,
            "viewer",
            response=_page_of(entity),
            params=tuple(list_params),
            errors=(422,),
        ),
        Route(
            "POST",
            base,
            create_item,
            f"Create {article} {singular}",
            summary_name,
            "operator",
            body=create,
            response=entity,
            status=201,
            errors=(400, 413, 415, 422),
        ),
        Route(
            "GET",
            item_path,
            get_item,
            f"Get {article} {singular}",
            summary_name,
            "viewer",
            response=entity,
            params=(item_id, include_param, IF_NONE_MATCH),
            errors=(404, 422),
        ),
        Route(
            "PATCH",
            item_path,
            patch_item,
            f"Update {article} {singular}",
            summary_name,
            "operator",
            body=patch,
            response=entity,
            params=(item_id, IF_MATCH),
            errors=(400, 404, 412, 413, 415, 422),
        ),
        Route(
            "DELETE",
            item_path,
            delete_item,
            f"Delete {article} {singular}",
            summary_name,
            "operator",
            status=204,
            errors=(404, 409, 412, 422),
            params=(
                item_id,
                IF_MATCH,
                Param("cascade", "Also delete every child", {"type": "boolean", "default": False}),
            ),
        ),
    ]


def routes() -> list[Route]:
    """Routes of the whole inventory."""
    return [
        *resource_routes("clients", Client, ClientCreate, ClientPatch, "Clients"),
        *resource_routes("projects", Project, ProjectCreate, ProjectPatch, "Projects"),
        *resource_routes(
            "environments", Environment, EnvironmentCreate, EnvironmentPatch, "Environments"
        ),
        *resource_routes("servers", Server, ServerCreate, ServerPatch, "Servers"),
    ]
