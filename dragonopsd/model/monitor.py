"""Monitor Structs: what to check, how often, and what counts as up (camelCase on the wire).

One flat shape for every kind keeps storage and the API simple; ``__post_init__`` checks that
the fields a kind needs are present and that the others are absent, naming the field.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
import uuid
from typing import Annotated, Literal, get_args

import msgspec

from .inventory import MASK, Body, Description, FieldError, Name, Tags, Wire
from .principal import Role, allows
from .schedule import Cron, Duration, TimeZone, schedule_problem, seconds

MonitorKind = Literal[
    "http",
    "tcp",
    "dns",
    "icmp",
    "tls",
    "push",
    "postgres",
    "mysql",
    "redis",
    "mqtt",
    "amqp",
    "websocket",
    "grpc",
]
KINDS: tuple[str, ...] = get_args(MonitorKind)
HttpMethod = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
RecordType = Literal["A", "AAAA", "CNAME", "MX", "NS", "TXT", "SOA", "SRV", "PTR", "CAA"]
MonitorStatus = Literal["up", "down", "pending", "maintenance", "paused"]
STATUSES: tuple[str, ...] = ("up", "down", "pending", "maintenance", "paused")
ManagedBy = Literal["api", "config"]

Seconds = Annotated[float, msgspec.Meta(ge=1, le=86_400)]
Timeout = Annotated[float, msgspec.Meta(gt=0, le=300)]
Host = Annotated[
    str, msgspec.Meta(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:\-\[\]]+$")
]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
# http(s) for http monitors, ws(s) for websocket monitors; check_kind_fields picks per kind.
ProbeUrl = Annotated[
    str, msgspec.Meta(max_length=2048, pattern=r"^(https?|wss?)://[^\s/]+(/\S*)?$")
]
Condition = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Location = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
HeaderName = Annotated[str, msgspec.Meta(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")]
HeaderValue = Annotated[str, msgspec.Meta(max_length=4096, pattern=r"^[^\r\n]*$")]
Resolver = Annotated[str, msgspec.Meta(max_length=100)]
# A secret's name in the secrets store: KEY, or env/KEY (see SECRET_REF below).
SecretName = Annotated[
    str,
    msgspec.Meta(
        max_length=193,
        pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}/)?[A-Za-z_][A-Za-z0-9_.-]{0,127}$",
    ),
]
Username = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[^\r\n\x00]*$")]
DbName = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[^\r\n\x00]*$")]
Query = Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
Topic = Annotated[str, msgspec.Meta(min_length=1, max_length=1024, pattern=r"^[^#+\x00]*$")]
QueueName = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\x00]*$")]
Vhost = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[^\x00]*$")]
GrpcService = Annotated[str, msgspec.Meta(max_length=512, pattern=r"^[A-Za-z0-9_.]*$")]
# A timeout nobody set is this, or DEFAULT_TIMEOUT_SHARE of a shorter interval.
DEFAULT_TIMEOUT = 10.0
DEFAULT_TIMEOUT_SHARE = 0.8
DEFAULT_INTERVAL = 60.0

# Fields each kind needs (beyond the common ones) and the ones it may have.
REQUIRED: dict[str, tuple[str, ...]] = {
    "http": ("url",),
    "tcp": ("host", "port"),
    "tls": ("host", "port"),
    "dns": ("host",),
    "icmp": ("host",),
    "push": (),
    "postgres": ("host", "username"),
    "mysql": ("host", "username"),
    "redis": ("host",),
    "mqtt": ("host",),
    "amqp": ("host",),
    "websocket": ("url",),
    "grpc": ("host", "port"),
}
# The port a service kind dials when the monitor names none (the TLS port where it differs).
DEFAULT_PORTS: dict[str, tuple[int, int]] = {
    "postgres": (5432, 5432),
    "mysql": (3306, 3306),
    "redis": (6379, 6379),
    "mqtt": (1883, 8883),
    "amqp": (5672, 5671),
}
_LOGIN = frozenset({"host", "port", "username", "password_secret", "tls", "verify_tls"})
ALLOWED: dict[str, frozenset[str]] = {
    "http": frozenset({"url", "method", "headers", "body", "follow_redirects", "verify_tls"}),
    "tcp": frozenset({"host", "port"}),
    "tls": frozenset({"host", "port", "verify_tls"}),
    "dns": frozenset({"host", "record_type", "resolver"}),
    "icmp": frozenset({"host", "packets"}),
    "push": frozenset({"grace", "cron", "timezone", "max_runtime"}),
    "postgres": _LOGIN | {"database", "query"},
    "mysql": _LOGIN | {"database", "query"},
    "redis": _LOGIN,
    "mqtt": _LOGIN | {"topic", "body"},
    "amqp": _LOGIN | {"vhost", "queue"},
    "websocket": frozenset({"url", "headers", "body", "verify_tls"}),
    # grpcio cannot skip certificate checks, so a grpc monitor has no verifyTls.
    "grpc": frozenset({"host", "port", "tls", "service"}),
}
KIND_FIELDS = frozenset().union(*ALLOWED.values())
# Per kind, the fields it must leave out, sorted: worked out once, not per spec (every stored
# monitor is validated again when the daemon loads it).
FOREIGN: dict[str, tuple[str, ...]] = {
    kind: tuple(sorted(KIND_FIELDS - allowed)) for kind, allowed in ALLOWED.items()
}
# ``${secret:NAME}``: the value of a secret from the secrets store, read at probe time. NAME is
# a key (env "default") or "env/key", as [ai] api_key_secret names one. Allowed in header
# values and in a URL's password (user:${secret:KEY}@host, where NAME cannot hold "/").
SECRET_REF = re.compile(r"\$\{secret:([^}]*)\}")
_SECRET_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}/)?[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_RESOLVER = re.compile(r"^(?P<ip>\[[0-9a-fA-F:.]+\]|[0-9.]+|[0-9a-fA-F:]+)(?::(?P<port>\d{1,5}))?$")


def camel(name: str) -> str:
    """snake_case -> camelCase, for error paths."""
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


class MonitorSpec(Body, kw_only=True):
    """Everything a user sets on a monitor: the POST body, a ``[[monitors]]`` table in the
    config file, and the JSON document stored per monitor. PATCH merges into it (RFC 7396)."""

    name: Name
    kind: MonitorKind
    enabled: bool = True
    # None when not given: 60 s, or nothing for a push monitor on a cron schedule (the two
    # exclude each other, which a default could not tell). Code reads ``period``.
    interval: Seconds | None = None
    # "timeout" on the wire, None when not given: the default then follows the interval, so a
    # PATCH of the interval alone never trips over a timeout the user did not choose. Code
    # reads the ``timeout`` property, the one in force.
    given_timeout: Timeout | None = msgspec.field(default=None, name="timeout")
    retries: Annotated[int, msgspec.Meta(ge=0, le=10)] = 0
    retry_interval: Seconds = 20.0
    failure_threshold: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    conditions: Annotated[list[Condition], msgspec.Meta(max_length=32)] = []
    server_id: uuid.UUID | None = None
    environment_id: uuid.UUID | None = None
    locations: Annotated[list[Location], msgspec.Meta(min_length=1, max_length=16)] = msgspec.field(
        default_factory=lambda: ["local"]
    )
    quorum: Annotated[int, msgspec.Meta(ge=1, le=16)] | None = None
    tags: Tags = []
    description: Description | None = None
    # http
    url: ProbeUrl | None = None
    method: HttpMethod | None = None
    headers: Annotated[dict[HeaderName, HeaderValue], msgspec.Meta(max_length=50)] | None = None
    body: Annotated[str, msgspec.Meta(max_length=65_536)] | None = None
    follow_redirects: bool | None = None
    verify_tls: bool | None = None
    # tcp, tls, dns, icmp
    host: Host | None = None
    port: Port | None = None
    record_type: RecordType | None = None
    resolver: Resolver | None = None
    packets: Annotated[int, msgspec.Meta(ge=1, le=10)] | None = None
    # push: late grace seconds after the expected ping (interval or cron schedule); a run
    # announced by /start is down once it has run maxRuntime without finishing.
    grace: Duration | None = None
    cron: Cron | None = None
    timezone: TimeZone | None = None
    max_runtime: Duration | None = None
    # postgres, mysql, redis, mqtt, amqp: the password is never stored, only the name of a
    # secret in the secrets store that holds it.
    username: Username | None = None
    password_secret: SecretName | None = None
    tls: bool | None = None
    database: DbName | None = None
    query: Query | None = None
    # mqtt: publish body to topic and wait for it back (no body: wait for any message)
    topic: Topic | None = None
    # amqp
    vhost: Vhost | None = None
    queue: QueueName | None = None
    # grpc: the service name asked of grpc.health.v1.Health ("" or absent: the whole server)
    service: GrpcService | None = None

    def __post_init__(self) -> None:
        check_kind_fields(self)

    @property
    def period(self) -> float:
        """Seconds between checks (between expected pushes): the interval given, else 60."""
        return DEFAULT_INTERVAL if self.interval is None else self.interval

    @property
    def timeout(self) -> float:
        """Seconds one probe may take: the one given, else min(10 s, 0.8 x interval)."""
        if self.given_timeout is not None:
            return self.given_timeout
        return round(min(DEFAULT_TIMEOUT, DEFAULT_TIMEOUT_SHARE * self.period), 3)

    @property
    def grace_seconds(self) -> float:
        """Seconds a push may come after its expected time before the monitor is late."""
        return seconds(self.grace) or 0.0

    @property
    def max_runtime_seconds(self) -> float | None:
        """Seconds a run started by /start may take, or None for no limit."""
        return seconds(self.max_runtime)


def check_kind_fields(spec: MonitorSpec, prefix: str = "$") -> None:
    """Required fields present, foreign fields absent, cross-field rules; FieldError otherwise."""
    for name in REQUIRED[spec.kind]:
        if getattr(spec, name) is None:
            raise FieldError(f"{prefix}.{camel(name)}", f"required for kind {spec.kind}")
    for name in FOREIGN[spec.kind]:
        if getattr(spec, name) is not None:
            raise FieldError(f"{prefix}.{camel(name)}", f"not used by kind {spec.kind}")
    if spec.given_timeout is not None and spec.given_timeout > spec.period:
        raise FieldError(
            f"{prefix}.timeout",
            f"must not exceed interval ({spec.period:g} s); leave it out for the default, "
            "min(10 s, 0.8 x interval)",
        )
    if spec.resolver is not None:
        m = _RESOLVER.match(spec.resolver)
        try:
            if m is None:
                raise ValueError
            ipaddress.ip_address(m["ip"].strip("[]"))
            if m["port"] is not None and not 1 <= int(m["port"]) <= 65535:
                raise ValueError
        except ValueError:
            raise FieldError(f"{prefix}.resolver", "expected IP or IP:port") from None
    _check_secret_refs(spec, prefix)
    if spec.url is not None:
        ws = spec.url.startswith(("ws://", "wss://"))
        if ws != (spec.kind == "websocket"):
            want = "ws:// or wss://" if spec.kind == "websocket" else "http:// or https://"
            raise FieldError(f"{prefix}.url", f"kind {spec.kind} takes a {want} URL")
    if spec.password_secret is not None and spec.username is None and spec.kind != "redis":
        # Redis alone has a password without a user (AUTH password, the default user).
        raise FieldError(f"{prefix}.username", "required with passwordSecret")
    if problem := schedule_problem(
        spec.interval, spec.cron, spec.timezone, spec.grace, spec.max_runtime
    ):
        raise FieldError(f"{prefix}.{problem[0]}", problem[1])
    if spec.quorum is not None and spec.quorum > len(spec.locations):
        raise FieldError(f"{prefix}.quorum", "cannot exceed the number of locations")
    if len(set(spec.locations)) != len(spec.locations):
        raise FieldError(f"{prefix}.locations", "duplicate location")


def _check_names(text: str, path: str) -> None:
    for name in SECRET_REF.findall(text):
        if not _SECRET_NAME.match(name):
            raise FieldError(path, f"${{secret:{name}}} does not name a secret (KEY or env/KEY)")


def _check_secret_refs(spec: MonitorSpec, prefix: str) -> None:
    """References name secrets, and sit only where the probe resolves them."""
    for header, value in (spec.headers or {}).items():
        _check_names(value, f"{prefix}.headers.{header}")
    if spec.url is not None and "${secret:" in spec.url:
        parts = urllib.parse.urlsplit(spec.url)
        userinfo, _, _ = parts.netloc.rpartition("@")
        _, _, password = userinfo.partition(":")
        everywhere, in_password = spec.url.count("${secret:"), password.count("${secret:")
        if everywhere != in_password or len(SECRET_REF.findall(password)) != in_password:
            raise FieldError(
                f"{prefix}.url",
                "a ${secret:…} reference may only stand in the password of user:password@",
            )
        _check_names(password, f"{prefix}.url")
    if spec.body is not None and SECRET_REF.search(spec.body):
        raise FieldError(
            f"{prefix}.body", "${secret:…} references work in headers and the URL password only"
        )


class Monitor(Wire, kw_only=True):
    """A monitor as the API returns it: its spec plus identity, push token and latest state."""

    id: str
    name: str
    kind: MonitorKind
    enabled: bool
    interval: float | None  # None for a push monitor on a cron schedule
    timeout: float
    retries: int
    retry_interval: float
    failure_threshold: int
    conditions: list[str]
    server_id: str | None = None
    environment_id: str | None = None
    locations: list[str]
    quorum: int | None = None
    tags: list[str]
    description: str | None = None
    url: str | None = None
    method: str | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    follow_redirects: bool | None = None
    verify_tls: bool | None = None
    host: str | None = None
    port: int | None = None
    record_type: str | None = None
    resolver: str | None = None
    packets: int | None = None
    grace: float | None = None
    cron: str | None = None
    timezone: str | None = None
    max_runtime: float | None = None
    username: str | None = None
    password_secret: str | None = None
    tls: bool | None = None
    database: str | None = None
    query: str | None = None
    topic: str | None = None
    vhost: str | None = None
    queue: str | None = None
    service: str | None = None
    push_token: str | None = None
    managed_by: ManagedBy = "api"
    status: MonitorStatus = "pending"
    created_at: str
    updated_at: str


def viewer_url(url: str) -> str:
    """url with its userinfo and every query value replaced by the mask: what a viewer sees."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{k}={MASK}" if v else k
        for k, _, v in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def masked(monitor: Monitor) -> Monitor:
    """The monitor as someone below operator sees it: no credential it may hold.

    URL userinfo and query values, every header value (Authorization, API keys), the request
    body and the push token (which lets anyone report the monitor up) become the mask.
    """
    return msgspec.structs.replace(
        monitor,
        url=viewer_url(monitor.url) if monitor.url else monitor.url,
        headers={k: MASK for k in monitor.headers} if monitor.headers else monitor.headers,
        body=MASK if monitor.body else monitor.body,
        username=MASK if monitor.username else monitor.username,
        push_token=MASK if monitor.push_token else monitor.push_token,
    )


def shown_to(role: Role, monitor: Monitor) -> Monitor:
    """monitor as a caller with role may read it: whole for operators and admins."""
    return monitor if allows(role, "operator") else masked(monitor)


def spec_of(monitor: Monitor) -> MonitorSpec:
    """The user-settable part of a monitor (round-trips through the wire shape)."""
    names = {f.encode_name for f in msgspec.structs.fields(MonitorSpec)}
    wire = msgspec.to_builtins(monitor)
    return msgspec.convert({k: v for k, v in wire.items() if k in names}, MonitorSpec)


class Scope(msgspec.Struct, frozen=True):
    """Where a monitor sits: maintenance windows and notification routes select on this."""

    monitor_id: str
    tags: tuple[str, ...] = ()
    server_id: str | None = None
    environment_id: str | None = None
    project_id: str | None = None
    client_id: str | None = None


# Heartbeat status codes as stored in history (compact ints, not strings).
STATUS_CODES: dict[str, int] = {"down": 0, "up": 1, "pending": 2, "maintenance": 3}
