"""Lists of the catalogue: the visible productions, newest first, and the artists, each with
their filters. The catalogue's pages, the API, search and the feeds all list through here, so
that they agree on what a visitor may see and on what a filter means.

Each function takes the session its caller owns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, Subquery, func, select
from sqlalchemy.orm import Session

from cite_live.catalogue import card_query, has_listed_production, listed
from cite_live.models import Artist, Credit, Production, Tag, Venue
from cite_live.search import (
    artist_match,
    count_matches,
    narrowing,
    normalize,
    production_match,
)

Named = TypeVar("Named", Artist, Venue, Tag)

# The newest productions whose artists an empty search proposes (see recent_artists).
RECENT_WINDOW = 500


def visible() -> ColumnElement[bool]:
    """Productions that lists and search may show: ready and public (listed), so never a
    draft, which is private until published."""
    return listed()


def productions_where(
    *,
    q: str | None = None,
    artist: str | None = None,
    kind: str | None = None,
    venue: str | None = None,
    tag: str | None = None,
    session_type: str | None = None,
) -> list[Any]:
    """WHERE clauses: visible productions matching every filter given (``artist``, ``venue``
    and ``tag`` are slugs; ``q`` is matched as search matches it)."""
    where: list[Any] = [visible(), production_match(q)]
    if artist:
        where.append(Production.credits.any(Credit.artist.has(Artist.slug == artist)))
    if kind:
        where.append(Production.kind == kind)
    if venue:
        where.append(Production.venue.has(Venue.slug == venue))
    if tag:
        where.append(Production.tags.any(Tag.slug == tag))
    if session_type:
        where.append(Production.session_type == session_type)
    return where


def newest_first(where: Sequence[Any], query: Select[Any] | None = None) -> Select[Any]:
    """``query`` (by default :func:`cite_live.catalogue.card_query`) narrowed by ``where``,
    newest publication first; the id decides between equal times, so pages never overlap."""
    base: Select[Any] = card_query() if query is None else query
    return base.where(*where).order_by(Production.published_at.desc(), Production.id)


def count_productions(session: Session, where: Sequence[Any]) -> int:
    return session.scalar(select(func.count()).select_from(Production).where(*where)) or 0


def page_of_productions(
    session: Session,
    where: Sequence[Any],
    *,
    offset: int,
    limit: int,
    query: Select[Any] | None = None,
) -> tuple[list[Production], int]:
    """Productions matching ``where``, newest first, loaded as ``query`` loads them (by default
    with what a card shows), and how many match in all."""
    total = count_productions(session, where)
    rows = session.scalars(newest_first(where, query).offset(offset).limit(limit)).all()
    return list(rows), total


def search_productions(
    session: Session,
    q: str | None,
    *,
    offset: int,
    limit: int,
    kind: str | None = None,
    session_type: str | None = None,
) -> tuple[list[Production], int]:
    """Visible productions matching ``q`` (all of them for an empty query), newest first,
    and how many match in all, counted up to :data:`cite_live.search.COUNT_LIMIT` + 1 (see
    :mod:`cite_live.search` for the index that finds them)."""
    narrowed = narrowing(session, Production, q)
    where = productions_where(q=q, kind=kind, session_type=session_type)
    total = count_matches(session, select(Production.id).where(*where), narrowed)
    if total <= offset:  # nothing to show: the rows were just read once, counting them
        return [], total
    query = newest_first([*where, narrowed.rows]).offset(offset).limit(limit)
    return list(session.scalars(query).all()), total


def artists_where(
    session: Session,
    *,
    q: str | None = None,
    discipline: str | None = None,
    commune: str | None = None,
) -> list[Any]:
    """WHERE clauses for a list of artists: those with a listed production (see
    :func:`cite_live.catalogue.has_listed_production`); a discipline or a commune matches
    whatever its case and accents, as search does ("jazz" finds the artists of "Jazz",
    "electro" those of "Électro").

    Disciplines live in a JSON list, which SQLite and PostgreSQL query differently; so the
    database narrows by search text (which holds both fields, normalized) and the exact
    comparison is made here on that short list.
    """
    where: list[Any] = [artist_match(q), has_listed_production()]
    if not (discipline or commune):
        return where
    wanted_discipline, wanted_commune = normalize(discipline), normalize(commune)
    narrowed = session.execute(
        select(Artist.id, Artist.disciplines, Artist.commune).where(
            artist_match(q), artist_match(discipline), artist_match(commune), *where[1:]
        )
    ).all()
    ids = [
        artist_id
        for artist_id, disciplines, artist_commune in narrowed
        if (
            not discipline
            or any(
                isinstance(d, str) and normalize(d) == wanted_discipline
                for d in (disciplines if isinstance(disciplines, list) else [])
            )
        )
        and (not commune or normalize(artist_commune) == wanted_commune)
    ]
    where.append(Artist.id.in_(ids))
    return where


def by_slug(session: Session, model: type[Named], slug: str | None) -> Named | None:
    """The artist, venue or tag whose slug is ``slug`` (a path's, read by
    :func:`cite_live.params.path_name`: None when it can name nothing)."""
    if not slug:
        return None
    row: Named | None = session.scalars(select(model).where(model.slug == slug)).first()
    return row


def artist_productions(
    session: Session, slug: str | None, *, limit: int, query: Select[Any] | None = None
) -> tuple[Artist, list[Production], int] | None:
    """The artist at ``slug``, their ``limit`` newest visible productions (loaded as ``query``
    loads them) and how many they have in all; None when there is no such artist."""
    artist = by_slug(session, Artist, slug)
    if artist is None:
        return None
    where = productions_where(artist=artist.slug)
    rows, total = page_of_productions(session, where, offset=0, limit=limit, query=query)
    return artist, rows, total


def recent_artists(session: Session, *, limit: int) -> list[Artist]:
    """The artists of the newest listed productions, each once, the most recently published
    first: what an empty search proposes.

    Read from the newest :data:`RECENT_WINDOW` productions (a range of the listing index), not
    from every credit (480 ms at 100,000 productions): an artist credited there was published
    last no earlier than the window's oldest, and one who is not, no later. So when the window
    holds ``limit`` artists they are the ones; only a catalogue of few artists and many
    productions each reads every credit."""
    newest = (
        select(Production.id, Production.published_at)
        .where(visible())
        .order_by(Production.published_at.desc(), Production.id.desc())
        .limit(RECENT_WINDOW)
        .subquery()
    )
    rows = _latest_artists(session, newest, limit)
    if len(rows) < limit:
        every = select(Production.id, Production.published_at).where(visible()).subquery()
        rows = _latest_artists(session, every, limit)
    return rows


def _latest_artists(session: Session, productions: Subquery, limit: int) -> list[Artist]:
    latest = (
        select(Credit.artist_id, func.max(productions.c.published_at).label("latest"))
        .join(productions, productions.c.id == Credit.production_id)
        .group_by(Credit.artist_id)
        .subquery()
    )
    rows = session.scalars(
        select(Artist)
        .join(latest, latest.c.artist_id == Artist.id)
        .order_by(latest.c.latest.desc(), Artist.id)
        .limit(limit)
    ).all()
    return list(rows)


def artist_initials(session: Session) -> set[str]:
    """The first characters of the names of the artists lists show (normalized: "é" is "e")."""
    initial = func.substr(Artist.search_text, 1, 1)
    return set(session.scalars(select(initial).where(has_listed_production()).distinct()))
