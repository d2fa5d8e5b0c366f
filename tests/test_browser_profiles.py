"""The artist's profile in a real browser: headless Debian Chromium against a real server.

An admin gives a profile that a credit made to an artist's account (and takes it back, and
gives it again); the artist signs in, is led from the studio to the profile's form, is refused
a link that is no web address (keeping everything typed), sends the form again with a photo,
and the catalogue then shows that photo on their page and their card, their English biography
to an English reader, and their links marked as theirs. At desktop and phone width;
screenshots land in test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cite_live import accounts
from cite_live.catalogue import artist_by_name
from tests.app_fixtures import LiveServer
from tests.media import cover_image

# tests.test_browser skips this module (or fails, in CI) when Chromium or Playwright is missing.
from tests.test_browser import (
    ARTIFACTS,
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    layout_shift,
    playwright_api,
    screenshot,
    watch_csp,
)
from tests.test_pages import publish

PASSWORD = "tuba crêpe nocturne"
BIO = "Les Ondes jouent de la musique électronique au bord de l’Isère."
BIO_EN = "Les Ondes play electronic music on the banks of the Isère."
GOOD_LINKS = "Bandcamp https://lesondes.bandcamp.com/\nhttps://lesondes.example.org/"


def submit(page: Any, form: str = "form.profile-form") -> None:
    page.click(f"{form} button[type=submit]")
    page.wait_for_load_state()


def sign_in(page: Any, url: str, email: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    submit(page, "form:has(#login-email)")


def photo_loaded(page: Any, selector: str) -> bool:
    return bool(page.eval_on_selector(selector, "img => img.complete && img.naturalWidth > 0"))


def test_an_artist_edits_their_profile_with_a_photo_and_the_catalogue_shows_it(
    live_server: LiveServer, tmp_path: Path
) -> None:
    services, url = live_server.services, live_server.url
    with services.sessions.begin() as session:
        # A profile a credit made, then given to the artist's account (as an admin does).
        publish(session, "Nuit des Ondes", artists=[("Les Ondes", "performer")])
        artist = artist_by_name(session, "Les Ondes")
        for email, role in (("ines@example.org", "artist"), ("admin@example.org", "admin")):
            accounts.create_user(
                session, email, role, password=PASSWORD, settings=services.settings
            )
        artist_path, form_path = f"/artists/{artist.slug}", f"/studio/profiles/{artist.id}"
    photo = tmp_path / "portrait.jpg"
    photo.write_bytes(cover_image(900))
    ARTIFACTS.mkdir(exist_ok=True)
    violations: list[str] = []
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for viewport, name in ((DESKTOP, "desktop"), (PHONE, "phone")):
                # The admin gives the profile to Inès (on the phone, after taking it back).
                admin_context = browser.new_context(viewport=viewport, locale="fr-FR")
                admin = admin_context.new_page()
                admin.set_default_timeout(30_000)
                violations += watch_csp(admin)
                sign_in(admin, url, "admin@example.org")
                admin.goto(f"{url}/admin?profile_q=ondes#profiles")
                row = f"#profile-{artist.id}"
                if admin.locator(f"{row} .profile-row__accounts").count():
                    submit(admin, f"{row} .profile-row__accounts form")
                    assert admin.inner_text(".notice") == "Le profil n’est plus lié au compte."
                    assert admin.locator(f"{row} .profile-row__accounts").count() == 0
                admin.fill(f"{row} input[name=email]", "personne@example.org")
                submit(admin, f"{row} .link-form")
                assert admin.inner_text(f"{row} .field-error") == (
                    "Aucun compte n’a cette adresse e-mail."
                )
                admin.fill(f"{row} input[name=email]", "ines@example.org")
                submit(admin, f"{row} .link-form")
                assert admin.inner_text(".notice") == "Le profil est lié au compte."
                assert "ines@example.org" in admin.inner_text(f"{row} .profile-row__accounts")
                admin.locator(row).scroll_into_view_if_needed()
                screenshot(admin, f"admin-profiles-{name}")
                admin_context.close()

                context = browser.new_context(viewport=viewport, locale="fr-FR")
                page = context.new_page()
                page.set_default_timeout(30_000)
                violations += watch_csp(page)
                sign_in(page, url, "ines@example.org")
                page.wait_for_url(f"{url}/studio")
                # From the studio to the form of the account's only profile.
                page.click("a:has-text('Modifier mon profil d’artiste')")
                page.wait_for_url(url + form_path)

                # A link that is no web address: refused in one sentence, nothing typed lost.
                page.fill("#bio", BIO)
                page.fill("#bio_en", BIO_EN)
                page.fill("#disciplines", "électro, synthétiseurs")
                page.fill("#commune", "Romans-sur-Isère")
                page.fill("#links", f"{GOOD_LINKS}\nSurprise javascript:alert(1)")
                page.set_input_files("#photo", str(photo))
                submit(page)
                assert "La ligne 3 des liens" in page.inner_text("#links-error")
                assert page.get_attribute("#links", "aria-invalid") == "true"
                assert page.input_value("#bio") == BIO
                assert page.input_value("#bio_en") == BIO_EN
                assert page.input_value("#commune") == "Romans-sur-Isère"
                assert page.input_value("#links").endswith("Surprise javascript:alert(1)")
                assert "Choisissez à nouveau votre photo" in page.inner_text(".profile-photo")
                page.locator("#links").scroll_into_view_if_needed()
                screenshot(page, f"profile-refused-{name}")

                page.fill("#links", GOOD_LINKS)
                page.set_input_files("#photo", str(photo))
                submit(page)
                assert page.inner_text(".notice") == "Votre profil est enregistré."
                assert photo_loaded(page, ".profile-photo__image")
                screenshot(page, f"profile-saved-{name}")

                page.click("a:has-text('Voir la page de l’artiste')")
                page.wait_for_url(url + artist_path)
                assert photo_loaded(page, ".artist__photo")
                # Its width and height held its box: nothing moved when it arrived.
                assert layout_shift(page) < 0.001
                assert (
                    page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
                )
                assert page.get_attribute(".artist__photo", "alt") == "Photo de Les Ondes"
                assert page.inner_text(".bio") == BIO
                rels = page.eval_on_selector_all(".links a", "links => links.map(a => a.rel)")
                assert rels == ["me noopener", "me noopener"]
                screenshot(page, f"artist-page-{name}")

                page.goto(f"{url}/artists")
                card = page.locator(".artist-card:has-text('Les Ondes') .artist-card__photo")
                card.scroll_into_view_if_needed()
                page.wait_for_function(
                    "img => img.complete && img.naturalWidth > 0", arg=card.element_handle()
                )
                assert card.get_attribute("loading") == "lazy"
                screenshot(page, f"artist-cards-{name}")
                if name == "phone":
                    # With a second profile, the studio's link leads to a choice of the two.
                    with services.sessions.begin() as session:
                        user = accounts.find_user(session, "ines@example.org")
                        assert user is not None
                        second = artist_by_name(session, "Trio Sable").id
                        accounts.link_artist(session, user.id, second)
                    page.goto(f"{url}/studio")
                    page.click("a:has-text('Modifier mon profil d’artiste')")
                    page.wait_for_url(f"{url}/studio/profiles")
                    assert page.locator(".artist-card").count() == 2
                    screenshot(page, "profile-choice-phone")
                    page.click(".artist-card:has-text('Trio Sable')")
                    page.wait_for_url(f"{url}/studio/profiles/{second}")
                context.close()

                # An English reader, signed in or not, reads the English biography.
                english = browser.new_context(viewport=viewport, locale="en-GB")
                reader = english.new_page()
                violations += watch_csp(reader)
                reader.goto(url + artist_path)
                assert reader.inner_text(".bio") == BIO_EN
                assert photo_loaded(reader, ".artist__photo")
                assert reader.locator(".owner-tools").count() == 0
                screenshot(reader, f"artist-page-english-{name}")
                english.close()
        finally:
            browser.close()
    assert violations == [], "the Content-Security-Policy refused:\n" + "\n".join(violations)
