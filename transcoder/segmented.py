"""Segmented transcoding: a long video cut into chunks that separate workers encode.

A chunk is a whole number of segments of the video ladder (``TranscoderSettings.
chunk_seconds``); each is encoded by its own ffmpeg (``Transcoder.encode_chunk``), every rung
of its time range, with the time stamps, key frames and segment numbers one pass would give
them, so the segments of all chunks, after one init segment per rung, play as one stream. The
sound, loudness, poster and storyboard are made once for the whole file
(``Transcoder.encode_shared``), and the playlists are written from the facts of every segment
(``Transcoder.assemble``): the segments themselves may be anywhere by then.

Where chunks lie is planned in ``chunks``.
"""

from __future__ import annotations

import hashlib
import math
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import boxes, commands, playlist
from .artwork import poster_from_frames
from .chunks import Chunk, picture_duration, plan_chunks, span_of
from .commands import FrameGrab
from .errors import TranscodeFailed
from .iframes import IFRAME_PLAYLIST, IFrame, render
from .ladder import AUDIO_FOLDER, VideoRung, output_fps, video_ladder
from .language import bcp47
from .live import Planned, SegmentFacts, Watcher, facts_of, measure, media_playlist
from .loudness import integrated_loudness
from .playlist import MASTER, IFrameStream, Measure, Rendition
from .probe import MediaInfo
from .runner import Budget, Job
from .settings import TranscoderSettings
from .storyboard import build_storyboard, plan_storyboard

if TYPE_CHECKING:
    from .pipeline import Transcoder, TranscodeResult

SegmentsCallback = Callable[[dict[str, list[SegmentFacts]]], None]
"""Called with the segments that became final since the last call, by rendition folder."""

_SEGMENT_NAME = re.compile(r"seg_(\d+)(-end)?\.m4s")


# --- outputs ------------------------------------------------------------------------------------


@dataclass
class RenditionPart:
    """The segments one worker made of one rendition, and what its init segment says.

    ``init_sha256`` lets the assembler check that every chunk made the same init segment.
    """

    codec: str
    timescale: int
    segments: list[SegmentFacts]
    init_sha256: str
    width: int | None = None
    height: int | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON object, for a database row."""
        return {
            "codec": self.codec,
            "timescale": self.timescale,
            "init_sha256": self.init_sha256,
            "width": self.width,
            "height": self.height,
            "segments": [segment.to_json() for segment in self.segments],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> RenditionPart:
        """The inverse of ``to_json``."""
        width, height = value.get("width"), value.get("height")
        return cls(
            codec=str(value["codec"]),
            timescale=int(value["timescale"]),
            segments=[SegmentFacts.from_json(segment) for segment in value["segments"]],
            init_sha256=str(value["init_sha256"]),
            width=None if width is None else int(width),
            height=None if height is None else int(height),
        )


@dataclass
class ChunkOutput:
    """What ``encode_chunk`` made: every video rung's part of the chunk, by folder name."""

    index: int
    rungs: dict[str, RenditionPart]

    def to_json(self) -> dict[str, Any]:
        """A JSON object, for a database row."""
        return {
            "index": self.index,
            "rungs": {name: part.to_json() for name, part in self.rungs.items()},
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> ChunkOutput:
        """The inverse of ``to_json``."""
        rungs = value["rungs"]
        return cls(
            int(value["index"]), {str(k): RenditionPart.from_json(v) for k, v in rungs.items()}
        )


@dataclass
class SharedOutput:
    """What ``encode_shared`` made for the whole file; names relative to its folder."""

    audio: RenditionPart | None
    loudness_lufs: float | None = None
    poster: str | None = None
    storyboard_image: str | None = None
    storyboard_vtt: str | None = None
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A JSON object, for a database row."""
        return {
            "audio": self.audio.to_json() if self.audio else None,
            "loudness_lufs": self.loudness_lufs,
            "poster": self.poster,
            "storyboard_image": self.storyboard_image,
            "storyboard_vtt": self.storyboard_vtt,
            "files": list(self.files),
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> SharedOutput:
        """The inverse of ``to_json``."""
        audio, loudness = value.get("audio"), value.get("loudness_lufs")
        return cls(
            audio=RenditionPart.from_json(audio) if audio else None,
            loudness_lufs=None if loudness is None else float(loudness),
            poster=value.get("poster"),
            storyboard_image=value.get("storyboard_image"),
            storyboard_vtt=value.get("storyboard_vtt"),
            files=[str(name) for name in value.get("files", [])],
        )


class Reporter:
    """Hands the owner each segment once it is final, while ffmpeg writes them, and after.

    Segments are reported only once every rendition has its init segment, so that whoever
    copies them away can copy the init segments first. The last segment of a rendition may be
    joined with a short tail at the end (``playlist.finish_media_playlist``): the joined one
    comes under a new name in the last report.
    """

    def __init__(
        self, out_dir: Path, names: Sequence[str], video: bool, callback: SegmentsCallback | None
    ) -> None:
        kind = "video" if video else "audio"
        planned = [Planned(name, kind, 0, 0) for name in names]
        self.watcher = Watcher(out_dir, planned)
        self.callback = callback
        self.sent: dict[str, set[str]] = {name: set() for name in names}

    def poll(self) -> None:
        """Look for finished segments and report the new ones."""
        if self.callback is None:
            return
        self.watcher.poll()
        watched = self.watcher.watched
        if any(w.init is None for w in watched.values()):
            return
        self._send({name: w.segments for name, w in watched.items()})

    def finish(self, parts: Mapping[str, RenditionPart]) -> None:
        """Report what the final playlists list and was not reported yet."""
        if self.callback is not None:
            self._send({name: part.segments for name, part in parts.items()})

    def _send(self, segments: Mapping[str, Sequence[SegmentFacts]]) -> None:
        assert self.callback is not None
        new = {
            name: [s for s in listed if s.uri not in self.sent[name]]
            for name, listed in segments.items()
        }
        if not any(new.values()):
            return
        for name, listed in new.items():
            self.sent[name].update(s.uri for s in listed)
        self.callback(new)


def read_part(folder: Path, *, last: bool, video: bool) -> RenditionPart:
    """The rendition ffmpeg wrote in ``folder``, checked (see ``finish_media_playlist``); a
    short tail is joined to the segment before it when this part ends the rendition."""
    media, _ = playlist.finish_media_playlist(
        folder / commands.MEDIA_PLAYLIST, min_tail=1.0 if last else 0.0
    )
    assert media.map_uri is not None
    init = folder / media.map_uri
    entry = boxes.sample_entry(init)
    track = boxes.track(init)
    if entry is None or track is None:
        raise TranscodeFailed("The converted stream is incomplete.")
    segments = [
        facts_of(folder, segment.uri, segment.duration, track if video else None)
        for segment in media.segments
    ]
    return RenditionPart(
        codec=entry.codec,
        timescale=track.timescale,
        segments=segments,
        init_sha256=hashlib.sha256(init.read_bytes()).hexdigest(),
        width=entry.width,
        height=entry.height,
    )


def segment_number(uri: str) -> int:
    """The global number in a segment's name (``seg_00012.m4s``, ``seg_00012-end.m4s``)."""
    matched = _SEGMENT_NAME.fullmatch(uri)
    if matched is None:
        raise TranscodeFailed("A chunk of the video is not one this transcoder wrote.")
    return int(matched.group(1))


# --- assembly -----------------------------------------------------------------------------------


def check_chunks(
    chunks: Sequence[ChunkOutput], plan: Sequence[Chunk], rungs: Sequence[VideoRung]
) -> None:
    """Refuse chunks that do not make one whole video: missing, out of order, from another
    ladder or other settings, or whose segments do not follow on."""
    if [chunk.index for chunk in chunks] != [chunk.index for chunk in plan]:
        raise TranscodeFailed("Parts of the video are missing or out of order.")
    names = [rung.name for rung in rungs]
    for output in chunks:
        if set(output.rungs) != set(names):  # a JSON column may keep keys in any order
            raise TranscodeFailed("Parts of the video were made for another ladder.")
    for name in names:
        inits = {output.rungs[name].init_sha256 for output in chunks}
        if len(inits) != 1:
            raise TranscodeFailed("Parts of the video were made with other settings.")
        expected = plan[0].first_segment
        for output, chunk in zip(chunks, plan, strict=True):
            segments = output.rungs[name].segments
            numbers = [segment_number(segment.uri) for segment in segments]
            if not numbers or numbers[0] != chunk.first_segment or numbers[0] != expected:
                raise TranscodeFailed("Parts of the video are missing or out of order.")
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                raise TranscodeFailed("Parts of the video are missing or out of order.")
            expected = numbers[-1] + 1


def iframe_entries(segments: Sequence[SegmentFacts], timescale: int) -> list[IFrame]:
    """The I-frame playlist entries of a rendition, from its segments' key frames, timed from
    the first one as ``iframes.collect`` times them from the files."""
    found: list[IFrame] = []
    origin: int | None = None
    for segment in segments:
        for offset, length, decode_time in segment.key_frames:
            origin = decode_time if origin is None else origin
            found.append(IFrame(segment.uri, offset, length, (decode_time - origin) / timescale))
    total = sum(segment.duration for segment in segments)
    ends = [frame.start for frame in found[1:]] + [total]
    return [
        IFrame(frame.uri, frame.offset, frame.length, frame.start, end - frame.start)
        for frame, end in zip(found, ends, strict=True)
        if end > frame.start
    ]


def write_iframes(folder: Path, segments: Sequence[SegmentFacts], timescale: int) -> Measure | None:
    """Write ``IFRAME_PLAYLIST`` in ``folder``; its peak and average bit rates, None if empty."""
    frames = iframe_entries(segments, timescale)
    if not frames:
        return None
    (folder / IFRAME_PLAYLIST).write_text(render(frames, commands.INIT_SEGMENT), encoding="utf-8")
    peak = max(frame.length * 8 / frame.duration for frame in frames)
    total = sum(frame.duration for frame in frames)
    average = sum(frame.length for frame in frames) * 8 / total
    return Measure(math.ceil(peak), math.ceil(average), total)


def write_media(folder: Path, segments: Sequence[SegmentFacts], segment_seconds: int) -> None:
    """Write the VOD media playlist of ``segments`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    text = media_playlist(
        segments, map_uri=commands.INIT_SEGMENT, ended=True, target_duration=segment_seconds
    )
    (folder / commands.MEDIA_PLAYLIST).write_text(text, encoding="utf-8")


def video_rendition(
    rung: VideoRung,
    codec: str,
    size: tuple[int | None, int | None],
    measured: Measure,
    audio: Rendition | None,
    iframes: Measure | None,
) -> Rendition:
    """The master's entry of a video rung: its ``codec`` and ``size`` as encoded (the rung's own
    size where unknown), its segments ``measured``, and its I-frame playlist's. One pass and
    chunks alike announce their rungs through here."""
    width, height = size
    return Rendition(
        name=rung.name,
        kind="video",
        width=width or rung.width,
        height=height or rung.height,
        fps=round(float(rung.fps), 3),
        bitrate=rung.maxrate,
        codecs=codec + (f",{audio.codecs}" if audio else ""),
        # A player fetches the audio rendition alongside, so the variant costs both.
        bandwidth=measured.peak + (audio.bandwidth if audio else 0),
        average_bandwidth=measured.average + (audio.average_bandwidth if audio else 0),
        playlist=f"{rung.name}/{commands.MEDIA_PLAYLIST}",
        iframes=IFrameStream(
            playlist=f"{rung.name}/{IFRAME_PLAYLIST}",
            codecs=codec,
            bandwidth=iframes.peak,
            average_bandwidth=iframes.average,
        )
        if iframes
        else None,
    )


def audio_rendition(folder: str, codec: str, bitrate: int, measured: Measure) -> Rendition:
    """The master's entry of an audio rendition in ``folder``, its segments ``measured``."""
    return Rendition(
        name=folder,
        kind="audio",
        width=None,
        height=None,
        fps=None,
        bitrate=bitrate,
        codecs=codec,
        bandwidth=measured.peak,
        average_bandwidth=measured.average,
        playlist=f"{folder}/{commands.MEDIA_PLAYLIST}",
    )


def ladder_of(info: MediaInfo, settings: TranscoderSettings) -> list[VideoRung]:
    """The video rungs of ``info``, as one pass makes them."""
    assert info.width and info.height
    fps = output_fps(info.frame_rate, settings.max_fps)
    return video_ladder(
        info.width, info.height, fps, settings.video_steps, info.video_bitrate, info.duration
    )


# --- the work -----------------------------------------------------------------------------------


def encode_chunk(
    transcoder: Transcoder,
    source: Path,
    info: MediaInfo,
    chunk: Chunk,
    out_dir: Path,
    on_segments: SegmentsCallback | None = None,
) -> ChunkOutput:
    """See ``Transcoder.encode_chunk``."""
    # The pipeline imports this module; its helpers are looked up when the work starts.
    from .pipeline import ENCODE_SHARE, _failure, _Progress

    settings = transcoder.settings
    if info.kind != "video" or info.video_index is None:
        raise TranscodeFailed("Only a video is transcoded in chunks.")
    plan = plan_chunks(info, settings)
    if chunk not in plan:
        raise TranscodeFailed("This part of the video is not one of its planned chunks.")
    last = chunk == plan[-1]
    source = Path(source).resolve()
    out_dir = Path(out_dir).resolve()
    rungs = ladder_of(info, settings)
    fps = rungs[0].fps
    for rung in rungs:
        (out_dir / rung.name).mkdir(parents=True, exist_ok=True)
    argv = commands.chunk_argv(
        settings,
        source,
        out_dir,
        video_index=info.video_index,
        rungs=rungs,
        span=span_of(chunk, fps, settings),
        deinterlace=info.interlaced,
    )
    end = float(chunk.start + chunk.frames / fps) if chunk.frames is not None else info.duration
    length = max(0.1, end - float(chunk.start))
    budget = Budget.for_duration(settings.limits, length)
    progress = _Progress(transcoder.progress)
    progress(0.0)
    reporter = Reporter(out_dir, [rung.name for rung in rungs], True, on_segments)

    def tick(fraction: float) -> None:
        progress(fraction * ENCODE_SHARE)
        reporter.poll()

    completed = transcoder.runner.run(Job(argv, budget, duration=length), tick)
    _failure(completed, "video", transcoder.logger, argv)
    reporter.poll()
    parts = {rung.name: read_part(out_dir / rung.name, last=last, video=True) for rung in rungs}
    for name, part in parts.items():
        numbers = [segment_number(segment.uri) for segment in part.segments]
        if not numbers or numbers[0] != chunk.first_segment:
            transcoder.logger.warning(
                "chunk %s of %s: %s has %s", chunk.index, source, name, numbers
            )
            raise TranscodeFailed("The converted stream is incomplete.")
    reporter.finish(parts)
    progress(1.0)
    return ChunkOutput(chunk.index, parts)


def encode_shared(
    transcoder: Transcoder,
    source: Path,
    info: MediaInfo,
    out_dir: Path,
    on_segments: SegmentsCallback | None = None,
) -> SharedOutput:
    """See ``Transcoder.encode_shared``."""
    from .pipeline import (
        ENCODE_SHARE,
        POSTER,
        STORYBOARD_IMAGE,
        STORYBOARD_VTT,
        _audio_end,
        _failure,
        _fit,
        _Progress,
    )

    settings = transcoder.settings
    if info.kind != "video" or info.video_index is None or not info.width or not info.height:
        raise TranscodeFailed("Only a video is transcoded in chunks.")
    source = Path(source).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    rungs = ladder_of(info, settings)
    progress = _Progress(transcoder.progress)
    progress(0.0)
    with tempfile.TemporaryDirectory(prefix="transcode-", dir=settings.tmp_dir) as tmp:
        work = Path(tmp)
        poster_w, poster_h = _fit(rungs[0].width, rungs[0].height, settings.poster_max_side)
        duration_ms = max(1, round(info.duration * 1000))
        poster = FrameGrab(
            work / "poster.rgb",
            poster_w,
            poster_h,
            Fraction(settings.poster_candidates * 1000, duration_ms),
        )
        board = plan_storyboard(
            info.duration,
            info.width,
            info.height,
            thumb_width=settings.storyboard_thumb_width,
            max_thumbs=settings.storyboard_max_thumbs,
            min_interval=settings.storyboard_min_interval,
        )
        thumbs = FrameGrab(work / "storyboard.rgb", board.width, board.height, board.rate)
        sound = info.audio_index is not None
        if sound:
            (out_dir / AUDIO_FOLDER).mkdir(exist_ok=True)
        argv = commands.shared_argv(
            settings,
            source,
            out_dir,
            video_index=info.video_index,
            audio_index=info.audio_index,
            grabs=[poster, thumbs],
            audio_folder=AUDIO_FOLDER,
            deinterlace=info.interlaced,
            audio_end=_audio_end(info),
        )
        budget = Budget.for_duration(settings.limits, info.duration)
        reporter = Reporter(out_dir, [AUDIO_FOLDER] if sound else [], False, on_segments)

        def tick(fraction: float) -> None:
            progress(fraction * ENCODE_SHARE)
            reporter.poll()

        completed = transcoder.runner.run(Job(argv, budget, duration=info.duration), tick)
        _failure(completed, "video", transcoder.logger, argv)
        result = SharedOutput(audio=None)
        if sound:
            reporter.poll()
            result.audio = read_part(out_dir / AUDIO_FOLDER, last=True, video=False)
            result.loudness_lufs = integrated_loudness(completed.stderr)
            reporter.finish({AUDIO_FOLDER: result.audio})
            folder = out_dir / AUDIO_FOLDER
            result.files += [f"{AUDIO_FOLDER}/{commands.INIT_SEGMENT}"]
            result.files += [f"{AUDIO_FOLDER}/{s.uri}" for s in result.audio.segments]
            (folder / commands.MEDIA_PLAYLIST).unlink()  # assemble writes the one published
        picture = picture_duration(info) or info.duration
        # The frame rate filter stops at the last key frame: the grabs after it repeat it.
        _pad_frames(thumbs, math.ceil(Fraction(picture) / board.interval - Fraction(1, 10**9)))
        if poster_from_frames(poster.path, poster.width, poster.height, out_dir / POSTER):
            result.poster = POSTER
        if build_storyboard(
            thumbs.path,
            board,
            duration=picture,
            columns=settings.storyboard_columns,
            max_thumbs=settings.storyboard_max_thumbs,
            sprite_path=out_dir / STORYBOARD_IMAGE,
            vtt_path=out_dir / STORYBOARD_VTT,
        ):
            result.storyboard_image, result.storyboard_vtt = STORYBOARD_IMAGE, STORYBOARD_VTT
        result.files += [
            name for name in (result.poster, result.storyboard_image, result.storyboard_vtt) if name
        ]
    progress(1.0)
    return result


def _pad_frames(grab: FrameGrab, count: int) -> None:
    """Repeat the last raw frame of ``grab`` until it holds ``count`` frames."""
    size = grab.width * grab.height * 3
    have = grab.path.stat().st_size // size if grab.path.is_file() else 0
    if have == 0 or have >= count:
        return
    with grab.path.open("r+b") as raw:
        raw.seek((have - 1) * size)
        last = raw.read(size)
        raw.seek(have * size)
        raw.truncate()
        for _ in range(count - have):
            raw.write(last)


def assemble(
    transcoder: Transcoder,
    info: MediaInfo,
    chunks: Sequence[ChunkOutput],
    shared: SharedOutput,
    out_dir: Path,
    language: str | None = None,
) -> TranscodeResult:
    """See ``Transcoder.assemble``."""
    from .pipeline import TranscodeResult

    settings = transcoder.settings
    if info.kind != "video" or not info.width or not info.height:
        raise TranscodeFailed("Only a video is transcoded in chunks.")
    rungs = ladder_of(info, settings)
    check_chunks(chunks, plan_chunks(info, settings), rungs)
    out_dir = Path(out_dir).resolve()
    files: list[str] = []
    audio = None
    durations = []
    sound = shared.audio
    if sound is not None:
        write_media(out_dir / AUDIO_FOLDER, sound.segments, settings.segment_seconds)
        audio = audio_rendition(
            AUDIO_FOLDER, sound.codec, settings.video_audio_bitrate, measure(sound.segments)
        )
        durations.append(sum(s.duration for s in sound.segments))
        files.append(audio.playlist)
    renditions = []
    for rung in rungs:
        parts = [output.rungs[rung.name] for output in chunks]
        whole = RenditionPart(
            codec=parts[0].codec,
            timescale=parts[0].timescale,
            segments=[segment for part in parts for segment in part.segments],
            init_sha256=parts[0].init_sha256,
            width=parts[0].width,
            height=parts[0].height,
        )
        folder = out_dir / rung.name
        write_media(folder, whole.segments, settings.segment_seconds)
        iframes = write_iframes(folder, whole.segments, whole.timescale)
        rendition = video_rendition(
            rung, whole.codec, (whole.width, whole.height), measure(whole.segments), audio, iframes
        )
        renditions.append(rendition)
        durations.append(sum(s.duration for s in whole.segments))
        files.append(rendition.playlist)
        if rendition.iframes is not None:
            files.append(rendition.iframes.playlist)
    spoken = info.audio_language or bcp47(language)
    (out_dir / MASTER).write_text(
        playlist.master_playlist(renditions, audio, spoken), encoding="utf-8"
    )
    files.append(MASTER)
    return TranscodeResult(
        kind="video",
        duration=max(durations),
        master=MASTER,
        renditions=renditions + ([audio] if audio else []),
        files=sorted(files),
        poster=shared.poster,
        storyboard_image=shared.storyboard_image,
        storyboard_vtt=shared.storyboard_vtt,
        loudness_lufs=shared.loudness_lufs,
    )
