"""Uploading from the studio in a real browser: headless Debian Chromium, Uppy over tus to a real
server, the embedded job workers, then the new production playing on its page.

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


def test_an_upload_from_the_studio_becomes_a_playable_production(
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

    # The Dashboard is drawn, in French.
    page.wait_for_selector(".uppy-Dashboard", state="visible")
    page.wait_for_function("() => document.querySelector('[data-uploader]').uppy !== undefined")
    assert page.evaluate("() => document.querySelector('[data-uploader]').uppy.opts.id") == "studio"
    assert "Déposer les fichiers ici" in page.inner_text(".uppy-Dashboard")
    # Every progress report Uppy makes, as (sent, total).
    page.evaluate(
        """() => {
            window.progressSeen = [];
            document.querySelector("[data-uploader]").uppy.on("upload-progress", (file, p) => {
                window.progressSeen.push([p.bytesUploaded, p.bytesTotal]);
            });
        }"""
    )
    page.set_input_files(".uppy-Dashboard-input >> nth=0", str(media("mp3_id3v24_apic")))
    page.wait_for_selector(".uppy-StatusBar-actionBtn--upload")
    screenshot(page, "studio-upload-chosen-desktop")
    page.click(".uppy-StatusBar-actionBtn--upload")

    # The upload reaches 100 % (tus PATCH with the session's CSRF header), Uppy says so...
    page.wait_for_selector("[data-uploader-done]:not([hidden])")
    seen = page.evaluate("() => window.progressSeen")
    assert seen and seen[-1][0] == seen[-1][1] > 0
    assert page.get_attribute(".uppy-StatusBar-progress", "aria-valuenow") == "100"
    # ...and the production appears in the list, waiting for a worker, with its bar.
    row = page.locator(".studio-item").first
    row.locator("progress.state__bar").wait_for()
    assert row.get_attribute("data-state") == "queued"
    assert "En attente de traitement" in row.inner_text()
    assert page.inner_text("#list-title") == "1 production"
    row.scroll_into_view_if_needed()
    screenshot(page, "studio-uploaded-desktop")
    with site.services.sessions() as session:
        production = session.scalars(select(Production)).one()
        assert production.owner_id is not None and production.status == "processing"
        assert session.scalars(select(Job.state)).all() == ["queued"]

    # The workers start; the page, polling, redraws the row as the job runs and ends.
    start_workers(site.services)
    page.wait_for_selector('.studio-item[data-state="ready"]', timeout=120_000)
    assert "Prête" in row.inner_text()
    assert any(
        item["job"] and item["job"]["state"] in ("queued", "running")
        for body in polled
        for item in body["items"]
    ), "the page polled while the job waited"
    row.scroll_into_view_if_needed()
    screenshot(page, "studio-ready-desktop")

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
    screenshot(phone_page, "studio-edit-phone")
    # The form's own CSRF token goes with it (the auth middleware refuses a form without).
    phone_page.fill("input[name=title_en]", "General rehearsal")
    phone_page.fill("textarea[name=setlist]", "0:00 Début\n0:03 Suite")
    phone_page.click("form.studio-form button:has-text('Enregistrer')")
    phone_page.wait_for_selector(".notice:has-text('Enregistré.')")
    phone.close()

    # Its page plays.
    page.click(".studio-item a:has-text('Voir sa page')")
    page.wait_for_url(f"{site.url}/productions/**")
    wait_for_engine(page)
    play_muted(page)
    assert_plays_two_seconds(page)
    screenshot(page, "studio-uploaded-production-desktop")
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
