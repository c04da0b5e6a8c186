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
from test_agent import agent_server, call, cli
from test_systemd_unit import assert_exposure_at_most, assert_verifies, installed_copy

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "dragonopsd-agent.service"


def test_agent_unit_verifies_without_warnings(tmp_path: Path) -> None:
    assert_verifies(installed_copy(UNIT, tmp_path))


def test_agent_unit_exposure_is_low(tmp_path: Path) -> None:
    assert_exposure_at_most(installed_copy(UNIT, tmp_path))


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
        sid, token = agent_server(d, state, "web-1")
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
