"""Media of the local store, served by the app with Range, CORS and caching headers.

With the S3 backend this route is absent: players get the store's public or CDN URL and the
app never proxies the bytes.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from cite_live.storage import LocalStore, StorageError, cache_control_for, content_type_for

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "Content-Length, Content-Range, Accept-Ranges",
    "Timing-Allow-Origin": "*",
}


class MediaFileResponse(FileResponse):
    # Segments weigh 1–2 MB: a few large reads and writes instead of many 64 KiB ones.
    chunk_size = 1024 * 1024


async def serve_media(request: Request) -> Response:
    store = request.app.state.services.store
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
    # Originals are the artists' raw files: never served, only published media is.
    if key.startswith("originals/"):
        raise HTTPException(404, "There is no media at this address.")
    try:
        path = store.path_for(key)
    except StorageError:
        raise HTTPException(404, "There is no media at this address.") from None
    try:
        stat = path.stat()
    except OSError:
        raise HTTPException(404, "There is no media at this address.") from None
    if not path.is_file():
        raise HTTPException(404, "There is no media at this address.")
    headers = {**CORS_HEADERS, "Cache-Control": cache_control_for(key)}
    response = MediaFileResponse(
        path, media_type=content_type_for(key), headers=headers, stat_result=stat
    )
    etag = response.headers.get("etag")
    if etag and etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={**headers, "ETag": etag})
    return response
