"""Collections in a real browser: headless Debian Chromium against a real server and real HLS.

Three short audio clips are made with ffmpeg and ingested once for the module, owned by Nora.
She makes a collection of them in the studio (add, reorder, cover, publish) at desktop and
phone width, a listener opens its page, and its playlist player, framed by a partner site on
another origin, plays the first clip, goes to the next and the previous, and starts the next one
by itself when one ends. Every page runs within the site's Content-Security-Policy. Screenshots
land in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cite_live.collections import new_slug
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.models import Collection, CollectionItem, Production
from cite_live.services import Services, open_services
from tests.account_fixtures import make_user
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url
from tests.media import ffmpeg, split

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    PLAY_TIMEOUT_MS,
    partner_site,
    playwright_api,
    screenshot,
    watch_csp,
)
from tests.test_browser_studio import Visitor, image_file, image_loaded

NORA = "nora@example.org"
WIDTHS = (("desktop", DESKTOP), ("phone", PHONE))
CLIPS = (("Aube", 330), ("Midi", 440), ("Crépuscule", 550))
CLIP_SECONDS = 4
# The fixture is imported for this module's tests (pytest finds it in the module's namespace).
__all__ = ["partner_site"]


@dataclass
class Site:
    url: str
    services: Services
    nora_id: int
    # The clips' production ids, in CLIPS order.
    clips: list[str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory = tmp_path_factory.mktemp("collections-browser")
    services = open_services(make_settings(directory / "data", sqlite_url(directory)))
    nora_id = make_user(services, NORA, artists=["Nora Ilić"])
    clips = []
    for title, frequency in CLIPS:
        path = directory / f"{title}.flac"
        ffmpeg(
            *["-f", "lavfi", "-i", f"sine=frequency={frequency}:duration={CLIP_SECONDS}"],
            *split("-ac 2 -ar 48000 -c:a flac"),
            str(path),
        )
        production_id, job_id = submit_file(services, path, title=title, artists=["Nora Ilić"])
        run_transcode(services, job_id)
        with services.sessions.begin() as session:
            production = session.get(Production, production_id)
            assert production is not None and production.status == "ready", production
            production.owner_id = nora_id
        clips.append(production_id)
    try:
        with serving(services) as url:
            yield Site(url, services, nora_id, clips)
    finally:
        services.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def visitors(browser: Any, site: Site) -> Iterator[Callable[[dict[str, int]], Visitor]]:
    opened: list[Visitor] = []

    def open_visitor(viewport: dict[str, int]) -> Visitor:
        opened.append(Visitor(browser, site, viewport))  # type: ignore[arg-type]
        return opened[-1]

    yield open_visitor
    for visitor in opened:
        visitor.close()


def order(services: Services, collection_id: str) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(CollectionItem.production_id)
                .where(CollectionItem.collection_id == collection_id)
                .order_by(CollectionItem.position)
            )
        )


def press(page: Any, selector: str) -> None:
    """Press a submit button of the form and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def test_an_artist_makes_a_collection_and_a_listener_opens_it(
    site: Site, visitors: Callable[[dict[str, int]], Visitor], tmp_path: Path
) -> None:
    services = site.services
    cover = image_file(tmp_path / "affiche.png", (30, 90, 160))
    aube, midi, crepuscule = site.clips
    for name, viewport in WIDTHS:
        page = visitors(viewport).sign_in(NORA).page
        page.click("a:has-text('Mes collections')")
        page.wait_for_url(f"{site.url}/studio/collections")
        title = f"Temps fort {name}"
        page.fill("#new-title", title)
        page.select_option("#new-kind", "festival")
        press(page, "form.collection-new button[type=submit]")
        assert page.inner_text(".notice") == "La collection est créée."
        collection_url = page.url.split("?")[0]
        collection_id = collection_url.rsplit("/", 1)[1]

        for production_id in (aube, midi, crepuscule):
            page.select_option("#add_production", production_id)
            press(page, "button[value=add]")
            assert page.inner_text(".notice") == "Ajoutée à la collection."
        assert order(services, collection_id) == [aube, midi, crepuscule]

        # Crépuscule first: up twice, with the buttons that need no script.
        press(page, f"button[value='up:{crepuscule}']")
        press(page, f"button[value='up:{crepuscule}']")
        assert page.inner_text(".notice") == "L’ordre est modifié."
        titles = page.locator(".collection-item__title").all_inner_texts()
        assert titles == ["Crépuscule", "Aube", "Midi"]
        assert order(services, collection_id) == [crepuscule, aube, midi]

        page.fill("#title_en", f"Highlight {name}")
        page.fill("#description", "Trois moments d’une journée au festival.")
        page.set_input_files("#cover", str(cover))
        page.check("input[name=state][value=public]")
        page.locator(".collection-items").scroll_into_view_if_needed()
        screenshot(page, f"collection-studio-{name}")
        press(page, "p.form-actions button[value=save]")
        assert page.inner_text(".notice") == "Enregistré."
        assert image_loaded(page, "img.studio-cover__image:not([data-cover-preview])")
        page.evaluate("() => window.scrollTo(0, 0)")
        screenshot(page, f"collection-studio-saved-{name}")
        with services.sessions() as session:
            saved = session.get(Collection, collection_id)
            assert saved is not None
            assert (saved.state, saved.title_en) == ("public", f"Highlight {name}")
            assert saved.cover_key is not None
            slug = saved.slug

        page.goto(f"{site.url}/studio/collections")
        assert title in page.inner_text(".collection-rows")
        screenshot(page, f"collection-studio-list-{name}")
        page.goto(collection_url)

        # A listener opens its page: cover, the clips in order, the playlist ready to play.
        listener = visitors(viewport).page
        listener.goto(f"{site.url}/collections/{slug}")
        listener.wait_for_selector("[data-playlist='ready'] [data-player][data-engine]")
        assert listener.inner_text("h1") == title
        assert image_loaded(listener, "img.collection__cover")
        cards = listener.locator(".card__title").all_inner_texts()
        assert cards == ["Crépuscule", "Aube", "Midi"]
        assert (
            listener.locator(".cl-playlist__item[aria-current=true]")
            .inner_text()
            .find("Crépuscule")
            >= 0
        )
        width = listener.evaluate("() => document.documentElement.scrollWidth")
        assert width <= viewport["width"], "nothing runs off the side"
        screenshot(listener, f"collection-page-{name}")
        listener.locator(".cl-playlist").scroll_into_view_if_needed()
        screenshot(listener, f"collection-page-playlist-{name}")
        # The production's page names the collection.
        listener.goto(f"{site.url}/productions/{slug_of(services, crepuscule)}")
        assert title in listener.inner_text(".in-collections")

        # Deleted, once confirmed: its productions stay.
        page.goto(collection_url)
        page.check("#confirm_delete")
        page.locator(".collection-delete").scroll_into_view_if_needed()
        screenshot(page, f"collection-studio-delete-{name}")
        press(page, "button[value=delete]")
        assert page.inner_text(".notice") == "La collection est supprimée."
        assert title not in page.inner_text("main")
        listener.goto(f"{site.url}/collections/{slug}")
        assert "Il n’y a pas de collection à cette adresse." in listener.inner_text("main")
        assert order(services, collection_id) == []


def slug_of(services: Services, production_id: str) -> str:
    with services.sessions() as session:
        found = session.get(Production, production_id)
        assert found is not None
        return found.slug


def make_collection(services: Services, site: Site) -> str:
    with services.sessions.begin() as session:
        collection = Collection(
            title="Une journée",
            slug=new_slug(session, "Une journée"),
            kind="album",
            state="public",
            owner_id=None,
        )
        session.add(collection)
        session.flush()
        for position, production_id in enumerate(site.clips):
            session.add(
                CollectionItem(
                    collection_id=collection.id, production_id=production_id, position=position
                )
            )
        return collection.id


def playing(frame: Any) -> dict[str, Any]:
    state: dict[str, Any] = frame.evaluate(
        """() => {
            const media = document.querySelector("[data-playlist-stage] audio");
            return {
                current: document.querySelector("[data-playlist]").dataset.current,
                time: media ? media.currentTime : -1,
                paused: media ? media.paused : true,
                players: window.CiteLivePlayer.players.length,
                now: document.querySelector("[data-playlist-now]").textContent,
            };
        }"""
    )
    return state


def wait_playing(frame: Any, index: int, seconds: float = 0.5) -> None:
    frame.wait_for_function(
        """([index, seconds]) => {
            const root = document.querySelector("[data-playlist]");
            const media = document.querySelector("[data-playlist-stage] audio");
            return root.dataset.current === String(index) && media
                && !media.paused && media.currentTime >= seconds;
        }""",
        arg=[index, seconds],
        timeout=PLAY_TIMEOUT_MS,
    )


@pytest.mark.parametrize(("name", "viewport"), WIDTHS)
def test_the_playlist_plays_on_a_partner_site_and_goes_on_by_itself(
    site: Site,
    browser: Any,
    partner_site: Callable[[str, int], str],
    name: str,
    viewport: dict[str, int],
) -> None:
    collection_id = make_collection(site.services, site)
    partner = partner_site(f"{site.url}/embed/collections/{collection_id}", 400)
    assert partner.split("/")[2] != site.url.split("/")[2]
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(PLAY_TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    violations = watch_csp(page)
    try:
        page.goto(partner)
        embed = page.frame_locator("iframe")
        embed.locator("[data-playlist='ready'] [data-player][data-engine]").wait_for(
            state="attached"
        )
        frame = next(f for f in page.frames if "/embed/collections/" in f.url)
        state = playing(frame)
        assert state["current"] == "0" and state["paused"] and state["players"] == 1
        assert state["now"].startswith("1 / 3 · Aube")
        # The frame holds the player and the list, and the list scrolls inside it.
        height = frame.evaluate("() => document.body.getBoundingClientRect().height")
        assert height <= 400
        screenshot(page, f"collection-embed-ready-{name}")

        embed.locator("[data-playlist-stage] media-play-button").click()
        wait_playing(frame, 0)
        embed.locator("[data-playlist-next]").click()
        wait_playing(frame, 1)
        assert playing(frame)["players"] == 1, "the previous player was taken down"
        assert "Midi" in embed.locator(".cl-playlist__item[aria-current=true]").inner_text()
        embed.locator("[data-playlist-previous]").click()
        wait_playing(frame, 0)
        assert embed.locator("[data-playlist-previous]").is_disabled()
        # Choosing an item of the list plays it there, without leaving the frame.
        embed.locator("[data-playlist-choose='1']").click()
        wait_playing(frame, 1)
        screenshot(page, f"collection-embed-playing-{name}")

        # Near its end, Midi ends by itself and Crépuscule starts.
        frame.evaluate(
            """() => {
                const media = document.querySelector("[data-playlist-stage] audio");
                media.currentTime = Math.max(0, media.duration - 0.5);
            }"""
        )
        wait_playing(frame, 2, 0.3)
        assert playing(frame)["now"].startswith("3 / 3 · Crépuscule")
        assert embed.locator("[data-playlist-next]").is_disabled()
        # What plays is in sight in the list, which scrolled within the frame if it had to.
        in_sight = frame.evaluate(
            """() => {
                const list = document.querySelector(".cl-playlist__list").getBoundingClientRect();
                const row = document.querySelector(".cl-playlist__item[aria-current=true]")
                    .getBoundingClientRect();
                return row.top >= list.top - 1 && row.bottom <= list.bottom + 1;
            }"""
        )
        assert in_sight
        screenshot(page, f"collection-embed-continued-{name}")
        assert errors == []
    finally:
        context.close()
    assert violations == [], violations
