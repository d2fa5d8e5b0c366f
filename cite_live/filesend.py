"""Sending a file over raw ASGI the way a file server does: validators (ETag, Last-Modified),
conditional requests (``If-None-Match``, ``If-Modified-Since``, ``If-Range``), one byte range
(``Range``), ``HEAD``, and the body in as few messages as memory allows.

Why not Starlette's ``FileResponse``: it opens, reads and closes the file in 64 KiB steps, each a
hop to the shared threadpool, behind the whole middleware stack. A segment of 1-2 MB is read here
in one read on a small thread pool of its own (so that a slow disk never stalls the event loop,
and page renders never queue media behind them) and handed to the server in one message; files
larger than ``CHUNK`` (downloads) go out a chunk at a time, stopping when the client hangs up.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate, parsedate_to_datetime

import anyio
import anyio.to_thread
from starlette.types import Receive, Scope, Send

from cite_live.params import digits

# The largest body handed to the server in one message: what one response may hold in memory.
# A segment fits (1-2 MB at 720p, about 4 MB at 1080p): sending one in two messages halves the
# throughput, as the second waits for the first to drain (BENCHMARKS.md).
CHUNK = 4 * 1024 * 1024
# Reads at once, per event loop; the rest wait their turn (nginx's `aio threads` pool has 32).
READERS = 16
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)
Header = tuple[bytes, bytes]
# Longer than any file's byte position: a Range holding more digits is ignored, not computed.
RANGE_DIGITS = 100


@dataclass(frozen=True)
class FileInfo:
    """What the validators are made of: the size and the modification time of an open file."""

    size: int
    mtime: float

    @property
    def etag(self) -> str:
        # Strong: published media is written once, by rename, under a versioned key.
        digest = hashlib.md5(f"{self.mtime}-{self.size}".encode(), usedforsecurity=False)
        return f'"{digest.hexdigest()}"'

    @property
    def last_modified(self) -> str:
        return formatdate(self.mtime, usegmt=True)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n`` asks of a file of
    ``size`` bytes, clipped to it; None when the header asks for no single range this server
    serves (a syntax error, another unit, several ranges: the whole file is sent, as RFC 9110
    allows). Raises ``ValueError`` when the range is well formed but lies past the end."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last):
        return None
    # ASCII digits only: str.isdigit() takes "²", which int() then refuses.
    start, end = digits(first, RANGE_DIGITS), digits(last, RANGE_DIGITS)
    if (first and start is None) or (last and end is None):
        return None
    if start is None:
        if not end or size == 0:
            raise ValueError("an empty suffix range")
        return max(0, size - end), size - 1
    if end is None:
        end = size - 1
    elif end < start:
        return None
    if start >= size:
        raise ValueError("a range past the end")
    return start, min(end, size - 1)


def _etags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def not_modified(headers: Mapping[str, str], info: FileInfo) -> bool:
    """RFC 9110 §13.2.2 for GET and HEAD: ``If-None-Match`` (weak comparison) decides when it is
    present; otherwise ``If-Modified-Since``."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return if_none_match.strip() == "*" or info.etag in _etags(if_none_match)
    since = headers.get("if-modified-since")
    if since:
        try:
            return int(info.mtime) <= parsedate_to_datetime(since).timestamp()
        except (TypeError, ValueError, OverflowError):
            return False
    return False


def range_applies(headers: Mapping[str, str], info: FileInfo) -> bool:
    """``If-Range``: the range stands only if the client's copy is still ours (strong ETag,
    or the exact Last-Modified date)."""
    if_range = headers.get("if-range")
    if if_range is None:
        return True
    if_range = if_range.strip()
    if if_range.startswith(('"', "W/")):
        return if_range == info.etag
    return if_range == info.last_modified


def _read(fd: int, length: int, offset: int) -> bytes:
    chunks = []
    while length > 0:
        data = os.pread(fd, length, offset)
        if not data:
            # The file shrank under us: what was promised cannot be sent.
            raise OSError(f"file ended {length} bytes early")
        chunks.append(data)
        length -= len(data)
        offset += len(data)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read(fd: int, length: int, offset: int) -> bytes:
    """``length`` bytes of ``fd`` from ``offset``, read on a thread (a limiter of this loop's:
    a limiter's waiters belong to the loop that made them)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(READERS)
    return await anyio.to_thread.run_sync(_read, fd, length, offset, limiter=limiter)


def regular_file(fd: int) -> FileInfo | None:
    """The validators of the open file ``fd``; None when it is not a regular file."""
    try:
        status = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return FileInfo(size=status.st_size, mtime=status.st_mtime)


async def send_file(
    scope: Scope,
    receive: Receive,
    send: Send,
    fd: int,
    info: FileInfo,
    content_type: str,
    headers: Sequence[Header],
) -> None:
    """Answer a GET or HEAD with the open file ``fd`` (the caller closes it): 200, 206, 304 or
    416, each carrying ``headers`` too."""
    request_headers = {
        name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]
    }
    validators = [
        (b"etag", info.etag.encode()),
        (b"last-modified", info.last_modified.encode()),
    ]
    if not_modified(request_headers, info):
        await answer(send, 304, [*headers, *validators])
        return
    start, end = 0, info.size - 1
    status = 200
    range_header = request_headers.get("range")
    if range_header is not None and range_applies(request_headers, info):
        try:
            asked = parse_range(range_header, info.size)
        except ValueError:
            extra = [(b"content-range", f"bytes */{info.size}".encode())]
            await answer(send, 416, [*headers, *extra])
            return
        if asked is not None:
            start, end = asked
            status = 206
    length = end - start + 1
    response_headers = [
        *headers,
        *validators,
        (b"content-type", content_type.encode()),
        (b"content-length", str(length).encode()),
        (b"accept-ranges", b"bytes"),
    ]
    if status == 206:
        response_headers.append((b"content-range", f"bytes {start}-{end}/{info.size}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": response_headers})
    if scope["method"] == "HEAD" or length <= 0:
        await send({"type": "http.response.body", "body": b""})
    elif length <= CHUNK:
        await send({"type": "http.response.body", "body": await read(fd, length, start)})
    else:
        await _send_chunks(receive, send, fd, start, length)


async def _send_chunks(receive: Receive, send: Send, fd: int, offset: int, length: int) -> None:
    """A large body a chunk at a time; a client that hangs up stops the reading (the server
    may not say so by failing ``send``)."""
    async with anyio.create_task_group() as group:
        gone = anyio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        group.start_soon(watch)
        while length > 0 and not gone.is_set():
            data = await read(fd, min(CHUNK, length), offset)
            offset += len(data)
            length -= len(data)
            await send({"type": "http.response.body", "body": data, "more_body": length > 0})
        group.cancel_scope.cancel()


async def answer(send: Send, status: int, headers: Sequence[Header], body: bytes = b"") -> None:
    """A whole response with a small body (or none)."""
    sized = list(headers)
    if status not in (204, 304):
        sized.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": sized})
    await send({"type": "http.response.body", "body": body})
