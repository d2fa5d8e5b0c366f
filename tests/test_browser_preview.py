"""Play while processing, in a real browser: headless Debian Chromium against a real server,
playing a preview whose playlists grow as the pipeline writes them.

A short audio and a short video capture are transcoded once for the module (2 s segments).
Each test publishes their output as the pipeline does while a job runs: the first segments,
then EVENT media playlists holding only those (no ENDLIST), the master listing every rung, and
the production's ``preview`` version. The test then writes more segments and longer playlists,
and finally the whole playlists as VOD with ENDLIST while the version is published, as the
pipeline's last step does; the player must start at the beginning, play on across the growth
and end. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from cite_live.catalogue import create_production, set_credits
from cite_live.models import MediaVersion, Production
from cite_live.services import Services, open_services

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests import test_browser
from tests.account_fixtures import PASSWORD, make_user
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url
from tests.media import ffmpeg, split
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    PLAY_TIMEOUT_MS,
    playwright_api,
    screenshot,
    wait_for_engine,
    watch_csp,
)
from transcoder import Transcoder, TranscodeResult
from transcoder.settings import TranscoderSettings

artifacts = test_browser.artifacts

NORA = "nora@example.org"
SECONDS = 12
SEGMENT_SECONDS = 2
SEGMENTS = SECONDS // SEGMENT_SECONDS
# What the first playlists hold: 8 s, far enough from their start that a player starting near
# their end (hls.js's way with a live playlist: three target durations from it, 2 s here) is
# told apart from one starting at the beginning.
FIRST = 4
NOTICES = {
    "audio": "Traitement en cours — vous pouvez déjà écouter.",
    "video": "Traitement en cours — vous pouvez déjà regarder.",
}
WIDTHS = {"desktop": DESKTOP, "phone": PHONE}


@dataclass
class Transcoded:
    out: Path
    result: TranscodeResult


@dataclass
class Site:
    url: str
    services: Services
    owner_id: int
    outputs: dict[str, Transcoded]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server on 127.0.0.1, an artist account, and a 12 s audio and video capture transcoded
    once (cut in 2 s segments, so that a preview grows several times in a few seconds)."""
    directory = tmp_path_factory.mktemp("preview-browser")
    services = open_services(make_settings(directory / "data", sqlite_url(directory)))
    owner_id = make_user(services, NORA, artists=["Nora Ilić"])
    sources = {
        "audio": (
            directory / "capture.m4a",
            [*split("-f lavfi -i"), f"sine=frequency=330:sample_rate=48000:duration={SECONDS}"],
            split("-c:a aac -b:a 96k -ac 2"),
        ),
        "video": (
            directory / "capture.mp4",
            [
                *split("-f lavfi -i"),
                f"testsrc2=size=426x240:rate=25:duration={SECONDS}",
                *split("-f lavfi -i"),
                f"sine=frequency=440:sample_rate=48000:duration={SECONDS}",
            ],
            split("-c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 50 -c:a aac -ac 2"),
        ),
    }
    transcoder = Transcoder(
        TranscoderSettings(segment_seconds=SEGMENT_SECONDS, tmp_dir=directory),
        logger=logging.getLogger("test.preview"),
    )
    outputs: dict[str, Transcoded] = {}
    for kind, (source, inputs, codecs) in sources.items():
        ffmpeg(*inputs, *codecs, str(source))
        out = directory / f"hls-{kind}"
        out.mkdir()
        result = transcoder.transcode(source, out, transcoder.probe(source))
        assert result.kind == kind
        outputs[kind] = Transcoded(out, result)
    try:
        with serving(services) as url:
            yield Site(url, services, owner_id, outputs)
    finally:
        services.close()


def growing(text: str, segments: int | None) -> str:
    """A media playlist of the pipeline while it runs: its first ``segments`` segments, as an
    EVENT playlist without ENDLIST; None: the whole playlist as published (VOD, ENDLIST)."""
    if segments is None:
        return text
    head: list[str] = []
    kept: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line == "#EXT-X-ENDLIST":
            continue
        if line == "#EXT-X-PLAYLIST-TYPE:VOD":
            line = "#EXT-X-PLAYLIST-TYPE:EVENT"
        if current or line.startswith("#EXTINF"):
            current.append(line)
            if line and not line.startswith("#"):
                kept.append(current)
                current = []
        else:
            head.append(line)
    return "\n".join([*head, *(line for segment in kept[:segments] for line in segment)]) + "\n"


@dataclass
class Preview:
    """A production whose job runs, and its preview under ``prefix`` in the store."""

    site: Site
    kind: str
    production_id: str
    slug: str
    prefix: str
    version_id: int

    @property
    def page_url(self) -> str:
        return f"{self.site.url}/productions/{self.slug}"

    def write(self, segments: int | None) -> None:
        """The store as the pipeline leaves it once ``segments`` segments of every rung are
        written (None: all, and the playlists published): segments first, then the media
        playlists, then the master."""
        transcoded = self.site.outputs[self.kind]
        store = self.site.services.store
        playlists = []
        for relative in transcoded.result.files:
            path = transcoded.out / relative
            if relative.endswith(".m3u8"):
                if relative != transcoded.result.master:
                    playlists.append(relative)
                continue
            # seg_00006.m4s, or seg_00006-end.m4s for a last segment joined with a short tail.
            number = path.stem.removeprefix("seg_").split("-")[0]
            if path.suffix == ".m4s" and segments is not None and int(number) > segments:
                continue
            if path.suffix in (".m4s", ".mp4") and "/" in relative:
                store.put_file(self.prefix + relative, path)
        for relative in playlists:
            text = (transcoded.out / relative).read_text()
            store.put_bytes(self.prefix + relative, growing(text, segments).encode())
        master = transcoded.result.master
        store.put_file(self.prefix + master, transcoded.out / master)

    def publish(self) -> None:
        """The pipeline's last step: the whole playlists (VOD, ENDLIST) in place, and in one
        transaction the preview becomes the published version the production points at."""
        self.write(None)
        with self.site.services.sessions.begin() as session:
            version = session.get(MediaVersion, self.version_id)
            production = session.get(Production, self.production_id)
            assert version is not None and production is not None
            version.state = "published"
            production.current_version_id = version.id
            production.status, production.duration = "ready", float(SECONDS)


def make_preview(site: Site, kind: str, *, visibility: str = "public") -> Preview:
    """A processing production of the artist's whose first segments are there (FIRST of them)."""
    transcoded = site.outputs[kind]
    with site.services.sessions.begin() as session:
        production = create_production(
            session, title=f"Répétition en cours ({kind})", filename="capture.wav", kind=kind
        )
        set_credits(session, production, [("Nora Ilić", "performer")])
        production.owner_id, production.visibility = site.owner_id, visibility
        session.flush()
        prefix = f"productions/{production.id}/j1/"
        preview = Preview(site, kind, production.id, production.slug, prefix, 0)
    preview.write(FIRST)
    with site.services.sessions.begin() as session:
        version = MediaVersion(
            production_id=preview.production_id,
            name="j1",
            state="preview",
            prefix=prefix,
            master_key=prefix + transcoded.result.master,
            ladder=[asdict(rung) for rung in transcoded.result.renditions],
            duration=None,
        )
        session.add(version)
        session.flush()
        preview.version_id = version.id
    return preview


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class Visitor:
    """One browser context, signed in or not, whose pages are watched for script errors and
    Content-Security-Policy violations."""

    def __init__(self, browser: Any, site: Site, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, locale="fr-FR")
        self.page = self.context.new_page()
        self.page.set_default_timeout(PLAY_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.violations = watch_csp(self.page)
        self.url = site.url

    def sign_in(self, email: str) -> Visitor:
        page = self.page
        page.goto(f"{self.url}/login?next=/studio")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("form.studio-form button[type=submit]")
        page.wait_for_url(f"{self.url}/studio")
        return self

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors
        assert self.violations == [], self.violations


@pytest.fixture
def visitors(browser: Any, site: Site) -> Iterator[Callable[[dict[str, int]], Visitor]]:
    opened: list[Visitor] = []

    def open_visitor(viewport: dict[str, int]) -> Visitor:
        opened.append(Visitor(browser, site, viewport))
        return opened[-1]

    yield open_visitor
    for visitor in opened:
        visitor.close()


# What the page's media element did: where it first played from, and whether it ended.
WATCH = """() => {
    const media = document.querySelector("[data-player] video, [data-player] audio");
    window.previewWatch = { first: null, ended: false, waited: 0 };
    media.addEventListener("playing", () => {
        if (window.previewWatch.first === null) window.previewWatch.first = media.currentTime;
    });
    media.addEventListener("waiting", () => (window.previewWatch.waited += 1));
    media.addEventListener("ended", () => (window.previewWatch.ended = true));
}"""
POSITION = (
    """() => document.querySelector("[data-player] video, [data-player] audio").currentTime"""
)


def wait_for_position(page: Any, seconds: float) -> None:
    page.wait_for_function(f"() => ({POSITION})() >= {seconds}", timeout=PLAY_TIMEOUT_MS)


@pytest.mark.parametrize(("width", "kind"), [("desktop", "audio"), ("phone", "video")])
def test_the_owner_plays_a_preview_from_its_start_as_it_grows_to_its_end(
    site: Site,
    visitors: Callable[[dict[str, int]], Visitor],
    width: str,
    kind: str,
) -> None:
    # Published as a draft is: private, its artist's alone until finished.
    preview = make_preview(site, kind, visibility="private")
    page = visitors(WIDTHS[width]).sign_in(NORA).page
    page.goto(preview.page_url)
    notice = page.locator("[data-preview-notice]")
    assert notice.inner_text().strip() == NOTICES[kind]
    wait_for_engine(page)
    page.evaluate(WATCH)
    screenshot(page, f"preview-{kind}-{width}-before-play")
    page.locator("[data-player] media-play-button").first.click()
    page.wait_for_function("() => window.previewWatch.first !== null")
    # From the beginning, not near the end of what is there (8 s).
    assert page.evaluate("() => window.previewWatch.first") < 1.0
    wait_for_position(page, 1.0)
    screenshot(page, f"preview-{kind}-{width}-playing")

    # More segments while it plays, before it reaches the end of the first ones: it plays on
    # past where the first playlists ended.
    preview.write(FIRST + 1)
    wait_for_position(page, FIRST * SEGMENT_SECONDS + 1.0)
    # The last step: whole playlists, ENDLIST, the version published; it plays to the end.
    preview.publish()
    page.wait_for_function("() => window.previewWatch.ended", timeout=PLAY_TIMEOUT_MS * 2)
    assert page.evaluate(POSITION) >= SECONDS - 0.5
    assert page.locator(".cl-player__error").count() == 0
    screenshot(page, f"preview-{kind}-{width}-ended")


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_publishing_early_on_the_form_lets_a_visitor_play_the_preview(
    site: Site,
    visitors: Callable[[dict[str, int]], Visitor],
    width: str,
) -> None:
    preview = make_preview(site, "audio", visibility="public")
    stranger = visitors(WIDTHS[width]).page
    assert stranger.goto(preview.page_url).status == 404

    owner = visitors(WIDTHS[width]).sign_in(NORA).page
    owner.goto(f"{site.url}/studio/productions/{preview.production_id}")
    box = owner.get_by_label("Publier dès que la lecture est possible")
    assert not box.is_checked()
    box.check()
    screenshot(owner, f"preview-form-{width}")
    owner.locator("form.studio-form button[type=submit]").first.click()
    owner.wait_for_url("**done=saved")
    assert owner.get_by_label("Publier dès que la lecture est possible").is_checked()

    assert stranger.goto(preview.page_url).status == 200
    assert stranger.locator("[data-preview-notice]").inner_text().strip() == NOTICES["audio"]
    wait_for_engine(stranger)
    stranger.evaluate(WATCH)
    stranger.locator("[data-player] media-play-button").first.click()
    wait_for_position(stranger, 1.0)
    assert stranger.evaluate("() => window.previewWatch.first") < 1.0
    screenshot(stranger, f"preview-visitor-{width}")


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_new_uploads_card_offers_to_publish_it_as_soon_as_playable(
    site: Site, visitors: Callable[[dict[str, int]], Visitor], width: str
) -> None:
    page = visitors(WIDTHS[width]).sign_in(NORA).page
    page.wait_for_selector(".uppy-Dashboard", state="visible")
    page.wait_for_function("() => document.querySelector('[data-uploader]').uppy !== undefined")
    source = site.outputs["audio"].out / "a128" / "init.mp4"
    page.set_input_files(".uppy-Dashboard-input >> nth=0", str(source))
    box = page.locator("#uppy-Dashboard-FileCard-input-publish_early")
    label = page.inner_text("label[for=uppy-Dashboard-FileCard-input-publish_early]")
    assert label.strip() == "Publier dès que la lecture est possible"
    assert not box.is_checked()
    box.check()
    screenshot(page, f"preview-upload-card-{width}")
    page.click(".uppy-Dashboard-FileCard-actionsBtn:has-text('Sauvegarder les modifications')")
    meta = page.evaluate(
        "() => document.querySelector('[data-uploader]').uppy.getFiles()[0].meta.publish_early"
    )
    assert meta == "1"


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_a_public_preview_plays_in_its_embed_which_says_so_until_it_plays(
    site: Site, visitors: Callable[[dict[str, int]], Visitor], kind: str
) -> None:
    preview = make_preview(site, kind, visibility="public")
    with site.services.sessions.begin() as session:
        production = session.get(Production, preview.production_id)
        assert production is not None
        production.publish_early = True
    page = visitors({"width": 640, "height": 360 if kind == "video" else 166}).page
    page.goto(f"{site.url}/embed/{preview.production_id}")
    notice = page.locator("[data-preview-notice]")
    assert notice.inner_text().strip() == NOTICES[kind]
    wait_for_engine(page)
    page.evaluate(WATCH)
    screenshot(page, f"preview-embed-{kind}-before-play")
    page.locator("[data-player] media-play-button").first.click()
    wait_for_position(page, 1.0)
    assert page.evaluate("() => window.previewWatch.first") < 1.0
    notice.wait_for(state="hidden")
    screenshot(page, f"preview-embed-{kind}-playing")
