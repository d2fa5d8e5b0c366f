"""Partner sites in Chromium: embeds that fit a phone's column, a production kept for partners
refused by another site (the card shows in its frame) and played by a listed one, the card of
a private production, and the forms an admin and an artist use, at desktop and phone width.

The partner sites are servers of their own on 127.0.0.1, each on its own port: another origin
than the site's, as a festival's page is.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from cite_live import partners
from cite_live.models import Partner, Production
from tests.account_fixtures import PASSWORD, make_user
from tests.partner_site import PartnerSite, partner_sites

# tests.test_browser skips this module (or fails, in CI) when Chromium, Playwright or the npm
# files are missing: its checks run as it is imported, before Playwright is.
from tests.test_browser import (
    DESKTOP,
    PHONE,
    Catalogue,
    play_muted,
    screenshot,
    wait_until_time,
)

# The fixtures of tests.test_browser (a real video and audio catalogue served on 127.0.0.1,
# Chromium, pages watched for CSP violations), registered here under these names and handed
# on below under their own.
from tests.test_browser import browser as _browser  # noqa: F401
from tests.test_browser import catalogue as _catalogue  # noqa: F401
from tests.test_browser import new_page as _new_page  # noqa: F401
from tests.test_browser import shared_context as _shared_context  # noqa: F401
from tests.test_embeds import fake_production

NARROW = {"width": 320, "height": 640}
WIDE = {"width": 1366, "height": 768}
ADMIN = "admin@example.org"
NORA = "nora@example.org"


@pytest.fixture(scope="module", name="browser")
def chromium(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("_browser")


@pytest.fixture(scope="module", name="shared_context")
def desktop_context(request: pytest.FixtureRequest) -> Any:
    return request.getfixturevalue("_shared_context")


@pytest.fixture(scope="module", name="catalogue")
def served_catalogue(request: pytest.FixtureRequest) -> Catalogue:
    served: Catalogue = request.getfixturevalue("_catalogue")
    return served


@pytest.fixture(name="new_page")
def page_opener(request: pytest.FixtureRequest) -> Callable[..., Any]:
    opener: Callable[..., Any] = request.getfixturevalue("_new_page")
    return opener


@pytest.fixture(scope="module")
def sites() -> Iterator[tuple[PartnerSite, PartnerSite]]:
    """Two sites: the first is made a partner by the tests that need one, the second never."""
    with partner_sites(2) as (listed, stranger):
        yield listed, stranger


@pytest.fixture(scope="module")
def accounts(catalogue: Catalogue) -> Catalogue:
    make_user(catalogue.services, ADMIN, "admin")
    nora = make_user(catalogue.services, NORA, artists=["Chœur Diois"])
    with catalogue.services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == catalogue.audio_id).values(owner_id=nora)
        )
    return catalogue


def set_policy(catalogue: Catalogue, production_id: str, policy: str) -> None:
    with catalogue.services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == production_id).values(embed_policy=policy)
        )


def oembed_html(catalogue: Catalogue, slug: str) -> str:
    response = httpx.get(
        f"{catalogue.url}/oembed",
        params={"url": f"{catalogue.url}/productions/{slug}", "format": "json"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    code: str = response.json()["html"]
    return code


def snippet_of(catalogue: Catalogue, page: Any, slug: str) -> str:
    """The embed code the production page's Share panel gives, as a partner copies it."""
    page.goto(f"{catalogue.url}/productions/{slug}")
    code: str = page.locator("[data-share-code]").input_value()
    return code


def player_in_frame(page: Any) -> Any:
    page.wait_for_selector("iframe")
    page.frame_locator("iframe").locator("[data-player][data-engine]").wait_for(state="attached")
    return next(frame for frame in page.frames if "/embed/" in frame.url)


def card_in_frame(page: Any) -> Any:
    page.wait_for_selector("iframe")
    page.frame_locator("iframe").locator("[data-embed-unavailable]").wait_for()
    return next(frame for frame in page.frames if "/embed/" in frame.url)


def layout(page: Any) -> dict[str, float]:
    measured: dict[str, float] = page.evaluate(
        """() => {
            const frame = document.querySelector("iframe").getBoundingClientRect();
            const root = document.documentElement;
            return {scroll: root.scrollWidth, client: root.clientWidth,
                    width: frame.width, height: frame.height};
        }"""
    )
    return measured


# --- embeds that fit -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["oembed", "snippet"])
@pytest.mark.parametrize("kind", ["video", "audio"])
def test_the_embed_fits_a_phone_column_and_keeps_its_shape(
    catalogue: Catalogue,
    sites: tuple[PartnerSite, PartnerSite],
    new_page: Callable[..., Any],
    kind: str,
    source: str,
) -> None:
    slug = catalogue.video_slug if kind == "video" else catalogue.audio_slug
    code = (
        oembed_html(catalogue, slug)
        if source == "oembed"
        else snippet_of(catalogue, new_page(), slug)
    )
    address = sites[1].page(code)
    for width_name, viewport in (("320", NARROW), ("1366", WIDE)):
        page = new_page(viewport=viewport)
        page.goto(address)
        player_in_frame(page)
        measured = layout(page)
        screenshot(page, f"partners-{source}-{kind}-{width_name}")
        assert measured["scroll"] <= measured["client"], f"{width_name}: {measured}"
        assert measured["width"] <= viewport["width"] - 16
        if width_name == "320":
            assert measured["width"] >= 280, measured
        if source == "oembed":
            assert measured["width"] <= 640, "oEmbed's width is the widest it gets"
        if kind == "video":
            assert abs(measured["width"] * 9 / 16 - measured["height"]) <= 1.5, measured
        else:
            assert measured["height"] == 166, measured


# --- where a production may play -----------------------------------------------------------------


def test_a_production_kept_for_partners_plays_on_a_partner_and_shows_the_card_elsewhere(
    catalogue: Catalogue,
    sites: tuple[PartnerSite, PartnerSite],
    new_page: Callable[..., Any],
) -> None:
    listed, stranger = sites
    services = catalogue.services
    with services.sessions.begin() as session:
        form = partners.PartnerForm("Festival", listed.origin)
        partner_id = partners.save_partner(session, form).id
    set_policy(catalogue, catalogue.video_id, "partners")
    try:
        code = snippet_of(catalogue, new_page(), catalogue.video_slug)
        for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            refused = new_page(viewport=viewport)
            refused.goto(stranger.page(code))
            frame = card_in_frame(refused)
            # The frame's document is the card, not a broken frame nor a player.
            assert frame.url.startswith(f"{catalogue.url}/embed/")
            assert frame.locator("[data-player]").count() == 0
            assert "n’est plus disponible ici" in frame.locator("h1").inner_text()
            link = frame.locator("a")
            assert link.get_attribute("target") == "_blank"
            assert (
                link.get_attribute("href") == f"{catalogue.url}/productions/{catalogue.video_slug}"
            )
            fits = frame.evaluate(
                "() => document.documentElement.scrollHeight <= window.innerHeight"
            )
            assert fits, "the card fits its 16:9 frame"
            screenshot(refused, f"partners-refused-{name}")

        played = new_page(viewport=PHONE)
        played.goto(listed.page(code))
        frame = player_in_frame(played)
        play_muted(frame)
        wait_until_time(frame, 1.0)
        screenshot(played, "partners-played-phone")
    finally:
        set_policy(catalogue, catalogue.video_id, "anywhere")
        with services.sessions.begin() as session:
            session.execute(Partner.__table__.delete().where(Partner.id == partner_id))


def test_without_a_referer_the_browser_still_refuses_a_stranger(
    catalogue: Catalogue, sites: tuple[PartnerSite, PartnerSite], browser: Any
) -> None:
    """A stranger hiding its address gets no card, but no player either: the browser keeps to
    the frame-ancestors the embed sent."""
    stranger = sites[1]
    set_policy(catalogue, catalogue.video_id, "site")
    try:
        src = html.escape(f"{catalogue.url}/embed/{catalogue.video_id}")
        address = stranger.page(
            f'<iframe src="{src}" referrerpolicy="no-referrer" width="320" height="180"></iframe>'
        )
        # Not a watched page: the refusal is the point, and Chromium reports it as a violation.
        context = browser.new_context(viewport=DESKTOP)
        try:
            page = context.new_page()
            page.goto(address)
            page.wait_for_timeout(1500)
            embedded = [frame for frame in page.frames if frame != page.main_frame]
            assert embedded, "the iframe exists"
            assert all(
                frame.locator("[data-player]").count() == 0
                and frame.locator("[data-embed-unavailable]").count() == 0
                for frame in embedded
            )
        finally:
            context.close()
    finally:
        set_policy(catalogue, catalogue.video_id, "anywhere")


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_a_private_production_shows_the_card_in_its_frame(
    catalogue: Catalogue,
    sites: tuple[PartnerSite, PartnerSite],
    new_page: Callable[..., Any],
    kind: str,
) -> None:
    production_id = fake_production(catalogue.services, "Secret", kind=kind, visibility="private")
    height = 166 if kind == "audio" else 360
    src = html.escape(f"{catalogue.url}/embed/{production_id}")
    frame_html = (
        f'<iframe src="{src}" width="640" height="{height}" '
        f'style="border:0;width:100%;max-width:640px"></iframe>'
    )
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(viewport=viewport)
        page.goto(sites[1].page(frame_html))
        frame = card_in_frame(page)
        assert frame.locator("a").get_attribute("href") == f"{catalogue.url}/"
        overflow = frame.evaluate(
            """() => ({height: document.documentElement.scrollHeight, inner: window.innerHeight,
                       width: document.documentElement.scrollWidth, innerW: window.innerWidth})"""
        )
        assert overflow["height"] <= overflow["inner"], overflow
        assert overflow["width"] <= overflow["innerW"], overflow
        screenshot(page, f"partners-card-{kind}-{name}")


# --- the forms -----------------------------------------------------------------------------------


def sign_in(page: Any, catalogue: Catalogue, email: str, then: str) -> None:
    page.goto(f"{catalogue.url}/login?next={then}")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.studio-form button[type=submit]")
    page.wait_for_url(f"{catalogue.url}{then}")


@pytest.mark.parametrize(("name", "viewport"), [("desktop", WIDE), ("phone", PHONE)])
def test_an_admin_keeps_the_partner_sites(
    accounts: Catalogue, new_page: Callable[..., Any], name: str, viewport: dict[str, int]
) -> None:
    catalogue = accounts
    page = new_page(viewport=viewport)
    sign_in(page, catalogue, ADMIN, "/admin")
    page.click("text=Sites partenaires")
    page.wait_for_url(f"{catalogue.url}/admin/partners")
    site_name = f"Festival des Cafés ({name})"
    page.fill("#partner-name", site_name)
    page.fill("#partner-origins", f"https://cafes-{name}.example/programme")
    page.click("text=Ajouter le site partenaire")
    error = page.locator("#partner-error")
    assert "n’est pas l’adresse d’un site" in error.inner_text()
    assert page.input_value("#partner-origins") == f"https://cafes-{name}.example/programme"
    screenshot(page, f"partners-admin-refused-{name}")
    page.fill("#partner-origins", f"HTTPS://Cafes-{name}.example\nhttp://127.0.0.1:8081")
    page.click("text=Ajouter le site partenaire")
    page.wait_for_selector("[role=status]")
    item = page.locator("[data-partner]", has_text=site_name)
    assert item.locator("code").all_inner_texts() == [
        f"https://cafes-{name}.example",
        "http://127.0.0.1:8081",
    ]
    no_scroll = page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )
    assert no_scroll, "the list fits the screen"
    screenshot(page, f"partners-admin-list-{name}")

    item.locator("a").click()
    page.fill("#partner-origins", f"https://cafes-{name}.example")
    screenshot(page, f"partners-admin-edit-{name}")
    page.click("button:has-text('Enregistrer')")
    page.wait_for_selector("[role=status]")
    assert page.locator("[data-partner]", has_text=site_name).locator("code").count() == 1

    page.locator("[data-partner]", has_text=site_name).locator("a").click()
    page.click("button:has-text('Supprimer')")
    page.wait_for_selector("[role=status]")
    assert page.locator("[data-partner]", has_text=site_name).count() == 0
    with catalogue.services.sessions() as session:
        names = session.scalars(select(Partner.name)).all()
    assert site_name not in names


@pytest.mark.parametrize(("name", "viewport"), [("desktop", WIDE), ("phone", PHONE)])
def test_the_artist_chooses_where_the_player_plays(
    accounts: Catalogue, new_page: Callable[..., Any], name: str, viewport: dict[str, int]
) -> None:
    catalogue = accounts
    edit = f"/studio/productions/{catalogue.audio_id}"
    page = new_page(viewport=viewport)
    sign_in(page, catalogue, NORA, edit)
    try:
        choice = page.get_by_label("Sur les sites partenaires seulement")
        choice.scroll_into_view_if_needed()
        assert page.get_by_label("Sur tous les sites").is_checked()
        screenshot(page, f"partners-policy-field-{name}")
        choice.check()
        page.click("form.studio-form button[type=submit]")
        page.wait_for_selector("[role=status]")
        assert page.get_by_label("Sur les sites partenaires seulement").is_checked()
        with catalogue.services.sessions() as session:
            production = session.get(Production, catalogue.audio_id)
            assert production is not None and production.embed_policy == "partners"
        # Its page no longer offers oEmbed to other sites.
        page.goto(f"{catalogue.url}/productions/{catalogue.audio_slug}")
        assert page.locator("link[type='application/json+oembed']").count() == 0
    finally:
        set_policy(catalogue, catalogue.audio_id, "anywhere")


def test_the_share_panel_of_a_production_kept_here_offers_the_link_only(
    catalogue: Catalogue, new_page: Callable[..., Any]
) -> None:
    set_policy(catalogue, catalogue.video_id, "site")
    try:
        page = new_page(viewport={"width": 375, "height": 812})
        page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
        panel = page.locator("[data-share-panel]")
        panel.locator("[data-share-toggle]").click()
        assert panel.locator("[data-share-code]").count() == 0
        assert "pas de code d’intégration" in panel.inner_text()
        # The link's start time still works without the embed's options.
        panel.locator("input[name=start]").check()
        assert panel.locator("[data-share-link]").input_value().endswith(catalogue.video_slug)
        screenshot(page, "share-panel-site-only-phone")
        assert page.js_errors == []
    finally:
        set_policy(catalogue, catalogue.video_id, "anywhere")
