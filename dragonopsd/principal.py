"""Who is calling: the authenticated principal, and the role ladder routes are checked on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["viewer", "operator", "admin"]
RouteRole = Literal["public", "viewer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin")
_RANK = {"public": 0, "viewer": 1, "operator": 2, "admin": 3}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: an API token or a JWT subject (profile)."""

    kind: Literal["token", "jwt"]
    id: str
    name: str
    role: Role
    expires_at: float | None = None  # Unix time; the websocket hub closes sockets past it

    @property
    def actor(self) -> str:
        """How the audit log names this caller (``token:<id>`` / ``jwt:<sub>``)."""
        return f"{self.kind}:{self.id}"


def allows(role: Role, required: RouteRole) -> bool:
    """True when a caller with role may call a route that requires ``required``."""
    return _RANK[role] >= _RANK[required]
