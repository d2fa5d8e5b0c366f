"""Domain functions over the catalogue; each takes the session its caller owns."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from slugify import slugify as _slugify
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from cite_live.models import Artist, Credit, Job, Production, Tag, Venue

MAX_SLUG = 80
DEFAULT_ROLE = "performer"


def slugify(text: str, fallback: str = "sans-titre") -> str:
    """An ASCII slug: "Élodie Fauré" → "elodie-faure"."""
    return _slugify(text, max_length=MAX_SLUG, word_boundary=True) or fallback


def unique_slug(
    session: Session,
    model: type[Artist | Venue | Tag | Production],
    text: str,
    *,
    own_id: Any = None,
) -> str:
    """The slug of ``text``, suffixed -2, -3… until no other row of ``model`` holds it."""
    base = slugify(text)
    query = select(model.slug).where((model.slug == base) | model.slug.like(f"{base}-%"))
    if own_id is not None:
        query = query.where(model.id != own_id)
    taken = set(session.scalars(query))
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def artist_by_name(session: Session, name: str) -> Artist:
    """The artist whose slug matches ``name``, created when there is none."""
    name = " ".join(name.split())[:200]
    slug = slugify(name)
    artist = session.scalars(select(Artist).where(Artist.slug == slug)).first()
    if artist is None:
        artist = Artist(name=name, slug=slug, disciplines=[], links=[])
        session.add(artist)
        session.flush()
    return artist


def set_credits(
    session: Session, production: Production, names_and_roles: Iterable[tuple[str, str]]
) -> None:
    """Replace the credits of ``production``, keeping the order given."""
    production.credits.clear()
    session.flush()
    seen: set[tuple[int, str]] = set()
    for position, (name, role) in enumerate(names_and_roles):
        if not name.strip():
            continue
        artist = artist_by_name(session, name)
        if (artist.id, role) in seen:
            continue
        seen.add((artist.id, role))
        production.credits.append(Credit(artist=artist, role=role, position=position))


def set_tags(session: Session, production: Production, names: Iterable[str]) -> None:
    tags: list[Tag] = []
    for name in names:
        name = " ".join(name.split())[:100]
        if not name:
            continue
        slug = slugify(name)
        tag = session.scalars(select(Tag).where(Tag.slug == slug)).first()
        if tag is None:
            tag = Tag(name=name, slug=slug)
            session.add(tag)
            session.flush()
        if tag not in tags:
            tags.append(tag)
    production.tags = tags


def create_production(
    session: Session,
    *,
    title: str | None,
    filename: str,
    artists: Sequence[str] = (),
    kind: str = "video",
) -> Production:
    """A new production in ``processing``; the file name stands in for a missing title."""
    placeholder = not (title and title.strip())
    shown = (title or "").strip() or filename_title(filename)
    production = Production(
        title=shown[:300],
        title_is_placeholder=placeholder,
        slug=unique_slug(session, Production, shown),
        kind=kind,
        status="processing",
        original_filename=filename[:300],
    )
    session.add(production)
    session.flush()
    set_credits(session, production, [(name, DEFAULT_ROLE) for name in artists])
    return production


def filename_title(filename: str) -> str:
    """A readable title from a file name: "live_at-la-cite.mp4" → "live at la cite"."""
    stem = filename.rsplit("/", 1)[-1]
    if "." in stem:
        stem = stem.rsplit(".", 1)[0]
    return " ".join(stem.replace("_", " ").replace("-", " ").split()) or "Sans titre"


def retitle(session: Session, production: Production, title: str) -> None:
    production.title = title[:300]
    production.slug = unique_slug(session, Production, title, own_id=production.id)
    production.title_is_placeholder = False


def card_query() -> Any:
    """Productions with what a list shows of each: artists, current version, venue."""
    # Many-to-one relations ride along in the same query; lists come in one query each.
    return select(Production).options(
        selectinload(Production.credits).selectinload(Credit.artist),
        joinedload(Production.current_version),
        joinedload(Production.venue),
    )


def production_query() -> Any:
    """Productions with everything their page and API object show (``card_query`` + tags)."""
    return card_query().options(selectinload(Production.tags))


def get_production(session: Session, production_id: str) -> Production | None:
    return session.scalars(production_query().where(Production.id == production_id)).first()


def stored_prefixes(production: Production) -> list[str]:
    """Every key prefix or key in the store that belongs to ``production``."""
    keys = [v.prefix for v in production.versions]
    if production.original_key:
        keys.append(production.original_key)
    if production.cover_key:
        keys.append(production.cover_key)
    return keys


def active_job(session: Session, production_id: str) -> Job | None:
    return session.scalars(
        select(Job)
        .where(Job.production_id == production_id, Job.state.in_(("queued", "running")))
        .order_by(Job.id.desc())
    ).first()
