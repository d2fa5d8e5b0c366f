"""Visibility: public is listed everywhere, unlisted is reachable by its link only, private exists
for its owner and the admins alone — everyone else gets the very 404 of a missing production."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from urllib.parse import quote

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from cite_live.app import create_app
from cite_live.models import Production
from cite_live.services import Services
from tests.account_fixtures import login, make_user, token_for
from tests.test_api import publish_fake

VENUE = ("La Cité de la Musique", "la-cite", "Romans-sur-Isère")
MISSING_SLUG = "nothing-at-this-address"
MISSING_ID = "nOtHiNgHeRe"


@dataclass
class World:
    public: str
    unlisted: str
    private: str
    slugs: dict[str, str]


def slug_of(services: Services, production_id: str) -> str:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production.slug


@pytest.fixture
def world(services: Services) -> World:
    """Three concerts by the same artist, at the same venue, with the same tag, one of each
    visibility; the private one belongs to owner@example.org."""
    owner = make_user(services, "owner@example.org", artists=["Élodie Fauré"])
    make_user(services, "other@example.org", artists=["Zoé Martin"])
    make_user(services, "admin@example.org", "admin")
    ids = {}
    for visibility, title in (
        ("public", "Concert Public"),
        ("unlisted", "Concert Lien Seul"),
        ("private", "Concert Secret"),
    ):
        ids[visibility] = publish_fake(
            services,
            title,
            visibility=visibility,
            venue=VENUE,
            tags=("Live",),
            chapters=[("Ouverture", 0.0)],
            download=True,
        )
    with services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == ids["private"]).values(owner_id=owner)
        )
    return World(
        ids["public"],
        ids["unlisted"],
        ids["private"],
        {v: slug_of(services, production_id) for v, production_id in ids.items()},
    )


@pytest.fixture
def app(services: Services) -> object:
    return create_app(services.settings, services)


@pytest.fixture
def anonymous(app: object) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:  # type: ignore[arg-type]
        yield client


def signed_in(app: object, email: str) -> TestClient:
    client = TestClient(app, base_url="http://testserver")  # type: ignore[arg-type]
    login(client, email)
    return client


LISTINGS = (
    "/",
    "/search?q=concert",
    "/artists/elodie-faure",
    "/venues/la-cite",
    "/tags/live",
    "/api/v1/productions",
    "/api/v1/productions?q=concert",
    "/api/v1/productions?artist=elodie-faure",
    "/api/v1/artists/elodie-faure",
    "/feed.atom",
    "/artists/elodie-faure/feed.atom",
    "/podcast.rss",
)


@pytest.mark.parametrize("who", ["anonymous", "owner@example.org", "admin@example.org"])
def test_only_public_productions_are_listed_whoever_asks(
    app: object, world: World, anonymous: TestClient, who: str
) -> None:
    client = anonymous if who == "anonymous" else signed_in(app, who)
    for path in LISTINGS:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "Concert Public" in response.text, path
        assert "Concert Lien Seul" not in response.text, path
        assert "Concert Secret" not in response.text, path
    # The public concert's page suggests the artist's other sessions: never these two.
    page = client.get(f"/productions/{world.slugs['public']}").text
    assert "Concert Lien Seul" not in page and "Concert Secret" not in page


def test_counts_on_indexes_leave_out_unlisted_and_private(
    anonymous: TestClient, world: World
) -> None:
    def counts(path: str) -> list[str]:
        return re.findall(r'<span class="count">([^<]*)</span>', anonymous.get(path).text)

    # One session at the venue, under the tag, on the home page: never three.
    assert counts("/venues") == ["1 session"]
    assert counts("/tags") == ["1 session"]
    assert set(counts("/")) == {"1 session"}
    assert "1 session" in anonymous.get("/").text
    assert anonymous.get("/api/v1/productions").json()["total"] == 1
    assert anonymous.get("/api/v1/artists/elodie-faure").json()["productions_total"] == 1


def test_an_unlisted_production_is_reachable_by_its_link_and_kept_out_of_search_engines(
    anonymous: TestClient, world: World
) -> None:
    slug = world.slugs["unlisted"]
    page = anonymous.get(f"/productions/{slug}")
    assert page.status_code == 200
    assert '<meta name="robots" content="noindex">' in page.text
    assert anonymous.get(f"/api/v1/productions/{world.unlisted}").status_code == 200
    assert anonymous.get(f"/embed/{world.unlisted}").status_code == 200
    assert anonymous.get(f"/productions/{slug}/chapters.vtt").status_code == 200
    page_url = quote(f"http://testserver/productions/{slug}", safe="")
    assert anonymous.get(f"/oembed?url={page_url}").status_code == 200
    public_page = anonymous.get(f"/productions/{world.slugs['public']}").text
    assert 'name="robots"' not in public_page


def private_urls(world: World) -> dict[str, tuple[str, str]]:
    """What a private production answers at, beside the same address for nothing at all."""
    slug, production_id = world.slugs["private"], world.private

    def oembed(target: str) -> str:
        return "/oembed?url=" + quote(f"http://testserver/productions/{target}", safe="")

    return {
        "page": (f"/productions/{slug}", f"/productions/{MISSING_SLUG}"),
        "chapters": (
            f"/productions/{slug}/chapters.vtt",
            f"/productions/{MISSING_SLUG}/chapters.vtt",
        ),
        "api": (f"/api/v1/productions/{production_id}", f"/api/v1/productions/{MISSING_ID}"),
        "embed": (f"/embed/{production_id}", f"/embed/{MISSING_ID}"),
        "oembed": (oembed(slug), oembed(MISSING_SLUG)),
    }


def _same_404(private: str, missing: str, world: World) -> bool:
    # Error pages link back to the page asked for (language switch, sign-in): the address may
    # differ, nothing else.
    def norm(text: str) -> str:
        for name in (world.slugs["private"], world.private, MISSING_SLUG, MISSING_ID):
            text = text.replace(quote(name, safe=""), "X").replace(name, "X")
        return text

    return norm(private) == norm(missing)


@pytest.mark.parametrize("who", ["anonymous", "other@example.org"])
def test_a_private_production_is_a_missing_one_for_everyone_else(
    app: object, anonymous: TestClient, world: World, who: str
) -> None:
    client = anonymous if who == "anonymous" else signed_in(app, who)
    for what, (url, missing_url) in private_urls(world).items():
        refused, missing = client.get(url), client.get(missing_url)
        assert refused.status_code == missing.status_code == 404, what
        assert _same_404(refused.text, missing.text, world), what
        assert refused.headers.get("content-type") == missing.headers.get("content-type"), what


@pytest.mark.parametrize("who", ["owner@example.org", "admin@example.org"])
def test_its_owner_and_the_admins_see_a_private_production(
    app: object, world: World, who: str
) -> None:
    client = signed_in(app, who)
    statuses = {what: client.get(url).status_code for what, (url, _) in private_urls(world).items()}
    # oEmbed answers partner sites' servers, which never speak for a signed-in viewer.
    assert statuses == {"page": 200, "chapters": 200, "api": 200, "embed": 200, "oembed": 404}


def test_a_bearer_token_sees_a_private_production_of_its_account(
    services: Services, anonymous: TestClient, world: World
) -> None:
    token = token_for(services, "owner@example.org")
    url = f"/api/v1/productions/{world.private}"
    response = anonymous.get(url, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["hls_url"].startswith("http://testserver/media/private/")
    other = token_for(services, "other@example.org")
    assert anonymous.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 404


def test_a_private_page_is_for_one_viewer_only(app: object, world: World) -> None:
    owner = signed_in(app, "owner@example.org")
    page = owner.get(f"/productions/{world.slugs['private']}")
    assert page.headers["cache-control"] == "private, no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert '<meta name="robots" content="noindex">' in page.text
    # Nothing to preview or share: no Open Graph, no structured data, no share panel.
    assert 'property="og:' not in page.text and "application/ld+json" not in page.text
    assert "data-share-panel" not in page.text
    assert "/media/private/" in page.text
    assert f"/media/productions/{world.private}/" not in page.text
    embed = owner.get(f"/embed/{world.private}")
    assert embed.headers["cache-control"] == "private, no-store"
    assert "frame-ancestors 'self';" in embed.headers["content-security-policy"] + ";"
    api = owner.get(f"/api/v1/productions/{world.private}")
    assert api.headers["cache-control"] == "private, no-store"
    chapters = owner.get(f"/productions/{world.slugs['private']}/chapters.vtt")
    assert chapters.headers["cache-control"] == "private, no-store"
    assert "access-control-allow-origin" not in chapters.headers


def test_productions_in_processing_or_failed_keep_their_page(
    services: Services, anonymous: TestClient
) -> None:
    processing = publish_fake(services, "En Cours", status="processing")
    failed = publish_fake(services, "Raté", status="failed")
    for production_id, status in ((processing, "processing"), (failed, "failed")):
        slug = slug_of(services, production_id)
        assert anonymous.get(f"/productions/{slug}").status_code == 200
        body = anonymous.get(f"/api/v1/productions/{production_id}").json()
        assert body["status"] == status and body["hls_url"] is None


def test_making_a_production_private_takes_it_away_at_once(
    services: Services, anonymous: TestClient, world: World
) -> None:
    slug = world.slugs["public"]
    assert anonymous.get(f"/productions/{slug}").status_code == 200
    with services.sessions.begin() as session:
        production = session.get(Production, world.public)
        assert production is not None
        production.visibility = "private"
    assert anonymous.get(f"/productions/{slug}").status_code == 404
    assert anonymous.get(f"/media/productions/{world.public}/j1/master.m3u8").status_code == 404
    assert "Concert Public" not in anonymous.get("/api/v1/productions").text


# --- the page cache ------------------------------------------------------------------------------


def test_the_page_cache_never_serves_a_private_page_or_a_managers_view(
    services: Services, world: World
) -> None:
    app = create_app(replace(services.settings, page_cache_seconds=60), services)
    with TestClient(app, base_url="http://testserver") as anonymous:
        owner = signed_in(app, "owner@example.org")
        private_page = f"/productions/{world.slugs['private']}"
        public_page = f"/productions/{world.slugs['public']}"
        api = f"/api/v1/productions/{world.private}"
        # The owner goes first, so that anything kept from those answers would show below.
        for url in (private_page, public_page, api, "/"):
            response = owner.get(url)
            assert response.status_code == 200 and "x-cache" not in response.headers, url
        token = token_for(services, "owner@example.org")
        assert anonymous.get(api, headers={"Authorization": f"Bearer {token}"}).status_code == 200

        assert anonymous.get(private_page).status_code == 404
        assert anonymous.get(api).status_code == 404
        for url in (public_page, "/"):
            first, second = anonymous.get(url), anonymous.get(url)
            assert first.headers["x-cache"] == "miss" and second.headers["x-cache"] == "hit"
            for response in (first, second):
                assert 'name="csrf-token"' not in response.text
                assert 'href="/account"' not in response.text
        # And the other way round: a kept anonymous page is not what a signed-in owner gets.
        assert "x-cache" not in owner.get(public_page).headers
        assert 'href="/account"' in owner.get(public_page).text
