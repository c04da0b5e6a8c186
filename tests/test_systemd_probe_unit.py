"""systemd/dragonopsd-probe@.service: the probe worker's template unit verifies cleanly, stays
hardened, and its ExecStart arguments are ones `dragonopsd probe` accepts."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from test_systemd_unit import SHIPPED_BINARY, _analyze, _installed_script

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "dragonopsd-probe@.service"
MAX_EXPOSURE = 2.0


def _instance(tmp_path: Path) -> Path:
    """The unit as instance eu-west, running this environment's console script."""
    text = UNIT.read_text(encoding="utf-8")
    shipped = f"ExecStart={SHIPPED_BINARY} "
    assert text.count(shipped) == 1
    unit = tmp_path / "dragonopsd-probe@eu-west.service"
    unit.write_text(text.replace(shipped, f"ExecStart={_installed_script()} "), encoding="utf-8")
    return unit


def test_probe_unit_verifies_without_warnings(tmp_path: Path) -> None:
    out = _analyze("verify", "--man=no", str(_instance(tmp_path)))
    output = out.stdout + out.stderr
    assert out.returncode == 0, output
    assert [line for line in output.splitlines() if "dragonopsd" in line] == [], output


def test_probe_unit_exposure_is_low(tmp_path: Path) -> None:
    unit = _instance(tmp_path)
    out = _analyze("security", "--offline=true", "--no-pager", str(unit))
    output = out.stdout + out.stderr
    match = re.search(
        rf"Overall exposure level for {re.escape(unit.name)}: (\d+(?:\.\d+)?)", output
    )
    assert out.returncode == 0 and match, output
    assert float(match[1]) <= MAX_EXPOSURE, output


def test_exec_start_arguments_are_accepted(tmp_path: Path) -> None:
    """The ExecStart line, with %i and the credentials directory filled in, gets past argument
    parsing: with a config that has no Redis URL the worker exits 2 naming it."""
    line = next(line for line in UNIT.read_text().splitlines() if line.startswith("ExecStart="))
    args = shlex.split(line.removeprefix("ExecStart="))[1:]
    config = tmp_path / "probe.toml"
    config.write_text("[probes]\ndeny_cidrs = []\n")
    args = [a.replace("${CREDENTIALS_DIRECTORY}", str(tmp_path)).replace("%i", "eu-west")
            for a in args]  # fmt: skip
    out = subprocess.run([sys.executable, "-m", "dragonopsd", *args], capture_output=True,
                         text=True, timeout=30)  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert "needs Redis" in out.stderr
