"""The dashboard's forms in a real headless Chromium against a real daemon: inventory and
monitors created, edited and deleted through the forms only, "Test now" on an unsaved monitor,
a concurrent change refused with a conflict message, a viewer without write controls, 360 px
screens and the keyboard. Screenshots land in tests/output/screenshots/forms-*.png."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from browser import (
    MONITOR,
    Scene,
    Watch,
    new_page,
    shoot,
    sign_in,
)
from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("forms"))
    try:
        monitors = s.rest.get("/api/monitors")["items"]
        s.ids["config"] = next(m["id"] for m in monitors if m["name"] == MONITOR)
        yield s
    finally:
        s.daemon.kill()
        s.target.close()


def refused(watch: Watch, *codes: int) -> None:
    """Drop the console lines Chromium logs for the refusals a test provokes on purpose."""
    pattern = re.compile(rf"status of ({'|'.join(str(c) for c in codes)})")
    watch.errors = [e for e in watch.errors if not pattern.search(e)]


def fits(page: Page, width: int = 360) -> None:
    scroll = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert scroll <= width, f"{page.url}: {scroll}px wide at {width}px"


def writes_shown(page: Page) -> int:
    return int(
        page.evaluate(
            "() => [...document.querySelectorAll('[data-write]')]"
            ".filter((n) => n.offsetParent !== null).length"
        )
    )


def test_inventory_then_monitor_through_the_forms_only(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.click("#nav a[href='#/inventory']")
        page.click("a.button:has-text('New client')")
        page.fill("#client-form-name", "Globex")
        page.fill("#client-form-tags", "vip")
        page.keyboard.press("Enter")
        page.wait_for_selector(".chip:has-text('vip')")
        shoot(page, "forms-01-client")
        page.click("button:has-text('Create client')")
        page.click("a.button:has-text('Add a project')")
        page.wait_for_selector("#project-form-name")
        assert (
            page.eval_on_selector("#project-form-clientId", "s => s.selectedOptions[0].text")
            == "Globex"
        )
        page.fill("#project-form-name", "Shop")
        for tech in ("Python", "Redis"):
            page.fill("#project-form-technology", tech)
            page.keyboard.press("Enter")
        page.wait_for_selector(".chip:has-text('Redis')")
        shoot(page, "forms-02-project")
        page.click("button:has-text('Create project')")
        page.click("a.button:has-text('Add an environment')")
        page.fill("#environment-form-name", "Production")
        page.fill("#environment-form-url", "not a url")
        page.click("button:has-text('Create environment')")
        error = page.wait_for_selector("[data-field='$.url'] .field-error:visible")
        assert "http" in error.inner_text(), "checked in the browser before any request"
        page.fill("#environment-form-url", "https://shop.example.com")
        page.fill("#environment-form-resources", "[1]")
        page.click("button:has-text('Create environment')")
        error = page.wait_for_selector("[data-field='$.resources'] .field-error:visible")
        assert "JSON object" in error.inner_text()
        page.fill("#environment-form-resources", '{"database": "orders"}')
        shoot(page, "forms-03-environment")
        page.click("button:has-text('Create environment')")
        page.click("a.button:has-text('Add a server')")
        page.fill("#server-form-name", "shop-web-1")
        page.fill("#server-form-type", "web")
        page.fill("#server-form-privateIp", "10.1.0.7")
        page.select_option("#server-form-sampling", "agent")
        shoot(page, "forms-04-server")
        page.click("button:has-text('Create server')")
        page.wait_for_selector("h1:has-text('Server: shop-web-1')")
        server_id = page.url.split("/servers/")[1].split("?")[0]
        page.click("button:has-text('Create agent token')")
        command = page.wait_for_selector("pre.command").inner_text()
        assert f"--server-id {server_id}" in command and "dragonopsd agent --url" in command
        assert "Shown once" in page.inner_text(".agent-token")
        assert "null" not in page.inner_text("main")
        shoot(page, "forms-05-server-agent-token")

        page.click("#nav a[href='#/monitors']")
        page.click("a.button:has-text('New monitor')")
        page.fill("#monitor-form-name", "Shop health")
        page.fill("#monitor-form-url", scene.target.url)
        assert page.is_hidden("#monitor-form-host"), "only the http kind's fields show"
        page.click("button:has-text('Add condition')")
        page.keyboard.type("[RESPONSE_TIME] < 5000")
        page.fill("#monitor-form-interval", "1")
        page.select_option("#monitor-form-serverId", f"serverId:{server_id}")
        shoot(page, "forms-06-monitor")
        page.click("button:has-text('Create monitor')")
        page.wait_for_selector("h1:has-text('Shop health')")
        monitor = scene.rest.get(page.url.split("#")[1].replace("/monitors/", "/api/monitors/"))
        assert monitor["conditions"] == ["[STATUS] == 200", "[RESPONSE_TIME] < 5000"]
        assert monitor["serverId"] == server_id
        page.click("#nav a[href='#/']")
        page.wait_for_selector(
            ".monitor-card[data-status='up']:has-text('Shop health')", timeout=20_000
        )
        project = scene.rest.get("/api/projects?q=Shop")["items"][0]
        assert project["technology"] == ["Python", "Redis"]
        env = scene.rest.get("/api/environments?q=Production")["items"][0]
        assert env["resources"] == {"database": "orders"}
        watch.assert_clean()


def test_test_now_shows_each_condition_before_saving(scene: Scene, browser: Browser) -> None:
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/monitors/new")
        page.fill("#monitor-form-name", "Trial only")
        page.fill("#monitor-form-url", scene.target.url)
        page.click("button:has-text('Add condition')")
        page.keyboard.type("[BODY] == pat(*nope*)")
        page.click("button:has-text('Test now')")
        page.wait_for_selector(".test-result .trial[data-ok='false']")
        assert page.get_attribute(".condition-row[data-index='0']", "data-state") == "pass"
        failing = page.wait_for_selector(".condition-row[data-index='1'][data-state='fail']")
        assert "fails" in failing.inner_text()
        shoot(page, "forms-07-test-now-failing")
        # what the browser can tell is said before any request...
        page.fill(".condition-row[data-index='1'] input", "[STATUS] 200")
        page.click("button:has-text('Test now')")
        row = page.wait_for_selector(".condition-row[data-index='1'][data-state='error']")
        assert "compares two sides" in row.inner_text()
        # ...and a parse error comes back from the API on its row
        page.fill(".condition-row[data-index='1'] input", "[NOPE] == 1")
        page.click("button:has-text('Test now')")
        row = page.wait_for_selector(".condition-row[data-index='1'][data-state='error']")
        assert "NOPE" in row.inner_text() or "placeholder" in row.inner_text()
        assert not [
            m for m in scene.rest.get("/api/monitors")["items"] if m["name"] == "Trial only"
        ]
        refused(watch, 422)
        watch.assert_clean()


def test_an_edit_after_someone_else_changed_it_is_refused(scene: Scene, browser: Browser) -> None:
    m = scene.rest.post(
        "/api/monitors",
        {"name": "Contested", "kind": "http", "url": scene.target.url, "enabled": False},
    )
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/monitors/{m['id']}/edit")
        page.wait_for_selector("h1:has-text('Edit Contested')")
        scene.rest.call("PATCH", f"/api/monitors/{m['id']}", {"name": "Renamed elsewhere"})
        page.fill("#monitor-form-interval", "120")
        page.click("button:has-text('Save changes')")
        conflict = page.wait_for_selector(".conflict")
        assert "Changed by someone else" in conflict.inner_text()
        assert scene.rest.get(f"/api/monitors/{m['id']}")["interval"] == 60, "nothing overwritten"
        shoot(page, "forms-08-conflict")
        page.click(".conflict button:has-text('Reload')")
        page.wait_for_selector("h1:has-text('Edit Renamed elsewhere')")
        page.fill("#monitor-form-interval", "120")
        page.click("button:has-text('Save changes')")
        page.wait_for_url(re.compile(rf"#/monitors/{m['id']}$"))  # the monitor's page
        assert scene.rest.get(f"/api/monitors/{m['id']}")["interval"] == 120
        refused(watch, 412)
        watch.assert_clean()


def test_a_status_change_meanwhile_is_no_conflict(scene: Scene, browser: Browser) -> None:
    """The ETag covers the status too; a write refused only because the monitor went down
    (its updatedAt unchanged: nobody edited it) is sent again with the fresh ETag."""
    m = scene.rest.post(
        "/api/monitors",
        {"name": "Flipping", "kind": "http", "url": scene.target.url, "interval": 3600},
    )
    path = f"/api/monitors/{m['id']}"
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/monitors/{m['id']}/edit")
        page.wait_for_selector("h1:has-text('Edit Flipping')")
        scene.target.healthy = False
        try:
            assert scene.rest.post(f"{path}/check", {})["status"] == "down"
        finally:
            scene.target.healthy = True
        page.fill("#monitor-form-interval", "1800")
        page.click("button:has-text('Save changes')")
        page.wait_for_url(re.compile(rf"#/monitors/{m['id']}$"))  # the monitor's page
        assert page.query_selector(".conflict") is None
        assert scene.rest.get(path)["interval"] == 1800
        refused(watch, 412)
        watch.assert_clean()
    scene.rest.call("DELETE", path)


def test_delete_with_children_offers_the_cascade(scene: Scene, browser: Browser) -> None:
    client = scene.rest.post("/api/clients", {"name": "Initech"})
    scene.rest.post("/api/projects", {"clientId": client["id"], "name": "TPS"})
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/inventory/clients/{client['id']}")
        page.click("button:has-text('Delete client')")
        page.click("dialog button[data-choice='delete']")
        dialog = page.wait_for_selector("dialog:has-text('still has 1 projects')")
        shoot(page, "forms-09-delete-cascade", full=False)
        dialog.query_selector("button[data-choice='cascade']").click()  # type: ignore[union-attr]
        page.wait_for_url("**/#/inventory")
        assert not scene.rest.get("/api/clients?q=Initech")["items"]
        refused(watch, 409)
        watch.assert_clean()


def test_bulk_pause_tag_and_delete_from_the_filtered_list(scene: Scene, browser: Browser) -> None:
    made = [
        scene.rest.post(
            "/api/monitors",
            {
                "name": f"Bulk {i}",
                "kind": "tcp",
                "host": "127.0.0.1",
                "port": scene.target.port,
                "tags": ["bulk"],
                "interval": 30,
            },
        )
        for i in range(3)
    ]
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/monitors")
        page.wait_for_selector("tr:has-text('Bulk 2')")
        page.select_option("#mon-tag", "bulk")
        page.select_option("#mon-kind", "tcp")
        page.wait_for_function("() => document.querySelectorAll('tbody tr').length === 3")
        page.check("#mon-all")
        page.click("button[data-bulk='pause']")
        page.wait_for_selector(".bulk-report:has-text('3 paused')")
        assert all(not scene.rest.get(f"/api/monitors/{m['id']}")["enabled"] for m in made)
        page.select_option("#mon-status", "paused")
        page.wait_for_function("() => document.querySelectorAll('tbody tr').length === 3")
        page.check("#mon-all")
        page.fill("#bulk-tag", "night")
        page.click("button[data-bulk='tag']")
        page.wait_for_selector(".bulk-report:has-text('3 tagged night')")
        assert scene.rest.get(f"/api/monitors/{made[0]['id']}")["tags"] == ["bulk", "night"]
        page.check("#mon-all")
        page.click("button[data-bulk='resume']")
        page.wait_for_selector(".bulk-report:has-text('3 resumed')")
        assert all(scene.rest.get(f"/api/monitors/{m['id']}")["enabled"] for m in made)
        page.select_option("#mon-status", "")
        page.select_option("#mon-tag", "night")
        page.wait_for_function("() => document.querySelectorAll('tbody tr').length === 3")
        page.check("#mon-all")
        page.click("button[data-bulk='untag']")
        page.wait_for_selector(".bulk-report:has-text('3 untagged night')")
        assert scene.rest.get(f"/api/monitors/{made[0]['id']}")["tags"] == ["bulk"]
        page.select_option("#mon-tag", "bulk")
        page.wait_for_function("() => document.querySelectorAll('tbody tr').length === 3")
        assert "null" not in page.inner_text("main")
        shoot(page, "forms-10-monitor-list")
        page.check("#mon-all")
        page.click("button[data-bulk='delete']")
        page.click("dialog button[data-choice='delete']")
        page.wait_for_selector(".bulk-report:has-text('3 deleted')")
        assert not [m for m in scene.rest.get("/api/monitors")["items"] if "bulk" in m["tags"]]
        # a config-managed monitor is refused by name, with the daemon's reason
        page.select_option("#mon-tag", "")
        page.select_option("#mon-kind", "")
        page.fill("#mon-q", MONITOR)
        page.wait_for_function("() => document.querySelectorAll('tbody tr').length === 1")
        page.check("#mon-all")
        page.click("button[data-bulk='pause']")
        page.wait_for_selector(".bulk-report:has-text('0 paused')")
        assert "managed by" in page.inner_text(".bulk-report ul.error")
        assert scene.rest.get(f"/api/monitors/{scene.ids['config']}")["enabled"] is True
        # 412s too: a resumed monitor's first check moves its status (and ETag) between the
        # GET and the PATCH, and the write goes again with the fresh ETag (updatedAt unchanged)
        refused(watch, 409, 412)
        watch.assert_clean()


def test_a_config_managed_monitor_is_read_only_with_the_reason(
    scene: Scene, browser: Browser
) -> None:
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(f"{scene.daemon.url}/#/monitors/{scene.ids['config']}")
        page.wait_for_selector(".notice.managed:has-text('managed by the config file')")
        assert page.query_selector(".actions a:has-text('Edit')") is None
        page.goto(f"{scene.daemon.url}/#/monitors/{scene.ids['config']}/edit")
        page.wait_for_selector(".notice.managed")
        assert page.is_disabled("#monitor-form-name")
        assert page.query_selector("button:has-text('Save changes')") is None
        shoot(page, "forms-11-config-managed")
        watch.assert_clean()


def test_a_viewer_sees_no_write_controls_and_a_forced_write_is_403(
    scene: Scene, browser: Browser
) -> None:
    viewer = scene.rest.post("/api/tokens", {"name": "forms-viewer", "role": "viewer"})["token"]
    client = scene.rest.post("/api/clients", {"name": "Viewable"})
    project = scene.rest.post("/api/projects", {"clientId": client["id"], "name": "Seen"})
    env = scene.rest.post("/api/environments", {"projectId": project["id"], "name": "Prod"})
    server = scene.rest.post("/api/servers", {"environmentId": env["id"], "name": "seen-1"})
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        sign_in(page, base, viewer)
        for hash_, ready in (
            ("#/inventory", "li.server, .tree details"),
            ("#/monitors", "tbody tr"),
            (f"#/monitors/{scene.ids['config']}", ".beats-box"),
            (f"#/inventory/clients/{client['id']}", ".read-only"),
            (f"#/servers/{server['id']}", ".plot"),
            ("#/monitors/new", ".read-only"),
        ):
            page.goto(f"{base}/{hash_}")
            page.wait_for_selector(ready)
            assert writes_shown(page) == 0, hash_
            assert page.query_selector("form.form:visible") is None, hash_
            actions = "button[data-action]:visible, button:has-text('Run check now'):visible"
            assert page.query_selector(actions) is None, hash_
        shoot(page, "forms-12-viewer")
        status = page.evaluate(
            """async (token) => (await fetch('/api/clients', {method: 'POST',
                headers: {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'},
                body: JSON.stringify({name: 'sneaky'})})).status""",
            viewer,
        )
        assert status == 403
        refused(watch, 403)
        watch.assert_clean()


def test_forms_fit_360px_and_the_client_form_works_by_keyboard(
    scene: Scene, browser: Browser
) -> None:
    base = scene.daemon.url
    server = scene.rest.get("/api/servers?q=shop-web-1")["items"]
    with new_page(browser, 360, 740) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        pages: list[tuple[str, str]] = [
            ("#/inventory/clients/new", "#client-form-name"),
            ("#/inventory/projects/new", "#project-form-name"),
            ("#/monitors", "#mon-q"),
            ("#/monitors/new", "#monitor-form-name"),
            (f"#/monitors/{scene.ids['config']}/edit", ".notice.managed"),
        ]
        if server:
            pages.append((f"#/inventory/servers/{server[0]['id']}", "#server-form-name"))
        for hash_, ready in pages:
            page.goto(f"{base}/{hash_}")
            page.wait_for_selector(ready)
            fits(page)
        page.goto(f"{base}/#/monitors/new")
        page.select_option("#monitor-form-kind", "postgres")
        page.wait_for_selector("#monitor-form-username:visible")
        fits(page)
        shoot(page, "forms-13-monitor-postgres-360px")

        page.goto(f"{base}/#/inventory")
        page.wait_for_selector("a.button:has-text('New client'):visible")
        tab_to(page, "a.button[href='#/inventory/clients/new']")
        page.keyboard.press("Enter")
        page.wait_for_selector("#client-form-name")
        tab_to(page, "#client-form-name")
        page.keyboard.type("Keyboard Ltd")
        tab_to(page, "#client-form-tags")
        page.keyboard.type("typed")
        page.keyboard.press("Enter")  # adds the chip, does not submit
        page.wait_for_selector(".chip:has-text('typed')")
        tab_to(page, "button[type=submit]")
        page.keyboard.press("Enter")
        page.wait_for_selector("h1:has-text('Client: Keyboard Ltd')")
        fits(page)
        shoot(page, "forms-14-client-by-keyboard-360px")
        made = scene.rest.get("/api/clients?q=Keyboard")["items"]
        assert made and made[0]["tags"] == ["typed"]
        watch.assert_clean()


def tab_to(page: Page, selector: str, limit: int = 60) -> None:
    """Press Tab until selector has the focus (keyboard only: no clicks, no focus())."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus by Tab")
