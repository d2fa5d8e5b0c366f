"""Time the transcoder against hand-written ffmpeg baselines; figures go in BENCHMARKS.md.

    .venv/bin/python bench/transcode.py [--quick] [--runs N] [--cache-dir DIR]
    .venv/bin/python bench/transcode.py --segmented [--chunk-seconds 30,60] [--workers 1,2]

Video, on a generated 60 s 1080p30 H.264+AAC source, runs alternating p, a, b, p, a, b, ...:

- (p) the pipeline: ``Transcoder.transcode`` (probe, the ffmpeg ladder, playlists, poster,
  storyboard, loudness), and on its own line the wall time of its ffmpeg encode process;
- (a) one hand-written ffmpeg command: one decode, ``split`` + ``scale`` per rung, one HLS
  output per rung plus one AAC rendition, nothing else;
- (b) one ffmpeg process per rendition, one after the other, each decoding the source again.

Targets: p/a at most 1.05, p/b at most 0.8. Audio: the pipeline on a generated 10-minute stereo
44.1 kHz FLAC, target at least 40 times realtime. ``--quick`` (10 s video, 60 s FLAC, one run)
is a smoke test; its figures mean nothing.

``--segmented`` compares, on a generated 3-minute 1080p30 source (``--quick``: 40 s), one pass
(``Transcoder.transcode``) with a segmented transcode for each chunk size: (s1) one worker,
the chunks one after the other, then the shared work (sound, loudness, poster, storyboard) and
the assembly, target s1/p at most 1.10; (sN) N worker processes on this machine, each with
threads = cores / N, taking the chunks and the shared task in turn; and a projection for N
machines from the timings of s1: the tasks dealt in order to whichever machine is free first,
plus the assembly.

Both baselines take their encoder settings from ``TranscoderSettings`` and are checked, option
by option, against the command the pipeline really ran. Sources are generated once into the
cache dir (``bench/.cache`` by default, which ignores itself for git); outputs go to a temp dir
that is removed at the end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import heapq
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import cpu_model

from cite_live.demo.media import build_once, lavfi
from cite_live.demo.media import ffmpeg as generate
from transcoder import Transcoder, TranscoderSettings, plan_chunks
from transcoder.runner import Completed, Job, Runner
from transcoder.segmented import ChunkOutput, SharedOutput

WIDTH, HEIGHT, FPS = 1920, 1080, 30
VIDEO_SECONDS, QUICK_VIDEO_SECONDS = 60, 10
AUDIO_SECONDS, QUICK_AUDIO_SECONDS = 600, 60
AUDIO_RATE = 44100
TARGET_VS_SINGLE = 1.05
TARGET_VS_PER_RUNG = 0.8
TARGET_AUDIO_REALTIME = 40.0
TARGET_SEGMENTED = 1.10
SEGMENTED_SECONDS, QUICK_SEGMENTED_SECONDS = 180, 40
AUDIO_FOLDER = "audio"
PLAYLIST = "index.m3u8"
# Options of an output that may differ between the pipeline and the baselines: where things
# go, input hardening, logging. Every other option (encoder, rate control, keyframes, HLS
# muxing, threads) must be the same, so a setting added to the transcoder shows up here.
NOT_COMPARED = frozenset(
    {
        "-i",
        "-map",
        "-filter_complex",
        "-vf",
        "-af",
        "-format_whitelist",
        "-protocol_whitelist",
        "-map_metadata",
        "-map_chapters",
        "-max_muxing_queue_size",
        "-hls_segment_filename",
        "-loglevel",
        "-progress",
        "-filter_complex_threads",
    }
)
# ffmpeg options that take no value, for splitting a command line into its outputs.
FLAGS = frozenset({"-an", "-vn", "-sn", "-dn", "-y", "-n", "-hide_banner", "-nostdin", "-nostats"})


# --- machine ------------------------------------------------------------------------------


def _ffmpeg_version(ffmpeg: str) -> str:
    result = subprocess.run(
        [ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True, check=True
    )
    return result.stdout.splitlines()[0] if result.stdout else "unknown"


def machine_lines(settings: TranscoderSettings) -> list[str]:
    """What the figures depend on: CPU, cores, ffmpeg, Python, OS, the encoder settings."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    steps = "/".join(str(step.short_side) for step in settings.video_steps)
    return [
        f"- CPU: {cpu_model()}, {usable} usable cores ({os.cpu_count()} online)",
        f"- ffmpeg: {_ffmpeg_version(settings.ffmpeg)}",
        f"- Python: {platform.python_version()} on {platform.system()} {platform.release()} "
        f"{platform.machine()}",
        f"- Encoder: x264 {settings.x264_preset}, ladder {steps}, keyframe every "
        f"{settings.keyframe_seconds} s, {settings.segment_seconds} s fMP4 segments, "
        f"AAC {settings.video_audio_bitrate // 1000} kb/s with video, audio ladder "
        + "/".join(str(rate // 1000) for rate in settings.audio_bitrates)
        + " kb/s",
    ]


# --- sources ------------------------------------------------------------------------------


def _cached(cache: Path, name: str, build: Callable[[Path], None]) -> Path:
    """``cache/name/name``, built once by ``build(path)`` when missing (`build_once`)."""
    cache.mkdir(parents=True, exist_ok=True)
    ignore = cache / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Generated benchmark sources.\n*\n", encoding="utf-8")

    def builder(directory: Path) -> Path:
        print(f"generating {name} ...", flush=True)
        build(directory / name)
        return directory / name

    return build_once(name, cache, builder)


def video_source(cache: Path, seconds: int, ffmpeg: str) -> Path:
    """A 1080p30 H.264 + AAC stereo MP4 like a camera's: moving test card with a light grain.

    The grain changes every frame, so x264 cannot coast on static blocks as it would on a
    clean test card; the source is capped at 20 Mb/s, a usual camera rate.
    """

    def build(path: Path) -> None:
        grain = "noise=alls=4:allf=t"
        picture = f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}:duration={seconds},{grain}"
        tones = f"aevalsrc=exprs=0.2*sin(2*PI*220*t)|0.2*sin(2*PI*330*t):s=48000:d={seconds}"
        args = [
            *lavfi(picture), *lavfi(tones),
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-maxrate", "20M",
            "-bufsize", "40M", "-pix_fmt", "yuv420p", "-g", str(2 * FPS),
            "-c:a", "aac", "-b:a", "192k", "-shortest", "-movflags", "+faststart",
            "-f", "mp4", str(path),
        ]  # fmt: skip
        generate(*args, binary=ffmpeg)

    return _cached(cache, f"video-{WIDTH}x{HEIGHT}p{FPS}-{seconds}s.mp4", build)


def audio_source(cache: Path, seconds: int, ffmpeg: str) -> Path:
    """A stereo 44.1 kHz 16-bit FLAC: slowly swelling sines over pink noise, like a room."""

    def build(path: Path) -> None:
        left = "0.25*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*0.2*t))+0.15*sin(2*PI*331*t)"
        right = "0.25*sin(2*PI*277*t)+0.15*sin(2*PI*415*t)*(0.6+0.4*sin(2*PI*0.3*t))"
        tones = f"aevalsrc=exprs={left}|{right}:s={AUDIO_RATE}:d={seconds}:c=stereo"
        noise = f"anoisesrc=color=pink:amplitude=0.08:sample_rate={AUDIO_RATE}:duration={seconds}"
        mix = "[1:a]aformat=channel_layouts=stereo[n];[0:a][n]amix=inputs=2:normalize=0"
        args = [
            *lavfi(tones), *lavfi(noise), "-filter_complex", mix,
            "-c:a", "flac", "-sample_fmt", "s16", "-f", "flac", str(path),
        ]  # fmt: skip
        generate(*args, binary=ffmpeg)

    return _cached(cache, f"audio-{AUDIO_RATE}-stereo-{seconds}s.flac", build)


def _warm(path: Path) -> None:
    """Read ``path`` once so no contender pays for the first read from disk."""
    with path.open("rb") as handle:
        while handle.read(1 << 22):
            pass


# --- baselines ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rung:
    """One rendition of the hand-written baselines."""

    name: str
    width: int
    height: int
    crf: int
    maxrate: int


def _even(value: float) -> int:
    return max(2, int(value / 2 + 0.5) * 2)


def baseline_rungs(settings: TranscoderSettings) -> list[Rung]:
    """The ladder for the 16:9 source, from the settings' steps: none above the source."""
    steps = sorted(settings.video_steps, key=lambda step: step.short_side, reverse=True)
    return [
        Rung(
            f"v{step.short_side}",
            _even(step.short_side * WIDTH / HEIGHT),
            step.short_side,
            step.crf,
            step.maxrate,
        )
        for step in steps
        if step.short_side <= HEIGHT
    ]


def _x264(settings: TranscoderSettings, rung: Rung) -> list[str]:
    # The same encoder options as transcoder/commands.py; checked after the first pipeline run.
    gop = 2 * (FPS * settings.keyframe_seconds + 1)
    return [
        "-c:v", "libx264", "-preset", settings.x264_preset, "-profile:v", "high",
        "-pix_fmt", "yuv420p", "-crf", str(rung.crf), "-maxrate", str(rung.maxrate),
        "-bufsize", str(2 * rung.maxrate),
        "-force_key_frames", f"expr:gte(t,n_forced*{settings.keyframe_seconds})",
        "-forced-idr", "1", "-sc_threshold", "0", "-g", str(gop),
        "-x264-params", "scenecut=0:open-gop=0", *_threads(settings),
    ]  # fmt: skip


def _aac(settings: TranscoderSettings) -> list[str]:
    bitrate = str(settings.video_audio_bitrate)
    aac = ["-c:a", "aac", "-aac_coder", settings.aac_coder, "-b:a", bitrate]
    return [*aac, "-ar", "48000", "-ac", "2", *_threads(settings)]


def _threads(settings: TranscoderSettings) -> list[str]:
    return ["-threads", str(settings.threads)] if settings.threads > 0 else []


def _hls(settings: TranscoderSettings, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    return [
        "-f", "hls", "-hls_time", str(settings.segment_seconds), "-hls_playlist_type", "event",
        "-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(folder / "seg_%05d.m4s"), "-start_number", "1",
        str(folder / PLAYLIST),
    ]  # fmt: skip


def _head(settings: TranscoderSettings, source: Path) -> list[str]:
    quiet = ["-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
    return [settings.ffmpeg, *quiet, "-i", str(source)]


def single_pass_argv(
    settings: TranscoderSettings, source: Path, out: Path, rungs: Sequence[Rung]
) -> list[str]:
    """(a) One ffmpeg: one decode, split and scale per rung, one HLS output each, plus AAC."""
    labels = "".join(f"[s{number}]" for number in range(len(rungs)))
    graph = [f"[0:v:0]split={len(rungs)}{labels}"]
    graph += [
        f"[s{number}]scale={rung.width}:{rung.height}[{rung.name}]"
        for number, rung in enumerate(rungs)
    ]
    argv = [*_head(settings, source), "-filter_complex", ";".join(graph)]
    if settings.threads > 0:
        argv += ["-filter_complex_threads", str(settings.threads)]
    for rung in rungs:
        argv += ["-map", f"[{rung.name}]", *_x264(settings, rung), *_hls(settings, out / rung.name)]
    argv += ["-map", "0:a:0", *_aac(settings), *_hls(settings, out / AUDIO_FOLDER)]
    return argv


def per_rung_argvs(
    settings: TranscoderSettings, source: Path, out: Path, rungs: Sequence[Rung]
) -> list[list[str]]:
    """(b) One ffmpeg per rendition, each decoding the source anew; the AAC one decodes audio."""
    argvs = []
    for rung in rungs:
        scale = ["-map", "0:v:0", "-vf", f"scale={rung.width}:{rung.height}"]
        argvs.append(
            [
                *_head(settings, source),
                *scale,
                *_x264(settings, rung),
                *_hls(settings, out / rung.name),
            ]
        )
    audio = ["-map", "0:a:0", *_aac(settings)]
    argvs.append([*_head(settings, source), *audio, *_hls(settings, out / AUDIO_FOLDER)])
    return argvs


def _run(argv: list[str]) -> None:
    result = subprocess.run(
        argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"baseline failed ({result.returncode}): {' '.join(argv)}\n{result.stderr[-3000:]}"
        )


def _outputs(argv: Sequence[str]) -> dict[str, dict[str, str]]:
    """The compared options of each HLS output of a command, keyed by the output's folder."""
    found: dict[str, dict[str, str]] = {}
    options: dict[str, str] = {}
    index = 1
    while index < len(argv):
        token = argv[index]
        if token in FLAGS:
            index += 1
        elif token.startswith("-") and index + 1 < len(argv):
            options[token] = argv[index + 1]
            index += 2
        else:
            if token.endswith(PLAYLIST):
                folder = Path(token.removeprefix("file:")).parent.name
                found[folder] = {
                    key: value for key, value in options.items() if key not in NOT_COMPARED
                }
            options = {}
            index += 1
    return found


def compare_settings(pipeline: Sequence[str], baseline: Sequence[Sequence[str]]) -> list[str]:
    """Differences between the pipeline's HLS outputs and a baseline's; empty when the same."""
    theirs = _outputs(pipeline)
    ours: dict[str, dict[str, str]] = {}
    for argv in baseline:
        ours.update(_outputs(argv))
    problems = []
    for folder in sorted(theirs.keys() | ours.keys()):
        if folder not in ours or folder not in theirs:
            where = "baseline" if folder not in ours else "pipeline"
            problems.append(f"{folder}: missing from the {where}")
            continue
        for key in sorted(theirs[folder].keys() | ours[folder].keys()):
            if theirs[folder].get(key) != ours[folder].get(key):
                problems.append(
                    f"{folder} {key}: pipeline {theirs[folder].get(key)!r}, "
                    f"baseline {ours[folder].get(key)!r}"
                )
    return problems


# --- timing -------------------------------------------------------------------------------


class TimedRunner(Runner):
    """The transcoder's runner, also noting each batch of commands and its wall time."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logger)
        self.batches: list[tuple[list[list[str]], float]] = []

    def run_all(
        self, jobs: Sequence[Job], progress: Callable[[float], None] | None = None
    ) -> list[Completed]:
        start = time.perf_counter()
        try:
            return super().run_all(jobs, progress)
        finally:
            argvs = [list(job.argv) for job in jobs]
            self.batches.append((argvs, time.perf_counter() - start))


def _cpu_seconds() -> float:
    # Children are counted once reaped, and every contender waits for all of its processes.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime + own.ru_utime + own.ru_stime


@dataclass
class Timing:
    """One timed run: wall and CPU seconds, and the wall time of the pipeline's ffmpeg runs."""

    wall: float
    cpu: float
    encode: float | None = None


@dataclass
class Contender:
    """A way of making the ladder, and its runs."""

    key: str
    label: str
    runs: list[Timing] = field(default_factory=list)

    def median(self, attribute: str = "wall") -> float:
        values = [getattr(run, attribute) for run in self.runs]
        return float(statistics.median(value for value in values if value is not None))


def timed(work: Callable[[], float | None]) -> Timing:
    """Run ``work`` (which may return the seconds its ffmpeg encode took) and time it."""
    cpu, start = _cpu_seconds(), time.perf_counter()
    encode = work()
    return Timing(time.perf_counter() - start, _cpu_seconds() - cpu, encode)


class Bench:
    """Runs the contenders into fresh folders under one temp dir and keeps their timings."""

    def __init__(self, settings: TranscoderSettings, scratch: Path) -> None:
        self.settings = settings
        self.scratch = scratch
        self.rungs = baseline_rungs(settings)
        self.logger = logging.getLogger("bench.transcode")
        self.pipeline_argv: list[str] | None = None
        self.pipeline_sizes: list[tuple[str, int, int]] = []
        self.count = 0

    def _fresh(self) -> Path:
        self.count += 1
        out = self.scratch / f"out-{self.count}"
        out.mkdir()
        return out

    def pipeline(self, source: Path) -> Timing:
        """(p) Probe and transcode with the library, as the worker does."""
        out = self._fresh()
        transcoder = Transcoder(self.settings, logger=self.logger)
        runner = TimedRunner(self.logger)
        transcoder.runner = runner

        def work() -> float:
            result = transcoder.transcode(source, out)
            self.pipeline_sizes = [
                (rendition.name, rendition.width or 0, rendition.height or 0)
                for rendition in result.renditions
                if rendition.kind == "video"
            ]
            return sum(
                seconds
                for argvs, seconds in runner.batches
                if argvs and argvs[0][0] == self.settings.ffmpeg
            )

        timing = timed(work)
        encodes = [argvs for argvs, _ in runner.batches if argvs[0][0] == self.settings.ffmpeg]
        if encodes and len(encodes[0]) == 1:
            self.pipeline_argv = encodes[0][0]
        shutil.rmtree(out)
        return timing

    def single_pass(self, source: Path) -> Timing:
        """(a) The hand-written one-decode ladder."""
        out = self._fresh()
        argv = single_pass_argv(self.settings, source, out, self.rungs)
        timing = timed(lambda: _run(argv))
        shutil.rmtree(out)
        return timing

    def per_rung(self, source: Path) -> Timing:
        """(b) One process per rendition, in turn."""
        out = self._fresh()
        argvs = per_rung_argvs(self.settings, source, out, self.rungs)

        def work() -> None:
            for argv in argvs:
                _run(argv)

        timing = timed(work)
        shutil.rmtree(out)
        return timing

    def check_settings(self, source: Path) -> list[str]:
        """Differences between what the pipeline ran and the baselines (sizes included)."""
        if self.pipeline_argv is None:
            return ["the pipeline's ffmpeg command was not seen; settings not compared"]
        out = self.scratch / "check"
        problems = compare_settings(
            self.pipeline_argv, [single_pass_argv(self.settings, source, out, self.rungs)]
        )
        problems += [
            f"(b) {problem}"
            for problem in compare_settings(
                self.pipeline_argv, per_rung_argvs(self.settings, source, out, self.rungs)
            )
        ]
        ours = [(rung.name, rung.width, rung.height) for rung in self.rungs]
        if sorted(ours) != sorted(self.pipeline_sizes):
            problems.append(f"rung sizes: pipeline {self.pipeline_sizes}, baselines {ours}")
        shutil.rmtree(out, ignore_errors=True)
        return problems


# --- report -------------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def report(
    video: Sequence[Contender] | None,
    audio: Contender | None,
    *,
    runs: int,
    audio_seconds: int,
    quick: bool,
) -> None:
    """Medians, ratios against the targets, and the Markdown table for BENCHMARKS.md."""
    rows = []
    if video:
        pipeline, single, per_rung = video
        p, encode = pipeline.median(), pipeline.median("encode")
        vs_single, vs_per_rung = p / single.median(), p / per_rung.median()
        print("\nmedians (wall / CPU seconds):")
        for contender in video:
            print(
                f"  ({contender.key}) {contender.label}: {contender.median():.2f} s / "
                f"{contender.median('cpu'):.2f} s"
            )
        print(f"      of which the pipeline's ffmpeg encode: {encode:.2f} s")
        print(
            f"  p/a = {vs_single:.3f} (target <= {TARGET_VS_SINGLE}); "
            f"its encode alone / a = {encode / single.median():.3f}"
        )
        print(f"  p/b = {vs_per_rung:.3f} (target <= {TARGET_VS_PER_RUNG})")
        rows += [
            f"| (p) pipeline, {pipeline.label} | {p:.2f} | {pipeline.median('cpu'):.2f} | | | |",
            f"| (p) of which its ffmpeg encode | {encode:.2f} | | "
            f"{encode / single.median():.3f} of a | | |",
            f"| (a) {single.label} | {single.median():.2f} | {single.median('cpu'):.2f} | "
            f"p/a {vs_single:.3f} | ≤ {TARGET_VS_SINGLE} | "
            f"{_verdict(vs_single <= TARGET_VS_SINGLE)} |",
            f"| (b) {per_rung.label} | {per_rung.median():.2f} | {per_rung.median('cpu'):.2f} | "
            f"p/b {vs_per_rung:.3f} | ≤ {TARGET_VS_PER_RUNG} | "
            f"{_verdict(vs_per_rung <= TARGET_VS_PER_RUNG)} |",
        ]
    if audio:
        realtime = audio_seconds / audio.median()
        print(
            f"  audio: {audio.median():.2f} s for {audio_seconds} s = {realtime:.1f}x realtime "
            f"(target >= {TARGET_AUDIO_REALTIME:.0f}x); its ffmpeg runs "
            f"{audio.median('encode'):.2f} s"
        )
        rows.append(
            f"| audio ladder, {audio.label} | {audio.median():.2f} | {audio.median('cpu'):.2f} | "
            f"{realtime:.1f}× realtime | ≥ {TARGET_AUDIO_REALTIME:.0f}× | "
            f"{_verdict(realtime >= TARGET_AUDIO_REALTIME)} |"
        )
    if rows:
        print(f"\n| medians of {runs} runs | wall (s) | CPU (s) | ratio | target | met |")
        print("|---|---:|---:|---:|---:|:-:|")
        print("\n".join(rows))
    if quick:
        print("\n--quick: smoke test on short sources, one run; these figures mean nothing.")


def bench_video(bench: Bench, video: Path, seconds: int, runs: int) -> list[Contender]:
    """Run p, a, b in turn, ``runs`` times, checking the baselines' settings after the first."""
    contenders = [
        Contender("p", f"Transcoder.transcode ({seconds} s 1080p30)"),
        Contender("a", "single-pass ffmpeg ladder (split + scale)"),
        Contender("b", "one ffmpeg per rendition, in turn"),
    ]
    actions = [bench.pipeline, bench.single_pass, bench.per_rung]
    rungs = ", ".join(f"{rung.width}x{rung.height}" for rung in bench.rungs)
    print(f"\n## Video: {video.name}, rungs {rungs} + AAC\n", flush=True)
    _warm(video)
    for number in range(1, runs + 1):
        for contender, action in zip(contenders, actions, strict=True):
            timing = action(video)
            contender.runs.append(timing)
            encode = f", ffmpeg encode {timing.encode:.2f} s" if timing.encode else ""
            print(
                f"run {number}/{runs} ({contender.key}) {timing.wall:7.2f} s wall, "
                f"{timing.cpu:7.2f} s CPU{encode}",
                flush=True,
            )
        if number == 1:
            problems = bench.check_settings(video)
            for problem in problems:
                print(f"  WARNING settings differ: {problem}")
            if not problems:
                print("  encoder settings of (a) and (b) match the pipeline's command")
    return contenders


def bench_audio(bench: Bench, flac: Path, seconds: int, runs: int) -> Contender:
    """Run the pipeline on the FLAC ``runs`` times."""
    audio = Contender("audio", f"{seconds // 60} min FLAC 44.1 kHz stereo")
    print(f"\n## Audio: {flac.name}\n", flush=True)
    _warm(flac)
    for number in range(1, runs + 1):
        timing = bench.pipeline(flac)
        audio.runs.append(timing)
        print(
            f"run {number}/{runs} (p) {timing.wall:7.2f} s wall, {timing.cpu:7.2f} s CPU, "
            f"ffmpeg {timing.encode or 0:.2f} s, {seconds / timing.wall:.1f}x realtime",
            flush=True,
        )
    return audio


# --- segmented ----------------------------------------------------------------------------


@dataclass
class Segmented:
    """One segmented transcode: the seconds of each chunk, of the shared task, of assembly."""

    chunks: list[float]
    shared: float
    assemble: float
    wall: float
    cpu: float


def _task(
    settings: TranscoderSettings, source: Path, out: Path, task: int
) -> tuple[int, float, dict[str, object]]:
    """One worker's task: chunk ``task``, or the shared work when -1; its seconds and output."""
    transcoder = Transcoder(settings, logger=logging.getLogger("bench.segmented"))
    info = transcoder.probe(source)
    start = time.perf_counter()
    if task < 0:
        output: dict[str, object] = transcoder.encode_shared(source, info, out / "shared").to_json()
    else:
        chunk = plan_chunks(info, settings)[task]
        output = transcoder.encode_chunk(source, info, chunk, out / f"chunk{task}").to_json()
    return task, time.perf_counter() - start, output


def _assemble(
    settings: TranscoderSettings, source: Path, out: Path, outputs: dict[int, dict[str, object]]
) -> float:
    transcoder = Transcoder(settings, logger=logging.getLogger("bench.segmented"))
    info = transcoder.probe(source)
    start = time.perf_counter()
    chunks = [ChunkOutput.from_json(outputs[index]) for index in sorted(outputs) if index >= 0]
    transcoder.assemble(info, chunks, SharedOutput.from_json(outputs[-1]), out / "merged")
    return time.perf_counter() - start


def segmented_run(settings: TranscoderSettings, source: Path, out: Path, workers: int) -> Segmented:
    """The shared task and every chunk on ``workers`` processes (in this one when 1), each with
    ``threads`` cores / ``workers``; then the assembly."""
    count = len(plan_chunks(Transcoder(settings).probe(source), settings))
    tasks = [-1, *range(count)]
    times: dict[int, float] = {}
    outputs: dict[int, dict[str, object]] = {}
    cpu, start = _cpu_seconds(), time.perf_counter()
    if workers == 1:
        for task in tasks:
            _, seconds, output = _task(settings, source, out, task)
            times[task], outputs[task] = seconds, output
    else:
        usable = len(os.sched_getaffinity(0))
        each = dataclasses.replace(settings, threads=max(1, usable // workers))
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_task, each, source, out, task) for task in tasks]
            for future in concurrent.futures.as_completed(futures):
                task, seconds, output = future.result()
                times[task], outputs[task] = seconds, output
    assembly = _assemble(settings, source, out, outputs)
    wall, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    return Segmented([times[i] for i in range(count)], times[-1], assembly, wall, cpu)


def projection(run: Segmented, machines: int) -> float:
    """Wall time on ``machines`` machines like this one, from one worker's task timings: the
    shared task and the chunks dealt in order to the machine free first, then the assembly."""
    free = [0.0] * machines
    for seconds in [run.shared, *run.chunks]:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free) + run.assemble


def bench_segmented(
    settings: TranscoderSettings,
    scratch: Path,
    source: Path,
    seconds: int,
    chunk_sizes: Sequence[int],
    workers: Sequence[int],
) -> None:
    """One pass, then each chunk size with each number of worker processes; prints the table."""
    print(f"\n## Segmented: {source.name}\n", flush=True)
    _warm(source)
    bench = Bench(settings, scratch)
    one = bench.pipeline(source)
    single = one.wall
    print(
        f"(p) one pass: {single:.2f} s wall ({seconds / single:.2f}x realtime), "
        f"{one.cpu:.1f} s CPU",
        flush=True,
    )
    rows = [f"| (p) one pass, Transcoder.transcode | | {single:.1f} | {one.cpu:.1f} | | | |"]
    for size in chunk_sizes:
        chunked = dataclasses.replace(settings, chunk_seconds=size)
        for count in workers:
            out = scratch / f"segmented-{size}-{count}"
            out.mkdir()
            run = segmented_run(chunked, source, out, count)
            shutil.rmtree(out)
            ratio = run.wall / single
            print(
                f"({size} s chunks, {count} worker(s)) {run.wall:.2f} s wall = {ratio:.3f} of p; "
                f"chunks {', '.join(f'{t:.1f}' for t in run.chunks)} s, shared "
                f"{run.shared:.1f} s, assembly {run.assemble:.2f} s; {run.cpu:.1f} s CPU "
                f"= {run.cpu / one.cpu:.3f} of p's",
                flush=True,
            )
            target = f"≤ {TARGET_SEGMENTED}" if count == 1 else ""
            met = _verdict(ratio <= TARGET_SEGMENTED) if count == 1 else ""
            rows.append(
                f"| (s{count}) {size} s chunks, {count} worker process(es) on this machine | "
                f"{len(run.chunks)} | {run.wall:.1f} | {run.cpu:.1f} | {ratio:.3f} "
                f"(CPU {run.cpu / one.cpu:.3f}) | {target} | {met} |"
            )
            if count == 1:
                for machines in sorted({2, 4, 8, len(run.chunks) + 1}):
                    projected = projection(run, machines)
                    rows.append(
                        f"| projection: {size} s chunks on {machines} machines | | "
                        f"{projected:.1f} | | {projected / single:.3f} | | |"
                    )
    print("\n| contender | chunks | wall (s) | CPU (s) | of p (wall) | target | met |")
    print("|---|---:|---:|---:|---:|---:|:-:|")
    print("\n".join(rows))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short sources, one run: smoke test")
    parser.add_argument("--runs", type=int, default=None, help="runs of each contender (3)")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(__file__).resolve().parent / ".cache",
        help="where generated sources are kept between runs (default: bench/.cache)",
    )
    parser.add_argument(
        "--segmented", action="store_true", help="one pass against chunks (only that)"
    )
    parser.add_argument("--chunk-seconds", default="30,60", help="chunk sizes for --segmented")
    parser.add_argument("--workers", default="1,2", help="worker processes for --segmented")
    args = parser.parse_args(argv)
    if args.segmented:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        seconds = QUICK_SEGMENTED_SECONDS if args.quick else SEGMENTED_SECONDS
        sizes = [int(value) for value in args.chunk_seconds.split(",")]
        workers = [int(value) for value in args.workers.split(",")]
        with tempfile.TemporaryDirectory(prefix="bench-segmented-") as tmp:
            settings = TranscoderSettings(tmp_dir=Path(tmp))
            print("## Machine\n")
            print("\n".join(machine_lines(settings)), flush=True)
            source = video_source(args.cache_dir.resolve(), seconds, settings.ffmpeg)
            bench_segmented(settings, Path(tmp), source, seconds, sizes, workers)
        return 0
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if runs < 1:
        parser.error("--runs must be at least 1")
    video_seconds = QUICK_VIDEO_SECONDS if args.quick else VIDEO_SECONDS
    audio_seconds = QUICK_AUDIO_SECONDS if args.quick else AUDIO_SECONDS
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    failed = False
    with tempfile.TemporaryDirectory(prefix="bench-transcode-") as tmp:
        scratch = Path(tmp)
        settings = TranscoderSettings(tmp_dir=scratch)
        print("## Machine\n")
        print("\n".join(machine_lines(settings)), flush=True)
        cache = args.cache_dir.resolve()
        video = video_source(cache, video_seconds, settings.ffmpeg)
        flac = audio_source(cache, audio_seconds, settings.ffmpeg)
        bench = Bench(settings, scratch)
        # A failing half should not throw away the minutes the other half took.
        video_results: list[Contender] | None = None
        audio_results: Contender | None = None
        try:
            video_results = bench_video(bench, video, video_seconds, runs)
        except Exception:
            failed = True
            print(f"VIDEO BENCHMARK FAILED\n{traceback.format_exc()}", flush=True)
        try:
            audio_results = bench_audio(bench, flac, audio_seconds, runs)
        except Exception:
            failed = True
            print(f"AUDIO BENCHMARK FAILED\n{traceback.format_exc()}", flush=True)
        report(
            video_results, audio_results, runs=runs, audio_seconds=audio_seconds, quick=args.quick
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
