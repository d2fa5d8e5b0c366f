"""Uploading from the studio in a real browser: headless Debian Chromium, Uppy over tus to a real
server, the embedded job workers, then the new production, a draft, published by its artist,
playing on its page, and renamed.

The workers start only once the uploaded production is in the list, waiting: so the test sees
the list's "waiting" state and then watches it turn ready by itself (the page polls), without
depending on how fast this machine transcodes. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cite_live.jobs import doorbell
from cite_live.models import Job, Production, User
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
    assert_plays_two_seconds,
    play_muted,
    playwright_api,
    screenshot,
    wait_for_engine,
    watch_csp,
)
from tests.test_studio import add_production

EMAIL = "nora@example.org"


@dataclass
class Site:
    url: str
    services: Services


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The app on 127.0.0.1, its jobs queue attached but without workers (see the module)."""
    services = open_services(make_settings(tmp_path / "data", sqlite_url(tmp_path)))
    make_user(services, EMAIL, artists=["Nora Ilić"])
    queue = doorbell.open_queue(services, workers=False)
    try:
        with serving(services) as url:
            yield Site(url, services)
    finally:
        if services.queue is not None:
            services.queue.close()  # type: ignore[attr-defined]
        queue.close()
        services.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def sign_in(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/login?next=/studio")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.studio-form button[type=submit]")
    page.wait_for_url(f"{site.url}/studio")


def start_workers(services: Services) -> None:
    """Attach a queue with worker threads; starting it sends every queued job again."""
    current = services.queue
    assert isinstance(current, doorbell.JobQueue)
    current.close()
    doorbell.open_queue(services, workers=True)


def uploader_ready(page: Any) -> None:
    """Wait for the studio's Uppy to be drawn and started, then record each progress report it
    makes, as (sent, total), in ``window.progressSeen``."""
    page.wait_for_selector(".uppy-Dashboard", state="visible")
    page.wait_for_function("() => document.querySelector('[data-uploader]').uppy !== undefined")
    page.evaluate(
        """() => {
            window.progressSeen = [];
            document.querySelector("[data-uploader]").uppy.on("upload-progress", (file, p) => {
                window.progressSeen.push([p.bytesUploaded, p.bytesTotal]);
            });
        }"""
    )


def send_chosen_files(page: Any) -> Any:
    """Press Upload, wait for Uppy to say everything is sent at 100 %, and return the first row
    of the list: the new production, a draft waiting for a worker, with its bar."""
    page.click(".uppy-StatusBar-actionBtn--upload")
    page.wait_for_selector("[data-uploader-done]:not([hidden])")
    seen = page.evaluate("() => window.progressSeen")
    assert seen and seen[-1][0] == seen[-1][1] > 0, seen
    assert page.get_attribute(".uppy-StatusBar-progress", "aria-valuenow") == "100"
    row = page.locator(".studio-item").first
    row.locator("progress.state__bar").wait_for()
    assert "En attente de traitement" in row.inner_text()
    assert "Brouillon" in row.inner_text() and "Une fois publiée : Publique" in row.inner_text()
    assert page.inner_text("#list-title") == "1 production"
    return row


def test_an_upload_from_the_studio_is_a_draft_its_artist_publishes_then_renames(
    site: Site, browser: Any, media: Callable[[str], Path]
) -> None:
    context = browser.new_context(viewport=DESKTOP, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(PLAY_TIMEOUT_MS)
    violations = watch_csp(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    polled: list[dict[str, Any]] = []
    page.on(
        "response",
        lambda response: (
            polled.append(response.json())
            if "/api/v1/me/productions" in response.url and response.ok
            else None
        ),
    )
    sign_in(page, site)

    # The Dashboard is drawn, in French, under the sentence that says uploads are drafts.
    uploader_ready(page)
    assert page.evaluate("() => document.querySelector('[data-uploader]').uppy.opts.id") == "studio"
    assert "Déposer les fichiers ici" in page.inner_text(".uppy-Dashboard")
    assert "brouillon" in page.inner_text(".uploader__draft")
    page.set_input_files(".uppy-Dashboard-input >> nth=0", str(media("mp3_id3v24_apic")))
    # The file's card opens at once: its title (its name until changed) and whom it will be for.
    title = page.locator("#uppy-Dashboard-FileCard-input-title")
    choice = page.locator("#uppy-Dashboard-FileCard-input-visibility")
    assert title.input_value() == "single"
    assert choice.input_value() == "public"
    assert choice.locator("option").all_inner_texts() == ["Publique", "Non répertoriée", "Privée"]
    label = page.inner_text("label[for=uppy-Dashboard-FileCard-input-visibility]")
    assert label == "Qui pourra la voir une fois publiée"
    title.fill("Répétition générale")
    choice.select_option("unlisted")
    choice.select_option("public")
    screenshot(page, "studio-upload-card-desktop")
    page.click(".uppy-Dashboard-FileCard-actionsBtn:has-text('Sauvegarder les modifications')")
    page.wait_for_selector(".uppy-StatusBar-actionBtn--upload")
    screenshot(page, "studio-upload-chosen-desktop")
    # The upload reaches 100 % (tus PATCH with the session's CSRF header), Uppy says so, and
    # the production appears in the list, a draft waiting for a worker.
    row = send_chosen_files(page)
    assert row.get_attribute("data-state") == "queued"
    row.scroll_into_view_if_needed()
    screenshot(page, "studio-uploaded-desktop")
    with site.services.sessions() as session:
        production = session.scalars(select(Production)).one()
        assert production.owner_id is not None and production.status == "processing"
        assert (production.title, production.visibility, production.publish_as) == (
            "Répétition générale",
            "private",
            "public",
        )
        assert session.scalars(select(Job.state)).all() == ["queued"]
        draft_slug = production.slug

    # The workers start; the page, polling, redraws the row as the job runs and ends.
    start_workers(site.services)
    page.wait_for_selector('.studio-item[data-state="ready"]', timeout=120_000)
    assert "Prête" in row.inner_text() and "Brouillon" in row.inner_text()
    assert any(
        item["job"] and item["job"]["state"] in ("queued", "running")
        for body in polled
        for item in body["items"]
    ), "the page polled while the job waited"
    row.scroll_into_view_if_needed()
    screenshot(page, "studio-ready-desktop")
    # Ready, and still nobody else's: a visitor finds neither it nor its page.
    visitor = browser.new_context(viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True)
    stranger = visitor.new_page()
    stranger.goto(f"{site.url}/")
    assert "Répétition générale" not in stranger.inner_text("main")
    assert stranger.goto(f"{site.url}/productions/{draft_slug}").status == 404

    # On a phone, its artist opens it, changes its title and publishes, in one press.
    phone = browser.new_context(
        viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True, storage_state=None
    )
    phone_page = phone.new_page()
    phone_page.set_default_timeout(PLAY_TIMEOUT_MS)
    violations += watch_csp(phone_page)
    sign_in(phone_page, site)
    phone_page.wait_for_selector(".uppy-Dashboard", state="visible")
    wide = phone_page.evaluate("() => document.documentElement.scrollWidth")
    assert wide <= PHONE["width"], "the studio fits a phone without sideways scrolling"
    screenshot(phone_page, "studio-phone")
    phone_page.locator(".studio-item").first.scroll_into_view_if_needed()
    screenshot(phone_page, "studio-list-phone")
    phone_page.click(".studio-item a:has-text('Modifier')")
    phone_page.wait_for_selector("form.studio-form textarea[name=setlist]")
    assert phone_page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert "Brouillon" in phone_page.inner_text(".page-header")
    screenshot(phone_page, "studio-edit-draft-phone")
    legend = phone_page.inner_text("form.studio-form fieldset:has(input[name=visibility]) legend")
    assert legend == "Qui pourra la voir une fois publiée"
    assert phone_page.is_checked("input[name=visibility][value=public]")
    # The form's own CSRF token goes with it (the auth middleware refuses a form without).
    phone_page.fill("input[name=title]", "Répétition générale, prise 2")
    phone_page.fill("input[name=title_en]", "General rehearsal")
    phone_page.fill("textarea[name=setlist]", "0:00 Début\n0:03 Suite")
    publish = phone_page.locator("button[name=action][value=publish]")
    publish.scroll_into_view_if_needed()
    screenshot(phone_page, "studio-edit-publish-phone")
    publish.click()
    phone_page.wait_for_selector(".notice:has-text('Publiée.')")
    assert "Brouillon" not in phone_page.inner_text(".page-header")
    assert phone_page.input_value("input[name=title]") == "Répétition générale, prise 2"
    screenshot(phone_page, "studio-published-phone")
    with site.services.sessions() as session:
        production = session.scalars(select(Production)).one()
        assert (production.visibility, production.publish_as) == ("public", None)
        assert production.published_at is not None and production.title_en == "General rehearsal"
        assert production.slug == "repetition-generale-prise-2"
    phone.close()

    # Published: at its new address, for everyone; it plays.
    page.reload()
    page.click(".studio-item a:has-text('Voir sa page')")
    page.wait_for_url(f"{site.url}/productions/repetition-generale-prise-2")
    wait_for_engine(page)
    play_muted(page)
    assert_plays_two_seconds(page)
    screenshot(page, "studio-published-production-desktop")
    stranger.goto(f"{site.url}/")
    assert "Répétition générale, prise 2" in stranger.inner_text("main")

    # Renamed: the address follows the title, and the old one leads to the new one, for good.
    page.goto(f"{site.url}/studio/productions/{production.id}")
    assert page.locator("button[name=action]").count() == 0, "published: nothing to publish"
    page.fill("input[name=title]", "Répétition publique")
    page.click("form.studio-form button:has-text('Enregistrer')")
    page.wait_for_selector(".notice:has-text('Enregistré.')")
    old = f"{site.url}/productions/repetition-generale-prise-2"
    moved = page.request.get(old, max_redirects=0)
    assert moved.status == 301
    assert moved.headers["location"] == "/productions/repetition-publique"
    page.goto(old)
    page.wait_for_url(f"{site.url}/productions/repetition-publique")
    assert page.inner_text("h1") == "Répétition publique"
    screenshot(page, "studio-renamed-production-desktop")
    stranger.goto(old)
    stranger.wait_for_url(f"{site.url}/productions/repetition-publique")
    screenshot(stranger, "renamed-production-phone")
    visitor.close()
    assert errors == []
    assert violations == [], "the Content-Security-Policy refused:\n" + "\n".join(violations)
    context.close()


def test_replacing_the_recording_keeps_the_production_and_its_address(
    site: Site, browser: Any, media: Callable[[str], Path]
) -> None:
    with site.services.sessions() as session:
        owner = session.scalars(select(User.id).where(User.email == EMAIL)).one()
    production_id = add_production(site.services, owner, "Première prise")
    context = browser.new_context(viewport=PHONE, locale="fr-FR", is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(PLAY_TIMEOUT_MS)
    violations = watch_csp(page)
    sign_in(page, site)
    page.goto(f"{site.url}/studio/productions/{production_id}/replace")
    page.wait_for_selector(".uppy-Dashboard", state="visible")
    uppy_id = page.evaluate("() => document.querySelector('[data-uploader]').uppy.opts.id")
    assert uppy_id == f"replace-{production_id}", "its own store: never restored elsewhere"
    screenshot(page, "studio-replace-phone")
    page.set_input_files(".uppy-Dashboard-input >> nth=0", str(media("mp3_id3v24_apic")))
    page.click(".uppy-StatusBar-actionBtn--upload")
    # Once sent, back to the list, where the same production now waits for its new recording.
    page.wait_for_url(f"{site.url}/studio")
    page.wait_for_selector(f'.studio-item[data-id="{production_id}"][data-state="queued"]')
    with site.services.sessions() as session:
        assert session.scalars(select(Production.id)).all() == [production_id]
        job = session.scalars(select(Job)).one()
        assert (job.production_id, job.state) == (production_id, "queued")
    assert violations == [], "the Content-Security-Policy refused:\n" + "\n".join(violations)
    context.close()
