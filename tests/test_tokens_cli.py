"""`dragonopsd token ...` against a running daemon: a CLI change takes effect without restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from daemon import Daemon
from pg import BACKENDS, fresh_database
from redis_helpers import SHARED_URL


def cli(
    *args: str, cwd: Path | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "STATE_DIRECTORY"} | (extra or {})
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
    )


def status(d: Daemon, token: str, path: str = "/api/clients") -> int:
    req = urllib.request.Request(d.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def eventually(d: Daemon, token: str, want: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    got = status(d, token)
    while got != want and time.monotonic() < deadline:
        time.sleep(0.1)
        got = status(d, token)
    assert got == want, f"still {got} after {timeout}s"


@pytest.fixture(params=BACKENDS)
def store_env(request: pytest.FixtureRequest, redis_prefix: str) -> Iterator[dict[str, str]]:
    """The environment that points the daemon and the CLI at one store: nothing (the SQLite
    file under --state-dir) or a fresh PostgreSQL database, which needs Redis beside it."""
    if request.param == "sqlite":
        yield {}
        return
    with fresh_database() as url:
        yield {
            "DRAGONOPS_STORAGE__URL": url,
            "DRAGONOPS_REDIS__URL": SHARED_URL,
            "DRAGONOPS_REDIS__PREFIX": redis_prefix,
        }


def test_token_create_list_revoke_while_running(tmp_path: Path, store_env: dict[str, str]) -> None:
    state = tmp_path / "state"
    env = store_env
    with Daemon(state, env=env) as d:
        d.wait_listening()
        admin = d.token
        assert admin.startswith("dro_") and status(d, admin, "/api/tokens") == 200
        assert "admin token" in d.log and admin not in d.log  # the value is never logged

        out = cli(
            "token",
            "create",
            "--name",
            "grafana",
            "--role",
            "viewer",
            "--expires",
            "30",
            "--state-dir",
            str(state),
            extra=env,
        )
        assert out.returncode == 0, out.stderr
        token = out.stdout.strip()
        assert out.stdout == token + "\n" and token.startswith("dro_")
        eventually(d, token, 200)
        assert status(d, token, "/api/tokens") == 403  # a viewer

        listed = cli("token", "list", "--state-dir", str(state), extra=env)
        assert listed.returncode == 0 and "grafana" in listed.stdout and token not in listed.stdout
        ident = next(line.split()[0] for line in listed.stdout.splitlines() if "grafana" in line)

        revoked = cli("token", "revoke", ident, "--state-dir", str(state), extra=env)
        assert revoked.returncode == 0, revoked.stderr
        eventually(d, token, 401)
        assert status(d, admin) == 200
        assert d.stop() == 0
    assert token not in d.log


def test_cli_elsewhere_names_its_state_and_creates_no_database(tmp_path: Path) -> None:
    """Run from another directory, a command that needs the daemon's database says which
    state directory and database it looked at and refuses (exit 2) to start an empty one
    there: a token minted into a stray ./var/dragonops.db would be unknown to the daemon."""
    state = tmp_path / "state"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    stray = elsewhere / "var"
    for args in (
        ["token", "create", "--name", "x", "--role", "viewer"],
        ["token", "list"],
        ["token", "revoke", "00000000-0000-4000-8000-000000000000"],
        ["db", "check"],
        ["db", "backup", str(tmp_path / "b.db")],
    ):
        out = cli(*args, cwd=elsewhere)
        assert out.returncode == 2, (args, out.stderr)
        assert str(stray / "dragonops.db") in out.stderr, (args, out.stderr)
        assert "--state-dir" in out.stderr and "--config" in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr and not stray.exists(), (args, out.stderr)
    assert not (tmp_path / "b.db").exists()

    with Daemon(state) as d:
        d.wait_listening()
        out = cli("token", "create", "--name", "ci", "--role", "viewer", "--state-dir", "../state",
                  cwd=elsewhere)  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert f"state directory {state}" in out.stderr, out.stderr
        assert f"database {state / 'dragonops.db'}" in out.stderr, out.stderr
        assert out.stdout.strip() not in out.stderr  # the token goes to stdout only
        eventually(d, out.stdout.strip(), 200)
        assert d.stop() == 0
    made = cli("db", "migrate", cwd=elsewhere)  # the one command that starts a database
    assert made.returncode == 0 and (stray / "dragonops.db").exists(), made.stderr
    assert str(stray / "dragonops.db") in made.stderr


def test_token_cli_bad_input(tmp_path: Path) -> None:
    state = str(tmp_path / "state")
    assert cli("db", "migrate", "--state-dir", state).returncode == 0
    for args, words in (
        (["token", "create", "--name", "x", "--role", "root"], "invalid choice"),
        (["token", "create", "--name", "x", "--role", "admin", "--expires", "0"], "between 1"),
        (["token", "create", "--name", "x", "--role", "admin", "--expires", "soon"], "whole"),
        (["token", "create", "--role", "admin"], "--name"),
    ):
        out = cli(*args, "--state-dir", state)
        assert out.returncode == 2 and words in out.stderr, (args, out.stderr)
    out = cli("token", "create", "--name", "   ", "--role", "admin", "--state-dir", state)
    assert out.returncode == 2 and "--name" in out.stderr
    missing = cli("token", "revoke", "00000000-0000-4000-8000-000000000000", "--state-dir", state)
    assert missing.returncode == 1 and "no token" in missing.stderr
    garbage = cli("token", "revoke", "nope", "--state-dir", state)
    assert garbage.returncode == 1


def test_a_token_from_the_cli_works_on_its_very_next_request(tmp_path: Path) -> None:
    """No waiting for the daemon's once-a-second poll, and no failed login counted meanwhile."""
    state = tmp_path / "state"
    config = tmp_path / "dragonops.toml"
    config.write_text("[auth]\nfailure_limit = 1\n")  # one refusal would show as a 429 below
    argv = [sys.executable, "-m", "dragonopsd", "token", "create", "--role", "viewer"]
    argv += ["--config", str(config), "--state-dir", str(state)]
    with Daemon(state, "--config", str(config)) as d:
        d.wait_listening()
        for n in range(3):  # the poll could land in the gap once by chance, not three times
            # The token is used the moment the CLI prints it (after its COMMIT), not after the
            # CLI has exited: that is what someone pasting it into the next command does.
            with subprocess.Popen(
                [*argv, "--name", f"fresh-{n}"],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            ) as proc:
                assert proc.stdout is not None
                token = proc.stdout.readline().strip()
                assert token.startswith("dro_"), token
                assert status(d, token) == 200
                assert proc.wait(60) == 0
        assert status(d, "dro_never-minted") == 401  # still refused, and only now counted
        assert status(d, "dro_never-minted") == 429


def _api(d: Daemon, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {d.token}", "Content-Type": "application/json"}
    req = urllib.request.Request(d.url + path, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def test_token_create_with_a_scope_of_clients_and_projects(tmp_path: Path) -> None:
    """--scope-client/--scope-project mint a scoped token, checked as the API checks a scope:
    the ids must exist, and admins and agents take none (exit 2, nothing minted)."""
    state = tmp_path / "state"
    with Daemon(state) as d:
        d.wait_listening()
        acme = _api(d, "/api/clients", {"name": "Acme"})
        globex = _api(d, "/api/clients", {"name": "Globex"})
        portal = _api(d, "/api/projects", {"clientId": globex["id"], "name": "Portal"})
        base = ["token", "create", "--state-dir", str(state), "--name"]
        missing = "00000000-0000-4000-8000-000000000000"
        for args, words in (
            (["x", "--role", "admin", "--scope-client", acme["id"]], "not admin"),
            (["x", "--role", "viewer", "--scope-client", missing], "--scope-client: no client"),
            (["x", "--role", "viewer", "--scope-project", acme["id"]], "--scope-project: no"),
            (["x", "--role", "viewer", "--scope-client", "acme"], "not a client id"),
        ):
            out = cli(*base, *args)
            assert out.returncode == 2 and words in out.stderr, (args, out.stderr)
            assert not out.stdout
        out = cli(*base, "acme-screen", "--role", "viewer", "--scope-client", acme["id"],
                  "--scope-project", portal["id"], "--scope-client", acme["id"])  # fmt: skip
        assert out.returncode == 0, out.stderr
        eventually(d, out.stdout.strip(), 200)
        tokens = _api(d, "/api/tokens")["items"]
        assert [t["name"] for t in tokens if t["name"] == "x"] == []
        made = next(t for t in tokens if t["name"] == "acme-screen")
        assert made["scope"] == {"clients": [acme["id"]], "projects": [portal["id"]]}
        listed = cli("token", "list", "--state-dir", str(state)).stdout
        line = next(row for row in listed.splitlines() if "acme-screen" in row)
        assert line.endswith("Acme, Portal (project)"), line
        assert next(row for row in listed.splitlines() if "admin" in row).endswith("every client")
        assert d.stop() == 0
