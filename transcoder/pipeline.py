"""The Transcoder: probe a source, then turn it into HLS renditions and artwork in a folder."""

from __future__ import annotations

import logging
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

from . import boxes, commands, playlist, segmented
from .artwork import cover_from_bytes, placeholder_cover, poster_from_frames
from .chunks import Chunk
from .commands import FrameGrab
from .errors import TranscodeFailed
from .iframes import write_iframe_playlist
from .ladder import (
    AUDIO_FOLDER,
    AudioRung,
    VideoRung,
    audio_ladder,
    even_round,
)
from .language import bcp47
from .live import LiveCallback, Planned, Watcher, peak_estimate
from .loudness import integrated_loudness
from .playlist import MASTER, Rendition
from .probe import MediaInfo, probe_file
from .runner import Budget, Completed, Job, Runner
from .segmented import ChunkOutput, SegmentsCallback, SharedOutput
from .settings import TranscoderSettings
from .storyboard import build_storyboard, plan_storyboard
from .waveform import write_waveform

POSTER = "poster.jpg"
COVER = "cover.jpg"
WAVEFORM = "waveform.json"
STORYBOARD_IMAGE = "storyboard.jpg"
STORYBOARD_VTT = "storyboard.vtt"
DOWNLOAD = "download.m4a"
# The downloadable file of an audio production copies the best rung at or under this bitrate:
# podcast apps expect about this much, and it is a file people keep on their phones.
DOWNLOAD_BITRATE = 128_000
PCM_RATE = 48000
# How ffmpeg and its libraries say an allocation failed under RLIMIT_AS.
MEMORY_ERRORS = ("Cannot allocate memory", "malloc of size", "Out of memory", "std::bad_alloc")
# Share of the progress bar spent in ffmpeg; the rest is playlists and artwork.
ENCODE_SHARE = 0.95


@dataclass
class TranscodeResult:
    """What ``transcode`` wrote; every path is relative to the output folder."""

    kind: Literal["audio", "video"]
    duration: float
    master: str
    renditions: list[Rendition]
    files: list[str] = field(default_factory=list)
    poster: str | None = None
    cover: str | None = None
    waveform: str | None = None
    storyboard_image: str | None = None
    storyboard_vtt: str | None = None
    loudness_lufs: float | None = None
    # A single AAC file to download (the podcast feed's enclosure); audio productions only.
    download: str | None = None


class _Progress:
    """Forwards fractions to the owner's callback: clamped to 0..1, never going back."""

    def __init__(self, callback: Callable[[float], None] | None) -> None:
        self.callback = callback
        self.last = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        # Steps under a thousandth are not worth a callback, except reaching the end.
        if fraction <= self.last or (fraction < 1.0 and fraction < self.last + 0.001):
            return
        self.last = fraction
        if self.callback is not None:
            self.callback(fraction)

    def scaled(self, start: float, share: float) -> Callable[[float], None]:
        """A callback mapping 0..1 onto ``start``..``start + share`` of this one."""
        return lambda fraction: self(start + share * fraction)


def _failure(result: Completed, what: str, logger: logging.Logger, argv: list[str]) -> None:
    if result.returncode == 0:
        return
    logger.warning(
        "ffmpeg exited with %s while converting %s: %s\n%s",
        result.returncode,
        what,
        " ".join(argv),
        result.stderr[-6000:],
    )
    if result.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise TranscodeFailed("Processing used more computing time than allowed and was stopped.")
    if result.returncode == -signal.SIGABRT or any(sign in result.stderr for sign in MEMORY_ERRORS):
        raise TranscodeFailed("Processing needed more memory than allowed and was stopped.")
    raise TranscodeFailed(f"The {what} could not be converted.")


def _fit(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return even_round(width * scale), even_round(height * scale)


def _finish(
    folder: Path,
) -> tuple[playlist.MediaPlaylist, boxes.SampleEntry, playlist.Measure]:
    media, measure = playlist.finish_media_playlist(folder / commands.MEDIA_PLAYLIST)
    assert media.map_uri is not None
    entry = boxes.sample_entry(folder / media.map_uri)
    if entry is None:
        raise TranscodeFailed("The converted stream is incomplete.")
    return media, entry, measure


def _audio_end(info: MediaInfo) -> float | None:
    """Where the shared audio of a video stops: with the picture, to the AAC frame. Sound that
    outlasts the picture by more than a second is kept whole (a capture whose camera stopped
    early loses nothing)."""
    picture = info.video_duration or info.duration
    if info.duration - picture > 1.0:
        return None
    return commands.aac_end(picture)


def _written(out_dir: Path, result: TranscodeResult) -> list[str]:
    """Every file of the result, from its playlists: stale files in out_dir are not ours."""
    files = [result.master]
    for rendition in result.renditions:
        folder = rendition.playlist.rsplit("/", 1)[0]
        media = playlist.parse_media_playlist((out_dir / rendition.playlist).read_text("utf-8"))
        files.append(rendition.playlist)
        if rendition.iframes is not None:
            files.append(rendition.iframes.playlist)
        files += [f"{folder}/{uri}" for uri in [media.map_uri or "", *media.uris] if uri]
    extras = (
        result.poster,
        result.cover,
        result.waveform,
        result.storyboard_image,
        result.storyboard_vtt,
        result.download,
    )
    files += [extra for extra in extras if extra]
    return sorted(set(files))


def download_rung(rungs: list[AudioRung]) -> AudioRung:
    """The rung the downloadable file copies: the best at or under ``DOWNLOAD_BITRATE``."""
    fitting = [rung for rung in rungs if rung.bitrate <= DOWNLOAD_BITRATE]
    if fitting:
        return max(fitting, key=lambda rung: rung.bitrate)
    return min(rungs, key=lambda rung: rung.bitrate)


def _join_segments(folder: Path, target: Path) -> None:
    """Write the rendition in ``folder`` as one fragmented MP4: init, then its segments."""
    media = playlist.parse_media_playlist((folder / commands.MEDIA_PLAYLIST).read_text("utf-8"))
    assert media.map_uri is not None
    with open(target, "wb") as out:
        for uri in [media.map_uri, *media.uris]:
            with open(folder / uri, "rb") as part:
                shutil.copyfileobj(part, out, 1024 * 1024)


def _video_rendition(
    out_dir: Path, rung: VideoRung, audio: Rendition | None
) -> tuple[Rendition, playlist.Measure]:
    media, entry, measure = _finish(out_dir / rung.name)
    iframes = write_iframe_playlist(out_dir / rung.name, media)
    size = (entry.width, entry.height)
    return segmented.video_rendition(rung, entry.codec, size, measure, audio, iframes), measure


def _audio_rendition(
    out_dir: Path, folder: str, bitrate: int
) -> tuple[Rendition, playlist.Measure]:
    _, entry, measure = _finish(out_dir / folder)
    return segmented.audio_rendition(folder, entry.codec, bitrate, measure), measure


class Transcoder:
    """Probes and transcodes media files with ffmpeg, as configured by its owner.

    Nothing is read from globals or the environment: ``settings`` (binaries, limits, ladder,
    threads, temp dir), ``logger`` and ``progress`` (called with a fraction 0..1 that never
    decreases, from the thread that called ``transcode``) all come from the caller.

    ``live``, when given, is called on the same thread with what became publishable while
    ffmpeg runs (``live.LiveOutput``: finished segments and EVENT playlists listing them), so
    that its owner can make the production playable before the transcode ends. An exception
    it raises stops the transcode and comes out of ``transcode``.
    """

    def __init__(
        self,
        settings: TranscoderSettings | None = None,
        *,
        logger: logging.Logger | None = None,
        progress: Callable[[float], None] | None = None,
        live: LiveCallback | None = None,
    ) -> None:
        self.settings = settings or TranscoderSettings()
        self.logger = logger or logging.getLogger("transcoder")
        self.progress = progress
        self.live = live
        self.runner = Runner(self.logger)

    def probe(self, path: Path) -> MediaInfo:
        """Describe ``path`` without decoding it.

        Raises InputRefused when it is not an acceptable recording (wrong kind of file, over a
        limit, unreadable) and TranscodeFailed when ffprobe itself cannot run or times out.
        """
        return probe_file(Path(path), self.settings, self.runner, self.logger)

    def transcode(
        self,
        source: Path,
        out_dir: Path,
        info: MediaInfo | None = None,
        *,
        language: str | None = None,
    ) -> TranscodeResult:
        """Write HLS renditions, ``master.m3u8`` and artwork for ``source`` into ``out_dir``.

        ``info`` from an earlier ``probe`` saves a second probe. The audio rendition of a video
        is announced in the language its stream is tagged with, else in ``language`` (BCP 47,
        checked here: a malformed one is left out). ``out_dir`` should be empty;
        it is created if missing. Raises InputRefused or TranscodeFailed; on failure the
        folder may hold partial output for the caller to discard.
        """
        source = Path(source).resolve()
        info = info or self.probe(source)
        out_dir = Path(out_dir).resolve()
        out_dir.mkdir(parents=True, exist_ok=True)
        progress = _Progress(self.progress)
        progress(0.0)
        with tempfile.TemporaryDirectory(prefix="transcode-", dir=self.settings.tmp_dir) as tmp:
            work = Path(tmp)
            if info.kind == "video":
                spoken = info.audio_language or bcp47(language)
                result = self._video(source, out_dir, work, info, progress, spoken)
            else:
                result = self._audio(source, out_dir, work, info, progress)
        result.files = _written(out_dir, result)
        progress(1.0)
        return result

    # --- segmented: chunks of a long video on separate workers (see ``segmented``) ----------

    def encode_chunk(
        self,
        source: Path,
        info: MediaInfo,
        chunk: Chunk,
        out_dir: Path,
        on_segments: SegmentsCallback | None = None,
    ) -> ChunkOutput:
        """Encode every video rung of ``chunk`` (one of ``chunks.plan_chunks(info, ...)``)
        into ``out_dir/<rung>/``: ``init.mp4`` and the chunk's segments under their numbers in
        the whole rendition. No sound and no artwork (``encode_shared``).

        ``on_segments`` is called on this thread, once every rung has its init segment, with
        the segments finished since the last call (by rung), so they can be copied away at
        once; the last chunk's last segment may come joined with a short tail under a new name
        (``-end``). Raises TranscodeFailed.
        """
        return segmented.encode_chunk(self, source, info, chunk, out_dir, on_segments)

    def encode_shared(
        self,
        source: Path,
        info: MediaInfo,
        out_dir: Path,
        *,
        on_segments: SegmentsCallback | None = None,
    ) -> SharedOutput:
        """What a chunked video needs once: its AAC rendition in ``out_dir/audio/`` (when it
        has sound; ``on_segments`` as for ``encode_chunk``) with its loudness, the poster and
        the storyboard, from the source's key frames only. Raises TranscodeFailed."""
        return segmented.encode_shared(self, source, info, out_dir, on_segments)

    def assemble(
        self,
        info: MediaInfo,
        chunks: Sequence[ChunkOutput],
        shared: SharedOutput,
        out_dir: Path,
        *,
        language: str | None = None,
    ) -> TranscodeResult:
        """Write every playlist of a chunked video into ``out_dir`` from the facts of its
        segments (which need not be there): media and I-frame playlists, the audio's, and the
        master, measured. ``files`` lists what this wrote. Raises TranscodeFailed when
        ``chunks`` are not every planned chunk in order with segments that follow on."""
        return segmented.assemble(self, info, chunks, shared, out_dir, language)

    def video_rungs(self, info: MediaInfo) -> list[VideoRung]:
        """The video rungs ``transcode`` writes for a video described by ``info``."""
        return segmented.ladder_of(info, self.settings)

    def planned_video(self, info: MediaInfo) -> list[Planned]:
        """The renditions of a video as its master announces them before they are measured:
        every rung, then the shared audio rendition when the video has sound."""
        seconds = self.settings.segment_seconds
        planned = [
            Planned(
                rung.name,
                "video",
                rung.maxrate,
                peak_estimate(rung.maxrate, rung.bufsize, seconds),
                rung.width,
                rung.height,
                round(float(rung.fps), 3),
            )
            for rung in self.video_rungs(info)
        ]
        if info.audio_index is not None:
            bitrate = self.settings.video_audio_bitrate
            planned.append(Planned(AUDIO_FOLDER, "audio", bitrate, int(bitrate * 1.1)))
        return planned

    def _following(
        self,
        progress: Callable[[float], None],
        out_dir: Path,
        planned: list[Planned],
        language: str | None = None,
    ) -> Callable[[float], None]:
        """``progress``, also handing the owner's ``live`` what became publishable."""
        if self.live is None:
            return progress
        live = self.live
        watcher = Watcher(
            out_dir, planned, language=language, segment_seconds=self.settings.segment_seconds
        )

        def tick(fraction: float) -> None:
            progress(fraction)
            output = watcher.poll()
            if output is not None:
                live(output)

        return tick

    # --- video -----------------------------------------------------------------------------

    def _video(
        self,
        source: Path,
        out_dir: Path,
        work: Path,
        info: MediaInfo,
        progress: _Progress,
        language: str | None,
    ) -> TranscodeResult:
        settings = self.settings
        assert info.video_index is not None and info.width and info.height
        rungs = self.video_rungs(info)
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
        for rung in rungs:
            (out_dir / rung.name).mkdir(exist_ok=True)
        if info.audio_index is not None:
            (out_dir / AUDIO_FOLDER).mkdir(exist_ok=True)
        argv = commands.video_argv(
            settings,
            source,
            out_dir,
            video_index=info.video_index,
            audio_index=info.audio_index,
            rungs=rungs,
            grabs=[poster, thumbs],
            audio_folder=AUDIO_FOLDER,
            deinterlace=info.interlaced,
            audio_end=_audio_end(info),
        )
        budget = Budget.for_duration(settings.limits, info.duration)
        job = Job(argv, budget, duration=info.duration)
        planned = self.planned_video(info)
        tick = self._following(progress.scaled(0.0, ENCODE_SHARE), out_dir, planned, language)
        completed = self.runner.run(job, tick)
        _failure(completed, "video", self.logger, argv)

        audio, durations = None, []
        if info.audio_index is not None:
            audio, measure = _audio_rendition(out_dir, AUDIO_FOLDER, settings.video_audio_bitrate)
            durations.append(measure.duration)
        renditions = []
        for rung in rungs:
            rendition, measure = _video_rendition(out_dir, rung, audio)
            renditions.append(rendition)
            durations.append(measure.duration)
        (out_dir / MASTER).write_text(
            playlist.master_playlist(renditions, audio, language), encoding="utf-8"
        )

        result = TranscodeResult(
            kind="video",
            duration=max(durations),
            master=MASTER,
            renditions=renditions + ([audio] if audio else []),
            loudness_lufs=integrated_loudness(completed.stderr) if audio else None,
        )
        if poster_from_frames(poster.path, poster.width, poster.height, out_dir / POSTER):
            result.poster = POSTER
        if build_storyboard(
            thumbs.path,
            board,
            duration=result.duration,
            columns=settings.storyboard_columns,
            max_thumbs=settings.storyboard_max_thumbs,
            sprite_path=out_dir / STORYBOARD_IMAGE,
            vtt_path=out_dir / STORYBOARD_VTT,
        ):
            result.storyboard_image, result.storyboard_vtt = STORYBOARD_IMAGE, STORYBOARD_VTT
        return result

    # --- audio -----------------------------------------------------------------------------

    def _audio(
        self, source: Path, out_dir: Path, work: Path, info: MediaInfo, progress: _Progress
    ) -> TranscodeResult:
        settings = self.settings
        assert info.audio_index is not None
        rungs = audio_ladder(
            settings.audio_bitrates,
            codec=info.audio_codec,
            bitrate=info.audio_bitrate,
            channels=info.channels,
            sample_rate=info.sample_rate,
        )
        pcm = work / "waveform.pcm"
        budget = Budget.for_duration(settings.limits, info.duration)
        jobs = []
        for rung in rungs:
            (out_dir / rung.name).mkdir(exist_ok=True)
            # The cheapest (lowest) rung also measures loudness and dumps PCM for the waveform,
            # so no extra decode is needed and the parallel processes finish close together.
            extras = rung is rungs[-1]
            argv = commands.audio_argv(
                settings,
                source,
                out_dir,
                audio_index=info.audio_index,
                rung=rung,
                loudness=extras,
                pcm=pcm if extras else None,
            )
            jobs.append(Job(argv, budget, duration=info.duration))
        planned = [
            Planned(rung.name, "audio", rung.bitrate, int(rung.bitrate * 1.1)) for rung in rungs
        ]
        tick = self._following(progress.scaled(0.0, ENCODE_SHARE), out_dir, planned)
        results = self.runner.run_all(jobs, tick)
        # The rung that failed by itself tells why; the ones stopped because of it do not.
        for job, completed in sorted(zip(jobs, results, strict=True), key=lambda p: p[1].stopped):
            _failure(completed, "audio", self.logger, list(job.argv))

        renditions, durations = [], []
        for rung in rungs:
            rendition, measure = _audio_rendition(out_dir, rung.name, rung.bitrate)
            renditions.append(rendition)
            durations.append(measure.duration)
        (out_dir / MASTER).write_text(playlist.master_playlist(renditions), encoding="utf-8")
        result = TranscodeResult(
            kind="audio",
            duration=max(durations),
            master=MASTER,
            renditions=renditions,
            loudness_lufs=integrated_loudness(results[-1].stderr),
        )
        cover = info.tags.cover
        if not (
            cover and cover_from_bytes(cover, out_dir / COVER, settings.cover_max_side, self.logger)
        ):
            seed = " ".join([info.tags.title or source.stem, *info.tags.artists])
            placeholder_cover(seed, out_dir / COVER)
        result.cover = COVER
        write_waveform(pcm, out_dir / WAVEFORM, PCM_RATE, settings.waveform_target_pairs)
        result.waveform = WAVEFORM
        self._download(out_dir, work, download_rung(rungs), info, budget)
        result.download = DOWNLOAD
        return result

    def _download(
        self, out_dir: Path, work: Path, rung: AudioRung, info: MediaInfo, budget: Budget
    ) -> None:
        """Write ``DOWNLOAD`` by remuxing ``rung``'s segments: a copy, never a second encode."""
        joined = work / "download-source.mp4"
        _join_segments(out_dir / rung.name, joined)
        argv = commands.download_argv(
            self.settings,
            joined,
            out_dir / DOWNLOAD,
            title=info.tags.title,
            artists=info.tags.artists,
        )
        completed = self.runner.run(Job(argv, budget))
        _failure(completed, "downloadable file", self.logger, argv)
        joined.unlink()
