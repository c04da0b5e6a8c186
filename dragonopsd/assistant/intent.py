"""Which file the prompt asks for: weighted keyword and pattern rules, best total score wins.

Each target has strong signals (the artifact's own name: "dockerfile", "systemd unit") and weak
ones (words that often come with it: "replicas", "pipeline"). A signal in the head of the
prompt, before the first "for", "to" or "that", counts half again: "a Dockerfile for an nginx
front end" asks for a Dockerfile, "an nginx config for a dockerised app" for nginx.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .model import TARGETS, Target

HEAD_BONUS = 1.5
# The least total that counts as a match; one weak word alone is not a request.
MIN_SCORE = 3.0
# A runner-up this close to the winner gets a warning: the prompt may mean either.
CLOSE_RATIO = 0.8
_HEAD_END = re.compile(r"\b(?:for|to|that|which|so|serving|behind|in front of)\b")


@dataclass(frozen=True)
class Signal:
    """One pattern and what it is worth."""

    pattern: re.Pattern[str]
    weight: float


def _s(pattern: str, weight: float) -> Signal:
    return Signal(re.compile(pattern, re.IGNORECASE), weight)


RULES: dict[Target, tuple[Signal, ...]] = {
    "nginx": (
        _s(r"\bnginx\b(?!\s*ingress)", 4),
        _s(r"\bnginx[\s.-]*(?:conf(?:ig(?:uration)?)?|site|vhost|server block)\b", 3),
        _s(r"\breverse[\s-]?proxy\b", 4),
        _s(r"\b(?:virtual host|vhost|server block|load[\s-]?balanc\w*)\b", 3),
        _s(r"\b(?:proxy_pass|upstreams?|web ?server|proxy(?:ing)?)\b", 2),
        _s(r"\b(?:history fallback|try_files|gzip|rate[\s-]?limit\w*)\b", 1),
    ),
    "dockerfile": (
        _s(r"\bdockerfile\b", 6),
        _s(r"\b(?:docker|container|oci)\s+image\b", 4),
        _s(r"\bcontaineri[sz]e\b|\bdockeri[sz]e\b", 4),
        _s(r"\bmulti[\s-]?stage\b", 3),
        _s(r"\bdocker\b(?![\s-]*compose)", 1),
    ),
    "docker-compose": (
        _s(r"\bdocker[\s-]?compose\b|\bcompose\.ya?ml\b", 6),
        _s(r"\bcompose\s+(?:file|stack|project)\b", 5),
        _s(r"\bcompose\b", 2),
        _s(r"\b(?:stack|services?)\s+with\b.*\b(?:postgres|mysql|redis|mongo)\w*", 1),
    ),
    "systemd": (
        _s(r"\bsystemd\b", 6),
        _s(r"\b(?:unit file|service unit|\.service\b)", 4),
        _s(r"\b(?:start|run)s?\s+(?:it\s+)?(?:on|at)\s+boot\b", 3),
        _s(r"\b(?:as a (?:linux )?(?:service|daemon)|daemoni[sz]e)\b", 2),
        _s(r"\bjournal(?:d|ctl)?\b", 1),
    ),
    "kubernetes": (
        _s(r"\b(?:kubernetes|k8s|kubectl)\b", 5),
        _s(r"\b(?:manifests?|pods?|ingress|helm)\b", 2),
        _s(r"\b(?:deployment|replicas?|cluster ?ip|namespace|hpa)\b", 1),
    ),
    "github-actions": (
        _s(r"\bgithub[\s-]?actions?\b|\.github/workflows\b", 6),
        _s(r"\b(?:ci|ci/cd|continuous integration)\b", 4),
        _s(r"\bpipelines?\b", 2),
        _s(r"\b(?:workflow|github)\b", 2),
        _s(r"\b(?:run (?:the )?tests|lint(?:ing)?|on (?:every )?(?:push|pull request))\b", 1),
    ),
    "prometheus-rules": (
        _s(r"\bprometheus\b", 4),
        _s(r"\balert(?:ing)?[\s-]?rules?\b|\balertmanager\b|\bpromql\b", 4),
        _s(r"\balerts?\b", 2),
        _s(r"\b(?:alert|page|notify)\w*\s+(?:me\s+)?(?:when|if|on)\b", 2),
        _s(r"\b(?:instance down|high (?:cpu|memory|latency)|disk (?:full|space))\b", 1),
    ),
    "logrotate": (
        _s(r"\blogrotate\b", 6),
        _s(r"\brotat(?:e|es|ing|ion)\b", 3),
        _s(r"\brotat\w*\b.{0,30}\blogs?\b|\blogs?\b.{0,30}\brotat\w*", 4),
        _s(r"\blogs?\b|\blog files?\b", 1),
    ),
    "backup-script": (
        _s(r"\bback[\s-]?ups?\b|\bbacking up\b", 4),
        _s(r"\b(?:pg_dump|mysqldump|pg_dumpall|dump (?:the )?database)\b", 3),
        _s(r"\b(?:bash|shell)\s+script\b|\bscript\b", 2),
        _s(r"\b(?:snapshot|archive|restore)\b", 1),
        _s(r"\bcron(?:job|tab)?\b", 1),
    ),
}


@dataclass(frozen=True)
class Intent:
    """The chosen target, its score, and the other targets that scored, best first."""

    target: Target
    score: float
    others: tuple[tuple[Target, float], ...]
    explicit: bool = False

    def rival(self) -> Target | None:
        """A runner-up scoring close enough to the winner that the prompt may mean it."""
        if self.explicit or not self.others:
            return None
        name, score = self.others[0]
        return name if score >= self.score * CLOSE_RATIO else None


def head_end(prompt: str) -> int:
    """Where the head of the prompt (what is asked for) ends."""
    m = _HEAD_END.search(prompt)
    return m.start() if m else len(prompt)


def scores(prompt: str) -> dict[Target, float]:
    """Every target's score for prompt (zeros left out)."""
    head = head_end(prompt)
    out: dict[Target, float] = {}
    for target, signals in RULES.items():
        total = 0.0
        for signal in signals:
            m = signal.pattern.search(prompt)
            if m:
                total += signal.weight * (HEAD_BONUS if m.start() < head else 1.0)
        if total:
            out[target] = total
    return out


def match(prompt: str, target: Target | None = None) -> Intent | None:
    """The target prompt asks for (or the one given); None when nothing scores enough."""
    ranked = sorted(scores(prompt).items(), key=lambda kv: (-kv[1], TARGETS.index(kv[0])))
    if target is not None:
        others = tuple((t, s) for t, s in ranked if t != target)
        return Intent(target, dict(ranked).get(target, 0.0), others, explicit=True)
    if not ranked or ranked[0][1] < MIN_SCORE:
        return None
    (best, score), *rest = ranked
    return Intent(best, score, tuple(rest))
