"""Multi-stage Dockerfiles: the build toolchain stays in the first stage, the image runs lean.

Each one passes hadolint with no findings: tagged bases, ``npm ci`` / ``pip --no-cache-dir``,
one RUN per step that needs one, and a non-root user wherever the base image allows it.
"""

from __future__ import annotations

from ..params import Params
from .rendered import Rendered

NGINX_IMAGE = "nginx:1.27-alpine"


def _spa(p: Params) -> tuple[list[str], list[str]]:
    out = "dist" if not p.has(r"create[\s-]react[\s-]app|\bcra\b") else "build"
    p.assume(f"`npm run build` writes the bundle to {out}/ ({'Vite' if out == 'dist' else 'CRA'})")
    lines = [
        f"FROM node:{p.node_version}-alpine AS build",
        "WORKDIR /app",
        "COPY package.json package-lock.json ./",
        "RUN npm ci",
        "COPY . .",
        "RUN npm run build",
        "",
        f"FROM {NGINX_IMAGE}",
        "# History fallback: client-side routes get index.html.",
        "# hadolint ignore=SC2016",
        "RUN printf '%s\\n' 'server {' '    listen 80;' '    root /usr/share/nginx/html;' \\",
        "    '    location / { try_files $uri $uri/ /index.html; }' '}' \\",
        "    > /etc/nginx/conf.d/default.conf",
        f"COPY --from=build /app/{out} /usr/share/nginx/html",
        "EXPOSE 80",
    ]
    notes = [
        f"Stage 1 builds the {p.framework} app with Node {p.node_version}; stage 2 serves the "
        "static bundle from nginx with a history fallback, so the image holds no Node at all."
    ]
    return lines, notes


def _static(p: Params) -> tuple[list[str], list[str]]:
    lines = [f"FROM {NGINX_IMAGE}", "COPY . /usr/share/nginx/html", "EXPOSE 80"]
    return lines, ["Static files served by nginx."]


def _node(p: Params) -> tuple[list[str], list[str]]:
    p.assume("the app starts with `node server.js` (change CMD otherwise)")
    lines = [
        f"FROM node:{p.node_version}-alpine AS build",
        "WORKDIR /app",
        "COPY package.json package-lock.json ./",
        "RUN npm ci",
        "COPY . .",
        "# Build (if the project has a build step), then drop dev dependencies.",
        "RUN npm run build --if-present && npm prune --omit=dev",
        "",
        f"FROM node:{p.node_version}-alpine",
        f"ENV NODE_ENV=production PORT={p.port}",
        "WORKDIR /app",
        "# uid 1000 is the image's `node` user (numeric: hosts need not know the name).",
        "COPY --from=build --chown=1000:1000 /app ./",
        "USER 1000:1000",
        f"EXPOSE {p.port}",
        'CMD ["node", "server.js"]',
    ]
    notes = [
        f"Stage 1 installs and builds with Node {p.node_version}; the runtime stage keeps "
        "production dependencies only and runs as the unprivileged `node` user (uid 1000)."
    ]
    return lines, notes


def _python_cmd(p: Params) -> str:
    bind = f"0.0.0.0:{p.port}"
    if p.framework == "FastAPI":
        p.assume("the FastAPI app is `main:app` and requirements.txt includes uvicorn")
        return f'["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "{p.port}"]'
    if p.framework == "Django":
        p.assume(f"the Django project is `{p.name.replace('-', '_')}` with gunicorn installed")
        return f'["gunicorn", "--bind", "{bind}", "{p.name.replace("-", "_")}.wsgi:application"]'
    p.assume("the WSGI app is `app:app` and requirements.txt includes gunicorn")
    return f'["gunicorn", "--bind", "{bind}", "app:app"]'


def _python(p: Params) -> tuple[list[str], list[str]]:
    lines = [
        f"FROM python:{p.python_version}-slim AS build",
        "RUN python -m venv /opt/venv",
        'ENV PATH="/opt/venv/bin:$PATH"',
        "WORKDIR /app",
        "COPY requirements.txt ./",
        "RUN pip install --no-cache-dir -r requirements.txt",
        "",
        f"FROM python:{p.python_version}-slim",
        'ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH="/opt/venv/bin:$PATH"',
        "WORKDIR /app",
        "COPY --from=build /opt/venv /opt/venv",
        "COPY --chown=10001:10001 . .",
        "# An unprivileged uid with no account: nothing in the image runs as root.",
        "USER 10001:10001",
        f"EXPOSE {p.port}",
        f"CMD {_python_cmd(p)}",
    ]
    notes = [
        f"Dependencies go into a virtualenv in the build stage (Python {p.python_version}); "
        "the runtime stage copies only the venv and the code and runs as uid 10001."
    ]
    return lines, notes


def _go(p: Params) -> tuple[list[str], list[str]]:
    lines = [
        f"FROM golang:{p.go_version}-alpine AS build",
        "WORKDIR /src",
        "COPY go.mod go.sum ./",
        "RUN go mod download",
        "COPY . .",
        "RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app .",
        "",
        "FROM gcr.io/distroless/static-debian12:nonroot",
        "COPY --from=build /out/app /app",
        "USER 65532:65532",
        f"EXPOSE {p.port}",
        'ENTRYPOINT ["/app"]',
    ]
    notes = [
        f"A static binary built with Go {p.go_version} (CGO off) on distroless: no shell, no "
        "package manager, runs as the image's nonroot user (uid 65532)."
    ]
    return lines, notes


def render(p: Params) -> Rendered:
    """A Dockerfile for p's kind of app."""
    p.uses("app", "port")
    build = {"spa": _spa, "static": _static, "node": _node, "python": _python, "go": _go}[p.app]
    body, notes = build(p)
    header = [
        "# syntax=docker/dockerfile:1",
        f"# {p.name}: {p.framework} image ({p.environment})",
        "",
    ]
    notes.append(
        "Add a .dockerignore (node_modules, .git, build output) so `COPY . .` stays small."
    )
    return Rendered("\n".join([*header, *body]) + "\n", "dockerfile", "Dockerfile", notes)
