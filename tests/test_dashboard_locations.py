"""The dashboard against a daemon with Redis and a real `dragonopsd probe` worker, in Debian's
Chromium: the monitor form offers the worker's location and a quorum only while a worker runs
(and keeps a monitor's locations when none does), and rotating a secret or changing a setting
that someone else changed meanwhile shows the conflict instead of overwriting it (If-Match).
Screenshots land in tests/output/screenshots/locations-*.png."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import Rest, Target, new_page, shoot, sign_in
from daemon import Daemon
from playwright.sync_api import Browser, Route
from probe_workers import ProbeWorker, wait_for, write_config
from redis_helpers import SHARED_URL, delete_prefix, shared

from dragonopsd.secrets.crypto import KeyRing, write_key_file


class Scene:
    """A core on Redis under a prefix of its own, one worker in eu-west, a target on loopback."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.prefix = f"dragonops-test-{os.urandom(5).hex()}"
        self.target = Target()
        state = tmp / "state"
        state.mkdir()
        write_key_file(state / "secrets.key", KeyRing.new("k1"), overwrite=False)
        config = write_config(tmp / "core.toml", SHARED_URL, self.prefix)
        self.daemon = Daemon(state, "--config", str(config))
        self.worker: ProbeWorker | None = None
        self.daemon.wait_listening()
        self.rest = Rest(self.daemon.url, self.daemon.token)

    def start_worker(self) -> None:
        self.worker = ProbeWorker(self.tmp, SHARED_URL, self.prefix, "eu-west", "eu-1")
        wait_for(lambda: self.rest.get("/api/locations")["items"], 20, "eu-west listed")

    def stop_worker(self) -> None:
        assert self.worker is not None
        assert self.worker.stop() == 0, self.worker.log
        wait_for(lambda: not self.rest.get("/api/locations")["items"], 20, "eu-west gone")

    def close(self) -> None:
        if self.worker is not None:
            self.worker.kill()
        self.daemon.kill()
        self.target.close()
        client = shared()
        delete_prefix(client, self.prefix)
        client.close()


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("locations"))
    try:
        yield s
    finally:
        s.close()


def test_the_monitor_form_offers_live_locations_and_a_quorum(
    scene: Scene, browser: Browser
) -> None:
    m = scene.rest.post("/api/monitors", {"name": "Shop", "kind": "http", "url": scene.target.url})
    edit = f"{scene.daemon.url}/#/monitors/{m['id']}/edit"
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.goto(edit)
        page.wait_for_selector("h1:has-text('Edit Shop')")
        assert page.query_selector("[data-field='$.locations']") is None, "no worker: not shown"
        assert page.query_selector("#monitor-form-quorum") is None

        scene.start_worker()
        page.reload()
        page.wait_for_selector("h1:has-text('Edit Shop')")
        eu = page.wait_for_selector("label:has-text('eu-west (1 worker)')")
        assert page.is_checked("#monitor-form-locations input[value='local']")
        eu.click()
        page.fill("#monitor-form-quorum", "3")
        page.click("button:has-text('Save changes')")
        error = page.wait_for_selector("[data-field='$.quorum'] .field-error:visible")
        assert "At most the number of locations" in error.inner_text()

        # The daemon's own refusal lands beside the field too: the form checks what the
        # daemon checks, so the PATCH is altered on its way (quorum 17) to provoke it.
        def over(route: Route) -> None:
            if route.request.method != "PATCH":
                route.continue_()
                return
            body = json.loads(route.request.post_data or "{}")
            route.continue_(post_data=json.dumps({**body, "quorum": 17}))

        page.route(f"**/api/monitors/{m['id']}", over)
        page.fill("#monitor-form-quorum", "2")
        page.click("button:has-text('Save changes')")
        error = page.wait_for_selector("[data-field='$.quorum'] .field-error:visible")
        assert "16" in error.inner_text(), error.inner_text()
        assert scene.rest.get(f"/api/monitors/{m['id']}")["locations"] == ["local"]
        page.unroute(f"**/api/monitors/{m['id']}")
        shoot(page, "locations-01-monitor-form")
        page.click("button:has-text('Save changes')")
        page.wait_for_url(re.compile(rf"#/monitors/{m['id']}$"))
        saved = scene.rest.get(f"/api/monitors/{m['id']}")
        assert (saved["locations"], saved["quorum"]) == (["local", "eu-west"], 2)
        state: Any = wait_for(
            lambda: next(
                (s for s in scene.rest.get("/api/monitoring")["items"]
                 if s["monitorId"] == m["id"] and s.get("locations", {}).get("eu-west") == "up"),
                None,
            ),
            20,
            "checked from eu-west",
        )  # fmt: skip
        assert state["locations"]["local"] == "up"

        # The worker gone: the fields go, the monitor keeps its locations through an edit.
        scene.stop_worker()
        page.goto(edit)
        page.wait_for_selector("h1:has-text('Edit Shop')")
        assert page.query_selector("[data-field='$.locations']") is None
        page.fill("#monitor-form-interval", "120")
        page.click("button:has-text('Save changes')")
        page.wait_for_url(re.compile(rf"#/monitors/{m['id']}$"))
        saved = scene.rest.get(f"/api/monitors/{m['id']}")
        assert (saved["interval"], saved["locations"], saved["quorum"]) == (
            120,
            ["local", "eu-west"],
            2,
        )
        # 422: the provoked refusal above. 412: a check or a round landing between the form's
        # GET and its save moves the ETag (it covers the status); the form GETs again, sees the
        # same updatedAt and saves once more (forms.js write), which the asserts above confirm.
        watch.errors = [e for e in watch.errors if not re.search(r"status of (422|412)", e)]
        watch.assert_clean()


def test_a_secret_rotated_meanwhile_is_not_overwritten(scene: Scene, browser: Browser) -> None:
    made = scene.rest.post("/api/secrets", {"key": "DEPLOY_KEY", "value": "first"})
    path = f"/api/secrets/{made['id']}"
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.click("#nav a[href='#/secrets']")
        page.wait_for_selector("tr:has-text('DEPLOY_KEY') td:has-text('v1')")
        page.click("button[aria-label='Rotate DEPLOY_KEY (default)']")
        page.keyboard.type("mine")
        scene.rest.call("PATCH", path, {"value": "theirs"})  # another tab, another admin
        page.keyboard.press("Enter")
        conflict = page.wait_for_selector(".conflict")
        assert "Changed by someone else" in conflict.inner_text()
        assert scene.rest.get(f"{path}/value")["value"] == "theirs", "nothing overwritten"
        shoot(page, "locations-02-secret-conflict")
        page.click(".conflict button:has-text('Reload')")
        page.wait_for_selector("tr:has-text('DEPLOY_KEY') td:has-text('v2')")
        page.click("button[aria-label='Rotate DEPLOY_KEY (default)']")
        page.keyboard.type("mine")
        page.keyboard.press("Enter")
        page.wait_for_selector("tr:has-text('DEPLOY_KEY') td:has-text('v3')")
        assert scene.rest.get(f"{path}/value")["value"] == "mine"
        watch.assert_clean()


def test_a_setting_changed_between_read_and_write_is_refused(
    scene: Scene, browser: Browser
) -> None:
    """The change lands after the form read the ETag and before its PUT arrives: the daemon's
    If-Match check refuses the PUT (412) and the form shows the conflict."""
    scene.rest.call("PUT", "/api/settings/status.banner", {"value": "first"})
    with new_page(browser) as (page, watch):
        sign_in(page, scene.daemon.url, scene.daemon.token)
        page.click("#nav a[href='#/settings']")
        page.click("summary:has-text('Change status.banner')")
        page.fill("#setting-status-banner-value", '"mine"')

        def meanwhile(route: Route) -> None:
            if route.request.method == "PUT":
                scene.rest.call("PUT", "/api/settings/status.banner", {"value": "theirs"})
            route.continue_()

        page.route("**/api/settings/status.banner", meanwhile)
        page.click("[data-setting='status.banner'] button:has-text('Save')")
        conflict = page.wait_for_selector(".conflict")
        assert "Changed by someone else" in conflict.inner_text()
        page.unroute("**/api/settings/status.banner")
        assert scene.rest.get("/api/settings/status.banner")["value"] == "theirs"
        page.click(".conflict button:has-text('Reload')")
        page.wait_for_selector("[data-setting='status.banner'] pre:has-text('theirs')")
        # A new setting of a key that exists is refused beside the key, not put over it.
        page.click("summary:has-text('New setting')")
        page.fill("#setting-new-key", "status.banner")
        page.fill("#setting-new-value", '"new"')
        page.click("button:has-text('Add setting')")
        error = page.wait_for_selector("[data-field='$.key'] .field-error:visible")
        assert "exists already" in error.inner_text()
        assert scene.rest.get("/api/settings/status.banner")["value"] == "theirs"
        watch.errors = [e for e in watch.errors if "status of 412" not in e]
        watch.assert_clean()
