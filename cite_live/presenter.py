"""What every view of a production shows alike: its media as URLs, its chapters, its duration
and its artists. Cards, the API object and the player each take what they show from here, so
that they agree on which picture stands for a production and when its media play.
"""

from __future__ import annotations

from collections.abc import Callable

from cite_live.catalogue import picture_key, playing_version
from cite_live.models import Production
from cite_live.storage import ObjectStore

KeyUrl = Callable[[str | None], str | None]


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


def media_of(production: Production, url: KeyUrl) -> dict[str, str | None]:
    """The URLs of what plays: all None until a version plays. ``picture`` is the production's
    picture (:func:`cite_live.catalogue.picture_key`); ``cover`` the audio cover alone."""
    version = playing_version(production)
    if version is None:
        return dict.fromkeys(("hls", "picture", "cover", "waveform", "storyboard", "download"))
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
