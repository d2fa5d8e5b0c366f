"""Music that keeps playing: page swaps under one lasting player, its bar, the queue, Media
Session, loudness levelling, and the play button that works before the player's code.

Headless Debian Chromium against a real server and real HLS, at desktop and phone width. A
production started on its page plays on while the listener follows links (Turbo Drive swaps the
page; the one media element moves out of the page and back), the bar at the foot of the page
shows it, and coming back to its page shows it playing in the page's player. The queue and the
list a production was started from go on at its end; what cannot be played is skipped with a
message. Screenshots of the bar land in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.models import Artist, Production

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing.
from tests import test_browser
from tests.media import ffmpeg, split
from tests.test_browser import DESKTOP, Catalogue, screenshot

browser = test_browser.browser
shared_context = test_browser.shared_context
new_page = test_browser.new_page
catalogue = test_browser.catalogue
artifacts = test_browser.artifacts

PHONE = {"width": 375, "height": 812}
ARTIST = "Chœur Diois"
LONG_TITLE = "Longue veillée"
PRIVATE_TITLE = "Répétition privée"
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]


@dataclass
class Extra:
    long_slug: str
    private_slug: str
    short_title: str
    video_title: str


def _ingest(catalogue: Catalogue, path: Path, title: str, visibility: str = "public") -> str:
    services = catalogue.services
    production_id, job_id = submit_file(services, path, title=title, artists=[ARTIST])
    run_transcode(services, job_id)
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.status == "ready"
        production.visibility = visibility
        return production.slug


@pytest.fixture(scope="module")
def extra(
    catalogue: Catalogue, tmp_path_factory: pytest.TempPathFactory, media: Callable[[str], Path]
) -> Extra:
    """A 40 s quiet audio production (long enough to follow links while it plays; quiet, so
    that levelling raises it) and a private one, both by the catalogue's artist."""
    directory = tmp_path_factory.mktemp("bar")
    long_audio = directory / "long.mp3"
    ffmpeg(
        *["-f", "lavfi", "-i", "sine=frequency=330:sample_rate=44100:duration=40"],
        *split("-af volume=-30dB -c:a libmp3lame -b:a 96k"),
        str(long_audio),
    )
    long_slug = _ingest(catalogue, long_audio, LONG_TITLE)
    private_slug = _ingest(catalogue, media("mp3_id3v24_apic"), PRIVATE_TITLE, "private")
    with catalogue.services.sessions() as session:
        short = session.get(Production, catalogue.audio_id)
        video = session.get(Production, catalogue.video_id)
        assert short is not None and video is not None
        titles = short.title, video.title
    return Extra(long_slug, private_slug, *titles)


# --- helpers -------------------------------------------------------------------------------------

# Every media element of the document, the one waiting outside <body> included.
PLAYING = (
    "() => Array.from(document.querySelectorAll('video, audio')).filter((m) => !m.paused).length"
)
BAR_TIME = "() => CiteLiveBar.player ? CiteLiveBar.player.media.currentTime : -1"


def bar_title(page: Any) -> str:
    return str(page.locator("[data-bar-title]").inner_text())


def wait_bar_plays(page: Any, title: str) -> None:
    page.wait_for_function(
        """(title) => {
            const bar = document.querySelector("[data-bar]");
            const player = window.CiteLiveBar && CiteLiveBar.player;
            return !bar.hidden && bar.querySelector("[data-bar-title]").textContent === title
                && player && !player.media.paused && player.media.currentTime > 0.2;
        }""",
        arg=title,
    )


def assert_keeps_playing(page: Any, since: float) -> float:
    """The bar's media plays on past `since`, and it is the only one playing."""
    page.wait_for_function(f"() => ({BAR_TIME})() > {since + 0.5}")
    assert page.evaluate(PLAYING) == 1
    now: float = page.evaluate(BAR_TIME)
    return now


def follow(page: Any, selector: str, ready: str) -> None:
    """Click a link and wait until the page swapped in is there (`ready`, a JS expression);
    it is a swap: the same document."""
    page.locator(selector).first.click()
    page.wait_for_function(f"() => {ready}")
    assert page.evaluate("() => document.documentElement.dataset.sameDocument") == "yes"


def give_cards_their_buttons(page: Any, extras: list[tuple[int, str]] = ()) -> None:
    """The cards give "Play" (data-play) and "Add to queue" (data-queue-add) in a [data-queue]
    list; "Play next" (data-play-next) is the production page's, which the bar handles the
    same way wherever it is: added here beside each card's own buttons, so that one list
    exercises all three. `extras`: (position, path) cards inserted in the list, hostile ones
    included."""
    page.evaluate(
        """(extras) => {
            const list = document.querySelector("main [data-queue]");
            const button = (name, path, label) => {
                const element = document.createElement("button");
                element.type = "button";
                element.setAttribute(name, path);
                element.textContent = label;
                return element;
            };
            for (const play of list.querySelectorAll(".card [data-play]")) {
                if (play.hidden) throw new Error("the bar did not reveal " + play.dataset.play);
                const path = play.dataset.play;
                const next = button("data-play-next", path, "Next " + path);
                next.className = "card__queue";
                play.closest(".card").querySelector(".card__actions").append(next);
            }
            for (const [position, path] of extras) {
                const item = document.createElement("li");
                item.append(button("data-play", path, "Play " + path));
                list.insertBefore(item, list.children[position] || null);
            }
        }""",
        [list(extra) for extra in extras],
    )


def mark_document(page: Any) -> None:
    page.evaluate("() => { document.documentElement.dataset.sameDocument = 'yes'; }")


def card_button(page: Any, attribute: str, slug: str) -> Any:
    return page.locator(f"main [{attribute}='/productions/{slug}']").first


def seek_near_end(page: Any) -> None:
    page.evaluate("() => { const p = CiteLiveBar.player; p.seek(p.duration() - 0.6); }")


# --- page swaps and one lasting player -------------------------------------------------------


@pytest.mark.parametrize("viewport", SIZES)
def test_a_production_plays_on_across_page_swaps_and_back_to_its_page(
    catalogue: Catalogue, extra: Extra, new_page: Callable[..., Any], viewport: dict[str, int]
) -> None:
    page = new_page(viewport=viewport)
    page.goto(f"{catalogue.url}/productions/{extra.long_slug}")
    assert page.locator("[data-bar]").is_hidden(), "no bar before anything plays"
    page.locator("main [data-play-button]").click()
    wait_bar_plays(page, LONG_TITLE)
    assert page.evaluate(PLAYING) == 1
    assert page.locator("[data-bar-artists]").inner_text() == ARTIST
    mark_document(page)
    now = page.evaluate(BAR_TIME)

    # Three links: the artist, another production (its own player stays silent), home.
    follow(
        page,
        "main .byline a",
        "location.pathname.startsWith('/artists/') && !!document.querySelector('main .grid')",
    )
    assert page.locator("main [data-player]").count() == 0
    now = assert_keeps_playing(page, now)
    follow(
        page,
        f"main a[href$='/productions/{catalogue.video_slug}']",
        "!!document.querySelector('main [data-player][data-mounted] video')",
    )
    now = assert_keeps_playing(page, now)
    assert page.evaluate("() => document.querySelector('main video').paused")
    assert bar_title(page) == LONG_TITLE
    follow(page, "a.brand", "location.pathname === '/' && !document.querySelector('main video')")
    now = assert_keeps_playing(page, now)
    assert bar_title(page) == LONG_TITLE
    page.wait_for_timeout(300)
    screenshot(page, f"bar-{'phone' if viewport == PHONE else 'desktop'}")

    # Back to its page by the bar's link: the page's player is the one playing, further on.
    follow(page, "[data-bar-title]", "!!document.querySelector('main [data-player] audio')")
    page.wait_for_selector("main [data-player][data-mounted][data-attached]", state="attached")
    state = page.evaluate(
        """() => {
            const media = document.querySelector("main [data-player] audio");
            return { same: media === CiteLiveBar.player.media, paused: media.paused,
                     time: media.currentTime,
                     start: getComputedStyle(
                         document.querySelector("main [data-play-button]")).display };
        }"""
    )
    assert state["same"] and not state["paused"] and state["time"] > now
    assert state["start"] == "none", "the player's own controls, not the start button"
    assert page.evaluate(PLAYING) == 1
    page.wait_for_selector("main [data-player][data-waveform='ready']", state="attached")
    # Its controls follow that element: the play button says it plays, the clock moves.
    page.wait_for_function(
        "() => { const b = document.querySelector('main media-play-button');"
        " return b && !b.hasAttribute('mediapaused'); }"
    )
    page.wait_for_function(
        "() => Number(document.querySelector('main media-controller')"
        ".getAttribute('mediacurrenttime')) > 1"
    )
    screenshot(page, f"bar-back-on-its-page-{'phone' if viewport == PHONE else 'desktop'}")

    # Back and forward: home, still playing; its page again, its player still showing it.
    page.go_back()
    page.wait_for_function("() => !document.querySelector('main [data-player]')")
    now = assert_keeps_playing(page, page.evaluate(BAR_TIME))
    page.go_forward()
    page.wait_for_function(
        "() => { const m = document.querySelector('main [data-player] audio');"
        " return m && m === CiteLiveBar.player.media && !m.paused; }"
    )
    assert_keeps_playing(page, now)
    assert page.evaluate("() => document.documentElement.dataset.sameDocument") == "yes"
    assert page.js_errors == []


def test_the_account_pages_load_in_full(catalogue: Catalogue, new_page: Callable[..., Any]) -> None:
    """The sign-in page's scripts run once at load: asked for by a swap, it loads in full."""
    page = new_page()
    page.goto(f"{catalogue.url}/artists")
    mark_document(page)
    page.evaluate("() => Turbo.visit('/login')")
    page.wait_for_function(
        "() => location.pathname === '/login' && !!document.querySelector('form')"
    )
    page.wait_for_load_state()
    assert page.evaluate("() => document.documentElement.dataset.sameDocument") is None
    # The search box swaps the page (Turbo's form mode "optin").
    page.goto(f"{catalogue.url}/")
    mark_document(page)
    page.locator("#site-search").fill("veillée")
    page.locator("#site-search").press("Enter")
    page.wait_for_url("**/search?q=**")
    page.wait_for_selector(f"main a:has-text('{LONG_TITLE}')")
    assert page.evaluate("() => document.documentElement.dataset.sameDocument") == "yes"
    assert page.js_errors == []


# --- the queue ---------------------------------------------------------------------------------


@pytest.mark.parametrize("viewport", SIZES)
def test_play_next_and_add_to_queue_then_the_artists_list(
    catalogue: Catalogue, extra: Extra, new_page: Callable[..., Any], viewport: dict[str, int]
) -> None:
    page = new_page(viewport=viewport)
    page.goto(f"{catalogue.url}/artists/{page_slug(catalogue, ARTIST)}")
    give_cards_their_buttons(page)
    order = page.evaluate(
        "() => Array.from(document.querySelectorAll('main [data-queue] [data-play]'),"
        " (b) => b.dataset.play)"
    )
    assert f"/productions/{extra.private_slug}" not in order, "private: not listed"
    card_button(page, "data-queue-add", catalogue.video_slug).click()
    page.wait_for_function("() => CiteLiveBar.state.queue.length === 1")
    card_button(page, "data-play-next", catalogue.audio_slug).click()
    page.wait_for_function("() => CiteLiveBar.state.queue.length === 2")
    assert page.locator("[data-bar-count]").inner_text() == "2"
    assert page.locator("[data-bar-status]").get_attribute("data-said").endswith(extra.short_title)
    page.locator("[data-bar-queue-button]").click()
    page.locator("[data-bar-queue]").wait_for(state="visible")
    titles = page.locator("[data-bar-queue-list] li").all_inner_texts()
    assert titles == [extra.short_title, extra.video_title]
    screenshot(page, f"bar-queue-{'phone' if viewport == PHONE else 'desktop'}")
    page.keyboard.press("Escape")

    # Play the long one from the list; at its end the queue's first, then its second.
    card_button(page, "data-play", extra.long_slug).click()
    wait_bar_plays(page, LONG_TITLE)
    seek_near_end(page)
    wait_bar_plays(page, extra.short_title)
    assert page.evaluate(PLAYING) == 1
    assert page.locator("[data-bar-count]").inner_text() == "1"
    seek_near_end(page)
    wait_bar_plays(page, extra.video_title)
    assert page.evaluate("() => CiteLiveBar.state.queue.length") == 0

    # The queue is empty: on with the artist's list, after the long one.
    after = order[order.index(f"/productions/{extra.long_slug}") + 1 :]
    assert after, order
    expected = page.evaluate(
        "(path) => fetch(path + '/player.json').then((r) => r.json()).then((d) => d.title)",
        after[0],
    )
    seek_near_end(page)
    wait_bar_plays(page, expected)
    assert page.evaluate(PLAYING) == 1
    assert page.js_errors == []


def page_slug(catalogue: Catalogue, name: str) -> str:
    with catalogue.services.sessions() as session:
        slug = session.scalars(select(Artist.slug).where(Artist.name == name)).one()
    return str(slug)


def test_what_cannot_play_is_skipped_with_a_message(
    catalogue: Catalogue, extra: Extra, new_page: Callable[..., Any]
) -> None:
    """A card pointing at nothing, at a private production or at another site: skipped, and
    the next one plays; the queue survives a reload."""
    page = new_page(fresh=True)
    page.goto(f"{catalogue.url}/artists/{page_slug(catalogue, ARTIST)}")
    give_cards_their_buttons(
        page,
        [
            (0, f"/productions/{extra.long_slug}"),
            (1, "/productions/nowhere-at-all"),
            (2, f"/productions/{extra.private_slug}"),
            (3, "https://example.org/productions/x"),
            (4, f"/productions/{catalogue.audio_slug}"),
        ],
    )
    page.locator("main [data-queue] > li").first.locator("[data-play]").click()
    wait_bar_plays(page, LONG_TITLE)
    seek_near_end(page)
    wait_bar_plays(page, extra.short_title)
    said = page.locator("[data-bar-status]").get_attribute("data-said")
    assert said == "Cette production ne peut pas être lue ici : passée."

    # Added to the queue, then a full reload: the queue is still there.
    card_button(page, "data-queue-add", catalogue.video_slug).click()
    page.wait_for_function("() => CiteLiveBar.state.queue.length === 1")
    page.reload()
    page.wait_for_selector("[data-bar]:not([hidden])")
    assert page.evaluate("() => CiteLiveBar.state.queue.map((i) => i.title)") == [extra.video_title]
    assert page.locator("[data-bar-count]").inner_text() == "1"
    assert page.js_errors == []


# --- Media Session and loudness ------------------------------------------------------------------


def test_media_session_and_loudness_levelling(
    catalogue: Catalogue, extra: Extra, new_page: Callable[..., Any]
) -> None:
    page = new_page(fresh=True)
    url = f"{catalogue.url}/productions/{extra.long_slug}"
    page.goto(url)
    data = page.evaluate(f"() => fetch('{url}/player.json').then((r) => r.json())")
    assert isinstance(data["loudness_lufs"], float) and data["loudness_lufs"] < -22
    page.locator("main [data-play-button]").click()
    wait_bar_plays(page, LONG_TITLE)
    session = page.evaluate(
        """() => { const m = navigator.mediaSession.metadata;
            return { title: m.title, artist: m.artist, album: m.album,
                     artwork: m.artwork.map((a) => ({ src: a.src, sizes: a.sizes, type: a.type })),
                     state: navigator.mediaSession.playbackState }; }"""
    )
    assert session["title"] == LONG_TITLE and session["artist"] == ARTIST
    assert session["album"] == "Cité Live" and session["state"] == "playing"
    assert session["artwork"] and session["artwork"][0]["type"] == "image/jpeg"

    # Quiet: raised, but by 6 dB at most.
    page.wait_for_function(
        "() => document.querySelector('main audio').hasAttribute('data-levelled')"
    )
    gain = float(page.locator("[data-bar]").get_attribute("data-gain"))
    assert gain == pytest.approx(10 ** (6 / 20), rel=1e-3)
    switch = page.locator("[data-bar-level]")
    switch.uncheck()
    assert float(page.locator("[data-bar]").get_attribute("data-gain")) == 1
    assert page.evaluate("() => localStorage.getItem('cl-loudness')") == "off"
    page.wait_for_function(f"() => ({BAR_TIME})() > 3")
    played = page.evaluate(BAR_TIME)
    page.reload()
    assert not page.locator("[data-bar-level]").is_checked(), "remembered"
    # After the reload the bar shows what was playing; its play button goes on from there.
    page.wait_for_selector("[data-bar]:not([hidden])")
    assert bar_title(page) == LONG_TITLE
    assert page.locator("[data-bar-artists]").inner_text() == ARTIST
    page.locator("[data-bar-toggle]").click()
    wait_bar_plays(page, LONG_TITLE)
    # From where it was (give or take the last quarter second it told).
    assert page.evaluate(BAR_TIME) >= played - 0.5
    page.locator("[data-bar-level]").check()
    assert page.evaluate("() => localStorage.getItem('cl-loudness')") == "on"
    assert page.js_errors == []


def test_the_embed_levels_too(
    catalogue: Catalogue, extra: Extra, new_page: Callable[..., Any]
) -> None:
    page = new_page(fresh=True)
    page.goto(f"{catalogue.url}/embed/{extra_id(catalogue, extra.long_slug)}")
    page.locator("[data-play-button]").click()
    page.wait_for_function(
        "() => { const m = document.querySelector('audio');"
        " return !m.paused && m.currentTime > 0.3; }"
    )
    page.wait_for_selector("audio[data-levelled]", state="attached")
    assert page.locator("[data-bar]").count() == 0, "no bar in a partner's frame"
    assert page.js_errors == []


def extra_id(catalogue: Catalogue, slug: str) -> str:
    with catalogue.services.sessions() as session:
        found = session.scalars(select(Production.id).where(Production.slug == slug)).one()
    return str(found)


def test_the_guide_works_when_swapped_in(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    """A page's scripts work on a page swapped in: the partners' guide drives its example."""
    page = new_page()
    page.goto(f"{catalogue.url}/")
    mark_document(page)
    # Turbo's progress bar at once (a <style> of its own): within the page's policy too.
    page.evaluate(
        """() => {
            Turbo.setProgressBarDelay(0);
            new MutationObserver(() => {
                if (document.querySelector(".turbo-progress-bar")) window.sawProgress = true;
            }).observe(document.documentElement, { childList: true, subtree: true });
        }"""
    )
    page.locator("footer a[href$='/partners']").click()
    page.wait_for_selector("[data-guide-try] [data-command]:not([disabled])")
    assert page.evaluate("() => document.documentElement.dataset.sameDocument") == "yes"
    assert page.evaluate("() => window.sawProgress === true"), "it was drawn"
    assert page.js_errors == []


# --- deep links and the play button before scripts -----------------------------------------------


def test_a_deep_link_swapped_in_starts_there(
    catalogue: Catalogue, extra: Extra, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/")
    mark_document(page)
    page.evaluate(f"() => Turbo.visit('/productions/{extra.long_slug}?t=20')")
    page.wait_for_url("**?t=20")
    page.wait_for_selector("main [data-player][data-mounted]", state="attached")
    # The player's code is there; hls.js, not yet: it comes at the first play.
    assert page.evaluate("() => typeof window.Hls") == "undefined"
    page.locator("main [data-play-button]").click()
    wait_bar_plays(page, LONG_TITLE)
    assert page.evaluate(BAR_TIME) >= 20
    assert page.evaluate("() => document.documentElement.dataset.sameDocument") == "yes"
    assert page.js_errors == []


@pytest.mark.parametrize("viewport", SIZES)
def test_the_play_button_pressed_before_the_player_code_plays_once_it_arrives(
    catalogue: Catalogue, extra: Extra, new_page: Callable[..., Any], viewport: dict[str, int]
) -> None:
    page = new_page(viewport=viewport)
    held: list[Any] = []
    # The player's code: a lazy chunk of the built site.js (player-core-HASH.js), or the
    # source's own file without a build.
    page.route(re.compile(r"/player-core(-[A-Z0-9]+)?\.js$"), lambda route: held.append(route))
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}", wait_until="load")
    button = page.locator("main [data-play-button]")
    button.wait_for(state="visible")
    screenshot(page, f"start-button-{'phone' if viewport == PHONE else 'desktop'}")
    assert page.locator("main [data-player][data-mounted]").count() == 0
    button.click()
    assert page.locator("main [data-player][data-wants-play]").count() == 1
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.querySelector('main video').paused")
    for _ in range(100):  # the loader asked for the player's code (at the click, or idle)
        if held:
            break
        page.wait_for_timeout(100)
    assert held
    for route in held:
        route.continue_()
    page.wait_for_function(
        "() => { const m = document.querySelector('main video');"
        " return !m.paused && m.currentTime > 0.5; }"
    )
    assert page.locator("main [data-player][data-wants-play]").count() == 0
    assert page.js_errors == []


@pytest.mark.parametrize("viewport", SIZES)
def test_a_press_before_the_site_script_runs_is_kept_and_plays_once_it_does(
    catalogue: Catalogue, new_page: Callable[..., Any], viewport: dict[str, int]
) -> None:
    """On a slow phone the play button is drawn before the site's script has arrived: the
    page's inline script (cite_live/web/early_press.py, allowed by its hash) keeps the press,
    which the player's loader honours as it starts."""
    page = new_page(viewport=viewport)
    held: list[Any] = []
    page.route(re.compile(r"/site(-[A-Z0-9]+)?\.js$"), lambda route: held.append(route))
    page.goto(f"{catalogue.url}/productions/{catalogue.audio_slug}", wait_until="commit")
    button = page.locator("main [data-play-button]")
    button.wait_for(state="visible")
    for _ in range(100):  # the site's script is asked for, and held
        if held:
            break
        page.wait_for_timeout(50)
    assert held
    assert page.evaluate("() => window.CiteLivePlayer === undefined")
    button.click()
    assert page.locator("main [data-player][data-wants-play]").count() == 1
    # The press was kept, not followed: no navigation, nothing plays yet.
    assert page.evaluate("() => document.querySelector('main audio').paused")
    for route in held:
        route.continue_()
    page.wait_for_function(
        "() => { const m = document.querySelector('main audio');"
        " return !m.paused && m.currentTime > 0.5; }"
    )
    assert page.locator("main [data-player][data-wants-play]").count() == 0
    assert page.js_errors == []
    assert page.csp_violations == []
