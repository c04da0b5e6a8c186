"""nginx server blocks: a single-page app (history fallback, caching) or a reverse proxy.

The file goes into the ``http`` context (``/etc/nginx/sites-available``, ``conf.d``), so zones,
maps and upstreams are named after the app: two generated sites never collide.
"""

from __future__ import annotations

import re

from ..params import DEFAULT_PORTS, AppKind, Params
from .rendered import Rendered

SECURITY_HEADERS = (
    'add_header X-Content-Type-Options "nosniff" always;',
    'add_header X-Frame-Options "SAMEORIGIN" always;',
    'add_header Referrer-Policy "strict-origin-when-cross-origin" always;',
)
HSTS = 'add_header Strict-Transport-Security "max-age=63072000" always;'
GZIP_TYPES = "text/css application/javascript application/json image/svg+xml text/plain text/xml"


def _ident(p: Params) -> str:
    return p.name.replace("-", "_")


def _headers(p: Params, indent: str) -> list[str]:
    # add_header in a location drops the server's; each location that adds one repeats them.
    lines = [*SECURITY_HEADERS, *([HSTS] if p.tls else [])]
    return [indent + h for h in lines]


def _listen(p: Params) -> list[str]:
    if p.tls:
        port = p.listen_port or 443
        return [f"    listen {port} ssl;", f"    listen [::]:{port} ssl;"]
    port = p.listen_port or 80
    return [f"    listen {port};", f"    listen [::]:{port};"]


def _tls(p: Params, domain: str) -> list[str]:
    ident = _ident(p)
    return [
        f"    ssl_certificate /etc/letsencrypt/live/{domain}/fullchain.pem;",
        f"    ssl_certificate_key /etc/letsencrypt/live/{domain}/privkey.pem;",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        f"    ssl_session_cache shared:{ident}_tls:10m;",
        "    ssl_session_timeout 1d;",
        "",
    ]


def _redirect(p: Params, names: str) -> list[str]:
    """Port 80: ACME challenges for certbot, everything else to https."""
    return [
        "server {",
        "    listen 80;",
        "    listen [::]:80;",
        f"    server_name {names};",
        "",
        "    location /.well-known/acme-challenge/ {",
        "        root /var/www/letsencrypt;",
        "    }",
        "    location / {",
        "        return 301 https://$host$request_uri;",
        "    }",
        "}",
        "",
    ]


def _proxy_headers(p: Params, indent: str) -> list[str]:
    lines = [
        f"proxy_pass http://{_ident(p)}_backend;",
        "proxy_http_version 1.1;",
        "proxy_set_header Host $host;",
        "proxy_set_header X-Real-IP $remote_addr;",
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ]
    if p.websocket:
        lines += [
            "proxy_set_header Upgrade $http_upgrade;",
            f"proxy_set_header Connection ${_ident(p)}_connection;",
            "# Websockets stay open; nginx would close an idle one after 60 s.",
            "proxy_read_timeout 1h;",
            "proxy_send_timeout 1h;",
        ]
    else:
        lines.append('proxy_set_header Connection "";  # keepalive to the upstream')
    return [indent + line for line in lines]


def _limit(p: Params, indent: str) -> list[str]:
    if p.rate_limit is None:
        return []
    burst = max(5, p.rate_limit * 2)
    return [
        f"{indent}limit_req zone={_ident(p)}_limit burst={burst} nodelay;",
        f"{indent}limit_req_status 429;",
    ]


def _address(host: str) -> str:
    return f"[{host}]" if ":" in host else host  # IPv6 goes in brackets before the port


def _backends(p: Params) -> list[tuple[str, int]]:
    if p.upstreams:
        return p.upstreams
    port = DEFAULT_PORTS[p.app] if p.port_is_listen else p.port
    if p.hosts and p.app not in ("spa", "static"):
        note = f"upstreams {', '.join(p.hosts)}: the environment's running servers"
        if note not in p.used:
            p.used.append(note)
        return [(host, port) for host in p.hosts]
    if p.app in ("spa", "static") and port in (80, 443):
        # The SPA's own port is nginx's; the API behind it listens elsewhere.
        backend: AppKind = next((k for k in p.kinds if k not in ("spa", "static")), "node")
        port = DEFAULT_PORTS[backend]
        p.assume(f"the API behind /api/ listens on 127.0.0.1:{port}")
    else:
        p.assume(f"the app listens on 127.0.0.1:{port}")
    return [("127.0.0.1", port)]


def _http_context(p: Params, proxied: bool) -> list[str]:
    ident = _ident(p)
    lines: list[str] = []
    if p.rate_limit is not None:
        lines += [
            f"# {p.rate_limit} requests/s per client address, bursts of up to twice that.",
            f"limit_req_zone $binary_remote_addr zone={ident}_limit:10m rate={p.rate_limit}r/s;",
            "",
        ]
    if proxied and p.websocket:
        lines += [
            "# Upgrade requests keep their Connection: upgrade; others get keepalive.",
            f"map $http_upgrade ${ident}_connection {{",
            "    default upgrade;",
            "    ''      '';",
            "}",
            "",
        ]
    if proxied:
        servers = _backends(p)
        lines.append(f"upstream {ident}_backend {{")
        if len(servers) > 1:
            lines.append("    least_conn;")
        lines += [
            f"    server {_address(host)}:{port} max_fails=3 fail_timeout=10s;"
            for host, port in servers
        ]
        lines += ["    keepalive 32;", "}", ""]
    return lines


def _spa_locations(p: Params, proxied: bool) -> list[str]:
    lines = [
        f"    root /var/www/{p.name};",
        "    index index.html;",
        "",
        "    gzip on;",
        f"    gzip_types {GZIP_TYPES};",
        "    gzip_min_length 1024;",
        "",
        "    # Fingerprinted build output (Vite: /assets/, CRA: /static/) never changes.",
        "    location ~ ^/(?:assets|static)/ {",
        "        try_files $uri =404;",
        "        expires 1y;",
        '        add_header Cache-Control "public, immutable";',
        *_headers(p, "        "),
        "        access_log off;",
        "    }",
        "",
        "    # index.html names the current bundles: browsers must revalidate it.",
        "    location = /index.html {",
        '        add_header Cache-Control "no-cache";',
        *_headers(p, "        "),
        "    }",
        "",
    ]
    if proxied:
        lines += [
            "    location /api/ {",
            *_limit(p, "        "),
            *_proxy_headers(p, "        "),
            "    }",
            "",
        ]
    lines += [
        "    # Client-side routes: unknown paths get the app, which renders them.",
        "    location / {",
        *([] if proxied else _limit(p, "        ")),
        "        try_files $uri $uri/ /index.html;",
        "    }",
    ]
    return lines


def _proxy_locations(p: Params) -> list[str]:
    return [
        "    client_max_body_size 10m;",
        "",
        "    location / {",
        *_limit(p, "        "),
        *_proxy_headers(p, "        "),
        "    }",
    ]


def render(p: Params) -> Rendered:
    """A site file for p: SPA/static files when the app is one, else a reverse proxy."""
    spa = p.app in ("spa", "static")
    p.uses("name", "rate", *([] if p.upstreams else ["app"]))
    proxied = not spa or bool(p.upstreams) or len(p.kinds) > 1
    if not p.has(r"\bnginx\b"):
        p.assume("nginx as the reverse proxy")
    names = " ".join(p.domains) if p.domains else p.domain
    domain = names.split()[0]
    lines = [f"# {p.name} ({p.environment}): nginx site for {names}", ""]
    lines += _http_context(p, proxied)
    if p.tls:
        lines += _redirect(p, names)
    lines += ["server {", *_listen(p), f"    server_name {names};", ""]
    if p.tls:
        lines += _tls(p, domain)
    lines += [*_headers(p, "    "), ""]
    lines += _spa_locations(p, proxied) if spa else _proxy_locations(p)
    lines.append("}")
    notes = _notes(p, spa, proxied, domain)
    return Rendered("\n".join(lines) + "\n", "nginx", f"{p.name}.conf", notes)


def _notes(p: Params, spa: bool, proxied: bool, domain: str) -> list[str]:
    notes: list[str] = []
    if spa:
        notes.append(
            f"Serves the {p.framework} build from /var/www/{p.name} with a history fallback "
            "(unknown paths get index.html), a year of caching for fingerprinted assets and "
            "no-cache on index.html."
        )
        if proxied:
            notes.append("Requests under /api/ go to the backend upstream.")
    else:
        backends = _backends(p)
        targets = ", ".join(f"{_address(h)}:{port}" for h, port in backends)
        what = "the app" if "app" in p.defaults else f"the {p.framework} app"
        notes.append(f"Reverse proxy for {what} at {targets}.")
        if any(re.search(r"[a-z]", h) and ":" not in h and h != "localhost" for h, _ in backends):
            notes.append(
                "nginx resolves upstream names once, when it starts: they must resolve on the "
                "proxy host (or use addresses)."
            )
        if len(_backends(p)) > 1:
            notes.append(
                "Several upstreams: least_conn balancing, a server failing 3 times "
                "is skipped for 10 s."
            )
    if p.websocket:
        notes.append("Websocket upgrades are passed through with a one-hour idle timeout.")
    if p.tls:
        notes.append(
            f"TLS with Let's Encrypt paths (certbot certonly --webroot -w /var/www/letsencrypt "
            f"-d {domain}); port 80 only answers ACME challenges and redirects to https."
        )
    else:
        p.assume("no TLS asked for: plain http (add 'with TLS' for https)")
    if p.rate_limit is not None:
        notes.append(f"Rate limited to {p.rate_limit} requests/s per address (429 beyond).")
    notes.append(
        f"Install: copy to /etc/nginx/sites-available/{p.name}.conf, link it into "
        "sites-enabled, then `nginx -t && systemctl reload nginx`."
    )
    return notes
