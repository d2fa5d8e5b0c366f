"""The cover image an artist chooses for a production: checked, re-encoded, stored, swapped.
It is chosen in the production's edit form and saved with the rest of it.

Whatever was sent (a phone's 12-megapixel JPEG with an EXIF rotation, a PNG with transparency,
a WebP) is decoded once with Pillow under a pixel limit and written back as a plain RGB JPEG of
at most 1600×1600: no metadata of the original (GPS position, camera serial) leaves with it,
and a crafted file never reaches a listener's browser as it was sent.
"""

from __future__ import annotations

import io
import logging
import secrets
import warnings
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from starlette.datastructures import UploadFile

from cite_live.i18n import N_
from cite_live.models import Production
from cite_live.services import Services
from cite_live.storage import StorageError, media_key, version_prefix

log = logging.getLogger("cite_live.covers")

MAX_BYTES = 20 * 1024 * 1024
# A 50-megapixel camera is the largest sensible source; beyond, decoding alone costs hundreds
# of megabytes (and a "decompression bomb" claims billions of pixels in a few bytes).
MAX_PIXELS = 50_000_000
BOX = (1600, 1600)
QUALITY = 85
FORMATS = ("JPEG", "PNG", "WEBP")

NOT_AN_IMAGE = N_("This file is not a JPEG, PNG or WebP image.")
TOO_BIG = N_("This image is larger than 20 MB.")
TOO_MANY_PIXELS = N_("This image has too many pixels (50 megapixels at most).")
DAMAGED = N_("This image is damaged and could not be read.")
# Where artists' photos live in the store, apart from any production's media.
ARTISTS_PREFIX = "artists/"


class CoverRefused(Exception):
    """The file cannot become a cover; ``message`` is a sentence for the artist."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def cover_key(production_id: str) -> str:
    """A new, unguessable key for a cover of ``production_id``: a fresh name per upload, so
    that caches may keep each image for a year (see storage.cache_control_for)."""
    return media_key(version_prefix(production_id, "covers"), f"{secrets.token_urlsafe(12)}.jpg")


def reencode(source: IO[bytes]) -> bytes:
    """The JPEG to store for the image in ``source``; CoverRefused when it is not one we take."""
    try:
        with warnings.catch_warnings():
            # Pillow warns, rather than fails, between MAX_IMAGE_PIXELS and twice that.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=FORMATS) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise CoverRefused(TOO_MANY_PIXELS)
                image.load()
                upright = ImageOps.exif_transpose(image)
    except CoverRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise CoverRefused(TOO_MANY_PIXELS) from None
    except UnidentifiedImageError:
        raise CoverRefused(NOT_AN_IMAGE) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        # Pillow's plugins report truncated or inconsistent data with any of these.
        raise CoverRefused(DAMAGED) from None
    rgb = _on_white(upright)
    rgb.thumbnail(BOX, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, format="JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def _on_white(image: Image.Image) -> Image.Image:
    """RGB, with any transparency laid on white (a logo on a transparent PNG stays legible)."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def read(upload: object) -> tuple[bytes | None, str | None]:
    """What the form's file field brought: ``(jpeg, None)`` for an image we take, ``(None,
    sentence)`` for a file refused, ``(None, None)`` when no file was chosen (a browser then
    sends an empty part without a name)."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, None
    if upload.size is not None and upload.size > MAX_BYTES:
        return None, TOO_BIG
    try:
        return reencode(upload.file), None
    except CoverRefused as refused:
        return None, refused.message


def put(services: Services, production_id: str, jpeg: bytes) -> str:
    """Store ``jpeg`` under a new cover key of ``production_id``; the key."""
    key = cover_key(production_id)
    services.store.put_bytes(key, jpeg)
    return key


def swap(session: Session, production_id: str, key: str | None) -> str | None:
    """Point the production at the cover ``key`` (None: the recording's own image) and return
    the key it pointed at until now, for the caller to remove once this commits.

    The previous key is the one this very update replaced, not one read earlier: of two saves
    at once, each then removes only the cover it replaced, and none is left in the store for
    nobody. The update names the value it expects and is tried again when another save got
    there first.
    """
    for _attempt in range(10):
        found = session.execute(
            select(Production.cover_key).where(Production.id == production_id)
        ).first()
        if found is None:
            raise LookupError(production_id)
        old: str | None = found.cover_key
        unchanged = Production.cover_key.is_(None) if old is None else Production.cover_key == old
        swapped = session.execute(
            update(Production)
            .where(Production.id == production_id, unchanged)
            .values(cover_key=key)
            .execution_options(synchronize_session=False)
        )
        if swapped.rowcount == 1:  # type: ignore[attr-defined]
            loaded = session.identity_map.get(identity_key(Production, production_id))
            if loaded is not None:
                # What the page drawn next from this session shows, without a new query.
                set_committed_value(loaded, "cover_key", key)
            return old
    raise RuntimeError(f"the cover of {production_id} kept changing")


def remove_quietly(services: Services, key: str) -> None:
    """Delete one object; a store that cannot be reached leaves an orphan, logged, not an error."""
    try:
        services.store.delete(key)
    except StorageError:
        log.warning("could not remove %s from the store", key, exc_info=True)


# --- an artist's photo ---------------------------------------------------------------------------

# The photo on an artist's page, and the square crop their cards show (4rem at three device
# pixels per CSS pixel, with room to spare).
PHOTO_BOX = (1200, 1200)
PHOTO_SQUARE = 400
# Faces sit in the upper part of most portraits: the square is cut a little above the centre.
PHOTO_CENTRE = (0.5, 0.4)


@dataclass(frozen=True)
class Photo:
    """An artist's photo, re-encoded: the large version (``width`` × ``height``) and the square."""

    large: bytes
    square: bytes
    width: int
    height: int


def reencode_photo(source: IO[bytes]) -> Photo:
    """The two JPEGs to store for the photo in ``source``; CoverRefused when it is not one we
    take. The upload passes the same checked decoding as a cover (:func:`reencode`); the two
    sizes are cut from what that gives, an image of our own making."""
    jpeg = reencode(source)
    with Image.open(io.BytesIO(jpeg), formats=("JPEG",)) as decoded:
        image = decoded.convert("RGB")
    large = image.copy()
    large.thumbnail(PHOTO_BOX, Image.Resampling.LANCZOS)
    square = ImageOps.fit(
        image, (PHOTO_SQUARE, PHOTO_SQUARE), Image.Resampling.LANCZOS, centering=PHOTO_CENTRE
    )
    return Photo(_jpeg(large), _jpeg(square), large.width, large.height)


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def photo_keys(artist_id: int) -> tuple[str, str]:
    """New, unguessable keys for a photo of the artist ``artist_id``: (large, square). A fresh
    name per upload, as for covers, so that no cache shows the previous photo under it."""
    name = secrets.token_urlsafe(12)
    prefix = f"{ARTISTS_PREFIX}{int(artist_id)}/photos/"
    return media_key(prefix, f"{name}.jpg"), media_key(prefix, f"{name}-square.jpg")


def put_photo(services: Services, artist_id: int, photo: Photo) -> tuple[str, str]:
    """Write ``photo`` to the store under new keys; returns them (large, square). The row is
    pointed at them afterwards, by whoever called (see cite_live.artist_profile)."""
    large_key, square_key = photo_keys(artist_id)
    services.store.put_bytes(large_key, photo.large)
    services.store.put_bytes(square_key, photo.square)
    return large_key, square_key
