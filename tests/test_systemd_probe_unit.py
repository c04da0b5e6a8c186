"""systemd/dragonopsd-probe@.service: the probe worker's template unit verifies cleanly, stays
hardened, and its ExecStart arguments are ones `dragonopsd probe` accepts."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from test_systemd_unit import assert_exposure_at_most, assert_verifies, installed_copy

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "dragonopsd-probe@.service"


def test_probe_unit_verifies_without_warnings(tmp_path: Path) -> None:
    assert_verifies(installed_copy(UNIT, tmp_path, "dragonopsd-probe@eu-west.service"))


def test_probe_unit_exposure_is_low(tmp_path: Path) -> None:
    assert_exposure_at_most(installed_copy(UNIT, tmp_path, "dragonopsd-probe@eu-west.service"))


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
