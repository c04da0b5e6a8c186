"""systemd/dragonopsd-agent.service: verifies cleanly, stays hardened, and its ExecStart line,
filled in the way systemd fills it, runs an agent that pushes samples to a real daemon."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from signal import SIGTERM
from typing import Any

from daemon import Daemon
from test_agent import call, cli
from test_systemd_unit import SHIPPED_BINARY, _analyze, _installed_script

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "dragonopsd-agent.service"
MAX_EXPOSURE = 2.0


def _testable(tmp_path: Path) -> Path:
    """The unit, running this environment's console script."""
    text = UNIT.read_text(encoding="utf-8")
    shipped = f"ExecStart={SHIPPED_BINARY} "
    assert text.count(shipped) == 1
    unit = tmp_path / UNIT.name
    unit.write_text(text.replace(shipped, f"ExecStart={_installed_script()} "), encoding="utf-8")
    return unit


def test_agent_unit_verifies_without_warnings(tmp_path: Path) -> None:
    out = _analyze("verify", "--man=no", str(_testable(tmp_path)))
    output = out.stdout + out.stderr
    assert out.returncode == 0, output
    assert [line for line in output.splitlines() if "dragonopsd" in line] == [], output


def test_agent_unit_exposure_is_low(tmp_path: Path) -> None:
    unit = _testable(tmp_path)
    out = _analyze("security", "--offline=true", "--no-pager", str(unit))
    output = out.stdout + out.stderr
    match = re.search(
        rf"Overall exposure level for {re.escape(unit.name)}: (\d+(?:\.\d+)?)", output
    )
    assert out.returncode == 0 and match, output
    assert float(match[1]) <= MAX_EXPOSURE, output


def test_the_token_never_reaches_the_command_line() -> None:
    text = UNIT.read_text(encoding="utf-8")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    assert "--token " not in line and "--token-file ${CREDENTIALS_DIRECTORY}/" in line
    assert "LoadCredential=agent.token:/etc/dragonops/agent.token" in text
    directives = [ln for ln in text.splitlines() if not ln.startswith("#")]
    assert not [ln for ln in directives if ln.startswith("ProcSubset=")]  # /proc/stat & co.


def _exec_start(env: dict[str, str], credentials: Path) -> list[str]:
    """ExecStart as systemd would run it: ${VAR} from EnvironmentFile and the credentials."""
    line = next(ln for ln in UNIT.read_text().splitlines() if ln.startswith("ExecStart="))
    args = shlex.split(line.removeprefix("ExecStart="))[1:]
    values = {**env, "CREDENTIALS_DIRECTORY": str(credentials)}
    filled = [re.sub(r"\$\{(\w+)\}", lambda m: values[m[1]], a) for a in args]
    return [sys.executable, "-m", "dragonopsd", *filled]


def test_exec_start_pushes_samples_with_the_credential(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Daemon(state) as d:
        d.wait_listening()
        c = call(d, "POST", "/api/clients", {"name": "Acme"})
        p = call(d, "POST", "/api/projects", {"clientId": c["id"], "name": "Portal"})
        e = call(d, "POST", "/api/environments", {"projectId": p["id"], "name": "Prod"})
        s = call(d, "POST", "/api/servers", {"environmentId": e["id"], "name": "web-1"})
        sid = s["id"]
        call(d, "PATCH", f"/api/servers/{sid}", {"sampling": "agent"})
        made = cli("token", "create", "--name", "web-1", "--role", "agent", "--server-id", sid,
                   "--state-dir", str(state))  # fmt: skip
        assert made.returncode == 0, made.stderr
        token = made.stdout.strip()
        credentials = tmp_path / "credentials"
        credentials.mkdir(mode=0o700)
        (credentials / "agent.token").write_text(token + "\n")
        argv = _exec_start({"DRAGONOPS_URL": d.url, "DRAGONOPS_SERVER_ID": sid}, credentials)
        assert token not in " ".join(argv)
        log_path = tmp_path / "agent.log"
        with log_path.open("wb") as log:
            agent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
            try:
                deadline = time.monotonic() + 15
                points: list[dict[str, Any]] = []
                while not points:
                    assert time.monotonic() < deadline, log_path.read_text()
                    assert agent.poll() is None, log_path.read_text()
                    time.sleep(0.3)
                    got = call(d, "GET", f"/api/servers/{sid}/metrics?since={time.time() - 60}")
                    points = [pt for pt in got["points"] if pt["count"]]
                agent.send_signal(SIGTERM)
                assert agent.wait(10) == 0  # a stop is a clean exit, not a failure to restart
            finally:
                if agent.poll() is None:
                    agent.kill()
                    agent.wait(10)
        assert token not in log_path.read_text()
        assert d.stop() == 0


def test_token_file_problems_exit_2_naming_the_flag(tmp_path: Path) -> None:
    """Exit 2 is in RestartPreventExitStatus=: a bad credential must not restart-loop."""
    base = ["agent", "--url", "http://127.0.0.1:1", "--server-id",
            "00000000-0000-4000-8000-000000000000"]  # fmt: skip
    empty = tmp_path / "empty.token"
    empty.write_text("\n")
    two = tmp_path / "two.token"
    two.write_text("dro_a\ndro_b\n")
    for extra, words in (
        (["--token-file", str(tmp_path / "missing.token")], "cannot read"),
        (["--token-file", str(empty)], "one token"),
        (["--token-file", str(two)], "one token"),
        (["--token-file", str(two), "--token", "x"], "not allowed with"),
    ):
        out = cli(*base, *extra)
        assert out.returncode == 2 and words in out.stderr, (extra, out.stderr)
        assert "dro_a" not in out.stderr
    assert "RestartPreventExitStatus=1 2" in UNIT.read_text()
