"""An artist's whole journey in a real browser: headless Debian Chromium, a real server, a real
SMTP server (aiosmtpd), Uppy over tus, the embedded job workers.

Invited by an administrator from the admin page, the artist opens the link of the message,
chooses a password, lands in the studio, uploads a capture (a draft nobody else sees), edits it
(titles in both languages, credits, setlist, a cover, all kept by one save), publishes it
(everyone sees it: home page, API, feeds), renames it (the old address answers 301), makes it
private (a visitor gets a 404), forgets the password, gets a new one by email and signs in
with it. Once at desktop width, once on a phone; each run has its own server, database,
mailbox and artist. Screenshots land in test-artifacts/ as journey-<width>-<step>.png.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from cite_live.jobs import doorbell
from cite_live.mail import SmtpMailer, parse_smtp_url
from cite_live.services import Services, open_services
from tests.account_fixtures import make_user
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url
from tests.mailbox import Mailbox, link_in, start_mailbox

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PLAY_TIMEOUT_MS,
    assert_plays_two_seconds,
    play_muted,
    playwright_api,
    screenshot,
    wait_for_engine,
    watch_csp,
)
from tests.test_browser_studio import image_file, image_loaded
from tests.test_browser_upload import send_chosen_files, start_workers, uploader_ready

ADMIN = "admin@example.org"
ADMIN_PASSWORD = "tuba crêpe nocturne"
ARTIST = "Nora Ilić"
FIRST = "hautbois d'amour en avril"
SECOND = "cornemuse lunaire du Vercors"
UPLOADED = "Répétition au Cargo"
TITLE = "Nuit au Cargo"
TITLE_EN = "Night at the Cargo"
RENAMED = "Nuit au Cargo, second set"
WIDTHS = {
    "desktop": {"viewport": {"width": 1366, "height": 768}},
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
}
# The colour of an image's centre pixel, as drawn (same origin: the canvas is readable).
CENTRE_PIXEL = """(selector) => {
    const img = document.querySelector(selector);
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const context = canvas.getContext("2d");
    context.drawImage(img, 0, 0);
    const [r, g, b] = context.getImageData(img.naturalWidth / 2, img.naturalHeight / 2, 1, 1).data;
    return [r, g, b];
}"""
# Transcoding on a loaded machine with two cores: generous, and waited for, never slept.
TRANSCODE_TIMEOUT_MS = 240_000


@dataclass
class Site:
    url: str
    services: Services
    mailbox: Mailbox


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """A server of its own with an administrator, a mailbox, and the jobs queue attached
    without workers: the upload waits in the list until the test starts them."""
    mailbox, controller = start_mailbox()
    services = open_services(make_settings(tmp_path / "data", sqlite_url(tmp_path)))
    services.mailer = SmtpMailer(parse_smtp_url(mailbox.url))
    make_user(services, ADMIN, "admin", password=ADMIN_PASSWORD)
    queue = doorbell.open_queue(services, workers=False)
    try:
        with serving(services) as url:
            yield Site(url, services, mailbox)
    finally:
        if services.queue is not None:
            services.queue.close()  # type: ignore[attr-defined]
        queue.close()
        services.close()
        controller.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


class Person:
    """A browser of one's own (cookies and all), in French, whose page is watched for script
    errors and Content-Security-Policy violations."""

    def __init__(self, browser: Any, width: str) -> None:
        self.context = browser.new_context(locale="fr-FR", **WIDTHS[width])
        self.page = self.context.new_page()
        self.page.set_default_timeout(PLAY_TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.violations = watch_csp(self.page)

    def close(self) -> None:
        self.context.close()
        assert self.errors == [], self.errors
        assert self.violations == [], "the Content-Security-Policy refused:\n" + "\n".join(
            self.violations
        )


def submit(page: Any, form: str, button: str = "button[type=submit]") -> None:
    page.click(f"{form} {button}")
    page.wait_for_load_state()


def notice(page: Any) -> str:
    return str(page.inner_text(".notice"))


def header_link(page: Any, text: str, shot: Callable[[Any], None] | None = None) -> None:
    """Press an account link of the header; on a phone, it is behind the Menu button (then
    ``shot`` is given the page with the menu open)."""
    link = page.locator(f"#site-menu :is(a, button):has-text('{text}')")
    menu = page.locator(".menu-button")
    if page.viewport_size["width"] < 600:
        assert link.is_hidden(), f"{text!r} folded behind the menu on a phone"
        menu.click()
        page.wait_for_selector("#site-menu:popover-open")
        if shot is not None:
            shot(page)
    else:
        assert menu.is_hidden(), "no menu button where everything fits"
    link.click()
    page.wait_for_load_state()


def sign_in(page: Any, url: str, email: str, password: str) -> None:
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    submit(page, "form:has(#login-email)")


def listed(visitor: Any, url: str) -> dict[str, list[str]]:
    """The titles a visitor (without cookies) reads on the home page, in the API and in the
    feeds: where a production is listed for everyone."""
    page = visitor.page
    page.goto(f"{url}/")
    home = [t.strip() for t in page.locator("main .card__title").all_inner_texts()]
    api = visitor.context.request.get(f"{url}/api/v1/productions")
    assert api.ok
    titles = {
        "home": home,
        "api": [item["title"] for item in api.json()["items"]],
    }
    for feed in ("feed.atom", "podcast.rss"):
        answer = visitor.context.request.get(f"{url}/{feed}")
        assert answer.ok, feed
        titles[feed] = answer.text()
    return titles


def assert_listed(visitor: Any, url: str, title: str, present: bool) -> None:
    titles = listed(visitor, url)
    for where, seen in titles.items():
        found = any(title in t for t in seen) if isinstance(seen, list) else title in seen
        assert found == present, f"{title!r} {'missing from' if present else 'in'} {where}"


def message_to(mailbox: Mailbox, count: int, email: str, subject: str) -> EmailMessage:
    message = mailbox.wait(count)[-1]
    assert (message["To"], message["Subject"]) == (email, subject)
    return message


@pytest.mark.parametrize("width", list(WIDTHS))
def test_an_invited_artist_uploads_publishes_renames_hides_and_resets_the_password(
    site: Site, browser: Any, media: Callable[[str], Path], tmp_path: Path, width: str
) -> None:
    url, mailbox = site.url, site.mailbox
    email = f"nora-{width}@example.org"
    people: list[Person] = []

    def person() -> Person:
        people.append(Person(browser, width))
        return people[-1]

    def shot(page: Any, step: str) -> None:
        screenshot(page, f"journey-{width}-{step}")

    # --- The administrator invites the artist from the admin page, by email. -----------------
    admin = person().page
    admin.goto(f"{url}/login?next=/admin")
    sign_in(admin, url, ADMIN, ADMIN_PASSWORD)
    admin.wait_for_url(f"{url}/admin")
    admin.fill("#invite-email", email)
    admin.fill("#invite-artists", ARTIST)
    admin.select_option("#invite-lang", "fr")
    admin.locator("#invite-email").scroll_into_view_if_needed()
    shot(admin, "01-admin-invites")
    submit(admin, "form:has(#invite-email)")
    assert admin.inner_text("h1") == f"Compte créé pour {email}"
    assert admin.inner_text("[data-mailed=sent]") == (
        f"L’invitation a été envoyée par e-mail à {email}."
    )
    shot(admin, "02-admin-invitation-sent")

    # --- The artist opens the link of the message received and chooses a password. ----------
    invitation = message_to(mailbox, 1, email, "Votre invitation sur Cité Live")
    assert link_in(invitation) == admin.inner_text("[data-invitation-link]")
    artist_person = person()
    artist = artist_person.page
    artist.goto(link_in(invitation))
    assert artist.inner_text("h1") == "Bienvenue sur Cité Live"
    assert email in artist.inner_text(".lede")
    artist.fill("#invite-password", FIRST)
    artist.fill("#invite-confirm", FIRST)
    shot(artist, "03-invitation-password")
    submit(artist, "form[action^='/invite/']")

    # --- In the studio: a capture uploaded through Uppy, a title, "public" chosen. -----------
    artist.wait_for_url(f"{url}/studio")
    assert artist.inner_text("h1") == "Mes productions"
    assert artist.inner_text("#list-title") == "0 production"
    uploader_ready(artist)
    assert (
        artist.evaluate("() => document.documentElement.scrollWidth")
        <= (artist.viewport_size["width"])
    ), "the studio fits without sideways scrolling"
    shot(artist, "04-studio")
    artist.set_input_files(".uppy-Dashboard-input >> nth=0", str(media("mp3_id3v24_apic")))
    title = artist.locator("#uppy-Dashboard-FileCard-input-title")
    choice = artist.locator("#uppy-Dashboard-FileCard-input-visibility")
    title.fill(UPLOADED)
    choice.select_option("public")
    shot(artist, "05-upload-card")
    # The card's buttons stay within the screen: on a phone they wrap, never run off its edge.
    for button in artist.locator(".uppy-Dashboard-FileCard-actionsBtn").all():
        box = button.bounding_box()
        assert box is not None and box["x"] + box["width"] <= WIDTHS[width]["viewport"]["width"], (
            box
        )
    artist.click(".uppy-Dashboard-FileCard-actionsBtn:has-text('Sauvegarder les modifications')")
    # Sent at 100 %; the production is in the list, a draft waiting for a worker.
    row = send_chosen_files(artist)
    assert UPLOADED in row.inner_text()
    row.scroll_into_view_if_needed()
    shot(artist, "06-uploaded-waiting")
    start_workers(site.services)
    artist.wait_for_selector('.studio-item[data-state="ready"]', timeout=TRANSCODE_TIMEOUT_MS)
    assert "Prête" in row.inner_text() and "Brouillon" in row.inner_text()
    row.scroll_into_view_if_needed()
    shot(artist, "07-ready-draft")

    # A draft: nobody else finds it, on the home page, in the API or in the feeds.
    visitor = person()
    assert_listed(visitor, url, UPLOADED, present=False)
    assert "Aucune production n’a encore été publiée." in visitor.page.inner_text("main")
    shot(visitor.page, "08-visitor-home-empty")

    # --- Edited: both titles, credits, setlist and a cover, kept by one save. ----------------
    row.locator("a:has-text('Modifier')").click()
    artist.wait_for_selector("form.studio-form #setlist")
    edit_url = artist.url
    assert "Brouillon" in artist.inner_text(".page-header")
    artist.fill("#title", TITLE)
    artist.fill("#title_en", TITLE_EN)
    assert artist.input_value(".credit-row >> nth=0 >> input") == ARTIST
    artist.fill(".credit-row >> nth=1 >> input", "Paul Vercors")
    artist.select_option(".credit-row >> nth=1 >> select", "composer")
    artist.fill("#setlist", "0:00 Ouverture\n0:03 Rappel")
    # cover.js (a module, run once the page is parsed) listens for the file chosen.
    artist.wait_for_selector("[data-cover-preview]", state="attached")
    artist.set_input_files("#cover", str(image_file(tmp_path / "pochette.png", (200, 30, 30))))
    assert image_loaded(artist, "[data-cover-preview]")
    shot(artist, "09-edit-cover-chosen")
    submit(artist, "form.studio-form", "button[type=submit]:has-text('Enregistrer le brouillon')")
    artist.wait_for_url(f"{edit_url}?done=saved")
    assert notice(artist) == "Enregistré."
    assert artist.inner_text("h1") == TITLE
    assert (artist.input_value("#title"), artist.input_value("#title_en")) == (TITLE, TITLE_EN)
    assert artist.input_value(".credit-row >> nth=1 >> input") == "Paul Vercors"
    assert artist.input_value(".credit-row >> nth=1 >> select") == "composer"
    assert artist.input_value("#setlist") == "0:00 Ouverture\n0:03 Rappel"
    assert image_loaded(artist, "img.studio-cover__image:not([data-cover-preview])")
    assert (
        artist.get_attribute("img.studio-cover__image:not([data-cover-preview])", "alt")
        == "L’image actuelle"
    )
    assert "Brouillon" in artist.inner_text(".page-header"), "saved, still a draft"
    shot(artist, "10-edit-saved-cover")
    artist.locator(".notice").scroll_into_view_if_needed()
    shot(artist, "10-edit-saved")
    assert_listed(visitor, url, TITLE, present=False)

    # --- Published: everyone finds it, and it plays. ------------------------------------------
    publish = artist.locator("button[name=action][value=publish]")
    publish.scroll_into_view_if_needed()
    publish.click()
    artist.wait_for_selector(".notice:has-text('Publiée.')")
    assert "Brouillon" not in artist.inner_text(".page-header")
    assert artist.inner_text(".page-header .visibility") == "Publique"
    assert artist.input_value("#title_en") == TITLE_EN
    shot(artist, "11-published")
    assert_listed(visitor, url, TITLE, present=True)
    api = visitor.context.request.get(f"{url}/api/v1/productions").json()["items"]
    assert [(item["title"], item["title_en"]) for item in api] == [(TITLE, TITLE_EN)]
    # Its card wears the cover chosen (red), not the picture of the recording.
    assert image_loaded(visitor.page, "main .card__image")
    assert visitor.page.evaluate(CENTRE_PIXEL, "main .card__image") == pytest.approx(
        [200, 30, 30], abs=8
    )
    shot(visitor.page, "12-visitor-home-published")
    visitor.page.click(f"main a:has-text('{TITLE}')")
    visitor.page.wait_for_url(f"{url}/productions/nuit-au-cargo")
    # A swap (Turbo Drive): the address changes first, the page follows.
    visitor.page.wait_for_selector(f"h1:has-text('{TITLE}')")
    assert visitor.page.inner_text("h1") == TITLE
    shown = visitor.page.inner_text("main")
    assert "Paul Vercors" in shown and "Rappel" in shown
    wait_for_engine(visitor.page)
    play_muted(visitor.page)
    assert_plays_two_seconds(visitor.page)
    shot(visitor.page, "13-visitor-production-plays")

    # --- Renamed: the old address leads to the new one, for good. -----------------------------
    artist.fill("#title", RENAMED)
    submit(artist, "form.studio-form", "button[type=submit]:has-text('Enregistrer')")
    artist.wait_for_url(f"{edit_url}?done=saved")
    assert notice(artist) == "Enregistré." and artist.inner_text("h1") == RENAMED
    old, new = f"{url}/productions/nuit-au-cargo", f"{url}/productions/nuit-au-cargo-second-set"
    moved = visitor.context.request.get(old, max_redirects=0)
    assert (moved.status, moved.headers["location"]) == (301, new.removeprefix(url))
    visitor.page.goto(old)
    visitor.page.wait_for_url(new)
    assert visitor.page.inner_text("h1") == RENAMED
    shot(visitor.page, "14-visitor-old-address-moved")

    # --- Made private: a visitor finds it nowhere, its page is a 404. -------------------------
    artist.check("input[name=visibility][value=private]")
    submit(artist, "form.studio-form", "button[type=submit]:has-text('Enregistrer')")
    artist.wait_for_url(f"{edit_url}?done=saved")
    assert notice(artist) == "Enregistré."
    assert artist.inner_text(".page-header .visibility") == "Privée"
    artist.locator(".page-header").scroll_into_view_if_needed()
    shot(artist, "15-made-private")
    stranger = person().page
    for address in (new, old):
        answer = stranger.goto(address)
        assert answer is not None and answer.status == 404, address
        assert stranger.inner_text("h1") == "Cette page est introuvable"
    shot(stranger, "16-stranger-private-404")
    assert_listed(visitor, url, RENAMED, present=False)

    # --- Password forgotten: asked for from the sign-in page, received, chosen. ---------------
    header_link(artist, "Se déconnecter", lambda page: shot(page, "17-menu-open"))
    artist.wait_for_url(f"{url}/")
    artist.goto(f"{url}/studio")
    artist.wait_for_url(f"{url}/login?next=%2Fstudio")
    artist.click("text=Mot de passe oublié ?")
    artist.wait_for_url(f"{url}/login/forgot")
    artist.fill("#forgot-email", email)
    submit(artist, "form:has(#forgot-email)")
    assert notice(artist).startswith("Si un compte existe pour cette adresse")
    shot(artist, "18-password-forgot-sent")
    reset = message_to(mailbox, 2, email, "Choisissez un nouveau mot de passe pour Cité Live")
    artist.goto(link_in(reset))
    artist.fill("#reset-password", SECOND)
    artist.fill("#reset-confirm", SECOND)
    shot(artist, "19-password-reset")
    submit(artist, "form[action^='/login/reset/']")
    artist.wait_for_url(f"{url}/studio?done=password_chosen")
    assert notice(artist).startswith("Votre nouveau mot de passe est enregistré")

    # --- Signed in with the new password (the old one is refused), the production there. -----
    header_link(artist, "Se déconnecter")
    artist.wait_for_url(f"{url}/")
    artist.goto(f"{url}/login")
    sign_in(artist, url, email, FIRST)
    assert notice(artist) == "L’adresse e-mail ou le mot de passe est incorrect."
    sign_in(artist, url, email, SECOND)
    artist.wait_for_url(f"{url}/studio")
    assert artist.inner_text("h1") == "Mes productions"
    mine = artist.locator(".studio-item").first
    assert RENAMED in mine.inner_text() and "Privée" in mine.inner_text()
    mine.scroll_into_view_if_needed()
    shot(artist, "20-signed-in-again")
    for someone in people:
        someone.close()
