"""Quality per bit of each rung of the video ladder; figures go in BENCHMARKS.md.

    PYTHONPATH=. .venv/bin/python bench/quality.py [--compare] [--quick] [--seconds N]
        [--cache-dir DIR]

Two 1080p30 sources, generated once into the cache dir (``bench/.cache`` by default):

- the test card of bench/transcode.py (moving ``testsrc2``, light grain, x264 CRF 18 under a
  20 Mb/s cap): a rich source, whose ladder the source's bitrate never limits;
- a stage capture (tests/media.py ``stage_capture``: shifting coloured wash on a textured
  backdrop, two performers, a follow spot, breathing light, a sensor's grain) at a camera's
  3.8 Mb/s, the kind of source that got a 1080p rung at 4.4 Mb/s.

Each is transcoded with ``Transcoder.transcode``; then for each video rung: the kb/s a player
downloads (its segments' bytes over their durations), its bits per pixel, and SSIM and PSNR of
the rung (its init segment and media segments joined) against the source scaled to the rung's
size with the pipeline's own scaler (ffmpeg's ``scale``, bicubic), by ffmpeg's ``ssim`` and
``psnr`` filters, frame by frame over the whole clip.

``--compare`` transcodes each source a second time with its bitrate withheld from the ladder:
the ladder as it was before it knew the source's bitrate, so the report shows what the cap
costs (quality) and buys (bits). Run it before and after an encoder setting changes to see the
same. ``--quick`` (4 s clips) is a smoke test; its figures mean little.

The checkout's root must be on the path (``PYTHONPATH=.``): this imports its ``transcoder``
and ``tests/media.py``. Outputs go to a temp dir removed at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transcode import machine_lines, video_source

from cite_live.demo.media import build_once
from tests.media import stage_capture
from transcoder import Transcoder, TranscoderSettings
from transcoder.ladder import SOURCE_MARGIN
from transcoder.probe import MediaInfo

SECONDS, QUICK_SECONDS = 20, 4
STAGE_BITRATE = 3_800_000
PLAYLIST = "index.m3u8"
_SSIM = re.compile(r"SSIM Y:([\d.]+) .*All:([\d.]+) \(([\d.]+|inf)\)")
_PSNR = re.compile(r"PSNR y:([\d.]+|inf) .*average:([\d.]+|inf)")


# --- sources ------------------------------------------------------------------------------


def stage_source(cache: Path, seconds: int) -> Path:
    """The stage capture at ``STAGE_BITRATE``, built once into ``cache``."""
    name = f"stage-1920x1080p30-{seconds}s-{STAGE_BITRATE // 1000}k.mp4"

    def builder(directory: Path) -> Path:
        print(f"generating {name} ...", flush=True)
        return stage_capture(directory / name, seconds, STAGE_BITRATE)

    return build_once(name, cache, builder)


# --- measures -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Quality:
    """SSIM (luma, all planes, all planes in dB) and PSNR (luma, average) in dB."""

    ssim_y: float
    ssim: float
    ssim_db: float
    psnr_y: float
    psnr: float


@dataclass(frozen=True)
class RungFigures:
    """One rung as measured: what the ladder planned and what the player gets for it."""

    name: str
    width: int
    height: int
    maxrate: int
    kbps: float
    bpp: float
    quality: Quality


@dataclass
class LadderRun:
    """One transcode of one source, and its rungs' figures."""

    source: str
    ladder: str
    source_kbps: float | None
    seconds: float
    rungs: list[RungFigures] = field(default_factory=list)


def _number(text: str) -> float:
    return float("inf") if text == "inf" else float(text)


def rendition_bits(folder: Path) -> tuple[int, float, list[Path]]:
    """Bytes of media segments, their total duration and the files in play order (init first)."""
    size, seconds, files = 0, 0.0, [folder / "init.mp4"]
    duration: float | None = None
    for line in (folder / PLAYLIST).read_text().splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            files.append(folder / line)
            size += (folder / line).stat().st_size
            seconds += duration
            duration = None
    return size, seconds, files


def measure_quality(ffmpeg: str, rendition: Path, source: Path, width: int, height: int) -> Quality:
    """SSIM and PSNR of ``rendition`` against ``source`` scaled to its size, frame by frame.

    Both start at zero (an HLS rendition may carry an offset); the reference is scaled like the
    pipeline scales (``scale``, bicubic) so only the encoding's loss is measured.
    """
    graph = ";".join(
        [
            "[0:v]setpts=PTS-STARTPTS,split[d0][d1]",
            f"[1:v]scale={width}:{height}:flags=bicubic,format=yuv420p,setpts=PTS-STARTPTS,"
            "split[r0][r1]",
            "[d0][r0]ssim[s]",
            "[d1][r1]psnr[p]",
        ]
    )
    argv = [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "info", "-i", str(rendition),
        "-i", str(source), "-filter_complex", graph,
        "-map", "[s]", "-f", "null", "-", "-map", "[p]", "-f", "null", "-",
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    ssim, psnr = _SSIM.search(result.stderr), _PSNR.search(result.stderr)
    if result.returncode != 0 or ssim is None or psnr is None:
        raise RuntimeError(f"quality measure failed: {' '.join(argv)}\n{result.stderr[-3000:]}")
    return Quality(
        ssim_y=float(ssim.group(1)),
        ssim=float(ssim.group(2)),
        ssim_db=_number(ssim.group(3)),
        psnr_y=_number(psnr.group(1)),
        psnr=_number(psnr.group(2)),
    )


class Bench:
    """Transcodes sources into a scratch dir and measures their rungs."""

    def __init__(self, settings: TranscoderSettings, scratch: Path) -> None:
        self.settings = settings
        self.scratch = scratch
        self.logger = logging.getLogger("bench.quality")
        self.count = 0
        # Rungs encoded alike in two runs (a cap that does not bind) are measured once.
        self.measured: dict[tuple[str, str], Quality] = {}

    def run(self, label: str, source: Path, *, withhold_bitrate: bool) -> LadderRun:
        """Transcode ``source`` (its bitrate hidden from the ladder if asked) and measure it."""
        self.count += 1
        out = self.scratch / f"out-{self.count}"
        transcoder = Transcoder(self.settings, logger=self.logger)
        info: MediaInfo = transcoder.probe(source)
        source_kbps = info.video_bitrate / 1000 if info.video_bitrate else None
        if withhold_bitrate:
            info.video_bitrate = None
        ladder = "bitrate withheld" if withhold_bitrate else "capped at the source"
        started = time.perf_counter()
        result = transcoder.transcode(source, out, info)
        print(f"{label}, {ladder}: transcoded in {time.perf_counter() - started:.1f} s", flush=True)
        run = LadderRun(label, ladder, source_kbps, info.duration)
        for rendition in result.renditions:
            if rendition.kind != "video" or rendition.width is None or rendition.height is None:
                continue
            folder = out / rendition.name
            size, seconds, files = rendition_bits(folder)
            joined = self.scratch / f"{rendition.name}-{self.count}.mp4"
            with joined.open("wb") as whole:
                for part in files:
                    whole.write(part.read_bytes())
            digest = hashlib.sha256(joined.read_bytes()).hexdigest()
            key = (str(source), digest)
            if key not in self.measured:
                self.measured[key] = measure_quality(
                    self.settings.ffmpeg, joined, source, rendition.width, rendition.height
                )
            joined.unlink()
            fps = rendition.fps or 30.0
            bits_per_second = size * 8 / seconds
            figures = RungFigures(
                name=rendition.name,
                width=rendition.width,
                height=rendition.height,
                maxrate=rendition.bitrate,
                kbps=bits_per_second / 1000,
                bpp=bits_per_second / (rendition.width * rendition.height * fps),
                quality=self.measured[key],
            )
            run.rungs.append(figures)
            print(
                f"  {figures.name:6} {figures.width}x{figures.height} cap "
                f"{figures.maxrate / 1000:6.0f} kb/s, spent {figures.kbps:6.0f} kb/s, "
                f"SSIM {figures.quality.ssim:.4f}, PSNR {figures.quality.psnr:.2f} dB",
                flush=True,
            )
        return run


# --- report -------------------------------------------------------------------------------


def table(runs: Sequence[LadderRun]) -> list[str]:
    """The Markdown table of every rung of every run."""
    lines = [
        "| source | ladder | rung | size | cap kb/s | kb/s | bits/pixel | SSIM | SSIM dB "
        "| PSNR dB | PSNR Y dB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for rung in run.rungs:
            q = rung.quality
            lines.append(
                f"| {run.source} | {run.ladder} | {rung.name} | {rung.width}×{rung.height} "
                f"| {rung.maxrate / 1000:.0f} | {rung.kbps:.0f} | {rung.bpp:.3f} "
                f"| {q.ssim:.4f} | {q.ssim_db:.2f} | {q.psnr:.2f} | {q.psnr_y:.2f} |"
            )
    return lines


def comparison(capped: LadderRun, withheld: LadderRun) -> list[str]:
    """What the cap costs and buys, rung by rung, against the ladder without it."""
    before = {rung.name: rung for rung in withheld.rungs}
    after = {rung.name: rung for rung in capped.rungs}
    lines = []
    for name, old in before.items():
        new = after.get(name)
        if new is None:
            lines.append(
                f"- {capped.source}: {name} dropped ({old.kbps:.0f} kb/s, "
                f"SSIM {old.quality.ssim:.4f} without the cap)"
            )
            continue
        if new.quality == old.quality and abs(new.kbps - old.kbps) < 0.5:
            continue
        lines.append(
            f"- {capped.source}: {name} {old.kbps:.0f} → {new.kbps:.0f} kb/s "
            f"({(new.kbps / old.kbps - 1) * 100:+.1f}%), SSIM {old.quality.ssim:.4f} → "
            f"{new.quality.ssim:.4f} ({new.quality.ssim_db - old.quality.ssim_db:+.2f} dB), "
            f"PSNR {old.quality.psnr:.2f} → {new.quality.psnr:.2f} dB"
        )
    total_old = sum(rung.kbps for rung in withheld.rungs)
    total_new = sum(rung.kbps for rung in capped.rungs)
    lines.append(
        f"- {capped.source}: whole ladder {total_old:.0f} → {total_new:.0f} kb/s "
        f"({(total_new / total_old - 1) * 100:+.1f}%) to store, "
        f"{len(withheld.rungs)} → {len(capped.rungs)} video rungs"
    )
    return lines


def report(runs: Sequence[LadderRun], compare: bool, quick: bool) -> None:
    """Each source's bitrate, the table for BENCHMARKS.md and, with ``--compare``, the deltas."""
    print("\n## Sources\n")
    seen: set[str] = set()
    for run in runs:
        if run.source in seen:
            continue
        seen.add(run.source)
        kbps = f"{run.source_kbps:.0f} kb/s" if run.source_kbps else "unknown"
        ceiling = (
            f", rungs capped at {run.source_kbps * float(SOURCE_MARGIN):.0f} kb/s"
            " (before the short-clip allowance)"
            if run.source_kbps
            else ""
        )
        print(f"- {run.source}: {run.seconds:.0f} s, picture at {kbps}{ceiling}")
    print()
    print("\n".join(table(runs)))
    if compare:
        print("\n## What the cap costs and buys\n")
        by_source: dict[str, dict[str, LadderRun]] = {}
        for run in runs:
            by_source.setdefault(run.source, {})[run.ladder] = run
        for pair in by_source.values():
            capped, withheld = pair.get("capped at the source"), pair.get("bitrate withheld")
            if capped and withheld:
                print("\n".join(comparison(capped, withheld)))
    if quick:
        print("\n--quick: smoke test on 4 s clips; these figures mean little.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="4 s sources: smoke test")
    parser.add_argument("--seconds", type=int, default=None, help=f"clip length ({SECONDS})")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="also transcode each source with its bitrate withheld from the ladder",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(__file__).resolve().parent / ".cache",
        help="where generated sources are kept between runs (default: bench/.cache)",
    )
    args = parser.parse_args(argv)
    seconds = args.seconds or (QUICK_SECONDS if args.quick else SECONDS)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        scratch = Path(tmp)
        settings = TranscoderSettings(tmp_dir=scratch)
        print("## Machine\n")
        print("\n".join(machine_lines(settings)), flush=True)
        cache = args.cache_dir.resolve()
        sources = {
            f"test card {seconds} s": video_source(cache, seconds, settings.ffmpeg),
            f"stage capture {seconds} s": stage_source(cache, seconds),
        }
        bench = Bench(settings, scratch)
        runs: list[LadderRun] = []
        print(flush=True)
        for label, source in sources.items():
            runs.append(bench.run(label, source, withhold_bitrate=False))
            if args.compare:
                runs.append(bench.run(label, source, withhold_bitrate=True))
        report(runs, args.compare, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
