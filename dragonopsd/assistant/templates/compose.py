"""docker-compose.yaml: the app built from its Dockerfile plus the backing services it names.

Passwords are never written in: each comes from the environment (``.env`` beside the file)
with ``${VAR:?}``, so ``docker compose up`` stops with a message when one is missing.
"""

from __future__ import annotations

import re
from typing import Any

from .. import yamldoc
from ..params import DEFAULT_PORTS, Params
from .rendered import Rendered

Service = dict[str, Any]


def _healthy(names: list[str]) -> dict[str, Any]:
    return {n: {"condition": "service_healthy"} for n in names}


def _postgres(app: str) -> tuple[Service, str]:
    return {
        "image": "postgres:16-alpine",
        "restart": "unless-stopped",
        "environment": {
            "POSTGRES_USER": app,
            "POSTGRES_DB": app,
            "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env}",
        },
        "volumes": ["db-data:/var/lib/postgresql/data"],
        "healthcheck": {
            "test": ["CMD-SHELL", f"pg_isready -U {app} -d {app}"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 5,
        },
    }, f"postgres://{app}:${{POSTGRES_PASSWORD}}@db:5432/{app}"


def _mariadb(app: str) -> tuple[Service, str]:
    return {
        "image": "mariadb:11",
        "restart": "unless-stopped",
        "environment": {
            "MARIADB_USER": app,
            "MARIADB_DATABASE": app,
            "MARIADB_PASSWORD": "${MARIADB_PASSWORD:?set MARIADB_PASSWORD in .env}",
            "MARIADB_RANDOM_ROOT_PASSWORD": "1",
        },
        "volumes": ["db-data:/var/lib/mysql"],
        "healthcheck": {
            "test": ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 5,
        },
    }, f"mysql://{app}:${{MARIADB_PASSWORD}}@db:3306/{app}"


def _mongo(app: str) -> tuple[Service, str]:
    return {
        "image": "mongo:7",
        "restart": "unless-stopped",
        "volumes": ["db-data:/data/db"],
        "healthcheck": {
            "test": ["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping')"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 5,
        },
    }, f"mongodb://db:27017/{app}"


def _redis() -> Service:
    return {
        "image": "redis:7-alpine",
        "restart": "unless-stopped",
        "command": ["redis-server", "--appendonly", "yes"],
        "volumes": ["redis-data:/data"],
        "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "10s", "retries": 5},
    }


def _mentions(p: Params, pattern: str) -> bool:
    """In the prompt or the project's technologies."""
    return re.search(pattern, " ".join([p.prompt, *p.technologies]), re.IGNORECASE) is not None


def _database(p: Params) -> tuple[str, Service, str] | None:
    for pattern, kind, build in (
        (r"\bpostgres(?:ql)?\b|\bpg\b", "PostgreSQL", _postgres),
        (r"\bmysql\b|\bmariadb\b", "MariaDB", _mariadb),
        (r"\bmongo(?:db)?\b", "MongoDB", _mongo),
    ):
        if _mentions(p, pattern):
            service, url = build(p.name)
            return kind, service, url
    return None


def _app_env(p: Params) -> dict[str, Any]:
    if p.app == "python":
        return {"PORT": str(p.port)}
    return {"NODE_ENV": "production", "PORT": str(p.port)} if p.app == "node" else {}


def render(p: Params) -> Rendered:
    """docker-compose.yaml for p: app, database, Redis and nginx as the prompt asks."""
    notes: list[str] = []
    p.uses("app", "port", "name")
    port = p.port if p.app not in ("spa", "static") else DEFAULT_PORTS[p.app]
    app: Service = {"build": ".", "restart": "unless-stopped"}
    env = _app_env(p)
    services: dict[str, Service] = {p.name: app}
    volumes: dict[str, Any] = {}
    needs: list[str] = []
    db = _database(p)
    if db is not None:
        kind, service, url = db
        services["db"] = service
        volumes["db-data"] = {}
        env["DATABASE_URL"] = url
        needs.append("db")
        notes.append(
            f"{kind} keeps its data in the db-data volume; the app waits for it to be "
            "healthy and finds it at DATABASE_URL."
        )
    if _mentions(p, r"\bredis\b|\bcache\b"):
        services["redis"] = _redis()
        volumes["redis-data"] = {}
        env["REDIS_URL"] = "redis://redis:6379/0"
        needs.append("redis")
        notes.append("Redis with append-only persistence in the redis-data volume.")
    if env:
        app["environment"] = env
    if needs:
        app["depends_on"] = _healthy(needs)
    proxy = p.has(r"\bnginx\b|\breverse[\s-]?proxy\b")
    if p.replicas and p.replicas > 1:
        app["deploy"] = {"replicas": p.replicas}
        notes.append(f"{p.replicas} replicas of the app; they share no host port.")
    if proxy:
        services["nginx"] = {
            "image": "nginx:1.27-alpine",
            "restart": "unless-stopped",
            "ports": ["80:80"],
            "volumes": ["./nginx.conf:/etc/nginx/conf.d/default.conf:ro"],
            "depends_on": [p.name],
        }
        app["expose"] = [str(port)]
        notes.append(
            f"nginx publishes port 80 and proxies to {p.name}:{port}; write its "
            "nginx.conf with target nginx."
        )
    elif not (p.replicas and p.replicas > 1):
        app["ports"] = [f"127.0.0.1:{port}:{port}"]
        notes.append(
            f"The app is published on 127.0.0.1:{port} only; put a proxy in front "
            "for the outside world."
        )
    document: dict[str, Any] = {"name": p.name, "services": services}
    if volumes:
        document["volumes"] = volumes
    notes.insert(0, f"The {p.framework} app is built from the Dockerfile in this directory.")
    header = f"{p.name} ({p.environment}): docker compose up -d"
    code = yamldoc.dump(document, header)
    return Rendered(code, "yaml", "compose.yaml", notes)
