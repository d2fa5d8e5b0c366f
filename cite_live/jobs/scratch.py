"""Scratch folders: where a job keeps its temp files, and the sweep of what no one owns.

Each job works in one folder under the temp dir, and every temp file of the job lives there:
the original fetched from S3, ffmpeg's raw frames (poster, storyboard), the HLS before it is
published. Its owner holds an ``flock`` on a file inside it for as long as it works. A process
killed with SIGKILL cleans nothing up, but the kernel releases its locks: a folder no one holds
belongs to no running job, and ``sweep`` removes it.

Several processes may share a data dir (`cite-live serve` and `cite-live worker` on one machine).
A folder is made and locked while its maker holds the temp dir's own lock shared, and ``sweep``
takes that lock exclusively: it never finds a folder made but not yet locked.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

# In the temp dir: the lock that makers share and the sweep takes alone.
ROOT_LOCK = ".lock"
# In each folder: the lock its owner holds while it works there.
OWNER_LOCK = ".owner"


@contextmanager
def _locked(path: Path, operation: int) -> Iterator[int]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, operation)
        yield fd
    finally:
        os.close(fd)


@contextmanager
def folder(root: Path, prefix: str) -> Iterator[Path]:
    """A new folder under ``root``, held by this thread until the block ends, then removed."""
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / ROOT_LOCK, fcntl.LOCK_SH):
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
        try:
            # Never waits: the folder is new, and a sweep cannot run while we share its lock.
            # Not inherited by ffmpeg (close-on-exec): the lock ends with this process.
            owner = os.open(path / OWNER_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
    try:
        yield path
    finally:
        # Removed while still held, so that no sweep works on it at the same time.
        shutil.rmtree(path, ignore_errors=True)
        os.close(owner)


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


def sweep(root: Path, prefix: str = "") -> list[str]:
    """Remove what under ``root`` (whose name starts with ``prefix``) no live owner holds;
    return the names removed."""
    if not root.is_dir():
        return []
    removed = []
    with _locked(root / ROOT_LOCK, fcntl.LOCK_EX):
        for entry in os.scandir(root):
            if entry.name == ROOT_LOCK or not entry.name.startswith(prefix):
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if _held(path):
                    continue
                shutil.rmtree(path, ignore_errors=True)
            else:
                with suppress(FileNotFoundError):
                    path.unlink()
            removed.append(entry.name)
    return sorted(removed)


@contextmanager
def for_job(root: Path, job_id: int) -> Iterator[Path]:
    """The folder of one attempt of job ``job_id``, after removing what a killed attempt of the
    same job left on this machine (a process that is still alive holds its own)."""
    sweep(root, prefix=f"j{job_id}-")
    with folder(root, prefix=f"j{job_id}-") as directory:
        yield directory
