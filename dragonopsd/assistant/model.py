"""What the assistant answers, and the inventory metadata it may use (never secret values)."""

from __future__ import annotations

from typing import Literal, get_args

from ..model.inventory import Wire

Target = Literal[
    "nginx",
    "dockerfile",
    "docker-compose",
    "systemd",
    "kubernetes",
    "github-actions",
    "prometheus-rules",
    "logrotate",
    "backup-script",
]
TARGETS: tuple[Target, ...] = get_args(Target)
Source = Literal["template", "llm"]


class Generated(Wire, kw_only=True):
    """POST /api/ai/generate: the file, what it is, and what was assumed to write it."""

    code: str
    language: str
    filename: str
    explanation: str
    source: Source
    # A template target, or what the model said it wrote.
    target: str
    warnings: list[str] = []


class ServerInfo(Wire, kw_only=True):
    """A server as the assistant sees it. ``private_ip`` stays on this host (templates only)."""

    name: str
    type: str
    status: str
    private_ip: str | None = None


class EnvironmentInfo(Wire, kw_only=True):
    """An environment's name, URL and servers."""

    name: str
    url: str | None = None
    status: str
    servers: list[ServerInfo] = []


class ProjectInfo(Wire, kw_only=True):
    """A project's name and technology stack."""

    name: str
    technology: list[str] = []


class Context(Wire, kw_only=True):
    """Inventory metadata for one request: how it was found, and what it holds."""

    project: ProjectInfo | None = None
    environment: EnvironmentInfo | None = None
    # Why this context: "request" (ids given), "prompt" (a project named in the prompt), "none".
    found_by: Literal["request", "prompt", "none"] = "none"

    def for_model(self) -> dict[str, object]:
        """The part a remote model may see: names, types, URLs; no addresses, no ids."""
        out: dict[str, object] = {}
        if self.project is not None:
            out["project"] = {"name": self.project.name, "technology": self.project.technology}
        if self.environment is not None:
            env = self.environment
            out["environment"] = {
                "name": env.name,
                "url": env.url,
                "status": env.status,
                "servers": [{"name": s.name, "type": s.type} for s in env.servers],
            }
        return out
