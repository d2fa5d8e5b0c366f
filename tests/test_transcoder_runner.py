"""Running untrusted work: deadlines, CPU and memory limits, bounded output, failure mapping."""

from __future__ import annotations

import logging
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from transcoder import Limits, TranscodeFailed, Transcoder, TranscoderSettings
from transcoder.pipeline import _failure
from transcoder.runner import STDERR_HEAD, STDERR_TAIL, Budget, Completed, Job, Runner

Media = Callable[[str], Path]
GIB = 1024**3
RUNNER = Runner(logging.getLogger("test.runner"))


def python(code: str, timeout: float = 20, cpu: int = 20, memory: int = 2 * GIB) -> Job:
    return Job([sys.executable, "-c", code], Budget(timeout, cpu, memory))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_process_over_its_deadline_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "child.pid"
    code = (
        "import subprocess, time, pathlib;"
        "p = subprocess.Popen(['sleep', '60']);"
        f"pathlib.Path({str(marker)!r}).write_text(str(p.pid));"
        "time.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(TranscodeFailed, match="took longer than allowed"):
        RUNNER.run(python(code, timeout=1.0))
    assert time.monotonic() - started < 10
    deadline = time.monotonic() + 5
    while alive(int(marker.read_text())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(int(marker.read_text()))


def test_a_worker_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL gives the worker no chance to clean up: the kernel must end what it started."""
    marker = tmp_path / "runner.pid"
    worker_code = (
        "import logging, os, pathlib, sys;"
        "from transcoder.runner import Budget, Job, Runner;"
        f"pathlib.Path({str(marker)!r}).write_text(str(os.getpid()));"
        "Runner(logging.getLogger('w')).run(Job(['sleep', '60'], Budget(120, 60, 2**31)))"
    )
    root = Path(__file__).resolve().parent.parent
    worker = subprocess.Popen([sys.executable, "-c", worker_code], cwd=root)
    try:
        deadline = time.monotonic() + 20
        children: list[int] = []
        while not children:
            assert time.monotonic() < deadline, "the worker never started its command"
            time.sleep(0.05)
            if marker.exists():
                children = children_of(int(marker.read_text()))
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in children)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def children_of(parent: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


def test_megabytes_of_output_neither_block_nor_fill_memory() -> None:
    code = (
        "import sys;"
        "sys.stdout.write('x' * 5_000_000); sys.stdout.flush();"
        "sys.stderr.write('start ' + 'e' * 5_000_000 + ' the end')"
    )
    result = RUNNER.run(python(code, timeout=30))
    assert result.returncode == 0
    assert result.stderr.startswith("start ") and result.stderr.endswith(" the end")
    assert len(result.stderr) <= STDERR_HEAD + STDERR_TAIL + 8192 + 16
    assert result.stdout == b""  # not asked for: drained and dropped


def test_captured_stdout_is_bounded() -> None:
    result = RUNNER.run(
        Job(
            [sys.executable, "-c", "print('y' * 10_000_000)"],
            Budget(30, 30, 2 * GIB),
            capture_stdout=True,
        )
    )
    assert result.stdout_overflow and len(result.stdout) <= 8 * 1024 * 1024


def test_memory_is_limited() -> None:
    code = "import time; time.sleep(0.3); b = bytearray(1024 ** 3); print(len(b))"
    result = RUNNER.run(python(code, memory=300 * 1024**2))
    assert result.returncode != 0
    assert "MemoryError" in result.stderr


def test_cpu_time_is_limited() -> None:
    started = time.monotonic()
    result = RUNNER.run(python("while True: pass", timeout=60, cpu=1))
    assert result.returncode == -signal.SIGXCPU
    assert time.monotonic() - started < 30


def test_progress_lines_become_fractions_on_the_calling_thread() -> None:
    code = (
        "import time\n"
        "for us in (250000, 500000, 'N/A', 2000000):\n"
        "    print(f'out_time_us={us}', flush=True); time.sleep(0.05)\n"
        "print('progress=end', flush=True)\n"
    )
    seen: list[float] = []
    job = Job([sys.executable, "-c", code], Budget(20, 20, 2 * GIB), duration=1.0)
    RUNNER.run(job, seen.append)
    # Besides each new fraction, the same one again whenever the command is quiet a moment.
    assert [f for n, f in enumerate(seen) if f not in seen[:n]] in (
        [0.25, 0.5, 1.0],
        [0.0, 0.25, 0.5, 1.0],
    )
    assert seen == sorted(seen)


def test_a_quiet_command_still_gives_its_caller_a_look_every_poll() -> None:
    """ffmpeg's own report can stall for minutes (an output seeing one frame in six minutes
    holds its time back): the caller, who watches the files being written, is still called."""
    seen: list[float] = []
    job = Job([sys.executable, "-c", "import time; time.sleep(1.5)"], Budget(20, 20, 2 * GIB))
    RUNNER.run(job, seen.append)
    assert len(seen) >= 4 and set(seen) == {0.0}


def test_one_failure_stops_the_parallel_jobs() -> None:
    started = time.monotonic()
    results = RUNNER.run_all(
        [python("import time; time.sleep(60)"), python("import sys; sys.exit(3)")]
    )
    assert time.monotonic() - started < 10
    assert results[1].returncode == 3 and not results[1].stopped
    assert results[0].returncode == -signal.SIGKILL and results[0].stopped


def test_missing_binary_is_a_transcode_failure() -> None:
    job = Job(["/nonexistent/ffmpeg-binary"], Budget(5, 5, GIB))
    with pytest.raises(TranscodeFailed, match="could not be started"):
        RUNNER.run(job)


def test_ffmpeg_crash_becomes_a_plain_transcode_failure(media: Media, tmp_path: Path) -> None:
    false = shutil.which("false")
    assert false is not None
    transcoder = Transcoder(TranscoderSettings(ffmpeg=false))
    with pytest.raises(TranscodeFailed) as caught:
        transcoder.transcode(media("video_no_audio"), tmp_path / "out")
    assert caught.value.message == "The video could not be converted."


def test_transcode_over_its_wall_clock_budget_fails(media: Media, tmp_path: Path) -> None:
    limits = Limits(min_timeout=0.3, timeout_factor=0.0)
    transcoder = Transcoder(TranscoderSettings(limits=limits))
    # A 1080p ladder takes seconds to encode on any machine; the audio fixtures' few seconds
    # of sound can be done within the budget on a fast one.
    source = media("video_1080p_h264_aac")
    info = Transcoder().probe(source)
    started = time.monotonic()
    with pytest.raises(TranscodeFailed, match="took longer than allowed"):
        transcoder.transcode(source, tmp_path / "out", info)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("returncode", "stderr", "words"),
    [
        (-signal.SIGXCPU, "", "computing time"),
        (-signal.SIGKILL, "", "computing time"),
        (1, "x264 [error]: malloc of size 3325760 failed\n", "more memory"),
        (1, "Error while decoding: Cannot allocate memory\n", "more memory"),
        (1, "Invalid data found when processing input\n", "could not be converted"),
    ],
)
def test_ffmpeg_exits_are_told_in_plain_words(returncode: int, stderr: str, words: str) -> None:
    completed = Completed(returncode=returncode, stderr=stderr)
    with pytest.raises(TranscodeFailed) as caught:
        _failure(completed, "video", logging.getLogger("test.runner"), ["ffmpeg"])
    assert words in caught.value.message and caught.value.message.endswith(".")
    _failure(Completed(returncode=0), "video", logging.getLogger("test.runner"), ["ffmpeg"])
