"""systemd/dragonopsd.service: it verifies cleanly, stays hardened, and matches the daemon.

systemd-analyze is required, not optional: without it these tests fail (CI installs systemd).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[1] / "systemd" / "dragonopsd.service"
SHIPPED_BINARY = "/usr/local/bin/dragonopsd"
MAX_EXPOSURE = 2.0


def _systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    assert exe, "systemd-analyze not found: install systemd (apt-get install systemd)"
    return exe


def _installed_script() -> str:
    """The `dragonopsd` console script of the environment running the tests."""
    beside = Path(sys.executable).with_name("dragonopsd")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("dragonopsd")
    assert found, "the dragonopsd console script is not installed (pip install -e .)"
    return found


def _service_directives(text: str) -> dict[str, list[str]]:
    """[Service] directives, each key with all of its values in order."""
    found: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]":
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def installed_copy(unit_file: Path, tmp_path: Path, name: str | None = None) -> Path:
    """Copy of a shipped unit whose ExecStart points at the installed script.

    `systemd-analyze verify` fails when the ExecStart binary does not exist or is not
    executable, and /usr/local/bin/dragonopsd exists only on a real install; so the copy runs
    the console script of this environment. name: the copy's file name (a template's instance,
    ``dragonopsd-probe@eu-west.service``); by default the unit's own, from which systemd
    derives the unit type.
    """
    text = unit_file.read_text(encoding="utf-8")
    shipped = f"ExecStart={SHIPPED_BINARY} "
    assert text.count(shipped) == 1, f"expected exactly one line starting {shipped!r}"
    unit = tmp_path / (name or unit_file.name)
    unit.write_text(text.replace(shipped, f"ExecStart={_installed_script()} "), encoding="utf-8")
    return unit


def _analyze(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    return subprocess.run(
        [_systemd_analyze(), *args], capture_output=True, text=True, timeout=60, env=env
    )


def assert_verifies(unit: Path) -> None:
    """`systemd-analyze verify` has nothing to say about the unit."""
    out = _analyze("verify", "--man=no", str(unit))
    output = out.stdout + out.stderr
    # verify exits 0 even for unknown keys or bad values: those only show up as lines naming
    # the file. Lines about other units on the host are not this unit's business.
    about_unit = [line for line in output.splitlines() if "dragonopsd" in line]
    assert out.returncode == 0, output
    assert about_unit == [], output


def assert_exposure_at_most(unit: Path, limit: float = MAX_EXPOSURE) -> None:
    """`systemd-analyze security --offline=true` rates the unit at limit or lower."""
    out = _analyze("security", "--offline=true", "--no-pager", str(unit))
    output = out.stdout + out.stderr
    assert out.returncode == 0, output
    pattern = rf"Overall exposure level for {re.escape(unit.name)}: (\d+(?:\.\d+)?)"
    match = re.search(pattern, output)
    assert match, output
    exposure = float(match[1])
    assert exposure <= limit, f"exposure {exposure} > {limit}:\n{output}"


def test_unit_verifies_without_warnings(tmp_path: Path) -> None:
    assert_verifies(installed_copy(UNIT, tmp_path))


def test_unit_exposure_is_low(tmp_path: Path) -> None:
    assert_exposure_at_most(installed_copy(UNIT, tmp_path))


def test_unit_keeps_what_the_daemon_needs() -> None:
    """Hardening must not take away what the daemon uses; the contract with the daemon holds."""
    d = _service_directives(UNIT.read_text(encoding="utf-8"))
    expected = {
        "Type": ["notify"],
        "NotifyAccess": ["main"],
        "ExecStart": [f"{SHIPPED_BINARY} serve --config /etc/dragonops/dragonops.toml"],
        "ExecReload": ["/bin/kill -HUP $MAINPID"],
        "WatchdogSec": ["30"],
        "Restart": ["on-failure"],
        "DynamicUser": ["yes"],
        "StateDirectory": ["dragonops"],
        "ConfigurationDirectory": ["dragonops"],
        "MemoryDenyWriteExecute": ["yes"],
    }
    for key, values in expected.items():
        assert d.get(key) == values, f"{key}= is {d.get(key)}, expected {values}"
    assert d.get("TimeoutStopSec"), "TimeoutStopSec= must be set (drain time + margin)"
    # Host CPU/memory sampling reads /proc/stat and /proc/meminfo: ProcSubset=pid hides them.
    assert "ProcSubset" not in d
    families = " ".join(d["RestrictAddressFamilies"]).split()
    assert set(families) == {"AF_INET", "AF_INET6", "AF_UNIX"}, families
    # Configuration errors exit 2; restarting cannot fix them.
    assert "2" in " ".join(d.get("RestartPreventExitStatus", [])).split()


def test_exec_start_arguments_work_with_an_empty_config(tmp_path: Path) -> None:
    """The unit's arguments parse, and an empty config file (as the install notes say) is valid."""
    argv = shlex.split(_service_directives(UNIT.read_text(encoding="utf-8"))["ExecStart"][0])
    assert argv[1] == "serve"
    config = tmp_path / "dragonops.toml"
    config.write_text("", encoding="utf-8")
    args = [str(config) if a == "/etc/dragonops/dragonops.toml" else a for a in argv[2:]]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRAGONOPS_")}
    out = subprocess.run(
        [sys.executable, "-m", "dragonopsd", "check-config", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.startswith("ok: listen 127.0.0.1:8750"), out.stdout
