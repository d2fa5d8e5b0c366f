"""A short-lived cache of the answers anonymous visitors get (a "microcache").

Under load most requests are for the same few pages; rendering one from the database costs
several milliseconds of a single process, so 50 listeners at once would queue for it. Here:

- a page is fresh for ``seconds``; repeats cost well under a millisecond;
- after that it is served stale, for up to ``stale_seconds`` more, while one background request
  renders it again: a visitor never waits for a refresh (stale-while-revalidate); when that
  render is an answer it would not keep (404, 410, a page made private), the page is dropped at
  once and the next visitor gets the real answer; a server error keeps it (stale-if-error);
- visitors asking at once for a page nobody has yet wait for the one render in progress rather
  than each starting their own (request coalescing);
- a commit that changes the catalogue (see :class:`CatalogueChanges`) makes every kept page
  obsolete, so an edit, a new production or a production made private shows immediately: at
  once for a commit of this process, as soon as its message arrives for one of another
  process (a worker, another web process) when the installation has a Redis
  (cite_live.broadcast); without one, or while it cannot be reached, within ``seconds`` and
  one request (the refresh brings the new page, or drops a page that went away).

Only anonymous GET/HEAD answers with status 200, no cookie of their own and no private or
no-store Cache-Control are kept, per scheme, host, path, query and language: pages hold
absolute URLs, made from the address they were asked at when site.url is not set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Delete, Insert, Update, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker
from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cite_live.broadcast import Broadcast
from cite_live.i18n import COOKIE, negotiate
from cite_live.web.urls import LANGUAGE_PREFIX, MEDIA_PREFIX, PATHS, STATIC_PREFIX

log = logging.getLogger("cite_live.pagecache")

# Media and static files have their own caching headers and are cheap to serve; the language
# switch sets a cookie.
UNCACHED_PREFIXES = (MEDIA_PREFIX, STATIC_PREFIX, LANGUAGE_PREFIX)
# A production's file is sent as it is read and never kept: a listener saving it must not wait
# for another one's download of it to end, as visitors asking for the same page at once do.
UNCACHED_SUFFIXES = ("/" + PATHS["production_download"].rsplit("/", 1)[1],)
MAX_BODY = 2 * 1024 * 1024
# Tables whose rows pages show; job progress and accounts do not make pages obsolete.
CATALOGUE_TABLES = frozenset(
    {
        "artists",
        "venues",
        "tags",
        "productions",
        "production_tags",
        "credits",
        "chapters",
        "media_versions",
        # The partner sites: the player's settings on a production's page name their origins.
        "partners",
    }
)
# What the other processes are told after a commit here that changed the catalogue.
TOPIC = "catalogue"
# How long a visitor waits for someone else's render of the same page before rendering it too.
COALESCE_WAIT = 10.0
# Background refreshes rendering at once: renders share the event loop with the visitors the
# cache answers, so a burst of pages going stale together is worked off a few at a time.
REFRESH_SLOTS = 2
# Each page stays fresh up to this fraction longer than ``seconds``, at random, so that pages
# filled together do not all go stale together.
FRESH_JITTER = 0.25

# (scheme, host, path, query, language)
Key = tuple[str, str, str, str, str]


class CatalogueChanges:
    """A counter bumped after every commit that changed the catalogue: at once for this
    process's commits, and when another process's message says so (cite_live.broadcast)."""

    def __init__(self) -> None:
        self.generation = 0
        self._lock = threading.Lock()
        self._broadcast: Broadcast | None = None

    def watch(self, sessions: sessionmaker[Session], broadcast: Broadcast | None = None) -> None:
        event.listen(sessions, "after_flush", self._after_flush)
        event.listen(sessions, "do_orm_execute", self._on_execute)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_rollback", self._after_rollback)
        if broadcast is not None:
            self._broadcast = broadcast
            broadcast.on(TOPIC, lambda _words: self.bump())
            broadcast.on_resync(self.bump)

    def bump(self) -> None:
        """Make every page kept so far obsolete (from any thread: a bump is never lost, which
        could leave a page rendered before a change with the generation after it)."""
        with self._lock:
            self.generation += 1

    @staticmethod
    def _touches(objects: Any) -> bool:
        return any(
            getattr(getattr(obj, "__table__", None), "name", None) in CATALOGUE_TABLES
            for obj in objects
        )

    def _after_flush(self, session: Session, _context: Any) -> None:
        if any(self._touches(objects) for objects in (session.new, session.dirty, session.deleted)):
            session.info["catalogue_changed"] = True

    def _on_execute(self, state: ORMExecuteState) -> None:
        statement = state.statement
        if isinstance(statement, Insert | Update | Delete):
            table = getattr(statement, "table", None)
            if getattr(table, "name", None) in CATALOGUE_TABLES:
                state.session.info["catalogue_changed"] = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop("catalogue_changed", False):
            self.bump()
            if self._broadcast is not None:
                self._broadcast.send(TOPIC)

    def _after_rollback(self, session: Session) -> None:
        session.info.pop("catalogue_changed", None)


@dataclass
class Entry:
    stored: float
    fresh_until: float
    stale_until: float
    generation: int
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class PageCacheMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        seconds: float,
        stale_seconds: float | None = None,
        max_entries: int = 4096,
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.stale_seconds = max(60.0, 30 * seconds) if stale_seconds is None else stale_seconds
        self.max_entries = max_entries
        self.entries: OrderedDict[Key, Entry] = OrderedDict()
        # Renders in progress, so that others asking for the same page can wait for them.
        self.pending: dict[Key, asyncio.Event] = {}
        # Background refreshes, kept referenced until they end.
        self.refreshing: dict[Key, asyncio.Task[None]] = {}
        self.refresh_slots = asyncio.Semaphore(REFRESH_SLOTS)

    def _key(self, scope: Scope) -> Key | None:
        if self.seconds <= 0 or scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return None
        path: str = scope["path"]
        if path.startswith(UNCACHED_PREFIXES) or path.endswith(UNCACHED_SUFFIXES):
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
        # The host has passed cite_live.site.HostMiddleware; case and port still tell apart
        # addresses that pages would be written for.
        return scope.get("scheme", "http"), headers.get("host", ""), path, query, lang

    @staticmethod
    def _generation(scope: Scope) -> int:
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)
        changes = getattr(services, "changes", None)
        return changes.generation if isinstance(changes, CatalogueChanges) else 0

    def _usable(self, key: Key, generation: int) -> Entry | None:
        entry = self.entries.get(key)
        if entry is None or entry.generation != generation:
            return None
        if entry.stale_until <= time.monotonic():
            return None
        return entry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self._key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        generation = self._generation(scope)
        entry = self._usable(key, generation)
        if entry is None and key in self.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.pending[key].wait(), COALESCE_WAIT)
            entry = self._usable(key, generation)
        if entry is None:
            await self._fill(key, generation, scope, receive, send)
            return
        if entry.fresh_until > time.monotonic():
            await self._serve(entry, scope, send, b"hit")
            return
        if key not in self.refreshing and key not in self.pending:
            task = asyncio.create_task(self._refresh(key, generation, scope))
            self.refreshing[key] = task
            task.add_done_callback(lambda _task: self.refreshing.pop(key, None))
        await self._serve(entry, scope, send, b"stale")

    async def _serve(self, entry: Entry, scope: Scope, send: Send, state: bytes) -> None:
        age = str(int(time.monotonic() - entry.stored)).encode()
        headers = [*entry.headers, (b"age", age), (b"x-cache", state)]
        await send({"type": "http.response.start", "status": entry.status, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else entry.body
        await send({"type": "http.response.body", "body": body})

    async def _fill(
        self, key: Key, generation: int, scope: Scope, receive: Receive, send: Send
    ) -> None:
        done = asyncio.Event()
        self.pending[key] = done
        try:
            await self._render(key, generation, scope, receive, send)
        finally:
            if self.pending.get(key) is done:
                del self.pending[key]
            done.set()

    async def _refresh(self, key: Key, generation: int, scope: Scope) -> None:
        """Render the page again for nobody in particular and keep the result."""
        request_scope = {**scope, "method": "GET", "state": {}}

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def discard(_message: Message) -> None:
            return None

        try:
            async with self.refresh_slots:
                status = await self._render(key, generation, request_scope, receive, discard)
        except Exception:
            log.warning("could not refresh the cached page %s", key[2], exc_info=True)
            return
        if status is not None and status < 500:
            # The page is gone, or is no longer everyone's (made private, unpublished): the
            # next visitor gets the real answer, not the old page for the rest of
            # stale_seconds. A server error keeps it (stale-if-error): a database that stops
            # answering for a moment does not take the site's pages away.
            entry = self.entries.get(key)
            if entry is not None and entry.generation == generation:
                del self.entries[key]

    async def _render(
        self, key: Key, generation: int, scope: Scope, receive: Receive, send: Send
    ) -> int | None:
        """Pass the app's answer on, and keep it when it may be kept: None then, else the
        status of the answer that was not kept."""
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
                    self._store(key, generation, start, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capture)
        if start is None:
            return 500
        return None if keep else int(start["status"])

    def _store(self, key: Key, generation: int, start: Message, body: bytes) -> None:
        headers = [(k, v) for k, v in start["headers"] if k.lower() not in (b"date", b"server")]
        now = time.monotonic()
        self.entries[key] = Entry(
            stored=now,
            fresh_until=now + self.seconds * (1 + FRESH_JITTER * random.random()),  # noqa: S311 - jitter, not a secret
            stale_until=now + self.seconds + self.stale_seconds,
            generation=generation,
            status=start["status"],
            headers=headers,
            body=body,
        )
        self.entries.move_to_end(key)
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
