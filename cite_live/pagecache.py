"""A short-lived cache of the answers anonymous visitors get (a "microcache").

Under load most requests are for the same few pages; rendering each from the database costs
15–20 ms of a single process, so 50 listeners at once queue for a second. Keeping each page for
a few seconds makes every repeat cost well under a millisecond, at the price of a new
production appearing on listings a few seconds late. Only anonymous GET/HEAD answers with
status 200 and no cookie of their own are kept, per path, query and language.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cite_live.i18n import COOKIE, negotiate

# Media and static files have their own caching headers and are cheap to serve; the language
# switch sets a cookie.
UNCACHED_PREFIXES = ("/media/", "/static/", "/lang/")
MAX_BODY = 2 * 1024 * 1024


@dataclass
class Entry:
    expires: float
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class PageCacheMiddleware:
    def __init__(self, app: ASGIApp, *, seconds: float, max_entries: int = 4096) -> None:
        self.app = app
        self.seconds = seconds
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple[str, str, str], Entry] = OrderedDict()

    def _key(self, scope: Scope) -> tuple[str, str, str] | None:
        if self.seconds <= 0 or scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        path: str = scope["path"]
        if path.startswith(UNCACHED_PREFIXES):
            return None
        headers = Headers(scope=scope)
        if "authorization" in headers:
            return None
        cookies = cookie_parser(headers.get("cookie", ""))
        if set(cookies) - {COOKIE}:
            return None  # someone with a session sees their own page
        query = scope.get("query_string", b"").decode("latin-1")
        query_lang = None
        for part in query.split("&"):
            if part.startswith("lang="):
                query_lang = part[5:]
        lang = negotiate(query_lang, cookies.get(COOKIE), headers.get("accept-language", ""))
        return path, query, lang

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        entry = self.entries.get(key)
        if entry is not None and entry.expires > now:
            self.entries.move_to_end(key)
            age = str(int(now - (entry.expires - self.seconds))).encode()
            headers = [*entry.headers, (b"age", age), (b"x-cache", b"hit")]
            await send({"type": "http.response.start", "status": entry.status, "headers": headers})
            body = b"" if scope["method"] == "HEAD" else entry.body
            await send({"type": "http.response.body", "body": body})
            return
        await self._fill(key, scope, receive, send)

    async def _fill(
        self, key: tuple[str, str, str], scope: Scope, receive: Receive, send: Send
    ) -> None:
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0
        keep = scope["method"] == "GET"

        async def capture(message: Message) -> None:
            nonlocal start, size, keep
            if message["type"] == "http.response.start":
                start = message
                headers = Headers(raw=message["headers"])
                cache_control = headers.get("cache-control", "")
                if (
                    message["status"] != 200
                    or "set-cookie" in headers
                    or "private" in cache_control
                    or "no-store" in cache_control
                ):
                    keep = False
                message = {**message, "headers": [*message["headers"], (b"x-cache", b"miss")]}
            elif message["type"] == "http.response.body" and keep:
                size += len(message.get("body", b""))
                if size > MAX_BODY:
                    keep = False
                else:
                    chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and keep and start is not None:
                    self._store(key, start, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capture)

    def _store(self, key: tuple[str, str, str], start: Message, body: bytes) -> None:
        headers = [(k, v) for k, v in start["headers"] if k.lower() not in (b"date", b"server")]
        self.entries[key] = Entry(time.monotonic() + self.seconds, start["status"], headers, body)
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
