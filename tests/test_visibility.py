"""Visibility: public is listed everywhere, unlisted is reachable by its link only, private exists
for its owner and the admins alone — everyone else gets the very 404 of a missing production."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from alembic import command
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from cite_live.catalogue import create_production
from cite_live.db import alembic_config, make_engine, make_sessionmaker, migrate
from cite_live.models import Production
from cite_live.services import Services, open_services
from cite_live.web.app import create_app
from tests.account_fixtures import login, make_user, token_for
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
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
    assert counts("/venues") == ["1 production"]
    assert counts("/tags") == ["1 production"]
    assert set(counts("/")) == {"1 production"}
    assert "1 production" in anonymous.get("/").text
    assert anonymous.get("/api/v1/productions").json()["total"] == 1
    assert anonymous.get("/api/v1/artists/elodie-faure").json()["productions_total"] == 1


def test_an_unlisted_production_is_reachable_by_its_link_and_kept_out_of_search_engines(
    anonymous: TestClient, world: World
) -> None:
    slug = world.slugs["unlisted"]
    page = anonymous.get(f"/productions/{slug}")
    assert page.status_code == 200
    assert '<meta name="robots" content="noindex">' in page.text
    assert anonymous.get(f"/api/v1/productions/{slug}").status_code == 200
    assert anonymous.get(f"/embed/{slug}").status_code == 200
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


def same_404(refused: str, missing: str, *names: str) -> bool:
    # Error pages link back to the page asked for (language switch, sign-in): the address may
    # differ, nothing else.
    def norm(text: str) -> str:
        for name in (*names, MISSING_SLUG, MISSING_ID):
            text = text.replace(quote(name, safe=""), "X").replace(name, "X")
        return text

    return norm(refused) == norm(missing)


def _same_404(private: str, missing: str, world: World) -> bool:
    return same_404(private, missing, world.slugs["private"], world.private)


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


def test_productions_in_processing_or_failed_are_their_managers_alone(
    app: object, services: Services, anonymous: TestClient
) -> None:
    """The reproduction: a failed production had a public page advertising an oEmbed link that
    answered 404, and JSON-LD without a thumbnail."""
    owner = make_user(services, "owner@example.org")
    make_user(services, "other@example.org")
    make_user(services, "admin@example.org", "admin")
    for status in ("processing", "failed"):
        production_id = publish_fake(
            services, f"Session {status}", status=status, chapters=[("Ouverture", 0.0)]
        )
        with services.sessions.begin() as session:
            production = session.get(Production, production_id)
            assert production is not None
            production.owner_id = owner
        slug = slug_of(services, production_id)
        page_url = quote(f"http://testserver/productions/{slug}", safe="")
        urls = {
            "page": (f"/productions/{slug}", f"/productions/{MISSING_SLUG}"),
            "chapters": (
                f"/productions/{slug}/chapters.vtt",
                f"/productions/{MISSING_SLUG}/chapters.vtt",
            ),
            "api": (f"/api/v1/productions/{production_id}", f"/api/v1/productions/{MISSING_ID}"),
            "embed": (f"/embed/{production_id}", f"/embed/{MISSING_ID}"),
            "oembed": (f"/oembed?url={page_url}", "/oembed?url=http://testserver/productions/x"),
            # publish_fake wrote a playlist under its prefix, as a transcode in progress does.
            "media": (
                f"/media/productions/{production_id}/j1/master.m3u8",
                f"/media/productions/{MISSING_ID}/j1/master.m3u8",
            ),
        }
        for client in (anonymous, signed_in(app, "other@example.org")):
            for what, (url, missing_url) in urls.items():
                refused, missing = client.get(url), client.get(missing_url)
                assert refused.status_code == missing.status_code == 404, (status, what)
                assert refused.headers["content-type"] == missing.headers["content-type"], what
        for who in ("owner@example.org", "admin@example.org"):
            manager = signed_in(app, who)
            page = manager.get(f"/productions/{slug}")
            assert page.status_code == 200
            assert page.headers["cache-control"] == "private, no-store"
            # Shared with nobody: no oEmbed link that would answer 404, no structured data.
            assert "json+oembed" not in page.text and "application/ld+json" not in page.text
            assert '<meta name="robots" content="noindex">' in page.text
            body = manager.get(f"/api/v1/productions/{production_id}").json()
            assert body["status"] == status and body["hls_url"] is None
            assert manager.get(f"/embed/{production_id}").status_code == 200
        for path in LISTINGS:
            assert f"Session {status}" not in anonymous.get(path).text, path


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


# --- addresses -----------------------------------------------------------------------------------

SECRET_SLUG = re.compile(r"good-[A-Za-z0-9_-]{11}")


def test_unlisted_productions_cannot_be_found_by_counting(
    services: Services, anonymous: TestClient
) -> None:
    """The reproduction: /productions/good, good-2 and good-3 all answered 200."""
    public = publish_fake(services, "Good")
    unlisted = [publish_fake(services, "Good", visibility="unlisted") for _ in range(3)]
    assert anonymous.get("/productions/good").status_code == 200
    assert slug_of(services, public) == "good"
    for n in range(2, 30):
        assert anonymous.get(f"/productions/good-{n}").status_code == 404, n
    slugs = [slug_of(services, production_id) for production_id in unlisted]
    # 64 random bits each: 11 URL-safe characters after the words of the title.
    assert all(SECRET_SLUG.fullmatch(slug) for slug in slugs), slugs
    assert len(set(slugs)) == 3
    for slug in slugs:
        assert anonymous.get(f"/productions/{slug}").status_code == 200
        # Nothing shorter than the whole secret opens it.
        assert anonymous.get(f"/productions/{slug[:-1]}").status_code == 404


def test_the_id_of_an_unlisted_production_opens_nothing_but_its_address_does(
    app: object, services: Services, anonymous: TestClient
) -> None:
    """Its id is no secret (listed productions show theirs in the API, feeds and media keys; it
    may have been public once): the API, the embed and oEmbed name it by its secret address."""
    owner = make_user(services, "owner@example.org")
    production_id = publish_fake(services, "Good", visibility="unlisted")
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.owner_id = owner
    slug = slug_of(services, production_id)
    for url in (f"/api/v1/productions/{production_id}", f"/embed/{production_id}"):
        refused = anonymous.get(url)
        missing = anonymous.get(url.replace(production_id, MISSING_ID))
        assert refused.status_code == missing.status_code == 404, url
        assert same_404(refused.text, missing.text, production_id), url

    body = anonymous.get(f"/api/v1/productions/{slug}").json()
    assert body["id"] == production_id
    assert body["page_url"] == f"http://testserver/productions/{slug}"
    assert body["embed_url"] == f"http://testserver/embed/{slug}"
    assert anonymous.get(f"/embed/{slug}").status_code == 200
    page = anonymous.get(f"/productions/{slug}").text
    # The player renews its links from the API, and the share panel hands out the embed: both
    # by the address that opens it.
    assert f'"id": "{slug}"' in page and f"/embed/{slug}" in page
    assert f"/embed/{production_id}" not in page
    page_url = quote(f"http://testserver/productions/{slug}", safe="")
    oembed = anonymous.get(f"/oembed?url={page_url}").json()
    assert f'src="http://testserver/embed/{slug}"' in oembed["html"]
    # Its managers reach it by id too, as the studio does.
    manager = signed_in(app, "owner@example.org")
    assert manager.get(f"/api/v1/productions/{production_id}").status_code == 200
    assert manager.get(f"/embed/{production_id}").status_code == 200


def test_a_production_nobody_else_sees_never_pushes_a_newcomer_to_a_suffix(
    services: Services,
) -> None:
    """The reproduction: a private production holding ``good`` made a new public one
    ``good-2``, telling everyone that something named "good" was hidden there."""
    owner = make_user(services, "owner@example.org")
    hidden = [
        publish_fake(services, "Good", visibility="private"),
        publish_fake(services, "Good", visibility="unlisted"),
        publish_fake(services, "Good", status="failed"),
        publish_fake(services, "Good", status="processing"),
    ]
    with services.sessions.begin() as session:
        session.execute(update(Production).values(owner_id=owner))
    assert slug_of(services, publish_fake(services, "Good")) == "good"
    # What everyone sees still counts.
    assert slug_of(services, publish_fake(services, "Good")) == "good-2"
    assert all(SECRET_SLUG.fullmatch(slug_of(services, p)) for p in hidden)


def set_visibility(services: Services, production_id: str, visibility: str) -> str:
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.visibility = visibility
    return slug_of(services, production_id)


def test_an_address_follows_the_visibility(services: Services, anonymous: TestClient) -> None:
    production_id = publish_fake(services, "Good", chapters=[("Ouverture", 0.0)])

    first_secret = set_visibility(services, production_id, "unlisted")
    assert SECRET_SLUG.fullmatch(first_secret)
    assert anonymous.get("/productions/good").status_code == 404
    assert anonymous.get(f"/productions/{first_secret}").status_code == 200
    # Its plain slug is free again: a newcomer takes it, as if it had never been there.
    newcomer = publish_fake(services, "Good")
    assert slug_of(services, newcomer) == "good"

    assert set_visibility(services, production_id, "public") == "good-2"
    # The link shared while it was unlisted leads to its page, wherever the path went on.
    for path, target in (
        (f"/productions/{first_secret}?t=30", "/productions/good-2?t=30"),
        (f"/productions/{first_secret}/chapters.vtt", "/productions/good-2/chapters.vtt"),
    ):
        moved = anonymous.get(path, follow_redirects=False)
        assert moved.status_code == 301 and moved.headers["location"] == target, path
    assert anonymous.get(f"/embed/{first_secret}").status_code == 200
    assert anonymous.get(f"/api/v1/productions/{first_secret}").json()["id"] == production_id

    # Unlisted again: a new secret; the old one, and the plain slug, lead nowhere.
    second_secret = set_visibility(services, production_id, "unlisted")
    assert SECRET_SLUG.fullmatch(second_secret) and second_secret != first_secret
    for gone in (first_secret, "good-2"):
        assert anonymous.get(f"/productions/{gone}").status_code == 404, gone
        assert anonymous.get(f"/api/v1/productions/{gone}").status_code == 404, gone
        assert anonymous.get(f"/embed/{gone}").status_code == 404, gone
    assert anonymous.get(f"/productions/{second_secret}").status_code == 200

    # Private keeps its (unshared) address; unlisted from there gets a fresh one, so that whoever
    # held the link before it went private stays out.
    assert set_visibility(services, production_id, "private") == second_secret
    assert anonymous.get(f"/productions/{second_secret}").status_code == 404
    third_secret = set_visibility(services, production_id, "unlisted")
    assert third_secret not in (first_secret, second_secret)
    assert anonymous.get(f"/productions/{second_secret}").status_code == 404
    assert anonymous.get(f"/productions/{third_secret}").status_code == 200


def test_guessing_and_counting_find_no_unlisted_production(
    services: Services, anonymous: TestClient
) -> None:
    production_id = publish_fake(services, "Good", visibility="unlisted")
    slug = slug_of(services, production_id)
    secret = slug.removeprefix("good-")
    guesses = [
        "good",
        "good-1",
        "good-2",
        f"good-{secret.swapcase()}",
        f"good-{secret[:-1]}",
        f"good-{secret}-2",
        f"other-{secret}",
        secret,
        production_id,
        f"good-{production_id}",
    ]
    for guess in guesses:
        if guess == slug:
            continue
        assert anonymous.get(f"/productions/{guess}").status_code == 404, guess
        assert anonymous.get(f"/embed/{guess}").status_code == 404, guess
        assert anonymous.get(f"/api/v1/productions/{guess}").status_code == 404, guess
        page_url = quote(f"http://testserver/productions/{guess}", safe="")
        assert anonymous.get(f"/oembed?url={page_url}").status_code == 404, guess
    # Counting identifiers, however they are written, finds nothing and breaks nothing.
    for guess in ["0", "1", "2", "-1", "99999999999999999999", "1e9", "%00", "²"]:
        for url in (f"/api/v1/productions/{guess}", f"/embed/{guess}"):
            assert anonymous.get(url).status_code == 404, url


@pytest.mark.postgres
def test_a_nul_byte_in_an_address_is_a_404_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    """PostgreSQL refuses a NUL in a query: such an address must not reach it (it was a 500)."""
    opened = open_services(make_settings(tmp_path / "data", postgres_url))
    try:
        with TestClient(create_app(opened.settings, opened), raise_server_exceptions=False) as c:
            for url in (
                "/productions/a%00b",
                "/productions/a%00b/chapters.vtt",
                "/api/v1/productions/a%00b",
                "/embed/a%00b",
                "/oembed?url=" + quote("http://testserver/productions/a%00b", safe=""),
            ):
                assert c.get(url).status_code == 404, url
    finally:
        opened.close()


def test_publishing_gives_a_plain_slug_only_to_what_is_listed(services: Services) -> None:
    with services.sessions.begin() as session:
        production = create_production(session, title="Good", filename="good.flac")
        production_id = production.id
        # In processing, seen by its uploader alone.
        assert SECRET_SLUG.fullmatch(production.slug)
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.status = "ready"
    assert slug_of(services, production_id) == "good"


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_migration_moves_every_hidden_production_to_a_secret_address(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    url = sqlite_url(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), "0003")
        rows = {
            # slug: (status, visibility), as the numbering of the old scheme left them.
            "good": ("ready", "public"),
            "good-2": ("ready", "unlisted"),
            "good-3": ("ready", "private"),
            "good-4": ("failed", "public"),
            "good-5": ("processing", "public"),
        }
        now = datetime.now(UTC)
        with engine.begin() as connection:
            for n, (slug, (status, visibility)) in enumerate(rows.items()):
                connection.execute(
                    text(
                        "INSERT INTO productions (id, slug, title, title_is_placeholder, kind,"
                        " status, description, visibility, created_at, updated_at)"
                        " VALUES (:id, :slug, 'Good', false, 'audio', :status, '', :visibility,"
                        " :now, :now)"
                    ),
                    {
                        "id": f"p{n}",
                        "slug": slug,
                        "status": status,
                        "visibility": visibility,
                        "now": now,
                    },
                )
        migrate(engine)
        with engine.connect() as connection:
            slugs = dict(connection.execute(text("SELECT id, slug FROM productions")).all())
    finally:
        engine.dispose()
    assert slugs["p0"] == "good"
    for n, old in enumerate(rows):
        if n:
            assert re.fullmatch(rf"{old}-[A-Za-z0-9_-]{{11}}", slugs[f"p{n}"]), slugs
    assert len(set(slugs.values())) == len(rows)


@pytest.mark.postgres
def test_two_productions_listed_at_once_never_take_the_same_slug(postgres_url: str) -> None:
    """Two workers publishing a "Good" at the same moment: the second waits for the first to
    commit, then sees what it chose, rather than failing on the unique slug."""
    engine = make_engine(postgres_url)
    try:
        migrate(engine)
        sessions = make_sessionmaker(engine)
        ids = []
        with sessions.begin() as session:
            for _ in range(2):
                ids.append(create_production(session, title="Good", filename="g.flac").id)
        first, second = sessions(), sessions()
        try:
            one = first.get(Production, ids[0])
            two = second.get(Production, ids[1])
            assert one is not None and two is not None
            one.status = two.status = "ready"
            first.flush()
            done = threading.Event()
            failure: list[BaseException] = []

            def publish_second() -> None:
                try:
                    second.commit()
                except BaseException as exc:  # reported below, in the test's thread
                    failure.append(exc)
                done.set()

            worker = threading.Thread(target=publish_second)
            worker.start()
            # The first commits only once the second waits on it, having chosen nothing yet.
            with engine.connect() as watcher:
                waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                while not done.is_set() and not watcher.execute(waiting).scalar():
                    watcher.rollback()
                    time.sleep(0.01)
            first.commit()
            worker.join(30)
            assert not failure, failure
        finally:
            first.close()
            second.close()
        with sessions() as session:
            slugs = set(session.scalars(select(Production.slug).where(Production.id.in_(ids))))
    finally:
        engine.dispose()
    assert slugs == {"good", "good-2"}
