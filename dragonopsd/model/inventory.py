"""Entity Structs shared by the store, the API and events (camelCase on the wire).

Each aggregate has three shapes: the stored entity (what GET returns), ``*Create`` (POST body)
and ``*Patch`` (PATCH body, ``UNSET`` marks fields not sent).
"""

from __future__ import annotations

import ipaddress
import urllib.parse
import uuid
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

# Text that ends up on one line of a mail header or body, a chat message or a log: no control
# characters (C0, DEL, C1, U+2028/U+2029), and something besides spaces.
_NO_CONTROL = r"[^\x00-\x1f\x7f-\x9f\u2028\u2029]"
ONE_LINE = rf"^{_NO_CONTROL}*[^\s\x00-\x1f\x7f-\x9f\u2028\u2029]{_NO_CONTROL}*$"
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=ONE_LINE)]
_PATTERN_WORDS = {
    "Expected `str` matching regex '\\S'": "Must not be blank",
    f"Expected `str` matching regex {ONE_LINE!r}": (
        "Must not be blank or contain control characters (line breaks, tabs)"
    ),
}
Description = Annotated[str, msgspec.Meta(max_length=4000)]
Tag = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=50)]
Technology = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Url = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^https?://[^\s/]+(/\S*)?$")]
ServerType = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
MASK = "****"  # what stands in for a credential in an answer
Resources = Annotated[dict[str, Any], msgspec.Meta(max_length=100)]

ClientStatus = Literal["active", "inactive", "archived"]
ProjectStatus = Literal["active", "paused", "completed", "archived"]
EnvironmentStatus = Literal["active", "degraded", "maintenance", "archived"]
ServerStatus = Literal[
    "provisioning",
    "running",
    "starting",
    "stopping",
    "stopped",
    "restarting",
    "unreachable",
    "maintenance",
]
# Where a server's resource samples come from: a deterministic simulation, this host's /proc,
# or `dragonopsd agent` pushing from the server itself.
Sampling = Literal["simulated", "local", "agent"]


class FieldError(Exception):
    """A field that decoded but is not valid; carries its JSON path so the 422 can name it.

    Deliberately not a ValueError: msgspec would wrap that and lose the path.
    """

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} - at `{path}`")
        self.path = path
        self.message = message


def in_words(message: str) -> str:
    """msgspec's message for a value that failed one of our patterns, said in words (it would
    show the raw regex); any other message unchanged."""
    return _PATTERN_WORDS.get(message, message)


def masked_url(url: str) -> str:
    """``https://hooks.slack.com/****``: scheme and host only (never userinfo, path or query)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}/{MASK}"


# Apprise schemes whose host is a server the user names (self-hosted services and the generic
# json/form/xml posts): showing that host helps and gives nothing away. For the others the
# "host" is often the token itself (tgram://<bot token>/...), so only the scheme is shown.
_HOSTED = ("json", "form", "xml", "gotify", "apprise", "hassio", "mmost", "rocket", "ncloud")
HOSTED_SCHEMES = frozenset(f"{name}{s}" for name in (*_HOSTED, "nctalk") for s in ("", "s"))


def masked_service_url(url: str) -> str:
    """An Apprise URL as an answer shows it: ``tgram://****``, ``json://hooks.lan:8080/****``."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower() if sep and scheme.isascii() and scheme.isalnum() else "?"
    if scheme in HOSTED_SCHEMES:
        try:
            return masked_url(url)
        except ValueError:
            pass
    return f"{scheme}://{MASK}"


def public_url(url: str) -> str:
    """url as safe to show or send on: scheme, host, port and path only.

    Userinfo (``user:password@``) is a credential by definition, and query strings and
    fragments often carry one (``?token=``, ``#access_token=``), so all three are dropped.
    """
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        return ""  # not a URL anything could use; showing it could only leak it
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_ip(value: str | UnsetType | None, path: str) -> None:
    """privateIp must be an IPv4 or IPv6 address (no prefix, no hostname)."""
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise FieldError(path, "Expected an IPv4 or IPv6 address") from None


class Wire(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=False):
    """Base of every API shape: camelCase names on the wire."""


class Body(Wire, forbid_unknown_fields=True, kw_only=True):
    """Base of request bodies: an unknown field is a 422, never silently dropped."""


class Entity(Wire, kw_only=True):
    """Fields every stored entity has."""

    id: str
    name: str
    description: str | None = None
    tags: list[str] = []
    created_at: str
    updated_at: str


class Server(Entity, kw_only=True):
    """A physical or virtual machine inside an environment."""

    environment_id: str
    type: str
    status: ServerStatus
    private_ip: str | None = None
    sampling: Sampling = "simulated"


class Environment(Entity, kw_only=True):
    """A deployment stage of a project (Production, Staging, ...)."""

    project_id: str
    status: EnvironmentStatus
    url: str | None = None
    resources: dict[str, Any] = {}
    server_count: int = 0
    servers: list[Server] | UnsetType = UNSET


class Project(Entity, kw_only=True):
    """A client's project with its technology stack."""

    client_id: str
    status: ProjectStatus
    technology: list[str] = []
    environment_count: int = 0
    environments: list[Environment] | UnsetType = UNSET


class Client(Entity, kw_only=True):
    """A paying customer: the root of the inventory."""

    status: ClientStatus
    project_count: int = 0
    projects: list[Project] | UnsetType = UNSET


class ClientCreate(Body, kw_only=True):
    """POST /api/clients."""

    name: Name
    status: ClientStatus = "active"
    description: Description | None = None
    tags: Tags = []


class ClientPatch(Body, kw_only=True):
    """PATCH /api/clients/{id}."""

    name: Name | UnsetType = UNSET
    status: ClientStatus | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET


class ProjectCreate(Body, kw_only=True):
    """POST /api/projects."""

    client_id: uuid.UUID
    name: Name
    status: ProjectStatus = "active"
    technology: Annotated[list[Technology], msgspec.Meta(max_length=50)] = []
    description: Description | None = None
    tags: Tags = []


class ProjectPatch(Body, kw_only=True):
    """PATCH /api/projects/{id}."""

    client_id: uuid.UUID | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    status: ProjectStatus | UnsetType = UNSET
    technology: Annotated[list[Technology], msgspec.Meta(max_length=50)] | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET


class EnvironmentCreate(Body, kw_only=True):
    """POST /api/environments."""

    project_id: uuid.UUID
    name: Name
    status: EnvironmentStatus = "active"
    url: Url | None = None
    resources: Resources = {}
    description: Description | None = None
    tags: Tags = []


class EnvironmentPatch(Body, kw_only=True):
    """PATCH /api/environments/{id}."""

    project_id: uuid.UUID | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    status: EnvironmentStatus | UnsetType = UNSET
    url: Url | UnsetType | None = UNSET
    resources: Resources | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET


class ServerCreate(Body, kw_only=True):
    """POST /api/servers."""

    environment_id: uuid.UUID
    name: Name
    type: ServerType = "vm"
    status: ServerStatus = "running"
    private_ip: str | None = None
    sampling: Sampling = "simulated"
    description: Description | None = None
    tags: Tags = []

    def __post_init__(self) -> None:
        check_ip(self.private_ip, "$.privateIp")


class ServerPatch(Body, kw_only=True):
    """PATCH /api/servers/{id}."""

    environment_id: uuid.UUID | UnsetType = UNSET
    name: Name | UnsetType = UNSET
    type: ServerType | UnsetType = UNSET
    status: ServerStatus | UnsetType = UNSET
    private_ip: str | UnsetType | None = UNSET
    sampling: Sampling | UnsetType = UNSET
    description: Description | UnsetType | None = UNSET
    tags: Tags | UnsetType = UNSET

    def __post_init__(self) -> None:
        check_ip(self.private_ip, "$.privateIp")


class DashboardStats(Wire, kw_only=True):
    """GET /api/stats/dashboard: counts from COUNT queries, cached until the next write."""

    clients: int
    projects: int
    environments: int
    servers: int
    servers_by_status: dict[str, int]
    monitors: dict[str, int] = {}
    health: Annotated[
        float,
        msgspec.Meta(
            description="Percent of the monitors with a verdict (up or down) that are up. "
            "Pending, paused and maintenance monitors do not count; 100 while no monitor "
            "has a verdict yet (none at all, or all still pending on a first start)."
        ),
    ] = 100.0


class InventoryChanged(Wire, kw_only=True):
    """Bus event ``inventory.changed``: which entity changed and how."""

    entity: str
    id: str
    op: Literal["created", "updated", "deleted"]


AnyEntity = Client | Project | Environment | Server
AnyCreate = ClientCreate | ProjectCreate | EnvironmentCreate | ServerCreate
AnyPatch = ClientPatch | ProjectPatch | EnvironmentPatch | ServerPatch
