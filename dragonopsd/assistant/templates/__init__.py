"""One module per target family; ``RENDERERS`` maps each target to its render function."""

from __future__ import annotations

from collections.abc import Callable

from ..model import Target
from ..params import Params
from . import (
    backup,
    compose,
    dockerfile,
    github_actions,
    kubernetes,
    logrotate,
    nginx,
    prometheus,
    systemd,
)
from .rendered import Rendered

RENDERERS: dict[Target, Callable[[Params], Rendered]] = {
    "nginx": nginx.render,
    "dockerfile": dockerfile.render,
    "docker-compose": compose.render,
    "systemd": systemd.render,
    "kubernetes": kubernetes.render,
    "github-actions": github_actions.render,
    "prometheus-rules": prometheus.render,
    "logrotate": logrotate.render,
    "backup-script": backup.render,
}

__all__ = ["RENDERERS", "Rendered"]
