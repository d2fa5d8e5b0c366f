"""Posters and covers: a representative video frame, a re-encoded cover, or a placeholder."""

from __future__ import annotations

import hashlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

JPEG_QUALITY = 85
# Covers above this are refused before decoding (a small file can declare a huge bitmap).
MAX_COVER_PIXELS = 40_000_000
# Frames darker than this mean luma (0-255), or flatter than this spread, are not posters.
DARK_LUMA = 28.0
FLAT_SPREAD = 6.0
PLACEHOLDER_SIDE = 800

Frames = NDArray[np.uint8]


def read_frames(raw: Path, width: int, height: int) -> Frames:
    """Frames of a raw RGB24 file as an array of shape (count, height, width, 3)."""
    frame_bytes = width * height * 3
    count = raw.stat().st_size // frame_bytes if raw.is_file() else 0
    if count == 0:
        return np.zeros((0, height, width, 3), dtype=np.uint8)
    data = np.fromfile(raw, dtype=np.uint8, count=count * frame_bytes)
    return data.reshape(count, height, width, 3)


def _luma(frame: Frames) -> NDArray[np.float64]:
    # Every other pixel each way is plenty to judge a frame and four times cheaper.
    rgb = frame[::2, ::2].astype(np.float64)
    result: NDArray[np.float64] = rgb @ np.array([0.299, 0.587, 0.114])
    return result


def choose_poster(frames: Frames) -> int | None:
    """Index of the poster among candidate frames, or None when there are none.

    Dark or flat frames (fades, black leaders, title cards of one colour) are set aside; of the
    rest, the frame whose luma histogram is closest to their average is the most representative,
    as ffmpeg's ``thumbnail`` filter judges it. When every frame is dark, the brightest wins.
    """
    if len(frames) == 0:
        return None
    lumas = [_luma(frame) for frame in frames]
    usable = [
        index
        for index, luma in enumerate(lumas)
        if luma.mean() >= DARK_LUMA and luma.std() >= FLAT_SPREAD
    ]
    if not usable:
        return int(np.argmax([luma.mean() for luma in lumas]))
    histograms = {
        index: np.histogram(lumas[index], bins=64, range=(0, 256), density=True)[0]
        for index in usable
    }
    average = np.mean(list(histograms.values()), axis=0)
    return min(usable, key=lambda index: float(np.sum((histograms[index] - average) ** 2)))


def save_jpeg(image: Image.Image, path: Path, quality: int = JPEG_QUALITY) -> None:
    """Write ``image`` as a progressive baseline-compatible RGB JPEG without metadata."""
    image.convert("RGB").save(path, "JPEG", quality=quality, optimize=True, progressive=True)


def poster_from_frames(raw: Path, width: int, height: int, out: Path) -> bool:
    """Write the best candidate frame of ``raw`` to ``out`` as JPEG; False when there is none."""
    frames = read_frames(raw, width, height)
    index = choose_poster(frames)
    if index is None:
        return False
    save_jpeg(Image.fromarray(frames[index], "RGB"), out)
    return True


def cover_from_bytes(data: bytes, out: Path, max_side: int, logger: logging.Logger) -> bool:
    """Decode embedded cover art and write it re-encoded as JPEG, at most ``max_side`` pixels.

    The bytes as they came are never published: decoding and re-encoding drops whatever else
    the file carried (metadata, trailing data, polyglot tricks). False when it is not an image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.width * image.height > MAX_COVER_PIXELS:
                    logger.info("cover art of %dx%d refused", image.width, image.height)
                    return False
                image.draft("RGB", (max_side, max_side))
                picture = ImageOps.exif_transpose(image).convert("RGB")
    # Pillow raises many kinds of errors on damaged or hostile images; a cover is optional.
    except Exception as exc:
        logger.info("cover art unreadable: %r", exc)
        return False
    picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    save_jpeg(picture, out)
    return True


def placeholder_cover(seed: str, out: Path, side: int = PLACEHOLDER_SIDE) -> None:
    """Write a diagonal two-colour gradient derived from ``seed`` (e.g. the title) as JPEG.

    The same title always gets the same colours, so a catalogue page stays stable.
    """
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    start = np.array(list(digest[0:3]), dtype=np.float64) * 0.6 + 40
    end = np.array(list(digest[3:6]), dtype=np.float64) * 0.6 + 60
    ramp = np.add.outer(np.arange(side), np.arange(side)) / (2 * (side - 1))
    pixels = start + ramp[..., None] * (end - start)
    save_jpeg(Image.fromarray(pixels.astype(np.uint8), "RGB"), out)
