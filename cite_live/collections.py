"""Collections of productions: a festival's highlight, a season at the Cité, an album, a podcast
series. Each takes the session its caller owns.

Who: an artist makes collections of the productions they own or are credited on; an admin of
any production, and may edit every collection (one with no owner is the site's own). Nobody
else learns a collection exists until its maker makes it public.

What a visitor sees of a public collection (its page, feed, player, oEmbed and API object) are
only its *listed* productions, ready and public (``catalogue.listed``): a private, unlisted,
draft, processing or failed production in it is left out everywhere, as if it were not there,
so that a collection never reveals one. Its managers see every item, with its state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session, selectinload

from cite_live.auth import CurrentUser
from cite_live.catalogue import card_query, listed, slugify
from cite_live.models import Collection, CollectionItem, Credit, Production
from cite_live.storage import media_key
from cite_live.vocabulary import COLLECTION_KINDS, COLLECTION_STATES

MAX_ITEMS = 200
MAX_TITLE = 300
MAX_DESCRIPTION = 20_000
# The productions a studio's list offers to add; beyond, the newest.
MAX_OFFERED = 500
# Where collections' covers live in the store, apart from any production's media.
COVERS_PREFIX = "collections/"


@dataclass(frozen=True)
class Fields:
    """What the edit form sets; checked by :meth:`problems` before it is applied."""

    title: str
    title_en: str
    description: str
    description_en: str
    kind: str
    state: str

    def problems(self) -> dict[str, str]:
        """Field name → the code of what is wrong with it (see cite_live.web.studio_collections)."""
        found: dict[str, str] = {}
        if not self.title.strip():
            found["title"] = "missing"
        elif len(self.title) > MAX_TITLE:
            found["title"] = "too-long"
        if len(self.title_en) > MAX_TITLE:
            found["title_en"] = "too-long"
        for name in ("description", "description_en"):
            if len(getattr(self, name)) > MAX_DESCRIPTION:
                found[name] = "too-long"
        if self.kind not in COLLECTION_KINDS:
            found["kind"] = "unknown"
        if self.state not in COLLECTION_STATES:
            found["state"] = "unknown"
        return found


# --- who -----------------------------------------------------------------------------------------


def can_edit(user: CurrentUser | None, collection: Collection) -> bool:
    """Its maker and the admins."""
    if user is None:
        return False
    return user.is_admin or (collection.owner_id is not None and collection.owner_id == user.id)


def offered(user: CurrentUser) -> Select[Any]:
    """The productions ``user`` may put in a collection: an admin any; an artist those they own
    (whatever their state) and those crediting one of their artist profiles that are not
    private (someone else's private production stays theirs)."""
    query: Select[Any] = select(Production)
    if user.is_admin:
        return query
    mine = Production.owner_id == user.id
    if not user.artist_ids:
        return query.where(mine)
    credited = Production.credits.any(Credit.artist_id.in_(sorted(user.artist_ids)))
    return query.where(or_(mine, credited & (Production.visibility != "private")))


def offered_list(session: Session, user: CurrentUser) -> list[Production]:
    return list(
        session.scalars(
            offered(user).order_by(Production.created_at.desc(), Production.id).limit(MAX_OFFERED)
        )
    )


def may_add(session: Session, user: CurrentUser, production_id: str) -> Production | None:
    """The production ``production_id`` when ``user`` may put it in a collection, else None."""
    found: Production | None = session.scalars(
        offered(user).where(Production.id == production_id)
    ).first()
    return found


def editable(session: Session, user: CurrentUser) -> list[Collection]:
    """The collections ``user`` may edit, most recently changed first."""
    query = select(Collection).options(selectinload(Collection.items))
    if not user.is_admin:
        query = query.where(Collection.owner_id == user.id)
    return list(session.scalars(query.order_by(Collection.updated_at.desc(), Collection.id)))


def managed(session: Session, user: CurrentUser, collection_id: str) -> Collection | None:
    """The collection ``collection_id`` when ``user`` may edit it; None otherwise, exactly as
    when there is none."""
    found = session.get(Collection, collection_id)
    return found if found is not None and can_edit(user, found) else None


# --- making and changing -------------------------------------------------------------------------


def new_slug(session: Session, title: str) -> str:
    """A slug of ``title`` no other collection holds (-2, -3… when it is taken)."""
    base = slugify(title, fallback="collection")
    taken = set(
        session.scalars(
            select(Collection.slug).where(
                (Collection.slug == base) | Collection.slug.like(f"{base}-%")
            )
        )
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def create(session: Session, user: CurrentUser, title: str, kind: str) -> Collection:
    """A new draft collection; an admin's belongs to the site (no owner)."""
    collection = Collection(
        title=title[:MAX_TITLE],
        slug=new_slug(session, title),
        kind=kind if kind in COLLECTION_KINDS else "album",
        state="draft",
        description="",
        owner_id=None if user.is_admin else user.id,
    )
    session.add(collection)
    session.flush()
    return collection


def apply(collection: Collection, fields: Fields) -> None:
    collection.title = fields.title.strip()
    collection.title_en = fields.title_en.strip() or None
    collection.description = fields.description.strip()
    collection.description_en = fields.description_en.strip() or None
    collection.kind = fields.kind
    collection.state = fields.state


def add(session: Session, collection: Collection, production: Production) -> bool:
    """Put ``production`` last in ``collection``; False when it is there already or full."""
    ids = [item.production_id for item in collection.items]
    if production.id in ids or len(ids) >= MAX_ITEMS:
        return False
    collection.items.append(CollectionItem(production_id=production.id, position=len(ids)))
    session.flush()
    return True


def remove(session: Session, collection: Collection, production_id: str) -> bool:
    """Take ``production_id`` out of ``collection``; False when it was not in it."""
    kept = [item for item in collection.items if item.production_id != production_id]
    if len(kept) == len(collection.items):
        return False
    session.execute(
        delete(CollectionItem).where(
            CollectionItem.collection_id == collection.id,
            CollectionItem.production_id == production_id,
        )
    )
    session.expire(collection, ["items"])
    _renumber(collection.items)
    return True


def move(collection: Collection, production_id: str, step: int) -> bool:
    """Move ``production_id`` one place up (``step`` -1) or down (+1); False when it is not in
    the collection or already at that end."""
    items = list(collection.items)
    where = next((i for i, item in enumerate(items) if item.production_id == production_id), None)
    if where is None or step not in (-1, 1) or not 0 <= where + step < len(items):
        return False
    items[where], items[where + step] = items[where + step], items[where]
    _renumber(items)
    return True


def _renumber(items: Sequence[CollectionItem]) -> None:
    for position, item in enumerate(items):
        item.position = position


def cover_key(collection_id: str, name: str) -> str:
    """The key of a cover of ``collection_id``: a fresh ``name`` per upload, as for productions."""
    return media_key(f"{COVERS_PREFIX}{slugify(collection_id, 'x')}/covers/", f"{name}.jpg")


# --- what visitors see ---------------------------------------------------------------------------


def public_at(session: Session, slug: str) -> Collection | None:
    """The public collection at ``/collections/{slug}``."""
    found: Collection | None = session.scalars(
        select(Collection).where(Collection.slug == slug, Collection.state == "public")
    ).first()
    return found


def public_by_id(session: Session, collection_id: str) -> Collection | None:
    found = session.get(Collection, collection_id)
    return found if found is not None and found.state == "public" else None


def shown_items(session: Session, collection_id: str, query: Any = None) -> list[Production]:
    """The listed productions of the collection, in its order (``query``: ``card_query()`` with
    more options)."""
    base = card_query() if query is None else query
    return list(
        session.scalars(
            base.join(CollectionItem, CollectionItem.production_id == Production.id)
            .where(CollectionItem.collection_id == collection_id, listed())
            .order_by(CollectionItem.position, CollectionItem.id)
        )
    )


def public_page(session: Session, offset: int, limit: int) -> tuple[list[Collection], int]:
    """A page of the public collections, most recently changed first, and how many there are."""
    where = Collection.state == "public"
    total = session.scalar(select(func.count()).select_from(Collection).where(where)) or 0
    rows = session.scalars(
        select(Collection)
        .where(where)
        .order_by(Collection.updated_at.desc(), Collection.id)
        .offset(offset)
        .limit(limit)
    )
    return list(rows), total


def shown_counts(session: Session, collection_ids: Sequence[str]) -> dict[str, int]:
    """How many listed productions each collection shows."""
    if not collection_ids:
        return {}
    rows = session.execute(
        select(CollectionItem.collection_id, func.count())
        .join(Production, Production.id == CollectionItem.production_id)
        .where(CollectionItem.collection_id.in_(collection_ids), listed())
        .group_by(CollectionItem.collection_id)
    )
    return {str(row[0]): int(row[1]) for row in rows}


def holding(session: Session, production_id: str) -> list[Collection]:
    """The public collections ``production_id`` is in, by title."""
    return list(
        session.scalars(
            select(Collection)
            .join(CollectionItem, CollectionItem.collection_id == Collection.id)
            .where(CollectionItem.production_id == production_id, Collection.state == "public")
            .order_by(Collection.title, Collection.id)
        )
    )
