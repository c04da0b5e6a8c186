"""/metrics over HTTP: series and labels, formats, gzip, the token, the own listener.

The external tools (promtool, a real Prometheus server, nginx) are in test_prometheus.py.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from conftest import Client, post
from cryptography import x509
from daemon import Daemon
from prometheus_client import generate_latest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from dragonopsd.appkeys import METRICS
from dragonopsd.config import ConfigError, from_mapping
from dragonopsd.metrics import exporter as exporter_module
from dragonopsd.metrics.exposition import Packed, Segment

pytestmark = pytest.mark.backends

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str, prefix: str = "") -> Samples:
    """Every sample of the text format as {(name, labels): value}."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith(prefix)
    }


def find(found: Samples, metric: str, /, **labels: str) -> list[float]:
    """Values of the samples named metric whose labels include labels."""
    want = set(labels.items())
    return [v for (n, lb), v in found.items() if n == metric and want <= lb]


async def scrape(client: Client, **headers: str) -> aiohttp.ClientResponse:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200, await resp.text()
    return resp


async def wait_for(api: Client, metric: str, /, **labels: str) -> tuple[list[float], Samples]:
    """Scrape until a sample with these labels shows up (labels refresh in the background)."""
    deadline = time.monotonic() + 10.0
    while True:
        found = samples(await (await scrape(api)).text())
        values = find(found, metric, **labels)
        if values or time.monotonic() > deadline:
            assert values, f"no {metric} {labels} within 10 s"
            return values, found
        await asyncio.sleep(0.2)


@pytest.fixture
async def tls_port(tmp_path: Path) -> AsyncIterator[tuple[int, float]]:
    """A TLS server on loopback; yields its port and its certificate's notAfter."""
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    pem = cert.cert_chain_pems[0].bytes()
    not_after = x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=ctx)
    yield server.sockets[0].getsockname()[1], not_after
    server.close()
    await server.wait_closed()


async def test_monitor_series_carry_the_inventory_labels(
    client: Client, tree: Callable[[], Awaitable[dict[str, Any]]], tls_port: tuple[int, float]
) -> None:
    t = await tree()
    env = t["environment"]["id"]
    push = await post(
        client, "/api/monitors", {"name": "cron job", "kind": "push", "environmentId": env}
    )
    port, not_after = tls_port
    tls = await post(
        client,
        "/api/monitors",
        {
            "name": "tls",
            "kind": "tls",
            "host": "127.0.0.1",
            "port": port,
            "verifyTls": False,
            "serverId": t["server"]["id"],
        },
    )
    assert (await client.get(f"/api/push/{push['pushToken']}")).status == 200
    assert (await client.post(f"/api/monitors/{tls['id']}/check")).status == 200
    place = {"client": "Acme", "project": "Portal", "environment": "Production"}
    up, found = await wait_for(client, "dragonops_monitor_up", monitor_id=push["id"], **place)
    assert up == [1.0]
    mon = {"monitor_id": push["id"], "monitor": "cron job", "kind": "push"}
    states = {s: find(found, "dragonops_monitor_status", state=s, **mon) for s in ("up", "down")}
    assert states == {"up": [1.0], "down": [0.0]}
    assert len(find(found, "dragonops_monitor_status", **mon)) == 5  # one series per state
    assert find(found, "dragonops_monitor_checks_total", result="success", **mon) == [1.0]
    assert find(found, "dragonops_monitor_checks_total", result="failure", **mon) == [0.0]
    # The TLS monitor sits on the server: its labels come through the server's environment.
    expiry = find(
        found,
        "dragonops_monitor_certificate_expiry_timestamp_seconds",
        monitor_id=tls["id"],
        kind="tls",
        **place,
    )
    assert expiry and abs(expiry[0] - not_after) < 1
    latency = find(found, "dragonops_monitor_response_time_seconds", monitor_id=tls["id"])
    assert latency and 0 < latency[0] < 5
    assert find(found, "dragonops_incidents_open") == [0.0]
    server = {"server_id": t["server"]["id"], "server": "web-1", **place}
    assert find(found, "dragonops_server_up", **server) == [1.0]


async def test_renaming_an_environment_relabels_its_monitors_in_both_encodings(
    client: Client, tree: Callable[[], Awaitable[dict[str, Any]]]
) -> None:
    """Label text is cached per monitor: an inventory rename remakes the one it changes (plain
    and gzipped alike), and a rename elsewhere leaves the others' series as they were."""
    t, other = await tree(), await tree()
    env = t["environment"]["id"]
    mon = await post(client, "/api/monitors", {"name": "api", "kind": "push", "environmentId": env})
    bystander = await post(
        client,
        "/api/monitors",
        {"name": "by", "kind": "push", "environmentId": other["environment"]["id"]},
    )
    await wait_for(client, "dragonops_monitor_up", monitor_id=mon["id"], environment="Production")
    exporter = client.app[METRICS]
    await exporter.scrape("", gzip=True)  # packs the kept segments with the old labels
    patched = await client.patch(f"/api/environments/{env}", json={"name": "Staging"})
    assert patched.status == 200, await patched.text()
    await wait_for(client, "dragonops_monitor_up", monitor_id=mon["id"], environment="Staging")
    plain = samples((await exporter.scrape("", gzip=False)).body.decode(), "dragonops_mon")
    packed = (await exporter.scrape("", gzip=True)).body
    assert samples(gzip.decompress(packed).decode(), "dragonops_mon") == plain
    assert not find(plain, "dragonops_monitor_up", monitor_id=mon["id"], environment="Production")
    assert find(plain, "dragonops_monitor_up", environment="Production") == [0.0]  # bystander
    assert len(find(plain, "dragonops_monitor_status", monitor_id=bystander["id"])) == 5


async def test_daemon_series_and_route_templates(client: Client) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    assert (await client.get(f"/api/monitors/{unknown}")).status == 404
    assert (await client.get("/no/such/path")).status == 404
    assert (await client.request("PROPFIND", "/no/such/path")).status == 404
    found = samples(await (await scrape(client)).text())
    names = {name for name, _ in found}
    for name in (
        "dragonops_scheduler_drift_seconds_bucket",
        "dragonops_probes_in_flight",
        "dragonops_history_queue_depth",
        "dragonops_history_flush_seconds_count",
        "dragonops_ws_connections",
        "dragonops_incidents_open",
        "process_cpu_seconds_total",
        "python_info",
    ):
        assert name in names, name
    assert "dragonops_redis_up" not in names  # only when Redis is configured
    assert find(found, "dragonops_build_info")[0] == 1.0
    reasons = {dict(lb)["reason"] for n, lb in found if n == "dragonops_ws_events_dropped_total"}
    assert reasons == {"coalesced", "slow_client", "closed", "bus_lag"}
    http = "dragonops_http_requests_total"
    assert find(found, http, route="/api/monitors/{id}", method="GET", code="404") == [1.0]
    assert find(found, http, route="unmatched", method="GET", code="404") == [1.0]
    assert find(found, http, route="unmatched", method="other")  # no series per odd method
    assert not [lb for n, lb in found if n == http and ("route", f"/api/monitors/{unknown}") in lb]
    assert find(
        found, "dragonops_http_request_duration_seconds_count", route="/api/monitors/{id}"
    ) == [1.0]


async def test_formats_by_negotiation_and_gzip(client: Client) -> None:
    text = await scrape(client, **{"Accept-Encoding": "identity"})
    assert text.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "Content-Encoding" not in text.headers
    om = await scrape(client, Accept=OPENMETRICS, **{"Accept-Encoding": "identity"})
    assert om.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    body = await om.text()
    assert body.endswith("# EOF\n") and body.count("# EOF") == 1
    families = {f.name: f for f in parse_openmetrics(body)}  # the strict OpenMetrics parser
    assert families["dragonops_http_requests"].type == "counter"
    assert families["dragonops_scheduler_drift_seconds"].type == "histogram"
    # Compressed when asked: read the raw bytes and gunzip them ourselves.
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        url = client.make_url("/metrics")
        async with raw.get(url, headers={"Accept-Encoding": "br;q=1.0, gzip;q=0.8"}) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in resp.headers["Vary"]
            plain = gzip.decompress(await resp.read()).decode()
        async with raw.get(url, headers={"Accept-Encoding": "gzip;q=0"}) as resp:
            assert "Content-Encoding" not in resp.headers
    assert "dragonops_build_info" in plain


async def test_fast_text_equals_prometheus_client_rendering(client: Client) -> None:
    """The hand-written exposition of the monitor families says what prometheus_client says."""
    # Names hold no line breaks (the API refuses them); a literal backslash-n must not turn
    # into one on the way out.
    names = ['quote " and \\ backslash', "not a new\\nline", "ünïcødé ✓", "plain"]
    for name in names:
        await post(client, "/api/monitors", {"name": name, "kind": "push"})
    exporter = client.app[METRICS]
    for accept, parse in (("", samples), (OPENMETRICS, None)):
        body = (await exporter.scrape(accept, gzip=False)).body.decode()
        if parse is None:
            ours = {
                (s.name, frozenset(s.labels.items())): s.value
                for f in parse_openmetrics(body)
                for s in f.samples
                if s.name.startswith(("dragonops_monitor", "dragonops_incidents"))
            }
        else:
            ours = parse(body, "dragonops_monitor") | parse(body, "dragonops_incidents")
        reference = generate_latest(exporter.registry).decode()
        theirs = samples(reference, "dragonops_monitor") | samples(reference, "dragonops_incidents")
        assert ours == theirs
    monitors = {dict(lb)["monitor"] for n, lb in ours if n == "dragonops_monitor_up"}
    assert monitors == set(names)


def om_samples(text: str) -> Samples:
    """The monitor samples of an OpenMetrics exposition, named as the text format names them."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parse_openmetrics(text)
        for s in family.samples
        if s.name.startswith("dragonops_mon")
    }


async def test_gzip_segments_say_what_the_text_says_as_statuses_change(client: Client) -> None:
    """Kept segments (up, status) are compressed once and reused until a status changes."""
    mons = [await post(client, "/api/monitors", {"name": f"m{i}", "kind": "push"}) for i in "ab"]
    exporter = client.app[METRICS]
    steps = [(None, (0, 0)), (mons[0], (1, 0)), (mons[1], (1, 1))]
    for pushed, (a, b) in steps:
        if pushed is not None:
            assert (await client.get(f"/api/push/{pushed['pushToken']}")).status == 200
        plain = samples((await exporter.scrape("", gzip=False)).body.decode(), "dragonops_mon")
        om = om_samples((await exporter.scrape(OPENMETRICS, gzip=False)).body.decode())
        # The first gzipped scrape packs the kept segments, the next ones reuse the packed form
        # (both formats at once share them).
        for _ in range(3):
            text_gz, om_gz = await asyncio.gather(
                exporter.scrape("", gzip=True), exporter.scrape(OPENMETRICS, gzip=True)
            )
            assert samples(gzip.decompress(text_gz.body).decode(), "dragonops_mon") == plain
            assert om_samples(gzip.decompress(om_gz.body).decode()) == om
        ups = {dict(lb)["monitor"]: v for (n, lb), v in plain.items() if n.endswith("_up")}
        assert ups == {"ma": a, "mb": b}
    head = await client.head("/metrics", headers={"Accept-Encoding": "identity"})
    assert head.status == 200 and int(head.headers["Content-Length"]) > 1000
    assert await head.read() == b""


async def test_concurrent_scrapes_share_one_rendering(client: Client) -> None:
    exporter = client.app[METRICS]
    first, second = await asyncio.gather(exporter.scrape("", False), exporter.scrape("", False))
    assert first is second


async def test_gzip_scrape_whole_when_rendering_waits_for_the_compressor(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no text allowed ahead of the gzip thread, every segment waits for it: same body."""
    for i in range(3):
        await post(client, "/api/monitors", {"name": f"w{i}", "kind": "push"})
    monkeypatch.setattr(exporter_module, "AHEAD", 0)
    monkeypatch.setattr(exporter_module, "RESUME", 0)
    exporter = client.app[METRICS]
    plain = samples((await exporter.scrape("", gzip=False)).body.decode(), "dragonops_mon")
    for _ in range(2):  # packing the kept segments, then reusing them
        packed = (await exporter.scrape("", gzip=True)).body
        assert samples(gzip.decompress(packed).decode(), "dragonops_mon") == plain
    resp = await scrape(client, **{"Accept-Encoding": "gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"
    assert samples(await resp.text(), "dragonops_mon") == plain


async def test_a_kept_segment_packed_by_another_scrape_meanwhile_does_not_stall_a_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Gzipped scrapes of both formats share the kept segments. One whose loop hands a kept
    segment over as text, and whose gzip thread then finds it packed by the other scrape's
    thread, has still had that text compressed: else its loop waits for its thread forever
    (and so does every later scrape of its format, which joins the hung rendering)."""
    monkeypatch.setattr(exporter_module, "AHEAD", 0)
    monkeypatch.setattr(exporter_module, "RESUME", 0)
    loop = asyncio.get_running_loop()
    # One worker, kept busy until both scrapes have handed the segment over: the second
    # scrape's thread then starts only once the first's has packed it and ended (one order
    # two threads on a busy machine can take by themselves).
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
    gate = threading.Event()
    busy = loop.run_in_executor(None, gate.wait)
    text = b"".join(b'dragonops_monitor_up{monitor="m%d"} 1\n' % i for i in range(500))
    kept = Segment(text, labels=[], status=[])
    first, second = exporter_module._Gzip(), exporter_module._Gzip()
    handing = [asyncio.create_task(sink.put(kept)) for sink in (first, second)]
    for _ in range(3):
        await asyncio.sleep(0)  # both hand it over as text, then wait for their threads
    assert not any(h.done() for h in handing)
    gate.set()
    await busy
    try:
        async with asyncio.timeout(10):
            assert await handing[0] is True
            one = b"".join(await first.finish())
            assert await handing[1] is True
            two = b"".join(await second.finish())
    finally:
        second.close()  # a stalled scrape's thread still ends (the loop closes its executor)
    assert isinstance(kept.body, Packed)
    assert gzip.decompress(one) == gzip.decompress(two) == text


async def test_a_failing_compressor_fails_the_scrape_instead_of_stalling_it(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop waiting for the gzip thread learns of its error (ISA-L refuses level 99)."""
    monkeypatch.setattr(exporter_module, "AHEAD", 0)
    monkeypatch.setattr(exporter_module, "GZIP_LEVEL", 99)
    exporter = client.app[METRICS]
    async with asyncio.timeout(10):
        with pytest.raises(ValueError, match="Invalid compression level"):
            await exporter.scrape("", gzip=True)
    monkeypatch.setattr(exporter_module, "GZIP_LEVEL", 1)
    packed = (await exporter.scrape("", gzip=True)).body
    assert gzip.decompress(packed).startswith(b"# HELP")


async def test_token_guards_metrics_and_api_tokens_do_not_open_it(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    client = await make_client(metrics={"token": "scrape-secret"})
    for header in ("", "Bearer wrong", "Basic c2NyYXBlLXNlY3JldA=="):
        resp = await client.get("/metrics", headers={"Authorization": header})
        assert resp.status == 401, header
        assert resp.content_type == "application/problem+json"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # The client's default header is an admin API token: not the metrics credential.
    assert (await client.get("/metrics")).status == 401
    ok = await client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
    assert ok.status == 200 and "dragonops_build_info" in await ok.text()


async def test_own_listener_serves_only_metrics(
    make_client: Callable[..., Awaitable[Client]],
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = await make_client(metrics={"listen": f"127.0.0.1:{port}", "token": "t0k"})
    moved = await client.get("/metrics", headers={"Authorization": "Bearer t0k"})
    assert moved.status == 404 and moved.content_type == "application/problem+json"
    async with aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{port}"
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 401
            assert resp.content_type == "application/problem+json"
        auth = {"Authorization": "Bearer t0k"}
        async with http.get(f"{base}/metrics", headers=auth) as resp:
            assert resp.status == 200
            assert "dragonops_monitor_up" in await resp.text()
        async with http.get(f"{base}/api/monitors", headers=auth) as resp:
            assert resp.status == 404  # nothing but /metrics on this port


def test_a_metrics_port_in_use_fails_the_start(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        with Daemon(tmp_path / "state", env={"DRAGONOPS_METRICS__LISTEN": listen}) as daemon:
            assert daemon.wait_exit(20) == 1
            assert f"cannot start: cannot serve metrics on {listen}" in daemon.log


@pytest.mark.parametrize(
    ("listen", "ok"),
    [
        ("", True),
        ("127.0.0.1:9750", True),
        ("[::1]:9750", True),
        ("metrics.internal:0", True),
        ("9750", False),
        ("127.0.0.1:", False),
        ("127.0.0.1:99999", False),
        ("http://127.0.0.1:9750", False),
    ],
)
def test_listen_must_be_host_and_port(listen: str, ok: bool) -> None:
    if ok:
        assert from_mapping({"metrics": {"listen": listen}}, env={}).metrics.listen == listen
    else:
        with pytest.raises(ConfigError, match=r"metrics\.listen"):
            from_mapping({"metrics": {"listen": listen}}, env={})
