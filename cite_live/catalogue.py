"""Domain functions over the catalogue; each takes the session its caller owns.

A production's address (``/productions/{slug}``) tells nobody what they may not see, and once
someone was given it, it keeps leading to the production as long as they could see it anyway:

- Only a *listed* production (ready and public: the kind lists and search show) holds a plain
  slug, ``good`` or ``good-2``. Everything else (unlisted, private, processing, failed) holds
  ``good-<secret>``, the secret being 64 random bits, as hard to guess as a video id of the
  big video sites. So an unlisted production cannot be found by counting (``good-2``,
  ``good-3``…), and a plain slug is chosen among rows that everyone can see: a private or failed
  production of someone else never pushes a newcomer to ``good-2``.
- The slug follows the production's title and state (:func:`install`'s listener): renamed, it
  gets a slug of the new title; made listed, a plain slug; no longer listed, a new secret one;
  made unlisted, always a new secret, so that whoever knew its address before (public, or
  unlisted before) loses it.
- The addresses it held before that others were given stay in ``production_slugs``
  (:class:`~cite_live.models.ProductionSlug`), and its page there redirects (301) to its present
  one: a plain slug it held while listed leads to it while it is listed; a secret one it held
  while unlisted, while it is unlisted or listed, and never again once it is made unlisted anew.
  A private production's address (a draft's, say) was given to nobody: none is kept. A former
  plain slug of a listed production is never handed to a newcomer; that of a hidden one is, and
  then leads to the newcomer.
- A production an artist uploads is a *draft* (``publish_as``: the visibility it takes once
  published) and private until they publish it (:func:`publish`); nothing else tells a draft
  from a private production, so every check of what is private covers drafts.
- Its id is no secret (listed productions show it in the API, the feeds and media keys): an
  unlisted production is reached by its secret address, never by its id, except by its managers
  (``auth.can_view``). :func:`address` is what names it in ``/embed/`` and the API.
"""

from __future__ import annotations

import base64
import logging
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from slugify import slugify as _slugify
from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    event,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, joinedload, selectinload

from cite_live.models import (
    Artist,
    Credit,
    Job,
    MediaVersion,
    Production,
    ProductionSlug,
    Tag,
    Venue,
    utcnow,
)
from cite_live.storage import ObjectStore, StorageError
from cite_live.vocabulary import DOWNLOADABLE_LICENCES
from transcoder.playlist import with_language

logger = logging.getLogger(__name__)

MAX_SLUG = 80
DEFAULT_ROLE = "performer"
# 64 bits: nobody finds an unlisted production by trying addresses.
SECRET_BYTES = 8
# Every id and slug is made of these; anything else (a NUL byte, say, which PostgreSQL refuses
# in a query) names nothing and never reaches the database.
_ADDRESS = re.compile(r"[A-Za-z0-9_-]{1,220}")


def slugify(text: str, fallback: str = "sans-titre") -> str:
    """An ASCII slug: "Élodie Fauré" → "elodie-faure"."""
    return _slugify(text, max_length=MAX_SLUG, word_boundary=True) or fallback


def unique_slug(
    session: Session,
    model: type[Artist | Venue | Tag | Production],
    text: str,
    *,
    own_id: Any = None,
    also_taken: Iterable[str] = (),
) -> str:
    """The slug of ``text``, suffixed -2, -3… until no other row of ``model`` holds it (nor
    ``also_taken``).

    For productions, only listed ones hold slugs of this form (the others' end in a secret),
    so the choice depends only on what everyone can see."""
    base = slugify(text)
    query = select(model.slug).where((model.slug == base) | model.slug.like(f"{base}-%"))
    if own_id is not None:
        query = query.where(model.id != own_id)
    taken = set(session.scalars(query)) | set(also_taken)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def is_listed(production: Production) -> bool:
    """Ready and public: shown in lists, and the only kind at a plain slug."""
    return production.status == "ready" and production.visibility == "public"


def listed() -> ColumnElement[bool]:
    """:func:`is_listed` in a query."""
    return and_(Production.status == "ready", Production.visibility == "public")


def has_listed_production() -> ColumnElement[bool]:
    """Artists credited on at least one listed production: the only ones lists, the A–Z index,
    search and counts show (an artist with nothing to play would be a dead end)."""
    return Artist.credits.any(Credit.production.has(listed()))


def playing_version(production: Production) -> MediaVersion | None:
    """The version that plays: the current one of a ready production; None otherwise."""
    return production.current_version if production.status == "ready" else None


def announce_language(store: ObjectStore, master_key: str, language: str) -> None:
    """The master playlist at ``master_key`` rewritten so that its audio renditions announce
    ``language`` (``LANGUAGE``, BCP 47): the production's language is what players are told,
    from the moment its form changes it, with no new transcode. A master with nothing to say
    it on (an audio production's variants are its audio) is left as it is, and so is a master
    the store cannot give or take (logged: the production keeps its language, which the next
    transcode announces)."""
    try:
        text = store.read_bytes(master_key).decode("utf-8")
        rewritten = with_language(text, language)
        if rewritten != text:
            store.put_bytes(master_key, rewritten.encode("utf-8"))
    except (StorageError, UnicodeDecodeError) as exc:
        logger.warning("the language of %s was not rewritten: %s", master_key, exc)


def may_allow_download(licence: str | None) -> bool:
    """Whether a production under ``licence`` may be handed to listeners as a file."""
    return licence in DOWNLOADABLE_LICENCES


def download_key(production: Production) -> str | None:
    """The key of the file a listener may save from the production's page: its version's
    ``.m4a`` (audio only), when its artist allows it, its licence permits it, and it is not
    private (nor a draft); None otherwise."""
    version = playing_version(production)
    if (
        version is None
        or not production.allow_download
        or not may_allow_download(production.licence)
        or production.visibility == "private"
    ):
        return None
    return version.download_key


def picture_key(production: Production) -> str | None:
    """The picture of a production, in lists, pages, the API, the player and feeds: the cover the
    artist chose, else the poster (video) or cover (audio) of the version that plays; None until
    a version plays."""
    version = playing_version(production)
    if version is None:
        return None
    return production.cover_key or version.poster_key or version.cover_key


def secret_slug(text: str) -> str:
    """``good-<secret>``: the slug of ``text`` followed by 64 random bits (11 URL-safe
    characters). Never taken already, but by a chance nobody will meet."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).rstrip(b"=").decode()
    return f"{slugify(text)}-{secret}"


def address(production: Production) -> str:
    """What names ``production`` in ``/embed/`` and the API: the secret slug of an unlisted
    production, which its id (no secret) does not replace; the id of any other."""
    return production.slug if production.visibility == "unlisted" else production.id


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
    publish_as: str | None = None,
    production_id: str | None = None,
) -> Production:
    """A new production in ``processing``; the file name stands in for a missing title (or for
    a title that is the file name's own). With ``publish_as``, a draft: private until
    :func:`publish` gives it that visibility."""
    shown = (title or "").strip() or filename_title(filename)
    production = Production(
        title=shown[:300],
        title_is_placeholder=shown == filename_title(filename),
        # Processing, so seen by its uploader alone: no plain slug until it is listed.
        slug=secret_slug(shown),
        kind=kind,
        status="processing",
        original_filename=filename[:300],
    )
    if publish_as is not None:
        production.visibility, production.publish_as = "private", publish_as
    if production_id is not None:
        # Reserved beforehand: an upload sent in parts names its original's key at its start.
        production.id = production_id
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


def retitle(production: Production, title: str) -> None:
    """Give ``production`` the title its artist (or its file's tags) chose; its address follows
    at the next flush (see the module)."""
    production.title = title[:300]
    production.title_is_placeholder = False


def publish(production: Production) -> bool:
    """Publish a draft: it takes the visibility its artist chose, and is published now if it
    is ready (else when it is: cite_live.jobs.ingest). False when it is no draft, published
    already; a request that publishes holds the row first (:func:`hold`), so that of two
    requests publishing at once the second finds it published."""
    if production.publish_as is None:
        return False
    production.visibility = production.publish_as
    _published(production)
    return True


def _published(production: Production) -> None:
    production.publish_as = None
    if production.status == "ready" and production.published_at is None:
        production.published_at = utcnow()


def hold(session: Session, production_id: str) -> None:
    """Hold the production's row until the transaction ends; call it before reading the row.
    A transaction doing the same meanwhile waits here until this one ends, then reads what it
    wrote: what a request decides from the row (publishing it, the address of its state) is
    never decided from a row that another request is changing."""
    session.execute(
        update(Production)
        .where(Production.id == production_id)
        # Changes nothing: the write is what takes the lock (SQLite takes its only lock, on
        # the whole database, at a transaction's first write).
        .values(updated_at=Production.updated_at)
        .execution_options(synchronize_session=False)
    )


def _slug_for(session: Session, production: Production, also_taken: Iterable[str] = ()) -> str:
    """A new slug of the production's title for its present state (see the module)."""
    if not is_listed(production):
        return secret_slug(production.title)
    base = slugify(production.title)
    if session.get_bind().dialect.name == "postgresql":
        # Two transactions listing a "good" at once would both choose "good" and one would fail
        # at commit; this one waits here for the other to end, then sees what it chose.
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:base))"), {"base": "slug:" + base}
        )
    # A plain address that leads to another listed production is not free.
    leading_elsewhere = session.scalars(
        select(ProductionSlug.slug)
        .join(Production, Production.id == ProductionSlug.production_id)
        .where(
            (ProductionSlug.slug == base) | ProductionSlug.slug.like(f"{base}-%"),
            ProductionSlug.secret.is_(False),
            ProductionSlug.production_id != production.id,
            listed(),
        )
    )
    return unique_slug(
        session,
        Production,
        production.title,
        own_id=production.id,
        also_taken=[*also_taken, *leading_elsewhere],
    )


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


def production_at(session: Session, slug: str, query: Any = None) -> Production | None:
    """The production whose page is ``/productions/{slug}``: the one holding the slug, else the
    one that held it before while that address still leads to it (see the module; its page
    redirects to its present address). ``query`` is ``production_query()`` with more options,
    when the caller needs them."""
    if not _ADDRESS.fullmatch(slug):
        return None
    base = production_query() if query is None else query
    found: Production | None = session.scalars(base.where(Production.slug == slug)).first()
    if found is None:
        found = session.scalars(
            base.join(ProductionSlug, ProductionSlug.production_id == Production.id).where(
                ProductionSlug.slug == slug,
                or_(
                    listed(),
                    and_(ProductionSlug.secret.is_(True), Production.visibility == "unlisted"),
                ),
            )
        ).first()
    return found


def production_by_address(
    session: Session, identifier: str, query: Any = None
) -> tuple[Production, bool] | None:
    """The production ``identifier`` names in ``/embed/`` and the API: its id, or the address of
    its page (see :func:`address`). The flag says whether it was named by that address, which
    for an unlisted production is the secret that opens it."""
    if not _ADDRESS.fullmatch(identifier):
        return None
    base = production_query() if query is None else query
    found: Production | None = session.scalars(base.where(Production.id == identifier)).first()
    if found is not None:
        return found, False
    found = production_at(session, identifier, base)
    return (found, True) if found is not None else None


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


# --- keeping addresses in step with visibility and status ----------------------------------------


def _before(production: Production, attribute: str) -> Any:
    """The value ``attribute`` had when the row was last loaded or flushed."""
    history = inspect(production).attrs[attribute].history
    return history.deleted[0] if history.deleted else getattr(production, attribute)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    chosen: list[str] = []
    for production in [*session.new, *session.dirty]:
        if not isinstance(production, Production):
            continue
        if production in session.new:
            if production.slug is None:
                production.slug = _slug_for(session, production, chosen)
                chosen.append(production.slug)
                _take(session, production.slug)
            continue
        if production.publish_as is not None and production.visibility != "private":
            # Made visible some other way (an administrator's "publish"): published.
            _published(production)
        old_visibility = _before(production, "visibility")
        old_status = _before(production, "status")
        was_listed = old_status == "ready" and old_visibility == "public"
        made_unlisted = production.visibility == "unlisted" and old_visibility != "unlisted"
        renamed = slugify(_before(production, "title")) != slugify(production.title)
        if not (renamed or made_unlisted or is_listed(production) != was_listed):
            continue
        former = _before(production, "slug")
        production.slug = _slug_for(session, production, chosen)
        chosen.append(production.slug)
        _take(session, production.slug)
        if made_unlisted:
            # Whoever knew an address of it before (unlisted, then public) loses it.
            session.execute(
                delete(ProductionSlug).where(
                    ProductionSlug.production_id == production.id, ProductionSlug.secret.is_(True)
                )
            )
        # Kept: an address others could be given, a listed production's or an unlisted one's;
        # not a private one's (a draft's, say), nor a public one's before it was first listed.
        if former != production.slug and (was_listed or old_visibility == "unlisted"):
            _take(session, former)
            session.execute(
                insert(ProductionSlug).values(
                    slug=former, production_id=production.id, secret=not was_listed
                )
            )


def _take(session: Session, slug: str) -> None:
    """``slug`` is a production's present address: it is nobody's former one any more."""
    session.execute(delete(ProductionSlug).where(ProductionSlug.slug == slug))


def install() -> None:
    """Keep every production's address in step with what it is, in every session (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)


install()


# --- playing while it processes ------------------------------------------------------------------


class _Viewer(Protocol):
    """Who asks (``cite_live.auth.CurrentUser``): the domain needs only these two facts."""

    @property
    def id(self) -> int: ...

    @property
    def is_admin(self) -> bool: ...


def preview_version(session: Session, production: Production) -> MediaVersion | None:
    """The version that plays while ``production`` is processing: the newest one in the state
    ``preview`` (its playlists still growing, see cite_live.jobs.ingest), of a production with
    no current version. A replacement's preview is nobody's: the version it replaces plays on,
    for everyone, until the replacement is finished."""
    if production.status != "processing" or production.current_version_id is not None:
        return None
    version: MediaVersion | None = session.scalars(
        select(MediaVersion)
        .where(
            MediaVersion.production_id == production.id,
            MediaVersion.state == "preview",
            MediaVersion.master_key.is_not(None),
        )
        .order_by(MediaVersion.id.desc())
        .limit(1)
    ).first()
    return version


def may_play_preview(
    user: _Viewer | None, production: Production, *, by_address: bool = True
) -> bool:
    """Whether ``user`` may play the preview of ``production``: its owner and the admins
    always; when its artist chose to publish it as soon as it plays (``publish_early``),
    whoever may see it once it is ready, which is anyone when it is public, and whoever named an
    unlisted one by its address (``by_address``: its secret). A draft is private, so its
    managers' alone, whatever the box says."""
    if user is not None and (
        user.is_admin or (production.owner_id is not None and production.owner_id == user.id)
    ):
        return True
    if not production.publish_early:
        return False
    if production.visibility == "public":
        return True
    return production.visibility == "unlisted" and by_address


def playable_preview(
    session: Session, user: _Viewer | None, production: Production, *, by_address: bool = True
) -> MediaVersion | None:
    """:func:`preview_version` when ``user`` may play it (:func:`may_play_preview`), else
    None: what a page, the API or an embed shows of a production that is processing."""
    if production.status != "processing" or not may_play_preview(
        user, production, by_address=by_address
    ):
        return None
    return preview_version(session, production)


def preview_is_public(production: Production) -> bool:
    """Whether the preview's media is fetched at public addresses (its artist publishes it
    early, and it is not private); otherwise its managers get signed links to it."""
    return production.publish_early and production.visibility != "private"
