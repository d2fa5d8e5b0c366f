"""ffprobe and ffmpeg command lines, built by pure functions from a plan.

Every command carries the same hardening: the input is opened as ``file:`` + absolute path,
only the ``file`` protocol may be used, and only the demuxers in ``DEMUXERS`` may parse it.
So a playlist or concat list disguised as a video is refused instead of reading other files
or fetching URLs. Outputs get the same protocol allow-list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import ffmpeg

from .ladder import AudioRung, VideoRung
from .settings import TranscoderSettings

# Demuxers for recordings; deliberately absent: hls, dash, concat, image2, *_pipe, lavfi,
# tee, data, sdp, rtsp, and every other format that opens further files or URLs.
DEMUXERS = (
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "mj2",
    "matroska",
    "webm",
    "mp3",
    "flac",
    "ogg",
    "wav",
    "w64",
    "aiff",
    "caf",
    "aac",
    "ac3",
    "eac3",
    "mpeg",
    "mpegts",
    "mpegvideo",
    "avi",
    "asf",
    "flv",
)
PROTOCOLS = "file"
SEGMENT_PATTERN = "seg_%05d.m4s"
INIT_SEGMENT = "init.mp4"
MEDIA_PLAYLIST = "index.m3u8"
# The longest title and artist credit written into a downloadable file's tags.
MAX_TAG_TEXT = 300
MS_SEARCH_BELOW = 128_000


def file_url(path: Path) -> str:
    """``file:`` URL of an absolute path, so a name like ``http:x`` or ``-i`` stays a file name."""
    return "file:" + str(path.resolve())


def input_options() -> dict[str, str]:
    """Options placed before every ``-i``: the protocol and demuxer allow-lists."""
    return {"protocol_whitelist": PROTOCOLS, "format_whitelist": ",".join(DEMUXERS)}


def global_args() -> list[str]:
    """Options of every ffmpeg run: quiet, no stdin, machine-readable progress on stdout.

    Log level stays at info: the ebur128 loudness summary is printed at that level.
    """
    return ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "info", "-progress", "pipe:1"]


def probe_argv(settings: TranscoderSettings, path: Path) -> list[str]:
    """ffprobe command printing format and streams of ``path`` as JSON, hardened."""
    hardening = [part for key, value in input_options().items() for part in (f"-{key}", value)]
    return [
        settings.ffprobe,
        "-hide_banner",
        "-loglevel",
        "error",
        *hardening,
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        "-show_error",
        file_url(path),
    ]


@dataclass(frozen=True)
class FrameGrab:
    """Raw RGB frames taken from the decoded video at ``rate`` frames per second."""

    path: Path
    width: int
    height: int
    rate: Fraction


def _common_output(settings: TranscoderSettings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "map_metadata": -1,
        "map_chapters": -1,
        "max_muxing_queue_size": 1024,
        "protocol_whitelist": PROTOCOLS,
    }
    if settings.threads > 0:
        options["threads"] = settings.threads
    return options


def hls_options(settings: TranscoderSettings, folder: Path) -> dict[str, Any]:
    """Options of one fMP4 HLS VOD output whose playlist, init and segments go in ``folder``."""
    return {
        "f": "hls",
        "hls_time": settings.segment_seconds,
        # EVENT: the muxer lists each segment in the playlist as soon as it is closed, which
        # is what lets a transcode be played while it runs (see ``live``); the transcoder
        # rewrites every playlist as VOD once ffmpeg is done.
        "hls_playlist_type": "event",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": INIT_SEGMENT,
        "hls_segment_filename": file_url(folder / SEGMENT_PATTERN),
        "start_number": 1,
    }


def keyframe_expression(settings: TranscoderSettings) -> str:
    """``-force_key_frames`` value: a keyframe every ``keyframe_seconds`` of presentation time.

    Forcing by time, not frame count, puts them at the same instants in every rung.
    """
    return f"expr:gte(t,n_forced*{settings.keyframe_seconds})"


def x264_options(settings: TranscoderSettings, rung: VideoRung) -> dict[str, Any]:
    """Encoder options of one rung: High profile 4:2:0, capped VBR, keyframes only when forced."""
    frames_between_keys = int(rung.fps * settings.keyframe_seconds + 1)
    return {
        "c:v": "libx264",
        "preset": settings.x264_preset,
        "profile:v": "high",
        "pix_fmt": "yuv420p",
        "crf": rung.crf,
        "maxrate": rung.maxrate,
        "bufsize": rung.bufsize,
        "force_key_frames": keyframe_expression(settings),
        "forced-idr": 1,
        "sc_threshold": 0,
        # Twice the forced interval, so x264 never places a keyframe of its own between them.
        "g": 2 * frames_between_keys,
        "x264-params": "scenecut=0:open-gop=0",
    }


def aac_options(settings: TranscoderSettings, bitrate: int) -> dict[str, Any]:
    """Encoder options of an AAC-LC stereo 48 kHz rendition."""
    options: dict[str, Any] = {"c:a": "aac", "aac_coder": settings.aac_coder, "b:a": bitrate}
    if bitrate >= MS_SEARCH_BELOW:
        # The mid/side search is a fifth of the encoder's time and earns little when bits are
        # plentiful; the low rungs, where it pays, keep it.
        options["aac_ms"] = 0
    return {**options, "ar": 48000, "ac": 2}


def _fraction(value: Fraction) -> str:
    return f"{value.numerator}/{value.denominator}"


def _grab(stream: Any, grab: FrameGrab, settings: TranscoderSettings) -> Any:
    frames = (
        stream.filter("fps", fps=_fraction(grab.rate))
        .filter("scale", grab.width, grab.height)
        .filter("setsar", "1")
        .filter("format", "rgb24")
    )
    options = {
        **_common_output(settings),
        "f": "rawvideo",
        "c:v": "rawvideo",
        "pix_fmt": "rgb24",
        "fps_mode": "passthrough",
        "an": None,
    }
    return ffmpeg.output(frames, file_url(grab.path), **options)


AAC_FRAME = 1024
AAC_RATE = 48000


def aac_end(duration: float) -> float | None:
    """Where to stop the audio of a picture lasting ``duration`` s so that it ends with it.

    The AAC encoder adds a frame of priming samples in front and pads the last frame; in fMP4
    segments (no edit list) both count, so the sound ran up to two frames (43 ms) past the
    picture. Stopping the input a whole number of frames short of the last frame boundary
    before ``duration`` ends the encoded audio on that boundary, at most one frame early.
    """
    frames = math.floor(duration * AAC_RATE / AAC_FRAME) - 1
    return frames * AAC_FRAME / AAC_RATE if frames > 0 else None


def _stereo_chain(stream: Any) -> Any:
    return stream.filter(
        "aformat", sample_fmts="fltp", sample_rates=48000, channel_layouts="stereo"
    )


def video_argv(
    settings: TranscoderSettings,
    source: Path,
    out_dir: Path,
    *,
    video_index: int,
    audio_index: int | None,
    rungs: Sequence[VideoRung],
    grabs: Sequence[FrameGrab] = (),
    audio_folder: str = "audio",
    deinterlace: bool = False,
    audio_end: float | None = None,
) -> list[str]:
    """One ffmpeg process for a whole video ladder: one decode, a ``split`` per rung.

    Each rung is scaled to its size in square pixels and written as an fMP4 HLS rendition in
    ``out_dir/<rung name>/``; the shared AAC rendition goes to ``out_dir/<audio_folder>/``
    (with an EBU R128 measurement on the way), stopped at ``audio_end`` s when given
    (``aac_end``), and each ``FrameGrab`` to its raw file.
    """
    source_input = ffmpeg.input(file_url(source), **input_options())
    decoded = source_input[str(video_index)]
    if deinterlace:
        # Only frames flagged interlaced are touched: mixed sources keep their progressive parts.
        decoded = decoded.filter("yadif", mode="send_frame", deint="interlaced")
    decoded = decoded.filter("fps", fps=_fraction(rungs[0].fps))
    branches = decoded.split()
    outputs = []
    for number, rung in enumerate(rungs):
        scaled = (
            branches[number]
            .filter("scale", rung.width, rung.height)
            .filter("setsar", "1")
            .filter("format", "yuv420p")
        )
        options = {
            **_common_output(settings),
            **x264_options(settings, rung),
            "an": None,
            "sn": None,
            "dn": None,
            **hls_options(settings, out_dir / rung.name),
        }
        playlist = file_url(out_dir / rung.name / MEDIA_PLAYLIST)
        outputs.append(ffmpeg.output(scaled, playlist, **options))
    for number, grab in enumerate(grabs, start=len(rungs)):
        outputs.append(_grab(branches[number], grab, settings))
    if audio_index is not None:
        outputs.append(
            _shared_audio(settings, source_input, audio_index, out_dir / audio_folder, audio_end)
        )
    return _compile(settings, outputs)


def _shared_audio(
    settings: TranscoderSettings,
    source_input: Any,
    audio_index: int,
    folder: Path,
    audio_end: float | None,
) -> Any:
    """The AAC rendition of a video, measured by ebur128 on the way, stopped at ``audio_end``."""
    audio = source_input[str(audio_index)].filter("aresample", AAC_RATE)
    if audio_end is not None:
        audio = audio.filter("atrim", end=f"{audio_end:.6f}")
    audio = audio.filter("ebur128", framelog="verbose")
    options = {
        **_common_output(settings),
        **aac_options(settings, settings.video_audio_bitrate),
        "vn": None,
        "sn": None,
        "dn": None,
        **hls_options(settings, folder),
    }
    return ffmpeg.output(_stereo_chain(audio), file_url(folder / MEDIA_PLAYLIST), **options)


# How far before a chunk's first frame its decode starts keeping frames: the frame rate
# filter then sees the source frames one pass would have seen before that instant, so it picks
# the same one for the chunk's first frame even from a source of irregular frame times.
CHUNK_LEAD_IN = Fraction(1)
# Slack on the global key frame times of a chunk: ``t + start`` is computed in floating point,
# and a frame lying exactly on a key frame time must not fall a hair short of it. Frames of
# usual rates (N/1001 included) never lie closer than 30 us to one without lying on it.
KEY_FRAME_SLACK = Fraction(1, 100_000)


def _seconds(value: Fraction) -> str:
    """``value`` as ffmpeg parses a time: decimal seconds, rounded down to the microsecond."""
    micros = math.floor(value * 1_000_000)
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


@dataclass(frozen=True)
class ChunkSpan:
    """Where one chunk of a segmented transcode lies, as its ffmpeg needs it.

    ``start`` is its first output frame's time and ``frames`` how many it holds (None: to the
    end of the source); ``first_key`` is the number of the key frame interval it starts on and
    ``first_segment`` its first segment's global number; ``segment_time`` is the ``hls_time``
    that makes the muxer cut where one pass cuts (see ``segmented.segment_time``).
    """

    start: Fraction
    frames: int | None
    first_key: int
    first_segment: int
    segment_time: Fraction


def chunk_keyframe_expression(settings: TranscoderSettings, span: ChunkSpan) -> str:
    """``-force_key_frames`` of a chunk: the same instants as one pass, in global time."""
    start = _seconds(span.start)
    slack = f"{float(KEY_FRAME_SLACK):.6f}"
    return f"expr:gte(t+{start},({span.first_key}+n_forced)*{settings.keyframe_seconds}-{slack})"


def chunk_argv(
    settings: TranscoderSettings,
    source: Path,
    out_dir: Path,
    *,
    video_index: int,
    rungs: Sequence[VideoRung],
    span: ChunkSpan,
    deinterlace: bool = False,
) -> list[str]:
    """One ffmpeg for one chunk of a video ladder: every rung of its time range, no sound.

    The source is decoded from ``CHUNK_LEAD_IN`` before ``span.start`` (input seeking), its
    frames timed from ``span.start`` again, and the frame rate filter fills the output grid
    from there; ``-output_ts_offset`` puts the packets back at their global times, so each
    fragment's decode time is the one of one pass (``frag_discont`` keeps it; without it every
    chunk would start at zero), and ``avoid_negative_ts`` left off keeps the first chunk's
    B-frame delay where one pass has it. Segments are numbered from ``span.first_segment``.
    """
    lead_in = min(CHUNK_LEAD_IN, span.start)
    options: dict[str, Any] = dict(input_options())
    if span.start > 0:
        options["ss"] = _seconds(span.start - lead_in)
    source_input = ffmpeg.input(file_url(source), **options)
    decoded = source_input[str(video_index)]
    if deinterlace:
        decoded = decoded.filter("yadif", mode="send_frame", deint="interlaced")
    if span.start > 0:
        decoded = decoded.filter("setpts", f"PTS-{_seconds(lead_in)}/TB")
        decoded = decoded.filter("fps", fps=_fraction(rungs[0].fps), start_time=0)
    else:
        decoded = decoded.filter("fps", fps=_fraction(rungs[0].fps))
    branches = decoded.split()
    outputs = []
    for number, rung in enumerate(rungs):
        scaled = (
            branches[number]
            .filter("scale", rung.width, rung.height)
            .filter("setsar", "1")
            .filter("format", "yuv420p")
        )
        folder = out_dir / rung.name
        output: dict[str, Any] = {
            **_common_output(settings),
            **x264_options(settings, rung),
            "force_key_frames": chunk_keyframe_expression(settings, span),
            "an": None,
            "sn": None,
            "dn": None,
            **hls_options(settings, folder),
            "hls_time": _seconds(span.segment_time),
            "start_number": span.first_segment,
            "hls_segment_options": "movflags=+frag_discont",
            "output_ts_offset": _seconds(span.start),
            "avoid_negative_ts": "disabled",
        }
        if span.frames is not None:
            output["frames:v"] = span.frames
        outputs.append(ffmpeg.output(scaled, file_url(folder / MEDIA_PLAYLIST), **output))
    return _compile(settings, outputs)


def shared_argv(
    settings: TranscoderSettings,
    source: Path,
    out_dir: Path,
    *,
    video_index: int,
    audio_index: int | None,
    grabs: Sequence[FrameGrab],
    audio_folder: str = "audio",
    deinterlace: bool = False,
    audio_end: float | None = None,
) -> list[str]:
    """What a segmented transcode does once for the whole video: the AAC rendition (with its
    loudness measured) and the frame grabs.

    Only the source's key frames are decoded (``skip_frame``): the frame rate filter of each
    grab repeats the latest one, so a poster or a thumbnail costs no full decode of the film.
    """
    source_input = ffmpeg.input(file_url(source), skip_frame="nokey", **input_options())
    outputs = []
    if grabs:
        decoded = source_input[str(video_index)]
        if deinterlace:
            decoded = decoded.filter("yadif", mode="send_frame", deint="interlaced")
        branches = decoded.split() if len(grabs) > 1 else None
        for number, grab in enumerate(grabs):
            stream = branches[number] if branches is not None else decoded
            outputs.append(_grab(stream, grab, settings))
    if audio_index is not None:
        outputs.append(
            _shared_audio(settings, source_input, audio_index, out_dir / audio_folder, audio_end)
        )
    return _compile(settings, outputs)


def audio_argv(
    settings: TranscoderSettings,
    source: Path,
    out_dir: Path,
    *,
    audio_index: int,
    rung: AudioRung,
    loudness: bool = False,
    pcm: Path | None = None,
) -> list[str]:
    """One ffmpeg process for one AAC rung of an audio production, in ``out_dir/<rung name>/``.

    With ``loudness`` the stream passes through ebur128; with ``pcm`` a mono 48 kHz s16le copy
    is written there for the waveform, both without a second decode.
    """
    source_input = ffmpeg.input(file_url(source), **input_options())
    audio = source_input[str(audio_index)].filter("aresample", 48000)
    if loudness:
        audio = audio.filter("ebur128", framelog="verbose")
    outputs = []
    if pcm is not None:
        split = audio.asplit()
        main, copy = split[0], split[1]
        mono = copy.filter("aformat", sample_fmts="s16", sample_rates=48000, channel_layouts="mono")
        options = {**_common_output(settings), "f": "s16le", "c:a": "pcm_s16le", "vn": None}
        outputs.append(ffmpeg.output(mono, file_url(pcm), **options))
    else:
        main = audio
    folder = out_dir / rung.name
    options = {
        **_common_output(settings),
        **aac_options(settings, rung.bitrate),
        "vn": None,
        "sn": None,
        "dn": None,
        **hls_options(settings, folder),
    }
    outputs.insert(
        0, ffmpeg.output(_stereo_chain(main), file_url(folder / MEDIA_PLAYLIST), **options)
    )
    return _compile(settings, outputs)


def download_argv(
    settings: TranscoderSettings,
    source: Path,
    target: Path,
    *,
    title: str | None = None,
    artists: Sequence[str] = (),
) -> list[str]:
    """ffmpeg command turning one AAC rendition into a downloadable, faststart ``.m4a``.

    ``source`` is the rendition's init segment followed by its media segments (a fragmented
    MP4). The AAC frames are copied, not re-encoded, so the file costs no decode or encode and
    sounds exactly like the rung it comes from. The index goes first (``faststart``) so that
    podcast apps can start playing while downloading. Source tags are dropped; only ``title``
    and ``artists`` are written.
    """
    hardening = [part for key, value in input_options().items() for part in (f"-{key}", value)]
    tags: list[str] = []
    if title:
        tags += ["-metadata", f"title={title[:MAX_TAG_TEXT]}"]
    if artists:
        tags += ["-metadata", f"artist={', '.join(artists)[:MAX_TAG_TEXT]}"]
    threads = ["-threads", str(settings.threads)] if settings.threads > 0 else []
    return [
        settings.ffmpeg,
        *global_args(),
        *hardening,
        "-i",
        file_url(source),
        "-map",
        "0:a:0",
        "-c:a",
        "copy",
        "-vn",
        "-sn",
        "-dn",
        "-map_metadata",
        "-1",
        "-map_chapters",
        "-1",
        *tags,
        *threads,
        "-movflags",
        "+faststart",
        "-protocol_whitelist",
        PROTOCOLS,
        # The iPod flavour of MP4 is what ".m4a" means to players: brand "M4A ".
        "-f",
        "ipod",
        "-y",
        file_url(target),
    ]


def _compile(settings: TranscoderSettings, outputs: list[Any]) -> list[str]:
    merged = ffmpeg.merge_outputs(*outputs).global_args(*global_args())
    if settings.threads > 0:
        merged = merged.global_args("-filter_complex_threads", str(settings.threads))
    argv: list[str] = merged.overwrite_output().compile(cmd=settings.ffmpeg)
    return [str(part) for part in argv]
