import pytest
from sqlalchemy import select

from cite_live.catalogue import (
    artist_by_name,
    create_production,
    filename_title,
    set_tags,
    slugify,
)
from cite_live.models import Artist, Production
from cite_live.services import Services


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
