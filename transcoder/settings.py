"""What the transcoder accepts and how it encodes, declared once as frozen data."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

GIB = 1024**3


@dataclass(frozen=True)
class Limits:
    """Ceilings checked from the probe before any decoding, and the budget of each ffmpeg run.

    ``max_width`` bounds the long side and ``max_height`` the short side, so portrait and
    landscape pictures get the same allowance.
    The wall-clock budget of one ffmpeg process is ``max(min_timeout, duration *
    timeout_factor)`` and its CPU budget ``max(cpu_seconds, duration * cpu_factor)``.
    """

    max_bytes: int = 8 * GIB
    max_duration: float = 6 * 3600.0
    max_width: int = 4096
    max_height: int = 2304
    max_pixels: int = 4096 * 2304
    max_streams: int = 16
    max_channels: int = 16
    timeout_factor: float = 8.0
    min_timeout: float = 120.0
    probe_timeout: float = 30.0
    cpu_factor: float = 24.0
    cpu_seconds: int = 600
    memory_bytes: int = 8 * GIB


@dataclass(frozen=True)
class VideoStep:
    """One rung of the video ladder: its short side, quality target and bitrate cap at 30 fps."""

    short_side: int
    crf: int
    maxrate: int


@dataclass(frozen=True)
class TranscoderSettings:
    """Everything the transcoder needs to know, passed in by its owner.

    ``threads`` 0 lets ffmpeg choose; ``tmp_dir`` None uses the system temp dir.
    """

    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    threads: int = 0
    limits: Limits = field(default_factory=Limits)
    segment_seconds: int = 6
    keyframe_seconds: int = 2
    # A segmented transcode (``segmented``) cuts a long video into chunks this long, each
    # encoded on its own: a whole number of segments, each a whole number of key frame
    # intervals, so that chunks join where one pass cuts anyway.
    chunk_seconds: int = 60
    tmp_dir: Path | None = None
    video_steps: tuple[VideoStep, ...] = (
        VideoStep(1080, 22, 5_000_000),
        VideoStep(720, 22, 3_000_000),
        VideoStep(480, 23, 1_500_000),
        VideoStep(360, 23, 800_000),
        # What a slow phone starts on (the best rung under 500 kb/s, web/static/js/streams.js):
        # a first 6 s segment of about 200 KB rather than the 400 KB of 360p, and the floor a
        # weak cellular link falls back to. It also gives a 360p source two bit rates.
        VideoStep(240, 24, 400_000),
    )
    max_fps: int = 60
    x264_preset: str = "veryfast"
    video_audio_bitrate: int = 128_000
    # ffmpeg's "fast" AAC coder costs about 60% of the default "twoloop", which is what lets
    # three rungs of a long recording encode at 40x real time on two cores.
    aac_coder: str = "fast"
    audio_bitrates: tuple[int, ...] = (192_000, 128_000, 64_000)
    poster_max_side: int = 1280
    poster_candidates: int = 10
    cover_max_side: int = 1400
    storyboard_thumb_width: int = 160
    storyboard_max_thumbs: int = 100
    storyboard_min_interval: float = 1.0
    storyboard_columns: int = 10
    waveform_target_pairs: int = 1500

    def __post_init__(self) -> None:
        for name in ("segment_seconds", "keyframe_seconds", "chunk_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive number of seconds")
        if self.segment_seconds % self.keyframe_seconds:
            raise ValueError("segment_seconds must be a multiple of keyframe_seconds")
        if self.chunk_seconds % self.segment_seconds:
            raise ValueError(
                f"chunk_seconds ({self.chunk_seconds}) must be a multiple of segment_seconds "
                f"({self.segment_seconds}): chunks join on segment boundaries"
            )
