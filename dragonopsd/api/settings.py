"""Settings routes: everyone reads, admins write."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..appkeys import SETTINGS
from ..model.inventory import Body, Wire
from ..problem import FieldIssue, Problem, invalid
from ..store.settings import Precondition, Setting
from .codec import (
    IF_MATCH,
    IF_NONE_MATCH,
    cacheable_response,
    encode,
    if_match,
    json_response,
    read_json,
)
from .route import Param, Route

KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,127}$")
# PUT's If-None-Match: "*" makes it create-only (RFC 9110 13.1.2), for the "New setting" form.
CREATE_ONLY = Param(
    "If-None-Match", "`*`: create only; 412 when the setting exists", {"type": "string"}, "header"
)
MAX_VALUE_BYTES = 64 * 1024


class SettingPut(Body, kw_only=True):
    """PUT /api/settings/{key}: any JSON value."""

    value: Any


class SettingList(Wire, kw_only=True):
    """All settings."""

    items: list[Setting]


def _key(request: web.Request) -> str:
    key = request.match_info["key"]
    if not KEY.match(key):
        raise invalid(
            "key",
            "lowercase letters, digits, '.', '_' or '-', starting with a "
            "letter, at most 128 characters",
        )
    return key


async def list_settings(request: web.Request) -> web.Response:
    """Every setting."""
    return json_response(SettingList(items=await request.app[SETTINGS].list()))


async def get_setting(request: web.Request) -> web.Response:
    """One setting, with the ETag a change or delete sends back as If-Match."""
    return cacheable_response(request, await request.app[SETTINGS].get(_key(request)))


def _same(setting: Setting) -> Setting:
    return setting  # the representation GET gives (and its ETag's source)


def _precondition(request: web.Request, key: str) -> Precondition | None:
    """If-Match as a check inside the write; a setting that is not there matches no ETag
    (RFC 9110 13.1.1), so a PUT meant to replace one cannot quietly create it again.
    If-None-Match ``*``: only when there is none, so a create cannot replace one."""
    check = if_match(request, _same)
    create_only = request.headers.get("If-None-Match", "").strip() == "*"
    if check is None and not create_only:
        return None

    def run(current: Setting | None) -> None:
        if current is not None and create_only:
            issue = FieldIssue("key", f"a setting named {key} exists already")
            raise Problem(412, f"{issue.field}: {issue.message}", errors=[issue])
        if check is not None:
            if current is None:
                raise Problem(412, "If-Match names a setting that does not exist now; GET it again")
            check(current)

    return run


async def put_setting(request: web.Request) -> web.Response:
    """Create or replace a setting (201 when created)."""
    key = _key(request)
    body = await read_json(request, SettingPut)
    if len(encode(body.value)) > MAX_VALUE_BYTES:
        raise invalid("$.value", f"at most {MAX_VALUE_BYTES} bytes of JSON")
    setting, created = await request.app[SETTINGS].put(key, body.value, _precondition(request, key))
    return json_response(setting, status=201 if created else 200, etag=True)


async def delete_setting(request: web.Request) -> web.Response:
    """Remove a setting; If-Match is checked inside the delete."""
    await request.app[SETTINGS].delete(_key(request), if_match(request, _same))
    return web.Response(status=204)


def routes() -> list[Route]:
    """/api/settings."""
    key = Param("key", "Setting name", {"type": "string", "pattern": KEY.pattern}, "path", True)
    return [
        Route(
            "GET",
            "/api/settings",
            list_settings,
            "List settings",
            "Settings",
            "viewer",
            response=SettingList,
            # Deployment-wide key/value pairs: no entity links to one, nothing of a client;
            # changing them is global configuration.
            scope="global",
        ),
        Route(
            "GET",
            "/api/settings/{key}",
            get_setting,
            "Get a setting",
            "Settings",
            "viewer",
            response=Setting,
            params=(key, IF_NONE_MATCH),
            errors=(404, 422),
            scope="global",
        ),
        Route(
            "PUT",
            "/api/settings/{key}",
            put_setting,
            "Create or replace a setting",
            "Settings",
            "admin",
            body=SettingPut,
            response=Setting,
            also=(201,),
            params=(key, IF_MATCH, CREATE_ONLY),
            errors=(400, 412, 413, 415, 422),
            scope="unscoped",
        ),
        Route(
            "DELETE",
            "/api/settings/{key}",
            delete_setting,
            "Delete a setting",
            "Settings",
            "admin",
            status=204,
            params=(key, IF_MATCH),
            errors=(404, 412, 422),
            scope="unscoped",
        ),
    ]
