"""Media served by the app: the local store's files with Range, CORS and caching headers, and
every store's private media behind signed links (see cite_live.access for the scheme).

With the S3 backend the public route is absent: players get the store's public or CDN URL and
the app never proxies the bytes. The private route still answers for S3, for playlists only: it
rewrites them with presigned addresses and sends anything else to its presigned address.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response

from cite_live import access
from cite_live.storage import (
    LocalStore,
    S3Store,
    StorageError,
    cache_control_for,
    content_type_for,
)

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
    "Timing-Allow-Origin": "*",
}
NO_MEDIA = "There is no media at this address."
# A private playlist is made for one request: never kept, by the browser or anyone else.
PRIVATE_PLAYLIST = "private, no-store"
# Links carrying a token must not travel on in a Referer header.
PRIVATE_HEADERS = {"Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


class MediaFileResponse(FileResponse):
    # Segments weigh 1–2 MB: a few large reads and writes instead of many 64 KiB ones.
    chunk_size = 1024 * 1024


def _file_response(
    request: Request, store: LocalStore, key: str, headers: dict[str, str]
) -> Response:
    # Originals are the artists' raw files: never served, only published media is.
    if key.startswith("originals/"):
        raise HTTPException(404, NO_MEDIA)
    try:
        path = store.path_for(key)
        stat = path.stat()
    except (StorageError, OSError):
        raise HTTPException(404, NO_MEDIA) from None
    if not path.is_file():
        raise HTTPException(404, NO_MEDIA)
    accel = request.app.state.services.settings.storage.local_accel_redirect
    if accel:
        # nginx sends the file (sendfile, Range, ETag) and keeps these headers: the app only
        # decides whether it may be sent.
        location = accel.rstrip("/") + "/" + quote(key)
        return Response(
            headers={**headers, "X-Accel-Redirect": location},
            media_type=content_type_for(key),
        )
    response = MediaFileResponse(
        path, media_type=content_type_for(key), headers=headers, stat_result=stat
    )
    etag = response.headers.get("etag")
    if etag and etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return response


async def serve_media(request: Request) -> Response:
    services = request.app.state.services
    store = services.store
    if not isinstance(store, LocalStore):
        raise HTTPException(404, "Media is served by the object store, not by this site.")
    key = request.path_params["key"]
    if request.method == "OPTIONS":
        return Response(
            status_code=204,
            headers={
                **CORS_HEADERS,
                "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
                "Access-Control-Allow-Headers": "Range",
                "Access-Control-Max-Age": "86400",
            },
        )
    # A private production's media answers as if it were not there; its owner plays it
    # through signed links (serve_private_media).
    if services.access.refuses_public(key):
        raise HTTPException(404, NO_MEDIA)
    headers = {**CORS_HEADERS, "Cache-Control": cache_control_for(key)}
    return _file_response(request, store, key, headers)


async def serve_private_media(request: Request) -> Response:
    """``/media/private/{token}/{key}``: 404 unless the token is genuine, unexpired and for the
    production ``key`` belongs to — forged and expired links look exactly like missing media.

    No CORS: the site's own pages play private media; a partner page never gets these links."""
    services = request.app.state.services
    key = request.path_params["key"]
    grant = access.verify(services.secret_key, request.path_params["token"])
    if grant is None or not access.grant_covers(grant, key):
        raise HTTPException(404, NO_MEDIA)
    store = services.store
    is_playlist = key.lower().endswith(".m3u8")
    if isinstance(store, S3Store):
        if key.lower().endswith((".m3u8", ".vtt")):
            return await _rewritten(request, store, key, grant)
        link = access.grant_link(services, grant, str(request.base_url))
        return RedirectResponse(
            link(key), status_code=302, headers={**PRIVATE_HEADERS, "Cache-Control": "no-store"}
        )
    cache = PRIVATE_PLAYLIST if is_playlist else access.private_cache_control(grant.seconds_left())
    return _file_response(request, store, key, {**PRIVATE_HEADERS, "Cache-Control": cache})


async def _rewritten(
    request: Request, store: S3Store, key: str, grant: access.MediaGrant
) -> Response:
    services = request.app.state.services
    try:
        raw = await run_in_threadpool(store.read_bytes, key)
    except StorageError:
        raise HTTPException(404, NO_MEDIA) from None
    text = raw.decode("utf-8", errors="replace")
    link = access.grant_link(services, grant, str(request.base_url))
    if key.lower().endswith(".m3u8"):
        body = access.rewrite_playlist(text, key, link)
    else:
        body = access.rewrite_storyboard(text, key, link)
    return Response(
        body,
        media_type=content_type_for(key),
        headers={**PRIVATE_HEADERS, "Cache-Control": PRIVATE_PLAYLIST},
    )
