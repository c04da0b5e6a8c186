"""The dashboard's admin forms in a real headless Chromium against a real daemon: a maintenance
window made through the form puts its monitor in maintenance, the cron helper previews what the
daemon computes, a webhook channel's "Send test" reaches a real receiver on loopback, a token
is shown once and refused after its revoke, secrets, settings and the audit filters work, a
viewer sees no write controls, and every page fits 360 px. Screenshots land in
tests/output/screenshots/admin-*.png. Profiles (JWT sign-ins) are in test_dashboard_profiles.py."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from browser import MONITOR, Scene, Watch, new_page, shoot, sign_in, status_of
from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("admin"))
    try:
        monitors = s.rest.get("/api/monitors")["items"]
        s.ids["config"] = next(m["id"] for m in monitors if m["name"] == MONITOR)
        yield s
    finally:
        s.daemon.kill()
        s.target.close()


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        got = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got.append(json.loads(raw or b"null"))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def refused(watch: Watch, *codes: int) -> None:
    """Drop the console lines Chromium logs for the refusals a test provokes on purpose."""
    pattern = re.compile(rf"status of ({'|'.join(str(c) for c in codes)})")
    watch.errors = [e for e in watch.errors if not pattern.search(e)]


def fits(page: Page, width: int = 360) -> None:
    scroll = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert scroll <= width, f"{page.url}: {scroll}px wide at {width}px"


def local(page: Page, minutes: int) -> str:
    """A datetime-local value minutes from now, in the browser's own zone."""
    return str(page.evaluate(LOCAL, minutes))


LOCAL = """(m) => {
  const d = new Date(Date.now() + m * 60000);
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`
    + `T${p(d.getHours())}:${p(d.getMinutes())}`;
}"""


def test_a_window_made_in_the_form_puts_the_monitor_in_maintenance(
    scene: Scene, browser: Browser
) -> None:
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.click("#nav a[href='#/maintenance']")
        page.click("a.button:has-text('New window')")
        page.fill("#window-form-name", "Deploy now")
        page.fill("#window-form-startsAt", local(page, -2))
        page.fill("#window-form-endsAt", local(page, 60))
        page.check(f"#window-form-scope-monitorIds li:has-text('{MONITOR}') input")
        shoot(page, "admin-01-window-one-off")
        page.click("button:has-text('Create window')")
        page.wait_for_selector(".window:has-text('Deploy now') [data-status='in-force']")
        page.click("#nav a[href='#/']")
        page.wait_for_selector(
            f".monitor-card[data-status='maintenance']:has-text('{MONITOR}')", timeout=20_000
        )
        made = [w for w in scene.rest.get("/api/maintenance")["items"] if w["name"] == "Deploy now"]
        assert made and made[0]["scope"]["monitorIds"] == [scene.ids["config"]]

        # Edit it into a recurring one: the cron helper shows what the daemon computes.
        page.goto(f"{base}/#/maintenance/{made[0]['id']}")
        page.select_option("#window-form-kind", "recurring")
        page.select_option("#window-form-preset", "0 2 * * sun")
        page.fill("#window-form-timezone", "Asia/Tokyo")
        page.wait_for_function(
            "() => document.querySelectorAll('#window-form-preview li').length === 5"
            " && document.querySelector('#window-form-preview').textContent.includes('GMT+9')"
        )
        shown = page.eval_on_selector_all(
            "#window-form-preview li", "els => els.map((e) => e.dataset.start)"
        )
        q = urllib.parse.urlencode(
            {"cron": "0 2 * * sun", "timezone": "Asia/Tokyo", "duration": 3600}
        )
        expected = [o["start"] for o in scene.rest.get(f"/api/maintenance/preview?{q}")["items"]]
        assert shown == expected and all(s.endswith("T17:00:00.000Z") for s in shown)
        shoot(page, "admin-02-window-cron-preview")
        page.fill("#window-form-cron", "0 2 * *")
        error = page.wait_for_selector("[data-field='$.cron'] .field-error:visible")
        assert "5 fields" in error.inner_text()
        page.fill("#window-form-cron", "0 2 * * sun")
        page.click("button:has-text('Save changes')")
        page.wait_for_selector(".saved .notice.ok")
        saved = scene.rest.get(f"/api/maintenance/{made[0]['id']}")
        assert (saved["kind"], saved["cron"], saved["timezone"], saved["startsAt"]) == (
            "recurring",
            "0 2 * * sun",
            "Asia/Tokyo",
            None,
        )
        page.click("button:has-text('Delete window')")
        page.click("dialog button[data-choice='delete']")
        page.wait_for_selector("h1:has-text('Maintenance')")
        assert not [
            w for w in scene.rest.get("/api/maintenance")["items"] if w["name"] == "Deploy now"
        ]
        refused(watch, 422)
        watch.assert_clean()


def test_a_window_changed_meanwhile_is_not_overwritten(scene: Scene, browser: Browser) -> None:
    w = scene.rest.post(
        "/api/maintenance",
        {
            "name": "Contested window",
            "kind": "recurring",
            "cron": "0 4 * * mon",
            "duration": 600,
            "enabled": False,
            "scope": {"all": True},
        },
    )
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/maintenance/{w['id']}")
        page.wait_for_selector("#window-form-preview li")
        scene.rest.call("PATCH", f"/api/maintenance/{w['id']}", {"name": "Renamed elsewhere"})
        page.fill("#window-form-cron", "0 5 * * mon")
        page.click("button:has-text('Save changes')")
        conflict = page.wait_for_selector(".conflict")
        assert "Changed by someone else" in conflict.inner_text()
        assert scene.rest.get(f"/api/maintenance/{w['id']}")["cron"] == "0 4 * * mon"
        shoot(page, "admin-13-window-conflict")
        page.click(".conflict button:has-text('Reload')")
        page.wait_for_selector("h1:has-text('Window: Renamed elsewhere')")
        refused(watch, 412)
        watch.assert_clean()
    scene.rest.call("DELETE", f"/api/maintenance/{w['id']}")


def test_an_edit_keeps_the_scope_levels_the_form_does_not_draw(
    scene: Scene, browser: Browser
) -> None:
    env = "6f1c2b7e-0000-4000-8000-00000000e1e1"
    w = scene.rest.post(
        "/api/maintenance",
        {
            "name": "By environment",
            "kind": "one-off",
            "startsAt": "2030-01-01T00:00:00Z",
            "endsAt": "2030-01-01T01:00:00Z",
            "scope": {"environmentIds": [env]},
        },
    )
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/maintenance/{w['id']}")
        assert "Also covers 1 environment(s)" in page.inner_text("#window-form")
        page.fill("#window-form-name", "By environment, renamed")
        page.click("button:has-text('Save changes')")
        page.wait_for_selector(".saved .notice.ok")
        watch.assert_clean()
    saved = scene.rest.get(f"/api/maintenance/{w['id']}")
    assert saved["scope"]["environmentIds"] == [env] and saved["startsAt"].startswith("2030-01-01")
    scene.rest.call("DELETE", f"/api/maintenance/{w['id']}")


def test_a_token_made_by_keyboard_alone(scene: Scene, browser: Browser) -> None:
    with new_page(browser, 360, 740) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/access")
        page.wait_for_selector("summary:has-text('New token')")
        tab_to(page, "summary")
        page.keyboard.press("Enter")  # opens the details
        tab_to(page, "#token-form-name")
        page.keyboard.type("typed-token")
        tab_to(page, "#token-form-role")
        page.keyboard.press("ArrowDown")  # viewer -> operator
        tab_to(page, "#token-form button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_selector("[data-token-shown]")
        fits(page)
        made = [t for t in scene.rest.get("/api/tokens")["items"] if t["name"] == "typed-token"]
        assert made and made[0]["role"] == "operator"
        watch.assert_clean()


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until selector has the focus (keyboard only: no clicks, no focus())."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus by Tab")


def test_a_webhook_channel_made_in_the_form_gets_the_test(scene: Scene, browser: Browser) -> None:
    receiver = Receiver()
    try:
        with new_page(browser) as (page, watch):
            sign_in(page, scene.daemon.url, scene.daemon.token)
            page.click("#nav a[href='#/notifications']")
            page.click("a.button:has-text('New channel')")
            page.fill("#channel-form-name", "Ops hook")
            assert page.is_hidden("#channel-form-config-host"), "only the webhook's fields show"
            page.fill("#channel-form-config-url", receiver.url)
            page.fill("#channel-form-config-secret", "short")
            page.click("button:has-text('Create channel')")
            error = page.wait_for_selector("[data-field='$.config.secret'] .field-error:visible")
            assert "16" in error.inner_text()
            page.fill("#channel-form-config-secret", "a-signing-secret-of-some-length")
            shoot(page, "admin-03-channel-webhook")
            page.click("button:has-text('Create channel')")
            page.wait_for_selector("h1:has-text('Channel: Ops hook')")
            assert page.input_value("#channel-form-config-secret") == "", "never shown back"
            page.click("button:has-text('Send test')")
            page.wait_for_selector("[data-delivered='true']")
            assert receiver.bodies, "the receiver got the test event"
            shoot(page, "admin-04-channel-test-delivered")
            # an edit that leaves the masked URL as shown keeps the stored one
            page.fill("#channel-form-name", "Ops hook 2")
            page.click("button:has-text('Save changes')")
            page.wait_for_selector("h1:has-text('Channel: Ops hook 2')")
            page.click("button:has-text('Send test')")
            page.wait_for_function("() => document.querySelector('[data-delivered]')")
            assert len(receiver.bodies) == 2
            watch.assert_clean()
    finally:
        receiver.close()


def test_a_token_is_shown_once_and_refused_after_its_revoke(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.click("#nav a[href='#/access']")
        page.click("summary:has-text('New token')")
        page.fill("#token-form-name", "ci-reader")
        page.select_option("#token-form-role", "viewer")
        page.fill("#token-form-expiresDays", "30")
        page.click("button:has-text('Create token')")
        token = page.wait_for_selector("[data-token-shown] code.secret-value").inner_text()
        assert page.is_visible("button:has-text('Copy token')")
        shoot(page, "admin-05-token-shown-once")
        assert status_of(token, base, "/api/monitors") == 200
        page.reload()
        page.wait_for_selector("tr:has-text('ci-reader')")
        assert token not in page.content(), "shown once: not after a reload"
        page.click("button[aria-label='Revoke ci-reader']")
        page.click("dialog button[data-choice='revoke']")
        page.wait_for_selector("tr:has-text('ci-reader'):has-text('revoked')")
        assert status_of(token, base, "/api/monitors") == 401
        watch.assert_clean()


def test_secrets_settings_and_audit_filters(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.click("#nav a[href='#/secrets']")
        page.click("summary:has-text('New secret')")
        page.fill("#secret-form-key", "API_KEY")
        page.fill("#secret-form-env", "staging")
        page.fill("#secret-form-value", "first-value")
        shoot(page, "admin-06-secret-new")
        page.click("button:has-text('Create secret')")
        page.wait_for_selector("tr:has-text('API_KEY') td:has-text('v1')")
        page.click("button[aria-label='Rotate API_KEY (staging)']")
        page.keyboard.type("second-value")
        page.keyboard.press("Enter")
        page.wait_for_selector("tr:has-text('API_KEY') td:has-text('v2')")
        assert "second-value" not in page.content() and "first-value" not in page.content()
        ident = page.get_attribute("tr:has-text('API_KEY')", "data-secret-id")
        assert scene.rest.get(f"/api/secrets/{ident}/value")["value"] == "second-value"
        page.click("button[aria-label='Delete API_KEY (staging)']")
        page.click("dialog button[data-choice='delete']")
        page.wait_for_selector("tr:has-text('API_KEY')", state="detached")

        page.click("#nav a[href='#/settings']")
        page.click("summary:has-text('New setting')")
        page.fill("#setting-new-key", "status.banner")
        page.fill("#setting-new-value", "{not json")
        page.click("button:has-text('Add setting')")
        page.wait_for_selector("[data-field='$.value'] .field-error:visible")
        page.fill("#setting-new-value", '{"text": "Upgrade tonight"}')
        shoot(page, "admin-07-setting-new")
        page.click("button:has-text('Add setting')")
        page.wait_for_selector("[data-setting='status.banner'] pre:has-text('Upgrade tonight')")
        assert scene.rest.get("/api/settings/status.banner")["value"] == {"text": "Upgrade tonight"}

        page.click("#nav a[href='#/audit']")
        page.wait_for_selector("#audit-filter-entity")
        page.fill("#audit-filter-entity", "secrets")
        page.select_option("#audit-filter-method", "DELETE")
        page.click("button:has-text('Apply filters')")
        page.wait_for_function(
            "() => [...document.querySelectorAll('tbody tr')].length === 1"
            " && document.querySelector('tbody').textContent.includes('DELETE /api/secrets/')"
        )
        assert "method=DELETE" in page.url
        shoot(page, "admin-08-audit-filtered")
        page.select_option("#audit-filter-outcome", "denied")
        page.click("button:has-text('Apply filters')")
        page.wait_for_selector("td:has-text('No entries match')")
        watch.assert_clean()


def test_a_viewer_sees_no_write_controls_and_pages_fit_360px(
    scene: Scene, browser: Browser
) -> None:
    viewer = scene.rest.post("/api/tokens", {"name": "admin-viewer", "role": "viewer"})["token"]
    channel = scene.rest.post(
        "/api/notifications",
        {"name": "Seen", "kind": "webhook", "config": {"url": "https://hooks.example.com/x"}},
    )
    window = scene.rest.post(
        "/api/maintenance",
        {
            "name": "Later",
            "kind": "recurring",
            "cron": "0 3 * * sat",
            "timezone": "Europe/Berlin",
            "duration": 600,
            "scope": {"monitorIds": [scene.ids["config"]]},
        },
    )
    base = scene.daemon.url
    pages = [
        ("#/maintenance", ".window"),
        (f"#/maintenance/{window['id']}", ".read-only"),
        ("#/maintenance/new", ".read-only"),
        ("#/notifications", "tbody tr"),
        (f"#/notifications/{channel['id']}", ".read-only"),
        ("#/secrets", "tbody tr"),
        ("#/settings", ".read-only"),
        ("#/access", ".read-only"),
        ("#/audit", ".read-only"),
    ]
    with new_page(browser, 360, 740) as (page, watch):
        sign_in(page, base, viewer)
        for hash_, ready in pages:
            page.goto(f"{base}/{hash_}")
            page.wait_for_selector(ready)
            shown = page.evaluate(
                "() => [...document.querySelectorAll('[data-write], form.form')]"
                ".filter((n) => n.offsetParent !== null).length"
            )
            assert shown == 0, hash_
            fits(page)
        shoot(page, "admin-09-viewer-360px")
        watch.assert_clean()
    with new_page(browser, 360, 740) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        for hash_, ready in [
            ("#/maintenance", ".window"),
            (f"#/maintenance/{window['id']}", "#window-form-preview li"),
            ("#/maintenance/new", "#window-form-name"),
            ("#/notifications", "tbody tr button:has-text('Send test')"),
            (f"#/notifications/{channel['id']}", "#channel-form-name"),
            ("#/notifications/new", "#channel-form-name"),
            ("#/secrets", "summary:has-text('New secret')"),
            ("#/settings", "summary:has-text('New setting')"),
            ("#/access", "tbody tr:has-text('admin-viewer')"),
            ("#/audit", "tbody tr"),
        ]:
            page.goto(f"{base}/{hash_}")
            page.wait_for_selector(ready)
            fits(page)
        page.goto(f"{base}/#/maintenance/{window['id']}")
        page.wait_for_selector("#window-form-preview li")
        shoot(page, "admin-10-window-360px")
        page.goto(f"{base}/#/notifications/new")
        page.select_option("#channel-form-kind", "email")
        page.wait_for_selector("#channel-form-config-host:visible")
        fits(page)
        shoot(page, "admin-11-channel-email-360px")
        watch.assert_clean()
