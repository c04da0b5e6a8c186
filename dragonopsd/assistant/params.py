"""What the prompt and the inventory say about the app: kind, ports, names, TLS, versions.

Every value either comes from the prompt, from the inventory context, or is a default; each
default is written into ``assumed`` so the explanation can say what the file takes for granted.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

from .model import Context

AppKind = Literal["spa", "node", "python", "go", "static"]

DEFAULT_PORTS: dict[AppKind, int] = {
    "spa": 80,
    "static": 80,
    "node": 3000,
    "python": 8000,
    "go": 8080,
}
NODE_VERSION, PYTHON_VERSION, GO_VERSION = "22", "3.12", "1.23"
DEFAULT_RATE = 10  # requests per second per client address, when limiting is asked without one

# (kind, framework as written in docs, pattern); the earliest mention in the prompt wins.
_KINDS: tuple[tuple[AppKind, str, str], ...] = (
    ("spa", "React", r"\breact(?:\.?js)?\b|\bcreate[\s-]react[\s-]app\b"),
    ("spa", "Vue", r"\bvue(?:\.?js)?\b"),
    ("spa", "Angular", r"\bangular\b"),
    ("spa", "Svelte", r"\bsvelte\b"),
    ("spa", "Vite", r"\bvite\b"),
    ("spa", "single-page app", r"\bspa\b|\bsingle[\s-]page\b"),
    ("static", "static site", r"\bstatic (?:site|website|files|html)\b|\bhugo\b|\bjekyll\b"),
    ("node", "Next.js", r"\bnext(?:\.?js)\b"),
    ("node", "NestJS", r"\bnest(?:\.?js)\b"),
    ("node", "Express", r"\bexpress(?:\.?js)?\b"),
    ("node", "Node.js", r"\bnode(?:\.?js)?\b|\bnpm\b|\btypescript api\b"),
    ("python", "Django", r"\bdjango\b"),
    ("python", "Flask", r"\bflask\b"),
    ("python", "FastAPI", r"\bfast ?api\b"),
    ("python", "Python", r"\bpython\b|\bgunicorn\b|\buvicorn\b|\bpip\b"),
    (
        "go",
        "Go",
        r"\bgolang\b|\bgo\s+(?:app|api|service|binary|server|module|program|backend|"
        r"microservice|\d\.\d+)\b|\b(?:in|with|for|using)\s+go\b",
    ),
)
_KIND_RES = tuple((k, name, re.compile(p, re.IGNORECASE)) for k, name, p in _KINDS)

# Names that look like domains but are technologies or file names.
_NOT_DOMAIN = re.compile(
    r"^(?:node|next|vue|nuxt|express|nest|react|d3)\.js$|^socket\.io$|^asp\.net$"
    r"|\.(?:conf|html?|js|ts|json|py|log|ya?ml|txt|sh|md|toml|service|timer|socket|pem|key|crt"
    r"|sql|gz|tar|tgz|zip|env|lock|ini|cfg|xml|csv|php|rb|java|jar|bak|dump|go|rs|d)$"
)
# Starts only where a name can (not inside one): without the look-behind, "a.a.a.…" would
# be tried from every dot, quadratic in the prompt's length.
_DOMAIN = re.compile(
    r"(?<![\w.-])((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24})(?![\w-])", re.I
)
_HOST_PORT = re.compile(
    r"(?<![\w.:-])((?:\d{1,3}\.){3}\d{1,3}|localhost|[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*):"
    r"(\d{2,5})\b",
    re.I,
)
_IPV4 = re.compile(r"(?<![\d.])((?:\d{1,3}\.){3}\d{1,3})(?![\d.:])")
_LISTEN = re.compile(r"\blisten(?:s|ing)?\s+on\s+(?:port\s+)?:?(\d{2,5})(?![\d.:])", re.I)
_PORT = re.compile(r"\b(?:port|expose[sd]?|on)\s+:?(\d{2,5})(?![\d.:])", re.I)
_TLS_OFF = re.compile(
    r"\b(?:no|without|disable[sd]?)\s+(?:tls|ssl|https)\b|\bplain http\b|\bhttp[\s-]only\b", re.I
)
_TLS_ON = re.compile(
    r"\bhttps\b|\btls\b|\bssl\b|\bcertbot\b|\blet'?s ?encrypt\b|\bcertificates?\b", re.I
)
_WEBSOCKET = re.compile(
    r"\bweb[\s-]?sockets?\b|\bwss?://|\bsocket\.io\b|\bws\b|\breal[\s-]?time\b", re.I
)
_REPLICAS = re.compile(
    r"\b(\d{1,3})\s*(?:replicas?|instances|pods|copies)\b|\breplicas?\s*(?:of|=|:)?\s*(\d{1,3})\b",
    re.I,
)
_NODE_V = re.compile(r"\bnode(?:\.?js)?\s*v?(\d{2})\b", re.I)
_PYTHON_V = re.compile(r"\bpython\s*(3\.\d{1,2})\b", re.I)
_GO_V = re.compile(r"\bgo(?:lang)?\s*(1\.\d{1,2})\b", re.I)
_ENV = re.compile(
    r"\b(production|prod|staging|stage|development|dev|qa|testing|preview)\b(?:\s+env)?", re.I
)
_ENV_NAMES = {"prod": "production", "stage": "staging", "dev": "development"}
_RATE = re.compile(
    r"\b(\d{1,5})\s*(?:r/s|rps|req(?:uests)?/s(?:ec)?|requests? (?:per|a|/) ?second)", re.I
)
_RATE_MIN = re.compile(
    r"\b(\d{1,6})\s*(?:r/m|rpm|req(?:uests)?/min|requests? (?:per|a) minute)", re.I
)
_RATE_ASKED = re.compile(r"\brate[\s-]?limit", re.I)
_NAMED = re.compile(r"\b(?:called|named)\s+[\"'`]?([A-Za-z][\w.-]{0,40})", re.I)
_PATH = re.compile(r"(?<![\w.:/])(/(?:[\w.*@-]+/)*[\w.*@-]+/?)")


@dataclass
class Params:
    """Everything a template may need; ``assumed`` lists every default taken."""

    prompt: str
    name: str = "app"
    app: AppKind = "node"
    framework: str = "Node.js"
    kinds: list[AppKind] = field(default_factory=list)
    port: int = 3000
    # "listening on N": the proxy's own port for nginx, the app's for everything else.
    listen_port: int | None = None
    port_is_listen: bool = False  # port came from "listening on": nginx's, not the backend's
    domains: list[str] = field(default_factory=list)
    upstreams: list[tuple[str, int]] = field(default_factory=list)
    # Addresses of the environment's running servers (inventory): backends for a proxy.
    hosts: list[str] = field(default_factory=list)
    tls: bool = False
    websocket: bool = False
    replicas: int | None = None
    node_version: str = NODE_VERSION
    python_version: str = PYTHON_VERSION
    go_version: str = GO_VERSION
    environment: str = "production"
    url: str | None = None
    technologies: list[str] = field(default_factory=list)
    rate_limit: int | None = None
    paths: list[str] = field(default_factory=list)
    assumed: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    # Defaults taken while extracting, by topic ("app", "port", ...): they reach the
    # explanation only when a template says it relied on them (uses()).
    defaults: dict[str, str] = field(default_factory=dict)

    def has(self, pattern: str) -> bool:
        """Whether the prompt matches pattern (case-insensitive)."""
        return re.search(pattern, self.prompt, re.IGNORECASE) is not None

    def assume(self, text: str) -> None:
        """Record a default the file takes for granted."""
        if text not in self.assumed:
            self.assumed.append(text)

    def uses(self, *topics: str) -> None:
        """The template relies on these extracted values: their defaults join ``assumed``."""
        for topic in topics:
            if topic in self.defaults:
                self.assume(self.defaults[topic])

    @property
    def domain(self) -> str:
        """The first domain, or an example one (recorded as assumed)."""
        if self.domains:
            return self.domains[0]
        self.assume("no domain named: using app.example.com")
        return "app.example.com"


def slug(text: str, fallback: str = "app") -> str:
    """A name fit for files, units, images and Kubernetes objects."""
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return out or fallback


def _kinds(text: str) -> list[tuple[int, AppKind, str]]:
    """Kinds of app in order of first mention, each with its most specific framework
    ("a Python FastAPI service" is FastAPI: the table lists frameworks before languages)."""
    first: dict[AppKind, int] = {}
    framework: dict[AppKind, str] = {}
    for kind, name, pattern in _KIND_RES:
        m = pattern.search(text)
        if m:
            first[kind] = min(first.get(kind, m.start()), m.start())
            framework.setdefault(kind, name)
    return sorted(((at, k, framework[k]) for k, at in first.items()), key=lambda f: f[0])


def _domains(prompt: str, upstream_hosts: set[str]) -> list[str]:
    out: list[str] = []
    for m in _DOMAIN.finditer(prompt):
        name = m[1].lower().rstrip(".")
        if _NOT_DOMAIN.search(name) or name in upstream_hosts:
            continue
        before = prompt[max(0, m.start() - 3) : m.start()]
        if prompt[m.end() : m.end() + 1] == ":" or (before.endswith("/") and before != "://"):
            # host:port is an upstream; "/srv/x.example/" is a path, not a domain.
            continue
        if name not in out:
            out.append(name)
    return out


def _upstreams(prompt: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for m in _HOST_PORT.finditer(prompt):
        port = int(m[2])
        dotted = re.fullmatch(r"[\d.]+", m[1]) is not None
        if dotted and not _valid_ipv4(m[1]):
            continue  # 999.1.2.3:80 is neither an address nor a name
        if 0 < port < 65536 and (m[1], port) not in out:
            out.append((m[1].lower(), port))
    return out


def _valid_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _app(p: Params, context: Context) -> None:
    found = _kinds(p.prompt)
    if found:
        p.kinds = list(dict.fromkeys(k for _, k, _ in found))
        _, p.app, p.framework = found[0]
        return
    if p.technologies:
        found = _kinds(" ".join(p.technologies))
        if found:
            p.kinds = list(dict.fromkeys(k for _, k, _ in found))
            _, p.app, p.framework = found[0]
            p.used.append(f"app type {p.framework} from the project's technologies")
            return
    p.kinds = [p.app]
    p.defaults["app"] = f"no app type named: a {p.framework} app"


def _ports(p: Params) -> None:
    listen = _LISTEN.search(p.prompt)
    if listen and 0 < int(listen[1]) < 65536:
        p.listen_port = int(listen[1])
    ports = [int(m[1]) for m in _PORT.finditer(p.prompt) if 0 < int(m[1]) < 65536]
    ports = [x for x in ports if x != p.listen_port]
    if ports:
        p.port = ports[0]
    elif p.listen_port is not None:
        p.port, p.port_is_listen = p.listen_port, True
    elif p.upstreams:
        p.port = p.upstreams[0][1]
    else:
        p.port = DEFAULT_PORTS[p.app]
        if p.app not in ("spa", "static"):
            p.defaults["port"] = f"no port named: the app listens on {p.port}"


def _tls(p: Params) -> None:
    if _TLS_OFF.search(p.prompt):
        p.tls = False
    elif _TLS_ON.search(p.prompt):
        p.tls = True
    elif p.url and p.url.startswith("https://"):
        p.tls = True
        p.used.append(f"TLS because the environment URL {p.url} is https")
    else:
        p.tls = False


def _environment(p: Params, context: Context) -> None:
    env = _ENV.search(p.prompt)
    if env:
        name = env[1].lower()
        p.environment = _ENV_NAMES.get(name, name)
    elif context.environment is not None:
        p.environment = slug(context.environment.name, "production")
    else:
        p.defaults["environment"] = "no environment named: production"


def _name(p: Params, context: Context) -> None:
    named = _NAMED.search(p.prompt)
    if named:
        p.name = slug(named[1])
    elif context.project is not None:
        p.name = slug(context.project.name)
        p.used.append(f"name '{p.name}' from the project {context.project.name!r}")
    elif p.domains:
        p.name = slug(p.domains[0].split(".")[0])
    else:
        p.defaults["name"] = "no name given: the app is called 'app'"


def _versions(p: Params) -> None:
    if m := _NODE_V.search(p.prompt):
        p.node_version = m[1]
    if m := _PYTHON_V.search(p.prompt):
        p.python_version = m[1]
    if m := _GO_V.search(p.prompt):
        p.go_version = m[1]


def _rate(p: Params) -> None:
    if m := _RATE.search(p.prompt):
        p.rate_limit = max(1, int(m[1]))
    elif m := _RATE_MIN.search(p.prompt):
        p.rate_limit = max(1, round(int(m[1]) / 60))
    elif _RATE_ASKED.search(p.prompt):
        p.rate_limit = DEFAULT_RATE
        p.defaults["rate"] = f"rate limit without a figure: {DEFAULT_RATE} requests/s per address"


def _from_inventory(p: Params, context: Context) -> None:
    if context.project is not None:
        p.technologies = list(context.project.technology)
    env = context.environment
    if env is None:
        return
    p.url = env.url
    if not p.domains and env.url:
        host = re.sub(r"^https?://", "", env.url).split("/")[0].split(":")[0].lower()
        if _DOMAIN.fullmatch(host):
            p.domains = [host]
            p.used.append(f"domain {host} from the environment URL")
    p.hosts = [s.private_ip for s in env.servers if s.private_ip and s.status == "running"]


def extract(prompt: str, context: Context) -> Params:
    """Parameters for prompt, with the inventory context filling what the prompt leaves out."""
    p = Params(prompt=prompt)
    p.upstreams = _upstreams(prompt)
    p.upstreams += [
        (ip, 0)
        for ip in _IPV4.findall(prompt)
        if _valid_ipv4(ip) and all(h != ip for h, _ in p.upstreams)
    ]
    p.domains = _domains(prompt, {h for h, _ in p.upstreams})
    p.paths = list(dict.fromkeys(_PATH.findall(prompt)))
    _from_inventory(p, context)
    _app(p, context)
    _ports(p)
    p.upstreams = [(h, port or p.port) for h, port in p.upstreams]
    _tls(p)
    p.websocket = _WEBSOCKET.search(prompt) is not None
    if m := _REPLICAS.search(prompt):
        p.replicas = max(1, min(100, int(m[1] or m[2])))
    _versions(p)
    _environment(p, context)
    _name(p, context)
    _rate(p)
    return p
