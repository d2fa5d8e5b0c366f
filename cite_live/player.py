"""What the player needs to know about a production, and the options an embed may ask for."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cite_live import partners
from cite_live.catalogue import address, playing_version
from cite_live.models import MediaVersion, Production
from cite_live.plays import countable
from cite_live.presenter import (
    artists_of,
    chapters_of,
    duration_of,
    embed_url,
    media_of,
    media_url,
    page_url,
    title_lang_of,
    title_of,
)
from cite_live.storage import ObjectStore
from cite_live.web.urls import Urls

# Longer than any capture the limits let in; a bigger start time is a typo or a probe.
MAX_START = 7 * 24 * 3600.0
# The box the iframe snippet asks for: a 16:9 video, or the compact audio player.
EMBED_SIZES = {"video": (640, 360), "audio": (640, 166)}

# ASCII digits only, as in the browser: Python's \d would also take "٩٠".
_CLOCK = re.compile(r"(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)", re.ASCII)
_UNITS = re.compile(r"(?:(\d{1,3})h)?(?:(\d{1,4})m)?(?:(\d{1,6}(?:\.\d+)?)s)?", re.ASCII)
_SECONDS = re.compile(r"\d{1,6}(?:\.\d+)?", re.ASCII)
_HEX_COLOUR = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_TRUE = {"", "1", "true", "yes", "on"}


def parse_time(value: str | None) -> float | None:
    """Seconds from "90", "90.5", "1m30s", "1h2m", "45s", "1:30" or "1:02:03"; None otherwise.

    The same grammar as ``parseTime`` in web/static/js/timecode.js, which reads ``?t=`` and
    ``data-seek`` in the browser.
    """
    if value is None:
        return None
    text = value.strip().lower()
    if not text or len(text) > 20:
        return None
    seconds: float
    if _SECONDS.fullmatch(text):
        seconds = float(text)
    elif match := _CLOCK.fullmatch(text):
        hours, minutes, secs = match.groups()
        # A clock reads 1:05, never 1:99 (nor 1:75:00 once hours are written).
        if float(secs) >= 60 or (hours is not None and int(minutes) >= 60):
            return None
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
    elif (match := _UNITS.fullmatch(text)) and any(match.groups()):
        hours, minutes, secs = match.groups()
        seconds = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    else:
        return None
    if not math.isfinite(seconds) or seconds > MAX_START:
        return None
    return seconds


def parse_colour(value: str | None) -> str | None:
    """``#rrggbb`` from "#f50", "ff5500" or "#FF5500"; None for anything else."""
    if value is None:
        return None
    match = _HEX_COLOUR.fullmatch(value.strip())
    if match is None:
        return None
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


def parse_flag(value: str | None) -> bool:
    """``?autoplay``, ``?autoplay=1`` and ``?autoplay=true`` are on; absent or anything else off."""
    return value is not None and value.strip().lower() in _TRUE


@dataclass(frozen=True)
class PlayerOptions:
    """How a player starts: where, whether it plays at once, loops, and its accent colour."""

    start: float | None = None
    autoplay: bool = False
    loop: bool = False
    color: str | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> PlayerOptions:
        """Options from a query string; invalid values are ignored, never echoed."""
        return cls(
            start=parse_time(params.get("t")),
            autoplay=parse_flag(params.get("autoplay")),
            loop=parse_flag(params.get("loop")),
            color=parse_colour(params.get("color")),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "autoplay": self.autoplay,
            "loop": self.loop,
            "color": self.color,
        }


def embed_iframe(
    src: str, kind: str, title: str, size: tuple[int, int] | None = None, *, capped: bool = False
) -> str:
    """The iframe HTML of a player, attribute values escaped (it is HTML in a partner's page).

    It fits any column from 280 px up: video keeps its 16:9 box at the column's width, audio
    its height across it. The width and height attributes stay for the consumers that read
    them; the style, which browsers follow, overrides them. ``capped``: no wider than ``size``
    (oEmbed's maxwidth). ``referrerpolicy`` sends the partner's origin even from a page that
    sends no Referer, so that the player can tell a refused framer (cite_live.partners).
    """
    width, height = size or EMBED_SIZES.get(kind, EMBED_SIZES["video"])
    cap = f"{width}px" if capped else "100%"
    shape = f"height:{height}px" if kind == "audio" else "height:auto;aspect-ratio:16/9"
    return (
        f'<iframe src="{html.escape(src)}" width="{width}" height="{height}" '
        f'style="border:0;width:100%;max-width:{cap};{shape}" '
        'allow="autoplay; fullscreen; picture-in-picture" allowfullscreen loading="lazy" '
        'referrerpolicy="strict-origin-when-cross-origin" '
        f'title="{html.escape(title[:200])}"></iframe>'
    )


def embed_snippet(embed_url: str, kind: str, title: str) -> str:
    """The iframe HTML a partner pastes (web/static/js/share.js writes the same)."""
    return embed_iframe(embed_url, kind, title)


def player_data(
    production: Production,
    store: ObjectStore,
    site_url: str,
    *,
    lang: str = "fr",
    link: Callable[[str], str] | None = None,
    preview: MediaVersion | None = None,
) -> dict[str, Any]:
    """Everything the player macros and the browser need for ``production``.

    URLs are absolute (media may come from a CDN); media URLs are None until a version is
    published, and ``ready`` tells the template whether to draw a player or a notice. ``link``
    turns a key into its URL (``access.media_link``: signed links for a private production);
    by default, the store's public URL. ``preview``: the version a processing production plays
    meanwhile, for a viewer who may play it (catalogue.playable_preview); the player then plays
    its growing playlists from the start, and the page says it is still processing.
    """
    urls = Urls(site_url)
    version = playing_version(production)
    if version is not None:
        preview = None
    media = media_of(production, media_url(store, urls.site, link), preview)
    duration = duration_of(production)
    if duration is None and preview is not None and preview.duration is not None:
        # The source's, which the preview knows before its playlists do.
        duration = round(preview.duration, 3)
    title = title_of(production, lang)
    chapters = chapters_of(production)
    width, height = EMBED_SIZES.get(production.kind, EMBED_SIZES["video"])
    embed = embed_url(production, urls)
    return {
        # What the browser names it by (embed, the API when links are renewed): an unlisted
        # production's id opens nothing, its secret address does.
        "id": address(production),
        "slug": production.slug,
        "title": title,
        "title_lang": title_lang_of(production, lang),
        # Who made it, in credit order, each once: the audio embed names them.
        "artists": [artist["name"] for artist in artists_of(production)],
        "kind": production.kind,
        "status": production.status,
        "ready": media["hls"] is not None,
        # Still processing: an EVENT playlist that grows, played from its start (playback.js).
        "preview": preview is not None and media["hls"] is not None,
        "hls_url": media["hls"],
        "poster": media["picture"],
        "cover": media["cover"],
        "waveform_url": media["waveform"],
        "storyboard_url": media["storyboard"],
        "chapters_url": urls.absolute(urls.chapters(production.slug)) if chapters else None,
        "chapters": chapters,
        "duration": duration,
        "page_url": page_url(production, urls),
        "embed_url": embed,
        "embed_width": width,
        "embed_height": height,
        "embed_snippet": embed_snippet(embed, production.kind, title),
        # The sites allowed to embed and drive the player (player.js), None for any.
        "embed_origins": partners.allowed_origins(production, urls.site),
        # anywhere, partners or site: what the share panel offers (cite_live.partners).
        "embed_policy": production.embed_policy,
        # Where the player counts its plays; none for what plays never count for (a draft, a
        # private production in its owner's preview).
        "plays_url": urls.api_plays() if countable(production, by_address=True) else None,
        # Integrated loudness (EBU R128) of the version that plays, measured at ingest: the
        # player levels each production to the same loudness (web/static/js/loudness.js).
        "loudness_lufs": version.loudness_lufs if version is not None else None,
        "lang": lang,
    }
