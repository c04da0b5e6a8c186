"""The offline provider: intent, parameters, template. No network, answers in microseconds."""

from __future__ import annotations

from . import intent, params
from .model import TARGETS, Context, Generated, Target
from .templates import RENDERERS

TITLES: dict[Target, str] = {
    "nginx": "nginx site",
    "dockerfile": "Dockerfile",
    "docker-compose": "Docker Compose file",
    "systemd": "systemd unit",
    "kubernetes": "Kubernetes manifests",
    "github-actions": "GitHub Actions workflow",
    "prometheus-rules": "Prometheus alerting rules",
    "logrotate": "logrotate config",
    "backup-script": "backup script",
}


class NoMatch(Exception):
    """The prompt names none of the supported targets."""

    def __init__(self) -> None:
        super().__init__(
            "the prompt does not ask for anything the templates know; supported: "
            + ", ".join(TARGETS)
        )


class OfflineProvider:
    """Answers from the templates: deterministic, and every template is validator-checked."""

    def generate(self, prompt: str, target: Target | None, context: Context) -> Generated:
        """The file prompt asks for; NoMatch when no target fits and none was given."""
        found = intent.match(prompt, target)
        if found is None:
            raise NoMatch
        p = params.extract(prompt, context)
        out = RENDERERS[found.target](p)
        warnings = list(out.warnings)
        rival = found.rival()
        if rival is not None:
            warnings.append(
                f"the prompt also reads like a request for a {TITLES[rival]}; "
                f"send target={rival!r} for that one"
            )
        explanation = [f"{TITLES[found.target]} for {p.name}."]
        explanation += out.notes
        if p.used:
            explanation.append("From the inventory: " + "; ".join(p.used) + ".")
        if p.assumed:
            explanation.append("Assumed: " + "; ".join(p.assumed) + ".")
        return Generated(
            code=out.code,
            language=out.language,
            filename=out.filename,
            explanation=" ".join(explanation),
            source="template",
            target=found.target,
            warnings=warnings,
        )
