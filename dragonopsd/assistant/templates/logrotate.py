"""A logrotate stanza: how often, how many, compressed, and how the app reopens its logs."""

from __future__ import annotations

import re

from ..params import Params
from .rendered import Rendered

_KEEP = re.compile(
    r"\b(?:keep|retain|rotate)\s+(\d{1,4})\b|\b(\d{1,4})\s+(?:days|rotations)\b", re.I
)
_SIZE = re.compile(r"\b(\d{1,5})\s*([kmg])b?\b", re.I)
_EVERY = re.compile(r"\b(hourly|daily|weekly|monthly)\b", re.I)


def _paths(p: Params) -> list[str]:
    paths = [x for x in p.paths if x.startswith("/var/log") or x.endswith((".log", "*"))]
    if paths:
        return [x.rstrip("/") + "/*.log" if x.endswith("/") else x for x in paths]
    if p.has(r"\bnginx\b"):
        return ["/var/log/nginx/*.log"]
    p.uses("name")
    p.assume(f"the logs are /var/log/{p.name}/*.log")
    return [f"/var/log/{p.name}/*.log"]


def _reopen(p: Params) -> tuple[list[str], str]:
    """How the writer learns the file moved: nginx reopens on USR1; an app we know nothing
    about may hold its log open forever, so its file is copied and truncated in place."""
    signal = re.search(r"\b(?:on|with|send(?:s)?)\s+(?:sig)?(hup|usr1|usr2)\b", p.prompt, re.I)
    if p.has(r"\bnginx\b"):
        cmd = '[ -s /run/nginx.pid ] && kill -USR1 "$(cat /run/nginx.pid)" || true'
        why = "nginx reopens its logs on USR1 after the rotation."
    elif signal:
        p.uses("name")
        name = signal[1].upper()
        cmd = f"systemctl kill --signal={name} {p.name}.service >/dev/null 2>&1 || true"
        why = f"After the rotation {p.name}.service gets SIG{name} to reopen its logs."
    else:
        return ["copytruncate"], (
            "copytruncate: the file is copied, then truncated in place, so an app that keeps "
            "its log open goes on writing (a few lines can be lost at the cut; say which "
            "signal makes the app reopen its logs to avoid that)."
        )
    return ["create", "sharedscripts", "postrotate", f"    {cmd}", "endscript"], why


def render(p: Params) -> Rendered:
    """/etc/logrotate.d/<name>."""
    if p.has(r"\bnginx\b") and "name" in p.defaults:
        p.name = "nginx"  # nginx's own logs: /etc/logrotate.d/nginx is where they live
    every = _EVERY.search(p.prompt)
    frequency = every[1].lower() if every else "daily"
    keep_m = _KEEP.search(p.prompt)
    keep = int(keep_m[1] or keep_m[2]) if keep_m else 14
    if not keep_m:
        p.assume("14 rotations are kept")
    if not every:
        p.assume("rotated daily")
    size = _SIZE.search(p.prompt)
    body = [frequency, f"rotate {keep}"]
    if size:
        body.append(f"maxsize {size[1]}{size[2].upper()}")
    body += ["missingok", "notifempty", "compress", "delaycompress", "dateext"]
    reopen, why = _reopen(p)
    body += reopen
    paths = _paths(p)
    lines = [f"# {p.name}: rotate {' '.join(paths)}", f"{' '.join(paths)} {{"]
    lines += [f"    {line}" for line in body]
    lines.append("}")
    notes = [
        f"{frequency.capitalize()} rotation of {', '.join(paths)}, {keep} old files kept, "
        "compressed from the second rotation on (delaycompress) with the date in the name.",
        why,
        f"Install as /etc/logrotate.d/{p.name}; dry run: `logrotate -d /etc/logrotate.d/{p.name}`.",
    ]
    if size:
        notes.append(f"Also rotated early once a file passes {size[1]}{size[2].upper()}.")
    return Rendered("\n".join(lines) + "\n", "logrotate", p.name, notes)
