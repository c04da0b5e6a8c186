"""Secrets routes: metadata for viewers, writes for admins, the value only through ``/value``.

The value is write-only everywhere else: no list, get, write response, event or problem detail
carries it (msgspec's validation messages name the field and the rule, never the input).
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from ..appkeys import VAULT
from ..model.inventory import Body, Description, Wire
from ..problem import invalid
from ..store.vault import Secret
from .codec import (
    IF_MATCH,
    IF_NONE_MATCH,
    cacheable_response,
    id_param,
    if_match,
    json_response,
    no_repeats,
    page_limit,
    page_params,
    path_uuid,
    read_json,
)
from .route import Param, Route

KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$"
ENV_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
DEFAULT_ENV = "default"
MAX_VALUE_BYTES = 64 * 1024
DEFAULT_LIMIT = 50
_ENV = re.compile(ENV_PATTERN)

SecretKey = Annotated[str, msgspec.Meta(pattern=KEY_PATTERN)]
SecretEnv = Annotated[str, msgspec.Meta(pattern=ENV_PATTERN)]
# Characters here; the UTF-8 byte limit is checked after decoding (_check_value).
SecretValue = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_VALUE_BYTES)]


class SecretCreate(Body, kw_only=True):
    """POST /api/secrets. ``env`` defaults to "default"."""

    key: SecretKey
    env: SecretEnv = DEFAULT_ENV
    value: SecretValue
    description: Description | None = None


class SecretPatch(Body, kw_only=True):
    """PATCH /api/secrets/{id}: a new value (new version) and/or description."""

    value: SecretValue | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET


class SecretPage(Wire, kw_only=True):
    """A page of secret metadata."""

    items: list[Secret]
    next_cursor: str | None


class SecretValueOut(Wire, kw_only=True):
    """GET /api/secrets/{id}/value."""

    id: str
    key: str
    env: str
    version: int
    value: str


def _check_value(value: str | UnsetType) -> None:
    if isinstance(value, str) and len(value.encode()) > MAX_VALUE_BYTES:
        raise invalid("$.value", f"at most {MAX_VALUE_BYTES} bytes of UTF-8")


async def list_secrets(request: web.Request) -> web.Response:
    """Metadata of secrets, by key; ``env`` and ``q`` (key substring) filter."""
    no_repeats(request)
    q = request.query
    limit = page_limit(q, DEFAULT_LIMIT)
    text = q.get("q")
    if text is not None and len(text) > 200:
        raise invalid("q", "at most 200 characters")
    env = q.get("env")
    if env is not None and not _ENV.match(env):
        raise invalid("env", "letters, digits, '_', '.' or '-', starting with a letter or digit")
    items, cursor = await request.app[VAULT].list(env, text or None, limit, q.get("cursor") or None)
    return json_response(SecretPage(items=items, next_cursor=cursor))


async def create_secret(request: web.Request) -> web.Response:
    """Seal and store a new secret; answers with its metadata."""
    body = await read_json(request, SecretCreate)
    _check_value(body.value)
    meta = await request.app[VAULT].create(body.key, body.env, body.value, body.description)
    return json_response(meta, status=201, headers={"Location": f"/api/secrets/{meta.id}"})


async def get_secret(request: web.Request) -> web.Response:
    """One secret's metadata, with the ETag a rotate or delete sends back as If-Match."""
    return cacheable_response(request, await request.app[VAULT].get(path_uuid(request, "secret")))


def _same(meta: Secret) -> Secret:
    return meta  # the metadata is the representation GET gives (and its ETag's source)


async def patch_secret(request: web.Request) -> web.Response:
    """Replace the value and/or description; If-Match is checked inside the write."""
    ident = path_uuid(request, "secret")
    body = await read_json(request, SecretPatch)
    _check_value(body.value)
    precondition = if_match(request, _same)
    meta = await request.app[VAULT].update(ident, body.value, body.description, precondition)
    return json_response(meta, etag=True)


async def delete_secret(request: web.Request) -> web.Response:
    """Remove a secret; If-Match is checked inside the delete."""
    ident = path_uuid(request, "secret")
    await request.app[VAULT].delete(ident, if_match(request, _same))
    return web.Response(status=204)


async def reveal_secret(request: web.Request) -> web.Response:
    """The plaintext value (admin only, audited)."""
    ident = path_uuid(request, "secret")
    meta, value = await request.app[VAULT].reveal(ident)
    out = SecretValueOut(id=meta.id, key=meta.key, env=meta.env, version=meta.version, value=value)
    return json_response(out, headers={"Cache-Control": "no-store"})


def _unavailable(errors: tuple[int, ...]) -> tuple[int, ...]:
    return (*errors, 503)


def routes() -> list[Route]:
    """/api/secrets."""
    ident = id_param("secret")
    tag = "Secrets"
    # Secrets serve every client's monitors and channels: global configuration, 403 to
    # scoped callers, even viewers reading the metadata.
    return [
        Route(
            "GET",
            "/api/secrets",
            list_secrets,
            "List secrets (metadata only)",
            tag,
            "viewer",
            response=SecretPage,
            params=(
                Param("env", "Only this env", {"type": "string", "pattern": ENV_PATTERN}),
                Param("q", "Substring of the key", {"type": "string", "maxLength": 200}),
                *page_params(DEFAULT_LIMIT),
            ),
            errors=_unavailable((422,)),
            scope="unscoped",
        ),
        Route(
            "POST",
            "/api/secrets",
            create_secret,
            "Create a secret",
            tag,
            "admin",
            body=SecretCreate,
            response=Secret,
            status=201,
            errors=_unavailable((400, 409, 413, 415, 422)),
            scope="unscoped",
        ),
        Route(
            "GET",
            "/api/secrets/{id}",
            get_secret,
            "Get a secret's metadata",
            tag,
            "viewer",
            response=Secret,
            params=(ident, IF_NONE_MATCH),
            errors=_unavailable((404,)),
            scope="unscoped",
        ),
        Route(
            "PATCH",
            "/api/secrets/{id}",
            patch_secret,
            "Update a secret's value or description",
            tag,
            "admin",
            body=SecretPatch,
            response=Secret,
            params=(ident, IF_MATCH),
            errors=_unavailable((400, 404, 412, 413, 415, 422)),
            scope="unscoped",
        ),
        Route(
            "DELETE",
            "/api/secrets/{id}",
            delete_secret,
            "Delete a secret",
            tag,
            "admin",
            status=204,
            params=(ident, IF_MATCH),
            errors=_unavailable((404, 412)),
            scope="unscoped",
        ),
        Route(
            "GET",
            "/api/secrets/{id}/value",
            reveal_secret,
            "Reveal a secret's value (audited)",
            tag,
            "admin",
            response=SecretValueOut,
            params=(ident,),
            errors=_unavailable((404, 500)),
            audit=True,
            scope="unscoped",
        ),
    ]
