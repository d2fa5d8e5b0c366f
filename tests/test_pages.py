"""The catalogue's HTML pages, on records made directly in the database (no transcoding)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import webvtt
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.testclient import TestClient

from cite_live.catalogue import set_credits, set_tags
from cite_live.models import Artist, Chapter, MediaVersion, Production, Venue
from cite_live.services import Services, open_services
from cite_live.web.app import create_app
from cite_live.web.catalogue import PER_PAGE, chapters_webvtt
from cite_live.web.context import safe_next
from cite_live.web.urls import Urls
from tests.account_fixtures import login, make_user
from tests.app_fixtures import make_settings

BASE = datetime(2025, 3, 1, 12, tzinfo=UTC)
_counter = iter(range(1_000_000))


def publish(
    session: Session,
    title: str,
    *,
    artists: Sequence[tuple[str, str]] = (("Élodie Fauré", "performer"),),
    kind: str = "audio",
    visibility: str = "public",
    status: str = "ready",
    venue: Venue | None = None,
    tags: Sequence[str] = (),
    chapters: Sequence[tuple[str, float]] = (),
    **fields: object,
) -> Production:
    """A production as ingest leaves it, with a version whose keys need not exist in the store."""
    n = next(_counter)
    # Its slug is chosen at the flush, for what it is: plain when listed, secret otherwise.
    production = Production(
        title=title,
        kind=kind,
        status=status,
        visibility=visibility,
        duration=61.5,
        venue=venue,
        published_at=BASE + timedelta(minutes=n) if status == "ready" else None,
    )
    for name, value in fields.items():
        setattr(production, name, value)
    session.add(production)
    session.flush()
    set_credits(session, production, artists)
    set_tags(session, production, tags)
    for chapter_title, start in chapters:
        production.chapters.append(Chapter(title=chapter_title, start=start))
    if status == "ready":
        prefix = f"productions/{production.id}/v{n}/"
        version = MediaVersion(
            production_id=production.id,
            name=f"v{n}",
            state="published",
            prefix=prefix,
            master_key=prefix + "master.m3u8",
            poster_key=prefix + "poster.jpg" if kind == "video" else None,
            cover_key=prefix + "cover.jpg" if kind == "audio" else None,
            ladder=[],
        )
        session.add(version)
        session.flush()
        production.current_version = version
    session.flush()
    return production


@pytest.fixture
def catalogue(services: Services) -> dict[str, str]:
    """A small catalogue: two venues, three artists, audio and video, every visibility."""
    with services.sessions.begin() as session:
        cite = Venue(
            name="La Cité de la Musique",
            slug="la-cite",
            commune="Romans-sur-Isère",
            description="Studios et scène.",
        )
        cartoucherie = Venue(
            name="La Cartoucherie", slug="cartoucherie", commune="Bourg-lès-Valence"
        )
        session.add_all([cite, cartoucherie])
        session.flush()
        concert = publish(
            session,
            "Nuit Électro",
            title_en="Electro Night",
            description="Une nuit entière.\n\nDeuxième partie.",
            description_en="A whole night.",
            kind="video",
            venue=cite,
            tags=["Électro", "Live"],
            chapters=[("Ouverture", 0), ("Final", 42.7)],
            artists=[("Élodie Fauré", "performer"), ("Marc Lenoir", "composer")],
            session_type="live",
            licence="CC-BY-SA-4.0",
            recorded_on=date(2025, 3, 12),
        )
        publish(session, "Session acoustique", venue=cite, tags=["Folk"], session_type="studio")
        publish(
            session,
            "Portrait sonore",
            artists=[("Zoé Martin", "performer")],
            venue=cartoucherie,
            session_type="podcast",
        )
        unlisted = publish(
            session, "Brouillon caché", visibility="unlisted", venue=cite, tags=["Électro"]
        )
        publish(session, "Archive privée", visibility="private", venue=cite, tags=["Électro"])
        processing = publish(session, "En cours", status="processing", venue=cite, tags=["Électro"])
        elodie = session.scalars(select(Artist).where(Artist.slug == "elodie-faure")).one()
        elodie.featured = True
        elodie.bio = "Violoncelliste.\nCompositrice."
        elodie.commune = "Romans-sur-Isère"
        elodie.disciplines = ["Musique classique", "Électro"]
        elodie.links = [
            "https://elodie.example/",
            {"url": "https://label.example/elodie", "label": "Le label"},
            "javascript:alert(1)",
        ]
        marc = session.scalars(select(Artist).where(Artist.slug == "marc-lenoir")).one()
        marc.commune, marc.disciplines = "Valence", ["Jazz"]
        return {
            "concert": concert.slug,
            "unlisted": unlisted.slug,
            "processing": processing.slug,
        }


def text_of(body: str) -> str:
    """The visible text of a page, whitespace collapsed, for assertions on what a visitor reads."""
    without_tags = re.sub(r"<script\b.*?</script>|<[^>]+>", " ", body, flags=re.S)
    return re.sub(r" ([,.])", r"\1", " ".join(html.unescape(without_tags).split()))


PAGES = [
    "/",
    "/artists",
    "/artists?letter=e",
    "/artists/elodie-faure",
    "/productions/nuit-electro",
    "/venues",
    "/venues/la-cite",
    "/tags",
    "/tags/electro",
    "/search",
    "/search?q=faure",
    "/search?type=live",
]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders_in_french_with_the_site_frame(
    client: TestClient, catalogue: dict[str, str], path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    body = response.text
    assert '<html lang="fr">' in body
    assert '<link rel="alternate" type="application/atom+xml" href="/feed.atom"' in body
    assert f'href="{Urls().static("css/site.css")}"' in body
    assert 'action="/search"' in body
    assert 'href="/lang/en?next=' in body
    assert "Artistes" in text_of(body)
    # One description of the page for search engines and link previews, and the site's icon.
    descriptions = re.findall(r'<meta name="description" content="([^"]*)">', body)
    assert len(descriptions) == 1 and len(descriptions[0]) > 10, descriptions
    assert f'<link rel="icon" href="{Urls().static("favicon.svg")}" type="image/svg+xml">' in body


def test_pages_describe_themselves(client: TestClient, catalogue: dict[str, str]) -> None:
    def description(path: str) -> str:
        found = re.findall(r'<meta name="description" content="([^"]*)">', client.get(path).text)
        assert len(found) == 1, (path, found)
        return html.unescape(found[0])

    assert "La Cité de la Musique" in description("/venues/la-cite")
    assert "Électro" in description("/tags/electro")
    assert description("/productions/nuit-electro").startswith("Une nuit entière.")
    assert len({description(path) for path in ("/", "/artists", "/venues", "/partners")}) == 4
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg+xml")


def test_home_shows_latest_featured_and_sessions_by_venue_and_type(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    text = text_of(client.get("/").text)
    assert "Dernières productions" in text
    for title in ("Nuit Électro", "Session acoustique", "Portrait sonore"):
        assert title in text
    assert "Artistes à découvrir Élodie Fauré" in text
    assert "La Cité de la Musique 2 productions" in text
    assert "La Cartoucherie 1 production" in text
    assert "Live 1 production" in text and "Session studio 1 production" in text
    assert "3 productions à écouter et à regarder" in text


def test_unlisted_private_and_unfinished_productions_stay_out_of_every_list(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    for path in [*PAGES, "/search?q=cache", "/search?q=archive", "/search?q=cours"]:
        body = client.get(path).text
        for hidden in ("Brouillon caché", "Archive privée", "En cours"):
            assert hidden not in body, (path, hidden)
    # The tag counts only what can be listed.
    assert "Électro 1 production" in text_of(client.get("/tags").text)


def test_unlisted_production_is_reachable_by_its_address_and_not_indexed(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    response = client.get(f"/productions/{catalogue['unlisted']}")
    assert response.status_code == 200
    assert '<meta name="robots" content="noindex">' in response.text
    assert "Brouillon caché" in response.text
    # Its title's plain slug is not its address.
    assert client.get("/productions/brouillon-cache").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/productions/archive-privee",
        "/productions/archive-privee/chapters.vtt",
        "/productions/nope",
        "/artists/nobody",
        "/venues/nowhere",
        "/tags/nothing",
        "/lang/de",
    ],
)
def test_unknown_and_private_addresses_get_the_friendly_404(
    client: TestClient, catalogue: dict[str, str], path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    text = text_of(response.text)
    assert "Cette page est introuvable" in text
    assert "Retour à l’accueil" in text
    assert "Archive privée" not in response.text


def test_error_pages_follow_the_visitor_language(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    text = text_of(client.get("/productions/nope?lang=en").text)
    assert "This page cannot be found" in text
    assert "There is no production at this address." in text


def test_unexpected_errors_get_the_friendly_500(services: Services) -> None:
    app = create_app(services.settings, services)

    async def broken(request: Request) -> None:
        raise RuntimeError("boom")

    app.add_route("/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as c:
        response = c.get("/broken", headers={"Accept-Language": "en"})
    assert response.status_code == 500
    text = text_of(response.text)
    assert "Something went wrong on our side" in text
    assert "boom" not in text


def test_production_page_shows_credits_facts_setlist_and_related(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    body = client.get("/productions/nuit-electro").text
    text = text_of(body)
    assert "<h1>Nuit Électro</h1>" in body
    assert 'href="/artists/elodie-faure">Élodie Fauré</a> <span class="role">Interprète' in body
    assert 'href="/artists/marc-lenoir">Marc Lenoir</a> <span class="role">Composition' in body
    assert "Lieu La Cité de la Musique, Romans-sur-Isère" in text
    assert "Enregistré le 12 mars 2025" in text
    assert "Type Live" in text
    assert "Durée 1:01" in text
    assert 'rel="license" href="https://creativecommons.org/licenses/by-sa/4.0/"' in body
    assert 'href="/tags/electro">Électro</a>' in body
    assert "<p>Une nuit entière.</p>" in body and "<p>Deuxième partie.</p>" in body
    # The setlist: deep links the player seeks with, on click or on load.
    assert 'href="/productions/nuit-electro?t=0" data-seek="0"' in body
    assert 'href="/productions/nuit-electro?t=42" data-seek="42"' in body
    assert "0:42 Final" in text
    # Other productions of the same artists, and not this one again.
    related = body.split("Autres productions des mêmes artistes", 1)[1]
    assert "Session acoustique" in related and "Nuit Électro" not in related
    assert "Portrait sonore" not in related


def test_production_page_holds_the_player_share_panel_and_page_metadata(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    body = client.get("/productions/nuit-electro").text
    head = body.split("</head>", 1)[0]
    # The site's script carries the player's loader: no script of the page's own.
    assert f'src="{Urls().static("js/site.js")}"' in head
    assert f'src="{Urls().static("js/player.js")}"' not in head
    assert 'property="og:title" content="Nuit Électro"' in head
    assert 'type="application/json+oembed"' in head
    assert '<script type="application/ld+json">' in head
    # The player's box is reserved by the page itself: 16:9 for this video.
    assert '<div class="player-frame player-frame--video">' in body
    assert "data-player" in body
    assert "data-share-panel" in body
    audio = client.get("/productions/session-acoustique").text
    assert '<div class="player-frame player-frame--audio">' in audio


def test_production_being_processed_shows_its_managers_a_notice_instead_of_a_player(
    client: TestClient, services: Services, catalogue: dict[str, str]
) -> None:
    url = f"/productions/{catalogue['processing']}"
    assert client.get(url).status_code == 404
    make_user(services, "admin@example.org", "admin")
    login(client, "admin@example.org")
    response = client.get(url)
    assert response.status_code == 200
    assert "en cours de traitement" in text_of(response.text)


def test_bilingual_fields_follow_the_language_and_fall_back(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    english = client.get("/productions/nuit-electro?lang=en").text
    assert "<h1>Electro Night</h1>" in english
    assert "<p>A whole night.</p>" in english
    assert "Recorded on March 12, 2025" in text_of(english)
    # No English title: the French one stands in, in lists too.
    fallback = client.get("/productions/session-acoustique?lang=en").text
    assert '<h1 lang="fr">Session acoustique</h1>' in fallback
    home = text_of(client.get("/?lang=en").text)
    assert "Electro Night" in home and "Session acoustique" in home


def test_artist_page_shows_bio_links_and_productions_by_role(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    body = client.get("/artists/elodie-faure").text
    text = text_of(body)
    assert "Violoncelliste.\nCompositrice." in body
    assert "Musique classique, Électro" in text and "Romans-sur-Isère" in text
    assert 'href="https://elodie.example/"' in body
    assert 'href="https://label.example/elodie"' in body and "Le label" in text
    assert "javascript:" not in body
    performer = text.split("Interprète", 1)[1]
    assert "Nuit Électro" in performer and "Session acoustique" in performer
    assert "Composition" not in text
    assert 'href="/artists/elodie-faure/feed.atom"' in body
    marc = text_of(client.get("/artists/marc-lenoir").text)
    assert "Composition" in marc and "Nuit Électro" in marc
    assert "Session acoustique" not in marc


def test_a_prolific_artist_page_comes_a_page_at_a_time_performer_credits_first(
    client: TestClient, services: Services
) -> None:
    with services.sessions.begin() as session:
        for n in range(PER_PAGE + 3):
            publish(session, f"Répétition {n:02d}", artists=[("Ana Prolixe", "performer")])
        publish(session, "Arrangement", artists=[("Ana Prolixe", "arranger")])
    first = text_of(client.get("/artists/ana-prolixe").text)
    assert f"{PER_PAGE + 4} productions" in first
    # Newest first among the performer credits; the other role only once they are all shown.
    assert f"Répétition {PER_PAGE + 2:02d}" in first and "Répétition 02" not in first
    assert "Arrangement" not in first and "Page 1 sur 2" in first
    second = text_of(client.get("/artists/ana-prolixe?page=2").text)
    assert "Répétition 00" in second and "Répétition 02" in second
    assert second.index("Répétition 00") < second.index("Arrangement")


def test_artists_index_groups_by_letter_and_filters(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    text = text_of(client.get("/artists").text)
    assert "3 artistes" in text
    assert text.index("Élodie Fauré") < text.index("Marc Lenoir") < text.index("Zoé Martin")
    only_e = text_of(client.get("/artists?letter=e").text)
    assert "Élodie Fauré" in only_e and "Marc Lenoir" not in only_e
    jazz = text_of(client.get("/artists?discipline=Jazz").text)
    assert "Marc Lenoir" in jazz and "Élodie Fauré" not in jazz
    electro = text_of(client.get("/artists?discipline=Électro").text)
    assert "Élodie Fauré" in electro and "Marc Lenoir" not in electro
    valence = text_of(client.get("/artists?commune=Valence").text)
    assert "1 artiste" in valence and "Marc Lenoir" in valence
    assert "Aucun artiste" in text_of(client.get("/artists?letter=q").text)


def test_venue_and_tag_pages_list_their_sessions(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    venue = text_of(client.get("/venues/la-cite").text)
    assert "Studios et scène." in venue and "2 productions" in venue
    assert "Nuit Électro" in venue and "Portrait sonore" not in venue
    venues = text_of(client.get("/venues").text)
    assert "La Cartoucherie Bourg-lès-Valence 1 production" in venues
    tag = text_of(client.get("/tags/folk").text)
    assert "Session acoustique" in tag and "Nuit Électro" not in tag


def test_lists_are_paginated_and_keep_their_filters(services: Services, client: TestClient) -> None:
    with services.sessions.begin() as session:
        for n in range(PER_PAGE + 3):
            publish(session, f"Prise {n:02d}", tags=["Série"], session_type="rehearsal")
    first = client.get("/search?type=rehearsal")
    assert first.status_code == 200
    assert len(re.findall(r'class="card card--audio"', first.text)) == PER_PAGE
    assert f"{PER_PAGE + 3} productions trouvées" in text_of(first.text)
    assert 'rel="next" href="/search?type=rehearsal&amp;page=2"' in first.text
    assert 'rel="prev"' not in first.text
    second = client.get("/search?type=rehearsal&page=2")
    assert len(re.findall(r'class="card card--audio"', second.text)) == 3
    assert 'rel="prev" href="/search?type=rehearsal"' in second.text
    assert "Page 2 sur 2" in text_of(second.text)
    titles = set(re.findall(r"Prise \d\d", first.text + second.text))
    assert len(titles) == PER_PAGE + 3
    tag_page = client.get("/tags/serie?page=2")
    assert len(re.findall(r'class="card card--audio"', tag_page.text)) == 3
    assert client.get("/tags/serie?page=3").status_code == 404
    assert client.get("/tags/serie?page=abc").status_code == 400
    assert client.get("/tags/serie?page=0").status_code == 400


HOSTILE = "<script>alert(1)</script>"


def test_hostile_metadata_is_shown_as_text_on_every_page(
    services: Services, client: TestClient
) -> None:
    huge = "<b>long</b> " + "x" * 100_000
    with services.sessions.begin() as session:
        venue = Venue(name=HOSTILE, slug="hostile-venue", commune=HOSTILE, description=huge)
        session.add(venue)
        session.flush()
        production = publish(
            session,
            HOSTILE,
            title_en=HOSTILE,
            description=huge,
            description_en=huge,
            kind="video",
            venue=venue,
            tags=[HOSTILE],
            chapters=[(HOSTILE + " --> 00:00:01.000", 1.0)],
            artists=[(HOSTILE, HOSTILE)],
            session_type=HOSTILE,
            licence=HOSTILE,
        )
        artist = production.credits[0].artist
        artist.bio, artist.commune, artist.disciplines = huge, HOSTILE, [HOSTILE]
        artist.links = [{"url": "javascript:alert(1)", "label": HOSTILE}, HOSTILE]
        slugs = (production.slug, artist.slug, venue.slug, production.tags[0].slug)
    production_slug, artist_slug, venue_slug, tag_slug = slugs
    pages = [
        "/",
        "/artists",
        f"/artists/{artist_slug}",
        f"/productions/{production_slug}",
        f"/productions/{production_slug}?lang=en",
        "/venues",
        f"/venues/{venue_slug}",
        "/tags",
        f"/tags/{tag_slug}",
        "/search?q=script+alert",
        f"/search?q={HOSTILE}",
        f"/artists?discipline={HOSTILE}&commune={HOSTILE}",
    ]
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.text
        assert "<script>alert" not in body, path
        assert "<b>long" not in body, path
        assert "javascript:" not in body, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, path
    production_page = client.get(f"/productions/{production_slug}").text
    assert "x" * 100_000 in production_page


def test_setlist_is_served_as_webvtt_chapters(
    client: TestClient, catalogue: dict[str, str]
) -> None:
    response = client.get("/productions/nuit-electro/chapters.vtt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/vtt")
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.text == (
        "WEBVTT\n\n"
        "1\n00:00:00.000 --> 00:00:42.700\nOuverture\n\n"
        "2\n00:00:42.700 --> 00:01:01.500\nFinal\n"
    )


def test_webvtt_cue_text_cannot_forge_timings_or_markup() -> None:
    vtt = chapters_webvtt([("A --> B\n\n<c.x>&", 3723.5), ("Intro", 0.0)], None)
    assert vtt == (
        "WEBVTT\n\n"
        "1\n00:00:00.000 --> 01:02:03.500\nIntro\n\n"
        "2\n01:02:03.500 --> 01:02:04.500\nA --&gt; B &lt;c.x&gt;&amp;\n"
    )
    assert vtt.count("-->") == 2


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/artists?letter=e", "/artists?letter=e"),
        ("/productions/x?lang=fr&t=3", "/productions/x?t=3"),
        ("//evil.example", "/"),
        ("//evil.example/path", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
        ("http:evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_language_switch_only_goes_back_to_our_own_paths(target: str | None, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/artists?commune=%00",
        "/artists?commune=Romans%00",
        "/artists?discipline=%00",
        "/artists?letter=%00",
        "/search?q=nuit%00",
        "/search?q=%00&type=%00&kind=%00",
    ],
)
def test_a_nul_in_a_page_filter_never_reaches_the_database(
    tmp_path: Path, any_database_url: str, path: str
) -> None:
    """PostgreSQL refuses a NUL in text: the artists' commune filter handed one to the query (a
    500 there). Nothing stored holds a NUL, so such a filter just finds nothing."""
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        with services.sessions.begin() as session:
            publish(session, "Nuit")
        app = create_app(services.settings, services)
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get(path)
            assert response.status_code == 200, response.text
            assert "\x00" not in response.text
    finally:
        services.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        *(("discipline", d) for d in ("jAZZ", "ÉLECTRO", "electro", "musique CLASSIQUE")),
        *(("commune", c) for c in ("romans-sur-isere", "ROMANS-SUR-ISÈRE", "valence")),
    ],
)
def test_the_artists_page_and_the_api_filter_alike(
    client: TestClient, catalogue: dict[str, str], name: str, value: str
) -> None:
    """One filter for both: whatever the case and the accents, as search matches."""
    page = client.get("/artists", params={name: value}).text
    on_page = sorted(set(re.findall(r'href="/artists/([^"?/]+)"', page)))
    api = client.get("/api/v1/artists", params={name: value}).json()
    assert on_page == sorted(item["slug"] for item in api["items"])
    assert on_page, value


def test_the_discipline_filter_ignores_case_on_postgresql_too(
    tmp_path: Path, any_database_url: str
) -> None:
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        with services.sessions.begin() as session:
            publish(session, "Swing", artists=[("Marc Lenoir", "performer")])
            publish(session, "Nuit", artists=[("Noé Chabert", "performer")])
            for slug, disciplines in (("marc-lenoir", ["Jazz"]), ("noe-chabert", ["Électro"])):
                artist = session.scalars(select(Artist).where(Artist.slug == slug)).one()
                artist.disciplines = disciplines
        with TestClient(create_app(services.settings, services)) as client:
            for discipline, expected in (("JAZZ", ["marc-lenoir"]), ("electro", ["noe-chabert"])):
                page = client.get("/artists", params={"discipline": discipline}).text
                assert re.findall(r'href="/artists/([^"?/]+)"', page) == expected
                api = client.get("/api/v1/artists", params={"discipline": discipline}).json()
                assert [item["slug"] for item in api["items"]] == expected
    finally:
        services.close()


def test_the_chapters_read_with_webvtt_py(client: TestClient, catalogue: dict[str, str]) -> None:
    """webvtt-py, a reader players' tooling uses, takes the chapters as written."""
    text = client.get("/productions/nuit-electro/chapters.vtt").text
    captions = webvtt.from_string(text).captions
    assert [(c.start, c.end, c.text) for c in captions] == [
        ("00:00:00.000", "00:00:42.700", "Ouverture"),
        ("00:00:42.700", "00:01:01.500", "Final"),
    ]
