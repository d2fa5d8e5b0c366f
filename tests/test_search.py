"""Search: case- and accent-insensitive on SQLite and PostgreSQL, and search_text kept in step."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql
from starlette.testclient import TestClient

from cite_live import listing
from cite_live.catalogue import create_production, set_credits, set_tags
from cite_live.db import alembic_config
from cite_live.listing import search_productions
from cite_live.models import Artist, Chapter, Production, Tag, Venue
from cite_live.search import (
    normalize,
    production_match,
    query_words,
    reindex,
    search_artists,
)
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.web.app import create_app
from tests.app_fixtures import make_settings
from tests.test_pages import publish, text_of


@pytest.fixture
def db(tmp_path: Path, any_database_url: str) -> Iterator[Services]:
    """Services on SQLite, then on a fresh PostgreSQL database."""
    opened = open_services(make_settings(tmp_path / "data", any_database_url))
    yield opened
    opened.close()


def titles(services: Services, q: str, **filters: str) -> list[str]:
    with services.sessions() as session:
        rows, total = search_productions(session, q, offset=0, limit=50, **filters)
        assert total == len(rows)
        return sorted(p.title for p in rows)


def artist_names(services: Services, q: str) -> list[str]:
    with services.sessions() as session:
        rows, total = search_artists(session, q, offset=0, limit=50)
        assert total == len(rows)
        return [a.name for a in rows]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Élodie FAURÉ", "elodie faure"),
        ("L’Été électro!", "l ete electro"),
        ("Cœur  &  Âme", "coeur ame"),
        ("Straße", "strasse"),
        ("100%_pur", "100 pur"),
        ("ﬁn", "fin"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalize_folds_case_accents_and_punctuation(text: str | None, expected: str) -> None:
    assert normalize(text) == expected


def test_query_words_are_distinct_and_bounded() -> None:
    assert query_words("Fauré faure FAURE électro") == ["faure", "electro"]
    assert len(query_words(" ".join(f"w{n}" for n in range(50)))) == 8
    assert query_words("x" * 10_000) == ["x" * 100]


def test_search_ignores_case_and_accents(db: Services) -> None:
    with db.sessions.begin() as session:
        venue = Venue(name="Théâtre de la Presle", slug="presle", commune="Romans-sur-Isère")
        session.add(venue)
        publish(session, "Nuit Électro", venue=venue, tags=["Musiques actuelles"])
        publish(
            session,
            "Répétition",
            title_en="Rehearsal",
            artists=[("Chœur d’Ardèche", "performer")],
            chapters=[("Sérénade", 10.0)],
        )
        publish(session, "Quatuor", artists=[("Gabriel Fauré", "composer")], description="À cordes")
    assert titles(db, "electro") == ["Nuit Électro"]
    assert titles(db, "ÉLECTRO nuit") == ["Nuit Électro"]
    assert titles(db, "theatre presle") == ["Nuit Électro"]
    assert titles(db, "MUSIQUES") == ["Nuit Électro"]
    assert titles(db, "rehearsal") == ["Répétition"]
    assert titles(db, "choeur") == ["Répétition"]
    assert titles(db, "serenade") == ["Répétition"]
    assert titles(db, "faure") == ["Nuit Électro", "Quatuor"]
    assert titles(db, "faure gabriel") == ["Quatuor"]
    assert titles(db, "a cordes") == ["Quatuor"]
    assert titles(db, "electro quatuor") == []
    assert artist_names(db, "faure") == ["Élodie Fauré", "Gabriel Fauré"]
    assert artist_names(db, "CHŒUR") == ["Chœur d’Ardèche"]


def test_like_wildcards_and_quotes_in_a_query_match_nothing_special(db: Services) -> None:
    with db.sessions.begin() as session:
        publish(session, "Cent pour cent")
        publish(session, "Axe")
    # Punctuation is not part of a word: "%" alone is an empty query, "a%e" two words.
    for q in ("%", "_", "%%", "\\", "'", '"', "--"):
        assert titles(db, q) == ["Axe", "Cent pour cent"], q
    assert titles(db, "c%t") == ["Cent pour cent"]
    assert titles(db, "x_e") == ["Axe"]
    assert titles(db, "cent'; DROP TABLE productions; --") == []


def test_each_word_is_matched_as_an_escaped_like_pattern() -> None:
    clause = production_match("électro")
    sql = str(clause.compile(dialect=postgresql.dialect()))
    assert "LIKE" in sql and "ESCAPE" in sql
    assert clause.compile().params == {"search_text_1": "electro"}


def test_only_ready_public_productions_are_found(db: Services) -> None:
    with db.sessions.begin() as session:
        publish(session, "Électro public")
        publish(session, "Électro non listé", visibility="unlisted")
        publish(session, "Électro privé", visibility="private")
        publish(session, "Électro en cours", status="processing")
    assert titles(db, "electro") == ["Électro public"]


def test_filters_narrow_the_results(db: Services) -> None:
    with db.sessions.begin() as session:
        publish(session, "Live audio", session_type="live")
        publish(session, "Live vidéo", session_type="live", kind="video")
        publish(session, "Studio vidéo", session_type="studio", kind="video")
    assert titles(db, "", kind="video") == ["Live vidéo", "Studio vidéo"]
    assert titles(db, "", session_type="live") == ["Live audio", "Live vidéo"]
    assert titles(db, "video", session_type="live", kind="video") == ["Live vidéo"]


def test_search_text_follows_every_change_it_is_made_of(db: Services) -> None:
    with db.sessions.begin() as session:
        venue = Venue(name="Salle Ancienne", slug="salle")
        session.add(venue)
        production = publish(session, "Concert", venue=venue, tags=["Folk"])
        production_id = production.id
    assert titles(db, "faure") == ["Concert"]
    with db.sessions.begin() as session:
        artist = session.scalars(select(Artist).where(Artist.slug == "elodie-faure")).one()
        artist.name = "Élodie Dupré"
    assert titles(db, "dupre") == ["Concert"]
    assert titles(db, "faure") == []
    assert artist_names(db, "dupre") == ["Élodie Dupré"]
    with db.sessions.begin() as session:
        session.scalars(select(Venue)).one().name = "Salle Neuve"
        session.scalars(select(Tag)).one().name = "Bal trad"
    assert titles(db, "neuve bal") == ["Concert"]
    assert titles(db, "ancienne") == titles(db, "folk") == []
    with db.sessions.begin() as session:
        production = session.get_one(Production, production_id)
        set_credits(session, production, [("Zoé Arnaud", "performer")])
        set_tags(session, production, ["Électro"])
        session.add(Chapter(production_id=production_id, title="Rappel final", start=5.0))
        production.title_en = "Gig"
    assert titles(db, "zoe electro rappel gig") == ["Concert"]
    assert titles(db, "dupre") == []


def test_reindex_repairs_rows_written_before_the_listener(db: Services) -> None:
    with db.sessions.begin() as session:
        publish(session, "Ancienne session")
    with db.engine.begin() as connection:
        connection.execute(Production.__table__.update().values(search_text=""))
        connection.execute(Artist.__table__.update().values(search_text=""))
    assert titles(db, "ancienne") == []
    with db.sessions.begin() as session:
        assert reindex(session) == 2
    assert titles(db, "ancienne faure") == ["Ancienne session"]
    assert artist_names(db, "elodie") == ["Élodie Fauré"]


def test_the_search_page_finds_artists_and_sessions_without_accents(
    services: Services,
) -> None:
    with services.sessions.begin() as session:
        publish(session, "Nuit Électro", artists=[("Élodie Fauré", "performer")])
        publish(session, "Jazz au jardin", artists=[("Marc Lenoir", "performer")])
    with TestClient(create_app(services.settings, services)) as client:
        text = text_of(client.get("/search?q=FAURE").text)
        assert "1 artiste" in text and "Élodie Fauré" in text
        assert "1 production trouvée" in text and "Nuit Électro" in text
        assert "Jazz au jardin" not in text
        both = text_of(client.get("/search?q=electro+%C3%A9lodie").text)
        assert "1 production trouvée" in both and "Nuit Électro" in both
        nothing = text_of(client.get("/search?q=zzzz").text)
        assert "0 production trouvée" in nothing and "Aucun résultat" in nothing
        english = text_of(client.get("/search?q=jardin&lang=en").text)
        assert "1 production found" in english and "Jazz au jardin" in english


def test_rows_never_indexed_are_indexed_when_services_open(settings: Settings) -> None:
    opened = open_services(settings)
    try:
        with opened.sessions.begin() as session:
            production = create_production(session, title="Électro du jeudi", filename="x.mp4")
            production_id = production.id
        with opened.engine.begin() as connection:
            connection.execute(
                update(Production).where(Production.id == production_id).values(search_text="")
            )
    finally:
        opened.close()
    reopened = open_services(settings)
    try:
        with reopened.sessions() as session:
            row = session.get(Production, production_id)
            assert row is not None and "electro du jeudi" in row.search_text
    finally:
        reopened.close()


def test_an_artist_is_found_by_the_english_biography_and_so_after_the_upgrade(
    settings: Settings,
) -> None:
    """Searching in English finds an artist by the English biography; artists indexed before
    it counted are indexed again once, at the first start after the migration."""
    opened = open_services(settings)
    try:
        with opened.sessions.begin() as session:
            artist = Artist(name="Les Ondes", slug="les-ondes", bio="Musique électronique.")
            session.add(artist)
            session.flush()
            # Search shows only artists with something to play.
            publish(session, "Rive", artists=[("Les Ondes", "performer")])
        assert artist_names(opened, "riverbank") == []
        with opened.sessions.begin() as session:
            found = session.scalars(select(Artist).where(Artist.slug == "les-ondes")).one()
            found.bio_en = "Electronic music on the riverbank."
        assert artist_names(opened, "riverbank") == ["Les Ondes"]
        # As the database was before: the English biography written, but not in the text.
        with opened.engine.begin() as connection:
            connection.execute(
                update(Artist).values(search_text=normalize("Les Ondes Musique électronique."))
            )
        assert artist_names(opened, "riverbank") == []
        # (Searched before going down: today's search reads the indexes of migration 0018.)
        command.downgrade(alembic_config(opened.engine), "0011_collections")
    finally:
        opened.close()
    reopened = open_services(settings)  # migrates, then indexes what the migration emptied
    try:
        assert artist_names(reopened, "riverbank") == ["Les Ondes"]
        assert artist_names(reopened, "electronique") == ["Les Ondes"]
    finally:
        reopened.close()


@pytest.mark.parametrize("window", [2, 5, 500])
def test_an_empty_search_proposes_the_artists_published_last(
    db: Services, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """Read from the newest productions only, the proposal is what reading every credit gives,
    whether the window holds enough artists (5, 500) or too few and every credit is read (2)."""
    monkeypatch.setattr(listing, "RECENT_WINDOW", window)
    names = [f"Artiste {n}" for n in range(6)]
    with db.sessions.begin() as session:
        # Each artist in turn, twice over, then the first again: published last, proposed first.
        for n in [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0]:
            publish(session, f"Session {n}", artists=[(names[n], "performer")])
        publish(session, "Hidden", artists=[("Personne", "performer")], visibility="private")
    with db.sessions() as session:
        proposed = [artist.name for artist in listing.recent_artists(session, limit=3)]
        every = [artist.name for artist in listing.recent_artists(session, limit=10)]
    assert proposed == ["Artiste 0", "Artiste 5", "Artiste 4"]
    assert every == ["Artiste 0", "Artiste 5", "Artiste 4", "Artiste 3", "Artiste 2", "Artiste 1"]
