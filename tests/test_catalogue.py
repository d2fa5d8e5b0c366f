import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from cite_live.catalogue import (
    artist_by_name,
    create_production,
    filename_title,
    set_tags,
    slugify,
)
from cite_live.models import Artist, Production, Venue
from cite_live.presenter import (
    PLACEHOLDER_TONES,
    download_filename,
    initials_of,
    placeholder_tone,
)
from cite_live.services import Services, open_services
from tests.app_fixtures import make_settings, new_client
from tests.test_pages import publish, text_of


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Élodie Fauré", "elodie-faure"),
        ("Cœur de Pirate & Øystein", "coeur-de-pirate-oystein"),
        ("  L'Électro   du Jeudi ", "l-electro-du-jeudi"),
        ("???", "sans-titre"),
    ],
)
def test_slugs_are_ascii(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_filename_stands_in_for_a_title() -> None:
    assert filename_title("/x/live_at-la-cite.final.mp4") == "live at la cite.final"
    assert filename_title(".mp4") == "Sans titre"


def test_same_title_gets_a_distinct_slug(services: Services) -> None:
    with services.sessions.begin() as session:
        first = create_production(session, title="Concert", filename="a.mp4")
        second = create_production(session, title="Concert", filename="b.mp4")
        third = create_production(session, title=None, filename="concert.mp4")
        assert third.title_is_placeholder and not first.title_is_placeholder
        # Processing, seen by their uploaders alone: a secret each, no plain slug yet.
        assert len({first.slug, second.slug, third.slug}) == 3
        assert all(p.slug.startswith("concert-") for p in (first, second, third))
        for production in (first, second, third):
            production.status = "ready"
            session.flush()
        assert [first.slug, second.slug, third.slug] == ["concert", "concert-2", "concert-3"]


def test_artists_are_found_by_slug_not_duplicated(services: Services) -> None:
    with services.sessions.begin() as session:
        one = artist_by_name(session, "Élodie Fauré")
        two = artist_by_name(session, "elodie   faure")
        assert one.id == two.id
        production = create_production(
            session, title="Duo", filename="duo.flac", artists=["Élodie Fauré", "Yann"]
        )
        set_tags(session, production, ["Électro", "electro", "Jazz"])
        assert [c.artist.slug for c in production.credits] == ["elodie-faure", "yann"]
        assert [t.slug for t in production.tags] == ["electro", "jazz"]
    with services.sessions() as session:
        assert session.scalar(select(Artist).where(Artist.slug == "yann")) is not None
        assert len(session.scalars(select(Production)).all()) == 1


# --- browsing without dead ends (on SQLite and PostgreSQL) ----------------------------------------


@pytest.fixture
def browse(tmp_path: Path, any_database_url: str) -> Iterator[TestClient]:
    """A catalogue whose artists, venues and productions include some nobody may see listed:
    Alice and Zoé have public productions, Bruno only a private one and an unlisted one, Yann
    none; Nadia is credited twice (performer and composer) on one production."""
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    with services.sessions.begin() as session:
        hall = Venue(name="Salle publique", slug="salle-publique", description="")
        hidden = Venue(name="Cave secrète", slug="cave-secrete", description="")
        session.add_all([hall, hidden])
        session.flush()
        publish(session, "Aube", artists=[("Alice Martin", "performer")], venue=hall)
        publish(
            session,
            "Double jeu",
            artists=[("Nadia Zeroual", "composer"), ("Nadia Zeroual", "performer")],
        )
        publish(session, "Zénith", artists=[("Zoé Roux", "performer")], kind="video")
        publish(
            session,
            "Brouillon",
            artists=[("Bruno Caché", "performer")],
            visibility="private",
            venue=hidden,
        )
        publish(
            session, "En coulisse", artists=[("Bruno Caché", "performer")], visibility="unlisted"
        )
        lone = artist_by_name(session, "Yann Seul")
        lone.featured = True
        artist_by_name(session, "Bruno Caché").featured = True
        artist_by_name(session, "Alice Martin").featured = True
    with new_client(services) as client:
        yield client
    services.close()


def letter_links(page: str) -> tuple[list[str], list[str]]:
    """The letters of the A–Z index that are links, and those that are not."""
    index = page[
        page.index('class="letters"') : page.index("</nav>", page.index('class="letters"'))
    ]
    linked = re.findall(r'<a href="/artists\?letter=[^"]*"[^>]*>([^<]+)</a>', index)
    dead = re.findall(r'<span class="letters__none">([^<]+)</span>', index)
    return linked, dead


def test_the_a_to_z_links_only_letters_with_listed_artists(browse: TestClient) -> None:
    page = browse.get("/artists").text
    linked, dead = letter_links(page)
    assert linked == ["A", "N", "Z"]
    assert "B" in dead and "Y" in dead and "#" in dead and len(dead) == 24
    text = text_of(page)
    assert "3 artistes" in text
    for name in ("Alice Martin", "Nadia Zeroual", "Zoé Roux"):
        assert name in text
    for hidden in ("Bruno Caché", "Yann Seul"):
        assert hidden not in text
    # Asked for by hand, a dead letter lists nobody rather than the hidden artist.
    assert "Bruno Caché" not in text_of(browse.get("/artists?letter=b").text)
    assert "Yann Seul" not in text_of(browse.get("/artists?letter=y").text)


def test_home_features_only_artists_with_something_to_play(browse: TestClient) -> None:
    text = text_of(browse.get("/").text)
    assert "Alice Martin" in text
    assert "Bruno Caché" not in text and "Yann Seul" not in text


def test_an_artist_page_shows_a_production_once_whatever_their_roles(browse: TestClient) -> None:
    page = browse.get("/artists/nadia-zeroual").text
    assert page.count('data-play="/productions/double-jeu"') == 1
    assert page.count('href="/productions/double-jeu"') == 1
    text = text_of(page)
    assert "1 production" in text and "Interprète" in text
    # Its one role group is the performer's: the first role, performer before the others.
    assert "Composition" not in text.split("Double jeu")[0].split("Nadia Zeroual")[-1]


def test_search_proposes_recent_productions_and_artists_when_empty(browse: TestClient) -> None:
    for address in ("/search", "/search?q=introuvable", "/search?q=bruno"):
        page = browse.get(address).text
        text = text_of(page)
        assert "Productions récentes" in text, address
        assert text.index("Zénith") < text.index("Aube"), address  # newest first
        assert "Artistes à découvrir" in text and "Zoé Roux" in text, address
        assert "Brouillon" not in text and "En coulisse" not in text, address
        assert "Bruno Caché" not in text and "Yann Seul" not in text, address
    assert "Aucun résultat" in text_of(browse.get("/search?q=introuvable").text)
    # A search that finds something shows that, and proposes nothing else.
    found = text_of(browse.get("/search?q=aube").text)
    assert "Aube" in found and "Productions récentes" not in found


def test_search_finds_no_artist_without_a_listed_production(browse: TestClient) -> None:
    assert "Alice Martin" in text_of(browse.get("/search?q=alice").text)
    assert "1 artiste" not in text_of(browse.get("/search?q=yann").text)
    assert "1 artiste" not in text_of(browse.get("/search?q=bruno").text)


def test_venues_without_a_listed_production_are_not_listed(browse: TestClient) -> None:
    text = text_of(browse.get("/venues").text)
    assert "Salle publique" in text and "Cave secrète" not in text


def test_production_cards_offer_play_and_queue_in_a_queue(browse: TestClient) -> None:
    page = browse.get("/").text
    grid = page[page.index('<ul class="grid"') :]
    assert grid.startswith('<ul class="grid" role="list" data-queue>')
    assert re.search(
        r'<button type="button" class="card__play" data-play="/productions/aube" '
        r'aria-label="Lire Aube" hidden>',
        page,
    )
    assert re.search(
        r'<button type="button" class="card__queue" data-queue-add="/productions/aube" hidden>',
        page,
    )
    # An audio cover is square, a video poster 16:9, and the title is the card's one link.
    aube = page[page.index('data-play="/productions/aube"') - 600 :]
    assert 'width="320" height="320"' in aube[:700]
    assert page.count('href="/productions/aube"') == 1
    # Artists' names on cards are text: the card leads to the production.
    assert '<a href="/artists/alice-martin"' not in page.split("data-queue>")[1].split("</ul>")[0]


@pytest.mark.parametrize(
    ("name", "initials"),
    [
        ("Élodie Fauré", "ÉF"),
        ("Yann", "Y"),
        ("L'Écho du Jeudi", "ÉJ"),
        ("Trio Sable et Vent", "TV"),
        ("<b>", "B"),
        ("!!!", "?"),
    ],
)
def test_a_placeholder_shows_initials(name: str, initials: str) -> None:
    assert initials_of(name) == initials


def test_placeholder_tones_are_few_and_stable() -> None:
    tones = {placeholder_tone(f"artist-{n}") for n in range(100)}
    assert tones == set(range(PLACEHOLDER_TONES))
    assert placeholder_tone("elodie-faure") == placeholder_tone("elodie-faure")


def test_download_file_names_hold_no_path_or_control_character(services: Services) -> None:
    with services.sessions.begin() as session:
        production = publish(
            session, 'a/b\\c:d*e?f"g<h>i|j\x00k\nl', artists=[("AC/DC", "performer")]
        )
        assert download_filename(production, "fr") == "AC DC - a b c d e f g h i j k l.m4a"
        production.title = "." * 10
        assert download_filename(production, "fr") == "AC DC -.m4a"
        production.credits.clear()
        session.flush()
        assert download_filename(production, "fr") == "production.m4a"
        production.title = "x" * 300
        assert download_filename(production, "fr") == "x" * 150 + ".m4a"
