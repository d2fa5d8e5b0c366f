"""The player in a real browser: headless Debian Chromium against a real server and real HLS.

One short video and one short audio capture are ingested once for the module. Tests open their
pages in one shared desktop context (a listener coming back, with the player's files cached)
unless they need a phone, permissions or cookies of their own. Every page a test opens must
run within the site's Content-Security-Policy: a violation, in the page or in its frames, fails
the test. Screenshots land in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cite_live import accounts
from cite_live.catalogue import set_tags
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.models import Chapter, Production, User, Venue
from cite_live.services import Services, open_services
from tests.account_fixtures import PASSWORD, make_user
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url
from tests.media import ffmpeg, split
from tests.partner_site import partner_sites

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parent.parent
VENDOR_MARK = ROOT / "web/static/vendor/media-chrome.js"


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if not Path(CHROMIUM).is_file():
        return "Debian's chromium is not installed (scripts/install)"
    if not VENDOR_MARK.is_file():
        return "the player's npm files are not installed (scripts/vendor)"
    return None


# As with PostgreSQL: skipped on a machine without them, a failure in CI.
if (reason := _missing()) is not None:
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason, allow_module_level=True)

from playwright import sync_api as playwright_api  # noqa: E402 - only once known to be there

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
VIDEO_SECONDS = 12
SETLIST = (("Ouverture", 0.0), ("Deuxième mouvement", 6.0))
VENUE = ("Cité de la Musique", "cite-de-la-musique")
TAG = ("Chorale", "chorale")
# Playback must start and run for real; generous, since the machine is shared.
PLAY_TIMEOUT_MS = 30_000
# Run in every frame before its own scripts: each Content-Security-Policy violation (which the
# site's pages must never cause) is written to the console, where the page's watcher collects
# it along with Chromium's own report of it.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
    const what = event.blockedURI || "inline";
    console.error(`CSP violation: ${event.effectiveDirective} refused ${what}`
        + ` in ${document.location.href} (${event.sourceFile}:${event.lineNumber})`);
}, true);
"""


@dataclass
class Catalogue:
    url: str
    services: Services
    video_slug: str
    video_id: str
    audio_slug: str
    audio_id: str


def _ingest(services: Services, path: Path, title: str) -> Production:
    production_id, job_id = submit_file(services, path, title=title, artists=["Chœur Diois"])
    run_transcode(services, job_id)
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.status == "ready", production
        if production.kind == "video":
            for name, start in SETLIST:
                production.chapters.append(Chapter(title=name, start=start))
            # For the venue and tag pages to show something.
            production.venue = Venue(name=VENUE[0], slug=VENUE[1], commune="Romans-sur-Isère")
            set_tags(session, production, [TAG[0]])
        session.flush()
        session.expunge(production)
    return production


@pytest.fixture(scope="module")
def catalogue(
    tmp_path_factory: pytest.TempPathFactory, media: Callable[[str], Path]
) -> Iterator[Catalogue]:
    """A server on 127.0.0.1 with one real video and one real audio production."""
    directory = tmp_path_factory.mktemp("browser")
    services = open_services(make_settings(directory / "data", sqlite_url(directory)))
    clip = directory / "clip.mp4"
    # Small and short, so that the transcode costs little; long enough to watch 2 s play and
    # to seek past the second setlist entry; 480p, so that the ladder has two rungs (480p and
    # 360p) for the quality menu.
    ffmpeg(
        *["-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=25:duration={VIDEO_SECONDS}"],
        *["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={VIDEO_SECONDS}"],
        *split("-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 50 -c:a aac -b:a 96k -ac 2"),
        str(clip),
    )
    video = _ingest(services, clip, "Répétition à la Cité")
    audio = _ingest(services, media("mp3_id3v24_apic"), "Chanson du Vercors")
    assert video.kind == "video" and audio.kind == "audio"

    try:
        with serving(services) as url:
            yield Catalogue(url, services, video.slug, video.id, audio.slug, audio.id)
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


@pytest.fixture(scope="module")
def shared_context(browser: Any) -> Iterator[Any]:
    """A desktop context the tests share, so that its HTTP cache spares each page the player's
    modules (a listener's second visit); tests needing their own cookies or size get theirs."""
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    yield context
    context.close()


@pytest.fixture
def new_page(browser: Any, shared_context: Any) -> Iterator[Callable[..., Any]]:
    """Open a page as a French visitor: in the shared desktop context, or in a fresh one when
    given a viewport, context options or ``fresh=True``."""
    contexts: list[Any] = []
    pages: list[Any] = []

    def open_page(
        viewport: dict[str, int] | None = None, fresh: bool = False, **options: Any
    ) -> Any:
        if viewport is None and not options and not fresh:
            context = shared_context
        else:
            context = browser.new_context(viewport=viewport or DESKTOP, locale="fr-FR", **options)
            contexts.append(context)
        page = context.new_page()
        pages.append(page)
        page.set_default_timeout(PLAY_TIMEOUT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.js_errors = errors
        page.csp_violations = watch_csp(page)
        return page

    yield open_page
    violations = [text for page in pages for text in page.csp_violations]
    for page in pages:
        page.close()
    for context in contexts:
        context.close()
    assert violations == [], "the Content-Security-Policy refused:\n" + "\n".join(violations)


def watch_csp(page: Any) -> list[str]:
    """The Content-Security-Policy violations of the page and its frames, as they happen."""
    violations: list[str] = []
    page.add_init_script(CSP_LISTENER)

    def on_console(message: Any) -> None:
        text = message.text
        if text.startswith("CSP violation") or "Content Security Policy" in text:
            violations.append(text)

    page.on("console", on_console)
    return violations


@pytest.fixture(scope="module", autouse=True)
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def screenshot(page: Any, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)


def wait_for_engine(page: Any, selector: str = "[data-player]") -> None:
    """The player is mounted, its engine chosen and its waveform drawn: ready to be played.
    Its media has no source yet: it gets one at the first play."""
    page.wait_for_selector(f"{selector}[data-engine][data-mounted]", state="attached")


def media_state(page_or_frame: Any) -> dict[str, Any]:
    state: dict[str, Any] = page_or_frame.evaluate(
        """() => {
            const media = document.querySelector("[data-player] video, [data-player] audio");
            return {
                engine: media.closest("[data-player]").dataset.engine,
                src: media.src,
                currentTime: media.currentTime,
                paused: media.paused,
                muted: media.muted,
                hls: typeof window.Hls === "function" && window.Hls.isSupported(),
            };
        }"""
    )
    return state


def play_muted(page: Any) -> None:
    """Play as the play button does (media-chrome calls play()): the player gives the media
    its source then, and the promise resolves once playback has begun."""
    page.evaluate(
        """() => {
            const media = document.querySelector("[data-player] video, [data-player] audio");
            media.muted = true;
            return media.play();
        }"""
    )


def wait_until_time(page_or_frame: Any, seconds: float) -> None:
    page_or_frame.wait_for_function(
        """(seconds) => {
            const media = document.querySelector("[data-player] video, [data-player] audio");
            return media && media.currentTime >= seconds;
        }""",
        arg=seconds,
        timeout=PLAY_TIMEOUT_MS,
    )


def assert_plays_two_seconds(page_or_frame: Any) -> None:
    before = media_state(page_or_frame)["currentTime"]
    wait_until_time(page_or_frame, before + 2.0)
    state = media_state(page_or_frame)
    assert state["currentTime"] - before >= 2.0
    assert not state["paused"]


def assert_hlsjs_engine(page_or_frame: Any) -> None:
    """The media was given its source (at the first play), through hls.js."""
    page_or_frame.wait_for_selector("[data-player][data-attached]", state="attached")
    state = media_state(page_or_frame)
    assert state["hls"], "hls.js is loaded and supported"
    assert state["engine"] == "hls.js"
    # hls.js plays through Media Source Extensions: the element's source is a blob: URL, not
    # the playlist (which is what Chromium's native HLS would have been given).
    assert state["src"].startswith("blob:")


# --- production pages ----------------------------------------------------------------------------


def test_video_page_plays_through_hlsjs(catalogue: Catalogue, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(page)
    play_muted(page)
    assert_hlsjs_engine(page)
    assert_plays_two_seconds(page)
    # Hovering the scrub bar previews the storyboard tile of that moment.
    scrub = page.locator("media-time-range")
    scrub.scroll_into_view_if_needed()
    box = scrub.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] / 2, steps=5)
    page.wait_for_function(
        """() => (document.querySelector("media-time-range")
            .getAttribute("mediapreviewimage") || "").includes("storyboard.jpg")"""
    )
    page.wait_for_timeout(300)  # the preview fades in
    screenshot(page, "video-page-desktop")
    assert page.js_errors == []


def test_the_quality_menu_lists_the_renditions_and_switches(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(page)
    play_muted(page)
    page.wait_for_function("() => document.querySelector('video').videoRenditions.length === 3")
    heights = page.evaluate("() => CiteLivePlayer.players[0].hls.levels.map((l) => l.height)")
    assert sorted(heights) == [240, 360, 480]

    page.locator("media-rendition-menu-button").click()
    menu = page.locator("media-rendition-menu")
    menu.wait_for(state="visible")
    choices = menu.locator("media-chrome-menu-item")
    labels = [text.strip() for text in choices.all_inner_texts()]
    assert len(labels) == 4, labels
    assert [label[:4] for label in labels[:3]] == ["480p", "360p", "240p"], labels
    assert labels[3].startswith("Auto"), labels
    page.wait_for_timeout(300)  # the menu fades in
    screenshot(page, "video-quality-menu")

    # 360p, chosen with the mouse: the player switches at once and plays on.
    choices.nth(1).click()
    page.wait_for_function(
        """(index) => {
            const hls = CiteLivePlayer.players[0].hls;
            return !hls.autoLevelEnabled && hls.currentLevel === index;
        }""",
        arg=heights.index(360),
    )
    assert_plays_two_seconds(page)
    # Back to automatic, with the keyboard alone.
    page.locator("media-rendition-menu-button").focus()
    page.keyboard.press("Enter")
    menu.wait_for(state="visible")
    page.wait_for_function(
        "() => document.activeElement?.closest?.('media-rendition-menu')"
        " || document.querySelector('media-rendition-menu').matches(':focus-within')"
    )
    page.keyboard.press("End")
    page.keyboard.press("Enter")
    page.wait_for_function("() => CiteLivePlayer.players[0].hls.autoLevelEnabled")
    assert page.js_errors == []


def test_without_media_source_extensions_the_native_player_takes_over(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    """Where hls.js cannot run (Safari on an iPhone before iOS 17.1 has no Media Source
    Extensions), the browser's own HLS player gets the playlist; Chromium has one too."""
    page = new_page(fresh=True)
    page.add_init_script(
        "for (const name of ['MediaSource', 'ManagedMediaSource', 'WebKitMediaSource'])"
        " { delete window[name]; }"
    )
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(page)
    assert media_state(page)["src"] == "", "no source before play"
    play_muted(page)
    state = media_state(page)
    assert not state["hls"]
    assert state["engine"] == "native"
    assert state["src"].endswith("/master.m3u8")
    assert_plays_two_seconds(page)
    assert page.js_errors == []


def test_audio_page_plays_and_draws_the_waveform(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/productions/{catalogue.audio_slug}")
    page.wait_for_selector("[data-player][data-waveform='ready']", state="attached")
    wait_for_engine(page)
    painted = page.evaluate(
        """() => {
            const host = document.querySelector(".cl-player__wave").firstElementChild;
            let painted = 0;
            for (const canvas of host.shadowRoot.querySelectorAll("canvas")) {
                if (!canvas.width || !canvas.height) continue;
                const pixels = canvas.getContext("2d")
                    .getImageData(0, 0, canvas.width, canvas.height).data;
                for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
            }
            return painted;
        }"""
    )
    assert painted > 500, "the waveform canvas holds drawn bars"
    # Clicking the waveform halfway, before anything plays, chooses where playback starts.
    wave = page.locator(".cl-player__wave")
    box = wave.bounding_box()
    wave.click(position={"x": box["width"] * 0.5, "y": box["height"] / 2})
    duration = page.evaluate("() => CiteLivePlayer.players[0].duration()")
    assert duration > 5
    page.wait_for_function(
        "(target) => Math.abs(document.querySelector('audio').currentTime - target) < 0.6",
        arg=duration * 0.5,
    )
    play_muted(page)
    assert_hlsjs_engine(page)
    start = media_state(page)["currentTime"]
    assert abs(start - duration * 0.5) < 0.6, start
    wait_until_time(page, start + 0.5)
    page.evaluate("() => { const a = document.querySelector('audio'); a.currentTime = 0; }")
    page.wait_for_function("() => document.querySelector('audio').currentTime < 1")
    assert_plays_two_seconds(page)
    screenshot(page, "audio-page-desktop")
    assert page.js_errors == []


def test_audio_without_peaks_falls_back_to_a_time_range(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.route("**/waveform.json", lambda route: route.fulfill(status=404, body=""))
    page.goto(f"{catalogue.url}/productions/{catalogue.audio_slug}")
    page.wait_for_selector("[data-player][data-waveform='failed']", state="attached")
    wait_for_engine(page)
    play_muted(page)
    assert_hlsjs_engine(page)
    assert page.locator(".cl-player__wave").is_hidden()
    assert page.locator("media-time-range").is_visible()


def test_setlist_link_seeks_without_leaving_the_page(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    url = f"{catalogue.url}/productions/{catalogue.video_slug}"
    page.goto(url)
    wait_for_engine(page)
    page.evaluate("() => { document.querySelector('video').muted = true; }")
    # Before anything plays: the link plays from its moment.
    link = page.locator("[data-seek]").nth(1)
    assert float(link.get_attribute("data-seek")) == SETLIST[1][1]
    link.click()
    wait_until_time(page, SETLIST[1][1] + 0.5)
    assert page.url == url, "the click seeked instead of loading ?t="
    assert_hlsjs_engine(page)
    assert not media_state(page)["paused"]
    # While playing: the link seeks.
    page.locator("[data-seek]").nth(0).click()
    page.wait_for_function("() => document.querySelector('video').currentTime < 3")
    assert_plays_two_seconds(page)
    assert page.url == url


def test_time_in_the_address_starts_playback_there(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}?t=0m7s")
    wait_for_engine(page)
    play_muted(page)
    position = media_state(page)["currentTime"]
    assert 7.0 <= position < 8.0, position


def test_keyboard_plays_and_seeks(catalogue: Catalogue, new_page: Callable[..., Any]) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/productions/{catalogue.audio_slug}")
    page.wait_for_selector("[data-player][data-waveform='ready']", state="attached")
    page.evaluate("() => { document.querySelector('audio').muted = true; }")
    page.locator(".cl-player__wave").focus()
    page.keyboard.press("k")
    page.wait_for_function("() => !document.querySelector('audio').paused")
    page.keyboard.press("Space")
    page.wait_for_function("() => document.querySelector('audio').paused")
    # Back to the start first: the clip is short, and a seek from late in it would be cut
    # off by its end however slow or fast the machine was before the pause.
    page.evaluate("() => { document.querySelector('audio').currentTime = 0; }")
    page.wait_for_function("() => document.querySelector('audio').currentTime < 1")
    page.locator(".cl-player__wave").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 4")
    outline = page.evaluate(
        "() => getComputedStyle(document.querySelector('.cl-player__wave')).outlineStyle"
    )
    assert outline != "none", "keyboard focus is visible"


def test_arrow_keys_on_the_video_timeline_move_five_seconds(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    """As on the audio waveform: the video's time range moves 5 s a key, not a second."""
    page = new_page()
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(page)
    play_muted(page)
    page.evaluate("() => document.querySelector('video').pause()")
    page.evaluate("() => { document.querySelector('video').currentTime = 2; }")
    page.wait_for_function("() => Math.abs(document.querySelector('video').currentTime - 2) < 0.1")
    # Where Tab brings the keyboard: the range input inside the element's shadow root.
    page.locator("media-time-range input[type=range]").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.querySelector('video').currentTime >= 6.5")
    assert page.evaluate("() => document.querySelector('video').currentTime") < 7.5
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("() => document.querySelector('video').currentTime < 2.5")
    assert page.js_errors == []


def layout_shift(page: Any) -> float:
    """The page's cumulative layout shift so far (0 when nothing ever moved)."""
    shift: float = page.evaluate(
        """() => new Promise((resolve) => {
            let total = 0;
            new PerformanceObserver((list) => {
                for (const entry of list.getEntries()) total += entry.value;
            }).observe({ type: "layout-shift", buffered: true });
            requestAnimationFrame(() => requestAnimationFrame(() => resolve(total)));
        })"""
    )
    return shift


def test_pages_fit_a_phone_without_moving(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    for slug, name in ((catalogue.video_slug, "video"), (catalogue.audio_slug, "audio")):
        page = new_page(PHONE, is_mobile=True, has_touch=True)
        page.goto(f"{catalogue.url}/productions/{slug}")
        wait_for_engine(page)
        page.wait_for_function("() => customElements.get('media-time-range') !== undefined")
        if name == "audio":
            page.wait_for_selector("[data-waveform='ready']", state="attached")
        play_muted(page)
        page.evaluate("() => CiteLivePlayer.players[0].pause()")
        # The player's box is there before its scripts and media arrive: nothing moved.
        assert layout_shift(page) < 0.001
        overflow = page.evaluate("() => document.documentElement.scrollWidth")
        assert overflow <= PHONE["width"], "nothing sticks out sideways"
        box = page.locator("[data-player]").bounding_box()
        assert box["width"] <= PHONE["width"]
        if name == "video":
            assert abs(box["width"] / box["height"] - 16 / 9) < 0.02
        screenshot(page, f"{name}-page-phone")
        page.locator("[data-share-toggle]").click()
        page.locator("[data-share-panel]").scroll_into_view_if_needed()
        screenshot(page, f"{name}-share-phone")


CONTRAST_OF_FIELD = """(selector) => {
  const style = getComputedStyle(document.querySelector(selector));
  const luminance = (css) => {
    const [r, g, b] = css.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
      const c = v / 255;
      return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const [a, b] = [luminance(style.color), luminance(style.backgroundColor)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_header_search_field_shows_what_is_typed(
    catalogue: Catalogue, new_page: Callable[..., Any], viewport: dict[str, int], name: str
) -> None:
    page = new_page(viewport, is_mobile=name == "phone", has_touch=name == "phone")
    page.goto(f"{catalogue.url}/")
    field = page.locator("#site-search")
    field.fill("Fauré")
    # WCAG AA for text: the typed words stand out from the field's own background.
    assert page.evaluate(CONTRAST_OF_FIELD, "#site-search") >= 4.5
    screenshot(page, f"header-search-{name}")
    field.press("Enter")
    page.wait_for_url("**/search?q=Faur%C3%A9")


def test_share_panel_builds_the_snippet_and_copies_it(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page(permissions=["clipboard-read", "clipboard-write"])
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(page)
    code = page.locator("[data-share-code]")
    embed_url = f"{catalogue.url}/embed/{catalogue.video_id}"
    server_snippet = code.input_value()
    assert f'src="{embed_url}"' in server_snippet
    page.wait_for_function("() => window.CiteLivePlayer !== undefined")
    assert code.input_value() == server_snippet, "the browser writes the snippet as the server"

    page.evaluate("() => { document.querySelector('video').currentTime = 5; }")
    page.wait_for_function("() => document.querySelector('video').currentTime >= 5")
    panel = page.locator("[data-share-panel]")
    # The tools open from their button.
    panel.locator("[data-share-toggle]").click()
    panel.locator("input[name=start]").check()
    panel.locator("input[name=autoplay]").check()
    panel.locator("input[name=loop]").check()
    panel.locator("input[name=color]").fill("#1188ff")
    snippet = code.input_value()
    assert f'src="{embed_url}?t=5&amp;autoplay=1&amp;loop=1&amp;color=1188ff"' in snippet
    assert 'allow="autoplay; fullscreen; picture-in-picture"' in snippet
    link = page.locator("[data-share-link]").input_value()
    assert link == f"{catalogue.url}/productions/{catalogue.video_slug}?t=5"

    panel.locator("[data-copy$='-code']").click()
    page.wait_for_function("() => document.querySelector('[data-share-status]').textContent")
    assert page.evaluate("() => navigator.clipboard.readText()") == snippet
    screenshot(page, "share-panel-desktop")


# --- the embed, framed by another site -----------------------------------------------------------


@pytest.fixture
def partner_site() -> Iterator[Callable[[str, int], str]]:
    """A second server on another port (another origin) serving a page that frames a URL."""
    with partner_sites(1) as (site,):
        yield site.framing


def _frame(page: Any) -> Any:
    page.wait_for_selector("iframe")
    frame = page.frame_locator("iframe")
    frame.locator("[data-player][data-mounted]").wait_for(state="attached")
    return next(f for f in page.frames if "/embed/" in f.url)


def test_video_embed_autoplays_muted_in_a_frame_on_another_origin(
    catalogue: Catalogue, new_page: Callable[..., Any], partner_site: Callable[[str, int], str]
) -> None:
    partner = partner_site(f"{catalogue.url}/embed/{catalogue.video_id}?autoplay=1&t=1", 360)
    assert partner.split("/")[2] != catalogue.url.split("/")[2]
    page = new_page()
    page.goto(partner)
    frame = _frame(page)
    assert_hlsjs_engine(frame)
    wait_until_time(frame, 1.0)
    assert media_state(frame)["muted"], "autoplay starts muted, as browsers require"
    assert_plays_two_seconds(frame)
    screenshot(page, "embed-video-partner")
    assert page.js_errors == []


def test_audio_embed_plays_in_a_frame_on_another_origin(
    catalogue: Catalogue, new_page: Callable[..., Any], partner_site: Callable[[str, int], str]
) -> None:
    partner = partner_site(f"{catalogue.url}/embed/{catalogue.audio_id}?color=1188ff", 166)
    page = new_page(PHONE)
    page.goto(partner)
    frame = _frame(page)
    page.frame_locator("iframe").locator("[data-player][data-waveform='ready']").wait_for(
        state="attached"
    )
    height = frame.evaluate("() => document.querySelector('[data-player]').offsetHeight")
    assert height == 166, "the compact player fills the 166 px frame"
    page.frame_locator("iframe").locator("media-play-button").click()
    assert_hlsjs_engine(frame)
    assert_plays_two_seconds(frame)
    accent = frame.evaluate(
        "() => getComputedStyle(document.querySelector('[data-player]'))"
        ".getPropertyValue('--cl-accent').trim()"
    )
    assert accent == "#1188ff"
    screenshot(page, "embed-audio-partner-phone")


def test_embed_page_alone_at_desktop_size(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page({"width": 640, "height": 360})
    page.goto(f"{catalogue.url}/embed/{catalogue.video_id}")
    wait_for_engine(page)
    page.wait_for_load_state("networkidle")
    box = page.locator("[data-player]").bounding_box()
    assert (box["width"], box["height"]) == (640, 360)
    screenshot(page, "embed-video")


# --- language ------------------------------------------------------------------------------------


def play_label(page: Any) -> str:
    label: str = page.locator("media-play-button").evaluate(
        "(button) => button.getAttribute('aria-label')"
    )
    return label.lower()


def test_language_switch_turns_the_site_english(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page(fresh=True)
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    assert page.evaluate("() => document.documentElement.lang") == "fr"
    assert page.locator(".cl-share__title").inner_text() == "Partager / Intégrer"
    wait_for_engine(page)
    assert play_label(page) == "lire", "media-chrome speaks French too"
    page.locator("[data-lang-switch]").click()
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.url.endswith(f"/productions/{catalogue.video_slug}")
    assert page.locator(".cl-share__title").inner_text() == "Share / Embed"
    wait_for_engine(page)
    assert play_label(page) == "play"
    # The choice sticks: other pages are English too.
    page.goto(f"{catalogue.url}/")
    assert page.evaluate("() => document.documentElement.lang") == "en"
    screenshot(page, "home-english-desktop")


def test_language_switch_and_sign_in_come_back_to_a_page_with_a_query(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    """The header's links carry the page in ``next``, encoded by the URL builder (a slash as
    %2F): the browser comes back to the very page, query included."""
    here = "/search?q=chorale&kind=video"
    page = new_page(fresh=True)
    page.goto(f"{catalogue.url}{here}")
    assert "%2Fsearch%3Fq%3Dchorale" in page.locator("[data-lang-switch]").get_attribute("href")
    page.locator("[data-lang-switch]").click()
    page.wait_for_function("() => document.documentElement.lang === 'en'")
    assert page.url == f"{catalogue.url}{here}"
    page.locator(".account-nav a").click()
    page.wait_for_url(f"{catalogue.url}/login?**")
    assert page.locator('input[name="next"]').input_value() == here


def test_time_codes_parse_alike_in_python_and_in_the_browser(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    from cite_live.player import parse_time

    samples = ["90", "90.5", "1m30s", "1h2m3s", "1:30", "1:02:03", "1:99", "", "abc", "604801"]
    samples += ["2m", "45S", " 12 ", "-5", "1e3", "\u0669\u0660", "1:75:00", "0"]
    page = new_page()
    # Any page of the site will do to import the module; this one loads nothing else.
    page.goto(f"{catalogue.url}/static/js/timecode.js")
    browser_values = page.evaluate(
        """async (samples) => {
            const { parseTime } = await import("/static/js/timecode.js");
            return samples.map(parseTime);
        }""",
        samples,
    )
    assert browser_values == [parse_time(sample) for sample in samples]


# --- every kind of page under the Content-Security-Policy ----------------------------------------
# new_page fails a test whose pages or frames violate the policy; this one visits every kind of
# page there is, at both widths, signed out and then as an admin.

ADMIN = "admin@example.org"


@pytest.fixture(scope="module")
def invitation(catalogue: Catalogue) -> str:
    """An admin to sign in as, and the path of an invitation waiting for another account."""
    make_user(catalogue.services, ADMIN, "admin")
    make_user(catalogue.services, "invited@example.org", password=None)
    with catalogue.services.sessions.begin() as session:
        invited = session.scalars(select(User).where(User.email == "invited@example.org")).one()
        return f"/invite/{accounts.create_invitation(session, invited)}"


def plays_a_little(page_or_frame: Any) -> None:
    """The player starts (hls.js), and the media plays half a second."""
    wait_for_engine(page_or_frame)
    play_muted(page_or_frame)
    assert_hlsjs_engine(page_or_frame)
    wait_until_time(page_or_frame, media_state(page_or_frame)["currentTime"] + 0.5)


def waveform_drawn(page: Any) -> None:
    page.wait_for_selector("[data-player][data-waveform='ready']", state="attached")
    plays_a_little(page)


def uploader_drawn(page: Any) -> None:
    page.wait_for_selector(".uppy-Dashboard", state="visible")


def nothing(page: Any) -> None:
    pass


Stop = tuple[str, str, Callable[[Any], None]]


def signed_out_tour(catalogue: Catalogue, invitation: str) -> list[Stop]:
    """(name, path, what to wait for) of every kind of page a visitor sees."""
    video, audio = catalogue.video_slug, catalogue.audio_slug
    return [
        ("home", "/", nothing),
        ("artists", "/artists", nothing),
        ("artist", "/artists/choeur-diois", nothing),
        ("video", f"/productions/{video}", plays_a_little),
        ("audio", f"/productions/{audio}", waveform_drawn),
        ("venues", "/venues", nothing),
        ("venue", f"/venues/{VENUE[1]}", nothing),
        ("tags", "/tags", nothing),
        ("tag", f"/tags/{TAG[1]}", nothing),
        ("search", "/search?q=vercors", nothing),
        ("embed-video", f"/embed/{catalogue.video_id}", plays_a_little),
        ("embed-audio", f"/embed/{catalogue.audio_id}?color=1188ff", waveform_drawn),
        ("error", "/productions/nothing-here", nothing),
        ("invitation", invitation, nothing),
        ("login", "/login?next=/studio", nothing),
    ]


def signed_in_tour(catalogue: Catalogue) -> list[Stop]:
    """The same for the pages of an admin's account."""
    return [
        ("studio", "/studio", uploader_drawn),
        ("studio-edit", f"/studio/productions/{catalogue.video_id}", nothing),
        ("account", "/account", nothing),
        ("admin", "/admin", nothing),
    ]


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_kind_of_page_works_within_its_content_security_policy(
    catalogue: Catalogue, new_page: Callable[..., Any], invitation: str, width: str
) -> None:
    if width == "phone":
        page = new_page(PHONE, is_mobile=True, has_touch=True)
    else:
        page = new_page(DESKTOP)

    def visit(stops: list[Stop]) -> None:
        for name, path, ready in stops:
            response = page.goto(catalogue.url + path)
            assert response.ok or name == "error", f"{name}: {response.status}"
            policy = response.headers.get("content-security-policy", "")
            assert "script-src 'self'" in policy, f"{name} has no script policy: {policy!r}"
            ready(page)
            screenshot(page, f"csp-{name}-{width}")
            assert page.csp_violations == [], name

    visit(signed_out_tour(catalogue, invitation))
    # From the login page, where the tour ends: the form posts and leads to the studio.
    page.fill("input[name=email]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.studio-form button[type=submit]")
    page.wait_for_url(f"{catalogue.url}/studio")
    visit(signed_in_tour(catalogue))
    assert page.js_errors == []


def test_the_policy_refuses_injected_scripts_and_the_watcher_sees_it(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    """What the tour relies on: a script slipped into a page does not run, and the violation
    reaches the test (so that none seen means none happened)."""
    page = new_page()
    page.goto(f"{catalogue.url}/artists")
    with page.expect_console_message(lambda message: "script-src-elem" in message.text):
        page.evaluate(
            """() => {
                const script = document.createElement("script");
                script.textContent = "window.injectedRan = true";
                document.body.append(script);
            }"""
        )
    with page.expect_console_message(lambda message: "script-src-attr" in message.text):
        page.evaluate(
            """() => {
                document.body.insertAdjacentHTML("beforeend",
                    '<button id="injected" onclick="window.injectedRan = true">x</button>');
                document.getElementById("injected").click();
            }"""
        )
    assert page.evaluate("() => window.injectedRan") is None
    assert len(page.csp_violations) >= 2
    page.csp_violations.clear()  # seen on purpose


@pytest.mark.s3
def test_media_from_s3_plays_within_the_policy(
    catalogue: Catalogue,
    new_page: Callable[..., Any],
    s3_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catalogue's database served by a second site whose store is an S3 bucket (its media
    copied there): players fetch playlists, segments, peaks and pictures from the bucket's
    address, another origin, which the pages' policy names."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    settings = make_settings(
        tmp_path / "data",
        catalogue.services.settings.database_url,
        CITE_LIVE_STORAGE_BACKEND="s3",
        CITE_LIVE_S3_ENDPOINT_URL=s3_server.endpoint_url,
        CITE_LIVE_S3_BUCKET=s3_server.bucket,
        CITE_LIVE_S3_PREFIX="browser-csp",
    )
    services = open_services(settings)
    local = catalogue.services.store
    for production_id in (catalogue.video_id, catalogue.audio_id):
        for key in local.list(f"productions/{production_id}/"):
            services.store.put_bytes(key, local.read_bytes(key))
    from_s3: list[str] = []
    try:
        with serving(services) as url:
            page = new_page()
            page.on(
                "requestfinished",
                lambda request: (
                    from_s3.append(request.url)
                    if request.url.startswith(s3_server.endpoint_url)
                    else None
                ),
            )
            for slug, ready, name in (
                (catalogue.audio_slug, waveform_drawn, "audio"),
                (catalogue.video_slug, plays_a_little, "video"),
            ):
                page.goto(f"{url}/productions/{slug}")
                ready(page)
                screenshot(page, f"csp-s3-{name}-desktop")
                assert page.csp_violations == [], name
    finally:
        services.close()
    fetched = {address.rsplit("/", 1)[1].split("?")[0] for address in from_s3}
    assert {"master.m3u8", "waveform.json"} <= fetched, fetched
    assert any(name.endswith(".m4s") for name in fetched), fetched
