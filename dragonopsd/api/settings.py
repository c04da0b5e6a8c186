"""Settings routes: everyone reads, admins write."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from ..appkeys import SETTINGS
from ..model.inventory import Body, Wire
from ..problem import invalid
from ..store.settings import Setting
from .codec import encode, json_response, read_json
from .route import Param, Route

KEY = re.compile(r"^[a-z][a-z0-9_.-]{0,127}$")
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
    """One setting."""
    return json_response(await request.app[SETTINGS].get(_key(request)))


async def put_setting(request: web.Request) -> web.Response:
    """Create or replace a setting (201 when created)."""
    key = _key(request)
    body = await read_json(request, SettingPut)
    if len(encode(body.value)) > MAX_VALUE_BYTES:
        raise invalid("$.value", f"at most {MAX_VALUE_BYTES} bytes of JSON")
    setting, created = await request.app[SETTINGS].put(key, body.value)
    return json_response(setting, status=201 if created else 200)


async def delete_setting(request: web.Request) -> web.Response:
    """Remove a setting."""
    await request.app[SETTINGS].delete(_key(request))
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
            params=(key,),
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
            params=(key,),
            errors=(400, 413, 415, 422),
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
            params=(key,),
            errors=(404, 422),
            scope="unscoped",
        ),
    ]
