"""An admin changes a JWT profile's role in the dashboard's Access page, against a real daemon
started with an HS256 ``[auth] jwt_secret`` (what Supabase projects use): the change applies to
the profile's next request, and a change another admin made meanwhile is a conflict notice,
never overwritten. Screenshot: tests/output/screenshots/admin-12-profile-role.png."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import jwt as pyjwt
import pytest
from browser import Scene, new_page, shoot, sign_in, status_of
from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("profiles"))
    try:
        yield s
    finally:
        s.daemon.kill()
        s.target.close()


JWT_SECRET = "a-test-jwt-secret-of-32-bytes-or-more"


def test_an_admin_changes_a_jwt_profiles_role(scene: Scene, browser: Browser) -> None:
    # JWT sign-in configured after the first start, so the admin token the scene uses exists.
    port = int(scene.daemon.url.rsplit(":", 1)[1])
    scene.daemon.kill()
    scene.config.write_text(scene.config.read_text() + f'\n[auth]\njwt_secret = "{JWT_SECRET}"\n')
    scene.daemon = scene.start(port)
    try:
        base = scene.daemon.url
        claims = {"sub": "user-ada", "email": "ada@example.com", "aud": "authenticated"}
        ada = pyjwt.encode(claims | {"exp": int(time.time()) + 3600}, JWT_SECRET, algorithm="HS256")
        assert status_of(ada, base, "/api/monitors") == 200  # first request: a viewer profile
        with new_page(browser) as (page, watch):
            sign_in(page, base, scene.daemon.token)
            page.goto(f"{base}/#/access")
            row = "tr[data-profile-id='user-ada']"
            page.wait_for_selector(f"{row}:has-text('ada@example.com')")
            assert page.input_value(f"{row} select") == "viewer"
            page.select_option(f"{row} select", "operator")
            page.wait_for_selector(f"{row}:has-text('Saved: operator')")
            shoot(page, "admin-12-profile-role")
            for role in ("viewer", "operator"):  # its own changes are no conflict
                page.select_option(f"{row} select", role)
                page.wait_for_selector(f"{row}:has-text('Saved: {role}')")
            # Another admin changes her email meanwhile: the next role change in this page
            # meets the conflict notice instead of overwriting that edit.
            scene.rest.call("PATCH", "/api/profiles/user-ada", {"email": "ada@elsewhere.example"})
            page.select_option(f"{row} select", "admin")
            page.wait_for_selector(f"{row} [data-conflict]:has-text('Changed by someone else')")
            assert page.input_value(f"{row} select") == "operator"
            watch.assert_clean()
        profiles = scene.rest.get("/api/profiles")["items"]
        assert [(p["id"], p["role"]) for p in profiles] == [("user-ada", "operator")]
        req = urllib.request.Request(
            base + "/api/clients",
            data=json.dumps({"name": "By Ada"}).encode(),
            headers={"Authorization": f"Bearer {ada}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 201, "the new role applies to her next request"
    finally:
        scene.daemon.kill()  # started by this test, so stopped by it (the last one here)
