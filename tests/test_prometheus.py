"""The deployment files in config/ against the real tools: promtool, Prometheus, nginx.

promtool and prometheus come with Debian's ``prometheus`` package and nginx with
``nginx-light`` (.ci/run installs them when missing); none of these tests is skipped.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import ssl
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from conftest import Client, post
from daemon import Daemon

from dragonopsd.appkeys import METRICS

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOKEN_PATH = "/etc/prometheus/dragonops-metrics.token"
SERIES = re.compile(r"\b((?:dragonops|process|python)_[a-z0-9_]+)\b")


def run(*argv: str | Path, stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run a tool; fail with its output unless it exits 0. Returns stdout and stderr."""
    done = subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape_config(tmp_path: Path, target: str, token: str) -> Path:
    """config/prometheus.yml with the token file and target made real, and a 1 s interval."""
    token_file = tmp_path / "metrics.token"
    token_file.write_text(token + "\n")
    text = (CONFIG / "prometheus.yml").read_text()
    for old, new in (
        (TOKEN_PATH, str(token_file)),
        ('"127.0.0.1:8750"', f'"{target}"'),
        ("15s", "1s"),
        ("scrape_timeout: 10s", "scrape_timeout: 1s"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    shutil.copy(CONFIG / "dragonops.rules.yml", tmp_path)
    path = tmp_path / "prometheus.yml"
    path.write_text(text)
    return path


def dashboard_queries() -> Iterator[str]:
    """Every PromQL expression of the Grafana dashboard, its variables included."""
    dash = json.loads((CONFIG / "grafana-dragonops.json").read_text())
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for var in dash["templating"]["list"]:
        if var["type"] == "query":
            yield var["definition"]


def test_promtool_checks_the_scrape_config(tmp_path: Path) -> None:
    path = scrape_config(tmp_path, "127.0.0.1:8750", "t0ken")
    out = run(PROMTOOL, "check", "config", path)
    assert "SUCCESS" in out and "1 rule files found" in out
    # The shipped file itself differs only in the token path and the intervals.
    shipped = (CONFIG / "prometheus.yml").read_text()
    assert "credentials_file: " + TOKEN_PATH in shipped and "job_name: dragonopsd" in shipped


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    out = run(PROMTOOL, "check", "rules", CONFIG / "dragonops.rules.yml")
    assert "SUCCESS: 9 rules found" in out
    rules = (CONFIG / "dragonops.rules.yml").read_text()
    for alert in (
        "DragonopsMonitorDown",
        "DragonopsCertificateExpiringSoon",
        "DragonopsSchedulerDriftHigh",
        "DragonopsHistoryBacklogGrowing",
        "DragonopsServerCpuHigh",
        "DragonopsDaemonDown",
    ):
        assert f"alert: {alert}\n" in rules, alert
    out = run(PROMTOOL, "test", "rules", "dragonops.rules.test.yml", cwd=CONFIG)
    assert "SUCCESS" in out


async def _busy_scrape(make_client: Callable[..., Awaitable[Client]]) -> str:
    """A scrape with every kind of series present (monitor, server, channel, Redis, route)."""
    client = await make_client(sampling={"interval": 0.2})
    c = await post(client, "/api/clients", {"name": "Acme"})
    p = await post(client, "/api/projects", {"clientId": c["id"], "name": "Portal"})
    e = await post(client, "/api/environments", {"projectId": p["id"], "name": "Production"})
    await post(client, "/api/servers", {"environmentId": e["id"], "name": "web-1", "type": "web"})
    mon = await post(client, "/api/monitors", {"name": "job", "kind": "push"})
    await client.get(f"/api/push/{mon['pushToken']}")
    hook = {"name": "ops hook", "kind": "webhook", "config": {"url": "https://hooks.example/x"}}
    await post(client, "/api/notifications", hook)
    client.app[METRICS].redis_up = lambda: True  # the hook the Redis link sets
    deadline = time.monotonic() + 10
    while True:  # inventory labels and the first samples arrive in the background
        text = (await client.app[METRICS].scrape("", gzip=False)).body.decode()
        if 'server="web-1"' in text and "dragonops_server_cpu_ratio{" in text:
            return text
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.1)


async def test_promtool_finds_no_problem_in_a_live_scrape(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    text = await _busy_scrape(make_client)
    assert "dragonops_notifications_total{" in text and "dragonops_redis_up 1" in text
    assert run(PROMTOOL, "check", "metrics", stdin=text) == ""


async def test_dashboard_uses_only_exported_series(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    text = await _busy_scrape(make_client)
    # Sample names, and families declared without samples yet (no TLS monitor has run here).
    exported = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    exported |= {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    used = {name for query in dashboard_queries() for name in SERIES.findall(query)}
    assert len(used) > 15
    panels = json.loads((CONFIG / "grafana-dragonops.json").read_text())["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    assert all(p["datasource"]["uid"] == "${datasource}" for p in panels if p["type"] != "row")
    assert used <= exported, used - exported
    rules = (CONFIG / "dragonops.rules.yml").read_text()
    assert set(SERIES.findall(rules)) <= exported


def test_nginx_accepts_the_proxy_file(tmp_path: Path) -> None:
    conf = nginx_prefix(tmp_path, listen=None, upstream=None)
    out = run(NGINX, "-t", "-p", tmp_path, "-c", conf)
    assert "test is successful" in out


def nginx_prefix(tmp_path: Path, listen: int | None, upstream: int | None) -> Path:
    """config/nginx-dragonops.conf inside a throwaway nginx.conf, with a trustme certificate
    (and, to run it, the TLS port and the upstream moved to loopback test ports)."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    site = (CONFIG / "nginx-dragonops.conf").read_text()
    swaps = [
        ("/etc/ssl/dragonops/fullchain.pem", str(tmp_path / "cert.pem")),
        ("/etc/ssl/dragonops/privkey.pem", str(tmp_path / "key.pem")),
    ]
    if listen is not None and upstream is not None:
        swaps += [
            ("listen 443 ssl http2;", f"listen 127.0.0.1:{listen} ssl http2;"),
            ("listen [::]:443 ssl http2;", ""),
            ("listen 80;", f"listen 127.0.0.1:{free_port()};"),
            ("listen [::]:80;", ""),
            ("server 127.0.0.1:8750;", f"server 127.0.0.1:{upstream};"),
        ]
    for old, new in swaps:
        assert old in site, old
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site)
    temp = " ".join(
        f"{kind}_temp_path {tmp_path / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        f"pid {tmp_path / 'nginx.pid'};\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  {temp}\n  include {tmp_path / 'site.conf'};\n}}\n"
    )
    return conf


async def test_nginx_proxies_requests_and_websockets(client: Client, tmp_path: Path) -> None:
    port = free_port()
    conf = nginx_prefix(tmp_path, listen=port, upstream=client.port)
    argv = [NGINX, "-p", str(tmp_path), "-c", str(conf), "-g", "daemon off;"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE)
    try:
        tls = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        base = f"https://localhost:{port}"
        auth = client.session.headers["Authorization"]
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 10
            while True:
                try:
                    resp = await http.get(f"{base}/healthz", ssl=tls)
                    break
                except aiohttp.ClientConnectionError:
                    assert proc.poll() is None and time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            assert resp.status == 200 and resp.headers["Strict-Transport-Security"]
            assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])  # nginx's id
            metrics = await http.get(f"{base}/metrics", ssl=tls)
            assert metrics.status == 200  # from loopback; anyone else gets nginx's 403
            # A browser on this origin: the Host nginx forwards keeps the port, so it matches.
            origin = {"Origin": base, "Authorization": auth}
            async with http.ws_connect(
                f"wss://localhost:{port}/api/ws", ssl=tls, headers=origin
            ) as ws:
                await ws.send_json({"op": "ping"})
                frame = await ws.receive_json(timeout=5)
                assert frame["type"] == "ack" and frame["data"]["op"] == "ping"
    finally:
        proc.terminate()
        proc.wait(10)


def _get_json(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> Any:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.load(resp)


def _query(prom: str, expr: str) -> dict[str, Any]:
    data: dict[str, Any] = _get_json(
        f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    )
    assert data["status"] == "success", (expr, data)
    return data


def test_real_prometheus_scrapes_the_daemon(tmp_path: Path) -> None:
    token = "prometheus-interop-token"
    env = {"DRAGONOPS_METRICS__TOKEN": token}
    with Daemon(tmp_path / "state", env=env) as daemon:
        daemon.wait_listening()
        auth = {"Authorization": f"Bearer {daemon.token}", "Content-Type": "application/json"}
        body = json.dumps({"name": "nightly backup", "kind": "push"}).encode()
        monitor = _get_json(f"{daemon.url}/api/monitors", auth, body)
        _get_json(f"{daemon.url}/api/push/{monitor['pushToken']}")
        config = scrape_config(tmp_path, f"127.0.0.1:{daemon.port}", token)
        prom = f"http://127.0.0.1:{free_port()}"
        argv = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={prom.removeprefix('http://')}",
        ]
        log = (tmp_path / "prometheus.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()
                try:
                    up = _query(prom, 'up{job="dragonopsd"}')["data"]["result"]
                    mon = _query(prom, f'dragonops_monitor_up{{monitor_id="{monitor["id"]}"}}')
                    rules = _get_json(f"{prom}/api/v1/rules")["data"]["groups"]
                except OSError:
                    up, mon, rules = [], {"data": {"result": []}}, []
                evaluated = [r for g in rules for r in g["rules"] if r["health"] == "ok"]
                if up and mon["data"]["result"] and len(evaluated) == 9:
                    break
                assert time.monotonic() < deadline, (up, mon, rules)
                time.sleep(0.3)
            assert up[0]["value"][1] == "1"  # scraped with the bearer token, parsed, stored
            series = mon["data"]["result"][0]
            assert series["value"][1] == "1" and series["metric"]["monitor"] == "nightly backup"
            for expr in dashboard_queries():
                if not expr.startswith("label_values"):  # a Grafana function, not PromQL
                    query = re.sub(r"\$\w+", ".*", expr)
                    _query(prom, query)
        finally:
            proc.terminate()
            proc.wait(15)
            log.close()


@pytest.mark.parametrize("tool", [PROMTOOL, PROMETHEUS, NGINX])
def test_tools_are_installed(tool: str) -> None:
    assert Path(tool).exists(), f"{tool} missing: .ci/run installs prometheus and nginx-light"
