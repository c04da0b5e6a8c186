"""Daemon configuration: a tree of frozen Structs decoded from TOML plus DRAGONOPS_* overrides.

Every problem is reported as ``key: message`` so `dragonopsd check-config` can list them all at
once instead of making the operator fix one typo per restart.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from .check import check_keys
from .env import apply_env

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Origin = Annotated[str, msgspec.Meta(pattern=r"^(\*|https?://[^/\s]+)$")]
ProxyNetwork = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config table.

    frozen: a loaded config is a value that services may share without copying.
    forbid_unknown_fields: a misspelt key is an error, never a silently ignored setting.
    """


class ServerConfig(Section, frozen=True):
    """[server]: where the HTTP API listens and what it accepts."""

    host: Annotated[str, msgspec.Meta(min_length=1)] = "127.0.0.1"
    port: Port = 8750
    cors_origins: list[Origin] = []
    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024, le=256 * 1024 * 1024)] = 1024 * 1024
    shutdown_timeout: Annotated[float, msgspec.Meta(ge=0, le=300)] = 10.0
    # Slow clients: a request head must arrive whole within header_timeout (from connecting, or
    # from its first byte); an idle keep-alive connection closes after keepalive_timeout.
    header_timeout: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0
    keepalive_timeout: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 75.0
    max_connections_per_address: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 256
    max_websockets_per_principal: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 20
    max_websockets_per_address: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 50
    # The per-address caps skip these: a reverse proxy on this host speaks for many clients.
    per_address_exempt: list[Cidr] = msgspec.field(
        default_factory=lambda: ["127.0.0.0/8", "::1/128"]
    )

    # Peers whose X-Forwarded-For / X-Real-IP / X-Forwarded-Proto are believed (a reverse
    # proxy on this host: ["127.0.0.1/32", "::1/128"]). Empty: the TCP peer is the client.
    trusted_proxies: Annotated[list[ProxyNetwork], msgspec.Meta(max_length=256)] = []

    def __post_init__(self) -> None:
        for cidr in self.per_address_exempt:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"server.per_address_exempt: {cidr!r} is not a network") from None
        for text in self.trusted_proxies:
            try:
                ipaddress.ip_network(text)
            except ValueError as exc:
                raise ValueError(f"server.trusted_proxies: {text!r}: {exc}") from None


class StorageConfig(Section, frozen=True):
    """[storage]: the SQLite database, or PostgreSQL when url is set (several cores)."""

    state_dir: str = ""
    # Empty: the SQLite file at path. "postgresql://user@host:5432/dbname": PostgreSQL; the
    # password comes from the URL, password_file, PGPASSWORD or ~/.pgpass (as libpq finds it).
    url: Annotated[str, msgspec.Meta(pattern=r"^$|^postgres(ql)?://")] = ""
    password_file: str = ""
    pool_size: Annotated[int, msgspec.Meta(ge=1, le=200)] = 10
    path: Annotated[str, msgspec.Meta(min_length=1)] = "dragonops.db"
    synchronous: Literal["normal", "full"] = "full"
    busy_timeout_ms: Annotated[int, msgspec.Meta(ge=0, le=600_000)] = 5000
    readers: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2


class RedisConfig(Section, frozen=True):
    """[redis]: empty url keeps cache and bus in-process."""

    url: Annotated[str, msgspec.Meta(pattern=r"^$|^(redis|rediss|unix)://")] = ""
    # Every key and channel starts with "<prefix>:", so deployments can share one server.
    prefix: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.\-]{1,64}$")] = "dragonops"
    # true: /readyz answers 503 while Redis is away (a load balancer takes the core out).
    required: bool = False
    connect_timeout: Annotated[float, msgspec.Meta(gt=0, le=60)] = 2.0
    # A job, result or action pending this long with a silent consumer is claimed by another.
    claim_idle: Annotated[float, msgspec.Meta(ge=1, le=3600)] = 15.0
    # Entries kept per stream (approximate MAXLEN): bounds Redis memory when nobody consumes.
    stream_maxlen: Annotated[int, msgspec.Meta(ge=100, le=10_000_000)] = 100_000


class ClusterConfig(Section, frozen=True):
    """[cluster]: the cores that share one database and one Redis prefix (on with [redis] url)."""

    # This core's name among the others ("" = host:port of [server]).
    node: Annotated[str, msgspec.Meta(pattern=r"^$|^[A-Za-z0-9_.:\-]{1,128}$")] = ""
    # Seconds without a heartbeat after which a core is gone and its monitors move.
    dead_after: Annotated[float, msgspec.Meta(ge=2, le=600)] = 10.0


class LogConfig(Section, frozen=True):
    """[log]: level and line format (json for log shippers)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["text", "json"] = "text"


Role = Literal["none", "viewer", "operator", "admin"]
JwksAlgorithm = Literal["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "EdDSA"]


class AuthConfig(Section, frozen=True):
    """[auth]: API tokens are always on; JWTs (Supabase-compatible) when a secret or JWKS is set."""

    jwt_secret: str = ""
    jwks_url: Annotated[str, msgspec.Meta(pattern=r"^$|^https?://")] = ""
    jwks_algorithms: Annotated[list[JwksAlgorithm], msgspec.Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: ["ES256", "RS256"]
    )
    issuer: str = ""
    audience: str = "authenticated"
    leeway: Annotated[float, msgspec.Meta(ge=0, le=600)] = 30.0
    default_role: Role = "viewer"
    admin_token_file: Annotated[str, msgspec.Meta(min_length=1)] = "admin.token"
    failure_limit: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 10
    failure_window: Annotated[float, msgspec.Meta(ge=1, le=86_400)] = 60.0


DEFAULT_KEY_FILE = "secrets.key"


class SecretsConfig(Section, frozen=True):
    """[secrets]: where the AES-256-GCM key ring lives (or DRAGONOPS_SECRETS_KEYS).

    Empty: ``secrets.key`` in the state directory, created on first start. A file named here
    is the operator's: when it is missing no key is made in its place.
    """

    key_file: str = ""


class AuditConfig(Section, frozen=True):
    """[audit]: how long the audit log is kept."""

    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36_500)] = 90


Cidr = Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Fa-f:.]+/\d{1,3}$")]


class ProbesConfig(Section, frozen=True):
    """[probes]: how the probe engine behaves and what it may reach."""

    concurrency: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 512
    allow_metadata: bool = False
    deny_cidrs: list[Cidr] = []
    user_agent: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "dragonopsd"
    flap_window: Annotated[int, msgspec.Meta(ge=0, le=100)] = 10
    flap_threshold: Annotated[int, msgspec.Meta(ge=2, le=100)] = 6

    def __post_init__(self) -> None:
        # The pattern lets "10.0.0.0/40" through; refuse it here, where check-config sees it,
        # rather than when the guard is built at start or on a reload.
        for cidr in self.deny_cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"probes.deny_cidrs: {cidr!r} is not a network") from None


class HistoryConfig(Section, frozen=True):
    """[history]: batching and retention of heartbeats and their rollups."""

    flush_interval: Annotated[float, msgspec.Meta(ge=0.05, le=10)] = 1.0
    flush_rows: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 1000
    raw_hours: Annotated[int, msgspec.Meta(ge=1, le=8760)] = 48
    five_minute_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 14
    hourly_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 400


class SamplingConfig(Section, frozen=True):
    """[sampling]: server resource samples (simulated, this host, or agent pushes) and history."""

    interval: Annotated[float, msgspec.Meta(ge=0.05, le=3600)] = 5.0
    environment_update_interval: Annotated[float, msgspec.Meta(ge=0.1, le=86_400)] = 30.0
    raw_hours: Annotated[int, msgspec.Meta(ge=1, le=8760)] = 24
    minute_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 30
    hourly_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 365


class ActionsConfig(Section, frozen=True):
    """[actions]: how server actions (restart / stop / start) are carried out."""

    executor: Literal["simulated", "webhook"] = "simulated"
    workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    duration_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 3.0
    failure_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.0
    webhook_url: Annotated[str, msgspec.Meta(pattern=r"^$|^https?://\S+$")] = ""
    webhook_timeout: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    webhook_secret: str = ""

    def __post_init__(self) -> None:
        if self.executor == "webhook" and not self.webhook_url:
            raise ValueError("actions.executor = 'webhook' needs actions.webhook_url")


# "host:port" or "[v6 address]:port"; empty: off.
Listen = Annotated[str, msgspec.Meta(pattern=r"^$|^(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]/]+):\d{1,5}$")]


class MetricsConfig(Section, frozen=True):
    """[metrics]: the Prometheus endpoint, /metrics.

    With a token, scrapes must send it as a bearer token. With listen ("host:port"), /metrics
    is served on that address only, apart from the API (the API port answers 404 for it).
    """

    token: str = ""
    listen: Listen = ""

    def __post_init__(self) -> None:
        if self.listen and int(self.listen.rsplit(":", 1)[1]) > 65535:
            raise ValueError("metrics.listen: port must be 0-65535")


Slug = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
# A monitor named by its id or its name (names are what a config file knows).
MonitorRef = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
PageTitle = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class StatusPageSpec(Section, frozen=True):
    """[[status_page.pages]]: one more public page, at /status/<slug>."""

    slug: Slug
    title: PageTitle
    monitors: Annotated[list[MonitorRef], msgspec.Meta(max_length=500)] = []


class StatusPageConfig(Section, frozen=True):
    """[status_page]: the public page at /status, and more at /status/<slug>.

    Only the monitors listed are shown, with name, status and uptime: never their targets.
    """

    title: PageTitle = "Service status"
    monitors: Annotated[list[MonitorRef], msgspec.Meta(max_length=500)] = []
    pages: list[StatusPageSpec] = []
    cache_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 60.0

    def __post_init__(self) -> None:
        slugs = [p.slug for p in self.pages]
        if len(slugs) != len(set(slugs)):
            raise ValueError("status_page.pages: each slug may appear once")


# A secret's key, or "env/key" for a secret outside the "default" env.
SecretName = Annotated[
    str,
    msgspec.Meta(pattern=r"^$|^([A-Za-z0-9][A-Za-z0-9_.-]{0,63}/)?[A-Za-z_][A-Za-z0-9_.-]{0,127}$"),
]


class IncidentsConfig(Section, frozen=True):
    """[incidents]: what happens to an incident while it stays open. (Not [notifications]:
    that name is the config-as-code [[notifications]] channel list.)"""

    # Seconds between repeats of an incident's notification while it stays open and nobody
    # acknowledged it (POST /api/incidents/{id}/acknowledge); 0: no repeats.
    repeat_interval: Annotated[float, msgspec.Meta(ge=0, le=7 * 86_400)] = 0.0


class AiConfig(Section, frozen=True):
    """[ai]: the infrastructure assistant (POST /api/ai/generate).

    "offline" answers from the built-in templates; "openai" asks an OpenAI-compatible server
    first and answers from the templates when it fails.
    """

    provider: Literal["offline", "openai"] = "offline"
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] = "gpt-4o-mini"
    base_url: Annotated[str, msgspec.Meta(pattern=r"^$|^https?://\S+$")] = ""
    api_key: str = ""
    api_key_secret: SecretName = ""
    timeout: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    max_tokens: Annotated[int, msgspec.Meta(ge=64, le=128_000)] = 2000
    rate_limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 10


class Config(Section, frozen=True):
    """The whole configuration file."""

    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    redis: RedisConfig = RedisConfig()
    cluster: ClusterConfig = ClusterConfig()
    log: LogConfig = LogConfig()
    auth: AuthConfig = AuthConfig()
    secrets: SecretsConfig = SecretsConfig()
    audit: AuditConfig = AuditConfig()
    probes: ProbesConfig = ProbesConfig()
    history: HistoryConfig = HistoryConfig()
    actions: ActionsConfig = ActionsConfig()
    sampling: SamplingConfig = SamplingConfig()
    ai: AiConfig = AiConfig()
    metrics: MetricsConfig = MetricsConfig()
    status_page: StatusPageConfig = StatusPageConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    # [[monitors]] tables, validated as MonitorSpec by the monitoring layer (config sits below
    # the model, so it keeps them as plain tables).
    monitors: list[dict[str, Any]] = []
    # [[alert_rules]] tables, validated as AlertRuleSpec by the monitoring layer, like monitors.
    alert_rules: list[dict[str, Any]] = []
    # [[maintenance]] windows and [[notifications]] channels, synced like [[monitors]]
    # (validated by monitoring/declared.py).
    maintenance: list[dict[str, Any]] = []
    notifications: list[dict[str, Any]] = []

    def state_dir(self) -> Path:
        """The directory every relative path in the config resolves against."""
        if self.storage.state_dir:
            return Path(self.storage.state_dir)
        return Path(os.environ.get("STATE_DIRECTORY", "").split(":")[0] or "var")

    def resolve(self, path: str) -> Path:
        """Resolve a configured path against the state directory."""
        p = Path(path)
        return p if p.is_absolute() else self.state_dir() / p

    def key_file(self) -> Path:
        """The secrets key file: [secrets] key_file, else secrets.key in the state directory."""
        return self.resolve(self.secrets.key_file or DEFAULT_KEY_FILE)


SECTIONS: dict[str, type[Section]] = {
    "server": ServerConfig,
    "storage": StorageConfig,
    "redis": RedisConfig,
    "cluster": ClusterConfig,
    "log": LogConfig,
    "auth": AuthConfig,
    "secrets": SecretsConfig,
    "audit": AuditConfig,
    "probes": ProbesConfig,
    "history": HistoryConfig,
    "actions": ActionsConfig,
    "sampling": SamplingConfig,
    "ai": AiConfig,
    "metrics": MetricsConfig,
    "status_page": StatusPageConfig,
    "incidents": IncidentsConfig,
}


class ConfigError(Exception):
    """Raised with every problem found, each as ``key: message``."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def from_mapping(raw: dict[str, Any], env: Mapping[str, str] | None = None) -> Config:
    """Validate a decoded TOML document (plus env overrides) into a Config, or raise ConfigError."""
    problems: list[str] = []
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    origins = apply_env(raw, os.environ if env is None else env, SECTIONS, problems)
    check_keys(raw, SECTIONS, origins, problems)
    if problems:
        raise ConfigError(problems)
    try:
        return msgspec.convert(raw, Config)
    except msgspec.ValidationError as exc:  # cross-key problems the per-key pass cannot see
        raise ConfigError([str(exc).split(" - at `", 1)[0]]) from exc


def load(path: Path | None, env: Mapping[str, str] | None = None) -> Config:
    """Load the config file (None: built-in defaults) and apply DRAGONOPS_<SECTION>__<KEY>."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError([f"{path}: file not found"]) from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: TOML syntax: {exc}"]) from exc
    return from_mapping(raw, env)


def with_overrides(cfg: Config, **sections: dict[str, Any]) -> Config:
    """Return cfg with some keys replaced (CLI flags win over file and env)."""
    changes = {
        name: msgspec.structs.replace(getattr(cfg, name), **values)
        for name, values in sections.items()
        if values
    }
    return msgspec.structs.replace(cfg, **changes)
