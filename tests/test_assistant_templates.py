"""Offline assistant: every template, for a range of prompts, passes the real tool for its kind.

The provider is called directly (no app needed: it is pure); the HTTP path has its own tests.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import assistant_validators as check
import pytest

from dragonopsd.assistant.model import (
    Context,
    EnvironmentInfo,
    Generated,
    ProjectInfo,
    ServerInfo,
    Target,
)
from dragonopsd.assistant.offline import OfflineProvider


def generate(
    prompt: str, target: Target | None = None, context: Context | None = None
) -> Generated:
    return OfflineProvider().generate(prompt, target, context or Context())


NGINX = [
    ("Create an Nginx config for a React app", ["try_files $uri $uri/ /index.html", "immutable"]),
    ("nginx for a Vue SPA on shop.example.com with TLS", ["listen 443 ssl", "return 301 https"]),
    (
        "reverse proxy for api.example.com to 10.0.0.5:8080 and 10.0.0.6:8080 with websockets, "
        "TLS and rate limiting 20 r/s",
        ["least_conn", "server 10.0.0.6:8080", "limit_req zone=api_limit", "Upgrade"],
    ),
    ("nginx reverse proxy to a Node app on port 4000, rate limit", ["127.0.0.1:4000", "10r/s"]),
    ("nginx in front of a Django app, listening on 8080", ["listen 8080", "127.0.0.1:8000"]),
    ("nginx for a React frontend with a Go API at localhost:9090", ["location /api/", ":9090"]),
    ("virtual host for static files of docs.example.org", ["root /var/www/docs", "index.html"]),
]


@pytest.mark.parametrize(("prompt", "expected"), NGINX)
def test_nginx_sites_pass_nginx_t(tmp_path: Path, prompt: str, expected: list[str]) -> None:
    out = generate(prompt)
    assert out.target == "nginx" and out.language == "nginx", out
    for text in expected:
        assert text in out.code, (text, out.code)
    check.nginx_t(tmp_path, out.code)


DOCKERFILES = [
    ("Dockerfile for a React app", "COPY --from=build /app/dist"),
    ("Dockerfile for a create-react-app project", "COPY --from=build /app/build"),
    ("containerize my Express API on port 8081 with node 20", "FROM node:20-alpine"),
    ("Dockerfile for a Python FastAPI service on port 9000", '"uvicorn", "main:app"'),
    ("multi-stage Dockerfile for a Django project called shop", "shop.wsgi:application"),
    ("Dockerfile for a Flask app with python 3.11", "FROM python:3.11-slim"),
    ("Dockerfile for a golang service", "distroless/static-debian12:nonroot"),
    ("docker image for a static site", "COPY . /usr/share/nginx/html"),
]


@pytest.mark.parametrize(("prompt", "expected"), DOCKERFILES)
def test_dockerfiles_pass_hadolint(tmp_path: Path, prompt: str, expected: str) -> None:
    out = generate(prompt)
    assert out.target == "dockerfile" and out.filename == "Dockerfile", out
    assert expected in out.code, out.code
    assert re.search(r"^FROM .+ AS build$", out.code, re.M) or "static site" in prompt
    check.hadolint(tmp_path, out.code)


SYSTEMD = [
    "systemd service for my Go binary called billing listening on port 443",
    "systemd unit for a Node.js app on port 3000",
    "run my FastAPI app as a service on boot",
    "systemd unit for a Django app",
    "systemd service for a React app",  # static files: a warning, and a unit all the same
]


@pytest.mark.parametrize("prompt", SYSTEMD)
def test_systemd_units_verify(tmp_path: Path, prompt: str) -> None:
    out = generate(prompt)
    assert out.target == "systemd" and out.filename.endswith(".service"), out
    assert "ProtectSystem=strict" in out.code and "NoNewPrivileges=yes" in out.code
    if "React" in prompt:
        assert any("nginx" in w for w in out.warnings), out.warnings
    check.systemd_verify(tmp_path, out.filename, out.code)


SCRIPTS = [
    "bash script to backup postgres database orders to s3://acme-backups/orders keep 30 days",
    "backup script for a MySQL database nightly",
    "back up the mongodb database called events",
    "backup the sqlite database /var/lib/app/app.db",
    "backup script for the directory /srv/uploads to S3",
    "backup script",
]


@pytest.mark.parametrize("prompt", SCRIPTS)
def test_backup_scripts_pass_shellcheck(tmp_path: Path, prompt: str) -> None:
    out = generate(prompt)
    assert out.target == "backup-script" and out.language == "bash", out
    assert out.code.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in out.code
    assert ("aws s3 cp" in out.code) == ("s3" in prompt.lower()), out.code
    check.shellcheck(tmp_path, out.code)


RULES = [
    ("Prometheus alert rules for CPU above 80% and disk space over 90% for 10 minutes", 2),
    ("alerting rules for high latency over 300ms and 5xx error rate above 2%", 2),
    ("prometheus alerts when an instance is down or a certificate expires within 7 days", 2),
    ("Prometheus alerts for my api", 4),
]


@pytest.mark.parametrize(("prompt", "count"), RULES)
def test_prometheus_rules_pass_promtool(tmp_path: Path, prompt: str, count: int) -> None:
    out = generate(prompt)
    assert out.target == "prometheus-rules", out
    (group,) = check.yaml_documents(out.code)[0]["groups"]
    assert len(group["rules"]) == count, out.code
    for number in re.findall(r"(\d+)(?:%|ms| days)", prompt):
        assert number in out.code, (number, out.code)
    check.promtool_rules(tmp_path, out.code)


LOGROTATE = [
    "logrotate config for /var/log/myapp/*.log weekly keep 8",
    "rotate nginx logs daily, keep 30",
    "logrotate for my python service logs, 100M max",
    "log rotation for /var/log/billing/ hourly, reopen on SIGUSR1",
]


@pytest.mark.parametrize("prompt", LOGROTATE)
def test_logrotate_configs_pass_logrotate_d(tmp_path: Path, prompt: str) -> None:
    out = generate(prompt)
    assert out.target == "logrotate", out
    check.logrotate_debug(tmp_path, out.code)


def _services(doc: dict[str, Any]) -> dict[str, Any]:
    services: dict[str, Any] = doc["services"]
    for name, service in services.items():
        assert "image" in service or "build" in service, name
        for need in service.get("depends_on", []):
            assert need in services, need
    return services


@pytest.mark.parametrize(
    ("prompt", "names"),
    [
        ("docker compose for a node app with postgres and redis behind nginx", {"db", "redis"}),
        ("docker-compose file for a Django app with MySQL, 3 replicas", {"db"}),
        ("compose stack for a Go service with mongodb", {"db"}),
        ("docker compose for a python app", set()),
    ],
)
def test_compose_files_parse_with_their_services(prompt: str, names: set[str]) -> None:
    out = generate(prompt)
    assert out.target == "docker-compose" and out.filename == "compose.yaml", out
    (doc,) = check.yaml_documents(out.code)
    services = _services(doc)
    assert names <= set(services), services
    assert "PASSWORD:" not in out.code or "${" in out.code  # passwords only from the env


@pytest.mark.parametrize(
    "prompt",
    [
        "Kubernetes deployment with 3 replicas and ingress for shop.example.com with TLS",
        "k8s manifests for a React app",
        "kubernetes deployment for a FastAPI service on port 8000 with websockets, rate limit",
    ],
)
def test_kubernetes_manifests_are_consistent(prompt: str) -> None:
    out = generate(prompt)
    assert out.target == "kubernetes", out
    deployment, service, ingress = check.yaml_documents(out.code)
    assert [d["kind"] for d in (deployment, service, ingress)] == [
        "Deployment",
        "Service",
        "Ingress",
    ]
    for doc in (deployment, service, ingress):
        assert doc["apiVersion"] and doc["metadata"]["name"], doc
    spec = deployment["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = spec["template"]["spec"]["containers"]
    assert {p["name"] for p in container["ports"]} == {service["spec"]["ports"][0]["targetPort"]}
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    if "3 replicas" in prompt:
        assert spec["replicas"] == 3
    assert ("tls" in ingress["spec"]) == ("TLS" in prompt)


@pytest.mark.parametrize(
    ("prompt", "setup"),
    [
        ("GitHub Actions CI for a Node project", "actions/setup-node@v4"),
        ("CI pipeline for a Python 3.11 project that builds a docker image", "setup-python"),
        ("github workflow to test my golang module", "actions/setup-go@v5"),
    ],
)
def test_actions_workflows_parse_and_their_scripts_pass_shellcheck(
    tmp_path: Path, prompt: str, setup: str
) -> None:
    out = generate(prompt)
    assert out.target == "github-actions", out
    (doc,) = check.yaml_documents(out.code)
    assert set(doc["on"]) == {"push", "pull_request"}  # "on" stays a string key, not True
    for name, job in doc["jobs"].items():
        assert job["runs-on"] and job["steps"], name
        assert all(("uses" in s) != ("run" in s) for s in job["steps"]), job
    assert setup in out.code
    assert ("image" in doc["jobs"]) == ("docker" in prompt)
    runs = [s["run"] for j in doc["jobs"].values() for s in j["steps"] if "run" in s]
    script = "\n".join(re.sub(r"\$\{\{[^}]*\}\}", "x", r) for r in runs)
    check.shellcheck(tmp_path, "#!/bin/bash\n" + script + "\n")


def test_inventory_context_fills_what_the_prompt_leaves_out(tmp_path: Path) -> None:
    context = Context(
        project=ProjectInfo(name="Customer Portal", technology=["React", "TypeScript"]),
        environment=EnvironmentInfo(
            name="Staging",
            url="https://portal.acme.example",
            status="active",
            servers=[
                ServerInfo(name="web-1", type="web", status="running", private_ip="10.0.0.5"),
                ServerInfo(name="web-2", type="web", status="stopped", private_ip="10.0.0.6"),
            ],
        ),
        found_by="request",
    )
    out = generate("nginx config", context=context)
    assert "server_name portal.acme.example;" in out.code
    assert "listen 443 ssl" in out.code  # the environment URL is https
    assert "root /var/www/customer-portal;" in out.code
    assert "10.0.0.5" not in out.code  # an SPA's servers host nginx itself, not a backend
    assert "From the inventory" in out.explanation and "React" in out.explanation
    check.nginx_t(tmp_path, out.code)


def test_a_backend_project_is_proxied_to_its_running_servers(tmp_path: Path) -> None:
    servers = [
        ServerInfo(name="api-1", type="app", status="running", private_ip="10.0.1.5"),
        ServerInfo(name="api-2", type="app", status="running", private_ip="10.0.1.6"),
        ServerInfo(name="api-3", type="app", status="stopped", private_ip="10.0.1.7"),
        ServerInfo(name="api-4", type="app", status="running", private_ip="fd00::7"),
    ]
    context = Context(
        project=ProjectInfo(name="Fleet Tracker", technology=["Python", "FastAPI"]),
        environment=EnvironmentInfo(name="Production", status="active", servers=servers),
    )
    out = generate("reverse proxy with websockets", context=context)
    assert "server 10.0.1.5:8000" in out.code and "server 10.0.1.6:8000" in out.code
    assert "10.0.1.7" not in out.code  # stopped servers are left out
    assert "server [fd00::7]:8000" in out.code
    assert "least_conn" in out.code and "upstream fleet_tracker_backend" in out.code
    check.nginx_t(tmp_path, out.code)
