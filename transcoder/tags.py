"""Tags (credits and cover art) read with mutagen, kept as bounded plain text."""

from __future__ import annotations

import base64
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen
from mutagen.flac import Picture

MAX_TEXT = 300
MAX_ARTIST = 200
MAX_ARTISTS = 20
MAX_SHORT = 64
MAX_COVER_BYTES = 16 * 1024 * 1024

# Bidi overrides and isolates can make a title display as something else; they are format
# characters (Cf) like the zero-width joiner, which emoji sequences need, so they are named.
_BIDI_CONTROLS = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_SPACES = re.compile(r"\s+")
# mutagen ships no type hints.
_PICTURE: Any = Picture


@dataclass
class Tags:
    """Credits and cover art found in a file; every text field is bounded, control-free text."""

    title: str | None = None
    artists: list[str] = field(default_factory=list)
    album: str | None = None
    date: str | None = None
    genre: str | None = None
    track: int | None = None
    cover: bytes | None = field(default=None, repr=False)
    cover_mime: str | None = None


def clean_text(value: object, limit: int = MAX_TEXT) -> str | None:
    """Return ``value`` as one line of text without control characters, at most ``limit`` long.

    The text is not escaped: the web layer escapes on output. None when nothing is left.
    """
    if value is None:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    # Truncate early so a 100 KB tag does not cost a full scan below.
    text = text[: limit * 4]
    text = "".join(
        " " if ch in "\t\n\r\v\f" else ch
        for ch in text
        if ch in "\t\n\r\v\f"
        or (unicodedata.category(ch) not in ("Cc", "Cs", "Co") and ch not in _BIDI_CONTROLS)
    )
    text = _SPACES.sub(" ", text).strip()
    if not text:
        return None
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def _texts(value: object) -> list[str]:
    """Flatten a tag value (str, list of str, ID3 frame) into a list of strings."""
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value.decode("utf-8", "replace") if isinstance(value, bytes) else value]
    text = getattr(value, "text", None)
    if text is not None:
        return [str(t) for t in text]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


def _first(value: object, limit: int = MAX_TEXT) -> str | None:
    for text in _texts(value):
        cleaned = clean_text(text, limit)
        if cleaned:
            return cleaned
    return None


def _artists(values: Iterable[str]) -> list[str]:
    artists: list[str] = []
    for value in values:
        name = clean_text(value, MAX_ARTIST)
        if name and name not in artists:
            artists.append(name)
        if len(artists) == MAX_ARTISTS:
            break
    return artists


def parse_track(value: object) -> int | None:
    """Read a track number such as ``"3"``, ``"03/12"`` or ``(3, 12)``; None when absent."""
    if isinstance(value, tuple | list) and value and isinstance(value[0], int | tuple):
        first = value[0]
        number = first[0] if isinstance(first, tuple) else first
        return number if isinstance(number, int) and 0 < number < 10_000 else None
    text = _first(value, MAX_SHORT)
    match = re.match(r"\s*(\d{1,4})", text or "")
    if not match:
        return None
    return int(match.group(1)) or None


def _cover(data: object, mime: str | None) -> tuple[bytes, str | None] | None:
    if not isinstance(data, bytes) or not data or len(data) > MAX_COVER_BYTES:
        return None
    return data, clean_text(mime, MAX_SHORT)


def _from_id3(tags: Any) -> Tags:
    out = Tags(
        title=_first(tags.get("TIT2")),
        artists=_artists(_texts(tags.get("TPE1"))),
        album=_first(tags.get("TALB")),
        date=_first(tags.get("TDRC") or tags.get("TYER"), MAX_SHORT),
        genre=_first(tags.get("TCON"), MAX_SHORT * 2),
        track=parse_track(tags.get("TRCK")),
    )
    pictures = tags.getall("APIC")
    # Picture type 3 is the front cover; any picture is better than none.
    pictures.sort(key=lambda p: p.type != 3)
    for picture in pictures:
        found = _cover(picture.data, picture.mime)
        if found:
            out.cover, out.cover_mime = found
            break
    return out


def _from_vorbis(tags: Any, pictures: list[Any]) -> Tags:
    def get(key: str) -> list[str]:
        return [str(v) for v in tags.get(key, [])] if key in tags else []

    out = Tags(
        title=_first(get("title")),
        artists=_artists(get("artist") or get("albumartist")),
        album=_first(get("album")),
        date=_first(get("date"), MAX_SHORT),
        genre=_first(get("genre"), MAX_SHORT * 2),
        track=parse_track(get("tracknumber")),
    )
    found_pictures = list(pictures)
    for encoded in get("metadata_block_picture"):
        try:
            found_pictures.append(_PICTURE(base64.b64decode(encoded)))
        except (ValueError, mutagen.MutagenError):
            continue
    found_pictures.sort(key=lambda p: p.type != 3)
    for picture in found_pictures:
        found = _cover(picture.data, picture.mime)
        if found:
            out.cover, out.cover_mime = found
            break
    return out


def _from_mp4(tags: Any) -> Tags:
    out = Tags(
        title=_first(tags.get("\xa9nam")),
        artists=_artists(_texts(tags.get("\xa9ART") or tags.get("aART"))),
        album=_first(tags.get("\xa9alb")),
        date=_first(tags.get("\xa9day"), MAX_SHORT),
        genre=_first(tags.get("\xa9gen"), MAX_SHORT * 2),
        track=parse_track(tags.get("trkn")),
    )
    for cover in tags.get("covr", []):
        # MP4Cover.FORMAT_PNG is 14; everything else in covr is JPEG in practice.
        mime = "image/png" if getattr(cover, "imageformat", 13) == 14 else "image/jpeg"
        found = _cover(bytes(cover), mime)
        if found:
            out.cover, out.cover_mime = found
            break
    return out


def read_mutagen(path: Path, logger: logging.Logger) -> Tags:
    """Read tags with mutagen from MP3, FLAC, Ogg, MP4/M4A, WAV or AIFF; empty Tags otherwise."""
    try:
        audio = mutagen.File(path)
        if audio is None or (audio.tags is None and not getattr(audio, "pictures", None)):
            return Tags()
        tags = audio.tags
        kind = type(tags).__name__ if tags is not None else ""
        if kind == "ID3" or hasattr(tags, "getall"):
            return _from_id3(tags)
        if kind == "MP4Tags":
            return _from_mp4(tags)
        if tags is None or hasattr(tags, "vendor") or kind.startswith("VC"):
            return _from_vorbis(tags or {}, list(getattr(audio, "pictures", [])))
        return Tags()
    # Tags are optional extras and mutagen raises many kinds of errors on crafted files:
    # none of them may stop a recording that ffmpeg can read.
    except Exception as exc:
        logger.info("tags unreadable in %s: %r", path.name, exc)
        return Tags()


def merge_format_tags(tags: Tags, raw: Mapping[str, object]) -> Tags:
    """Fill fields mutagen did not find from ffprobe's container tags (e.g. RIFF INFO, Matroska)."""
    lowered = {str(k).lower(): v for k, v in raw.items()}
    if tags.title is None:
        tags.title = _first(lowered.get("title"))
    if not tags.artists:
        artist = lowered.get("artist") or lowered.get("album_artist")
        tags.artists = _artists(_texts(artist))
    if tags.album is None:
        tags.album = _first(lowered.get("album"))
    if tags.date is None:
        tags.date = _first(lowered.get("date"), MAX_SHORT)
    if tags.genre is None:
        tags.genre = _first(lowered.get("genre"), MAX_SHORT * 2)
    if tags.track is None:
        tags.track = parse_track(lowered.get("track"))
    return tags
