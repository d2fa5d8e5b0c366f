"""Synthetic media: the one generator the demo catalogue, the tests and the benchmarks share.

Everything is made by ffmpeg from its generated sources (test patterns, gradients, tones,
expressions evaluated per sample), so nothing binary is ever checked in. The pieces are small:
``ffmpeg`` runs one quiet command and raises with its stderr; ``lavfi`` makes a generated input,
held to the ``file`` protocol like every input the product hands to ffmpeg; ``tones``,
``pattern`` and ``music_graph`` are the sources; ``build_once`` makes a named file once into a
cache folder that threads and processes may share. The demo's own command lines are in
`cite_live.demo.seed`, the tests' fixtures in `tests/media.py`, the benchmarks' sources in
`bench/`.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

FFMPEG = "ffmpeg"
ESPEAK = "espeak-ng"
QUIET = ("-nostdin", "-hide_banner", "-loglevel", "error", "-y")
SAMPLE_RATE = 48000
# The generated music holds nothing above 2 kHz: synthesising it at 16 kHz and resampling
# costs a third of evaluating the expression at 48 kHz.
SYNTH_RATE = 16000

# Marks a finished cache folder and names its main file (folder renames are atomic, but the
# marker keeps a half-copied folder from ever being mistaken for a finished one).
_DONE = ".main"


def run(command: Sequence[str], *, timeout: float | None = None) -> None:
    """Run a generating program (ffmpeg, espeak-ng); raise with the end of its stderr."""
    result = subprocess.run(  # noqa: S603 - fixed programs, arguments built by the callers
        list(command), capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{command[0]} failed ({result.returncode}): {' '.join(command[1:])}\n"
            f"{result.stderr.strip()[-2000:]}"
        )


def ffmpeg_command(*args: str, binary: str = FFMPEG) -> list[str]:
    """An ffmpeg command line that asks nothing and says only its errors."""
    return [binary, *QUIET, *args]


def ffmpeg(*args: str, binary: str = FFMPEG, timeout: float | None = None) -> None:
    """Run ffmpeg quietly with ``args``; raise with its stderr when it fails."""
    run(ffmpeg_command(*args, binary=binary), timeout=timeout)


def lavfi(graph: str) -> list[str]:
    """A generated input: our own filter graph, yet the allow-list stays on every input so that
    no graph can ever reach for a network protocol."""
    return ["-protocol_whitelist", "file", "-f", "lavfi", "-i", graph]


def tones(seconds: float, rate: int = 48000, channels: int = 2) -> list[str]:
    """An input of audible, distinct sine tones, one frequency per channel."""
    exprs = "|".join(f"0.3*sin(2*PI*{330 + 110 * i}*t)" for i in range(channels))
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[channels]
    return lavfi(f"aevalsrc=exprs={exprs}:s={rate}:d={seconds}:c={layout}")


def pattern(width: int, height: int, seconds: float, fps: int = 30) -> list[str]:
    """An input of ffmpeg's moving test pattern at exactly ``width`` x ``height``."""
    # testsrc2 silently rounds odd sizes down, so odd sizes are made by scaling an even source.
    even_w, even_h = width + width % 2, height + height % 2
    graph = f"testsrc2=size={even_w}x{even_h}:rate={fps}:duration={seconds}"
    if (even_w, even_h) != (width, height):
        graph += f",scale={width}:{height}"
    return lavfi(graph)


# --- generated music -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A stretch of generated music: where it starts (fraction of the length), key and tempo."""

    start: float
    root_hz: float
    bpm: float


def _section_expr(section: Section) -> str:
    """One piece: a plucked pentatonic melody on eighths, a bass and a kick on the beat, a pad.

    The melody is a closed form rather than a table lookup: aevalsrc evaluates the expression
    for every sample, and a chain of comparisons there costs seconds of CPU per minute of sound.
    """
    eighth, beat, root = 30 / section.bpm, 60 / section.bpm, section.root_hz
    # ld(0) = index of the eighth note; ld(1) = its degree, walking the five notes of the
    # scale a fifth at a time, an octave higher every other phrase; ld(2) = time in the beat.
    note = (
        f"(st(0\\,floor(t*{1 / eighth:.4f}))+"
        "st(1\\,floor(mod(ld(0)*3\\,5)*2.4+0.5)+12*mod(floor(ld(0)/5)\\,2))+"
        f"st(2\\,mod(t\\,{beat:.4f})))*0"
    )
    melody = f"0.22*exp(-7*mod(t\\,{eighth:.4f}))*sin(2*PI*{root:g}*pow(2\\,ld(1)/12)*t)"
    bass = f"0.18*exp(-3*ld(2))*sin(2*PI*{root / 2:g}*t)"
    kick = "0.30*exp(-30*ld(2))*sin(2*PI*58*t)"
    pad = f"0.05*sin(2*PI*{root * 1.5:g}*t)"
    return f"{note}+{melody}+{bass}+{kick}+{pad}"


def music_graph(sections: Sequence[Section], seconds: float) -> str:
    """An aevalsrc graph of generated music that changes key and tempo at each section, so the
    chapters of a setlist are heard as different pieces; mono, widened to stereo by a delay."""
    expr = _section_expr(sections[-1])
    for section, following in reversed(list(itertools.pairwise(sections))):
        end = following.start * seconds
        expr = f"if(lt(t\\,{end:.3f})\\,{_section_expr(section)}\\,{expr})"
    fade = min(1.5, seconds / 4)
    return (
        f"aevalsrc=exprs={expr}:s={SYNTH_RATE}:c=mono:d={seconds:g},aresample={SAMPLE_RATE},"
        "pan=stereo|c0=c0|c1=0.8*c0,adelay=0|15,"
        f"afade=t=in:d={fade:g},afade=t=out:st={seconds - fade:g}:d={fade:g}"
    )


def speech_command(text: str, out: Path) -> list[str]:
    """A French voice reading ``text`` into the WAV file ``out``."""
    return [ESPEAK, "-v", "fr", "-s", "160", "-w", str(out), text]


# --- a cache of generated files ------------------------------------------------------------------


def build_once(name: str, directory: Path, builder: Callable[[Path], Path]) -> Path:
    """Build ``name`` under ``directory`` once and return the path of its main file.

    ``builder`` writes its file(s) into an empty folder and returns the main one; the folder
    becomes ``directory/name/``. Safe to call from several threads or processes sharing
    ``directory``: the first builds, the others wait and reuse.
    """
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    with open(directory / f".{name}.lock", "w") as lock:
        # flock serialises both threads (each opens its own file description) and processes.
        fcntl.flock(lock, fcntl.LOCK_EX)
        marker = final / _DONE
        if marker.is_file():
            return final / marker.read_text()
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=directory))
        try:
            main = builder(staging)
            (staging / _DONE).write_text(main.relative_to(staging).as_posix())
            # A leftover of an interrupted build, or a file where an older layout kept one.
            if final.is_dir():
                shutil.rmtree(final)
            elif final.exists():
                final.unlink()
            os.replace(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return final / main.relative_to(staging)
