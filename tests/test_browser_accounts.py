"""The account forms in a real browser: headless Debian Chromium against a real server.

A browser sends what a test client does not: an Origin header on every form, "null" under a
referrer policy that withholds it. So each account form is submitted here once for real, from
an invitation to a new password. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from typing import Any

from cite_live import accounts
from cite_live.catalogue import artist_by_name
from tests.app_fixtures import LiveServer

# tests.test_browser skips this module (or fails, in CI) when Chromium or Playwright is missing.
from tests.test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    playwright_api,
    screenshot,
)
from tests.test_pages import publish

FIRST = "tuba crêpe nocturne"
SECOND = "hautbois d'amour en avril"


def submit(page: Any, form: str) -> None:
    page.click(f"{form} button[type=submit]")
    page.wait_for_load_state()


def notice(page: Any) -> str:
    return str(page.inner_text(".notice"))


def test_an_invitation_a_new_password_and_a_sign_in_work_in_a_browser(
    live_server: LiveServer,
) -> None:
    services, url = live_server.services, live_server.url
    with services.sessions.begin() as session:
        artist = artist_by_name(session, "Les Ondes")
        invited = accounts.create_user(
            session, "ines@example.org", "artist", artist_ids=[artist.id]
        )
        secret = accounts.create_invitation(session, invited)
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=DESKTOP, locale="fr-FR")
            page.set_default_timeout(30_000)
            page.goto(f"{url}/invite/{secret}")
            invite_form = "form[action^='/invite/']"
            page.fill("#invite-password", "password123")
            page.fill("#invite-confirm", "password123")
            submit(page, invite_form)
            assert notice(page) == (
                "Ce mot de passe est trop facile à deviner. C’est un mot de passe très courant. "
                "Ajoutez un ou deux mots : les mots peu courants valent mieux."
            )
            screenshot(page, "invitation-weak-password")
            page.fill("#invite-password", FIRST)
            page.fill("#invite-confirm", FIRST)
            submit(page, invite_form)
            page.wait_for_url(f"{url}/studio")

            page.goto(f"{url}/account")
            password_form = "form:has(#current-password)"
            page.fill("#current-password", FIRST)
            page.fill("#new-password", "aaaaaaaaaa")
            page.fill("#confirm-password", "aaaaaaaaaa")
            submit(page, password_form)
            assert notice(page).startswith("Ce mot de passe est trop facile à deviner. ")
            page.fill("#current-password", FIRST)
            page.fill("#new-password", SECOND)
            page.fill("#confirm-password", SECOND)
            submit(page, password_form)
            assert notice(page).startswith("Votre mot de passe a été changé")
            screenshot(page, "account-password-changed")

            page.click("form[action='/logout'] button[type=submit]")
            page.wait_for_url(f"{url}/")
            page.goto(f"{url}/login?next=/account")
            page.fill("#login-email", "ines@example.org")
            page.fill("#login-password", SECOND)
            submit(page, "form:has(#login-email)")
            page.wait_for_url(f"{url}/account")
        finally:
            browser.close()


def test_an_artist_lands_in_the_studio_and_edits_from_their_own_page(
    live_server: LiveServer,
) -> None:
    services, url = live_server.services, live_server.url
    with services.sessions.begin() as session:
        artist = artist_by_name(session, "Les Ondes")
        owner = accounts.create_user(
            session,
            "ines@example.org",
            "artist",
            password=FIRST,
            artist_ids=[artist.id],
            settings=services.settings,
        )
        session.flush()
        mine = publish(session, "Nuit des Ondes", owner_id=owner.id)
        theirs = publish(session, "Autre session")
        mine_path, mine_id, theirs_path = (
            f"/productions/{mine.slug}",
            mine.id,
            f"/productions/{theirs.slug}",
        )
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
                context = browser.new_context(viewport=viewport, locale="fr-FR")
                page = context.new_page()
                page.set_default_timeout(30_000)
                # A visitor sees no Edit link on anybody's page.
                page.goto(url + mine_path)
                assert page.locator(".owner-tools").count() == 0
                # Signing in from the home page's header lands in the studio.
                page.goto(f"{url}/")
                page.click("header a:has-text('Se connecter')")
                page.fill("#login-email", "ines@example.org")
                page.fill("#login-password", FIRST)
                submit(page, "form:has(#login-email)")
                page.wait_for_url(f"{url}/studio")
                # Their own page has the Edit link, which leads to the edit page.
                response = page.goto(url + mine_path)
                assert response is not None
                assert response.headers["cache-control"] == "private, no-store"
                screenshot(page, f"production-owner-{name}")
                page.click(".owner-tools a:has-text('Modifier')")
                page.wait_for_url(f"{url}/studio/productions/{mine_id}")
                # Another artist's page has none.
                page.goto(url + theirs_path)
                assert page.locator(".owner-tools").count() == 0
                context.close()
        finally:
            browser.close()
