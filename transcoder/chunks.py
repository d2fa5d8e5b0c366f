"""Chunks of a long video: where each starts and ends, frame-exact, and how its ffmpeg cuts it.

A chunk is a whole number of segments of the video ladder (``TranscoderSettings.
chunk_seconds``). It starts on an output frame: the first one at or after ``index *
chunk_seconds``, so that at a rate such as 30000/1001, where a minute is no whole number of
frames, no frame is lost or repeated between chunks. Everything here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .commands import ChunkSpan
from .ladder import output_fps
from .probe import MediaInfo
from .settings import TranscoderSettings


def chunked(info: MediaInfo, settings: TranscoderSettings) -> bool:
    """Whether ``info`` is worth a segmented transcode: a video longer than two chunks, whose
    chunks the HLS muxer can cut where one pass would (``segment_time``).

    Sound alone never is (its renditions are cheap and encoded in parallel already).
    """
    duration = picture_duration(info)
    if info.kind != "video" or duration is None or duration <= 2 * settings.chunk_seconds:
        return False
    fps = output_fps(info.frame_rate, settings.max_fps)
    try:
        for chunk in plan_chunks(info, settings):
            segment_time(chunk, fps, settings)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Chunk:
    """One chunk of a video: frames ``first_frame`` to ``first_frame + frames`` (to the end of
    the source when ``frames`` is None) of the output frame rate; ``start`` is the first one's
    time in seconds and ``first_segment`` its first segment's number in the whole rendition."""

    index: int
    first_frame: int
    frames: int | None
    first_segment: int
    start: Fraction

    def to_json(self) -> dict[str, Any]:
        """A JSON object, ``start`` as ``"num/den"`` so that it comes back exact."""
        return {
            "index": self.index,
            "first_frame": self.first_frame,
            "frames": self.frames,
            "first_segment": self.first_segment,
            "start": f"{self.start.numerator}/{self.start.denominator}",
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Chunk:
        """The inverse of ``to_json``."""
        frames = value["frames"]
        return cls(
            index=int(value["index"]),
            first_frame=int(value["first_frame"]),
            frames=None if frames is None else int(frames),
            first_segment=int(value["first_segment"]),
            start=Fraction(str(value["start"])),
        )


def picture_duration(info: MediaInfo) -> float | None:
    """How long the picture lasts (the container's length when it does not say), or None when
    that is no positive finite number."""
    duration = info.video_duration or info.duration
    if not isinstance(duration, int | float) or not math.isfinite(duration) or duration <= 0:
        return None
    return float(duration)


def plan_chunks(info: MediaInfo, settings: TranscoderSettings) -> list[Chunk]:
    """The chunks of ``info``'s picture, in order; pure.

    A chunk starts every ``chunk_seconds`` as long as at least one whole segment is left after
    its start, so the last chunk holds from one segment to a chunk and a segment less a frame,
    and a short tail is joined to the segment before it within that chunk, as one pass does.
    Raises ValueError for a duration that is not a positive finite number.
    """
    duration = picture_duration(info)
    if duration is None:
        raise ValueError("a video to cut into chunks needs a positive, finite duration")
    fps = output_fps(info.frame_rate, settings.max_fps)
    size, segment = settings.chunk_seconds, settings.segment_seconds
    count = 1
    while count * size + segment <= duration:
        count += 1
    firsts = [math.ceil(index * size * fps) for index in range(count)]
    return [
        Chunk(
            index=index,
            first_frame=first,
            frames=firsts[index + 1] - first if index + 1 < count else None,
            first_segment=index * size // segment + 1,
            start=Fraction(first) / fps,
        )
        for index, first in enumerate(firsts)
    ]


def _frame_at(instant: Fraction, fps: Fraction) -> Fraction:
    """Time of the first output frame at or after ``instant``."""
    return math.ceil(instant * fps) / fps


def segment_time(chunk: Chunk, fps: Fraction, settings: TranscoderSettings) -> Fraction:
    """The ``hls_time`` that makes the HLS muxer cut ``chunk`` where one pass cuts.

    The muxer cuts at the first key frame at least ``n * hls_time`` after the chunk's first
    frame. One pass cuts at the key frame forced at each multiple of ``segment_seconds``; when
    a minute is no whole number of frames those lie up to a frame less than a segment from the
    chunk's start, and a slightly shorter ``hls_time`` still falls between them and the key
    frame before. Raises ValueError when no value does (a chunk of far too many segments
    for its frame rate).
    """
    seconds, key = settings.segment_seconds, settings.keyframe_seconds
    nominal = Fraction((chunk.first_segment - 1) * seconds)
    cuts = settings.chunk_seconds // seconds
    low, high = Fraction(0), Fraction(seconds * 10)
    for number in range(1, cuts + 1):
        boundary = nominal + number * seconds
        high = min(high, (_frame_at(boundary, fps) - chunk.start) / number)
        low = max(low, (_frame_at(boundary - key, fps) - chunk.start) / number)
    if low < seconds <= high:
        return Fraction(seconds)
    chosen = Fraction(math.floor(high * 1_000_000), 1_000_000)
    if not low < chosen <= high:
        raise ValueError(f"chunk_seconds {settings.chunk_seconds} is too long at {fps} frames/s")
    return chosen


def span_of(chunk: Chunk, fps: Fraction, settings: TranscoderSettings) -> ChunkSpan:
    """What ``commands.chunk_argv`` needs to encode ``chunk``."""
    nominal = (chunk.first_segment - 1) * settings.segment_seconds
    return ChunkSpan(
        start=chunk.start,
        frames=chunk.frames,
        first_key=nominal // settings.keyframe_seconds,
        first_segment=chunk.first_segment,
        segment_time=segment_time(chunk, fps, settings),
    )
