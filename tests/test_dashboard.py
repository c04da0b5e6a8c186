"""The built-in dashboard and the public status page, in a real headless Chromium.

One real daemon (``dragonopsd serve``) for the module, with a config-file monitor probing a
loopback HTTP target the tests flip between 200 and 500, simulated servers sampled every 0.5 s,
and simulated actions that take 1.5 s. Screenshots land in tests/output/screenshots/.
"""

from __future__ import annotations

import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from browser import (
    MONITOR,
    SECRET_VALUE,
    Scene,
    new_page,
    no_horizontal_scroll,
    shoot,
    sign_in,
)
from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("dashboard"))
    try:
        s.populate()
        yield s
    finally:
        s.daemon.kill()
        s.target.close()


def card(page: Page, status: str) -> Any:
    return page.wait_for_selector(
        f".monitor-card[data-status='{status}']:has-text('{MONITOR}')", timeout=20_000
    )


def test_sign_in_and_overview(scene: Scene, browser: Browser) -> None:
    with new_page(browser) as (page, watch):
        page.goto(scene.daemon.url + "/")
        assert page.is_visible("form.signin"), "a visitor without a token sees the sign-in form"
        page.fill("#token", "dro_not-a-real-token")
        page.click("form.signin button[type=submit]")
        page.wait_for_selector("form.signin .error")
        watch.errors.clear()  # the browser logs the refused call (401) as a console error
        sign_in(page, scene.daemon.url, scene.daemon.token)
        card(page, "up")
        stats = page.inner_text(".stats")
        assert "Clients" in stats and "Servers" in stats
        cores = page.inner_text("#cores")  # one core without Redis: this one, owning all
        assert "(this core)" in cores and "alive" in cores, cores
        assert page.inner_text("#conn").startswith("\u25cf Live")
        assert page.evaluate("sessionStorage.getItem('dragonops.token')") == scene.daemon.token
        shoot(page, "01-overview")
        watch.assert_clean()


def test_monitor_flips_down_and_up_without_reload(scene: Scene, browser: Browser) -> None:
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        card(page, "up")
        page.evaluate("window.__sameDocument = true")
        scene.target.healthy = False
        try:
            down = card(page, "down")
            assert "Down" in down.inner_text(), "the status is written, not only coloured"
            page.wait_for_selector(f"section[aria-labelledby='open-h'] li:has-text('{MONITOR}')")
            shoot(page, "02-overview-monitor-down")
        finally:
            scene.target.healthy = True
        card(page, "up")
        assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
        watch.assert_clean()


def test_monitor_detail_and_run_now(scene: Scene, browser: Browser) -> None:
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        card(page, "up").click()
        page.wait_for_url(f"**/#/monitors/{scene.ids['monitor']}")
        page.wait_for_selector("h1:has-text('Public API')")
        # Function strings, not expressions: an expression would be eval'd in the page, which
        # the dashboard's CSP (rightly) refuses.
        beats = "() => document.querySelectorAll('.beats .beat').length"
        page.wait_for_function(f"{beats} >= 3")
        before = page.evaluate(beats)
        page.wait_for_function(f"() => ({beats})() > {before} || ({beats})() >= 60")
        assert "Uptime 24h" in page.inner_text("section[aria-labelledby='uptime-h']")
        page.click("button:has-text('Run check now')")
        result = page.wait_for_selector(".run-result p:has-text('Result')")
        assert "Up" in result.inner_text()
        shoot(page, "03-monitor-detail")
        watch.assert_clean()


def test_inventory_sparklines_server_chart_and_restart(scene: Scene, browser: Browser) -> None:
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.click("#nav a[href='#/inventory']")
        row = f"li.server[data-server-id='{scene.ids['server']}']"
        page.wait_for_function(
            f'() => Number(document.querySelector("{row}")?.dataset.samples || 0) >= 4'
        )
        # A flat line has no height, so Playwright would call it invisible: count its points.
        line = page.get_attribute(f"{row} svg.spark polyline", "points") or ""
        assert len(line.split()) >= 4
        shoot(page, "04-inventory")

        page.click(f"{row} a.name")
        page.wait_for_selector("h1:has-text('web-1')")
        points = "() => Number(document.querySelector('.plot')?.dataset.points || 0)"
        page.wait_for_function(f"() => ({points})() >= 1")
        seen = page.evaluate(points)
        page.wait_for_function(f"() => ({points})() > {seen}")
        assert page.query_selector(".plot svg polyline.cpu") is not None

        page.click("button[data-action='restart']")
        page.wait_for_selector(
            ".progress-box[data-state='queued'], .progress-box[data-state='running']"
        )
        assert page.is_disabled("button[data-action='stop']"), "one action at a time"
        shoot(page, "05-server-restarting")
        page.wait_for_selector(".progress-box[data-state='succeeded']", timeout=20_000)
        page.wait_for_selector(".title-row .badge[data-status='running']")
        page.wait_for_selector(".actions-list li:has-text('Restart')")
        assert page.is_enabled("button[data-action='stop']")
        shoot(page, "06-server-restarted")
        watch.assert_clean()


def test_server_page_shows_a_resource_alert_fire_and_resolve(
    scene: Scene, browser: Browser
) -> None:
    sid = scene.ids["server"]
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/servers/{sid}")
        page.wait_for_selector("h1:has-text('web-1')")
        page.wait_for_selector("#alerts-h")
        # disk is never 0: the rule fires with the next sample, and the page follows live
        rule = scene.rest.post(
            "/api/alert-rules", {"metric": "disk", "threshold": 0, "serverId": sid}
        )
        page.wait_for_selector(
            f".alert-rules li[data-rule-id='{rule['id']}'][data-state='firing']", timeout=20_000
        )
        page.wait_for_selector(".alert-incidents li .badge[data-status='open']")
        shoot(page, "06b-server-alert-firing")
        scene.rest.call("PATCH", f"/api/alert-rules/{rule['id']}", {"threshold": 99.9})
        page.wait_for_selector(
            f".alert-rules li[data-rule-id='{rule['id']}'][data-state='ok']", timeout=20_000
        )
        page.wait_for_selector(".alert-incidents li .badge[data-status='closed']")
        scene.rest.call("DELETE", f"/api/alert-rules/{rule['id']}")
        watch.assert_clean()


LEAKS = ("/health", "10.0.0.5")  # the target's path, a server's private address


def assert_no_target(scene: Scene, text: str) -> None:
    for leak in (scene.target.url, f"127.0.0.1:{scene.target.port}", *LEAKS):
        assert leak not in text, f"{leak!r} is exposed"


def test_status_page_is_public_and_shows_no_target(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        resp = page.goto(base + "/status")
        assert resp is not None and resp.status == 200
        source = resp.text()
        assert MONITOR in source and "Acme status" in source
        assert_no_target(scene, source)
        assert "<script" not in source, "the status page works without JavaScript"
        page.wait_for_selector(".monitor.s-up .badge:has-text('Operational')")
        assert page.eval_on_selector_all(".monitor .bars .bar", "els => els.length") == 90
        shoot(page, "07-status")

        feed = page.request.get(base + "/status/feed.atom")
        assert feed.ok and feed.headers["content-type"].startswith("application/atom+xml")
        assert ET.fromstring(feed.body()).tag == "{http://www.w3.org/2005/Atom}feed"
        assert_no_target(scene, feed.text())
        data = page.request.get(base + "/api/status-page")
        assert data.ok
        assert_no_target(scene, data.text())
        assert set(data.json()["monitors"][0]) == {"name", "status", "uptime", "days"}

        other = page.goto(base + "/status/internal")
        assert other is not None and "Internal services" in other.text()
        assert (page.goto(base + "/status/nope") or other).status == 404

        page.set_viewport_size({"width": 360, "height": 740})
        page.goto(base + "/status")
        no_horizontal_scroll(page, 360)
        shown = "els => els.filter(e => e.offsetWidth > 0).length"
        assert page.eval_on_selector_all(".monitor .bars .bar", shown) == 30, "last 30 days"
        shoot(page, "08-status-360px")
        watch.errors = [e for e in watch.errors if "404" not in e]  # the /status/nope above
        watch.assert_clean()


def test_every_page_fits_a_360px_screen(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    with new_page(browser, 360, 740) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        card(page, "up")
        no_horizontal_scroll(page, 360)
        shoot(page, "09-overview-360px")
        pages = (
            ("#/inventory", "li.server svg.spark", "10-inventory-360px"),
            (f"#/servers/{scene.ids['server']}", ".plot svg", "11-server-360px"),
            (f"#/monitors/{scene.ids['monitor']}", ".beats", None),
            ("#/incidents", "table tbody tr", None),
            ("#/maintenance", ".window", None),
            ("#/secrets", "table tbody tr", None),
            ("#/assistant", "form.ask", None),
        )
        for hash_, ready, name in pages:
            page.goto(f"{base}/{hash_}")
            page.wait_for_selector(ready)
            no_horizontal_scroll(page, 360)
            if name:
                shoot(page, name)
        watch.assert_clean()


def test_keyboard_only(scene: Scene, browser: Browser) -> None:
    with new_page(browser) as (page, watch):
        page.goto(scene.daemon.url + "/")
        assert page.evaluate("document.activeElement.id") == "token", "the form takes focus"
        page.keyboard.type(scene.daemon.token)
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        card(page, "up")
        page.reload()  # still signed in: the token is in this tab's sessionStorage
        card(page, "up")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.className") == "skip"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        assert page.is_visible(".board"), "the skip link's #main is not a route"
        page.focus("#nav a[href='#/incidents']")
        page.keyboard.press("Enter")
        page.wait_for_selector("h1:has-text('Incidents')")
        # focus moves once the page has rendered, which can be a frame after the heading shows
        page.wait_for_function("document.activeElement.tagName === 'H1'", timeout=5000)
        assert page.get_attribute("#nav a[href='#/incidents']", "aria-current") == "page"
        page.focus("#nav a[href='#/']")
        page.keyboard.press("Enter")
        card(page, "up").query_selector("a").focus()
        page.keyboard.press("Enter")
        page.wait_for_selector("h1:has-text('Public API')")
        watch.assert_clean()


def test_incidents_maintenance_secrets_assistant(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.click("#nav a[href='#/incidents']")
        page.wait_for_selector("table tbody tr")
        shoot(page, "12-incidents")
        page.click("#nav a[href='#/maintenance']")
        page.wait_for_selector(".window h2:has-text('Weekly patching')")
        shoot(page, "13-maintenance")

        page.click("#nav a[href='#/secrets']")
        row = page.wait_for_selector("tr:has-text('DATABASE_URL')")
        assert SECRET_VALUE not in page.content(), "values are not listed"
        reveal = row.query_selector("button:has-text('Reveal')")
        assert reveal is not None
        page.wait_for_function(
            "() => !document.querySelector('.value-cell button').disabled"
        )  # enabled once the socket has said the role is admin
        reveal.click()
        page.wait_for_selector(f"code.secret-value:has-text('{SECRET_VALUE}')")
        shoot(page, "14-secrets-revealed")
        page.click(".value-cell button:has-text('Hide')")
        assert SECRET_VALUE not in page.content()

        page.click("#nav a[href='#/assistant']")
        page.wait_for_selector("form.ask textarea")
        page.click("button.link >> nth=0")
        assert page.input_value("#prompt")
        shoot(page, "15-assistant")
        watch.assert_clean()


def test_push_monitor_page_shows_the_last_pings_with_bodies(scene: Scene, browser: Browser) -> None:
    # Paused, and deleted at the end: the other tests of the module see the monitors they made.
    m = scene.rest.post(
        "/api/monitors",
        {"name": "Nightly backup", "kind": "push", "cron": "30 2 * * *", "enabled": False},
    )
    try:
        for tail, body in (("/start", None), ("/0", b"backup done: 3.2 GB\nno errors")):
            req = urllib.request.Request(
                f"{scene.daemon.url}/api/push/{m['pushToken']}{tail}", data=body, method="POST"
            )
            with urllib.request.urlopen(req, timeout=10) as resp:
                assert resp.status == 200
        with new_page(browser) as (page, watch):
            sign_in(page, scene.daemon.url, scene.daemon.token)
            page.goto(f"{scene.daemon.url}/#/monitors/{m['id']}")
            page.wait_for_selector("h1:has-text('Nightly backup')")
            assert "cron 30 2 * * * (UTC)" in page.inner_text("p.muted >> nth=0")
            pings = page.wait_for_selector("section[aria-labelledby='pings-h'] .pings")
            assert [li.inner_text().split()[1] for li in pings.query_selector_all("li")] == [
                "Succeeded",
                "Starting",
            ]
            page.click(".pings summary")
            body = page.wait_for_selector(".pings pre.ping-body")
            assert body.inner_text() == "backup done: 3.2 GB\nno errors"
            assert "exit 0" in pings.inner_text() and "ran" in pings.inner_text()
            shoot(page, "04-push-monitor-pings")
            watch.assert_clean()
    finally:
        scene.rest.call("DELETE", f"/api/monitors/{m['id']}")


def test_reconnects_and_resyncs_after_a_restart(scene: Scene, browser: Browser) -> None:
    """Last in this module: it restarts the daemon (same port and state)."""
    with new_page(browser) as (page, _):  # the dropped socket is logged as an error: expected
        sign_in(page, scene.daemon.url, scene.daemon.token)
        card(page, "up")
        page.evaluate("window.__sameDocument = true")
        old = scene.daemon
        assert old.stop() == 0, old.log
        try:
            page.wait_for_selector("#conn[data-state='offline']")
            assert page.is_visible("#stale"), "the page says its data may be out of date"
            shoot(page, "16-offline-reconnecting", full=False)
            scene.target.healthy = False  # changes while the page cannot hear about it
            scene.daemon = scene.start(old.port)
            page.wait_for_selector("#conn[data-state='live']", timeout=60_000)
            card(page, "down")
            assert page.is_hidden("#stale")
        except Exception as exc:
            state = page.inner_text("#conn")
            raise AssertionError(
                f"{exc}\npage: {state}\nbefore:\n{old.log}\nafter:\n{scene.daemon.log}"
            ) from exc
        finally:
            scene.target.healthy = True
        try:
            card(page, "up")
            assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
        finally:
            scene.daemon.kill()  # started by this test, so stopped by it (the module is over)
