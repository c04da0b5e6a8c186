"""Incidents people write, in a real headless Chromium against a real daemon: an operator opens
one in the dashboard (a refused field shows its problem beside it), adds an update,
acknowledges it, and anyone sees both updates on the public status page without a token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import MONITOR, Scene, new_page, shoot, sign_in
from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("incidents"))
    try:
        s.populate()
        yield s
    finally:
        s.daemon.kill()
        s.target.close()


def test_open_update_and_acknowledge_an_incident_then_read_it_in_public(
    scene: Scene, browser: Browser
) -> None:
    base = scene.daemon.url
    with new_page(browser) as (page, watch):
        sign_in(page, base, scene.daemon.token)
        page.click("#nav a[href='#/incidents']")
        page.wait_for_selector("#incident-create:not([hidden])")  # the socket said: admin
        page.click("#incident-create summary")
        page.wait_for_selector(f"#incident-targets option[value='monitor:{scene.ids['monitor']}']")

        # Nothing filled in: the daemon's 422 names the title, shown beside the title.
        page.click("#new-incident button[type=submit]")
        error = page.wait_for_selector("#incident-title-error:not([hidden])")
        assert error.text_content()
        assert page.get_attribute("#incident-title", "aria-invalid") == "true"
        # Chromium logs every 4xx answer to the console; this one was asked for.
        watch.errors = [e for e in watch.errors if "status of 422" not in e]

        page.fill("#incident-title", "Checkout is slow")
        page.select_option("#incident-severity", "major")
        page.select_option("#incident-targets", f"monitor:{scene.ids['monitor']}")
        page.fill("#incident-message", "We are looking into slow checkouts")
        page.click("#new-incident button[type=submit]")
        row = page.wait_for_selector("tr[data-kind='manual']:has-text('Checkout is slow')")
        ident = row.get_attribute("data-incident-id")
        assert page.is_hidden("#incident-title-error")
        detail = f"tr[data-detail-for='{ident}']"
        page.wait_for_selector(f"{detail} details[open] li.update")

        page.select_option(f"#update-{ident}-state", "identified")
        page.fill(f"#update-{ident}-message", "A missing database index")
        page.click(f"{detail} form.add-update button[type=submit]")
        page.wait_for_selector(f"{detail} li.update:has-text('A missing database index')")
        assert len(page.query_selector_all(f"{detail} li.update")) == 2

        page.click(f"{detail} button.ack")
        acked = page.wait_for_selector(
            f"tr[data-incident-id='{ident}'] td.acked:has-text('\u00b7')"
        )
        assert acked.text_content() and "not yet" not in (acked.text_content() or "")
        assert page.query_selector(f"{detail} button.ack") is None  # acknowledged once
        shoot(page, "20-incident-acknowledged")
        watch.assert_clean()

    with new_page(browser) as (page, watch):  # a visitor: no token at all
        page.goto(base + "/status")
        page.wait_for_selector("li.incident:has-text('Checkout is slow')")
        text = page.text_content("li.incident:has-text('Checkout is slow')") or ""
        assert "We are looking into slow checkouts" in text and "A missing database index" in text
        assert MONITOR in text
        assert scene.ids["monitor"] not in page.content()
        shoot(page, "21-status-page-incident-updates")
        watch.assert_clean()
