"""What every view of a production or an artist shows alike: its title in the visitor's
language, its artists, its picture and media as URLs, its chapters and duration, its page and
embed addresses. Cards, the catalogue's pages, the API objects, the player, the feeds, oEmbed
and the page metadata each take what they show from here, so that they agree on which picture
stands for a production, when its media play and where its pages are.

Links are built with a :class:`~cite_live.web.urls.Urls` (``Urls(site)`` where no request is
at hand): paths for the site's own pages, absolute addresses for what leaves it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from cite_live.catalogue import address, download_key, picture_key, playing_version
from cite_live.i18n import fallback_lang, pick
from cite_live.models import Artist, MediaVersion, Production, Tag, aware
from cite_live.storage import ObjectStore
from cite_live.vocabulary import (
    CREDIT_ROLE_LABELS,
    KIND_LABELS,
    SESSION_TYPE_LABELS,
    discipline_name,
    label,
    licence_of,
)
from cite_live.web.urls import Urls

KeyUrl = Callable[[str | None], str | None]
MAX_LINK = 2000


# --- facts of a production -----------------------------------------------------------------------


def title_of(production: Production, lang: str) -> str:
    """The title in ``lang``, or in the other language when it has none in this one."""
    return pick(production.title, production.title_en, lang)


def title_lang_of(production: Production, lang: str) -> str | None:
    """The language of :func:`title_of` when it fell back to the other one, else None."""
    return fallback_lang(production.title, production.title_en, lang)


def description_of(production: Production, lang: str) -> str:
    return pick(production.description, production.description_en, lang)


def description_lang_of(production: Production, lang: str) -> str | None:
    return fallback_lang(production.description, production.description_en, lang)


def media_url(
    store: ObjectStore, site_url: str, link: Callable[[str], str] | None = None
) -> KeyUrl:
    """A key's URL: ``link`` makes it (``access.media_link``: signed links for a private
    production shown to its managers), by default the store's public URL; no key, no URL."""

    def url(key: str | None) -> str | None:
        if not key:
            return None
        return link(key) if link is not None else store.public_url(key, site_url)

    return url


def picture_url(production: Production, store: ObjectStore, site_url: str) -> str | None:
    """The public URL of the production's picture (:func:`cite_live.catalogue.picture_key`)."""
    return media_url(store, site_url)(picture_key(production))


def media_of(
    production: Production, url: KeyUrl, preview: MediaVersion | None = None
) -> dict[str, str | None]:
    """The URLs of what plays: all None until a version plays. ``picture`` is the production's
    picture (:func:`cite_live.catalogue.picture_key`); ``cover`` the audio cover alone.

    ``preview``, the version a production that is processing plays meanwhile (its viewer may:
    cite_live.catalogue.playable_preview), has its master playlist and nothing else yet: the
    pictures, peaks and file come with the finished version; the cover its artist chose shows
    meanwhile."""
    version = playing_version(production)
    if version is None:
        media = dict.fromkeys(("hls", "picture", "cover", "waveform", "storyboard", "download"))
        if preview is not None:
            media["hls"] = url(preview.master_key)
            media["picture"] = media["cover"] = url(production.cover_key)
        return media
    return {
        "hls": url(version.master_key),
        "picture": url(picture_key(production)),
        "cover": url(production.cover_key or version.cover_key),
        "waveform": url(version.waveform_key),
        "storyboard": url(version.storyboard_vtt_key),
        "download": url(version.download_key),
    }


def chapters_of(production: Production) -> list[dict[str, str | float]]:
    """The setlist: each chapter's title and start, to the millisecond."""
    return [{"title": c.title, "start": round(c.start, 3)} for c in production.chapters]


def duration_of(production: Production) -> float | None:
    """The duration in seconds, to the millisecond; None while it is not known."""
    return round(production.duration, 3) if production.duration is not None else None


def artists_of(production: Production) -> list[dict[str, str]]:
    """Each credited artist once, in credit order, as ``{"name", "slug"}``."""
    artists: list[dict[str, str]] = []
    for credit in production.credits:
        entry = {"name": credit.artist.name, "slug": credit.artist.slug}
        if entry not in artists:
            artists.append(entry)
    return artists


# Characters no file name may hold on some system, and how long a name may get.
_NOT_IN_FILE_NAMES = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')
MAX_FILE_NAME = 150


def download_filename(production: Production, lang: str) -> str:
    """The name a downloaded file gets: "<artists> - <title>.m4a" (the title in ``lang``),
    without the characters file systems refuse, never starting with a dot."""
    names = ", ".join(a["name"] for a in artists_of(production))
    title = title_of(production, lang)
    stem = f"{names} - {title}" if names else title
    stem = " ".join(_NOT_IN_FILE_NAMES.sub(" ", stem).split()).strip(" .")
    return f"{stem[:MAX_FILE_NAME].rstrip(' .') or 'production'}.m4a"


# --- addresses -----------------------------------------------------------------------------------


def page_url(production: Production, urls: Urls) -> str:
    """The absolute address of the production's page."""
    return urls.absolute(urls.production(production.slug))


def embed_url(production: Production, urls: Urls) -> str:
    """The absolute address of its iframe player, by what names it there (catalogue.address)."""
    return urls.absolute(urls.embed(address(production)))


def artist_url(slug: str, urls: Urls) -> str:
    """The absolute address of the artist's page."""
    return urls.absolute(urls.artist(slug))


# --- what the catalogue's pages show -------------------------------------------------------------


def safe_link(url: Any) -> str | None:
    """``url`` if it is an absolute http(s) address: a ``javascript:`` link is never an href."""
    if not isinstance(url, str) or len(url) > MAX_LINK:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unbalanced "[" in the host, say
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    return None


def links_of(links: Any) -> list[dict[str, str]]:
    """An artist's links, as ``{"url", "label"}``; anything that is not an http(s) URL is left
    out. Entries may be plain URLs or objects with a url and a label."""
    shown: list[dict[str, str]] = []
    for entry in links if isinstance(links, list) else []:
        if isinstance(entry, dict):
            url = safe_link(entry.get("url") or entry.get("href"))
            text = entry.get("label") or entry.get("title") or entry.get("name")
        else:
            url, text = safe_link(entry), None
        if url:
            # Without a name, the host: never the user name a crafted address puts before it.
            host = urlsplit(url).hostname or url
            shown.append({"url": url, "label": str(text) if text else host})
    return shown


def paragraphs(text: str) -> list[str]:
    """``text`` parted into its paragraphs (by blank lines), each trimmed, none empty."""
    return [part.strip() for part in text.replace("\r\n", "\n").split("\n\n") if part.strip()]


def tag_name(tag: Tag, lang: str) -> tuple[str, str | None]:
    """A tag's name on a page in ``lang``: its English name on English pages when it has one,
    else its name; and "fr" when that name stands in on an English page (else None)."""
    if lang == "en":
        if tag.name_en and tag.name_en.strip():
            return tag.name_en, None
        return tag.name, "fr"
    return tag.name, None


def tag_view(tag: Tag, urls: Urls, lang: str) -> dict[str, Any]:
    """A tag as a page links to it: its name in ``lang`` (``name_lang`` when it fell back)."""
    name, name_lang = tag_name(tag, lang)
    return {"name": name, "name_lang": name_lang, "url": urls.tag(tag.slug)}


def discipline_names(values: Any) -> list[str]:
    """An artist's disciplines (a JSON list in the database), leaving out what is not text."""
    return [d for d in values or [] if isinstance(d, str)]


def card(production: Production, store: ObjectStore, urls: Urls, lang: str) -> dict[str, Any]:
    """What a list shows of a production; ``playable`` when a version plays (its card offers
    to play it and to add it to the queue)."""
    return {
        "url": urls.production(production.slug),
        "playable": playing_version(production) is not None,
        "title": title_of(production, lang),
        "title_lang": title_lang_of(production, lang),
        "kind": production.kind,
        "kind_label": label(KIND_LABELS, production.kind, lang),
        "duration": production.duration,
        "image": picture_url(production, store, urls.site),
        "artists": artists_of(production),
        "venue": production.venue.name if production.venue else None,
        "recorded_on": production.recorded_on,
        "session_type": label(SESSION_TYPE_LABELS, production.session_type, lang),
    }


def cards(
    productions: Iterable[Production], store: ObjectStore, urls: Urls, lang: str
) -> list[dict[str, Any]]:
    return [card(production, store, urls, lang) for production in productions]


def initials_of(name: str) -> str:
    """The initials a card shows for an artist without a photo: "Élodie Fauré" → "ÉF",
    "Yann" → "Y"; letters and digits only ("L'Écho du Jeudi" → "LJ")."""
    words = [w for w in (_letters(part) for part in name.split()) if w]
    if not words:
        return "?"
    chosen = words if len(words) < 3 else [words[0], words[-1]]
    return "".join(word[0] for word in chosen[:2]).upper()


def _letters(word: str) -> str:
    # "L'Écho" → "Écho": an elided article is not the word's initial.
    return "".join(ch for ch in word.rsplit("'", 1)[-1].rsplit("’", 1)[-1] if ch.isalnum())


# Placeholders of artists without a photo come in a few tones, the same for the same artist.
PLACEHOLDER_TONES = 6


def placeholder_tone(slug: str) -> int:
    """The tone (0 to PLACEHOLDER_TONES - 1) of an artist's placeholder, from their slug."""
    return sum(slug.encode()) % PLACEHOLDER_TONES


def profile_lang(artist: Artist) -> str:
    """The language an artist writes their profile in: English when their biography is in
    English only, else French (the site's own)."""
    if artist.bio_en and artist.bio_en.strip() and not (artist.bio and artist.bio.strip()):
        return "en"
    return "fr"


def disciplines_in(artist: Artist, lang: str) -> tuple[list[str], str | None]:
    """An artist's disciplines on a page in ``lang``: a known one in ``lang``
    (vocabulary.DISCIPLINES), another as typed; and the profile's language when every one is
    shown as typed in a language other than ``lang`` (the ``lang`` of the element showing them),
    else None."""
    names = discipline_names(artist.disciplines)
    known = [discipline_name(name, lang) for name in names]
    shown = [translated or name for translated, name in zip(known, names, strict=True)]
    written = profile_lang(artist)
    typed_only = bool(names) and all(translated is None for translated in known)
    return shown, written if typed_only and written != lang else None


def artist_card(
    artist: Artist, store: ObjectStore, urls: Urls, lang: str | None = None
) -> dict[str, Any]:
    """What a list shows of an artist: their name, disciplines (in ``lang`` where they are known
    ones; as typed without ``lang``), town and square photo (the 400×400 crop of their
    profile), or their initials on a tone of their own without one."""
    disciplines, disciplines_lang = (
        disciplines_in(artist, lang) if lang else (discipline_names(artist.disciplines), None)
    )
    return {
        "url": urls.artist(artist.slug),
        "name": artist.name,
        "initial": artist.name[:1].upper(),
        "initials": initials_of(artist.name),
        "tone": placeholder_tone(artist.slug),
        "commune": artist.commune,
        "disciplines": disciplines,
        "disciplines_lang": disciplines_lang,
        "photo": media_url(store, urls.site)(artist.photo_square_key),
    }


def bio_of(artist: Artist, lang: str) -> tuple[str, str]:
    """The biography in ``lang``, or in the other language when it has none in this one; and
    the language of what is given."""
    text = pick(artist.bio, artist.bio_en, lang)
    if lang == "en":
        return text, "en" if artist.bio_en and artist.bio_en.strip() else "fr"
    return text, "fr" if artist.bio and artist.bio.strip() else "en"


def artist_photo(artist: Artist, store: ObjectStore, urls: Urls) -> dict[str, Any] | None:
    """The large photo of the artist's page: its URL, width and height; None without one."""
    url = media_url(store, urls.site)(artist.photo_key)
    if url is None:
        return None
    return {"url": url, "width": artist.photo_width, "height": artist.photo_height}


def artist_details(artist: Artist, store: ObjectStore, urls: Urls, lang: str) -> dict[str, Any]:
    """What the artist's page shows of them: the card, their photo, their biography in the
    reader's language (``bio_lang`` says which, when it is the other one) and their links."""
    bio, bio_lang = bio_of(artist, lang)
    return {
        **artist_card(artist, store, urls, lang),
        "slug": artist.slug,
        "photo": artist_photo(artist, store, urls),
        "paragraphs": paragraphs(bio),
        "bio_lang": bio_lang if bio_lang != lang else None,
        "links": links_of(artist.links),
    }


def production_details(
    production: Production, urls: Urls, lang: str, *, private: bool, listed: bool
) -> dict[str, Any]:
    """What a production's page shows of it (its player aside: cite_live.player); ``private``
    when only its managers see it, ``listed`` when search engines may index it."""
    venue = production.venue
    return {
        "id": production.id,
        "slug": production.slug,
        "title": title_of(production, lang),
        "title_lang": title_lang_of(production, lang),
        "kind": production.kind,
        "kind_label": label(KIND_LABELS, production.kind, lang),
        "status": production.status,
        "unlisted": production.visibility == "unlisted",
        "private": private,
        # Only listed productions belong in search engines.
        "noindex": not listed,
        "paragraphs": paragraphs(description_of(production, lang)),
        "description_lang": description_lang_of(production, lang),
        "duration": production.duration,
        "recorded_on": production.recorded_on,
        "session_type": label(SESSION_TYPE_LABELS, production.session_type, lang),
        "session_type_url": (
            urls.search(type=production.session_type) if production.session_type else None
        ),
        "venue": (
            {"name": venue.name, "url": urls.venue(venue.slug), "commune": venue.commune}
            if venue
            else None
        ),
        "licence": licence_of(production.licence, lang),
        # Its file, when its artist allows downloads and its licence permits them.
        "download_url": (
            urls.production_download(production.slug) if download_key(production) else None
        ),
        "tags": [tag_view(t, urls, lang) for t in production.tags],
        "credits": [
            {
                "name": c.artist.name,
                "url": urls.artist(c.artist.slug),
                "role": label(CREDIT_ROLE_LABELS, c.role, lang),
            }
            for c in production.credits
        ],
        "chapters": [
            {
                "title": chapter.title,
                "seconds": max(0, int(chapter.start)),
                "url": urls.production(production.slug, t=max(0, int(chapter.start))),
            }
            for chapter in production.chapters
        ],
    }


# --- the API's objects ---------------------------------------------------------------------------


def production_json(
    production: Production,
    store: ObjectStore,
    urls: Urls,
    *,
    link: Callable[[str], str] | None = None,
    preview: MediaVersion | None = None,
    manager: bool = False,
) -> dict[str, Any]:
    """The production object: ids, status, credits and absolute URLs for players and pages.

    ``link`` turns a key into its URL (``access.media_link``: signed links for a private
    production shown to its managers); by default, the store's public URL. ``preview``: the
    version a processing production plays meanwhile, for a requester who may play it
    (cite_live.catalogue.playable_preview). ``manager``: the requester manages it, and reads
    its settings too (``publish_early``)."""
    version = playing_version(production)
    media = media_of(production, media_url(store, urls.site, link), preview)
    data: dict[str, Any] = {
        "id": production.id,
        "slug": production.slug,
        "title": production.title,
        "title_en": production.title_en,
        "kind": production.kind,
        "status": production.status,
        "visibility": production.visibility,
        "duration": duration_of(production),
        "description": production.description,
        "description_en": production.description_en,
        "recorded_on": production.recorded_on.isoformat() if production.recorded_on else None,
        "session_type": production.session_type,
        "licence": production.licence,
        "venue": (
            {"name": production.venue.name, "slug": production.venue.slug}
            if production.venue
            else None
        ),
        "tags": [tag.name for tag in production.tags],
        "artists": [
            {"name": c.artist.name, "slug": c.artist.slug, "role": c.role}
            for c in production.credits
        ],
        "chapters": chapters_of(production),
        "hls_url": media["hls"],
        # True as soon as hls_url plays: a processing production's growing preview included.
        "playable": media["hls"] is not None,
        "poster_url": media["picture"],
        "waveform_url": media["waveform"],
        "storyboard_url": media["storyboard"],
        "download_url": media["download"],
        "allow_download": production.allow_download,
        "language": production.language,
        "attachment_url": (
            urls.absolute(urls.production_download(production.slug))
            if download_key(production)
            else None
        ),
        "loudness_lufs": version.loudness_lufs if version else None,
        "page_url": page_url(production, urls),
        "embed_url": embed_url(production, urls),
        "embed_policy": production.embed_policy,
        "created_at": aware(production.created_at).isoformat(),
        "published_at": (
            aware(production.published_at).isoformat() if production.published_at else None
        ),
    }
    if production.status == "failed":
        data["error"] = production.error
    if manager:
        data["publish_early"] = production.publish_early
    return data


def artist_json(artist: Artist, store: ObjectStore, urls: Urls) -> dict[str, Any]:
    """The artist object: who they are, where from, and where to read or follow them."""
    return {
        "slug": artist.slug,
        "name": artist.name,
        "commune": artist.commune,
        "disciplines": discipline_names(artist.disciplines),
        "bio": artist.bio,
        "bio_en": artist.bio_en or None,
        "picture_url": media_url(store, urls.site)(artist.photo_key),
        # The page's links: an address that is not http(s) reaches no partner either.
        "links": links_of(artist.links),
        "featured": artist.featured,
        "page_url": artist_url(artist.slug, urls),
        "feed_url": urls.absolute(urls.artist_feed(artist.slug)),
        "api_url": urls.absolute(urls.api_artist(artist.slug)),
    }
