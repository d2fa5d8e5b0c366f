"""The renditions to produce for a source, as pure functions of what the probe saw."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from .settings import VideoStep

DEFAULT_FPS = Fraction(30)
# Codecs whose audio deserves every rung: no earlier lossy generation to protect.
LOSSLESS_AUDIO = ("flac", "alac", "wavpack", "ape", "tta", "truehd", "mlp")
MIN_SMALL_MAXRATE = 300_000
# A lossy source keeps the AAC rungs up to this multiple of its bitrate: AAC needs a little
# more than Vorbis or Opus for the same sound, and a re-encode costs some quality anyway.
LOSSY_HEADROOM = 1.45
# A source this much taller than the best step under it gets a rung at its own size.
SOURCE_RUNG_GAP = 1.15
# The folder of a video production's shared audio rendition.
AUDIO_FOLDER = "audio"
# The folders that hold sound and no picture: the one above and the audio rungs (``a128``).
_AUDIO_ONLY_FOLDER = re.compile(r"audio|a[0-9]+")


@dataclass(frozen=True)
class VideoRung:
    """One H.264 rendition: output size in square pixels, constant frame rate and rate control."""

    name: str
    width: int
    height: int
    fps: Fraction
    crf: int
    maxrate: int

    @property
    def bufsize(self) -> int:
        """VBV buffer: two seconds at the cap, so peaks stay bounded without starving scenes."""
        return 2 * self.maxrate


@dataclass(frozen=True)
class AudioRung:
    """One AAC-LC stereo 48 kHz rendition."""

    name: str
    bitrate: int


def even_floor(value: float) -> int:
    """Largest even integer not above ``value``, at least 2 (H.264 4:2:0 needs even sizes)."""
    return max(2, math.floor(value + 1e-9) // 2 * 2)


def even_round(value: float) -> int:
    """Nearest even integer to ``value``, at least 2."""
    return max(2, math.floor(value / 2 + 0.5) * 2)


def display_size(width: int, height: int, sar: Fraction | None, rotation: int) -> tuple[int, int]:
    """Size a viewer sees: coded size stretched by the sample aspect ratio, then rotated.

    Anamorphic sources are widened (never squeezed), like players do.
    """
    if sar and sar > 0 and sar != 1:
        width = round(width * sar)
    if rotation % 180 == 90:
        width, height = height, width
    return width, height


def output_fps(source: Fraction | None, cap: int = 60) -> Fraction:
    """Constant output frame rate: the source's, divided down to ``cap`` or below when faster.

    Dividing by a whole number (120 → 60, 100 → 50) keeps motion regular.
    """
    if source is None or source <= 0:
        return DEFAULT_FPS
    divisor = 1
    while source / divisor > cap:
        divisor += 1
    return source / divisor


def _scaled_maxrate(maxrate: int, fps: Fraction) -> int:
    # Twice the frames do not cost twice the bits; half as much again is the usual allowance.
    return int(maxrate * 1.5) if fps > 31 else maxrate


def video_ladder(
    display_width: int,
    display_height: int,
    fps: Fraction,
    steps: tuple[VideoStep, ...],
) -> list[VideoRung]:
    """Rungs at or below the source, highest first; the rung size is the picture's short side.

    Portrait stays portrait and the display aspect is kept with even sizes. A source smaller
    than every step gets one rung at its own (even) size, and so does a source well above the
    best step under it. Never upscales.
    """
    short = min(display_width, display_height)
    long_ = max(display_width, display_height)
    portrait = display_height > display_width
    rungs: list[VideoRung] = []
    for step in sorted(steps, key=lambda s: s.short_side, reverse=True):
        if step.short_side > short:
            continue
        rung_short = even_floor(step.short_side)
        rung_long = min(even_round(step.short_side * long_ / short), even_floor(long_))
        width, height = (rung_short, rung_long) if portrait else (rung_long, rung_short)
        rungs.append(
            VideoRung(
                f"v{step.short_side}",
                width,
                height,
                fps,
                step.crf,
                _scaled_maxrate(step.maxrate, fps),
            )
        )
    ordered = sorted(steps, key=lambda s: s.short_side)
    kept = [s for s in ordered if s.short_side <= short]
    above = [s for s in ordered if s.short_side > short]
    if above and (not kept or short > kept[-1].short_side * SOURCE_RUNG_GAP):
        # A source between two steps (576p, a 1000-pixel square) would otherwise lose its
        # sharpness to the step below; it gets a rung of its own size, priced by its pixels.
        width, height = even_floor(display_width), even_floor(display_height)
        base = kept[-1] if kept else ordered[0]
        area = Fraction(width * height, base.short_side * base.short_side * 16 // 9)
        maxrate = min(above[0].maxrate, int(base.maxrate * area))
        if not kept:
            maxrate = max(MIN_SMALL_MAXRATE, maxrate)
        rungs.insert(
            0,
            VideoRung(
                f"v{min(width, height)}",
                width,
                height,
                fps,
                above[0].crf,
                _scaled_maxrate(maxrate, fps),
            ),
        )
    return rungs


def audio_ladder(
    bitrates: tuple[int, ...],
    *,
    codec: str | None,
    bitrate: int | None,
    channels: int | None,
    sample_rate: int | None,
) -> list[AudioRung]:
    """AAC rungs for an audio production, highest first, none above what the source can fill.

    Lossy sources keep rungs up to ``LOSSY_HEADROOM`` times their own bitrate; mono or
    narrow-band sources stop at 128 kb/s. The lowest rung is always kept.
    """
    ordered = sorted(bitrates, reverse=True)
    ceiling: float = math.inf
    lossless = codec is not None and (codec.startswith("pcm_") or codec in LOSSLESS_AUDIO)
    if bitrate and not lossless:
        ceiling = bitrate * LOSSY_HEADROOM
    if (channels is not None and channels < 2) or (sample_rate is not None and sample_rate < 32000):
        ceiling = min(ceiling, 128_000)
    kept = [b for b in ordered if b <= ceiling] or ordered[-1:]
    return [AudioRung(f"a{b // 1000}", b) for b in kept]


def is_audio_only_folder(name: str) -> bool:
    """Whether a rendition folder written by the transcoder holds sound without picture."""
    return _AUDIO_ONLY_FOLDER.fullmatch(name) is not None
