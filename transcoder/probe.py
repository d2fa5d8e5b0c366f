"""What a source file holds, from a hardened ffprobe run plus mutagen, checked against limits."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

from . import boxes, commands, signatures
from .errors import InputRefused
from .ladder import display_size
from .language import bcp47
from .runner import Budget, Job, Runner
from .settings import Limits, TranscoderSettings
from .tags import Tags, merge_format_tags, read_mutagen

# Image codecs: a video stream of these with a single frame is a cover, not a film.
STILL_CODECS = {"mjpeg", "png", "bmp", "gif", "webp", "tiff", "jpeg2000", "jpegls"}
INTERLACED_ORDERS = {"tt", "bb", "tb", "bt"}
MIN_DURATION = 0.1
# A moving picture in fewer bits than this is a header's nonsense rather than a recording, and
# above this no camera or mezzanine codec writes (ProRes 4444 XQ at 8K is about 7 Gb/s).
MIN_VIDEO_BITRATE = 8_000
MAX_VIDEO_BITRATE = 10_000_000_000
# A stream cannot hold more bits than its whole file: a declared rate above the file's own
# average by more than this (headers, rounding of short files) is not believed.
FILE_RATE_SLACK = 1.1


@dataclass
class MediaInfo:
    """A probed source. ``width``/``height`` are the display size (after SAR and rotation).

    ``kind`` is ``audio`` for anything without a moving picture, cover art included.
    """

    kind: Literal["audio", "video"]
    format_name: str
    duration: float
    size: int
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: int = 0
    has_audio: bool = False
    channels: int | None = None
    sample_rate: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    video_streams: int = 0
    audio_streams: int = 0
    subtitle_streams: int = 0
    streams: int = 0
    tags: Tags = field(default_factory=Tags)
    coded_width: int | None = None
    coded_height: int | None = None
    sample_aspect_ratio: Fraction | None = None
    frame_rate: Fraction | None = None
    interlaced: bool = False
    video_index: int | None = None
    audio_index: int | None = None
    audio_bitrate: int | None = None
    has_cover: bool = False
    # The chosen audio stream's language tag, as BCP 47 (``fr``); None when untagged.
    audio_language: str | None = None
    # The picture's own length when the container gives it (MP4, MOV), in seconds.
    video_duration: float | None = None
    # The picture's bits per second as the source spent them (its stream's rate, else the
    # file's less its sound); None when unknown or not believable. The ladder spends no more.
    video_bitrate: int | None = None


def _ratio(value: object, separator: str = "/") -> Fraction | None:
    if not isinstance(value, str) or separator not in value:
        return None
    num, _, den = value.partition(separator)
    try:
        numerator, denominator = int(num), int(den)
    except ValueError:
        return None
    if numerator <= 0 or denominator <= 0:
        return None
    return Fraction(numerator, denominator)


def _number(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _integer(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None else None


def _is_cover(stream: Mapping[str, Any]) -> bool:
    disposition = stream.get("disposition") or {}
    if disposition.get("attached_pic") == 1:
        return True
    if stream.get("codec_name") not in STILL_CODECS:
        return False
    return stream.get("nb_frames") == "1" or stream.get("avg_frame_rate") in (None, "0/0")


def _rotation(stream: Mapping[str, Any]) -> int:
    for side_data in stream.get("side_data_list") or []:
        if "rotation" in side_data:
            degrees = _number(side_data["rotation"])
            if degrees is not None:
                # The display matrix angle is counter-clockwise; the old tag is clockwise.
                return round(-degrees) % 360
    tag = _number((stream.get("tags") or {}).get("rotate"))
    return round(tag) % 360 if tag is not None else 0


def _pick(streams: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for stream in streams:
        if (stream.get("disposition") or {}).get("default") == 1:
            return stream
    return streams[0] if streams else None


def _video_bitrate(
    video: Mapping[str, Any],
    audios: list[Mapping[str, Any]],
    fmt: Mapping[str, Any],
    size: int,
    duration: float,
) -> int | None:
    """The picture's bitrate: its stream's, else the file's less its sound's, else None.

    Unknown sound counts as none, which overestimates the picture: the ladder's cap is then
    looser, never tighter, than the source deserves. Values a recording cannot have (zero,
    negative, beyond any codec, above the file's own average) are not believed.
    """
    rate = _integer(video.get("bit_rate"))
    if rate is None or rate <= 0:
        total = _integer(fmt.get("bit_rate"))
        if total is None or total <= 0:
            return None
        sound = [_integer(audio.get("bit_rate")) for audio in audios]
        rate = total - sum(bits for bits in sound if bits is not None and bits > 0)
    if not MIN_VIDEO_BITRATE <= rate <= MAX_VIDEO_BITRATE:
        return None
    if size > 0 and duration > 0 and rate > size * 8 / duration * FILE_RATE_SLACK:
        return None
    return rate


def parse_probe(data: Mapping[str, Any], size: int, tags: Tags | None = None) -> MediaInfo:
    """Turn ffprobe's JSON into MediaInfo; raises InputRefused when nothing is playable."""
    streams: list[Mapping[str, Any]] = [s for s in data.get("streams") or [] if isinstance(s, dict)]
    fmt: Mapping[str, Any] = data.get("format") or {}
    covers = [s for s in streams if s.get("codec_type") == "video" and _is_cover(s)]
    videos = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not _is_cover(s) and _integer(s.get("width"))
    ]
    audios = [
        s for s in streams if s.get("codec_type") == "audio" and (_integer(s.get("channels")) or 0)
    ]
    subtitles = [s for s in streams if s.get("codec_type") == "subtitle"]
    video, audio = _pick(videos), _pick(audios)
    if video is None and audio is None:
        raise InputRefused("This file holds no sound or picture we can use.")
    durations = [_number(fmt.get("duration"))] + [_number(s.get("duration")) for s in streams]
    known = [d for d in durations if d is not None and d > 0]
    duration = _number(fmt.get("duration")) or (max(known) if known else None)
    if duration is None:
        raise InputRefused("We could not tell how long this recording lasts.")
    info = MediaInfo(
        kind="video" if video is not None else "audio",
        format_name=str(fmt.get("format_name") or "unknown"),
        duration=duration,
        size=size,
        video_streams=len(videos),
        audio_streams=len(audios),
        subtitle_streams=len(subtitles),
        streams=len(streams),
        tags=tags or Tags(),
        has_cover=bool(covers) or bool(tags and tags.cover),
    )
    if audio is not None:
        info.has_audio = True
        info.audio_index = _integer(audio.get("index"))
        info.audio_codec = audio.get("codec_name")
        info.channels = _integer(audio.get("channels"))
        info.sample_rate = _integer(audio.get("sample_rate"))
        info.audio_bitrate = _integer(audio.get("bit_rate"))
        stream_tags = audio.get("tags")
        if isinstance(stream_tags, dict):
            info.audio_language = bcp47(stream_tags.get("language"))
        if info.audio_bitrate is None and video is None and not covers:
            # Alone in its file, the audio stream is the file's bitrate (e.g. Ogg, WAV).
            info.audio_bitrate = _integer(fmt.get("bit_rate"))
    if video is not None:
        coded_w, coded_h = _integer(video.get("width")) or 0, _integer(video.get("height")) or 0
        info.video_index = _integer(video.get("index"))
        info.video_codec = video.get("codec_name")
        info.coded_width, info.coded_height = coded_w, coded_h
        info.sample_aspect_ratio = _ratio(video.get("sample_aspect_ratio"), ":")
        info.rotation = _rotation(video)
        info.width, info.height = display_size(
            coded_w, coded_h, info.sample_aspect_ratio, info.rotation
        )
        rate = _ratio(video.get("avg_frame_rate"))
        if rate is None or rate > 1000:
            rate = _ratio(video.get("r_frame_rate"))
        info.frame_rate = rate if rate is not None and rate <= 1000 else None
        info.fps = float(info.frame_rate) if info.frame_rate is not None else None
        info.interlaced = video.get("field_order") in INTERLACED_ORDERS
        video_duration = _number(video.get("duration"))
        if video_duration is not None and video_duration > 0:
            info.video_duration = video_duration
        info.video_bitrate = _video_bitrate(video, audios, fmt, size, duration)
    return info


def _gigabytes(size: int) -> str:
    return f"{size / 1024**3:g} GB"


def _hours(seconds: float) -> str:
    if seconds >= 3600:
        hours = seconds / 3600
        return f"{hours:g} hour" + ("s" if hours != 1 else "")
    return f"{seconds / 60:g} minutes"


def check_limits(info: MediaInfo, limits: Limits) -> None:
    """Refuse a source over a limit, before anything is decoded."""
    if info.size > limits.max_bytes:
        raise InputRefused(
            f"This file is larger than the {_gigabytes(limits.max_bytes)} we accept."
        )
    if info.duration > limits.max_duration:
        raise InputRefused(
            f"This recording lasts longer than the {_hours(limits.max_duration)} we accept."
        )
    if info.duration < MIN_DURATION:
        raise InputRefused("This recording is too short to play.")
    if info.streams > limits.max_streams:
        raise InputRefused(
            f"This file holds more than {limits.max_streams} streams, more than we accept."
        )
    if info.channels is not None and info.channels > limits.max_channels:
        raise InputRefused(
            f"This recording has more than {limits.max_channels} audio channels, "
            "more than we accept."
        )
    if info.kind == "video":
        coded = (info.coded_width or 0, info.coded_height or 0)
        for width, height in (coded, (info.width or 0, info.height or 0)):
            if (
                max(width, height) > limits.max_width
                or min(width, height) > limits.max_height
                or width * height > limits.max_pixels
            ):
                raise InputRefused(
                    f"This video's picture is larger than the {limits.max_width}×"
                    f"{limits.max_height} pixels we accept."
                )


def probe_file(
    path: Path, settings: TranscoderSettings, runner: Runner, logger: logging.Logger
) -> MediaInfo:
    """Probe ``path``: sniff its first bytes, run hardened ffprobe, read tags, check limits."""
    limits = settings.limits
    path = path.resolve()
    if not path.is_file():
        raise InputRefused("This file could not be found.")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise InputRefused(
            f"This file is larger than the {_gigabytes(limits.max_bytes)} we accept."
        )
    signatures.check_signature(path)
    if boxes.truncated_mp4(path, size):
        raise InputRefused("This file is incomplete: it ends before its data does.")
    budget = Budget(limits.probe_timeout, int(limits.probe_timeout), limits.memory_bytes)
    job = Job(commands.probe_argv(settings, path), budget, capture_stdout=True)
    result = runner.run(job)
    if result.returncode != 0 or result.stdout_overflow:
        logger.info(
            "ffprobe refused %s (%s): %s", path.name, result.returncode, result.stderr[-2000:]
        )
        if "moov atom not found" in result.stderr:
            raise InputRefused("This file is incomplete, as when a recording is interrupted.")
        if "not on whitelist" in result.stderr:
            raise InputRefused("This file is in a format we do not accept.")
        raise InputRefused("This file is not a recording we can read.")
    try:
        data = json.loads(result.stdout)
    except ValueError as exc:
        raise InputRefused("This file is not a recording we can read.") from exc
    if not isinstance(data, dict) or "format" not in data:
        raise InputRefused("This file is not a recording we can read.")
    tags = read_mutagen(path, logger)
    fmt_tags = (data.get("format") or {}).get("tags") or {}
    tags = merge_format_tags(tags, fmt_tags if isinstance(fmt_tags, dict) else {})
    info = parse_probe(data, size, tags)
    check_limits(info, limits)
    return info
