"""What every view of a collection shows alike: its title in the visitor's language, its cover,
its addresses, its productions as the playlist plays them, its API object and its oEmbed
answer. The public page, the studio, the feed, the playlist player, the API and oEmbed take what
they show from here (as cite_live.presenter does for productions).

``items`` are always what visitors may see of it (``collections.shown_items``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from cite_live.catalogue import picture_key
from cite_live.i18n import fallback_lang, pick
from cite_live.metadata import PROVIDER_NAME, image_size
from cite_live.models import Collection, Production, aware
from cite_live.player import player_data
from cite_live.presenter import artist_url, media_url, production_json
from cite_live.storage import ObjectStore
from cite_live.vocabulary import COLLECTION_KIND_LABELS, label
from cite_live.web.urls import Urls

#: The playlist player's frame: as wide as the partner's column, this tall.
EMBED_WIDTH = 640
EMBED_HEIGHT = 400


def title_of(collection: Collection, lang: str) -> str:
    return pick(collection.title, collection.title_en, lang)


def title_lang_of(collection: Collection, lang: str) -> str | None:
    """The language of :func:`title_of` when it fell back to the other one, else None."""
    return fallback_lang(collection.title, collection.title_en, lang)


def description_of(collection: Collection, lang: str) -> str:
    return pick(collection.description, collection.description_en, lang)


def description_lang_of(collection: Collection, lang: str) -> str | None:
    return fallback_lang(collection.description, collection.description_en, lang)


def picture(collection: Collection, items: Sequence[Production]) -> str | None:
    """The key of its picture: its cover, else the picture of its first production shown."""
    if collection.cover_key:
        return collection.cover_key
    return next((key for p in items if (key := picture_key(p))), None)


def page_url(collection: Collection, urls: Urls) -> str:
    return urls.absolute(urls.collection(collection.slug))


def embed_url(collection: Collection, urls: Urls) -> str:
    return urls.absolute(urls.embed_collection(collection.id))


def embed_snippet(src: str, title: str, height: int = EMBED_HEIGHT) -> str:
    """The iframe a partner pastes: the width of their column, a fixed height; attribute values
    escaped, as it is HTML in their page."""
    return (
        f'<iframe src="{html.escape(src)}" width="100%" height="{height}" '
        'style="border:0;max-width:100%" allow="autoplay; fullscreen; picture-in-picture" '
        f'allowfullscreen loading="lazy" title="{html.escape(title[:200])}"></iframe>'
    )


def card(
    collection: Collection,
    image_key: str | None,
    count: int,
    store: ObjectStore,
    urls: Urls,
    lang: str,
) -> dict[str, Any]:
    """What a list shows of a collection."""
    return {
        "id": collection.id,
        "url": urls.collection(collection.slug),
        "title": title_of(collection, lang),
        "title_lang": title_lang_of(collection, lang),
        "kind": collection.kind,
        "kind_label": label(COLLECTION_KIND_LABELS, collection.kind, lang),
        "image": media_url(store, urls.site)(image_key),
        "count": count,
    }


def playlist(
    items: Sequence[Production], store: ObjectStore, site_url: str, lang: str
) -> list[dict[str, Any]]:
    """Each production as the playlist player lists and plays it (public media only: ``items``
    are listed productions)."""
    entries = []
    for production in items:
        data = player_data(production, store, site_url, lang=lang)
        if not data["ready"]:
            continue
        names = list(dict.fromkeys(c.artist.name for c in production.credits))
        entries.append({"data": data, "artists": names})
    return entries


def collection_json(
    collection: Collection, items: Sequence[Production], store: ObjectStore, urls: Urls
) -> dict[str, Any]:
    """The API object of a public collection, with the productions it shows."""
    key = picture(collection, items)
    return {
        "id": collection.id,
        "slug": collection.slug,
        "kind": collection.kind,
        "title": collection.title,
        "title_en": collection.title_en,
        "description": collection.description,
        "description_en": collection.description_en,
        "cover_url": media_url(store, urls.site)(key),
        "page_url": page_url(collection, urls),
        "embed_url": embed_url(collection, urls),
        "feed_url": urls.absolute(urls.collection_feed(collection.slug)),
        "podcast_url": (
            urls.absolute(urls.collection_podcast(collection.slug))
            if collection.kind == "podcast"
            else None
        ),
        "updated_at": aware(collection.updated_at).isoformat(),
        "items": [production_json(p, store, urls) for p in items],
    }


def author(collection: Collection, urls: Urls) -> tuple[str, str]:
    """Who made it, for oEmbed and the feed: its maker's first artist profile, else the site."""
    owner = collection.owner
    if owner is not None and owner.artists:
        first = min(owner.artists, key=lambda artist: artist.id)
        return first.name, artist_url(first.slug, urls)
    return PROVIDER_NAME, urls.absolute(urls.home())


def oembed(
    collection: Collection,
    items: Sequence[Production],
    store: ObjectStore,
    urls: Urls,
    lang: str,
    *,
    maxwidth: int | None = None,
    maxheight: int | None = None,
    cache_age: int = 3600,
) -> dict[str, Any]:
    """The oEmbed 1.0 answer for the collection's page: a "rich" iframe of its playlist player,
    as wide as the consumer's column and of a fixed height (shrunk to ``maxheight``), its maker
    and its cover as thumbnail (when it fits ``maxwidth`` × ``maxheight``)."""
    title = title_of(collection, lang)
    width = max(1, min(EMBED_WIDTH, maxwidth or EMBED_WIDTH))
    height = max(1, min(EMBED_HEIGHT, maxheight or EMBED_HEIGHT))
    name, url = author(collection, urls)
    data: dict[str, Any] = {
        "version": "1.0",
        "type": "rich",
        "title": title,
        "author_name": name,
        "author_url": url,
        "provider_name": PROVIDER_NAME,
        "provider_url": urls.absolute(urls.home()),
        "html": embed_snippet(embed_url(collection, urls), title, height),
        "width": width,
        "height": height,
        "cache_age": cache_age,
    }
    key = picture(collection, items)
    size = image_size(store, key) if key else None
    if (
        key
        and size
        and (maxwidth is None or size[0] <= maxwidth)
        and (maxheight is None or size[1] <= maxheight)
    ):
        data["thumbnail_url"] = media_url(store, urls.site)(key)
        data["thumbnail_width"], data["thumbnail_height"] = size
    return data
