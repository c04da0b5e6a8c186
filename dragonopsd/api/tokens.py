"""Admin routes for API tokens and JWT profiles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import UNSET, UnsetType

from ..appkeys import AUTHENTICATOR, INVENTORY, INVENTORY_INDEX, PRINCIPAL
from ..model.inventory import ONE_LINE, Body, Wire
from ..model.principal import ProfileRole, TokenRole
from ..problem import Problem, invalid
from ..store.tokens import AccessScope, Profile, Token
from .codec import (
    IF_MATCH,
    IF_NONE_MATCH,
    cacheable_response,
    if_match,
    json_response,
    path_uuid,
    read_json,
)
from .route import Param, Route

TokenName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=ONE_LINE)]
ScopeIds = Annotated[list[uuid.UUID], msgspec.Meta(max_length=1000)]


class ScopeBody(Body, kw_only=True):
    """Limit a token or profile to these clients (whole) and these projects."""

    clients: ScopeIds = []
    projects: ScopeIds = []


class TokenCreate(Body, kw_only=True):
    """POST /api/tokens."""

    name: TokenName
    role: TokenRole
    expires_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    server_id: uuid.UUID | None = None  # required for (and only for) role agent
    scope: ScopeBody | None = None  # viewers and operators only; None: every client


class NewToken(Wire, kw_only=True):
    """The created token: ``token`` is shown this once and never again."""

    token: str
    meta: Token


class TokenList(Wire, kw_only=True):
    """All tokens (metadata only)."""

    items: list[Token]


class ProfilePatch(Body, kw_only=True):
    """PATCH /api/profiles/{id}."""

    role: ProfileRole | UnsetType = UNSET
    email: Annotated[str, msgspec.Meta(max_length=320)] | UnsetType | None = UNSET
    scope: ScopeBody | UnsetType | None = UNSET  # null: every client again


class ProfileList(Wire, kw_only=True):
    """All profiles."""

    items: list[Profile]


def expiry(days: int | None) -> str | None:
    """ISO expiry ``days`` from now (None: never)."""
    if days is None:
        return None
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


async def list_tokens(request: web.Request) -> web.Response:
    """Every token's metadata, newest first."""
    return json_response(TokenList(items=await request.app[AUTHENTICATOR].tokens.store.all()))


async def create_token(request: web.Request) -> web.Response:
    """Mint a token; its value is in this response only."""
    body = await read_json(request, TokenCreate)
    principal = request[PRINCIPAL]
    server_id = await _agent_server(request, body)
    scope = await _scope(request, body.scope, body.role)
    meta, plain = await request.app[AUTHENTICATOR].tokens.create(
        body.name,
        body.role,
        expiry(body.expires_days),
        principal.actor,
        server_id=server_id,
        scope=scope,
    )
    return json_response(
        NewToken(token=plain, meta=meta), status=201, headers={"Location": f"/api/tokens/{meta.id}"}
    )


async def _agent_server(request: web.Request, body: TokenCreate) -> str | None:
    """The server an agent token is scoped to: required for agents, refused for others."""
    if body.role != "agent":
        if body.server_id is not None:
            raise invalid("$.serverId", "only agent tokens are scoped to a server")
        return None
    if body.server_id is None:
        raise invalid("$.serverId", "an agent token needs the server it pushes samples for")
    ident = str(body.server_id)
    try:
        await request.app[INVENTORY].get("servers", ident)
    except Problem as exc:
        if exc.status == 404:
            raise invalid("$.serverId", f"server {ident} does not exist") from None
        raise
    return ident


async def _scope(
    request: web.Request, body: ScopeBody | None, role: str | None
) -> AccessScope | None:
    """The scope to store, checked: named ids exist, and only viewers and operators get one
    (admins stay global; an agent already has its one server)."""
    if body is None:
        return None
    if role in ("admin", "agent"):
        raise invalid("$.scope", f"a scope limits viewers and operators, not role {role}")
    if not body.clients and not body.projects:
        raise invalid("$.scope", "names no client and no project; send null for every client")
    hierarchy = await request.app[INVENTORY_INDEX].current()
    for field, ids, known, noun in (
        ("clients", body.clients, hierarchy.clients, "client"),
        ("projects", body.projects, hierarchy.projects, "project"),
    ):
        for n, ident in enumerate(ids):
            if str(ident) not in known:
                raise invalid(f"$.scope.{field}[{n}]", f"{noun} {ident} does not exist")
    return AccessScope(
        clients=sorted({str(c) for c in body.clients}),
        projects=sorted({str(p) for p in body.projects}),
    )


async def revoke_token(request: web.Request) -> web.Response:
    """Revoke a token; it stops working at once."""
    await request.app[AUTHENTICATOR].tokens.revoke(path_uuid(request, "token"))
    return web.Response(status=204)


async def list_profiles(request: web.Request) -> web.Response:
    """Every JWT subject seen so far, with its role."""
    return json_response(ProfileList(items=await request.app[AUTHENTICATOR].store.profiles()))


async def get_profile(request: web.Request) -> web.Response:
    """One profile, with the ETag its edit forms send back in If-Match."""
    profile = await request.app[AUTHENTICATOR].store.profile(request.match_info["id"])
    return cacheable_response(request, profile)


def _same(profile: Profile) -> Profile:
    return profile


async def patch_profile(request: web.Request) -> web.Response:
    """Change a profile's role (applies to its next request), email or scope; If-Match is
    checked inside the write."""
    body = await read_json(request, ProfilePatch)
    auth = request.app[AUTHENTICATOR]
    role = None if body.role is UNSET else body.role
    checked = role
    if checked is None and body.scope not in (UNSET, None):
        # A scope alone is judged against the role the profile has: an admin stays global.
        try:
            checked = (await auth.store.profile(request.match_info["id"])).role
        except Problem:
            checked = None  # no such profile: update_profile answers its 404
    scope = body.scope if body.scope is UNSET else await _scope(request, body.scope, checked)
    profile = await auth.store.update_profile(
        request.match_info["id"], role, body.email, scope, if_match(request, _same)
    )
    auth.profile_changed(profile)
    return json_response(profile, etag=True)


def routes() -> list[Route]:
    """Token and profile administration (admins only)."""
    token_id = Param("id", "The token's id", {"type": "string", "format": "uuid"}, "path", True)
    sub = Param("id", "The JWT subject", {"type": "string"}, "path", True)
    return [
        Route(
            "GET",
            "/api/tokens",
            list_tokens,
            "List API tokens",
            "Tokens",
            "admin",
            response=TokenList,
            # Admin-only, and admins are never scoped: stated anyway, so a role change here
            # could not let a scoped token mint or widen tokens.
            scope="unscoped",
        ),
        Route(
            "POST",
            "/api/tokens",
            create_token,
            "Create an API token (value shown once)",
            "Tokens",
            "admin",
            body=TokenCreate,
            response=NewToken,
            status=201,
            errors=(400, 413, 415, 422),
            scope="unscoped",
        ),
        Route(
            "DELETE",
            "/api/tokens/{id}",
            revoke_token,
            "Revoke an API token",
            "Tokens",
            "admin",
            status=204,
            params=(token_id,),
            errors=(404,),
            scope="unscoped",
        ),
        Route(
            "GET",
            "/api/profiles",
            list_profiles,
            "List JWT profiles",
            "Profiles",
            "admin",
            response=ProfileList,
            scope="unscoped",
        ),
        Route(
            "GET",
            "/api/profiles/{id}",
            get_profile,
            "Get a JWT profile (with the ETag an edit sends in If-Match)",
            "Profiles",
            "admin",
            response=Profile,
            params=(sub, IF_NONE_MATCH),
            errors=(404,),
            scope="unscoped",
        ),
        Route(
            "PATCH",
            "/api/profiles/{id}",
            patch_profile,
            "Change a profile's role, email or scope",
            "Profiles",
            "admin",
            body=ProfilePatch,
            response=Profile,
            params=(sub, IF_MATCH),
            errors=(400, 404, 412, 413, 415, 422),
            scope="unscoped",
        ),
    ]
