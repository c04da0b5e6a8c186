"""Who is calling: the authenticated principal, and the role ladder routes are checked on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# People (tokens or JWT profiles) climb the ladder viewer < operator < admin. An agent token
# is no rung on it: it may push samples for its one server and call nothing else.
HumanRole = Literal["viewer", "operator", "admin"]
# A JWT profile may also hold "none" ([auth] default_role = "none"): signed up, no access yet.
ProfileRole = Literal["none", "viewer", "operator", "admin"]
TokenRole = Literal["viewer", "operator", "admin", "agent"]
Role = Literal["none", "viewer", "operator", "admin", "agent"]
RouteRole = Literal["public", "viewer", "operator", "admin", "agent"]
ROLES: tuple[HumanRole, ...] = ("viewer", "operator", "admin")
TOKEN_ROLES: tuple[TokenRole, ...] = (*ROLES, "agent")
_RANK = {"public": 0, "viewer": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True)
class Scope:
    """The clients a token or profile is limited to: these clients whole, plus single projects
    of other clients. Everything else does not exist for its holder (404, never 403)."""

    clients: frozenset[str] = frozenset()
    projects: frozenset[str] = frozenset()

    def wire(self) -> dict[str, list[str]]:
        """The stored and shown form: ``{"clients": [...], "projects": [...]}``, sorted."""
        return {"clients": sorted(self.clients), "projects": sorted(self.projects)}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API token or a JWT subject (profile)."""

    kind: Literal["token", "jwt"]
    id: str
    name: str
    role: Role
    expires_at: float | None = None  # Unix time; the websocket hub closes sockets past it
    server_id: str | None = None  # agent tokens: the one server they may push samples for
    scope: Scope | None = None  # None: every client (admins always, and unscoped tokens)

    @property
    def actor(self) -> str:
        """How the audit log names this caller (``token:<id>`` / ``jwt:<sub>``)."""
        return f"{self.kind}:{self.id}"


def allows(role: Role, required: RouteRole) -> bool:
    """True when a caller with role may call a route that requires ``required``.

    Agent routes admit agents and admins (the handler also checks an agent's server); an agent
    gets nothing else, not even what a viewer may read.
    """
    if required == "agent":
        return role in ("agent", "admin")
    if role in ("agent", "none"):
        return required == "public"
    return _RANK[role] >= _RANK[required]
