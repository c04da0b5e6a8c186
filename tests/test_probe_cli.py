"""`dragonopsd probe` refuses bad flags with exit 2 and a message naming the flag."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dragonopsd", "probe", *args],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--location", "local", "--redis", "redis://127.0.0.1:6379"], "--location"),
        (["--location", "EU West", "--redis", "redis://127.0.0.1:6379"], "--location"),
        (["--location", "eu", "--redis", "http://127.0.0.1:6379"], "--redis"),
        (["--location", "eu", "--redis", "redis://h", "--prefix", "a b"], "--prefix"),
        (["--location", "eu", "--redis", "redis://h", "--concurrency", "0"], "--concurrency"),
        (["--redis", "redis://127.0.0.1:6379"], "--location"),
        (["--location", "eu"], "Redis"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(args: list[str], named: str) -> None:
    out = probe(*args)
    assert out.returncode == 2, out.stderr
    assert named in out.stderr


def test_help_documents_the_worker() -> None:
    out = probe("--help")
    assert out.returncode == 0
    for flag in ("--location", "--redis", "--prefix", "--name", "--concurrency"):
        assert flag in out.stdout


def test_check_config_never_prints_the_redis_password() -> None:
    env = {**os.environ, "DRAGONOPS_REDIS__URL": "redis://user:s3cret-pw@db.example:6379/0"}
    out = subprocess.run([sys.executable, "-m", "dragonopsd", "check-config"],
                         capture_output=True, text=True, timeout=30, env=env)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "s3cret-pw" not in out.stdout + out.stderr
    assert "redis://***@db.example:6379/0" in out.stdout
