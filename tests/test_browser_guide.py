"""The partners' guide in Chromium: its live example drives the framed player with the player.js
client, as a partner's page would, and the page reads at desktop and phone width."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests import test_browser
from tests.test_browser import Catalogue, screenshot

# The browser module's fixtures: one server with one video and one audio production.
browser = test_browser.browser
shared_context = test_browser.shared_context
new_page = test_browser.new_page
catalogue = test_browser.catalogue
artifacts = test_browser.artifacts

PHONE = {"width": 375, "height": 812}
LAPTOP = {"width": 1366, "height": 768}


def _log(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "[data-guide-log] li", "(items) => items.map(i => i.textContent)"
    )


def _wait_for_event(page: Any, name: str) -> None:
    page.wait_for_function(
        "(name) => Array.from(document.querySelectorAll('[data-guide-log] li'))"
        ".some((item) => item.textContent.split(' ')[0] === name)",
        arg=name,
    )


def test_the_live_example_plays_seeks_and_pauses_through_player_js(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page(LAPTOP)
    page.goto(f"{catalogue.url}/partners?lang=en")
    # The buttons wait for the player's "ready".
    page.wait_for_selector("[data-command='play']:not([disabled])")
    assert _log(page)[-1] == "ready"
    page.click("[data-command='play']")
    _wait_for_event(page, "play")
    page.wait_for_function(
        "() => document.querySelector('[data-guide-time]').value !== '0:00'", timeout=30_000
    )
    page.click("[data-command='pause']")
    _wait_for_event(page, "pause")
    page.click("[data-command='forward']")
    _wait_for_event(page, "seeked")
    frame = next(f for f in page.frames if "/embed/" in f.url)
    position = frame.evaluate("() => document.querySelector('audio, video').currentTime")
    duration = frame.evaluate("() => document.querySelector('audio, video').duration")
    assert position >= min(10, duration - 1), (position, duration)
    assert frame.evaluate("() => document.querySelector('audio, video').paused")
    page.locator("#try").scroll_into_view_if_needed()
    screenshot(page, "guide-live-example-desktop")
    assert page.js_errors == []


def test_the_guide_reads_on_a_phone_without_scrolling_sideways(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page(PHONE)
    page.goto(f"{catalogue.url}/partners")
    page.wait_for_selector("[data-command='play']:not([disabled])")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls {overflow} px sideways"
    # Code boxes scroll inside themselves.
    assert page.eval_on_selector_all(
        ".guide__code",
        "(boxes) => boxes.every((b) => b.getBoundingClientRect().right <= innerWidth)",
    )
    screenshot(page, "guide-phone")
    page.locator("#player-api").scroll_into_view_if_needed()
    screenshot(page, "guide-phone-player-api")
