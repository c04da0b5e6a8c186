"""A hardened systemd service unit for the app (``systemd-analyze verify`` clean)."""

from __future__ import annotations

from ..params import Params
from .rendered import Rendered


def _exec(p: Params, home: str) -> tuple[str, list[str]]:
    """ExecStart and the environment it needs."""
    if p.app == "python":
        if p.framework == "FastAPI":
            p.assume(f"a virtualenv at {home}/venv with uvicorn; the app is main:app")
            cmd = f"{home}/venv/bin/uvicorn main:app --host 127.0.0.1 --port {p.port}"
        else:
            target = (
                f"{p.name.replace('-', '_')}.wsgi:application"
                if p.framework == "Django"
                else "app:app"
            )
            p.assume(f"a virtualenv at {home}/venv with gunicorn; the app is {target}")
            cmd = f"{home}/venv/bin/gunicorn --bind 127.0.0.1:{p.port} {target}"
        return cmd, ["PYTHONUNBUFFERED=1"]
    if p.app == "go":
        p.assume(f"the binary is installed as /usr/local/bin/{p.name}")
        return f"/usr/local/bin/{p.name}", [f"PORT={p.port}"]
    p.assume(f"the app starts with `node server.js` in {home}")
    return f"/usr/bin/node {home}/server.js", ["NODE_ENV=production", f"PORT={p.port}"]


def render(p: Params) -> Rendered:
    """<name>.service for p's app."""
    warnings: list[str] = []
    p.uses("app", "port", "name")
    if p.app in ("spa", "static"):
        warnings.append(
            f"A {p.framework} build is static files: serve it with nginx (target nginx). "
            "This unit runs a Node server instead."
        )
        p.app, p.framework = "node", "Node.js"
    home = f"/opt/{p.name}"
    cmd, env = _exec(p, home)
    privileged = p.port < 1024
    lines = [
        "[Unit]",
        f"Description={p.name} ({p.framework}, {p.environment})",
        "After=network-online.target",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=exec",
        f"User={p.name}",
        f"Group={p.name}",
        f"WorkingDirectory={home}",
        f"Environment={' '.join(env)}",
        "# Secrets and overrides, one KEY=value per line (optional).",
        f"EnvironmentFile=-/etc/{p.name}/{p.name}.env",
        f"ExecStart={cmd}",
        "Restart=on-failure",
        "RestartSec=5s",
        "TimeoutStopSec=30s",
        f"StateDirectory={p.name}",
        f"LogsDirectory={p.name}",
        "",
        "# Hardening: the app sees a read-only system and only its own state directory.",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "RestrictSUIDSGID=yes",
        "RestrictNamespaces=yes",
        "LockPersonality=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
    ]
    if p.app != "node":  # V8's JIT needs writable executable memory
        lines.append("MemoryDenyWriteExecute=yes")
    if privileged:
        lines += [
            f"# Port {p.port} is below 1024: grant only the right to bind it.",
            "AmbientCapabilities=CAP_NET_BIND_SERVICE",
            "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
        ]
    else:
        lines.append("CapabilityBoundingSet=")
    lines += ["", "[Install]", "WantedBy=multi-user.target"]
    notes = [
        f"Runs `{cmd}` as the system user {p.name} (create it with "
        f"`useradd --system --home {home} {p.name}`), restarting on failure.",
        f"Writable: /var/lib/{p.name} (StateDirectory) and /var/log/{p.name}; the rest of the "
        "file system is read-only to the service.",
        f"Install: copy to /etc/systemd/system/{p.name}.service, then "
        f"`systemctl daemon-reload && systemctl enable --now {p.name}`.",
    ]
    return Rendered("\n".join(lines) + "\n", "ini", f"{p.name}.service", notes, warnings)
