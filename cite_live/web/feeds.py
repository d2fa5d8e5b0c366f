"""Feeds: Atom for the site, each artist and each collection; podcasts (RSS 2.0 with the iTunes
and Podcast Index namespaces) of the site's audio and of each podcast series, with their artwork
(cite_live.podcast_art) and their episodes' setlists as JSON chapters.

They are built as ElementTree elements and serialized by it, so every title, name and tag is
text whatever characters it holds. Characters XML 1.0 cannot carry at all (most control
characters) are dropped first: a feed with one of them would not parse anywhere.
Only ready, public productions appear, newest first.

What artists write is plain text, and reaches readers as text, never as markup:

- Atom says so itself: titles and summaries are ``type="text"``.
- RSS does not say, and readers guess. An item's ``description`` is HTML to all of them, so it
  is written as HTML: each paragraph escaped, in a ``<p>``. A title is HTML to some (feedparser,
  when it looks like some) and text to others (podcast apps): one holding a "<", the only
  character that can open a tag, is escaped as HTML (the first show it as written, the others
  show the escapes); any other title reads the same both ways and is left as it is. The
  iTunes elements are plain text to everyone; the item's ``itunes:summary``, which readers
  take either way, is left out (Apple and the others read ``description``).
"""

from __future__ import annotations

import html
import json
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from sqlalchemy.orm import selectinload
from starlette.exceptions import HTTPException
from starlette.responses import Response

from cite_live import collections, podcast_art
from cite_live.catalogue import is_listed, picture_key, production_at, production_query
from cite_live.collection_view import description_of as collection_description
from cite_live.collection_view import page_url as collection_page_url
from cite_live.collection_view import title_of as collection_title
from cite_live.i18n import N_
from cite_live.listing import (
    artist_productions,
    by_slug,
    page_of_productions,
    productions_where,
)
from cite_live.metadata import PROVIDER_NAME, excerpt, image_size, stored_size
from cite_live.models import Artist, MediaVersion, Production, aware
from cite_live.presenter import (
    artist_url,
    artists_of,
    description_lang_of,
    description_of,
    page_url,
    picture_url,
    tag_name,
    title_lang_of,
    title_of,
)
from cite_live.storage import ObjectStore
from cite_live.web.context import CORS, Context, page
from cite_live.web.urls import Urls

ATOM = "http://www.w3.org/2005/Atom"
ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
MEDIA = "http://search.yahoo.com/mrss/"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ATOM_TYPE = "application/atom+xml; charset=utf-8"
RSS_TYPE = "application/rss+xml; charset=utf-8"
FEED_SIZE = 50
# Characters of a description that a feed carries.
SUMMARY_LENGTH = 2000
PUBLISHER = "Cité de la Musique, Romans-sur-Isère"
SITE_SUBTITLE = {
    "fr": "Les dernières productions enregistrées à la Cité de la Musique de Romans-sur-Isère.",
    "en": "The latest productions recorded at the Cité de la Musique of Romans-sur-Isère.",
}
PODCAST_TITLE = {"fr": "Cité Live — les productions audio", "en": "Cité Live — audio productions"}
HEADERS = {"Cache-Control": "public, max-age=300", **CORS}


def install() -> None:
    """Give the feeds' namespaces the prefixes a reader expects; ElementTree would otherwise
    invent ns0, ns1... Its table of prefixes is the process's: set by create_app, not on import
    (idempotent)."""
    ET.register_namespace("atom", ATOM)
    ET.register_namespace("itunes", ITUNES)
    ET.register_namespace("podcast", PODCAST)
    ET.register_namespace("media", MEDIA)


# Everything outside XML 1.0's Char production: C0 controls but tab, newline and carriage
# return, lone surrogates, and U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str | None) -> str:
    """``value`` with the characters XML cannot hold removed."""
    return _NOT_XML.sub("", value or "")


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: xml_text(v) for k, v in attrs.items()})
    if text is not None:
        element.text = xml_text(text)
    return element


def _rfc3339(moment: datetime) -> str:
    return aware(moment).isoformat(timespec="seconds")


def _summary(production: Production, lang: str) -> str:
    return excerpt(description_of(production, lang), SUMMARY_LENGTH)


def _who_and_where(production: Production, lang: str) -> str:
    """The text of a production without a description: its title, artists and venue (the
    words of its page's own description then, cite_live.metadata.page_metadata)."""
    names = [artist["name"] for artist in artists_of(production)]
    parts = [", ".join(names)] if names else []
    if production.venue is not None:
        parts.append(production.venue.name)
    return excerpt(" — ".join([title_of(production, lang), *parts]), SUMMARY_LENGTH)


def html_paragraphs(text: str, limit: int = SUMMARY_LENGTH) -> str:
    """``text`` as HTML that shows that very text: its paragraphs (parted by blank lines),
    escaped, each in a ``<p>``; at most ``limit`` characters of it, cut at a word."""
    paragraphs: list[str] = []
    room = limit
    for part in text.replace("\r\n", "\n").split("\n\n"):
        if room < 2:
            break
        flat = excerpt(part, room)
        if flat:
            paragraphs.append(f"<p>{html.escape(flat, quote=False)}</p>")
            room -= len(flat)
    return "".join(paragraphs)


def rss_title(text: str) -> str:
    """A title that no RSS reader takes for markup (see the module)."""
    return html.escape(text, quote=False) if "<" in text else text


def _download(production: Production, store: ObjectStore) -> tuple[str, int] | None:
    """The key and size of the downloadable file, when there is one and it can be read."""
    version = production.current_version
    if version is None or not version.download_key:
        return None
    size = stored_size(store, version.download_key)
    return (version.download_key, size) if size else None


def _serialize(root: ET.Element) -> bytes:
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


# --- Atom ----------------------------------------------------------------------------------------


def atom_feed(
    productions: Sequence[Production],
    store: ObjectStore,
    urls: Urls,
    *,
    title: str,
    subtitle: str,
    self_url: str,
    alternate_url: str,
    lang: str,
    feed_id: str,
    ids: Urls,
) -> bytes:
    """An Atom 1.0 document listing ``productions``; ``urls`` builds the site's addresses.

    Ids never change with the address a feed is read at: ``feed_id``, and for each entry the
    address of its API object on ``ids`` (``Settings.stable_url``), which names it by its
    public identifier."""
    home = urls.absolute(urls.home())
    # Atom elements are unprefixed under a default namespace declared here by hand:
    # ElementTree's default_namespace option refuses the unprefixed attributes Atom uses.
    feed = ET.Element("feed", {"xmlns": ATOM, XML_LANG: lang})
    _sub(feed, "id", feed_id)
    _sub(feed, "title", title, type="text")
    _sub(feed, "subtitle", subtitle, type="text")
    _sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    _sub(feed, "link", rel="alternate", type="text/html", href=alternate_url)
    updated = max((aware(p.updated_at) for p in productions), default=datetime.now(UTC))
    _sub(feed, "updated", _rfc3339(updated))
    author = _sub(feed, "author")
    _sub(author, "name", PUBLISHER)
    _sub(author, "uri", home)
    _sub(feed, "generator", PROVIDER_NAME, uri=home)
    for production in productions:
        _atom_entry(feed, production, store, urls, lang, ids)
    return _serialize(feed)


def _atom_entry(
    feed: ET.Element,
    production: Production,
    store: ObjectStore,
    urls: Urls,
    lang: str,
    ids: Urls,
) -> None:
    entry = _sub(feed, "entry")
    # The id must never change: the slug follows the title, the public identifier does not.
    _sub(entry, "id", ids.absolute(ids.api_production(production.id)))
    title = _sub(entry, "title", title_of(production, lang), type="text")
    # A title or summary that fell back to the other language says so, as the pages do.
    if title_lang := title_lang_of(production, lang):
        title.set(XML_LANG, title_lang)
    _sub(entry, "link", rel="alternate", type="text/html", href=page_url(production, urls))
    published = production.published_at or production.created_at
    _sub(entry, "published", _rfc3339(published))
    _sub(entry, "updated", _rfc3339(max(aware(published), aware(production.updated_at))))
    for artist in artists_of(production):
        author = _sub(entry, "author")
        _sub(author, "name", artist["name"])
        _sub(author, "uri", artist_url(artist["slug"], urls))
    # A tag's scheme is the folder of the tags' pages.
    scheme = urls.absolute(urls.tags()) + "/"
    for tag in production.tags:
        _sub(entry, "category", term=tag.slug, label=tag_name(tag, lang)[0], scheme=scheme)
    summary = _summary(production, lang)
    if summary:
        element = _sub(entry, "summary", summary, type="text")
        if summary_lang := description_lang_of(production, lang):
            element.set(XML_LANG, summary_lang)
    else:
        # Every entry has text of its own (an entry without any is flagged by the W3C feed
        # validator): who and where, as the production's page says in its description.
        _sub(entry, "summary", _who_and_where(production, lang), type="text")
    download = _download(production, store)
    if download:
        key, size = download
        href = store.public_url(key, urls.site)
        _sub(entry, "link", rel="enclosure", type="audio/mp4", length=str(size), href=href)
    picture = picture_url(production, store, urls.site)
    if picture:
        _sub(entry, f"{{{MEDIA}}}thumbnail", url=picture)


def _atom_response(body: bytes) -> Response:
    return Response(body, media_type=ATOM_TYPE, headers=HEADERS)


@page
def site_feed(ctx: Context) -> Response:
    urls, lang = ctx.urls, ctx.lang
    ids = Urls(ctx.settings.stable_url)
    with ctx.services.sessions() as session:
        rows, _ = page_of_productions(
            session, productions_where(), offset=0, limit=FEED_SIZE, query=production_query()
        )
        body = atom_feed(
            rows,
            ctx.store,
            urls,
            title=PROVIDER_NAME,
            subtitle=SITE_SUBTITLE.get(lang, SITE_SUBTITLE["fr"]),
            self_url=urls.absolute(urls.site_feed()),
            alternate_url=urls.absolute(urls.home()),
            lang=lang,
            feed_id=ids.absolute(ids.site_feed()),
            ids=ids,
        )
    return _atom_response(body)


@page
def artist_feed(ctx: Context) -> Response:
    urls, lang = ctx.urls, ctx.lang
    ids = Urls(ctx.settings.stable_url)
    slug = ctx.path_name("slug")
    with ctx.services.sessions() as session:
        found = artist_productions(session, slug, limit=FEED_SIZE, query=production_query())
        if found is None:
            raise HTTPException(404, "There is no artist with this name.")
        artist, rows, _ = found
        body = atom_feed(
            rows,
            ctx.store,
            urls,
            title=f"{artist.name} — {PROVIDER_NAME}",
            subtitle=excerpt(artist.bio) or artist.name,
            self_url=urls.absolute(urls.artist_feed(artist.slug)),
            alternate_url=artist_url(artist.slug, urls),
            lang=lang,
            feed_id=ids.absolute(ids.artist_feed(artist.slug)),
            ids=ids,
        )
    return _atom_response(body)


@page
def collection_feed(ctx: Context) -> Response:
    """A public collection's productions, in the collection's order (its hidden ones left out,
    as everywhere: cite_live.collections)."""
    urls, lang = ctx.urls, ctx.lang
    ids = Urls(ctx.settings.stable_url)
    slug = ctx.path_name("slug")
    with ctx.services.sessions() as session:
        collection = collections.public_at(session, slug) if slug else None
        if collection is None:
            raise HTTPException(404, "There is no collection at this address.")
        rows = collections.shown_items(session, collection.id, production_query())[:FEED_SIZE]
        title = collection_title(collection, lang)
        body = atom_feed(
            rows,
            ctx.store,
            urls,
            title=f"{title} — {PROVIDER_NAME}",
            subtitle=excerpt(collection_description(collection, lang)) or title,
            self_url=urls.absolute(urls.collection_feed(collection.slug)),
            alternate_url=collection_page_url(collection, urls),
            lang=lang,
            # By its public id, which never changes, unlike its slug.
            feed_id=ids.absolute(ids.api_collection(collection.id)),
            ids=ids,
        )
    return _atom_response(body)


# --- the podcasts --------------------------------------------------------------------------------

# The Podcast Index namespace's own UUID, which podcast:guid is made in (docs/tags/guid.md).
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")
CHAPTERS_TYPE = "application/json+chapters"
NO_PODCAST = N_("There is no podcast at this address.")
NO_PRODUCTION = N_("There is no production at this address.")
# A credit's role as the Podcast Taxonomy Project names it (podcast:person's group and role,
# docs/tags/person.md, taxonomy.json), for every role of vocabulary.CREDIT_ROLES.
PERSON_ROLES = {
    "performer": ("audio post-production", "music contributor"),
    "composer": ("audio post-production", "composer"),
    "author": ("writing", "songwriter"),
    "arranger": ("audio post-production", "music production"),
    "producer": ("creative direction", "producer"),
    "director": ("creative direction", "director"),
    "engineer": ("audio production", "audio engineer"),
    "mixing": ("audio production", "post production engineer"),
    "guest": ("cast", "guest"),
}


def _i(tag: str) -> str:
    return f"{{{ITUNES}}}{tag}"


def _p(tag: str) -> str:
    return f"{{{PODCAST}}}{tag}"


def podcast_guid(feed_url: str) -> str:
    """The podcast:guid of the feed at ``feed_url``: a UUIDv5 of the address without its
    scheme and trailing slashes, in the Podcast Index namespace's UUID (docs/tags/guid.md)."""
    bare = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", feed_url).rstrip("/")
    return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, bare))


@dataclass(frozen=True)
class Show:
    """What a podcast says of itself, in its channel."""

    title: str
    description: str
    link: str
    self_url: str
    # The feed's address on the site's configured address: what podcast:guid is made from.
    stable_url: str
    artwork_url: str
    owner_email: str
    locked: bool


def podcast_rss(
    productions: Sequence[Production],
    store: ObjectStore,
    urls: Urls,
    *,
    lang: str,
    show: Show,
) -> bytes:
    """An RSS 2.0 podcast (iTunes and Podcast Index namespaces) of the ``productions`` that have
    a downloadable file."""
    rss = ET.Element("rss", {"version": "2.0"})
    channel = _sub(rss, "channel")
    _sub(channel, "title", show.title)
    _sub(channel, "link", show.link)
    _sub(channel, "description", show.description)
    _sub(channel, "language", lang)
    _sub(channel, f"{{{ATOM}}}link", href=show.self_url, rel="self", type="application/rss+xml")
    _sub(channel, "generator", PROVIDER_NAME)
    _sub(channel, _p("guid"), podcast_guid(show.stable_url))
    locked = _sub(channel, _p("locked"), "yes" if show.locked else "no")
    if show.owner_email:
        locked.set("owner", xml_text(show.owner_email))
    _sub(channel, _i("author"), PUBLISHER)
    _sub(channel, _i("summary"), show.description)
    _sub(channel, _i("type"), "episodic")
    _sub(channel, _i("explicit"), "false")
    # Apple's category is an attribute named "text", which _sub's own text= would take.
    ET.SubElement(channel, _i("category"), {"text": "Music"})
    owner = _sub(channel, _i("owner"))
    _sub(owner, _i("name"), PUBLISHER)
    if show.owner_email:
        _sub(owner, _i("email"), show.owner_email)
    # The show's own artwork, never an episode's (cite_live.podcast_art).
    _sub(channel, _i("image"), href=show.artwork_url)
    image = _sub(channel, "image")
    _sub(image, "url", show.artwork_url)
    _sub(image, "title", show.title)
    _sub(image, "link", show.link)
    items = [(p, d) for p in productions if (d := _download(p, store))]
    if items:
        latest = max(aware(p.published_at or p.created_at) for p, _ in items)
        _sub(channel, "lastBuildDate", format_datetime(latest))
    for production, (key, size) in items:
        _podcast_item(channel, production, store, urls, lang, key, size)
    return _serialize(rss)


def episode_artwork(production: Production, store: ObjectStore, site: str) -> str | None:
    """The address of the production's picture when Apple takes it as an episode's artwork
    (square, 1400 to 3000 pixels a side: cite_live.podcast_art.fits); None otherwise, and the
    show's artwork stands in for it."""
    key = picture_key(production)
    if not key or not podcast_art.fits(image_size(store, key)):
        return None
    return store.public_url(key, site)


def _podcast_item(
    channel: ET.Element,
    production: Production,
    store: ObjectStore,
    urls: Urls,
    lang: str,
    key: str,
    size: int,
) -> None:
    item = _sub(channel, "item")
    title = title_of(production, lang)
    _sub(item, "title", rss_title(title))
    _sub(item, _i("title"), title)
    _sub(item, "link", page_url(production, urls))
    _sub(item, "guid", production.id, isPermaLink="false")
    _sub(item, "pubDate", format_datetime(aware(production.published_at or production.created_at)))
    description = html_paragraphs(description_of(production, lang)) or html_paragraphs(
        _who_and_where(production, lang)
    )
    _sub(item, "description", description)
    enclosure = store.public_url(key, urls.site)
    _sub(item, "enclosure", url=enclosure, length=str(size), type="audio/mp4")
    if production.duration is not None:
        _sub(item, _i("duration"), str(max(1, round(production.duration))))
    names = list(dict.fromkeys(artist["name"] for artist in artists_of(production)))
    if names:
        _sub(item, _i("author"), ", ".join(names))
    artwork = episode_artwork(production, store, urls.site)
    if artwork:
        _sub(item, _i("image"), href=artwork)
    _sub(item, _i("explicit"), "false")
    _sub(item, _i("episodeType"), "full")
    for credit in production.credits:
        group, role = PERSON_ROLES.get(credit.role, PERSON_ROLES["performer"])
        href = artist_url(credit.artist.slug, urls)
        _sub(item, _p("person"), credit.artist.name, group=group, role=role, href=href)
    if production.chapters:
        chapters = urls.absolute(urls.chapters_json(production.slug))
        _sub(item, _p("chapters"), url=chapters, type=CHAPTERS_TYPE)
    for tag in production.tags:
        _sub(item, "category", tag.name)


def _podcast_response(body: bytes) -> Response:
    return Response(body, media_type=RSS_TYPE, headers=HEADERS)


def _episodes_query() -> Any:
    return production_query().options(selectinload(Production.chapters))


def _has_download() -> Any:
    # Versions published before downloads existed have no file to enclose.
    return Production.current_version.has(MediaVersion.download_key.is_not(None))


def _show(ctx: Context, path: str, **fields: str) -> Show:
    settings = ctx.settings
    return Show(
        self_url=ctx.urls.absolute(path),
        stable_url=settings.stable_url + path,
        owner_email=settings.podcast_owner_email,
        locked=settings.podcast_locked,
        **fields,
    )


@page
def podcast_feed(ctx: Context) -> Response:
    urls, lang = ctx.urls, ctx.lang
    where = productions_where(kind="audio")
    where.append(_has_download())
    with ctx.services.sessions() as session:
        rows, _ = page_of_productions(
            session, where, offset=0, limit=FEED_SIZE, query=_episodes_query()
        )
        show = _show(
            ctx,
            urls.podcast_feed(),
            title=PODCAST_TITLE.get(lang, PODCAST_TITLE["fr"]),
            description=SITE_SUBTITLE.get(lang, SITE_SUBTITLE["fr"]),
            link=urls.absolute(urls.home()),
            artwork_url=urls.absolute(urls.podcast_artwork()),
        )
        body = podcast_rss(rows, ctx.store, urls, lang=lang, show=show)
    return _podcast_response(body)


@page
def artist_podcast(ctx: Context) -> Response:
    """The podcast of an artist's audio productions that have a file, newest first."""
    urls, lang = ctx.urls, ctx.lang
    with ctx.services.sessions() as session:
        artist = by_slug(session, Artist, ctx.path_name("slug"))
        if artist is None:
            raise HTTPException(404, "There is no artist with this name.")
        where = productions_where(artist=artist.slug, kind="audio")
        where.append(_has_download())
        rows, _ = page_of_productions(
            session, where, offset=0, limit=FEED_SIZE, query=_episodes_query()
        )
        show = _show(
            ctx,
            urls.artist_podcast(artist.slug),
            title=f"{artist.name} — {PROVIDER_NAME}",
            description=excerpt(artist.bio, SUMMARY_LENGTH) or artist.name,
            link=artist_url(artist.slug, urls),
            # An artist's photo is smaller than Apple's artwork (cite_live.covers.PHOTO_BOX).
            artwork_url=urls.absolute(urls.podcast_artwork()),
        )
        body = podcast_rss(rows, ctx.store, urls, lang=lang, show=show)
    return _podcast_response(body)


@page
def collection_podcast(ctx: Context) -> Response:
    """The podcast of a public collection of kind "podcast": its audio productions that have a
    file, in the collection's order (its hidden ones left out, as everywhere)."""
    urls, lang = ctx.urls, ctx.lang
    slug = ctx.path_name("slug")
    with ctx.services.sessions() as session:
        collection = collections.public_at(session, slug) if slug else None
        if collection is None or collection.kind != "podcast":
            raise ctx.not_found(NO_PODCAST)
        query = _episodes_query().where(Production.kind == "audio", _has_download())
        rows = collections.shown_items(session, collection.id, query)[:FEED_SIZE]
        title = collection_title(collection, lang)
        cover = collection.cover_key
        artwork = (
            ctx.store.public_url(cover, urls.site)
            if cover and podcast_art.fits(image_size(ctx.store, cover))
            else urls.absolute(urls.podcast_artwork())
        )
        show = _show(
            ctx,
            urls.collection_podcast(collection.slug),
            title=title,
            description=excerpt(collection_description(collection, lang), SUMMARY_LENGTH) or title,
            link=collection_page_url(collection, urls),
            artwork_url=artwork,
        )
        body = podcast_rss(rows, ctx.store, urls, lang=lang, show=show)
    return _podcast_response(body)


@page
def podcast_artwork(ctx: Context) -> Response:
    """The podcasts' artwork (cite_live.podcast_art), a JPEG made once per process."""
    body = podcast_art.artwork(ctx.settings.podcast_artwork)
    return Response(
        body,
        media_type="image/jpeg",
        headers={"Cache-Control": "public, max-age=86400", **CORS},
    )


@page
def chapters_json(ctx: Context) -> Response:
    """A listed production's setlist as JSON chapters (Podcast Index, version 1.2), which its
    podcast episode points at; no other production's, to anyone: the podcasts list no other."""
    slug = ctx.path_name("slug")
    with ctx.services.sessions() as session:
        production = production_at(session, slug, _episodes_query()) if slug else None
        if production is None or not is_listed(production):
            raise ctx.not_found(NO_PRODUCTION)
        body = {
            "version": "1.2.0",
            "title": title_of(production, ctx.lang),
            "author": ", ".join(a["name"] for a in artists_of(production)),
            "chapters": [
                {"startTime": round(c.start, 3), "title": c.title}
                for c in sorted(production.chapters, key=lambda c: c.start)
            ],
        }
    return Response(
        json.dumps(body, ensure_ascii=False).encode(),
        media_type=CHAPTERS_TYPE,
        headers=HEADERS,
    )
