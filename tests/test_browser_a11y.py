"""Accessibility and languages in Chromium: axe-core on every page kind, at desktop and phone
width, in French and English, finds no violation of serious or critical impact; the player's
controls are named in the page's language; the admins' tag screen works at both widths.

The pages are those of tests.test_i18n_pages (:func:`pages`), around the real audio and video
productions of tests.test_browser's catalogue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cite_live.auth import COOKIE
from tests.account_fixtures import login

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests.test_browser import DESKTOP, PLAY_TIMEOUT_MS, Catalogue, screenshot, watch_csp

# The fixtures of tests.test_browser, registered here under these names, handed on below.
from tests.test_browser import browser as _browser  # noqa: F401
from tests.test_browser import catalogue as _catalogue  # noqa: F401
from tests.test_i18n_pages import ADMIN, ARTIST, Page, World, furnish, pages

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# The phone the issue names (375 × 812), and the laptop.
PHONE = {"width": 375, "height": 812}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}
AXE_SOURCE = AXE.read_text() + "\n;true"
GRAVE = ("serious", "critical")

# Violations that another change is fixing, by page kind: each is expected, strictly (a page
# that stops having it fails here until its line is taken out), never silently skipped.


@pytest.fixture(scope="module")
def browser(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("_browser")


@pytest.fixture(scope="module")
def catalogue(request: pytest.FixtureRequest) -> Catalogue:
    served: Catalogue = request.getfixturevalue("_catalogue")
    return served


@pytest.fixture(scope="module")
def world(catalogue: Catalogue) -> World:
    return furnish(catalogue.services, catalogue.audio_id, catalogue.video_id)


@pytest.fixture(scope="module")
def sessions(catalogue: Catalogue, world: World) -> dict[str, str]:
    """The session cookie of the artist and of the admin, signed in through the login form."""
    cookies = {}
    for email in (ARTIST, ADMIN):
        with httpx.Client(base_url=catalogue.url) as client:
            login(client, email)
            cookies[email] = client.cookies[COOKIE]
    return cookies


@pytest.fixture
def visit(
    browser: Any, catalogue: Catalogue, sessions: dict[str, str]
) -> Iterator[Callable[..., Any]]:
    """A page in a context of its own: ``lang`` chosen (the switch's cookie), ``who`` signed
    in; its script errors and CSP violations are collected and must stay none."""
    opened: list[tuple[Any, Any, list[str], list[str]]] = []

    def open_page(lang: str, who: str | None, viewport: dict[str, int]) -> Any:
        context = browser.new_context(viewport=viewport, locale=f"{lang}-FR")
        cookies = [{"name": "lang", "value": lang, "url": catalogue.url}]
        if who:
            cookies.append({"name": COOKIE, "value": sessions[who], "url": catalogue.url})
        context.add_cookies(cookies)
        page = context.new_page()
        page.set_default_timeout(PLAY_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        opened.append((context, page, errors, watch_csp(page)))
        return page

    yield open_page
    problems = [p for _, _, errors, csp in opened for p in (*errors, *csp)]
    for context, *_ in opened:
        context.close()
    assert problems == [], problems


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations of serious or critical impact on the page as it is now."""
    # Evaluated through the DevTools protocol: a script tag would be refused by the page's
    # Content-Security-Policy, as it should be.
    page.evaluate(AXE_SOURCE)
    result: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in GRAVE]


def readable(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(f"    {' > '.join(map(str, node['target']))}: {node['html'][:160]}")
            summary = (node.get("failureSummary") or "").replace("\n", " ")
            lines.append(f"      {summary[:300]}")
    return "\n".join(lines)


def _page_params() -> list[Any]:
    fake = World("a", "a", "v", "v", "s", 1, "v", "t", "c", "c", 1, "i", "r")
    params = []
    for page in pages(fake):
        for lang in ("fr", "en"):
            params.append(pytest.param(page.name, lang, id=f"{page.name}-{lang}"))
    return params


def settled(page: Any, catalogue: Catalogue, target: Page) -> None:
    response = page.goto(catalogue.url + target.path, wait_until="load")
    assert response is not None and response.status == target.status, target.path
    # The player mounts after the page is readable: judge it once it is there.
    if page.locator("[data-player]").count():
        page.wait_for_selector("[data-player][data-mounted]", state="attached")


@pytest.mark.parametrize(("name", "lang"), _page_params())
def test_axe_finds_nothing_serious_on_every_page(
    catalogue: Catalogue, world: World, visit: Callable[..., Any], name: str, lang: str
) -> None:
    target = next(p for p in pages(world) if p.name == name)
    found = []
    for width, viewport in WIDTHS.items():
        page = visit(lang, target.who, viewport)
        settled(page, catalogue, target)
        assert page.evaluate("document.documentElement.lang") == lang
        violations = axe_violations(page)
        where = f"{name} ({target.path}), {lang}, {width}"
        if violations:
            found.append(f"{where}:\n{readable(violations)}")
    assert not found, "\n".join(found)


# --- the player's labels ----------------------------------------------------------------------

# Each media-chrome control of the player: what a screen reader names it (its aria-label, or
# that of the slider inside it) and what its tooltip shows.
PLAYER_LABELS_JS = """() => [...document.querySelectorAll('[data-player] media-controller *')]
  .filter((e) => e.tagName.startsWith('MEDIA-') && e.tagName !== 'MEDIA-CONTROL-BAR')
  .map((e) => {
    const inner = e.shadowRoot && e.shadowRoot.querySelector('[aria-label]');
    const tip = e.shadowRoot && e.shadowRoot.querySelector('media-tooltip');
    return {
      control: e.tagName.toLowerCase(),
      name: e.getAttribute('aria-label') || (inner && inner.getAttribute('aria-label')) || '',
      tooltip: tip ? tip.innerText.trim() : '',
    };
  })
  .filter((c) => c.name || c.tooltip)"""


def player_labels(page: Any) -> dict[str, tuple[str, str]]:
    """{control: (accessible name, tooltip)}, numbers left out ("Playback rate 1")."""
    rows = page.evaluate(PLAYER_LABELS_JS)
    return {row["control"]: (row["name"].rstrip(" 0123456789.,x×"), row["tooltip"]) for row in rows}


@pytest.fixture(scope="module")
def labels(
    browser: Any, catalogue: Catalogue, world: World
) -> dict[tuple[str, str], dict[str, tuple[str, str]]]:
    """The player's labels on the audio and the video page, in French and in English."""
    found = {}
    for kind, slug in (("audio", world.audio_slug), ("video", world.video_slug)):
        for lang in ("fr", "en"):
            context = browser.new_context(viewport=DESKTOP, locale=f"{lang}-FR")
            context.add_cookies([{"name": "lang", "value": lang, "url": catalogue.url}])
            page = context.new_page()
            page.goto(f"{catalogue.url}/productions/{slug}")
            page.wait_for_selector("[data-player][data-mounted]", state="attached")
            page.wait_for_function(
                "document.querySelector('media-play-button')?.getAttribute('aria-label')"
            )
            found[kind, lang] = player_labels(page)
            context.close()
    return found


# The same word in both languages: no sign of either.
BOTH_LANGUAGES = frozenset({"volume"})
# media-chrome writes the quality menu's back button in English whatever the language (it is
# not in its translations; player_labels.js names it): checked on its own below.
HARD_CODED = "media-rendition-menu"


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_the_player_names_its_controls_in_the_page_language(
    labels: dict[tuple[str, str], dict[str, tuple[str, str]]], kind: str
) -> None:
    french, english = labels[kind, "fr"], labels[kind, "en"]
    assert "media-play-button" in french and set(french) == set(english)
    if kind == "video":
        assert HARD_CODED in french, "the quality menu's labels are read"
    said_in_english = {text.casefold() for pair in english.values() for text in pair if text}
    said_in_french = {text.casefold() for pair in french.values() for text in pair if text}
    problems = []
    for control in set(french) - {HARD_CODED}:
        for what, fr, en in zip(
            ("name", "tooltip"), french[control], english[control], strict=True
        ):
            if fr and fr.casefold() in said_in_english - BOTH_LANGUAGES:
                problems.append(f"{control}: French {what} {fr!r} is English")
            if en and en.casefold() in said_in_french - BOTH_LANGUAGES:
                problems.append(f"{control}: English {what} {en!r} is French")
    assert not problems, f"{french}\n{english}\n" + "\n".join(problems)


def test_the_french_quality_menu_is_french(
    labels: dict[tuple[str, str], dict[str, tuple[str, str]]],
) -> None:
    french, english = labels["video", "fr"][HARD_CODED], labels["video", "en"][HARD_CODED]
    assert french[0] and french[0] != english[0]


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_the_french_player_says_vitesse_de_lecture(
    labels: dict[tuple[str, str], dict[str, tuple[str, str]]], kind: str
) -> None:
    name, tooltip = labels[kind, "fr"]["media-playback-rate-button"]
    assert name.startswith("Vitesse de lecture") and "Taux" not in tooltip


# --- the admins' tag screen -------------------------------------------------------------------


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_an_admin_names_a_tag_in_english_at_both_widths(
    catalogue: Catalogue, world: World, visit: Callable[..., Any], width: str
) -> None:
    page = visit("fr", ADMIN, WIDTHS[width])
    page.goto(f"{catalogue.url}/admin/tags")
    field = page.get_by_label("Nom en anglais · Polyphonies")
    field.fill(f"Alpine polyphony ({width})")
    screenshot(page, f"admin-tags-{width}-typed")
    page.get_by_role("button", name="Enregistrer · Polyphonies").click()
    page.wait_for_url("**/admin/tags?done=tag_saved#tag-*")
    assert page.get_by_role("status").inner_text() == "Le nom en anglais du mot-clé est enregistré."
    assert field.input_value() == f"Alpine polyphony ({width})"
    box = field.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= WIDTHS[width]["width"]
    screenshot(page, f"admin-tags-{width}-saved")
    english = visit("en", None, WIDTHS[width])
    english.goto(f"{catalogue.url}/tags/{world.tag_slug}")
    heading = english.get_by_role("heading", level=1)
    assert heading.inner_text() == f"Alpine polyphony ({width})"
    assert heading.get_attribute("lang") is None
    screenshot(english, f"tag-en-{width}")
    # Emptied again: English pages show the French name, marked as French.
    field.fill("")
    page.get_by_role("button", name="Enregistrer · Polyphonies").click()
    page.wait_for_url("**/admin/tags?done=tag_saved#tag-*")
    english.reload()
    assert heading.inner_text() == "Polyphonies" and heading.get_attribute("lang") == "fr"
