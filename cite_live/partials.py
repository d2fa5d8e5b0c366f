"""The partial file of an upload, and how a request body is appended to it.

One request at a time writes a partial file: it holds an ``flock`` on it (which works across the
processes of one machine) while it writes, moves or removes it. A body reaches the file in
batches written from a worker thread, so that the event loop is never held by the disk; the
file is synced before the new offset is recorded, and recorded before it is acknowledged.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request

# Body bytes are gathered into batches of this size before a worker thread writes them.
BATCH = 1024 * 1024
# ... or of this many chunks (a client trickling tiny chunks), within the kernel's IOV_MAX.
MAX_PENDING_CHUNKS = 512
# A long PATCH (a browser sending a whole file in one request) syncs and records its offset
# every CHECKPOINT bytes, so that a crashed server loses at most this much of it.
CHECKPOINT = 64 * 1024 * 1024
# A PATCH whose client sends nothing for this long is ended, keeping what it sent: a
# connection that died silently must not hold the upload's lock for hours.
IDLE_SECONDS = 60.0
CHECKSUM_ALGORITHMS = ("sha1", "sha256", "md5")
# A PATCH holding its upload's row lease (cite_live.uploads) renews it this often while bytes
# come; the lease outlasts IDLE_SECONDS plus this, so a writer that is alive never loses it.
RENEW_SECONDS = 10.0


class UploadBusy(Exception):
    """Another request is writing to (or moving) this upload's file right now."""


class PartialFile:
    """The received bytes of one upload, open for appending and locked against other writers."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> PartialFile:
        """Open and lock ``path``; UploadBusy if another request holds it, FileNotFoundError
        if it is gone (moved to the store, removed) and ``create`` is false."""
        flags = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UploadBusy(str(path)) from None
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def write(self, chunks: Sequence[bytes]) -> None:
        """Append ``chunks`` in order (gathered by the kernel: no copy here)."""
        start = os.lseek(self.fd, 0, os.SEEK_END)
        size = sum(len(chunk) for chunk in chunks)
        written = os.writev(self.fd, chunks)
        if written < size:
            # A short write (rare for a file: a full disk raises instead): write the rest.
            rest = memoryview(b"".join(chunks))[written:]
            while rest:
                rest = rest[os.write(self.fd, rest) :]
        # Start writing these pages out now, without waiting (Linux begins writeback of dirty
        # pages on this advice): the disk works while the rest of the body arrives, and the sync
        # before the acknowledgement has less left to do. The pages also leave the page cache
        # once written, so a 2 GB upload does not push everything else out of it.
        os.posix_fadvise(self.fd, start, size, os.POSIX_FADV_DONTNEED)

    def sync(self) -> None:
        os.fsync(self.fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self.fd, size)
        os.fsync(self.fd)

    def close(self) -> None:
        if self.fd >= 0:
            # Closing the last descriptor releases the lock.
            os.close(self.fd)
            self.fd = -1


class Hash(Protocol):
    @property
    def digest_size(self) -> int: ...

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class Checksum:
    """What a chunk's bytes must hash to (tus Upload-Checksum)."""

    algorithm: str
    digest: bytes

    def new(self) -> Hash:
        return hashlib.new(self.algorithm)


@dataclass(frozen=True)
class Appended:
    """What became of a body: the upload's durable offset afterwards, and why it stopped."""

    offset: int
    # When the recorded offset last moved, the upload's new expiry.
    expires: datetime | None = None
    checksum_mismatch: bool = False
    idle: bool = False


class Appender:
    """Appends one request body to a locked partial file that holds ``start`` bytes.

    ``record(offset)`` stores the durable offset (and returns the new expiry); it is called
    only after an fsync that covers it. A chunk with a checksum counts only once verified:
    until then it is not recorded, and if it does not match (or arrives cut) it is cut off.
    ``renew()``, when given, is called every RENEW_SECONDS while bytes come (it keeps the
    upload's row lease); ``checkpoint`` replaces CHECKPOINT.
    """

    def __init__(
        self,
        partial: PartialFile,
        start: int,
        length: int,
        checksum: Checksum | None,
        record: Callable[[int], datetime],
        renew: Callable[[], None] | None = None,
        checkpoint: int | None = None,
    ) -> None:
        self.partial = partial
        self.renew = renew
        self.checkpoint = checkpoint if checkpoint is not None else CHECKPOINT
        self.start = self.written = self.recorded = start
        self.room = length - start
        self.checksum = checksum
        self.hasher = checksum.new() if checksum else None
        self.record = record
        self.expires: datetime | None = None
        # Received chunks not yet written, and their size.
        self.pending: list[bytes] = []
        self.pending_size = 0

    async def run(self, request: Request) -> Appended:
        settled = False
        cut = idle = False
        try:
            try:
                await self._take(request)
            except ClientDisconnect:
                cut = True
            except TimeoutError:
                cut = idle = True
            await self._flush()
            appended = await run_in_threadpool(self._settle, cut)
            settled = True
            return Appended(appended.offset, self.expires, appended.checksum_mismatch, idle)
        finally:
            if not settled:
                # Cancelled (the server is stopping): keep what arrived, without awaiting.
                if self.pending:
                    self._write(self.pending)
                    self.written += self.pending_size
                self._settle(cut=True)

    async def _take(self, request: Request) -> None:
        taken = 0
        loop = asyncio.get_running_loop()
        # One deadline for the whole body, moved forward as data comes (at most once a second:
        # chunks come by the thousand, and a timer per chunk would cost more than the chunk).
        async with asyncio.timeout(IDLE_SECONDS) as idle:
            moved = renewed = loop.time()
            async for chunk in request.stream():
                now = loop.time()
                if now - moved >= 1.0:
                    idle.reschedule(now + IDLE_SECONDS)
                    moved = now
                if self.renew is not None and now - renewed >= RENEW_SECONDS:
                    renewed = now
                    await run_in_threadpool(self.renew)
                if not chunk:
                    continue
                if taken + len(chunk) > self.room:
                    # Past the upload's length (a body without Content-Length): the rest is
                    # not read, as tusd does.
                    chunk = chunk[: self.room - taken]
                self.pending.append(chunk)
                self.pending_size += len(chunk)
                taken += len(chunk)
                if self.pending_size >= BATCH or len(self.pending) >= MAX_PENDING_CHUNKS:
                    # The deadline is for the client only: a slow disk must not cut a write
                    # in the middle (the thread would go on writing after we gave up on it).
                    idle.reschedule(None)
                    await self._flush()
                    if self.hasher is None and self.written - self.recorded >= self.checkpoint:
                        await run_in_threadpool(self._sync_and_record)
                    moved = loop.time()
                    idle.reschedule(moved + IDLE_SECONDS)
                if taken >= self.room:
                    return

    def _write(self, chunks: list[bytes]) -> None:
        if self.hasher is not None:
            for chunk in chunks:
                self.hasher.update(chunk)
        self.partial.write(chunks)

    async def _flush(self) -> None:
        if self.pending:
            chunks, size = self.pending, self.pending_size
            self.pending, self.pending_size = [], 0
            await run_in_threadpool(self._write, chunks)
            self.written += size

    def _sync_and_record(self) -> None:
        self.partial.sync()
        if self.written != self.recorded:
            self.expires = self.record(self.written)
            self.recorded = self.written

    def _settle(self, cut: bool) -> Appended:
        verified = self.checksum is None or (
            not cut and self.hasher is not None and self.hasher.digest() == self.checksum.digest
        )
        if not verified:
            self.partial.truncate(self.start)
            self.written = self.start
            return Appended(self.start, checksum_mismatch=not cut)
        self._sync_and_record()
        return Appended(self.written)
