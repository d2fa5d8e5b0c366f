"""Scratch folders: where a job keeps its temp files, and the sweep of what no one owns.

Each job works in one folder under the temp dir, and every temp file of the job lives there:
the original fetched from S3, ffmpeg's raw frames (poster, storyboard), the HLS before it is
published. Its owner holds an ``flock`` on a file inside it for as long as it works. A process
killed with SIGKILL cleans nothing up, but the kernel releases its locks: a folder no one holds
belongs to no running job, and ``sweep`` removes it.

A job's folder is named after it (``j{id}-``) and its owner file names the lease holder
(``leases.holder_name``) of the attempt. The sweepers of the jobs (``sweeper.sweep_temp``) pass
a ``keep`` rule: a folder whose attempt still holds a live lease is kept even when no one holds
its lock (its process is not dead for the jobs table yet), so that what one machine's sweeper
removes is only what the table has given up on.

Several processes may share a data dir (`cite-live serve` and `cite-live worker` on one machine).
A folder is made and locked while its maker holds the temp dir's own lock shared, and ``sweep``
takes that lock exclusively: it never finds a folder made but not yet locked.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# In the temp dir: the lock that makers share and the sweep takes alone.
ROOT_LOCK = ".lock"
# In each folder: the lock its owner holds while it works there.
OWNER_LOCK = ".owner"
_JOB_FOLDER = re.compile(r"j([0-9]{1,18})-")
# (folder name, its owner as written in it) → True to keep an unheld folder.
Keep = Callable[[str, str], bool]


@contextmanager
def _locked(path: Path, operation: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield fd
    finally:
        os.close(fd)


@contextmanager
def folder(root: Path, prefix: str, owner: str = "") -> Iterator[Path]:
    """A new folder under ``root``, held by this thread until the block ends, then removed;
    ``owner`` (a lease holder) is written in it for the sweepers."""
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ROOT_LOCK, fcntl.LOCK_SH):
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        try:
            # Never waits: the folder is new, and a sweep cannot run while we share its lock.
            # Not inherited by ffmpeg (close-on-exec): the lock ends with this process.
            lock = os.open(path / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(lock, owner.encode())
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
    try:
        yield path
    finally:
        # Removed while still held, so that no sweep works on it at the same time.
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)


def _held(path: Path) -> bool:
    try:
        fd = os.open(path / OWNER_LOCK, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False  # no owner ever locked it (made before this scheme, or not a folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def owner_of(path: Path) -> str:
    """The owner written in a folder ("" when none was)."""
    try:
        return (path / OWNER_LOCK).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def job_of(name: str) -> int | None:
    """The job a folder belongs to, by its name (``for_job``'s); None for any other."""
    match = _JOB_FOLDER.match(name)
    return int(match.group(1)) if match else None


def sweep(root: Path, prefix: str = "", keep: Keep | None = None) -> list[str]:
    """Remove what under ``root`` (whose name starts with ``prefix``) no live owner holds and
    ``keep`` does not keep; return the names removed."""
    if not root.is_dir():
        return []
    removed = []
    with _locked(root / ROOT_LOCK, fcntl.LOCK_EX):
        for entry in os.scandir(root):
            if entry.name == ROOT_LOCK or not entry.name.startswith(prefix):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if _held(path) or (keep is not None and keep(entry.name, owner_of(path))):
                    continue
                shutil.rmtree(path, ignore_errors=True)
            else:
                with suppress(FileNotFoundError):
                    path.unlink()
            removed.append(entry.name)
    return sorted(removed)


@contextmanager
def for_job(root: Path, job_id: int, holder: str = "") -> Iterator[Path]:
    """The folder of the attempt of job ``job_id`` that ``holder`` leases, after removing what
    a killed attempt of the same job left on this machine (its lease is gone: this attempt
    claimed the job; a process still alive holds its own folder)."""
    sweep(root, prefix=f"j{job_id}-")
    with folder(root, prefix=f"j{job_id}-", owner=holder) as directory:
        yield directory
