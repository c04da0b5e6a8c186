"""Handlers for /api/clients, /api/projects, /api/environments and /api/servers.

The four resources behave identically, so one factory builds each one's routes from its table
name and Structs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web
from msgspec import UNSET

from ..appkeys import INVENTORY, INVENTORY_INDEX, PRINCIPAL
from ..inventory.reach import Reach
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
from ..problem import Problem, invalid, not_found
from ..store.hierarchy import LEVELS, SORTS, Level, camel, include_depth, includes_for
from ..store.inventory import ListQuery
from .access import reach
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


# A scoped caller (api/route.py "filtered") meets only what its reach holds: an id outside it
# is the 404 of an id that does not exist, a parent outside it the 422 of a missing parent.
# Reaches are closed downwards (a project in reach has all its environments and servers in
# reach) but for clients: one reached only through a single project of it is named, to place
# that project, and shows nothing else of it (its count and embedded projects are trimmed).


def _whole(request: web.Request, client_id: str) -> bool:
    """Whether the caller's scope holds this client whole (not only some projects of it)."""
    scope = request[PRINCIPAL].scope
    return scope is None or client_id in scope.clients


def _in_reach(request: web.Request, seen: Reach, level: Level, ident: str) -> None:
    """404 for an id outside the reach; 403 to write a client the scope holds only in part."""
    if not seen.entity(level.table, ident):
        raise not_found(level.singular, ident)
    if level.table == "clients" and request.method != "GET" and not _whole(request, ident):
        raise Problem(
            403,
            f"this {request[PRINCIPAL].kind} is scoped to some projects of client {ident}, "
            "not to the client: it may not change or delete it",
        )


def _parent_in_reach(request: web.Request, seen: Reach, level: Level, parent: Any) -> None:
    """The answer of a missing parent for a parent outside the reach; 403 to add a project to
    a client the scope holds only in part (the project would be outside the scope)."""
    assert level.parent_table and level.parent_column
    parent_id = str(parent)
    if not seen.entity(level.parent_table, parent_id):
        name = LEVELS[level.parent_table].singular
        raise invalid(f"$.{camel(level.parent_column)}", f"{name} {parent_id} does not exist")
    if level.parent_table == "clients" and not _whole(request, parent_id):
        raise Problem(
            403,
            f"this {request[PRINCIPAL].kind} is scoped to some projects of client {parent_id}, "
            "not to the client: it may not put projects under it",
        )


def _may_create(request: web.Request, seen: Reach, level: Level, body: Any) -> None:
    if seen.everything:
        return
    if not level.parent_column:  # the new client would be outside the scope
        raise Problem(
            403,
            f"this {request[PRINCIPAL].kind} is scoped to some clients: only an unscoped "
            "caller may create a client",
        )
    _parent_in_reach(request, seen, level, getattr(body, level.parent_column))


def _patch_precondition(
    request: web.Request, seen: Reach, level: Level, body: Any
) -> Callable[[AnyEntity], None] | None:
    """If-Match, then (for a scoped caller moving the entity) the new parent's reach: where
    the store checks that the parent exists, so both answer alike in every case."""
    matches = _precondition(request)
    parent = getattr(body, level.parent_column or "", UNSET)
    if seen.everything or parent is UNSET:
        return matches

    def check(current: AnyEntity) -> None:
        if matches is not None:
            matches(current)
        # A body that repeats the parent it has (a form sending every field) moves nothing.
        if getattr(current, level.parent_column or "") != str(parent):
            _parent_in_reach(request, seen, level, parent)

    return check


def _trim(request: web.Request, seen: Reach, items: list[AnyEntity]) -> None:
    """Clients the scope holds in part show only their projects in reach."""
    projects = request.app[INVENTORY_INDEX].hierarchy.projects
    for item in items:
        if not isinstance(item, Client) or _whole(request, item.id):
            continue
        item.project_count = sum(
            1 for pid in seen.projects or () if projects.get(pid, ("", ""))[1] == item.id
        )
        if item.projects is not UNSET:
            item.projects = [p for p in item.projects if seen.project(p.id)]


def resource_routes(
    table: str, entity: type, create: type, patch: type, summary_name: str
) -> list[Route]:
    """GET/POST on the collection and GET/PATCH/DELETE on one item, for one inventory level."""
    level = LEVELS[table]
    singular = level.singular
    article = "an" if singular[0] in "aeiou" else "a"
    base = f"/api/{table}"

    async def list_items(request: web.Request) -> web.Response:
        query = _list_query(request, table)
        seen = await reach(request)
        if not seen.everything:  # in the SQL, so pages and cursors count only what it sees
            query = dataclasses.replace(query, ids=getattr(seen, table))
        items, cursor = await request.app[INVENTORY].list(table, query)
        if not seen.everything:
            _trim(request, seen, items)
        return json_response(Page(items=items, next_cursor=cursor))

    async def get_item(request: web.Request) -> web.StreamResponse:
        ident = path_uuid(request, singular)
        no_repeats(request)
        depth = _include(request, table)
        seen = await reach(request)  # checked where the store would find no such id
        _in_reach(request, seen, level, ident)
        item = await request.app[INVENTORY].get(table, ident, depth)
        if not seen.everything:
            _trim(request, seen, [item])
        return cacheable_response(request, item)

    async def create_item(request: web.Request) -> web.Response:
        body: Any = await read_json(request, create)
        _may_create(request, await reach(request), level, body)
        item = await request.app[INVENTORY].create(table, body)
        return json_response(item, status=201, etag=True, headers={"Location": f"{base}/{item.id}"})

    async def patch_item(request: web.Request) -> web.Response:
        ident = path_uuid(request, singular)
        body: Any = await read_json(request, patch)
        seen = await reach(request)
        _in_reach(request, seen, level, ident)
        precondition = _patch_precondition(request, seen, level, body)
        item = await request.app[INVENTORY].update(table, ident, body, precondition)
        return json_response(item, etag=True)

    async def delete_item(request: web.Request) -> web.Response:
        ident = path_uuid(request, singular)
        no_repeats(request)
        cascade = _flag(request, "cascade")
        _in_reach(request, await reach(request), level, ident)
        await request.app[INVENTORY].delete(
            table, ident, cascade=cascade, precondition=_precondition(request)
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
            scope="filtered",
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
