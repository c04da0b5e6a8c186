"""The OpenAPI document tells the truth: schemathesis fuzzes every operation of a real daemon,
as an admin and as a viewer, and checks each answer's status code, content type and body
against the document (not only "no 5xx")."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from daemon import Daemon

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    )
)


def _token(d: Daemon, role: str) -> str:
    req = urllib.request.Request(
        f"{d.url}/api/tokens",
        data=json.dumps({"name": f"fuzz-{role}", "role": role}).encode(),
        headers={"Authorization": f"Bearer {d.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        token: str = json.loads(resp.read())["token"]
    return token


@pytest.mark.parametrize("role", ["admin", "viewer"])
def test_every_operation_answers_as_documented(tmp_path: Path, role: str) -> None:
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is part of the [test] extra"
    with Daemon(tmp_path / "state", "--demo") as d:
        d.wait_listening()
        token = d.token if role == "admin" else _token(d, role)
        argv = [cli, "run", f"{d.url}/api/openapi.json", "-H", f"Authorization: Bearer {token}",
                "--checks", CHECKS, "--max-examples", "8", "--workers", "2",
                "--phases", "examples,coverage,fuzzing", "--seed", "20261204",
                "--request-timeout", "20", "--suppress-health-check", "all",
                "--exclude-path-regex", "^/api/(ws|servers/\\{id\\}/stream)$"]  # fmt: skip
        run = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=tmp_path)
        report = run.stdout[-6000:] + run.stderr[-2000:]
        assert run.returncode == 0, report
        assert "Traceback" not in d.log, d.log[-4000:]
        assert " ERROR " not in d.log, d.log[-4000:]
