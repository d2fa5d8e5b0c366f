"""Media served by the app: the local store's files with Range, CORS and caching headers, and
every store's private media behind signed links (see cite_live.access for the scheme).

Both routes are raw ASGI apps (``PublicMedia``, ``PrivateMedia``) rather than Starlette
endpoints, and ``MediaMiddleware`` hands them their requests ahead of the page middleware
(cache, language, sessions), which a segment needs none of: a player fetches one every few
seconds, and what each costs decides how many listeners one process holds (BENCHMARKS.md).

With a store that hands out its own addresses (S3) the public route is absent: players get the
store's public or CDN URL and the app never proxies the bytes. The private route still answers
for such a store, for playlists only: it rewrites them with presigned addresses and sends
anything else to its presigned address.

The routes are declared once, in app.py's route list; ``MediaMiddleware`` is handed them and
dispatches by their own matching, so the router at the end of the stack never sees a media path.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cite_live import access, filesend
from cite_live.site import scope_site_url
from cite_live.storage import (
    ObjectStore,
    StorageError,
    cache_control_for,
    content_type_for,
    is_original,
    validate_key,
)
from cite_live.web.errors import error_body
from cite_live.web.urls import MEDIA_PREFIX

if TYPE_CHECKING:
    from cite_live.services import Services

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
    "Timing-Allow-Origin": "*",
}
NO_MEDIA = "There is no media at this address."
NOT_HERE = "Media is served by the object store, not by this site."
# A private playlist is made for one request: never kept, by the browser or anyone else.
PRIVATE_PLAYLIST = "private, no-store"
# A public preview's playlist grows every few seconds: any cache asks again each time.
PREVIEW_PLAYLIST = "no-cache"
# What a signed media answer adds: links carrying a token must not travel on in a Referer header.
SIGNED_MEDIA_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}
# What security_headers.SecurityHeadersMiddleware adds to every other response: a media file is
# never a page, in a frame or anywhere else.
MEDIA_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Range",
    "Access-Control-Max-Age": "86400",
}
PUBLIC_METHODS = ("GET", "HEAD", "OPTIONS")
PRIVATE_METHODS = ("GET", "HEAD")


def _encode(headers: dict[str, str]) -> list[filesend.Header]:
    return [(name.lower().encode(), value.encode("latin-1")) for name, value in headers.items()]


_ERROR = [*_encode(MEDIA_HEADERS), (b"content-type", b"application/json")]
_PUBLIC = _encode({**MEDIA_HEADERS, **CORS_HEADERS})
_PRIVATE = _encode({**MEDIA_HEADERS, **SIGNED_MEDIA_HEADERS})
_PREFLIGHT = _encode({**MEDIA_HEADERS, **PREFLIGHT_HEADERS})


async def _error(
    send: Send, status: int, detail: str, headers: Sequence[filesend.Header] = ()
) -> None:
    """The site's JSON error (cite_live.web.errors), sent as raw ASGI messages."""
    await filesend.answer(send, status, [*headers, *_ERROR], error_body(status, detail))


async def _method_not_allowed(send: Send, allowed: Sequence[str]) -> None:
    allow = [(b"allow", ", ".join(allowed).encode())]
    await _error(send, 405, "Method Not Allowed", allow)


async def _send_key(
    scope: Scope,
    receive: Receive,
    send: Send,
    store: ObjectStore,
    key: str,
    headers: list[filesend.Header],
) -> None:
    services: Services = scope["app"].state.services
    # Originals are the artists' raw files: never served, only published media is. What was
    # checked of the key (here, and which production it belongs to) holds for the file sent:
    # open_file refuses a key whose file is reached through a link.
    if is_original(key):
        await _error(send, 404, NO_MEDIA)
        return
    try:
        fd = store.open_file(key)
    except StorageError:
        await _error(send, 404, NO_MEDIA)
        return
    info = filesend.regular_file(fd)
    if info is None:
        os.close(fd)
        await _error(send, 404, NO_MEDIA)
        return
    try:
        content_type = content_type_for(key)
        accel = services.settings.storage.local_accel_redirect
        if accel:
            # nginx sends the file (sendfile, Range, ETag) and keeps these headers: the app only
            # decides whether it may be sent.
            location = accel.rstrip("/") + "/" + quote(key)
            extra = [
                (b"x-accel-redirect", location.encode("latin-1")),
                (b"content-type", content_type.encode()),
            ]
            await filesend.answer(send, 200, [*headers, *extra])
            return
        await filesend.send_file(scope, receive, send, fd, info, content_type, headers)
    finally:
        os.close(fd)


class PublicMedia:
    """``/media/{key}``: the local store's published files, to anyone, from any origin."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        store = services.store
        method = scope["method"]
        if method not in PUBLIC_METHODS:
            await _method_not_allowed(send, PUBLIC_METHODS)
            return
        if not store.serves_own_bytes:
            await _error(send, 404, NOT_HERE)
            return
        if method == "OPTIONS":
            await filesend.answer(send, 204, _PREFLIGHT)
            return
        key = scope["path_params"]["key"]
        # A key no store can hold (a NUL, which PostgreSQL also refuses in a query) names no
        # production: it is not looked up.
        try:
            validate_key(key)
        except StorageError:
            await _error(send, 404, NO_MEDIA)
            return
        # A private production's media answers as if it were not there; its owner plays it
        # through signed links (PrivateMedia). The answer is cached: a query only on a miss.
        verdict = services.access.known_verdict(key)
        if verdict is None:
            verdict = await run_in_threadpool(services.access.verdict, key)
        if verdict is access.Verdict.REFUSE:
            await _error(send, 404, NO_MEDIA)
            return
        cache = cache_control_for(key)
        if verdict is access.Verdict.PREVIEW and key.lower().endswith(".m3u8"):
            cache = PREVIEW_PLAYLIST
        headers = [*_PUBLIC, (b"cache-control", cache.encode())]
        await _send_key(scope, receive, send, store, key, headers)


class PrivateMedia:
    """``/media/private/{token}/{key}``: 404 unless the token is genuine, unexpired and for the
    production ``key`` belongs to — forged and expired links look exactly like missing media.

    No CORS: the site's own pages play private media; a partner page never gets these links."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services = scope["app"].state.services
        if scope["method"] not in PRIVATE_METHODS:
            await _method_not_allowed(send, PRIVATE_METHODS)
            return
        params = scope["path_params"]
        key = params["key"]
        grant = access.verify(services.secret_key, params["token"])
        if grant is None or not access.grant_covers(grant, key):
            await _error(send, 404, NO_MEDIA)
            return
        store = services.store
        if not store.serves_own_bytes:
            await _from_bucket(scope, send, services, store, key, grant)
            return
        is_playlist = key.lower().endswith(".m3u8")
        cache = (
            PRIVATE_PLAYLIST if is_playlist else access.private_cache_control(grant.seconds_left())
        )
        headers = [*_PRIVATE, (b"cache-control", cache.encode())]
        await _send_key(scope, receive, send, store, key, headers)


async def _from_bucket(
    scope: Scope,
    send: Send,
    services: Services,
    store: ObjectStore,
    key: str,
    grant: access.MediaGrant,
) -> None:
    """A private playlist or storyboard fetched and rewritten with presigned addresses;
    anything else sent to its own presigned address."""
    link = access.grant_link(services, grant, scope_site_url(scope))
    if not key.lower().endswith((".m3u8", ".vtt")):
        location = [(b"location", link(key).encode()), (b"cache-control", b"no-store")]
        await filesend.answer(send, 302, [*_PRIVATE, *location])
        return
    try:
        raw = await run_in_threadpool(store.read_bytes, key)
    except StorageError:
        await _error(send, 404, NO_MEDIA)
        return
    text = raw.decode("utf-8", errors="replace")
    if key.lower().endswith(".m3u8"):
        body = access.rewrite_playlist(text, key, link)
    else:
        body = access.rewrite_storyboard(text, key, link)
    headers = [
        *_PRIVATE,
        (b"cache-control", PRIVATE_PLAYLIST.encode()),
        (b"content-type", _with_charset(content_type_for(key)).encode()),
    ]
    if scope["method"] == "HEAD":
        await filesend.answer(send, 200, headers)
        return
    await filesend.answer(send, 200, headers, body.encode())


def _with_charset(content_type: str) -> str:
    return f"{content_type}; charset=utf-8" if content_type.startswith("text/") else content_type


class MediaMiddleware:
    """Hands the requests of the media ``routes`` straight to their apps, ahead of the page
    middleware (which a media request needs none of), instead of leaving them to the router at
    the end of the stack. Anything else goes on down the stack.

    ``routes`` are the route list's own (app.py), tried in their order; a method a route does not
    take is its app's to refuse, in the site's JSON."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A page request is let through on one prefix test rather than a regular expression per
        # route.
        if scope["type"] == "http" and scope["path"].startswith(MEDIA_PREFIX):
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is not Match.NONE:
                    scope.update(child_scope)
                    await route.endpoint(scope, receive, send)
                    return
        await self.app(scope, receive, send)
