"""The player's controls and the share tools in a real browser, at a laptop's and a phone's size.

Headless Debian Chromium against a real server and real HLS (tests/test_browser.py's catalogue:
one video, one audio). What is measured is what a listener meets: the audio player's buttons
are 44 px squares and its volume slider sits apart from the waveform; on a 1366×768 laptop the
video's control bar is on screen without scrolling; axe-core finds nothing serious in the
player, on the production pages and in the embeds, in French and in English; every label of
the player speaks the page's language, in the site's words; the Share / Embed tools open from a
button, with the keyboard as with a finger, and still copy. Screenshots land in
test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cite_live.collections import new_slug
from cite_live.models import Collection, CollectionItem

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests import test_browser
from tests.test_browser import ROOT, Catalogue, screenshot, wait_for_engine

browser = test_browser.browser
shared_context = test_browser.shared_context
new_page = test_browser.new_page
catalogue = test_browser.catalogue
artifacts = test_browser.artifacts

AXE = ROOT / "node_modules/axe-core/axe.min.js"
DESKTOP = {"width": 1280, "height": 800}
LAPTOP = {"width": 1366, "height": 768}
PHONE = {"width": 375, "height": 812}
SIZES = [
    pytest.param(DESKTOP, id="desktop"),
    pytest.param(LAPTOP, id="laptop"),
    pytest.param(PHONE, id="phone"),
]
# WCAG 2.5.5 (target size, enhanced), and what Apple and Google ask of a touch target.
TARGET_PX = 44


def open_player(
    new_page: Callable[..., Any], url: str, size: dict[str, int], **options: Any
) -> Any:
    phone = size["width"] < 500
    page = new_page(size, is_mobile=phone, has_touch=phone, **options)
    page.goto(url)
    wait_for_engine(page)
    # The elements are defined and have rendered their shadow parts.
    page.wait_for_function("() => customElements.get('media-volume-range') !== undefined")
    return page


def box(page: Any, selector: str) -> dict[str, float]:
    found: dict[str, float] | None = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not displayed"
    return found


def expanded(page: Any, name: str) -> bool | None:
    """Whether Chromium's accessibility tree (what screen readers read) says the control
    named `name` is expanded; None when it says nothing."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    for node in nodes:
        if node.get("name", {}).get("value") == name and node.get("role", {}).get("value") in (
            "DisclosureTriangle",
            "button",
        ):
            for prop in node.get("properties", []):
                if prop["name"] == "expanded":
                    return bool(prop["value"]["value"])
            return None
    raise AssertionError(f"no control named {name!r}")


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


# --- the audio player's controls -----------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_the_audio_controls_are_44_px_targets_and_the_volume_is_apart(
    catalogue: Catalogue, new_page: Callable[..., Any], size: dict[str, int], request: Any
) -> None:
    page = open_player(new_page, f"{catalogue.url}/productions/{catalogue.audio_slug}", size)
    page.wait_for_selector("[data-player][data-waveform='ready']", state="attached")
    play = box(page, ".cl-player media-play-button")
    assert play["width"] >= TARGET_PX and play["height"] >= TARGET_PX, play
    # Every button of the bar is the same comfortable square, on a phone as on a laptop.
    buttons = page.locator(".cl-player__bar media-mute-button, .cl-player__bar media-play-button")
    for index in range(buttons.count()):
        shape = buttons.nth(index).bounding_box()
        assert shape is not None
        assert (round(shape["width"]), round(shape["height"])) == (TARGET_PX, TARGET_PX), shape
    rate = page.locator(".cl-player__bar media-playback-rate-button")
    if rate.is_visible():
        assert (rate.bounding_box() or {}).get("height", 0) >= TARGET_PX

    volume = page.locator(".cl-player media-volume-range")
    assert volume.count() == 1
    if size is PHONE:
        # A phone's player keeps mute and leaves the level to the phone's keys (iPhones ignore
        # a page's volume): play, time and mute get the room.
        assert not volume.is_visible()
        assert page.locator(".cl-player media-mute-button").is_visible()
    else:
        # The volume slider is there, clear of the waveform and of every other control.
        slider = box(page, ".cl-player media-volume-range")
        assert slider["width"] >= 48, slider
        wave = box(page, ".cl-player__wave")
        assert not overlap(slider, wave), (slider, wave)
        assert slider["y"] >= wave["y"] + wave["height"], "the slider sits below the waveform"
        controls = page.locator(
            ".cl-player__bar :is(media-play-button, media-time-display, media-mute-button,"
            " media-playback-rate-button)"
        )
        for index in range(controls.count()):
            other = controls.nth(index).bounding_box()
            assert other is not None and not overlap(slider, other), (slider, other)
        player = box(page, "[data-player]")
        assert slider["x"] + slider["width"] <= player["x"] + player["width"]
        # It sets the volume: an arrow key on it turns the sound down.
        page.locator(".cl-player media-volume-range input[type=range]").focus()
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        page.wait_for_function("() => document.querySelector('[data-player] audio').volume < 1")
    screenshot(page, f"controls-audio-{request.node.callspec.id}")
    assert page.js_errors == []


def test_the_audio_embed_keeps_play_time_and_mute_from_280_px(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = open_player(
        new_page, f"{catalogue.url}/embed/{catalogue.audio_id}", {"width": 280, "height": 166}
    )
    player = box(page, "[data-player]")
    assert player["height"] == 166
    for selector in ("media-play-button", "media-time-display", "media-mute-button"):
        shape = box(page, f".cl-player__bar {selector}")
        assert shape["x"] + shape["width"] <= player["width"], (selector, shape)
        assert shape["y"] + shape["height"] <= player["height"], (selector, shape)
    assert box(page, "media-play-button")["width"] >= TARGET_PX
    # No room for a slider there: the phone's keys do that, mute stays.
    assert not page.locator("media-volume-range").is_visible()
    screenshot(page, "controls-audio-embed-280")


# --- the video fits the screen -------------------------------------------------------------------


def assert_video_fits(page: Any, stage: str) -> None:
    assert page.evaluate("() => window.scrollY") == 0
    bar = box(page, f"{stage} media-control-bar")
    viewport = page.viewport_size
    assert bar["y"] >= 0 and bar["y"] + bar["height"] <= viewport["height"], (bar, viewport)
    player = box(page, f"{stage} .cl-player--video")
    assert abs(player["width"] / player["height"] - 16 / 9) < 0.01, player
    # The play button in the bar is a target too.
    play = box(page, f"{stage} media-control-bar media-play-button")
    assert play["width"] >= TARGET_PX and play["height"] >= TARGET_PX, play


@pytest.mark.parametrize("size", SIZES)
def test_the_video_controls_are_on_screen_without_scrolling(
    catalogue: Catalogue, new_page: Callable[..., Any], size: dict[str, int], request: Any
) -> None:
    page = open_player(new_page, f"{catalogue.url}/productions/{catalogue.video_slug}", size)
    assert_video_fits(page, ".player-frame")
    player = box(page, ".player-frame .cl-player--video")
    column = box(page, ".player-frame")
    if size is PHONE:
        # A phone's column is narrow: the player has all of it.
        assert player["width"] == column["width"]
    else:
        # Centred on its frame when the height is what limits it.
        assert (
            abs(
                (player["x"] - column["x"])
                - (column["x"] + column["width"] - player["x"] - player["width"])
            )
            <= 1
        )
    screenshot(page, f"controls-video-{request.node.callspec.id}")


@pytest.fixture(scope="module")
def collection_url(catalogue: Catalogue) -> str:
    """A public collection holding the catalogue's video, then its audio."""
    with catalogue.services.sessions.begin() as session:
        collection = Collection(
            title="Une soirée", slug=new_slug(session, "Une soirée"), kind="album", state="public"
        )
        session.add(collection)
        session.flush()
        for position, production_id in enumerate((catalogue.video_id, catalogue.audio_id)):
            session.add(
                CollectionItem(
                    collection_id=collection.id, production_id=production_id, position=position
                )
            )
        slug = collection.slug
    return f"{catalogue.url}/collections/{slug}"


def test_the_collection_page_video_fits_a_laptop_screen(
    collection_url: str, new_page: Callable[..., Any]
) -> None:
    page = new_page(LAPTOP)
    page.goto(collection_url)
    stage = "[data-playlist-stage]"
    wait_for_engine(page, f"{stage} [data-player]")
    # The page opens with the collection's cover and title; brought to the top of the screen,
    # the player is whole on it, its control bar included.
    page.locator(stage).evaluate("(element) => element.scrollIntoView({ block: 'start' })")
    player = box(page, f"{stage} .cl-player--video")
    assert abs(player["width"] / player["height"] - 16 / 9) < 0.01, player
    # As on a production page, it leaves the height of the site's header and a title.
    assert player["height"] <= LAPTOP["height"] - 15 * 16 + 0.5, player
    bar = box(page, f"{stage} media-control-bar")
    assert bar["y"] >= 0 and bar["y"] + bar["height"] <= LAPTOP["height"], bar
    screenshot(page, "controls-video-collection-laptop")


def test_the_video_embed_still_fills_its_frame(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = open_player(
        new_page, f"{catalogue.url}/embed/{catalogue.video_id}", {"width": 960, "height": 540}
    )
    assert box(page, "[data-player]") == {"x": 0, "y": 0, "width": 960, "height": 540}


# --- axe ----------------------------------------------------------------------------------------


def serious_violations(page: Any, include: list[str]) -> list[str]:
    """What axe-core finds of serious or critical impact inside `include`, one line each."""
    page.add_script_tag(path=str(AXE))
    found: list[str] = page.evaluate(
        """async (include) => {
            const result = await axe.run({ include: include.map((selector) => [selector]) });
            return result.violations
                .filter((v) => v.impact === "serious" || v.impact === "critical")
                .flatMap((v) => v.nodes.map((n) => `${v.id} (${v.impact}) ${n.target.join(" ")}: `
                    + n.failureSummary.replace(/\\s+/g, " ")));
        }""",
        include,
    )
    return found


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("kind", ["video", "audio"])
@pytest.mark.parametrize("where", ["page", "embed"])
def test_axe_finds_nothing_serious_in_the_player(
    catalogue: Catalogue, new_page: Callable[..., Any], lang: str, kind: str, where: str
) -> None:
    if where == "page":
        slug = catalogue.video_slug if kind == "video" else catalogue.audio_slug
        url = f"{catalogue.url}/productions/{slug}?lang={lang}"
        # The player and the share tools, open; the rest of the page (its header...) is
        # tests/test_browser_a11y.py's.
        include = [".player-frame", "[data-share-panel]"]
    else:
        production_id = catalogue.video_id if kind == "video" else catalogue.audio_id
        url = f"{catalogue.url}/embed/{production_id}?lang={lang}"
        include = ["html"]
    # The Content-Security-Policy refuses inline scripts, which is how axe is added.
    page = open_player(new_page, url, LAPTOP, bypass_csp=True)
    assert page.evaluate("() => document.documentElement.lang") == lang
    if where == "page":
        page.locator("[data-share-toggle]").click()
    violations = serious_violations(page, include)
    assert violations == [], "\n".join(violations)


# --- the player's words --------------------------------------------------------------------------

LABELS = """() => {
    const bar = document.querySelector("[data-player] media-control-bar");
    const out = {};
    for (const element of bar.querySelectorAll("*")) {
        if (!element.localName.startsWith("media-")) continue;
        const tip = element.shadowRoot?.querySelector("media-tooltip");
        // A range's name is on the slider inside it.
        const slider = element.shadowRoot?.querySelector("input[type=range]");
        out[element.localName] = {
            label: element.getAttribute("aria-label") ?? slider?.getAttribute("aria-label") ?? null,
            tooltip: tip ? tip.textContent.trim() : null,
        };
    }
    return out;
}"""
# The same in both languages, and right in both.
SAME_WORD = {"Pause", "Volume", "volume"}


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_every_player_label_speaks_the_page_language(
    catalogue: Catalogue, new_page: Callable[..., Any], kind: str
) -> None:
    slug = catalogue.video_slug if kind == "video" else catalogue.audio_slug
    labels = {}
    for lang in ("fr", "en"):
        page = open_player(new_page, f"{catalogue.url}/productions/{slug}?lang={lang}", LAPTOP)
        labels[lang] = page.evaluate(LABELS)
    fr, en = labels["fr"], labels["en"]
    assert fr.keys() == en.keys()
    assert fr["media-playback-rate-button"] == {
        "label": "Vitesse de lecture 1x",
        "tooltip": "Vitesse de lecture",
    }
    assert en["media-playback-rate-button"] == {
        "label": "Playback speed 1x",
        "tooltip": "Playback speed",
    }
    assert fr["media-play-button"]["label"] == "lire"
    assert fr["media-mute-button"]["label"] == "désactiver le son"
    assert en["media-play-button"]["label"] == "play"
    assert fr["media-volume-range"]["label"] == "Volume"
    for name in fr:
        for field in ("label", "tooltip"):
            french, english = fr[name][field], en[name][field]
            if french is None and english is None:
                continue
            assert french and english, (name, field, french, english)
            assert french != english or french in SAME_WORD, (name, field, french)
            assert "Taux" not in french and "télécharg" not in french.lower()
    if kind == "video":
        assert fr["media-time-range"]["label"] == "Position de lecture"
        assert en["media-time-range"]["label"] == "Playback position"
        assert fr["media-fullscreen-button"]["label"] == "plein écran"


def test_the_french_error_messages_say_loading_not_downloading(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = open_player(new_page, f"{catalogue.url}/productions/{catalogue.video_slug}", LAPTOP)
    # The page runs the bundle; its sources are served too: the player's dictionary
    # (player_labels.js) registered into media-chrome's i18n module, both as sources.
    said = page.evaluate(
        """async () => {
            await import("/static/js/player_labels.js");
            const { t, setLanguage } = await import("/static/vendor/media-chrome/utils/i18n.js");
            setLanguage("fr");
            return t("A network error caused the media download to fail.");
        }"""
    )
    assert said == "Une erreur réseau a interrompu le chargement de l’enregistrement."


# --- the Share / Embed tools ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "size", [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]
)
def test_the_share_tools_open_from_a_button_with_the_keyboard_and_copy(
    catalogue: Catalogue, new_page: Callable[..., Any], size: dict[str, int], request: Any
) -> None:
    name = request.node.callspec.id
    page = open_player(
        new_page,
        f"{catalogue.url}/productions/{catalogue.video_slug}",
        size,
        permissions=["clipboard-read", "clipboard-write"],
    )
    toggle = page.locator("[data-share-toggle]")
    code = page.locator("[data-share-code]")
    # Closed at first: one button, the snippet out of the way.
    assert not code.is_visible()
    assert "Partager / Intégrer" in toggle.inner_text()
    assert expanded(page, "Partager / Intégrer") is False
    # A button to the keyboard: reached with Tab from the element before it, opened with Enter,
    # closed with Space; screen readers hear whether it is open.
    page.evaluate(
        """() => {
            const focusable = "a[href], button, input, summary, [tabindex]";
            const stops = [...document.querySelectorAll(focusable)]
                .filter((e) => e.tabIndex >= 0 && e.getClientRects().length > 0);
            const toggle = document.querySelector("[data-share-toggle]");
            stops[stops.indexOf(toggle) - 1].focus();
        }"""
    )
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.matches('[data-share-toggle]')")
    page.keyboard.press("Enter")
    code.wait_for(state="visible")
    assert expanded(page, "Partager / Intégrer") is True
    screenshot(page, f"controls-share-open-{name}")
    page.keyboard.press("Space")
    code.wait_for(state="hidden")
    assert expanded(page, "Partager / Intégrer") is False
    screenshot(page, f"controls-share-closed-{name}")

    # Opened again, its snippet follows the options and copies.
    page.keyboard.press("Enter")
    panel = page.locator("[data-share-panel]")
    panel.locator("input[name=loop]").check()
    snippet = code.input_value()
    assert f'src="{catalogue.url}/embed/{catalogue.video_id}?loop=1"' in snippet
    panel.locator("[data-copy$='-code']").click()
    page.wait_for_function("() => document.querySelector('[data-share-status]').textContent")
    assert page.evaluate("() => navigator.clipboard.readText()") == snippet
    assert page.js_errors == []


def test_the_share_tools_open_without_script(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = new_page(PHONE, java_script_enabled=False)
    page.goto(f"{catalogue.url}/productions/{catalogue.audio_slug}")
    code = page.locator("[data-share-code]")
    assert not code.is_visible()
    page.locator("[data-share-toggle]").click()
    code.wait_for(state="visible")
    assert f"/embed/{catalogue.audio_id}" in code.input_value()
    screenshot(page, "controls-share-no-script-phone")


def test_share_init_is_idempotent_and_wires_a_swapped_in_page(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    page = open_player(new_page, f"{catalogue.url}/productions/{catalogue.video_slug}", DESKTOP)
    page.wait_for_function("() => window.CiteLivePlayer !== undefined")
    result = page.evaluate(
        """async () => {
            // share.js as a source module (the page runs the bundle): one instance of it.
            const share = await import("/static/js/share.js");
            const panel = document.querySelector("[data-share-panel]");
            const first = share.init(document);
            const again = share.init(document);
            // What a page swap brings in: a fresh copy of the panel, not yet wired.
            const holder = document.createElement("div");
            holder.innerHTML = panel.outerHTML;
            const copy = holder.firstElementChild;
            copy.querySelector("[data-share-code]").value = "";
            document.body.append(holder);
            const swapped = share.init(holder);
            copy.open = true;
            const loop = copy.querySelector("input[name=loop]");
            loop.checked = true;
            loop.dispatchEvent(new Event("change", { bubbles: true }));
            return {
                same: first.length === 1 && again.length === 1 && first[0] === again[0],
                swapped: swapped.length === 1 && swapped[0] !== first[0],
                code: copy.querySelector("[data-share-code]").value,
                original: panel.querySelector("[data-share-code]").value,
            };
        }"""
    )
    assert result["same"], "a second init() wires nothing twice"
    assert result["swapped"]
    assert f"/embed/{catalogue.video_id}?loop=1" in result["code"]
    assert "loop=1" not in result["original"], "each panel keeps its own options"
