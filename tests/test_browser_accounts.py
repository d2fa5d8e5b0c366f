"""The account forms in a real browser: headless Debian Chromium against a real server.

A browser sends what a test client does not: an Origin header on every form, "null" under a
referrer policy that withholds it. So each account form is submitted here once for real, from
an invitation to a new password. Screenshots land in test-artifacts/.
"""

from __future__ import annotations

from typing import Any

from cite_live import accounts
from cite_live.catalogue import artist_by_name
from tests.account_fixtures import make_user
from tests.app_fixtures import LiveServer
from tests.mailbox import Mailbox, html_of, link_in

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


def person(browser: Any, viewport: dict[str, int]) -> tuple[Any, Any]:
    """A browser of its own (cookies and all) and its page, in French."""
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(30_000)
    return context, page


def test_mailed_invitations_and_forgotten_passwords_work_in_a_browser(
    live_server: LiveServer, mail_services: Mailbox
) -> None:
    """As an admin, invite by email; as the invited person, open the link of the message and
    choose a password; having forgotten it, ask for a new one from the sign-in page, open the
    link of that message and choose it; sign in elsewhere with it; then sign out of all
    devices. At desktop and phone width."""
    services, url = live_server.services, live_server.url
    make_user(services, "admin@example.org", "admin", password=FIRST)
    ARTIFACTS.mkdir(exist_ok=True)
    received = 0
    reset_action = "Choisir un nouveau mot de passe"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
                email = f"ines-{name}@example.org"

                # The admin invites by email.
                admin_context, admin = person(browser, viewport)
                admin.goto(f"{url}/login?next=/admin")
                admin.fill("#login-email", "admin@example.org")
                admin.fill("#login-password", FIRST)
                submit(admin, "form:has(#login-email)")
                admin.wait_for_url(f"{url}/admin")
                admin.fill("#invite-email", email)
                admin.fill("#invite-artists", "Les Ondes")
                admin.select_option("#invite-lang", "fr")
                submit(admin, "form:has(#invite-email)")
                assert admin.locator("[data-mailed=sent]").is_visible()
                shown = admin.inner_text("[data-invitation-link]")
                screenshot(admin, f"admin-invitation-mailed-{name}")
                admin_context.close()

                # The invited person opens the link of the message.
                received += 1
                invitation = mail_services.wait(received)[-1]
                assert invitation["To"] == email
                assert link_in(invitation) == shown
                invited_context, invited = person(browser, viewport)
                invited.goto(link_in(invitation))
                invited.fill("#invite-password", FIRST)
                invited.fill("#invite-confirm", FIRST)
                submit(invited, "form[action^='/invite/']")
                invited.wait_for_url(f"{url}/studio")

                # Forgotten: asked for from the sign-in page of another browser.
                forgetful_context, forgetful = person(browser, viewport)
                forgetful.goto(f"{url}/login")
                forgetful.click("text=Mot de passe oublié ?")
                forgetful.wait_for_url(f"{url}/login/forgot")
                forgetful.fill("#forgot-email", email)
                screenshot(forgetful, f"password-forgot-{name}")
                submit(forgetful, "form:has(#forgot-email)")
                assert notice(forgetful).startswith("Si un compte existe pour cette adresse")
                screenshot(forgetful, f"password-forgot-sent-{name}")
                received += 1
                reset = mail_services.wait(received)[-1]
                assert reset["To"] == email
                assert reset["Subject"] == "Choisissez un nouveau mot de passe pour Cité Live"
                # The message as a mail reader shows it (a page of no site, whose policy would
                # drop its inline styles), its button leading to the form.
                reader = forgetful_context.new_page()
                reader.set_content(html_of(reset))
                screenshot(reader, f"password-reset-message-{name}")
                reader.click(f"a:has-text('{reset_action}')")
                reader.wait_for_url(link_in(reset))
                forgetful.close()
                forgetful = reader
                forgetful.fill("#reset-password", SECOND)
                forgetful.fill("#reset-confirm", SECOND + "!")
                submit(forgetful, "form[action^='/login/reset/']")
                assert notice(forgetful) == "Les deux mots de passe ne sont pas identiques."
                forgetful.fill("#reset-password", SECOND)
                forgetful.fill("#reset-confirm", SECOND)
                screenshot(forgetful, f"password-reset-{name}")
                submit(forgetful, "form[action^='/login/reset/']")
                forgetful.wait_for_url(f"{url}/studio?done=password_chosen")
                assert notice(forgetful).startswith("Votre nouveau mot de passe est enregistré")
                screenshot(forgetful, f"password-reset-done-{name}")

                # The browser signed in before is signed out; the link is spent.
                invited.goto(f"{url}/account")
                invited.wait_for_url(f"{url}/login?next=%2Faccount")
                invited.goto(link_in(reset))
                assert "a expiré ou a déjà servi" in notice(invited)
                invited.click("text=Demander un nouveau lien")
                invited.wait_for_url(f"{url}/login/forgot")

                # Signed in again elsewhere with the new password.
                invited.goto(f"{url}/login?next=/account")
                invited.fill("#login-email", email)
                invited.fill("#login-password", SECOND)
                submit(invited, "form:has(#login-email)")
                invited.wait_for_url(f"{url}/account")

                # Two devices on the account page; signing out of all ends both.
                forgetful.goto(f"{url}/account")
                devices = forgetful.locator("[data-devices] tbody tr")
                assert devices.count() == 2
                assert forgetful.locator("tr[data-this-device] .badge").inner_text() == (
                    "Cet appareil"
                )
                forgetful.locator("#devices-title").scroll_into_view_if_needed()
                screenshot(forgetful, f"account-devices-{name}")
                forgetful.click("button:has-text('Se déconnecter de tous les appareils')")
                forgetful.wait_for_url(f"{url}/login?done=signed_out_everywhere")
                assert notice(forgetful) == "Tous vos appareils sont déconnectés."
                screenshot(forgetful, f"signed-out-everywhere-{name}")
                invited.goto(f"{url}/account")
                invited.wait_for_url(f"{url}/login?next=%2Faccount")
                invited_context.close()
                forgetful_context.close()
        finally:
            browser.close()
