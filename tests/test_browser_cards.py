"""The catalogue's cards and browse pages in a real browser, at desktop and phone width.

A small catalogue is made for the module with real images in the store (square and wide audio
covers, a video poster, an artist's photo) and one production with a real .m4a: the cards'
art must fill its box (a square cover square, never letterboxed), cards of a row must be
equally tall, each playable card holds its Play button, the A–Z leads nowhere empty, the
production's facts come before its Share tools on a phone, and the studio's checkbox lets a
listener save the file. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from sqlalchemy import select

from cite_live import covers
from cite_live.catalogue import artist_by_name
from cite_live.models import Production
from cite_live.services import Services, open_services
from tests.account_fixtures import PASSWORD, make_user
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url
from tests.media import ffmpeg, split
from tests.test_api import publish_fake

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PLAY_TIMEOUT_MS,
    playwright_api,
    screenshot,
    watch_csp,
)

PHONE = {"width": 375, "height": 812}
WIDTHS = (("desktop", DESKTOP), ("phone", PHONE))
NORA = "nora@example.org"
SQUARE = "Chanson carrée"
LONG_TITLE = (
    "Un titre très long, qui passe sur trois lignes au moins dans une carte étroite du "
    "catalogue, pour voir"
)


@dataclass
class Site:
    url: str
    services: Services
    ids: dict[str, str]
    slugs: dict[str, str]
    m4a: bytes


def _photo() -> covers.Photo:
    """A portrait, re-encoded as the profile form does: a large version and the square."""
    image = Image.new("RGB", (600, 800), (40, 90, 160))
    draw = ImageDraw.Draw(image)
    draw.ellipse((180, 160, 420, 420), fill=(236, 200, 170))
    out = io.BytesIO()
    image.save(out, "JPEG")
    out.seek(0)
    return covers.reencode_photo(out)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("cards")
    services = open_services(make_settings(directory / "data", sqlite_url(directory)))
    m4a = directory / "chanson.m4a"
    ffmpeg(
        *["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"],
        *split("-c:a aac -b:a 64k -ac 2"),
        str(m4a),
    )
    owner = make_user(services, NORA, artists=["Élodie Fauré"])
    venue = ("Cité de la Musique", "cite", "Romans-sur-Isère")
    # Oldest first: the home page shows the last one first.
    made: dict[str, dict[str, Any]] = {
        "hidden": {"title": "Brouillon", "artists": ["Bruno Caché"], "visibility": "private"},
        "bare": {"title": "Sans image", "artists": ["Zoé Roux"]},
        "long": {
            "title": LONG_TITLE,
            "artists": ["Marc Lenoir"],
            "picture": (500, 500),
            "venue": venue,
        },
        "video": {
            "title": "Répétition filmée",
            "kind": "video",
            "artists": ["Marc Lenoir"],
            "picture": (640, 360),
        },
        # A wide picture as an audio cover: cropped square on its card.
        "wide": {"title": "Pochette large", "artists": ["Aïcha Benali"], "picture": (640, 360)},
        "square": {
            "title": SQUARE,
            "artists": ["Élodie Fauré"],
            "picture": (600, 600),
            "download": True,
            "venue": venue,
        },
    }
    ids = {name: publish_fake(services, **fields) for name, fields in made.items()}
    photo = _photo()
    with services.sessions.begin() as session:
        elodie = artist_by_name(session, "Élodie Fauré")
        large, square = covers.put_photo(services, elodie.id, photo)
        elodie.photo_key, elodie.photo_square_key = large, square
        elodie.photo_width, elodie.photo_height = photo.width, photo.height
        # An audio file without artwork: its version has no cover.
        bare = session.get(Production, ids["bare"])
        assert bare is not None and bare.current_version is not None
        bare.current_version.cover_key = None
        square_production = session.get(Production, ids["square"])
        assert square_production is not None and square_production.current_version is not None
        square_production.owner_id = owner
        square_production.description = "Une chanson.\n\nEnregistrée au studio."
        key = square_production.current_version.download_key
        assert key is not None
        session.flush()
        slugs = {
            name: session.scalars(select(Production.slug).where(Production.id == i)).one()
            for name, i in ids.items()
        }
    services.store.put_file(key, m4a)
    try:
        with serving(services) as url:
            yield Site(url, services, ids, slugs, m4a.read_bytes())
    finally:
        services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Visitor:
    """A browser context at one width, French, whose pages are watched for script errors and
    Content-Security-Policy violations."""

    def __init__(self, browser: Any, viewport: dict[str, int], **options: Any) -> None:
        self.context = browser.new_context(viewport=viewport, locale="fr-FR", **options)
        self.page = self.context.new_page()
        self.page.set_default_timeout(PLAY_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.violations = watch_csp(self.page)

    def close(self) -> None:
        self.context.close()
        assert self.violations == [], self.violations


@pytest.fixture(params=WIDTHS, ids=[name for name, _ in WIDTHS])
def visitor(request: pytest.FixtureRequest, browser: Any) -> Iterator[tuple[str, Visitor]]:
    name, viewport = request.param
    opened = Visitor(browser, viewport)
    yield name, opened
    opened.close()


CARD_BOXES = """() => [...document.querySelectorAll("main [data-queue] .card")].map((card) => {
    const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
        return {x: r.x, y: r.y + window.scrollY, width: r.width, height: r.height}; };
    const img = card.querySelector("img.card__image");
    const play = card.querySelector("[data-play]");
    return {
        kind: card.classList.contains("card--audio") ? "audio" : "video",
        title: card.querySelector(".card__title").textContent.trim(),
        card: box(card), art: box(card.querySelector(".card__art")), img: box(img),
        fit: img ? getComputedStyle(img).objectFit : null,
        loaded: img ? img.complete && img.naturalWidth > 0 : null,
        play: play ? {label: play.getAttribute("aria-label"), hidden: play.hidden,
                      path: play.dataset.play, box: box(play)} : null,
        queue: card.querySelector("[data-queue-add]")?.dataset.queueAdd ?? null,
        links: card.querySelectorAll("a[href]").length,
    };
})"""


def close(a: float, b: float, tolerance: float = 1.0) -> bool:
    return abs(a - b) <= tolerance


def test_cards_art_fills_its_slot_and_rows_are_even(
    site: Site, visitor: tuple[str, Visitor]
) -> None:
    width, guest = visitor
    page = guest.page
    page.goto(f"{site.url}/")
    # Lazy images: brought into view one by one, as a visitor scrolling would.
    for image in page.locator("main img.card__image").all():
        image.scroll_into_view_if_needed()
    page.wait_for_function(
        "[...document.querySelectorAll('main img.card__image')].every(i => i.complete)"
    )
    cards = page.evaluate(CARD_BOXES)
    assert len(cards) == 5, cards  # the private production is no card
    for card in cards:
        art, img = card["art"], card["img"]
        if card["kind"] == "audio":
            assert close(art["width"], art["height"]), card  # square, whatever the cover
        else:
            assert close(art["width"] * 9 / 16, art["height"]), card
        if img is not None:
            # The picture fills its box: no bars above, below or beside it.
            assert card["loaded"] and card["fit"] == "cover", card
            for side in ("x", "y", "width", "height"):
                assert close(img[side], art[side]), (side, card)
        # One link per card (its title, stretched over it); Play over the art, revealed by the
        # player bar's script (rendered hidden); the same page's path in both buttons.
        assert card["links"] == 1, card
        play = card["play"]
        assert play is not None and not play["hidden"], card
        assert play["label"] == f"Lire {card['title']}", card
        assert play["path"] == card["queue"] and play["path"].startswith("/productions/"), card
    # Cards of a row are equally tall, the one with a three-line title included.
    rows: dict[int, list[float]] = {}
    for card in cards:
        rows.setdefault(round(card["card"]["y"]), []).append(card["card"]["height"])
    for heights in rows.values():
        assert max(heights) - min(heights) <= 1, rows
    if width == "desktop":
        assert max(len(h) for h in rows.values()) >= 4, rows  # a row of several cards
    else:
        # Two a row on a phone, each within the screen.
        assert max(len(h) for h in rows.values()) == 2, rows
        assert all(c["card"]["x"] + c["card"]["width"] <= PHONE["width"] for c in cards)
    # Play sits inside the art's corner.
    for card in page.evaluate(CARD_BOXES):
        art, button = card["art"], card["play"]["box"]
        assert button["width"] >= 44 and button["height"] >= 44, card
        assert art["x"] <= button["x"] and button["x"] + button["width"] <= art["x"] + art["width"]
        assert (
            art["y"] <= button["y"] and button["y"] + button["height"] <= art["y"] + art["height"]
        )
    page.evaluate("window.scrollTo(0, 0)")
    page.locator("#latest-title").scroll_into_view_if_needed()
    screenshot(page, f"cards-home-{width}")
    # The cards further down: the one without a picture (its placeholder) among them.
    page.locator(".card", has_text="Sans image").scroll_into_view_if_needed()
    screenshot(page, f"cards-home-lower-{width}")
    # The whole card leads to the production: a click on its venue line, not on its title.
    # (Playwright would refuse a click on the line: the stretched link covers it, as meant.)
    venue_line = page.locator(".card", has_text=SQUARE).locator(".card__venue")
    venue_line.scroll_into_view_if_needed()
    line = venue_line.bounding_box()
    assert line is not None
    page.mouse.click(line["x"] + line["width"] / 2, line["y"] + line["height"] / 2)
    page.wait_for_url(f"{site.url}/productions/{site.slugs['square']}")
    assert guest.errors == [], guest.errors


def test_the_title_is_one_tab_stop_per_card(site: Site, browser: Any) -> None:
    guest = Visitor(browser, DESKTOP)
    page = guest.page
    page.goto(f"{site.url}/tags/jazz")
    first = page.locator("main .card__link").first
    page.wait_for_selector("main .card__play:not([hidden])")
    first.focus()
    # The title is the card's one link; its buttons are stops of their own: its "Add to
    # queue", then the next card's Play (over its art), then the next card's title.
    stops = []
    for _ in range(3):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("document.activeElement.className"))
    assert stops == ["card__queue", "card__play", "card__link"], stops
    titles = page.locator("main .card__link").all_inner_texts()
    assert page.evaluate("document.activeElement.textContent.trim()") == titles[1].strip()
    guest.close()


ARTIST_CARDS = """() => [...document.querySelectorAll(".artist-card")].map((card) => {
    const photo = card.querySelector(".artist-card__photo");
    const r = photo.getBoundingClientRect();
    return {
        name: card.querySelector(".artist-card__name").textContent.trim(),
        img: photo.tagName === "IMG",
        natural: photo.tagName === "IMG" ? [photo.naturalWidth, photo.naturalHeight] : null,
        lazy: photo.getAttribute("loading"),
        box: [r.width, r.height],
        initials: getComputedStyle(photo, "::before").content,
    };
})"""


def test_artist_cards_show_their_photo_and_the_a_to_z_no_dead_letter(
    site: Site, visitor: tuple[str, Visitor]
) -> None:
    width, guest = visitor
    page = guest.page
    page.goto(f"{site.url}/artists")
    page.wait_for_function(
        "[...document.querySelectorAll('img.artist-card__photo')].every(i => i.complete)"
    )
    cards = {card["name"]: card for card in page.evaluate(ARTIST_CARDS)}
    assert set(cards) == {"Aïcha Benali", "Élodie Fauré", "Marc Lenoir", "Zoé Roux"}
    elodie = cards["Élodie Fauré"]
    assert elodie["img"] and elodie["natural"] == [400, 400] and elodie["lazy"] == "lazy"
    assert elodie["box"] == [64, 64]
    marc = cards["Marc Lenoir"]
    assert not marc["img"] and marc["initials"] == '"ML"' and marc["box"] == [64, 64]
    screenshot(page, f"cards-artists-{width}")
    letters = page.locator(".letters li")
    linked = page.locator(".letters li a").all_inner_texts()
    assert linked == ["Tous", "A", "E", "M", "Z"], linked
    assert letters.count() == 28  # All, A to Z, and "#"
    assert page.locator(".letters li").filter(has_text=re.compile("^B$")).count() == 1
    assert page.locator(".letters a").filter(has_text=re.compile("^B$")).count() == 0
    # Every letter that is a link lists someone.
    for letter in linked[1:]:
        page.goto(f"{site.url}/artists")
        page.locator(".letters").get_by_role("link", name=letter, exact=True).click()
        page.wait_for_url(f"**/artists?letter={letter.lower()}")
        page.wait_for_load_state()
        assert page.locator(".artist-card").count() >= 1, letter
    # An artist's page: their productions in one queue, each card once.
    page.goto(f"{site.url}/artists/marc-lenoir")
    assert page.locator("main [data-queue]").count() == 1
    assert page.locator("main [data-queue] .card").count() == 2
    screenshot(page, f"cards-artist-page-{width}")
    assert guest.errors == [], guest.errors


def test_the_facts_come_before_the_share_tools_on_a_phone(
    site: Site, visitor: tuple[str, Visitor]
) -> None:
    width, guest = visitor
    page = guest.page
    page.goto(f"{site.url}/productions/{site.slugs['square']}")
    facts = page.locator(".facts").bounding_box()
    share = page.locator(".production__share").bounding_box()
    description = page.locator(".production .description").bounding_box()
    assert facts is not None and share is not None and description is not None
    if width == "phone":
        assert facts["y"] + facts["height"] <= share["y"], (facts, share)
        page.locator(".facts").scroll_into_view_if_needed()
    else:
        # Beside each other: the facts on the right, the description and Share on the left.
        assert facts["x"] > share["x"] + share["width"] - 1, (facts, share)
        assert description["y"] < share["y"]
    screenshot(page, f"cards-production-facts-{width}")


def test_the_studio_checkbox_saves_and_the_link_downloads(
    site: Site, visitor: tuple[str, Visitor], tmp_path: Path
) -> None:
    width, guest = visitor
    page = guest.page
    page.goto(f"{site.url}/login?next=/studio")
    page.fill("input[name=email]", NORA)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.studio-form button[type=submit]")
    page.wait_for_url(f"{site.url}/studio")
    edit = f"{site.url}/studio/productions/{site.ids['square']}"
    page.goto(edit)
    box = page.get_by_label("Permettre de récupérer le fichier (.m4a) depuis sa page")
    # Under "all rights reserved" it is refused, with the sentence beside it.
    page.select_option("select[name=licence]", "all-rights-reserved")
    box.check()
    page.click(".form-actions button[type=submit]")
    error = page.locator("#allow_download-error")
    error.wait_for()
    assert "licence Creative Commons ou CC0" in error.inner_text()
    error.scroll_into_view_if_needed()
    screenshot(page, f"cards-studio-download-refused-{width}")
    # Under CC BY 4.0 it is saved.
    page.select_option("select[name=licence]", "CC-BY-4.0")
    box = page.get_by_label("Permettre de récupérer le fichier (.m4a) depuis sa page")
    assert box.is_checked()
    page.click(".form-actions button[type=submit]")
    page.wait_for_url(f"{edit}?done=saved")
    assert page.get_by_label("Permettre de récupérer le fichier (.m4a) depuis sa page").is_checked()
    page.goto(f"{site.url}/productions/{site.slugs['square']}")
    link = page.get_by_role("link", name="Récupérer le fichier (.m4a)")
    link.scroll_into_view_if_needed()
    screenshot(page, f"cards-download-link-{width}")
    with page.expect_download() as waiting:
        link.click()
    download = waiting.value
    assert download.suggested_filename == f"Élodie Fauré - {SQUARE}.m4a"
    saved = tmp_path / "saved.m4a"
    download.save_as(saved)
    assert saved.read_bytes() == site.m4a
    # Unticked again, for the other width's run.
    page.goto(edit)
    page.get_by_label("Permettre de récupérer le fichier (.m4a) depuis sa page").uncheck()
    page.click(".form-actions button[type=submit]")
    page.wait_for_url(f"{edit}?done=saved")
    page.goto(f"{site.url}/productions/{site.slugs['square']}")
    assert page.get_by_role("link", name="Récupérer le fichier (.m4a)").count() == 0


def test_an_empty_search_proposes_productions_and_artists(
    site: Site, visitor: tuple[str, Visitor]
) -> None:
    width, guest = visitor
    page = guest.page
    page.goto(f"{site.url}/search?q=introuvable")
    assert page.get_by_role("heading", name="Productions récentes").is_visible()
    assert page.locator("main [data-queue] .card").count() == 5
    assert page.get_by_role("heading", name="Artistes à découvrir").is_visible()
    assert page.locator(".artist-card").count() == 4
    screenshot(page, f"cards-search-empty-{width}")


AXE = Path(__file__).resolve().parent.parent / "node_modules/axe-core/axe.min.js"
RUN_AXE = """async () => {
    const scope = {include: [["main"]], exclude: [["[data-player]"]]};
    const result = await axe.run(scope, {resultTypes: ["violations"]});
    return result.violations
        .filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
}"""


@pytest.mark.skipif(not AXE.is_file(), reason="axe-core is not installed (npm)")
def test_browse_pages_have_no_serious_axe_violation(site: Site, browser: Any) -> None:
    """axe-core, as installed from npm, on what these pages' main content shows (the header and
    the player are other tests' business), at both widths, with the Play buttons shown as the
    player bar shows them. (Its script is added by the test, which the site's policy would
    refuse: this context bypasses it, and only it.)"""
    pages = [
        "/",
        "/artists",
        "/artists/elodie-faure",
        "/search",
        "/search?q=introuvable",
        "/tags/jazz",
        "/venues",
        f"/productions/{site.slugs['square']}",
    ]
    source = AXE.read_text()
    problems: list[str] = []
    for name, viewport in WIDTHS:
        context = browser.new_context(viewport=viewport, locale="fr-FR", bypass_csp=True)
        page = context.new_page()
        for path in pages:
            page.goto(f"{site.url}{path}", wait_until="load")
            page.evaluate(source)
            problems += [f"{name} {path}: {v}" for v in page.evaluate(RUN_AXE)]
        context.close()
    assert problems == [], "\n".join(problems)
