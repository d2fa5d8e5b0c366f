"""The renditions to produce for a source, as pure functions of what the probe saw."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
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
# No rung spends more than the source's own picture did, give or take this. A re-encode adds no
# detail but loses some, and x264 "veryfast" needs a little more than a camera's or an editor's
# encoder for the same picture: a tenth more allows for both. Beyond that, bits buy nothing
# anyone could see: a 3.8 Mb/s capture re-encoded at 4.4 Mb/s came out at SSIM 0.996.
SOURCE_MARGIN = Fraction(11, 10)
# x264 starts its VBV buffer this full (its vbv-init default) and may spend that store on top of
# the rate: a recording of T seconds holds at most maxrate * T + fill * bufsize bits.
VBV_INITIAL_FILL = Fraction(9, 10)
BUFFER_SECONDS = 2
# A cap at least this, whatever the source says: below it x264 turns the VBV off (its rates are
# in whole kb/s) and even 240p is a slideshow of blocks.
MIN_CAPPED_MAXRATE = 64_000
# A rung must cost at least a fifth more than the kept rung below it to be a choice of its own.
# Closer than that, two rungs are one choice to a player (hls.js wants more headroom than that on
# its bandwidth estimate before it switches up), and the upper one only spreads the same bits over
# more pixels. Apple's authoring guide spaces rungs by 1.5-2x; the settings' steps are 1.67-2x.
MIN_RUNG_STEP = 1.2
# Bits per pixel per frame under which a picture is blocks, whatever it shows: H.264 at 1080p30
# in 1.25 Mb/s. A top rung this starved adds nothing but pixels over the smaller one below it.
# For scale, the settings' steps give 0.08 (1080p) to 0.13 (240p), and a capped top rung has
# about its source's own (about the source's bits over at most its pixels).
STARVED_BPP = 0.02
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
        return BUFFER_SECONDS * self.maxrate


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


def bits_per_pixel(rung: VideoRung) -> float:
    """Bits the rung's cap allows each pixel of each frame: how well fed its picture is."""
    return rung.maxrate / (rung.width * rung.height * float(rung.fps))


def source_ceiling(source_bitrate: int | None, duration: float | None = None) -> int | None:
    """The highest cap a rung may have: the source's picture bitrate with ``SOURCE_MARGIN``.

    Over a recording of ``duration`` seconds, the cap is lowered so that what x264 may borrow
    from its initial VBV buffer still keeps the whole rendition's average under that bitrate:
    15% lower for a 10 s clip, 0.5% for six minutes. None (no cap) when the bitrate is
    unknown or not a bitrate (zero, negative).
    """
    if source_bitrate is None or source_bitrate <= 0:
        return None
    # Exact arithmetic: a header's absurd figure must not overflow a float.
    ceiling = source_bitrate * SOURCE_MARGIN
    if duration is not None and math.isfinite(duration) and duration > 0:
        seconds = Fraction(duration)
        ceiling *= seconds / (seconds + VBV_INITIAL_FILL * BUFFER_SECONDS)
    return max(MIN_CAPPED_MAXRATE, math.floor(ceiling))


def fit_to_source(
    rungs: list[VideoRung], source_bitrate: int | None, duration: float | None = None
) -> list[VideoRung]:
    """Cap ``rungs`` (highest first) at the source's bitrate, then drop those that add nothing.

    Capping makes the upper rungs of a modest source cost the same. What a rung adds over the
    rung below is a step in bits for the same pixels or fewer; with no such step it adds only
    pixels, each with fewer bits (at equal caps, 1080p has 2.25 times fewer than 720p). So:

    - the top rung keeps its resolution, the source's own or the best step under it: its cap
      holds about the source's bits over at most the source's pixels, so its picture is about
      as well fed as the source's was. Unless it is starved (under ``STARVED_BPP`` bits per pixel),
      the source itself being blocks at that size: then it truly adds nothing over the smaller
      picture below, it goes, and the next rung is the top, under the same rule;
    - going down, a rung whose cap is not ``MIN_RUNG_STEP`` times under the kept rung above it
      is the same choice for a player with fewer pixels: it goes;
    - the lowest rung always stays: it is the floor a weak link falls back to.

    Unknown or nonsense bitrates change nothing. ``duration`` (seconds) tightens the cap for
    short recordings (``source_ceiling``).
    """
    ceiling = source_ceiling(source_bitrate, duration)
    if ceiling is None or not rungs:
        return list(rungs)
    capped = [replace(rung, maxrate=min(rung.maxrate, ceiling)) for rung in rungs]
    lowest = capped[-1]
    while len(capped) > 1 and bits_per_pixel(capped[0]) < STARVED_BPP:
        capped.pop(0)
    kept = [capped[0]]
    for rung in capped[1:]:
        if kept[-1].maxrate >= rung.maxrate * MIN_RUNG_STEP or rung is lowest:
            kept.append(rung)
    return kept


def video_ladder(
    display_width: int,
    display_height: int,
    fps: Fraction,
    steps: tuple[VideoStep, ...],
    source_bitrate: int | None = None,
    duration: float | None = None,
) -> list[VideoRung]:
    """Rungs at or below the source, highest first; the rung size is the picture's short side.

    Portrait stays portrait and the display aspect is kept with even sizes. A source smaller
    than every step gets one rung at its own (even) size, and so does a source well above the
    best step under it. Never upscales. With ``source_bitrate`` (the picture's bits per second,
    ``MediaInfo.video_bitrate``) and the recording's ``duration``, no rung spends more than the
    source did and rungs that would add nothing are left out (``fit_to_source``).
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
    return fit_to_source(rungs, source_bitrate, duration)


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
