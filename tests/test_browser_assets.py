"""The production pages play with the built front-end (scripts/build) in Chromium, at desktop
and phone width: every script and stylesheet comes from web/static/dist/, compressed, and none
from the unbundled sources or the vendor copy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.test_browser import (
    DESKTOP,
    Catalogue,
    browser,
    catalogue,
    new_page,
    screenshot,
    shared_context,
    wait_for_engine,
    wait_until_time,
)

# The fixtures this module uses, imported from the player's tests.
__all__ = ["browser", "catalogue", "new_page", "shared_context"]

PHONE = {"width": 375, "height": 812}
# The client partner sites drive the embed with: offered as is, at a stable address.
PARTNER_CLIENT = "/static/vendor/player.js/"


@pytest.mark.parametrize("kind", ["audio", "video"])
@pytest.mark.parametrize(("width", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_production_page_plays_with_the_built_files_only(
    catalogue: Catalogue,
    new_page: Callable[..., Any],
    kind: str,
    width: str,
    viewport: dict[str, int],
) -> None:
    page = new_page(viewport=viewport, fresh=True)
    answers: list[Any] = []
    page.on("response", lambda answer: answers.append(answer))
    slug = catalogue.audio_slug if kind == "audio" else catalogue.video_slug
    page.goto(f"{catalogue.url}/productions/{slug}")
    wait_for_engine(page)
    page.locator("[data-player] media-play-button").first.click()
    wait_until_time(page, 0.5)
    screenshot(page, f"assets-{kind}-{width}")
    assert page.js_errors == []

    statics = [a for a in answers if urlsplit(a.url).path.startswith("/static/")]
    paths = [urlsplit(a.url).path for a in statics]
    unbundled = [
        p for p in paths if not p.startswith("/static/dist/") and not p.startswith(PARTNER_CLIENT)
    ]
    assert unbundled == [], unbundled
    scripts = [a for a in statics if a.request.resource_type == "script"]
    assert len(scripts) >= 2, paths  # the player and its chunks
    for answer in statics:
        headers = answer.headers
        assert answer.status == 200, answer.url
        assert headers["cache-control"] == "public, max-age=31536000, immutable", answer.url
        if answer.request.resource_type in ("script", "stylesheet"):
            assert headers.get("content-encoding") in ("br", "gzip"), answer.url
    # The page itself came compressed too.
    document = next(a for a in answers if a.request.resource_type == "document")
    assert document.headers.get("content-encoding") == "gzip"
