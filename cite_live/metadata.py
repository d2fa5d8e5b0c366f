"""What a production page tells link previews and search engines: Open Graph, Twitter, JSON-LD.

``page_metadata`` gathers it as data; the ``head_meta`` macro of ``_meta.html`` writes it into
the page head. Text is left as text here: the template escapes attribute values, and
``script_json`` makes JSON safe to place inside a ``<script>`` element.

Sizes of stored objects (a feed's enclosure length, a thumbnail's width and height) are not in
the database; they are read from the store once and remembered, which is sound because a key,
under its version prefix, never changes content.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from markupsafe import Markup
from PIL import Image, UnidentifiedImageError

from cite_live.catalogue import picture_key, playing_version
from cite_live.models import Artist, Production, aware
from cite_live.player import EMBED_SIZES
from cite_live.presenter import (
    artist_photo,
    artist_url,
    bio_of,
    description_of,
    discipline_names,
    embed_url,
    links_of,
    page_url,
    picture_url,
    title_of,
)
from cite_live.storage import ObjectStore, StorageError
from cite_live.vocabulary import LICENCE_URLS
from cite_live.web.urls import Urls

T = TypeVar("T")

PROVIDER_NAME = "Cité Live Web"
LOCALES = {"fr": "fr_FR", "en": "en_GB"}
# Previews show a sentence or two; a 10,000-word description is not a description.
MAX_DESCRIPTION = 300
# Characters that may end a <script> element or open a comment in it, and the two line
# separators that some JavaScript parsers refuse inside strings.
_SCRIPT_UNSAFE = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def script_json(value: Any) -> Markup:
    """``value`` as JSON that can sit inside ``<script>`` as it is: no ``</script>``, ``<!--``
    or ``]]>`` can appear in it, whatever its strings hold."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    # Outside strings JSON has none of these characters, so escaping them keeps it equal.
    return Markup(text.translate(_SCRIPT_UNSAFE))  # noqa: S704 - made safe just above


def iso_duration(seconds: float | None) -> str | None:
    """ISO-8601 duration to the nearest second: 205 → "PT3M25S", 3723 → "PT1H2M3S"."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{secs}S" if secs or text == "PT" else "")


def excerpt(text: str | None, limit: int = MAX_DESCRIPTION) -> str:
    """One line of at most ``limit`` characters, cut at a word when it has to be cut."""
    flat = " ".join((text or "").split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"


# --- facts about stored objects ------------------------------------------------------------------

_facts: weakref.WeakKeyDictionary[ObjectStore, dict[tuple[str, str], Any]] = (
    weakref.WeakKeyDictionary()
)
_facts_lock = threading.Lock()


def _remember(store: ObjectStore, what: str, key: str, compute: Callable[[], T | None]) -> T | None:
    with _facts_lock:
        known: T | None = _facts.setdefault(store, {}).get((what, key))
    if known is not None:
        return known
    value = compute()
    if value is not None:
        # A missing object may yet appear (a publish in progress): only answers are kept.
        with _facts_lock:
            _facts.setdefault(store, {})[(what, key)] = value
    return value


def stored_size(store: ObjectStore, key: str) -> int | None:
    """Size in bytes of the object ``key``; None when it cannot be read."""

    def compute() -> int | None:
        try:
            return store.size(key)
        except (StorageError, OSError, ValueError):
            return None

    return _remember(store, "size", key, compute)


def image_size(store: ObjectStore, key: str) -> tuple[int, int] | None:
    """Width and height of the stored picture ``key``; None when it cannot be read."""

    def compute() -> tuple[int, int] | None:
        try:
            with store.available_locally(key) as path, Image.open(path) as image:
                # Only the header is read: the pixels are never decoded.
                return int(image.width), int(image.height)
        except (StorageError, OSError, UnidentifiedImageError, ValueError):
            return None

    return _remember(store, "image", key, compute)


def oembed_url(production: Production, urls: Urls) -> str:
    """The oEmbed answer for the production's page, as its page head announces it."""
    return urls.absolute(urls.oembed(url=page_url(production, urls), format="json"))


# --- the page head -------------------------------------------------------------------------------


@dataclass
class PageMeta:
    """Everything ``head_meta`` writes; plain text, escaped by the template when written."""

    title: str
    description: str
    url: str
    lang: str
    # None for a production only some sites may frame (embed_policy): nothing to discover.
    oembed_url: str | None
    # (property, content) pairs, in order: Open Graph uses ``property=``, Twitter ``name=``.
    open_graph: list[tuple[str, str]] = field(default_factory=list)
    twitter: list[tuple[str, str]] = field(default_factory=list)
    json_ld: Markup = field(default_factory=lambda: Markup("{}"))


def _artist_node(name: str, slug: str, urls: Urls) -> dict[str, Any]:
    # MusicGroup is an Organization, so it fits both byArtist (MusicRecording) and creator
    # (VideoObject); a soloist is a group of one, as music catalogues usually put it.
    return {"@type": "MusicGroup", "name": name, "url": artist_url(slug, urls)}


def _video_fields(
    production: Production,
    store: ObjectStore,
    urls: Urls,
    artists: list[dict[str, Any]],
    uploaded: datetime,
    duration: str | None,
) -> dict[str, Any]:
    """What a VideoObject says besides what every production says."""
    version = playing_version(production)
    picture = picture_url(production, store, urls.site)
    data: dict[str, Any] = {"uploadDate": uploaded.isoformat()}
    if artists:
        data["creator"] = artists
    if embed := _offered_embed(production, urls):
        data["embedUrl"] = embed
    if picture:
        data["thumbnailUrl"] = picture
    if version is not None and version.master_key:
        data["contentUrl"] = store.public_url(version.master_key, urls.site)
        data["encodingFormat"] = "application/vnd.apple.mpegurl"
    return data


def _audio_fields(
    production: Production,
    store: ObjectStore,
    urls: Urls,
    artists: list[dict[str, Any]],
    uploaded: datetime,
    duration: str | None,
) -> dict[str, Any]:
    """What a MusicRecording says besides what every production says."""
    version = playing_version(production)
    picture = picture_url(production, store, urls.site)
    data: dict[str, Any] = {"datePublished": uploaded.date().isoformat()}
    if artists:
        data["byArtist"] = artists if len(artists) > 1 else artists[0]
    if picture:
        data["image"] = picture
    audio: dict[str, Any] = {"@type": "AudioObject"}
    if embed := _offered_embed(production, urls):
        audio["embedUrl"] = embed
    if version is not None and version.download_key:
        audio["contentUrl"] = store.public_url(version.download_key, urls.site)
        audio["encodingFormat"] = "audio/mp4"
    if duration:
        audio["duration"] = duration
    data["audio"] = audio
    return data


def _offered_embed(production: Production, urls: Urls) -> str | None:
    """The player search engines are offered to embed: only one any site may frame."""
    return embed_url(production, urls) if production.embed_policy == "anywhere" else None


def _json_ld(
    production: Production, store: ObjectStore, urls: Urls, title: str, description: str
) -> dict[str, Any]:
    artists = [_artist_node(c.artist.name, c.artist.slug, urls) for c in production.credits]
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "VideoObject" if production.kind == "video" else "MusicRecording",
        "@id": page_url(production, urls),
        "name": title,
        "url": page_url(production, urls),
        "description": description,
    }
    duration = iso_duration(production.duration)
    if duration:
        data["duration"] = duration
    if production.venue is not None:
        place: dict[str, Any] = {"@type": "Place", "name": production.venue.name}
        place["url"] = urls.absolute(urls.venue(production.venue.slug))
        if production.venue.commune:
            place["address"] = {
                "@type": "PostalAddress",
                "addressLocality": production.venue.commune,
                "addressCountry": "FR",
            }
        data["locationCreated"] = place
    if production.recorded_on:
        data["dateCreated"] = production.recorded_on.isoformat()
    if production.licence in LICENCE_URLS:
        data["license"] = LICENCE_URLS[production.licence]
    if production.tags:
        data["keywords"] = ", ".join(tag.name for tag in production.tags)
    uploaded = aware(production.published_at or production.created_at)
    media = _video_fields if production.kind == "video" else _audio_fields
    data.update(media(production, store, urls, artists, uploaded, duration))
    return data


def page_metadata(production: Production, store: ObjectStore, site_url: str, lang: str) -> PageMeta:
    """The metadata of ``production``'s page, in ``lang`` ("fr" or "en") where it has both.

    The production's credits, venue, tags and current version must be loaded (as
    ``catalogue.get_production`` does) or loadable from an open session.
    """
    urls = Urls(site_url)
    title = title_of(production, lang)
    names = [credit.artist.name for credit in production.credits]
    description = excerpt(description_of(production, lang))
    if not description:
        # Previews and search results look broken without a sentence; say who and where.
        parts = [", ".join(dict.fromkeys(names))] if names else []
        if production.venue is not None:
            parts.append(production.venue.name)
        description = excerpt(" — ".join([title, *parts]))
    url = page_url(production, urls)
    embed = embed_url(production, urls)
    width, height = EMBED_SIZES.get(production.kind, EMBED_SIZES["video"])
    version = playing_version(production)
    picture = picture_key(production)

    og: list[tuple[str, str]] = [
        ("og:site_name", PROVIDER_NAME),
        ("og:type", "video.other" if production.kind == "video" else "music.song"),
        ("og:title", title),
        ("og:description", description),
        ("og:url", url),
        ("og:locale", LOCALES.get(lang, LOCALES["fr"])),
    ]
    og += [("og:locale:alternate", code) for key, code in LOCALES.items() if key != lang]
    # A player that only some sites may frame is offered to no one else (cite_live.partners).
    embeddable = production.embed_policy == "anywhere"
    twitter: list[tuple[str, str]] = [
        ("twitter:card", "player" if embeddable else "summary"),
        ("twitter:title", title),
        ("twitter:description", description),
    ]
    if embeddable:
        twitter += [
            ("twitter:player", embed),
            ("twitter:player:width", str(width)),
            ("twitter:player:height", str(height)),
        ]
    image_url = picture_url(production, store, urls.site)
    if picture and image_url:
        og.append(("og:image", image_url))
        size = image_size(store, picture)
        if size:
            og += [("og:image:width", str(size[0])), ("og:image:height", str(size[1]))]
        og.append(("og:image:alt", title))
        twitter.append(("twitter:image", image_url))
    if embeddable:
        og += [
            ("og:video", embed),
            ("og:video:type", "text/html"),
            ("og:video:width", str(width)),
            ("og:video:height", str(height)),
        ]
        if embed.startswith("https://"):
            og.append(("og:video:secure_url", embed))
    if production.kind == "audio" and version is not None and version.download_key:
        download = store.public_url(version.download_key, urls.site)
        og += [("og:audio", download), ("og:audio:type", "audio/mp4")]
        if embeddable:
            twitter += [
                ("twitter:player:stream", download),
                ("twitter:player:stream:content_type", "audio/mp4"),
            ]
    if production.duration is not None and math.isfinite(production.duration):
        key = "video:duration" if production.kind == "video" else "music:duration"
        og.append((key, str(round(production.duration))))
    if production.kind == "audio":
        og += [("music:musician", artist_url(c.artist.slug, urls)) for c in production.credits]

    return PageMeta(
        title=title,
        description=description,
        url=url,
        lang=lang,
        oembed_url=oembed_url(production, urls) if embeddable else None,
        open_graph=og,
        twitter=twitter,
        json_ld=script_json(_json_ld(production, store, urls, title, description)),
    )


# --- an artist's page ----------------------------------------------------------------------------


@dataclass
class ProfileMeta:
    """What ``profile_meta`` (``_meta.html``) writes in the head of an artist's page."""

    description: str
    url: str
    open_graph: list[tuple[str, str]] = field(default_factory=list)
    twitter: list[tuple[str, str]] = field(default_factory=list)
    json_ld: Markup = field(default_factory=lambda: Markup("{}"))


def artist_metadata(artist: Artist, store: ObjectStore, site_url: str, lang: str) -> ProfileMeta:
    """The metadata of ``artist``'s page: their photo for link previews, and a MusicGroup for
    search engines, whose ``sameAs`` are the links the artist gave (the page marks them
    ``rel="me"``)."""
    urls = Urls(site_url)
    url = artist_url(artist.slug, urls)
    bio, _ = bio_of(artist, lang)
    disciplines = discipline_names(artist.disciplines)
    # Without a biography, previews still say who and from where.
    summary = (artist.name, ", ".join(disciplines), artist.commune)
    description = excerpt(bio) or excerpt(" — ".join(part for part in summary if part))
    og: list[tuple[str, str]] = [
        ("og:site_name", PROVIDER_NAME),
        ("og:type", "profile"),
        ("og:title", artist.name),
        ("og:description", description),
        ("og:url", url),
        ("og:locale", LOCALES.get(lang, LOCALES["fr"])),
    ]
    twitter: list[tuple[str, str]] = [
        ("twitter:card", "summary"),
        ("twitter:title", artist.name),
        ("twitter:description", description),
    ]
    node: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "MusicGroup",
        "@id": url,
        "name": artist.name,
        "url": url,
    }
    if description:
        node["description"] = description
    photo = artist_photo(artist, store, urls)
    if photo is not None:
        og.append(("og:image", photo["url"]))
        if photo["width"] and photo["height"]:
            og += [
                ("og:image:width", str(photo["width"])),
                ("og:image:height", str(photo["height"])),
            ]
        og.append(("og:image:alt", artist.name))
        twitter.append(("twitter:image", photo["url"]))
        node["image"] = photo["url"]
    links = [link["url"] for link in links_of(artist.links)]
    if links:
        node["sameAs"] = links
    if artist.commune:
        node["location"] = {"@type": "Place", "name": artist.commune}
    if disciplines:
        node["genre"] = disciplines
    return ProfileMeta(
        description=description,
        url=url,
        open_graph=og,
        twitter=twitter,
        json_ld=script_json(node),
    )
