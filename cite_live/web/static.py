"""The site's own files (``/static``): the build's fingerprinted files for a year, precompressed.

scripts/build writes ``web/static/dist/``: bundles and copies under names that change with their
content, each text file with a ``.br`` and a ``.gz`` beside it. Here:

- a fingerprinted file (under ``dist/``) is ``immutable`` for a year; any other file (the
  sources of a tree without a build, the vendor copy) is kept a short while and revalidated;
- the ``.br`` or ``.gz`` variant is sent to a client that accepts it (``Accept-Encoding`` with
  its q-values: brotli first, then gzip, ``;q=0`` refuses one), with the original's
  Content-Type, its own ETag and ``Vary: Accept-Encoding``; a Range asks for the original's
  bytes, so it gets the original;
- validators, ``If-None-Match`` (304), Range and HEAD as for media (:mod:`cite_live.filesend`);
- no path outside the folder, none through a dotted segment (the build's work folders, the
  stamp), no variant asked for by its own name, no encoded slash: all 404.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from cite_live import filesend
from cite_live.web.urls import MANIFEST

BUILT = "dist/"
IMMUTABLE = "public, max-age=31536000, immutable"
# Not fingerprinted (a tree without a build, the vendor copy): an hour, then revalidated.
REVALIDATED = "public, max-age=3600"
# Variants, best first: the suffix of the file beside the original, and its Content-Encoding.
VARIANTS = (("br", ".br"), ("gzip", ".gz"))
METHODS = ("GET", "HEAD")
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".map": "application/json",
}


def accepted_codings(header: str | None) -> dict[str, float]:
    """The q-value ``Accept-Encoding`` gives each coding (lower case; ``*`` for the others)."""
    codings: dict[str, float] = {}
    for part in (header or "").split(","):
        name, _, params = part.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        quality = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
                if not 0.0 <= quality <= 1.0:  # nan and out-of-range values refuse
                    quality = 0.0
        codings[name] = quality
    return codings


def quality(codings: dict[str, float], coding: str) -> float:
    """The q-value of ``coding``: its own, or the ``*`` one's, or 0 when neither is named."""
    return codings.get(coding, codings.get("*", 0.0))


def accepts(codings: dict[str, float], coding: str) -> bool:
    """Whether ``coding`` may be sent: q > 0."""
    return quality(codings, coding) > 0.0


def content_type(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in TYPES:
        return TYPES[suffix]
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") else guessed


@dataclass(frozen=True)
class Found:
    fd: int
    info: filesend.FileInfo
    encoding: str | None
    # Whether the file has encoded variants at all: then the answer varies by Accept-Encoding.
    varies: bool


class StaticFiles:
    """A raw ASGI app serving ``directory`` as described above (mounted at ``/static``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory.resolve()

    def _relative(self, scope: Scope) -> str | None:
        """The file asked for, relative to the folder; None for a path that names none."""
        raw = scope.get("raw_path") or b""
        if b"%2f" in raw.lower() or b"%5c" in raw.lower() or b"\\" in raw:
            return None
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        name = path.lstrip("/")
        parts = name.split("/")
        if not name or any(not part or part.startswith(".") for part in parts) or "\0" in name:
            return None
        if name.endswith((".br", ".gz")) or name == MANIFEST:
            return None
        return name

    def _open(self, name: str, codings: dict[str, float] | None) -> Found | None:
        """The file (or its best accepted variant) opened, with its validators."""
        original = (self.directory / name).resolve()
        if not original.is_relative_to(self.directory) or not original.is_file():
            return None
        offered: list[tuple[float, str | None, Path]] = []
        varies = False
        for encoding, suffix in VARIANTS:
            variant = original.with_name(original.name + suffix)
            if variant.is_file():
                varies = True
                if codings is not None and accepts(codings, encoding):
                    offered.append((quality(codings, encoding), encoding, variant))
        # The client's preferred coding first; at equal q-values, VARIANTS' order (brotli).
        offered.sort(key=lambda item: -item[0])
        candidates = [(encoding, file) for _, encoding, file in offered]
        candidates.append((None, original))
        for coding, file in candidates:
            try:
                fd = os.open(file, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                continue
            info = filesend.regular_file(fd)
            if info is None:
                os.close(fd)
                continue
            return Found(fd, info, coding, varies)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in METHODS:
            raise HTTPException(405, headers={"Allow": ", ".join(METHODS)})
        name = self._relative(scope)
        if name is None:
            raise HTTPException(404)
        headers = Headers(scope=scope)
        # A Range counts the original's bytes: it gets the original.
        codings = None if "range" in headers else accepted_codings(headers.get("accept-encoding"))
        found = await anyio.to_thread.run_sync(self._open, name, codings)
        if found is None:
            raise HTTPException(404)
        try:
            cache = IMMUTABLE if name.startswith(BUILT) else REVALIDATED
            extra = [(b"cache-control", cache.encode())]
            if found.varies:
                extra.append((b"vary", b"Accept-Encoding"))
            info = found.info
            if found.encoding is not None:
                extra.append((b"content-encoding", found.encoding.encode()))
                # Each variant its own validator, even were two of them the same size and age.
                info = _Tagged(found.info.size, found.info.mtime, found.encoding)
            await filesend.send_file(
                scope, receive, send, found.fd, info, content_type(name), extra
            )
        finally:
            os.close(found.fd)


@dataclass(frozen=True)
class _Tagged(filesend.FileInfo):
    """The validators of an encoded variant: its ETag names its coding."""

    encoding: str = ""

    @property
    def etag(self) -> str:
        return super().etag[:-1] + "-" + self.encoding + '"'
