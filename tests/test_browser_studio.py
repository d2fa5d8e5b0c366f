"""The studio's edit page and list in a real browser: headless Debian Chromium against a real
server, signed in as the artist who owns the productions.

One short audio capture is ingested once for the module and made private: its owner sees its
picture in the list through a signed link and plays it from its edit page. The edit form is
filled in and saved with a cover at desktop and phone width. Screenshots land in
test-artifacts/.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.models import Production
from cite_live.services import Services, open_services
from tests.account_fixtures import PASSWORD, make_user
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    PLAY_TIMEOUT_MS,
    media_state,
    play_muted,
    playwright_api,
    screenshot,
    wait_for_engine,
    wait_until_time,
    watch_csp,
)
from tests.test_studio import add_production

NORA = "nora@example.org"
PAUL = "paul@example.org"
ADMIN = "admin@example.org"
WIDTHS = (("desktop", DESKTOP), ("phone", PHONE))


@dataclass
class Studio:
    url: str
    services: Services
    nora_id: int
    # Nora's private production, ingested for real: it plays and has a picture.
    secret_id: str
    # Nora's production still processing: no picture, no player yet.
    processing_id: str


@pytest.fixture(scope="module")
def studio(
    tmp_path_factory: pytest.TempPathFactory, media: Callable[[str], Path]
) -> Iterator[Studio]:
    directory = tmp_path_factory.mktemp("studio-browser")
    services = open_services(make_settings(directory / "data", sqlite_url(directory)))
    nora_id = make_user(services, NORA, artists=["Nora Ilić"])
    make_user(services, PAUL, artists=["Paul Vercors"])
    make_user(services, ADMIN, "admin")
    secret_id, job_id = submit_file(
        services, media("mp3_id3v24_apic"), title="Maquette secrète", artists=["Nora Ilić"]
    )
    run_transcode(services, job_id)
    with services.sessions.begin() as session:
        secret = session.get(Production, secret_id)
        assert secret is not None and secret.status == "ready", secret
        secret.owner_id, secret.visibility = nora_id, "private"
    processing_id = add_production(
        services,
        nora_id,
        "Encore au four",
        status="processing",
        minutes=-1,
        job=("running", 0.4, None),
    )
    try:
        with serving(services) as url:
            yield Studio(url, services, nora_id, secret_id, processing_id)
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


class Visitor:
    """One browser context, signed in (or not), whose pages are watched for script errors and
    Content-Security-Policy violations."""

    def __init__(self, browser: Any, studio: Studio, viewport: dict[str, int]) -> None:
        self.context = browser.new_context(viewport=viewport, locale="fr-FR")
        self.page = self.context.new_page()
        self.page.set_default_timeout(PLAY_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.violations = watch_csp(self.page)
        self.url = studio.url

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
def visitors(browser: Any, studio: Studio) -> Iterator[Callable[[dict[str, int]], Visitor]]:
    opened: list[Visitor] = []

    def open_visitor(viewport: dict[str, int]) -> Visitor:
        opened.append(Visitor(browser, studio, viewport))
        return opened[-1]

    yield open_visitor
    for visitor in opened:
        visitor.close()


def jpeg_bytes(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 320), colour).save(out, format="JPEG")
    return out.getvalue()


GREEN_JPEG = jpeg_bytes((40, 140, 90))


def image_file(path: Path, colour: tuple[int, int, int]) -> Path:
    Image.new("RGB", (640, 480), colour).save(path, format="PNG")
    return path


def image_loaded(page: Any, selector: str) -> bool:
    """Whether the image at ``selector`` was fetched and decoded (a 404 leaves it 0 wide)."""
    locator = page.locator(selector)
    locator.scroll_into_view_if_needed()
    return bool(
        locator.evaluate("(img) => img.decode().then(() => img.naturalWidth > 0, () => false)")
    )


TYPED = {
    "#title": "Nuit au Cargo",
    "#title_en": "Night at the Cargo",
    "#description": "Un concert.\n\nDeux rappels.",
    "#recorded_on": "2025-03-14",
    "#tags": "jazz, trio",
    "#setlist": "0:00 Ouverture\n1:02 Rappel",
}


def fill_the_form(page: Any) -> None:
    for selector, value in TYPED.items():
        page.fill(selector, value)
    page.fill("#venue_new", "La Cordonnerie")
    page.fill(".credit-row >> nth=1 >> input", "Paul Vercors")
    page.select_option(".credit-row >> nth=1 >> select", "composer")
    page.select_option("#session_type", "live")
    page.select_option("#licence", "CC-BY-4.0")
    page.select_option("#language", "oc")


def assert_the_form_kept_what_was_typed(page: Any, *, saved: bool) -> None:
    for selector, value in TYPED.items():
        assert page.input_value(selector) == value, selector
    if saved:
        # The new venue was made, and is now the one chosen in the list.
        chosen = page.eval_on_selector("#venue_id", "(s) => s.selectedOptions[0].textContent")
        assert (chosen, page.input_value("#venue_new")) == ("La Cordonnerie", "")
    else:
        assert page.input_value("#venue_new") == "La Cordonnerie"
    assert page.input_value(".credit-row >> nth=1 >> input") == "Paul Vercors"
    assert page.input_value(".credit-row >> nth=1 >> select") == "composer"
    assert page.input_value("#session_type") == "live"
    assert page.input_value("#licence") == "CC-BY-4.0"
    assert page.input_value("#language") == "oc"


def save(page: Any) -> None:
    page.click("form.studio-form button[type=submit]:has-text('Enregistrer')")
    page.wait_for_load_state()


def test_a_cover_is_saved_with_everything_typed_and_a_refused_one_loses_nothing(
    studio: Studio,
    visitors: Callable[[dict[str, int]], Visitor],
    tmp_path: Path,
) -> None:
    services = studio.services
    red = image_file(tmp_path / "pochette.png", (200, 30, 30))
    not_an_image = tmp_path / "notes.jpg"
    not_an_image.write_text("Ceci est une liste de morceaux, pas une image.")
    too_big = tmp_path / "big.jpg"
    with too_big.open("wb") as sparse:
        sparse.truncate(21 << 20)
    for name, viewport in WIDTHS:
        production_id = add_production(services, studio.nora_id, f"Capture {name}")
        # The image of its recording (add_production names one but stores nothing).
        services.store.put_bytes(f"productions/{production_id}/v1/cover.jpg", GREEN_JPEG)
        page = visitors(viewport).sign_in(NORA).page
        edit = f"{studio.url}/studio/productions/{production_id}"
        page.goto(edit)
        # The cover is chosen in the form, next to everything else, and saved by its one button.
        assert page.locator("form.studio-form input[type=file]#cover").count() == 1

        # A file that is not an image: its sentence, and every field as typed.
        fill_the_form(page)
        page.set_input_files("#cover", str(not_an_image))
        save(page)
        assert (
            page.inner_text("#cover-error") == "Ce fichier n’est pas une image JPEG, PNG ou WebP."
        )
        assert "choisir à nouveau" in page.inner_text("#cover-again")
        assert_the_form_kept_what_was_typed(page, saved=False)
        page.locator("#cover").scroll_into_view_if_needed()
        screenshot(page, f"studio-cover-refused-{name}")
        with services.sessions() as session:
            production = session.get(Production, production_id)
            assert production is not None
            assert production.title == f"Capture {name}" and production.cover_key is None

        # With scripts, a file over the limit is refused as soon as it is chosen, before a
        # 20 MB body is sent for nothing.
        page.set_input_files("#cover", str(too_big))
        assert page.inner_text("[data-cover-problem]").endswith("Cette image dépasse 20 Mo.")
        assert page.evaluate("() => document.querySelector('#cover').files.length") == 0

        # The image chosen again: one save keeps every field and shows the cover.
        page.set_input_files("#cover", str(red))
        assert image_loaded(page, "[data-cover-preview]")
        assert not page.is_visible("#cover-error"), "what was said of the previous file"
        assert page.inner_text("[data-cover-pending]").startswith(
            "Cette image est enregistrée avec"
        )
        page.locator("#cover").scroll_into_view_if_needed()
        screenshot(page, f"studio-cover-chosen-{name}")
        save(page)
        page.wait_for_url(f"{edit}?done=saved")
        assert page.inner_text(".notice") == "Enregistré."
        assert_the_form_kept_what_was_typed(page, saved=True)
        assert image_loaded(page, "img.studio-cover__image:not([data-cover-preview])")
        screenshot(page, f"studio-cover-saved-{name}")
        with services.sessions() as session:
            production = session.get(Production, production_id)
            assert production is not None and production.cover_key is not None
            assert production.title == "Nuit au Cargo"
            assert [c.artist.name for c in production.credits] == ["Nora Ilić", "Paul Vercors"]
            assert production.venue is not None and production.venue.name == "La Cordonnerie"
            key = production.cover_key
        with services.store.available_locally(key) as path, Image.open(path) as stored:
            assert stored.getpixel((10, 10)) == pytest.approx((200, 30, 30), abs=3)

        # Back to the recording's own image, with another change saved alongside.
        page.check("#remove_cover")
        page.fill("#title", "Nuit au Cargo (rappel)")
        save(page)
        page.wait_for_url(f"{edit}?done=saved")
        assert page.input_value("#title") == "Nuit au Cargo (rappel)"
        assert page.locator("#remove_cover").count() == 0
        with services.sessions() as session:
            production = session.get(Production, production_id)
            assert production is not None and production.cover_key is None
        assert not services.store.exists(key)


def test_the_owner_sees_the_pictures_and_plays_a_private_production_from_its_edit_page(
    studio: Studio, visitors: Callable[[dict[str, int]], Visitor]
) -> None:
    services = studio.services
    with services.sessions() as session:
        secret = session.get(Production, studio.secret_id)
        assert secret is not None and secret.current_version is not None
        picture = secret.current_version.cover_key
    assert picture is not None
    for name, viewport in WIDTHS:
        nora = visitors(viewport).sign_in(NORA)
        page = nora.page
        # The list: the private production's picture comes through a signed link, and loads.
        row = f".studio-item[data-id='{studio.secret_id}']"
        src = page.get_attribute(f"{row} img.studio-item__picture", "src")
        assert src is not None and "/media/private/" in src and src.endswith(picture)
        assert image_loaded(page, f"{row} img.studio-item__picture")
        assert page.request.get(src).status == 200
        # A production still processing has a neutral placeholder, no image.
        waiting = f".studio-item[data-id='{studio.processing_id}']"
        assert page.locator(f"{waiting} .studio-item__picture--none").count() == 1
        assert page.locator(f"{waiting} img").count() == 0
        page.evaluate("() => document.querySelector('.studio-list').scrollIntoView()")
        screenshot(page, f"studio-list-pictures-{name}")

        # Its edit page plays it, through signed links, for its owner.
        page.click(f"{row} a:has-text('Modifier')")
        page.wait_for_url(f"{studio.url}/studio/productions/{studio.secret_id}")
        wait_for_engine(page)
        config = page.evaluate(
            "() => JSON.parse(document.querySelector('[data-player-config]').textContent)"
        )
        assert "/media/private/" in config["hls_url"]
        play_muted(page)
        start = media_state(page)["currentTime"]
        wait_until_time(page, start + 1.0)
        assert media_state(page)["currentTime"] >= start + 1.0
        screenshot(page, f"studio-edit-preview-{name}")

        # While processing, the page says so instead of drawing a player.
        page.goto(f"{studio.url}/studio/productions/{studio.processing_id}")
        assert page.locator("[data-player]").count() == 0
        assert "Traitement" in page.inner_text(".studio-preview")
        screenshot(page, f"studio-edit-processing-{name}")

    # Another artist: no such row, and the picture's own address is nobody's business.
    paul = visitors(DESKTOP).sign_in(PAUL)
    assert paul.page.locator(f".studio-item[data-id='{studio.secret_id}']").count() == 0
    assert paul.page.request.get(f"{studio.url}/media/{picture}").status == 404
    edit = paul.page.goto(f"{studio.url}/studio/productions/{studio.secret_id}")
    assert edit is not None and edit.status == 404

    # The administrators' list shows the same pictures, signed for private productions.
    admin = visitors(DESKTOP).sign_in(ADMIN)
    admin.page.goto(f"{studio.url}/admin")
    cell = f"tr[data-id='{studio.secret_id}'] img.studio-item__picture"
    src = admin.page.get_attribute(cell, "src")
    assert src is not None and re.search(r"/media/private/[^/]+/productions/", src)
    assert image_loaded(admin.page, cell)
    screenshot(admin.page, "admin-list-pictures-desktop")
