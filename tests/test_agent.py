"""`dragonopsd agent` against a real daemon: token from the CLI, samples through the API."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from signal import SIGTERM
from typing import Any

import pytest
from daemon import Daemon

from dragonopsd.cli import main as cli_main

ZERO = "00000000-0000-4000-8000-000000000000"
SAMPLE = {"cpu": 1, "memory": 2, "load": 0.1, "disk": 3, "netIn": 0, "netOut": 0}


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dragonopsd", *args], capture_output=True, text=True, timeout=60
    )


def call(d: Daemon, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One API call as the bootstrap admin; returns the decoded body (asserting 2xx)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"}
    req = urllib.request.Request(d.url + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def agent_server(d: Daemon, state: Path, name: str) -> tuple[str, str]:
    """A server sampled by an agent, and an agent token for it: (server id, token)."""
    c = call(d, "POST", "/api/clients", {"name": "Acme"})
    p = call(d, "POST", "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = call(d, "POST", "/api/environments", {"projectId": p["id"], "name": "Prod"})
    sid = str(call(d, "POST", "/api/servers", {"environmentId": e["id"], "name": name})["id"])
    call(d, "PATCH", f"/api/servers/{sid}", {"sampling": "agent"})
    made = cli("token", "create", "--name", name, "--role", "agent", "--server-id", sid,
               "--state-dir", str(state))  # fmt: skip
    assert made.returncode == 0, made.stderr
    return sid, made.stdout.strip()


def test_agent_round_trip(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with Daemon(state) as d:
        d.wait_listening()
        sid, token = agent_server(d, state, "db-1")
        argv = [sys.executable, "-m", "dragonopsd", "agent", "--url", d.url, "--token", token,
                "--server-id", sid, "--interval", "1"]  # fmt: skip
        log = (tmp_path / "agent.log").open("wb")
        agent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 10
            points: list[dict[str, Any]] = []
            while not points:
                assert time.monotonic() < deadline, (tmp_path / "agent.log").read_text()
                assert agent.poll() is None, (tmp_path / "agent.log").read_text()
                time.sleep(0.2)
                since = time.time() - 60
                got = call(d, "GET", f"/api/servers/{sid}/metrics?step=1&since={since}")
                points = [pt for pt in got["points"] if pt["count"]]
            assert got["latest"]["serverId"] == sid and 0 <= points[0]["cpu"] <= 100
            assert call(d, "GET", f"/api/servers/{sid}")["status"] == "running"
            agent.send_signal(SIGTERM)
            assert agent.wait(10) == 0
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait(10)
            log.close()
        # the token is for this server only, and is nobody's viewer
        req = urllib.request.Request(
            d.url + "/api/clients", headers={"Authorization": f"Bearer {token}"}
        )
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError("an agent token read /api/clients")
        except urllib.error.HTTPError as err:
            assert err.code == 403
        assert d.stop() == 0
    assert token not in d.log


def push(d: Daemon, sid: str) -> tuple[int, dict[str, Any]]:
    """POST one sample for sid as the bootstrap admin: (status, decoded body)."""
    req = urllib.request.Request(
        f"{d.url}/api/servers/{sid}/samples",
        data=json.dumps(SAMPLE).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {d.token}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_agent_of_a_server_not_sampled_by_agent_says_what_to_change(tmp_path: Path) -> None:
    """A server whose sampling is not "agent" refuses pushes with a problem that says what to
    change; the agent says the same (not "daemon unavailable"), keeps its samples and sends
    them once the server's sampling is changed, without a restart."""
    state = tmp_path / "state"
    with Daemon(state) as d:
        d.wait_listening()
        sid, token = agent_server(d, state, "web-1")
        call(d, "PATCH", f"/api/servers/{sid}", {"sampling": "simulated"})
        status, problem = push(d, sid)
        assert status == 409, problem
        assert problem["type"].endswith("/sampling-not-agent"), problem
        assert 'set its sampling to "agent"' in problem["detail"], problem
        assert "simulated" in problem["detail"], problem
        argv = [sys.executable, "-m", "dragonopsd", "agent", "--url", d.url, "--token", token,
                "--server-id", sid, "--interval", "1"]  # fmt: skip
        log_path = tmp_path / "agent.log"
        with log_path.open("wb") as log:
            agent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        try:
            deadline = time.monotonic() + 15
            while "WARNING" not in log_path.read_text():
                assert time.monotonic() < deadline and agent.poll() is None, log_path.read_text()
                time.sleep(0.1)
            text = log_path.read_text()
            assert 'set the server\'s sampling to "agent"' in text, text
            assert "daemon unavailable" not in text, text
            call(d, "PATCH", f"/api/servers/{sid}", {"sampling": "agent"})
            while "sent" not in log_path.read_text():  # the backoff is under 2 s this early
                assert time.monotonic() < deadline and agent.poll() is None, log_path.read_text()
                time.sleep(0.1)
            got = call(d, "GET", f"/api/servers/{sid}/metrics?step=1&since={time.time() - 60}")
            assert got["latest"]["serverId"] == sid
            agent.send_signal(SIGTERM)
            assert agent.wait(10) == 0
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait(10)
        assert d.stop() == 0


def test_agent_and_token_flags_are_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    base = ["agent", "--url", "http://127.0.0.1:1", "--token", "t", "--server-id", ZERO]
    agent_token = ["token", "create", "--name", "a", "--role", "agent", *state]
    assert cli_main(["db", "migrate", *state]) == 0  # "no server" is looked up in a database
    for args, words in (
        (["agent", "--url", "ftp://h", "--token", "t", "--server-id", ZERO], "http"),
        (["agent", "--url", "http://h", "--token", "t", "--server-id", "nope"], "UUID"),
        ([*base, "--interval", "0"], "between 1 and 3600"),
        ([*base, "--interval", "soon"], "number"),
        (["agent", "--url", "http://h", "--server-id", ZERO], "--token"),
        (agent_token, "needs"),
        ([*agent_token, "--server-id", ZERO], "no server"),
        (
            ["token", "create", "--name", "v", "--role", "viewer", "--server-id", ZERO, *state],
            "only agent",
        ),
    ):
        try:
            code = cli_main(args)
        except SystemExit as exc:  # argparse's own usage errors
            code = int(str(exc.code))
        assert code == 2 and words in capsys.readouterr().err, args
