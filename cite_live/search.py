"""Search across artists and productions, insensitive to case and accents on every database.

Neither SQLite nor PostgreSQL (without extensions) folds accents in LIKE, so each artist and each
production keeps a ``search_text`` column: the lower-case, accent-free words of what a visitor may
type. A ``before_flush`` listener, installed on the process's sessions by :func:`install` (from
``open_services``), keeps it in step with the records it is made from; queries are normalized
the same way and every word must match.

A word matches wherever it occurs in the text (LIKE '%word%'), which no B-tree serves; the
databases index the text by its trigrams instead (migration 0018): PostgreSQL's pg_trgm GIN
index serves the LIKE as it is written, and SQLite's FTS5 ``trigram`` tables
(``productions_search``, ``artists_search``) find the rows holding every word of three
characters or more, which :func:`narrowing` adds to the LIKE when the index finds few of them.
The LIKE stays the judge on both: the index only narrows, so it never changes what matches. A
query made only of one- and two-letter words has no trigram: it looks among the
:data:`SHORT_QUERY_ROWS` newest listed productions only, read in list order, so that a pair no
text holds ("qz") costs that many rows, not the whole catalogue (10 s at a million rows).
PostgreSQL is kept from its trigram index for such words, which it would read in full.

Counting every match of a common word reads every match, so searches count up to
:data:`COUNT_LIMIT` and then say "more than".

``search_text`` starts with the normalized name (artist) or title (production), so ordering on it
sorts names alphabetically without regard to accents, and its first character is the initial.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    event,
    func,
    inspect,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.orm import Session, selectinload, sessionmaker

from cite_live.catalogue import has_listed_production, listed
from cite_live.models import Artist, Chapter, Credit, Production, Tag, Venue, production_tags

# Letters that NFKD does not split into a base letter and a combining accent.
_FOLDS = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th"})
_NOT_WORD = re.compile(r"[\W_]+")
MAX_QUERY_WORDS = 8
MAX_WORD_LENGTH = 100
# A search counts its matches up to this many, then says "more than".
COUNT_LIMIT = 1_000
# SQLite narrows a search by its FTS5 index when it finds at most this many rows: up to there,
# looking them up beats reading the list in order (a word this common is found in the first
# rows of the list), and they are found in a few milliseconds.
NARROWING_LIMIT = 10_000
# Trigram indexes see words of three characters or more.
TRIGRAM = 3
# A query of one- and two-letter words only looks among this many of the newest productions.
SHORT_QUERY_ROWS = 5_000


def normalize(text: str | None) -> str:
    """Lower-case, accent-free words, single-spaced: "L’Été Électro!" → "l ete electro"."""
    if not text:
        return ""
    folded = text.casefold().translate(_FOLDS)
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch)
    )
    return " ".join(_NOT_WORD.sub(" ", stripped).split())


def query_words(q: str | None) -> list[str]:
    """The distinct words of a visitor's query, normalized, bounded in number and length."""
    words: list[str] = []
    for word in normalize(q).split():
        word = word[:MAX_WORD_LENGTH]
        if word not in words:
            words.append(word)
    return words[:MAX_QUERY_WORDS]


def _matches(column: Any, q: str | None) -> ColumnElement[bool]:
    # autoescape: a "%" or "_" in a word is a character, never a wildcard. A word too short for
    # a trigram is matched on an expression no index covers: PostgreSQL would otherwise read
    # the whole of its trigram index for it (6 s at a million productions).
    return and_(
        true(),
        *(
            (column if len(word) >= TRIGRAM else column.concat("")).contains(word, autoescape=True)
            for word in query_words(q)
        ),
    )


def production_match(q: str | None) -> ColumnElement[bool]:
    """A WHERE clause: every word of ``q`` occurs in the production's search text."""
    return _matches(Production.search_text, q)


def artist_match(q: str | None) -> ColumnElement[bool]:
    """A WHERE clause: every word of ``q`` occurs in the artist's search text."""
    return _matches(Artist.search_text, q)


def fts_query(q: str | None) -> str | None:
    """The FTS5 query finding the rows that hold every word of ``q`` of three characters or
    more, each a quoted string (so "AND", "NEAR", "*" or "-" are text, never syntax); None when
    ``q`` has no such word. The trigram tokenizer matches a quoted string as a substring."""
    words = [word for word in query_words(q) if len(word) >= TRIGRAM]
    if not words:
        return None
    return " AND ".join('"' + word.replace('"', '""') + '"' for word in words)


def _index_hits(model: type[Artist] | type[Production], q: str | None) -> Select[Any] | None:
    expression = fts_query(q)
    if expression is None:
        return None
    name = f"{model.__tablename__}_search"
    index = table(name, column("rowid"))
    return select(index.c.rowid).where(literal_column(name).op("MATCH")(expression))


def _rowid(model: type[Artist] | type[Production]) -> ColumnElement[Any]:
    # FTS5 shares the rowid of the table it indexes: artists' is their id, productions' (whose
    # key is text) SQLite's own.
    rowid: ColumnElement[Any] = literal_column("productions.rowid")
    return rowid if model is Production else Artist.id.expression


@dataclass(frozen=True)
class Narrowing:
    """What the index adds to a search's WHERE clauses: ``rows`` for the page, ``count`` for
    counting (the first :data:`NARROWING_LIMIT` rows the index finds, when it finds more:
    enough to tell "more than :data:`COUNT_LIMIT`" in most cases)."""

    rows: ColumnElement[bool]
    count: ColumnElement[bool] | None = None


def narrowing(session: Session, model: type[Artist] | type[Production], q: str | None) -> Narrowing:
    """The rows of ``model`` that SQLite's trigram index finds for ``q``, when it finds few
    enough that looking them up beats reading the list in order; nothing on PostgreSQL, whose
    planner uses its own index for the LIKE. For a query of short words only, on both, the
    :data:`SHORT_QUERY_ROWS` newest listed productions."""
    hits = _index_hits(model, q)
    if hits is None and model is Production and query_words(q):
        # From the date of the last of them on: a range of the listing index, read in order.
        # A date, not a subquery, so that PostgreSQL's planner sees how narrow it is.
        last = session.scalar(
            select(Production.published_at)
            .where(listed())
            .order_by(Production.published_at.desc())
            .offset(SHORT_QUERY_ROWS - 1)
            .limit(1)
        )
        return Narrowing(true() if last is None else Production.published_at >= last)
    if hits is None or session.get_bind().dialect.name != "sqlite":
        return Narrowing(true())
    first = hits.limit(NARROWING_LIMIT + 1).subquery()
    found = session.scalar(select(func.count()).select_from(first)) or 0
    if found <= NARROWING_LIMIT:
        return Narrowing(_rowid(model).in_(hits))
    return Narrowing(true(), _rowid(model).in_(hits.limit(NARROWING_LIMIT)))


def count_up_to(session: Session, query: Select[Any], limit: int | None = None) -> int:
    """How many rows ``query`` (a select of one column) finds, counting no further than
    ``limit + 1`` (by default :data:`COUNT_LIMIT` + 1): more than ``limit`` is all a search
    page says of a common word."""
    limit = COUNT_LIMIT if limit is None else limit
    counted = query.limit(limit + 1).subquery()
    return session.scalar(select(func.count()).select_from(counted)) or 0


def count_matches(
    session: Session, query: Select[Any], narrowed: Narrowing, limit: int | None = None
) -> int:
    """:func:`count_up_to` for a search, through the first rows the index finds when it finds
    many: they hold more than ``limit`` matches unless the other filters leave few of them."""
    limit = COUNT_LIMIT if limit is None else limit
    if narrowed.count is not None:
        total = count_up_to(session, query.where(narrowed.count), limit)
        if total > limit:
            return total
    return count_up_to(session, query.where(narrowed.rows), limit)


def search_artists(
    session: Session, q: str | None, *, offset: int, limit: int
) -> tuple[list[Artist], int]:
    """Artists matching ``q`` (all of them for an empty query) who have a listed production, by
    name, and how many in all, counted up to :data:`COUNT_LIMIT` + 1."""
    narrowed = narrowing(session, Artist, q)
    where = and_(artist_match(q), has_listed_production())
    total = count_matches(session, select(Artist.id).where(where), narrowed)
    where = and_(where, narrowed.rows)
    rows = session.scalars(
        select(Artist)
        .where(where)
        .order_by(Artist.search_text, Artist.id)
        .offset(offset)
        .limit(limit)
    ).all()
    return list(rows), total


# --- keeping search_text up to date --------------------------------------------------------------


def _join(parts: Iterable[str | None]) -> str:
    return " ".join(word for part in parts if part for word in [normalize(part)] if word)


def artist_text(artist: Artist) -> str:
    disciplines = [d for d in (artist.disciplines or []) if isinstance(d, str)]
    return _join([artist.name, artist.commune, *disciplines, artist.bio, artist.bio_en])


def production_text(
    session: Session, production: Production, pending: Sequence[Credit | Chapter] = ()
) -> str:
    """The search text of ``production``; ``pending`` are credits and chapters about to be
    inserted that name it by id only, so its collections do not hold them yet."""
    venue = production.venue
    if production.venue_id is not None and (venue is None or venue.id != production.venue_id):
        venue = session.get(Venue, production.venue_id)
    credits = [c for c in production.credits if c not in session.deleted]
    chapters = [c for c in production.chapters if c not in session.deleted]
    credits += [c for c in pending if isinstance(c, Credit) and c not in credits]
    chapters += [c for c in pending if isinstance(c, Chapter) and c not in chapters]
    names: list[str | None] = []
    for credit in credits:
        artist = credit.artist
        if artist is None and credit.artist_id is not None:
            artist = session.get(Artist, credit.artist_id)
        names.append(artist.name if artist is not None else None)
    return _join(
        [
            production.title,
            production.title_en,
            *names,
            venue.name if venue else None,
            venue.commune if venue else None,
            *(tag.name for tag in production.tags),
            *(chapter.title for chapter in sorted(chapters, key=lambda c: c.start or 0)),
            production.description,
            production.description_en,
        ]
    )


_PRODUCTION_FIELDS = (
    "title",
    "title_en",
    "description",
    "description_en",
    "venue_id",
    "venue",
    "credits",
    "tags",
    "chapters",
)
_ARTIST_FIELDS = ("name", "commune", "disciplines", "bio", "bio_en")


def _changed(obj: Any, fields: Iterable[str]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in fields)


def _before_flush(  # noqa: C901 - what re-indexes what, for every model, read in one place
    session: Session, _flush_context: Any, _instances: Any
) -> None:
    productions: dict[int, Production] = {}
    artists: dict[int, Artist] = {}
    pending: dict[str, list[Credit | Chapter]] = {}

    def add(production: Production | None) -> None:
        if production is not None and production not in session.deleted:
            productions[id(production)] = production

    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Production):
            if obj in session.new or _changed(obj, _PRODUCTION_FIELDS):
                add(obj)
        elif isinstance(obj, Artist):
            if obj in session.new or _changed(obj, _ARTIST_FIELDS):
                artists[id(obj)] = obj
                if obj not in session.new and _changed(obj, ("name",)):
                    for credit in obj.credits:
                        add(credit.production)
        elif isinstance(obj, Credit | Chapter):
            production = obj.production
            if production is None and obj.production_id is not None:
                production = session.get(Production, obj.production_id)
                pending.setdefault(obj.production_id, []).append(obj)
            add(production)
        elif isinstance(obj, Venue) and obj not in session.new:
            if _changed(obj, ("name", "commune")):
                for production in session.scalars(
                    select(Production).where(Production.venue_id == obj.id)
                ):
                    add(production)
        elif isinstance(obj, Tag) and obj not in session.new and _changed(obj, ("name",)):
            tagged = select(production_tags.c.production_id).where(
                production_tags.c.tag_id == obj.id
            )
            for production in session.scalars(select(Production).where(Production.id.in_(tagged))):
                add(production)
    for obj in session.deleted:
        if isinstance(obj, Credit | Chapter):
            add(session.get(Production, obj.production_id))

    for artist in artists.values():
        text = artist_text(artist)
        if artist.search_text != text:
            artist.search_text = text
    for production in productions.values():
        text = production_text(session, production, pending.get(production.id, ()))
        if production.search_text != text:
            production.search_text = text


def install(sessions: sessionmaker[Session]) -> None:
    """Keep search_text up to date in every session ``sessions`` makes (idempotent)."""
    if not event.contains(sessions, "before_flush", _before_flush):
        event.listen(sessions, "before_flush", _before_flush)


def needs_reindex(session: Session) -> bool:
    """True when some artist or production has never been indexed (its text is empty)."""
    for model in (Artist, Production):
        if session.scalar(select(model.id).where(model.search_text == "").limit(1)) is not None:
            return True
    return False


def reindex(session: Session) -> int:
    """Recompute every search_text (rows written before the listener existed); returns how many
    rows changed."""
    changed = 0
    for artist in session.scalars(select(Artist)):
        text = artist_text(artist)
        if artist.search_text != text:
            artist.search_text, changed = text, changed + 1
    query = select(Production).options(
        selectinload(Production.credits).selectinload(Credit.artist),
        selectinload(Production.tags),
        selectinload(Production.chapters),
        selectinload(Production.venue),
    )
    for production in session.scalars(query):
        text = production_text(session, production)
        if production.search_text != text:
            production.search_text, changed = text, changed + 1
    return changed
