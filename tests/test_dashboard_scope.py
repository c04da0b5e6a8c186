"""Access scoped to clients in the dashboard, in a real headless Chromium against a real daemon
(issue 18): an admin picks a client as a chip in the token form (by keyboard, at 360 px), the
token list names the scope, an error the API names under $.scope lands beside the picker, and
signing in with the scoped token shows that client's inventory and board only. Screenshots
land in tests/output/screenshots/scope-*.png."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest
from browser import Rest, Scene, Watch, new_page, shoot, sign_in
from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("scope"))
    try:
        for name in ("Acme", "Globex"):
            tree = _client_tree(s, name)
            s.ids.update({f"{name}-{k}": v["id"] for k, v in tree.items()})
        yield s
    finally:
        s.daemon.kill()
        s.target.close()


def _client_tree(s: Scene, name: str) -> dict[str, Any]:
    post = s.rest.post
    c = post("/api/clients", {"name": name})
    p = post("/api/projects", {"clientId": c["id"], "name": f"{name} Portal"})
    e = post("/api/environments", {"projectId": p["id"], "name": "Production"})
    server = post("/api/servers", {"environmentId": e["id"], "name": f"{name.lower()}-web"})
    m = post(
        "/api/monitors",
        {"name": f"{name} cron", "kind": "push", "interval": 3600, "serverId": server["id"]},
    )
    return {"client": c, "project": p, "environment": e, "server": server, "monitor": m}


def fits(page: Page, width: int = 360) -> None:
    scroll = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert scroll <= width, f"{page.url}: {scroll}px wide at {width}px"


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until selector has the focus (keyboard only: no clicks, no focus())."""
    for _ in range(limit):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} never got the focus by Tab")


def refused(watch: Watch, *codes: int) -> None:
    """Drop the console lines Chromium logs for the refusals a test provokes on purpose."""
    pattern = re.compile(rf"status of ({'|'.join(str(c) for c in codes)})")
    watch.errors = [e for e in watch.errors if not pattern.search(e)]


def test_an_admin_scopes_a_token_to_one_client_by_keyboard(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    acme = scene.ids["Acme-client"]
    with new_page(browser, 360, 740) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.goto(f"{base}/#/access")
        page.wait_for_selector("#token-form-scope", state="attached")
        tab_to(page, "summary")
        page.keyboard.press("Enter")  # opens the details
        tab_to(page, "#token-form-name")
        page.keyboard.type("acme-screen")
        tab_to(page, "#token-form-role")
        page.keyboard.press("ArrowDown")  # viewer -> operator: still scoped
        page.keyboard.press("ArrowUp")  # and back to viewer
        tab_to(page, "#token-form-scope")
        page.keyboard.press("ArrowDown")  # the first client by name: Acme
        assert page.input_value("#token-form-scope") == f"clients:{acme}"
        tab_to(page, "#token-form [data-scope-add]")
        page.keyboard.press("Enter")
        page.wait_for_selector(f"[data-scope-item='clients:{acme}']:has-text('Client: Acme')")
        fits(page)
        shoot(page, "scope-01-token-form-chip")
        tab_to(page, "#token-form button[type=submit]")
        page.keyboard.press("Enter")
        token = page.wait_for_selector("[data-token-shown] code.secret-value").inner_text()
        row = page.wait_for_selector("tr:has(th:text-is('acme-screen')) td[data-scope]")
        assert row.inner_text() == "Acme"
        fits(page)
        shoot(page, "scope-02-token-list-scope")
        watch.assert_clean()
    made = [t for t in scene.rest.get("/api/tokens")["items"] if t["name"] == "acme-screen"]
    assert made and made[0]["scope"] == {"clients": [acme], "projects": []}
    assert made[0]["role"] == "viewer"

    # Signed in with it, as the dashboard does: Acme's inventory and board, nothing of Globex.
    with new_page(browser) as (page, watch):
        sign_in(page, base, token)
        page.wait_for_selector(".monitor-card:has-text('Acme cron')")
        assert page.locator(".monitor-card:has-text('Globex cron')").count() == 0
        shoot(page, "scope-03-scoped-board")
        page.click("#nav a[href='#/inventory']")
        page.wait_for_selector("text=Acme Portal")
        body = page.inner_text("main")
        assert "Acme" in body and "Globex" not in body, body
        shoot(page, "scope-04-scoped-inventory")
        watch.assert_clean()


def test_admins_are_not_scoped_and_a_stale_choice_is_named_beside_the_picker(
    scene: Scene, browser: Browser
) -> None:
    base = scene.daemon.url
    doomed = scene.rest.post("/api/clients", {"name": "Doomed"})
    with new_page(browser) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.goto(f"{base}/#/access")
        page.click("summary:has-text('New token')")
        page.select_option("#token-form-role", "admin")
        assert page.is_hidden("[data-field='$.scope']"), "admins stay global"
        page.select_option("#token-form-role", "viewer")
        assert page.is_visible("[data-field='$.scope']")
        page.fill("#token-form-name", "stale-scope")
        page.select_option("#token-form-scope", f"clients:{doomed['id']}")
        page.click("#token-form [data-scope-add]")
        page.select_option("#token-form-scope", f"projects:{scene.ids['Globex-project']}")
        page.click("#token-form [data-scope-add]")
        page.wait_for_selector("[data-scope-item]:has-text('Project: Globex / Globex Portal')")
        scene.rest.call("DELETE", f"/api/clients/{doomed['id']}")  # gone before the submit
        page.click("button:has-text('Create token')")
        error = page.wait_for_selector("[data-field='$.scope'] .field-error:visible")
        assert error.inner_text().startswith("Client: Doomed: ")
        assert "does not exist" in error.inner_text()
        assert page.get_attribute("#token-form-scope", "aria-invalid") == "true"
        assert page.is_visible(f"[data-scope-item='clients:{doomed['id']}'][data-invalid]")
        shoot(page, "scope-05-stale-scope-error")
        refused(watch, 422)
        watch.assert_clean()
    assert not [t for t in scene.rest.get("/api/tokens")["items"] if t["name"] == "stale-scope"]


JWT_SECRET = "a-test-jwt-secret-of-32-bytes-or-more"


def test_an_admin_scopes_a_jwt_profile_in_its_edit_form(scene: Scene, browser: Browser) -> None:
    # JWT sign-in configured after the first start, so the admin token the scene uses exists.
    port = int(scene.daemon.url.rsplit(":", 1)[1])
    scene.daemon.kill()
    scene.config.write_text(scene.config.read_text() + f'\n[auth]\njwt_secret = "{JWT_SECRET}"\n')
    scene.daemon = scene.start(port)
    try:
        _profile_scope(scene, browser)
    finally:
        scene.daemon.kill()  # started by this test, so stopped by it (the last one here)


def _profile_scope(scene: Scene, browser: Browser) -> None:
    base = scene.daemon.url
    acme = scene.ids["Acme-client"]
    claims = {"sub": "user-ada", "email": "ada@example.com", "aud": "authenticated"}
    ada = pyjwt.encode(claims | {"exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
    Rest(base, ada).get("/api/stats/engine")  # her first request makes her profile (a viewer)
    with new_page(browser, 360, 740) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.goto(f"{base}/#/access")
        row = "tr[data-profile-id='user-ada']"
        assert (
            page.wait_for_selector(f"{row} td[data-scope]").inner_text().startswith("Every client")
        )
        page.click(f"{row} [data-edit-scope]")
        page.select_option("#profile-scope-form-scope", f"clients:{acme}")
        page.click("#profile-scope-form [data-scope-add]")
        page.wait_for_selector("#profile-scope-form [data-scope-item]:has-text('Client: Acme')")
        fits(page)
        shoot(page, "scope-06-profile-scope-form")
        page.click("#profile-scope-form button[type=submit]")
        page.wait_for_function(
            "(r) => document.querySelector(r)?.textContent.startsWith('Acme')",
            arg=f"{row} td[data-scope]",
        )
        assert page.locator("#profile-scope-form").count() == 0, "the form closes once saved"
        watch.assert_clean()
    profiles = scene.rest.get("/api/profiles")["items"]
    assert [(p["id"], p["scope"]) for p in profiles] == [
        ("user-ada", {"clients": [acme], "projects": []})
    ]
    with new_page(browser) as (page, watch):
        sign_in(page, base, ada)
        page.wait_for_selector(".monitor-card:has-text('Acme cron')")
        assert page.locator(".monitor-card:has-text('Globex cron')").count() == 0
        watch.assert_clean()
