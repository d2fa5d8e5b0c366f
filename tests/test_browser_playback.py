"""Players as listeners meet them: no media before play, one at a time, the audio embed.

Headless Debian Chromium, real server, real HLS. Nothing of the media is fetched before someone
plays, on a partner's page (tests/test_browser_playerapi.py's partner site) as on the site's
own; players mounted by other scripts play one at a time and are destroyed cleanly; the audio
embed names its artists and where it comes from, from 280 px wide; a start time past the end
plays from the beginning and says so. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.models import Production

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests import test_browser, test_browser_playerapi
from tests.test_browser import Catalogue, screenshot
from tests.test_browser_header import LOW_CONTRAST
from tests.test_browser_playerapi import (
    LAPTOP,
    WAIT_MS,
    Partner,
    call,
    embed_frame,
    heard,
    media_requests,
    wait_heard,
)

browser = test_browser.browser
shared_context = test_browser.shared_context
new_page = test_browser.new_page
catalogue = test_browser.catalogue
artifacts = test_browser.artifacts
partner = test_browser_playerapi.partner

PHONE = {"width": 375, "height": 667}
DUO = ("Chœur Diois", "Élodie Fauré", "Les Percussions de la Cartoucherie")


@dataclass
class Duo:
    audio_id: str
    page_url: str


@pytest.fixture(scope="module")
def duo(catalogue: Catalogue, media: Callable[[str], Path]) -> Duo:
    """A 6 s audio production credited to three artists."""
    services = catalogue.services
    production_id, job_id = submit_file(
        services, media("mp3_id3v24_apic"), title="Nuit des chœurs", artists=list(DUO)
    )
    run_transcode(services, job_id)
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.status == "ready"
        slug = production.slug
    return Duo(production_id, f"{catalogue.url}/productions/{slug}")


# --- no media before play ------------------------------------------------------------------------


def test_no_media_leaves_the_embeds_before_play(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP)
    loaded = media_requests(page)
    others: list[str] = []
    page.on("request", lambda request: others.append(request.url))
    page.goto(
        partner.festival(
            (f"{catalogue.url}/embed/{catalogue.video_id}", 360, 640),
            (f"{catalogue.url}/embed/{catalogue.audio_id}", 166, 640),
        )
    )
    wait_heard(page, "ready", 0)
    wait_heard(page, "ready", 1)
    for index in (0, 1):
        page.frame_locator("iframe").nth(index).locator("[data-player][data-mounted]").wait_for(
            state="attached"
        )
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1000)
    assert loaded == []
    # What does load: the pictures, the peaks and the storyboard, none of them media.
    fetched = {url.rsplit("/", 1)[1] for url in others}
    assert {"poster.jpg", "cover.jpg", "waveform.json"} <= fetched, fetched
    # The video shows its duration before play.
    shown = embed_frame(page).evaluate(
        "() => document.querySelector('media-time-display').shadowRoot"
        ".querySelector('slot').textContent"
    )
    assert shown.split() == ["0:00", "/", "0:12"], shown
    screenshot(page, "playerapi-before-play-desktop")
    page.frame_locator("iframe").nth(1).locator("media-play-button").click()
    embed_frame(page, 1).wait_for_function("() => !document.querySelector('audio').paused")
    assert any(f"/{catalogue.audio_id}/" in url for url in loaded)
    assert not any(f"/{catalogue.video_id}/" in url for url in loaded)


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_no_media_leaves_the_production_page_before_play(
    catalogue: Catalogue, new_page: Callable[..., Any], kind: str
) -> None:
    page = new_page()
    loaded = media_requests(page)
    slug = catalogue.video_slug if kind == "video" else catalogue.audio_slug
    page.goto(f"{catalogue.url}/productions/{slug}")
    page.wait_for_selector("[data-player][data-mounted]", state="attached")
    page.wait_for_load_state("networkidle")
    assert loaded == []
    assert (
        page.evaluate(
            "() => document.querySelector('[data-player] video, [data-player] audio').preload"
        )
        == "none"
    )
    page.locator("media-play-button").first.click()
    page.wait_for_function("() => CiteLivePlayer.players[0].media.currentTime > 0.5")
    assert any(url.endswith("/master.m3u8") for url in loaded)


HLS_CHUNK = re.compile(r"/hls(\.light)?\.min(-[A-Z0-9]+)?\.mjs$|/hls(\.light)?\.min-[A-Z0-9]+\.js$")
# The first segment; a recording under 7 s has only one, joined with its short tail ("-end").
FIRST_SEGMENT = re.compile(r"/(v\d+|a\d+|audio)/seg_00001(-end)?\.m4s$")


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_the_first_play_fetches_hls_js_and_the_first_segments_side_by_side_and_once(
    catalogue: Catalogue, new_page: Callable[..., Any], kind: str
) -> None:
    """streams.js: at the press, the stream's first bytes are fetched while hls.js is still on
    its way (held here until they are in), and hls.js then plays them from the browser's cache
    rather than fetching them again; audio plays with hls.js's light build."""
    page = new_page(PHONE, is_mobile=True, has_touch=True)
    # hls.js is held back through the DevTools protocol rather than page.route(), which turns
    # the browser's HTTP cache off (the very thing under test).
    cdp = page.context.new_cdp_session(page)
    held: list[dict[str, Any]] = []
    cdp.on("Fetch.requestPaused", lambda event: held.append(event))
    cdp.send("Fetch.enable", {"patterns": [{"urlPattern": "*/hls*.min*js"}]})
    finished: list[Any] = []
    page.on("requestfinished", lambda request: finished.append(request))
    slug = catalogue.video_slug if kind == "video" else catalogue.audio_slug
    page.goto(f"{catalogue.url}/productions/{slug}", wait_until="load")
    page.locator("main [data-play-button]").click()
    expected = 2 if kind == "video" else 1  # video: a rung and its audio rendition

    def first_segments() -> list[Any]:
        return [r for r in finished if FIRST_SEGMENT.search(r.url.split("?")[0])]

    for _ in range(150):
        if held and len(first_segments()) >= expected:
            break
        page.wait_for_timeout(100)
    assert len(held) == 1, "hls.js was not asked for at the press"
    assert HLS_CHUNK.search(held[0]["request"]["url"])
    assert ("hls.light" in held[0]["request"]["url"]) == (kind == "audio")
    warmed = {r.url for r in first_segments()}
    assert len(warmed) == expected, warmed
    # Nothing of hls.js ran yet: what was fetched came from the head start.
    assert page.evaluate("() => typeof window.Hls") == "undefined"
    cdp.send("Fetch.continueRequest", {"requestId": held[0]["requestId"]})
    page.wait_for_function(
        "() => { const m = document.querySelector('main video, main audio');"
        " return !m.paused && m.currentTime > 0.5; }"
    )
    # hls.js asked for the same segments (it starts on the rung warmed) and the browser's cache
    # answered: each one's body crossed the network once.
    for url in warmed:
        bodies = [r.sizes()["responseBodySize"] for r in finished if r.url == url]
        assert len(bodies) >= 2, f"hls.js did not start on the rung warmed: {url}"
        assert len([size for size in bodies if size > 0]) == 1, (url, bodies)
    assert page.js_errors == []


MASTER_CHECK = """async (source) => {
  const { parseMaster, startVariant } = await import(source);
  const base = "https://media.example.org/p/1/master.m3u8";
  const master = [
    "#EXTM3U",
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Fr, live",DEFAULT=NO,URI="audio-b/index.m3u8"',
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="main",DEFAULT=YES,URI="audio/index.m3u8"',
    '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="x",URI="subs.m3u8"',
    '#EXT-X-STREAM-INF:BANDWIDTH=1500000,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aud"',
    "v480/index.m3u8",
    '#EXT-X-STREAM-INF:BANDWIDTH=420000,CODECS="avc1.64001e,mp4a.40.2",AUDIO="aud"',
    "",
    "v240/index.m3u8?token=a%2Cb",
    "#EXT-X-STREAM-INF:BANDWIDTH=-5",
    "#EXT-X-STREAM-INF:BANDWIDTH=oops",
    "/elsewhere/v1.m3u8",
    "#EXT-X-STREAM-INF:BANDWIDTH=900000",
  ].join("\\r\\n");
  const parsed = parseMaster(master, base);
  return {
    variants: parsed.variants,
    audio: parsed.audio,
    start: startVariant(parsed.variants)?.url,
    slow: startVariant(parsed.variants, 1000)?.url,
    fast: startVariant(parsed.variants, 10_000_000)?.url,
    none: startVariant([]),
    empty: parseMaster("", base),
  };
}"""


def test_the_head_start_reads_master_playlists_as_hls_js_does(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/artists")
    result = page.evaluate(MASTER_CHECK, f"{catalogue.url}/static/js/streams.js")
    base = "https://media.example.org/p/1/"
    assert result["variants"] == [
        {"url": base + "v480/index.m3u8", "bandwidth": 1_500_000, "audio": "aud"},
        {"url": base + "v240/index.m3u8?token=a%2Cb", "bandwidth": 420_000, "audio": "aud"},
        # A variant line's URI is the next line that is not a tag, as the format says.
        {"url": "https://media.example.org/elsewhere/v1.m3u8", "bandwidth": 0, "audio": None},
        {"url": "https://media.example.org/elsewhere/v1.m3u8", "bandwidth": 0, "audio": None},
    ]
    assert [a["url"] for a in result["audio"]] == [
        base + "audio-b/index.m3u8",
        base + "audio/index.m3u8",
    ]
    assert [a["default"] for a in result["audio"]] == [False, True]
    # The best under hls.js's first estimate (500 kb/s); the lowest when none fits; the best.
    assert result["start"] == base + "v240/index.m3u8?token=a%2Cb"
    assert result["slow"] == "https://media.example.org/elsewhere/v1.m3u8"
    assert result["fast"] == base + "v480/index.m3u8"
    assert result["none"] is None
    assert result["empty"] == {"variants": [], "audio": []}


# --- the players of one page, for the playlist embed ---------------------------------------------


TEMPLATE_CHECK = """async () => {
  const { players, mount } = window.CiteLivePlayer;
  const template = document.querySelector("template[data-spare]");
  const before = players.length;
  const root = template.content.firstElementChild.cloneNode(true);
  document.querySelector("main").append(root);
  const second = mount(root);
  return { before, after: players.length, same: mount(root) === second,
           templated: template.content.querySelector("[data-mounted]") !== null };
}"""


def test_players_mount_from_templates_play_one_at_a_time_and_are_destroyed(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    url = f"{catalogue.url}/productions/{catalogue.audio_slug}"

    def with_a_spare_player(route: Any) -> None:
        response = route.fetch()
        html = response.text()
        start = html.index('<div class="cl-player')
        end = html.index("</script>", html.index("data-player-config", start)) + len("</script>")
        spare = f"<template data-spare>{html[start:end]}</div></template>"
        route.fulfill(response=response, body=html.replace("</main>", spare + "</main>", 1))

    page.route(url, with_a_spare_player)
    page.goto(url)
    page.wait_for_selector("main [data-player][data-mounted]", state="attached")
    page.evaluate(
        "() => { window.events = []; for (const n of ['play', 'pause', 'ended'])"
        " document.addEventListener(`cl-player:${n}`, (e) => events.push([n,"
        " CiteLivePlayer.players.indexOf(e.detail.player), e.target.matches('[data-player]')])); }"
    )
    state = page.evaluate(TEMPLATE_CHECK)
    assert state == {"before": 1, "after": 2, "same": True, "templated": False}
    page.wait_for_function("() => CiteLivePlayer.players.every((p) => 'mounted' in p.root.dataset)")
    first = "CiteLivePlayer.players[0]"
    second = "CiteLivePlayer.players[1]"
    page.evaluate(f"() => {{ {first}.media.muted = true; {second}.media.muted = true; }}")
    page.evaluate(f"() => {first}.play()")
    page.wait_for_function(f"() => {first}.media.currentTime > 0.3")
    page.evaluate(f"() => {second}.play()")
    page.wait_for_function(f"() => {second}.media.currentTime > 0.3")
    assert page.evaluate(f"() => {first}.media.paused")
    events = page.evaluate("() => events")
    assert ["play", 0, True] in events and ["play", 1, True] in events
    assert events.index(["pause", 0, True]) > events.index(["play", 0, True])
    page.evaluate(f"() => {second}.seek(5.5)")
    page.wait_for_function("() => events.some((e) => e[0] === 'ended' && e[1] === 1)")

    # Destroyed: out of the list, its hls.js stopped, its media without a source, deaf.
    destroyed = page.evaluate(
        f"""() => {{
            const player = {second};
            player.destroy();
            const count = events.length;
            player.media.play().catch(() => {{}});
            return {{ listed: CiteLivePlayer.players.includes(player), hls: player.hls,
                      src: player.media.getAttribute("src"), count }};
        }}"""
    )
    page.wait_for_timeout(300)
    assert destroyed["listed"] is False and destroyed["hls"] is None
    assert destroyed["src"] is None
    assert page.evaluate("() => events.length") == destroyed["count"], "no event after destroy"
    assert page.js_errors == []


# --- the audio embed: artists, the mark, a start past the end ------------------------------------


@pytest.mark.parametrize(
    ("viewport", "width", "name"),
    [(LAPTOP, 640, "desktop"), (LAPTOP, 280, "narrow"), (PHONE, "100%", "phone")],
)
def test_the_audio_embed_names_its_artists_and_where_it_comes_from(
    catalogue: Catalogue,
    duo: Duo,
    new_page: Callable[..., Any],
    partner: Partner,
    viewport: dict[str, int],
    width: int | str,
    name: str,
) -> None:
    page = new_page(viewport, is_mobile=name == "phone", has_touch=name == "phone")
    page.goto(partner.festival((f"{catalogue.url}/embed/{duo.audio_id}", 166, width)))
    frame = page.frame_locator("iframe")
    frame.locator("[data-player][data-waveform='ready']").wait_for(state="attached")
    artists = frame.locator(".cl-player__artists")
    assert artists.inner_text() == ", ".join(DUO)
    mark = frame.locator(".cl-player__mark")
    assert mark.inner_text() == "Cité Live"
    assert mark.get_attribute("href") == duo.page_url
    assert mark.get_attribute("target") == "_blank" and mark.get_attribute("rel") == "noopener"
    assert mark.get_attribute("aria-label") == "Ouvrir sur Cité Live"
    inside = embed_frame(page)
    boxes = inside.evaluate(
        """() => {
            const box = (s) => { const r = document.querySelector(s).getBoundingClientRect();
                return { top: r.top, bottom: r.bottom, left: r.left, right: r.right }; };
            return { player: box("[data-player]"), head: box(".cl-player__head"),
                     mark: box(".cl-player__mark"), artists: box(".cl-player__artists"),
                     title: box(".cl-player__title"), wave: box(".cl-player__wave"),
                     bar: box(".cl-player__bar"), cover: box(".cl-player__cover"),
                     scroll: document.documentElement.scrollWidth,
                     width: document.documentElement.clientWidth };
        }"""
    )
    player = boxes["player"]
    assert player["bottom"] - player["top"] == 166
    assert boxes["scroll"] <= boxes["width"], "nothing sticks out sideways"
    for part in ("head", "mark", "artists", "title", "wave", "bar", "cover"):
        box = boxes[part]
        assert player["left"] <= box["left"] and box["right"] <= player["right"] + 0.5, part
        assert player["top"] <= box["top"] and box["bottom"] <= player["bottom"], part
    # One under the other, none over another: the heading, the waveform, the bar.
    assert boxes["head"]["bottom"] <= boxes["wave"]["top"] + 0.5
    assert boxes["wave"]["bottom"] <= boxes["bar"]["top"] + 0.5
    assert boxes["artists"]["right"] <= boxes["mark"]["left"]
    assert boxes["mark"]["right"] - boxes["mark"]["left"] >= 40, "the mark is never squeezed"
    assert inside.evaluate(LOW_CONTRAST, ".cl-player__head") == []
    screenshot(page, f"playerapi-audio-embed-{name}")


def test_a_start_past_the_end_plays_from_the_beginning_and_says_so(
    catalogue: Catalogue, new_page: Callable[..., Any], partner: Partner
) -> None:
    page = new_page(LAPTOP)
    page.goto(
        partner.festival(
            (f"{catalogue.url}/embed/{catalogue.audio_id}?t=99", 166, 640),
            (f"{catalogue.url}/embed/{catalogue.audio_id}?t=2&lang=en", 166, 640),
        )
    )
    wait_heard(page, "ready", 0)
    notice = page.frame_locator("iframe").nth(0).locator("[data-start-notice]")
    notice.wait_for(state="visible")
    assert notice.inner_text() == "Début demandé après la fin : lecture depuis le début."
    assert page.frame_locator("iframe").nth(1).locator("[data-start-notice]").is_hidden()
    screenshot(page, "playerapi-start-past-the-end-desktop")
    page.evaluate("() => { listen(0, 'timeupdate'); listen(1, 'timeupdate'); }")
    call(page, 0, "mute")
    call(page, 0, "play")
    wait_heard(page, "timeupdate", 0, count=2)
    assert heard(page, "timeupdate", 0)[0]["seconds"] < 1.5
    call(page, 1, "mute")
    call(page, 1, "play")
    wait_heard(page, "timeupdate", 1, count=2)
    assert 2 <= heard(page, "timeupdate", 1)[-1]["seconds"] < 4
    # The notice goes a few seconds into playback.
    notice.wait_for(state="hidden", timeout=WAIT_MS)


def test_a_page_address_past_the_end_says_so_too(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page()
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}?t=10m&lang=en")
    notice = page.locator("[data-start-notice]")
    notice.wait_for(state="visible")
    assert notice.inner_text() == "Start time past the end: playing from the beginning."
    screenshot(page, "playerapi-page-start-past-the-end")
