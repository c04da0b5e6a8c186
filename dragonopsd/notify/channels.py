"""Channel shapes: the POST body per kind (a tagged union on ``kind``), PATCH, the masked
answer, and the parsed channel the dispatcher routes with.

Credentials (a preset's webhook URL, the generic webhook's signing secret, the SMTP password)
live in ``config``. They leave this module only towards the receiver: answers carry a masked
URL and ``hasSecret``, and every Struct holding one masks it in its repr.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from msgspec import UNSET, UnsetType

from ..model.inventory import Body, FieldError, Name, Wire, masked_service_url, masked_url
from ..model.monitor import Scope
from ..store.notifications import ChannelFields, StoredChannel
from .event import plain
from .refs import SecretLookup, has_refs, ref_name, resolve, stand_ins

if TYPE_CHECKING:
    import apprise

ChannelKind = Literal["webhook", "slack", "discord", "teams", "mattermost", "email", "apprise"]
PRESETS = frozenset({"slack", "discord", "teams", "mattermost"})
RoutedEvent = Literal["down", "up", "certificate"]
ALL_EVENTS: tuple[RoutedEvent, ...] = ("down", "up", "certificate")

HookUrl = Annotated[
    str, msgspec.Meta(max_length=2048, pattern=r"^https?://[^\s/?#]+(?:[/?#]\S*)?$")
]
SigningSecret = Annotated[str, msgspec.Meta(min_length=16, max_length=512, pattern=r"^\S+$")]
Ident = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Idents = Annotated[list[Ident], msgspec.Meta(max_length=1000)]
Hostname = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._\-]+$|^\[[0-9A-Fa-f:.]+\]$"),
]
# Loose on purpose: the SMTP server is the judge; this catches typos and header injection.
Address = Annotated[
    str, msgspec.Meta(max_length=254, pattern=r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
]
Credential = Annotated[str, msgspec.Meta(min_length=1, max_length=512, pattern=r"^[^\r\n]*$")]

_SCOPE_LISTS = ("monitor_ids", "tags", "server_ids", "environment_ids", "project_ids", "client_ids")


class ChannelScope(Body, kw_only=True):
    """Which monitors a channel hears about: ``{"all": true}`` or any listed id or tag."""

    all: bool = False
    monitor_ids: Idents = []
    tags: Idents = []
    server_ids: Idents = []
    environment_ids: Idents = []
    project_ids: Idents = []
    client_ids: Idents = []

    def __post_init__(self) -> None:
        listed = any(getattr(self, name) for name in _SCOPE_LISTS)
        if self.all and listed:
            raise FieldError("$.scope.all", "all: true cannot be combined with ids or tags")
        if not self.all and not listed:
            raise FieldError(
                "$.scope",
                "set all: true or list monitorIds, tags, serverIds, environmentIds, "
                "projectIds or clientIds",
            )


def _check_url(url: str) -> None:
    """The pattern lets through a few shapes no client can use (bad IPv6 brackets, port
    99999): refuse them here rather than at the first delivery."""
    try:
        parts = urllib.parse.urlsplit(url)
        ok = bool(parts.hostname) and (parts.port is None or parts.port > 0)
    except ValueError:
        ok = False
    if not ok:
        raise FieldError("$.config.url", "not a usable http(s) URL")


class WebhookConfig(Body, kw_only=True):
    """Generic webhook: the event as JSON, signed when a secret is set."""

    url: HookUrl
    secret: SigningSecret | None = None

    def __post_init__(self) -> None:
        _check_url(self.url)

    def __repr__(self) -> str:
        return "WebhookConfig(<hidden>)"


class PresetConfig(Body, kw_only=True):
    """Slack, Discord, Teams, Mattermost: the incoming-webhook URL is the credential."""

    url: HookUrl

    def __post_init__(self) -> None:
        _check_url(self.url)

    def __repr__(self) -> str:
        return "PresetConfig(<hidden>)"


class EmailConfig(Body, kw_only=True):
    """SMTP: ``security`` is STARTTLS on the submission port (default), implicit TLS, or none."""

    host: Hostname
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    username: Credential | None = None
    password: Credential | None = None
    sender: Address = msgspec.field(name="from")
    to: Annotated[list[Address], msgspec.Meta(min_length=1, max_length=50)]
    security: Literal["starttls", "tls", "none"] = "starttls"
    verify_tls: bool = True

    def __post_init__(self) -> None:
        if self.password is not None and self.username is None:
            raise FieldError("$.config.username", "required when a password is set")

    def __repr__(self) -> str:
        return f"EmailConfig(host={self.host!r}, port={self.port}, <credentials hidden>)"


# Scheme, "://", then anything without spaces: Apprise itself judges the rest (instantiate).
AppriseUrl = Annotated[
    str,
    msgspec.Meta(min_length=6, max_length=2048, pattern=r"^[A-Za-z][A-Za-z0-9+.\-]{0,31}://\S+$"),
]


def instantiate(url: str) -> apprise.plugins.NotifyBase | None:
    """The Apprise service url names, or None when Apprise cannot use it. No network."""
    # Imported here, on the first Apprise channel built or sent: apprise costs ~25 ms of every
    # start otherwise, for a kind of channel many deployments never have (issue 20).
    import apprise  # noqa: PLC0415

    asset = apprise.AppriseAsset(app_id="dragonopsd", app_desc="dragonopsd")
    found = apprise.Apprise.instantiate(url, asset=asset)
    return found if isinstance(found, apprise.plugins.NotifyBase) else None


class AppriseConfig(Body, kw_only=True):
    """Apprise: one or more service URLs (tgram://, ntfy://, json://, …); each is a credential."""

    urls: Annotated[list[AppriseUrl], msgspec.Meta(min_length=1, max_length=20)]

    def __post_init__(self) -> None:
        for index, url in enumerate(self.urls):
            if instantiate(url) is None:
                raise FieldError(
                    f"$.config.urls[{index}]",
                    "not a URL Apprise can send to (unknown scheme, or a part missing)",
                )

    def __repr__(self) -> str:
        return f"AppriseConfig(<{len(self.urls)} URL(s) hidden>)"


ChannelConfig = WebhookConfig | PresetConfig | EmailConfig | AppriseConfig
Events = Annotated[list[RoutedEvent], msgspec.Meta(min_length=1, max_length=3)]


def _all_scope() -> ChannelScope:
    return ChannelScope(all=True)


class ChannelBody(Body, tag_field="kind", kw_only=True):
    """What every channel body has; the subclasses add the config of their kind."""

    name: Name
    enabled: bool = True
    events: Events = msgspec.field(default_factory=lambda: list(ALL_EVENTS))
    scope: ChannelScope = msgspec.field(default_factory=_all_scope)

    def __post_init__(self) -> None:
        if len(set(self.events)) != len(self.events):
            raise FieldError("$.events", "duplicate event")


class WebhookCreate(ChannelBody, tag="webhook", kw_only=True):
    """A generic webhook channel."""

    config: WebhookConfig


class SlackCreate(ChannelBody, tag="slack", kw_only=True):
    """A Slack incoming webhook."""

    config: PresetConfig


class DiscordCreate(ChannelBody, tag="discord", kw_only=True):
    """A Discord webhook."""

    config: PresetConfig


class TeamsCreate(ChannelBody, tag="teams", kw_only=True):
    """A Microsoft Teams workflow webhook (Adaptive Card)."""

    config: PresetConfig


class MattermostCreate(ChannelBody, tag="mattermost", kw_only=True):
    """A Mattermost incoming webhook."""

    config: PresetConfig


class EmailCreate(ChannelBody, tag="email", kw_only=True):
    """Email over SMTP."""

    config: EmailConfig


class AppriseCreate(ChannelBody, tag="apprise", kw_only=True):
    """Any service Apprise speaks, by URL."""

    config: AppriseConfig


ChannelCreate = (
    WebhookCreate
    | SlackCreate
    | DiscordCreate
    | TeamsCreate
    | MattermostCreate
    | EmailCreate
    | AppriseCreate
)


class ChannelPatch(Body, kw_only=True):
    """PATCH: fields not sent stay; ``config`` merges (RFC 7396), so an omitted secret stays and
    a ``null`` removes an optional one. The kind cannot change."""

    name: Name | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET
    events: Events | UnsetType = UNSET
    scope: ChannelScope | UnsetType = UNSET
    config: dict[str, Any] | UnsetType = UNSET


class ChannelOut(Wire, kw_only=True):
    """A channel as the API shows it: URLs masked past the host, secrets left out.

    ``hasSecret``: a credential is stored (always for presets, whose URL is one; the signing
    secret for webhooks; the password for email).
    """

    id: str
    name: str
    kind: ChannelKind
    enabled: bool
    events: list[RoutedEvent]
    scope: ChannelScope
    config: dict[str, Any]
    has_secret: bool
    managed_by: Literal["api", "config"] = "api"
    created_at: str
    updated_at: str


class ChannelList(Wire, kw_only=True):
    """Every channel."""

    items: list[ChannelOut]


_SECRET_KEYS = ("secret", "password")


def public(row: StoredChannel) -> ChannelOut:
    """The masked view of a stored channel."""
    # A ${secret:NAME} reference names a secret and holds none: shown as written.
    config = {
        k: v for k, v in row.config.items() if k not in _SECRET_KEYS or ref_name(v) is not None
    }
    if isinstance(config.get("url"), str) and ref_name(config["url"]) is None:
        config["url"] = masked_url(config["url"])
    if isinstance(config.get("urls"), list):
        config["urls"] = [u if ref_name(u) else masked_service_url(str(u)) for u in config["urls"]]
    has_secret = (
        row.kind in PRESETS
        or row.kind == "apprise"
        or row.locked
        or any(row.config.get(k) for k in _SECRET_KEYS)
    )
    return ChannelOut(
        id=row.id,
        name=row.name,
        kind=row.kind,  # type: ignore[arg-type]  # validated before it was stored
        enabled=row.enabled,
        events=row.events,  # type: ignore[arg-type]
        scope=msgspec.convert(row.scope, ChannelScope),
        config=config,
        has_secret=has_secret,
        managed_by="config" if row.managed_by == "config" else "api",
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def fields_of(body: ChannelBody) -> ChannelFields:
    """The JSON-ready row a validated body stores."""
    kind = type(body).__struct_config__.tag
    assert isinstance(kind, str)
    return ChannelFields(
        name=body.name,
        kind=kind,
        enabled=body.enabled,
        events=list(body.events),
        scope=msgspec.to_builtins(body.scope),
        config=msgspec.to_builtins(body.config),  # type: ignore[attr-defined]
    )


@dataclass(frozen=True)
class Channel:
    """A channel as the dispatcher routes and delivers it."""

    id: str
    name: str
    kind: ChannelKind
    events: frozenset[str]
    scope: ChannelScope
    config: ChannelConfig = field(repr=False)
    _sets: tuple[frozenset[str], ...] = field(default=(), repr=False, compare=False)
    # A channel whose credentials are ${secret:NAME} references (from the config file) keeps
    # its row: each delivery reads the secrets and parses it again (``resolved``).
    _row: StoredChannel | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, row: StoredChannel) -> Channel:
        """Validate a stored row (msgspec.ValidationError / FieldError if it no longer fits);
        references stand in for values of their shape until ``resolved``."""
        refs = has_refs(row.config)
        doc = {
            "kind": row.kind,
            "name": row.name,
            "events": row.events,
            "scope": row.scope,
            "config": stand_ins(row.config) if refs else row.config,
        }
        body: ChannelBody = msgspec.convert(doc, ChannelCreate)
        sets = tuple(frozenset(getattr(body.scope, name)) for name in _SCOPE_LISTS)
        return cls(
            id=row.id,
            name=row.name,
            kind=row.kind,  # type: ignore[arg-type]
            events=frozenset(body.events),
            scope=body.scope,
            config=body.config,  # type: ignore[attr-defined]
            _sets=sets,
            _row=row if refs else None,
        )

    async def resolved(self, lookup: SecretLookup | None) -> Channel:
        """This channel with its secrets read (itself when it names none): SecretMissing naming
        the secret, or ValidationError / FieldError when a value does not fit its field."""
        if self._row is None:
            return self
        config = await resolve(self._row.config, lookup)
        return Channel.parse(msgspec.structs.replace(self._row, config=config))

    def wants(self, event: str, where: Scope) -> bool:
        """True when this channel routes event for a monitor sitting at ``where``."""
        if event not in self.events:
            return False
        if self.scope.all:
            return True
        monitors, tags, servers, environments, projects, clients = self._sets
        return (
            where.monitor_id in monitors
            or not tags.isdisjoint(where.tags)
            or where.server_id in servers
            or where.environment_id in environments
            or where.project_id in projects
            or where.client_id in clients
        )


def one_line(text: str, limit: int = 200) -> str:
    """Control characters folded to spaces and length capped: safe in a header or log line."""
    flat = plain(text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
