"""Text answers gzipped on the way out, for clients that accept it.

Pages, JSON, HLS playlists, feeds, WebVTT, SVG and plain text shrink to a fifth or less; a phone
on a slow link waits that much less for them. Never compressed: media segments, pictures and
anything already encoded (the build's precompressed files carry their Content-Encoding), a 206
or any answer to a Range request (its byte positions are the plain body's), bodies under
``MINIMUM`` bytes, answers marked ``no-transform``.

Validators: a compressed body is another representation, so its strong ETag gets ``-gzip``;
an ``If-None-Match`` naming such a tag is handed inward without the suffix, so that the app's
own comparison (cite_live.filesend) still answers 304, and that 304 carries the tag the client
holds. Every compressible answer says ``Vary: Accept-Encoding``, compressed or not.

Outside the page cache (cite_live.pagecache), which keeps the plain page whatever the visitor
accepts, and outside the media middleware, so that playlists are compressed too.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections import OrderedDict
from collections.abc import Sequence

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cite_live.web.static import accepted_codings, accepts

MINIMUM = 500
# Whole bodies compressed lately, by their digest: the page cache (cite_live.pagecache) answers
# the same bytes again and again, and hashing them costs a tenth of compressing them (a 40 kB
# page: 0.04 ms against 0.5 ms).
REMEMBERED = 256
REMEMBERED_BODY = 512 * 1024
# Level 6: most of level 9's gain for a third of its time, paid on every answer.
LEVEL = 6
SUFFIX = "-gzip"
TEXT_TYPES = frozenset(
    {
        "application/json",
        "application/problem+json",
        "application/javascript",
        "application/vnd.apple.mpegurl",
        "application/x-mpegurl",
        "application/atom+xml",
        "application/rss+xml",
        "application/xml",
        "application/ld+json",
        "application/manifest+json",
        "image/svg+xml",
    }
)


def compressible(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type.startswith("text/") or media_type in TEXT_TYPES


def _strip_suffix(header: str) -> tuple[str, bool]:
    """``If-None-Match`` with the ``-gzip`` of our compressed tags taken off (and whether one
    was): the app compares it with the plain body's tag."""
    tags = []
    stripped = False
    for tag in header.split(","):
        tag = tag.strip()
        if tag.endswith(SUFFIX + '"'):
            tag = tag[: -len(SUFFIX) - 1] + '"'
            stripped = True
        tags.append(tag)
    return ", ".join(tags), stripped


def _tag(etag: str) -> str:
    return etag[:-1] + SUFFIX + '"' if etag.endswith('"') else etag


class CompressionMiddleware:
    def __init__(self, app: ASGIApp, minimum: int = MINIMUM, level: int = LEVEL) -> None:
        self.app = app
        self.minimum = minimum
        self.level = level
        self.remembered: OrderedDict[bytes, bytes] = OrderedDict()

    def compress(self, body: bytes) -> bytes:
        """``body`` gzipped, from memory when these very bytes were compressed lately."""
        if len(body) > REMEMBERED_BODY:
            return gzip.compress(body, compresslevel=self.level, mtime=0)
        digest = hashlib.blake2b(body, digest_size=32).digest()
        compressed = self.remembered.get(digest)
        if compressed is None:
            compressed = gzip.compress(body, compresslevel=self.level, mtime=0)
            self.remembered[digest] = compressed
            if len(self.remembered) > REMEMBERED:
                self.remembered.popitem(last=False)
        else:
            self.remembered.move_to_end(digest)
        return compressed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        ranged = "range" in headers
        wanted = not ranged and accepts(accepted_codings(headers.get("accept-encoding")), "gzip")
        asked_tagged = False
        if wanted and "if-none-match" in headers:
            plain, asked_tagged = _strip_suffix(headers["if-none-match"])
            if asked_tagged:
                raw = [(k, v) for k, v in scope["headers"] if k.lower() != b"if-none-match"]
                scope = {**scope, "headers": [*raw, (b"if-none-match", plain.encode("latin-1"))]}
        responder = _Responder(self, send, wanted, scope["method"] == "HEAD", asked_tagged)
        await self.app(scope, receive, responder.send)


class _Responder:
    def __init__(
        self,
        middleware: CompressionMiddleware,
        send: Send,
        wanted: bool,
        head: bool,
        asked_tagged: bool,
    ) -> None:
        self.middleware = middleware
        self._send = send
        self.wanted = wanted
        self.head = head
        self.asked_tagged = asked_tagged
        self.minimum = middleware.minimum
        self.level = middleware.level
        self.start: Message | None = None
        # "pass": as it comes; "gzip": compressing; None: undecided until the first body.
        self.mode: str | None = None
        self.compressor: zlib._Compress | None = None

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            await self._on_start(message)
        elif message["type"] == "http.response.body" and self.mode is None:
            await self._on_first_body(message)
        elif message["type"] == "http.response.body" and self.mode == "gzip":
            await self._compress(message)
        else:
            await self._send(message)

    async def _on_start(self, message: Message) -> None:
        status = message["status"]
        headers = MutableHeaders(raw=list(message["headers"]))
        if status == 304 and self.asked_tagged and "etag" in headers:
            # The client holds the compressed body: its tag, not the plain one's.
            headers["etag"] = _tag(headers["etag"])
            await self._send({**message, "headers": headers.raw})
            self.mode = "pass"
            return
        if (
            status < 200
            or status in (204, 206, 304)
            or "content-encoding" in headers
            or "content-range" in headers
            or "no-transform" in headers.get("cache-control", "").lower()
            or not compressible(headers.get("content-type", ""))
        ):
            self.mode = "pass"
            await self._send(message)
            return
        _add_vary(headers)
        message = {**message, "headers": headers.raw}
        if not self.wanted:
            self.mode = "pass"
            await self._send(message)
            return
        if self.head:
            # No body to measure: the size the app announces decides, as a GET's body would.
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) >= self.minimum:
                self._mark_compressed(headers)
                message = {**message, "headers": headers.raw}
            self.mode = "pass"
            await self._send(message)
            return
        self.start = message

    def _mark_compressed(self, headers: MutableHeaders) -> None:
        headers["content-encoding"] = "gzip"
        if "content-length" in headers:
            del headers["content-length"]
        etag = headers.get("etag")
        if etag is not None:
            headers["etag"] = _tag(etag)

    async def _on_first_body(self, message: Message) -> None:
        assert self.start is not None
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        headers = MutableHeaders(raw=list(self.start["headers"]))
        if not more and len(body) < self.minimum:
            self.mode = "pass"
            await self._send(self.start)
            await self._send(message)
            return
        self._mark_compressed(headers)
        if not more:
            compressed = self.middleware.compress(body)
            headers["content-length"] = str(len(compressed))
            self.mode = "pass"
            await self._send({**self.start, "headers": headers.raw})
            await self._send({"type": "http.response.body", "body": compressed})
            return
        self.mode = "gzip"
        self.compressor = zlib.compressobj(self.level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        await self._send({**self.start, "headers": headers.raw})
        await self._compress(message)

    async def _compress(self, message: Message) -> None:
        assert self.compressor is not None
        more = message.get("more_body", False)
        data = self.compressor.compress(message.get("body", b""))
        # Each chunk flushed: a streamed answer reaches the client as it is made.
        data += self.compressor.flush(zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH)
        await self._send({"type": "http.response.body", "body": data, "more_body": more})


def _add_vary(headers: MutableHeaders) -> None:
    vary: Sequence[str] = [v.strip().lower() for v in headers.get("vary", "").split(",")]
    if "accept-encoding" not in vary and "*" not in vary:
        headers.add_vary_header("Accept-Encoding")
