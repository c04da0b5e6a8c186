"""A badge in a real headless Chromium: it parses as SVG, lays out, and loads as an <img>.

One real daemon (``dragonopsd serve``) whose config lists its monitor on the status page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from browser import MONITOR, Scene, new_page, shoot
from playwright.sync_api import Browser


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    s = Scene(tmp_path_factory.mktemp("badges"))
    try:
        yield s
    finally:
        s.daemon.kill()
        s.target.close()


def monitor_id(scene: Scene) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        items = scene.rest.get("/api/monitors")["items"]
        found = [m["id"] for m in items if m["name"] == MONITOR]
        if found:
            return str(found[0])
        time.sleep(0.1)
    raise AssertionError(f"{MONITOR} never appeared")


@pytest.mark.parametrize("style", ["flat", "flat-square", "for-the-badge"])
def test_badge_is_a_valid_svg_in_chromium(scene: Scene, browser: Browser, style: str) -> None:
    url = f"{scene.daemon.url}/api/badge/{monitor_id(scene)}/status.svg?style={style}"
    with new_page(browser) as (page, watch):
        response = page.goto(url)
        assert response is not None and response.status == 200
        # Chromium's XML parser: an ill-formed document shows a <parsererror> instead of an svg.
        root = page.evaluate(
            """() => ({
                ns: document.documentElement.namespaceURI,
                tag: document.documentElement.localName,
                errors: document.getElementsByTagName('parsererror').length,
                width: document.documentElement.getBBox().width,
                texts: [...document.querySelectorAll('text')].map(t => t.getComputedTextLength()),
            })"""
        )
        assert root["ns"] == "http://www.w3.org/2000/svg" and root["tag"] == "svg"
        assert root["errors"] == 0
        assert root["width"] > 20
        assert root["texts"] and all(w > 0 for w in root["texts"])
        watch.assert_clean()

        # As a README shows it: an <img> that loads (a broken SVG leaves naturalWidth at 0).
        page.goto(f"{scene.daemon.url}/status")  # same origin, so its CSP lets the image in
        natural = page.evaluate(
            """url => new Promise((resolve, reject) => {
                const img = new Image();
                img.onload = () => resolve(img.naturalWidth);
                img.onerror = () => reject(new Error('the badge did not load as an image'));
                img.src = url;
                document.body.append(img);
            })""",
            url,
        )
        assert natural > 20
        if style == "for-the-badge":
            shoot(page, "badge-for-the-badge", full=False)
