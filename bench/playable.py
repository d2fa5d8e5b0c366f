"""Time from the end of an upload to the first playable segment of every rendition.

    .venv/bin/python bench/playable.py [--minutes 60] [--runs 3] [--cache-dir DIR]

For a 60-minute 1080p30 capture (H.264 + AAC) and a 60-minute stereo FLAC, each run stores the
capture as an upload leaves it (the original in the local store, its job queued: the clock
starts there), then runs the job as a worker does (``ingest.run_transcode``) and stops the
clock when the master playlist of the growing preview is written: every rendition then has
its init segment and a first segment in the store, and the production is playable. The job is
then stopped (what follows is the rest of the transcode, timed by bench/transcode.py).

The video runs twice: cut into 60 s chunks (``jobs.chunk_seconds``, the default) and in one
pass (``jobs.chunk_seconds: 0``). Targets: video ≤ 15 s, FLAC ≤ 5 s. Baseline: before
progressive publishing nothing played until the whole transcode was published, about
50 minutes for the video at 1.2× realtime (BENCHMARKS.md, "Transcoding").

The 60-minute video is bench/transcode.py's 60 s source (with grain) at a camera's 6 Mb/s,
joined end to end by stream copy, so it costs a minute to make. Sources are cached in the cache dir.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from harness import cpu_model, load_average
from transcode import audio_source, video_source

from cite_live.demo.media import build_once
from cite_live.demo.media import ffmpeg as generate
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.services import open_services
from cite_live.settings import load_settings
from cite_live.storage import LocalStore

TARGET_VIDEO = 15.0
TARGET_AUDIO = 5.0


class Playable(Exception):
    """Raised from the store once the preview's master is written: the clock stops there."""


class ClockedStore(LocalStore):
    """A local store that stops the run when the growing master playlist is written."""

    def __init__(self, root: Path, started: Callable[[], float]) -> None:
        super().__init__(root)
        self.started = started
        self.seconds: float | None = None

    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        super().put_bytes(key, data, cache_control=cache_control)
        if cache_control and key.endswith("/master.m3u8") and self.seconds is None:
            self.seconds = time.monotonic() - self.started()
            raise Playable


def long_video(cache: Path, minutes: int) -> Path:
    """``minutes`` of 1080p at 6 Mb/s, a camera's rate (2.7 GB an hour, under the 8 GiB
    limit, where the 20 Mb/s transcode benchmark source would be 9 GB)."""
    source = video_source(cache, 60, "ffmpeg")

    def minute(directory: Path) -> Path:
        target = directory / "video-1080p-6M-60s.mp4"
        generate(
            *["-i", str(source.resolve()), "-c:v", "libx264", "-preset", "veryfast"],
            *["-b:v", "6M", "-maxrate", "8M", "-bufsize", "12M", "-g", "60"],
            *["-c:a", "copy", "-movflags", "+faststart", str(target)],
        )
        return target

    piece = build_once("video-1080p-6M-60s", cache, minute).resolve()

    def build(directory: Path) -> Path:
        listing = directory / "pieces.txt"
        listing.write_text(f"file '{piece}'\n" * minutes, encoding="utf-8")
        target = directory / f"video-1080p-{minutes}min.mp4"
        print(f"joining {minutes} copies of {piece.name} ...", flush=True)
        generate(
            *["-f", "concat", "-safe", "0", "-i", str(listing.resolve()), "-c", "copy"],
            *["-movflags", "+faststart", str(target)],
        )
        return target

    return build_once(f"video-1080p-{minutes}min", cache, build)


def first_playable(source: Path, chunk_seconds: int) -> float:
    """Seconds from a queued job to the preview's master, for one fresh installation."""
    with tempfile.TemporaryDirectory(prefix="bench-playable-") as tmp:
        data = Path(tmp)
        settings = load_settings(
            {
                "CITE_LIVE_DATA_DIR": str(data / "data"),
                "CITE_LIVE_DATABASE_URL": f"sqlite:///{data / 'site.db'}",
                "CITE_LIVE_JOBS_CHUNK_SECONDS": str(chunk_seconds),
            }
        )
        services = open_services(settings)
        start = [0.0]
        try:
            assert isinstance(services.store, LocalStore)
            store = services.store = ClockedStore(services.store.root, lambda: start[0])
            _production, job_id = submit_file(services, source)
            start[0] = time.monotonic()
            with contextlib.suppress(Playable):
                run_transcode(services, job_id)
            if store.seconds is None:
                raise SystemExit(f"{source.name}: the preview was never published")
            return store.seconds
        finally:
            # Chunks handed to the queue wait for nobody: this process has no workers.
            services.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path(__file__).parent / ".cache")
    args = parser.parse_args(argv)
    # Each run stops its job on purpose once playable: the job's warnings say so at length.
    logging.getLogger("cite_live").setLevel(logging.CRITICAL)
    video = long_video(args.cache_dir, args.minutes)
    flac = audio_source(args.cache_dir, args.minutes * 60, "ffmpeg")
    print(f"CPU: {cpu_model()}; load {load_average()}", flush=True)
    cases = [
        (f"{args.minutes}-minute 1080p video, 60 s chunks", video, 60, TARGET_VIDEO),
        (f"{args.minutes}-minute 1080p video, one pass", video, 0, TARGET_VIDEO),
        (f"{args.minutes}-minute FLAC", flac, 60, TARGET_AUDIO),
    ]
    rows = []
    for label, source, chunk_seconds, target in cases:
        times = []
        for run in range(args.runs):
            seconds = first_playable(source, chunk_seconds)
            print(f"{label}: run {run + 1}: {seconds:.2f} s", flush=True)
            times.append(seconds)
        median = statistics.median(times)
        verdict = "met" if median <= target else "MISSED"
        rows.append(f"| {label} | {median:.1f} s | ≤ {target:.0f} s | {verdict} |")
    print("\n| capture | first playable (median) | target | |\n|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nload after: {load_average()}")
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
