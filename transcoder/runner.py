"""Running ffprobe/ffmpeg as untrusted work: time, CPU and memory limits, bounded output.

Every process gets its own process group (so a timeout kills it and anything it started),
RLIMIT_CPU and RLIMIT_AS, a wall-clock deadline, and readers that drain stdout and stderr
into bounded buffers, so a chatty ffmpeg can neither block on a full pipe nor fill memory.

The limits are set before the program starts, by util-linux's ``prlimit`` running it, and
``setpriv --pdeathsig KILL`` makes the kernel kill it when the thread that started it dies: a
worker killed with SIGKILL leaves no ffmpeg behind (ffmpeg ignores the SIGPIPE it would get).
Where those tools are missing, the limits are set from here right after the spawn.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

from .errors import TranscodeFailed
from .settings import Limits

STDERR_HEAD = 4 * 1024
STDERR_TAIL = 64 * 1024
STDOUT_MAX = 8 * 1024 * 1024
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Budget:
    """What one process may spend: wall-clock seconds, CPU seconds, bytes of address space."""

    timeout: float
    cpu_seconds: int
    memory_bytes: int

    @classmethod
    def for_duration(cls, limits: Limits, duration: float) -> Budget:
        """Budget for processing ``duration`` seconds of media under ``limits``."""
        return cls(
            timeout=max(limits.min_timeout, duration * limits.timeout_factor),
            cpu_seconds=int(max(limits.cpu_seconds, duration * limits.cpu_factor)),
            memory_bytes=limits.memory_bytes,
        )


@dataclass(frozen=True)
class Job:
    """One command to run; ``duration`` (seconds of media) turns ``-progress`` into a fraction."""

    argv: Sequence[str]
    budget: Budget
    duration: float | None = None
    capture_stdout: bool = False


@dataclass
class Completed:
    """How a process ended: return code, captured stdout (if asked) and the ends of stderr.

    ``stopped`` means it was killed because another command of the same batch failed.
    """

    returncode: int
    stdout: bytes = b""
    stderr: str = ""
    stdout_overflow: bool = False
    stopped: bool = False


@dataclass
class _Running:
    job: Job
    process: subprocess.Popen[bytes]
    deadline: float
    readers: list[threading.Thread] = field(default_factory=list)
    stdout: bytearray = field(default_factory=bytearray)
    stdout_overflow: bool = False
    stderr_head: bytearray = field(default_factory=bytearray)
    stderr_tail: deque[bytes] = field(default_factory=deque)
    stderr_tail_size: int = 0
    timed_out: bool = False
    stopped: bool = False


def _drain_stderr(running: _Running, pipe: IO[bytes]) -> None:
    for chunk in iter(lambda: pipe.read1(8192), b""):  # type: ignore[attr-defined]
        room = STDERR_HEAD - len(running.stderr_head)
        if room > 0:
            running.stderr_head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            running.stderr_tail.append(chunk)
            running.stderr_tail_size += len(chunk)
            while running.stderr_tail_size - len(running.stderr_tail[0]) >= STDERR_TAIL:
                running.stderr_tail_size -= len(running.stderr_tail.popleft())


def _drain_stdout(
    running: _Running, pipe: IO[bytes], index: int, events: queue.Queue[tuple[int, float]]
) -> None:
    duration = running.job.duration
    for line in pipe:
        if running.job.capture_stdout:
            if len(running.stdout) + len(line) > STDOUT_MAX:
                running.stdout_overflow = True
            else:
                running.stdout += line
            continue
        if duration and line.startswith(b"out_time_us="):
            try:
                micros = int(line.split(b"=", 1)[1])
            except ValueError:
                continue  # "N/A" before the first frame is out
            events.put((index, min(1.0, max(0.0, micros / 1e6 / duration))))
        elif line.startswith(b"progress=end"):
            events.put((index, 1.0))


def _stderr_text(running: _Running) -> str:
    head = bytes(running.stderr_head)
    tail = b"".join(running.stderr_tail)
    joined = head + (b"\n[...]\n" if running.stderr_tail_size > STDERR_TAIL else b"") + tail
    return joined.decode("utf-8", "replace")


def _limit(pid: int, budget: Budget) -> None:
    # Set from the parent right after the spawn: preexec_fn is unsafe in a threaded program
    # (and the job worker is one). The child is still loading its shared libraries then, long
    # before it opens the input.
    try:
        resource.prlimit(pid, resource.RLIMIT_CPU, (budget.cpu_seconds, budget.cpu_seconds + 5))
        resource.prlimit(pid, resource.RLIMIT_AS, (budget.memory_bytes, budget.memory_bytes))
    except ProcessLookupError:
        pass  # already finished: nothing left to limit


def _wrapped(argv: Sequence[str], budget: Budget) -> tuple[list[str], bool]:
    """``argv`` run under its limits and tied to our life; True when the wrapper sets the limits."""
    prlimit, setpriv = shutil.which("prlimit"), shutil.which("setpriv")
    if prlimit is None or setpriv is None:
        return list(argv), False
    limits = [
        f"--cpu={budget.cpu_seconds}:{budget.cpu_seconds + 5}",
        f"--as={budget.memory_bytes}:{budget.memory_bytes}",
    ]
    return [prlimit, *limits, "--", setpriv, "--pdeathsig", "KILL", "--", *argv], True


def _kill(running: _Running) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(running.process.pid, signal.SIGKILL)


class Runner:
    """Runs commands under budgets and reports their combined progress."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def run(self, job: Job, progress: Callable[[float], None] | None = None) -> Completed:
        """Run one command; see ``run_all``."""
        return self.run_all([job], progress)[0]

    def run_all(
        self, jobs: Sequence[Job], progress: Callable[[float], None] | None = None
    ) -> list[Completed]:
        """Run commands in parallel and wait for all of them.

        ``progress`` gets the mean fraction done, on the calling thread, at least every
        ``POLL_SECONDS`` (the same fraction again when nothing moved). When one command
        fails the others are stopped. Raises TranscodeFailed when a command cannot start or
        overruns its wall-clock budget; other failures are returned for the caller to judge.
        """
        events: queue.Queue[tuple[int, float]] = queue.Queue()
        started: list[_Running] = []
        try:
            for index, job in enumerate(jobs):
                started.append(self._start(job, index, events))
            self._wait(started, events, progress)
        finally:
            for running in started:
                if running.process.poll() is None:
                    _kill(running)
                    running.process.wait()
                for reader in running.readers:
                    reader.join(timeout=5)
                for pipe in (running.process.stdout, running.process.stderr):
                    if pipe is not None:
                        pipe.close()
        results = [
            Completed(
                returncode=running.process.returncode,
                stdout=bytes(running.stdout),
                stderr=_stderr_text(running),
                stdout_overflow=running.stdout_overflow,
                stopped=running.stopped,
            )
            for running in started
        ]
        for running, result in zip(started, results, strict=True):
            if running.timed_out:
                self.logger.warning(
                    "ffmpeg timed out after %.0f s: %s\n%s",
                    running.job.budget.timeout,
                    " ".join(running.job.argv),
                    result.stderr[-4000:],
                )
                raise TranscodeFailed("Processing took longer than allowed and was stopped.")
        return results

    def _start(self, job: Job, index: int, events: queue.Queue[tuple[int, float]]) -> _Running:
        self.logger.debug("running %s", " ".join(job.argv))
        # The wrappers would report a missing program as an exit code; say it plainly here.
        if shutil.which(job.argv[0]) is None:
            self.logger.error("cannot start %s: not found", job.argv[0])
            raise TranscodeFailed("The media processor could not be started.")
        argv, limited = _wrapped(job.argv, job.budget)
        try:
            # The argv is a list built by commands.py; no shell ever parses it.
            process = subprocess.Popen(  # noqa: S603 - an argument list, never a shell
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                close_fds=True,
                process_group=0,
            )
        except OSError as exc:
            self.logger.error("cannot start %s: %s", job.argv[0], exc)
            raise TranscodeFailed("The media processor could not be started.") from exc
        if not limited:
            _limit(process.pid, job.budget)
        running = _Running(job, process, time.monotonic() + job.budget.timeout)
        assert process.stdout is not None and process.stderr is not None
        running.readers = [
            threading.Thread(
                target=_drain_stdout, args=(running, process.stdout, index, events), daemon=True
            ),
            threading.Thread(target=_drain_stderr, args=(running, process.stderr), daemon=True),
        ]
        for reader in running.readers:
            reader.start()
        return running

    def _wait(
        self,
        started: list[_Running],
        events: queue.Queue[tuple[int, float]],
        progress: Callable[[float], None] | None,
    ) -> None:
        fractions = [0.0] * len(started)
        pending = list(started)
        while pending:
            try:
                index, fraction = events.get(timeout=POLL_SECONDS)
                if fraction > fractions[index]:
                    fractions[index] = fraction
                    if progress is not None:
                        progress(sum(fractions) / len(fractions))
            except queue.Empty:
                # ffmpeg's own report can stall for minutes while an output that sees few
                # frames (a poster grab over an hour) holds its time back: the caller still
                # gets a call every POLL_SECONDS, to look at the files being written.
                if progress is not None:
                    progress(sum(fractions) / len(fractions))
            now = time.monotonic()
            for running in list(pending):
                code = running.process.poll()
                if code is None and now > running.deadline:
                    running.timed_out = True
                    _kill(running)
                    running.process.wait()
                    code = running.process.returncode
                if code is not None:
                    pending.remove(running)
                    if code != 0:
                        # One failed rung dooms the result; spare the others' CPU.
                        for other in pending:
                            other.stopped = True
                            _kill(other)
