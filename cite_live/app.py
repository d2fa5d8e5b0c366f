"""The web application, assembled from data in one place: the whole URL map is below."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cite_live import (
    account_pages,
    admin,
    api,
    embeds,
    feeds,
    media,
    oembed,
    openapi,
    pages,
    studio,
    tus,
)
from cite_live.auth import AuthMiddleware
from cite_live.i18n import LocaleMiddleware
from cite_live.pagecache import PageCacheMiddleware
from cite_live.security_headers import ERROR_HEADERS, SecurityHeadersMiddleware
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.site import HostMiddleware
from cite_live.templating import make_templates

log = logging.getLogger("cite_live.app")
SERVER_ERROR = "Something went wrong on our side."
# Paths whose errors are answered in JSON rather than with an HTML page.
JSON_PATHS = ("/api/", "/media/", "/oembed")
TUS_COLLECTION = ["OPTIONS", "POST"]


class CachedStaticFiles(StaticFiles):
    """Static files with a cache lifetime: paths are not versioned, so an hour, revalidated."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    """The ASGI app for ``settings``; pass ``services`` to share already-open resources."""
    feeds.install()
    templates = make_templates(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or open_services(settings)
        # S3: a private production's objects, and every original, refused to anonymous readers
        # (in a worker thread: the store is waited on, not the event loop).
        await run_in_threadpool(app.state.services.access.sync)
        try:
            yield
        finally:
            if own:
                app.state.services.close()

    async def error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else SERVER_ERROR
        if status == 500:
            log.error("unhandled error on %s", request.url.path, exc_info=exc)
        # Location (auth.require_user's redirect to the login page), Retry-After, WWW-Authenticate.
        headers = exc.headers if isinstance(exc, HTTPException) else ERROR_HEADERS
        if 300 <= status < 400:
            return Response(status_code=status, headers=headers)
        if request.url.path.startswith(JSON_PATHS):
            return JSONResponse(
                {"error": detail, "status": status}, status_code=status, headers=headers
            )
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "detail": detail},
            status_code=status,
            headers=headers,
        )

    # Raw ASGI apps, answered by MediaMiddleware (which dispatches by these very routes) ahead
    # of the page middleware. The private one first: /media/{key:path} would otherwise take
    # "private/…" for a key.
    media_routes = [
        Route(
            "/media/private/{token}/{key:path}",
            media.PrivateMedia(),
            methods=list(media.PRIVATE_METHODS),
            name="private_media",
        ),
        Route(
            "/media/{key:path}",
            media.PublicMedia(),
            methods=list(media.PUBLIC_METHODS),
            name="media",
        ),
    ]
    routes = [
        Route("/", pages.home, name="home"),
        Route("/artists", pages.artists_index, name="artists"),
        Route("/artists/{slug}", pages.artist_page, name="artist"),
        Route("/artists/{slug}/feed.atom", feeds.artist_feed, name="artist_feed"),
        Route("/productions/{slug}", pages.production_page, name="production"),
        Route("/productions/{slug}/chapters.vtt", pages.chapters_vtt, name="chapters"),
        Route("/venues", pages.venues_index, name="venues"),
        Route("/venues/{slug}", pages.venue_page, name="venue"),
        Route("/tags", pages.tags_index, name="tags"),
        Route("/tags/{slug}", pages.tag_page, name="tag"),
        Route("/search", pages.search_page, name="search"),
        Route("/lang/{code}", pages.set_language, name="set_language"),
        Route("/login", account_pages.login, methods=["GET", "POST"], name="login"),
        Route("/logout", account_pages.logout, methods=["POST"], name="logout"),
        Route("/account", account_pages.account, methods=["GET", "POST"], name="account"),
        Route("/invite/{token}", account_pages.invitation, methods=["GET", "POST"], name="invite"),
        # The artist's studio and the admin page (cite_live/studio.py, cite_live/admin.py).
        Route("/studio", studio.studio_page, name="studio"),
        Route("/studio/productions/{production_id}", studio.edit_page, name="studio_edit"),
        Route(
            "/studio/productions/{production_id}",
            studio.edit_submit,
            methods=["POST"],
            name="studio_save",
        ),
        Route(
            "/studio/productions/{production_id}/cover",
            studio.cover_submit,
            methods=["POST"],
            name="studio_cover",
        ),
        Route(
            "/studio/productions/{production_id}/replace",
            studio.replace_page,
            name="studio_replace",
        ),
        Route(
            "/studio/productions/{production_id}/delete", studio.delete_page, name="studio_delete"
        ),
        Route(
            "/studio/productions/{production_id}/delete",
            studio.delete_submit,
            methods=["POST"],
            name="studio_delete_confirmed",
        ),
        Route(
            "/studio/productions/{production_id}/retry",
            studio.retry,
            methods=["POST"],
            name="studio_retry",
        ),
        Route("/admin", admin.admin_page, name="admin"),
        Route(
            "/admin/productions/{production_id}/unpublish",
            admin.unpublish,
            methods=["POST"],
            name="admin_unpublish",
        ),
        Route(
            "/admin/productions/{production_id}/publish",
            admin.publish,
            methods=["POST"],
            name="admin_publish",
        ),
        Route("/admin/users/{user_id}", admin.update_user, methods=["POST"], name="admin_user"),
        Route("/admin/invitations", admin.invite, methods=["POST"], name="admin_invitations"),
        Route("/feed.atom", feeds.site_feed, name="site_feed"),
        Route("/podcast.rss", feeds.podcast_feed, name="podcast_feed"),
        Route("/embed/{production_id}", embeds.embed_page, name="embed"),
        Route("/oembed", oembed.oembed, name="oembed"),
        Route("/api/v1/openapi.json", openapi.openapi_document, name="api_openapi"),
        Route("/api/v1/productions", api.list_productions, name="api_productions"),
        Route("/api/v1/productions/{production_id}", api.show_production, name="api_production"),
        Route("/api/v1/artists", api.list_artists, name="api_artists"),
        Route("/api/v1/artists/{slug}", api.show_artist, name="api_artist"),
        Route("/api/v1/me/productions", studio.my_productions, name="api_my_productions"),
        # tus 1.0 resumable uploads; the collection answers with and without its slash.
        Route("/api/v1/uploads/", tus.collection, methods=TUS_COLLECTION, name="api_uploads"),
        Route("/api/v1/uploads", tus.collection, methods=TUS_COLLECTION),
        Route(
            "/api/v1/uploads/{upload_id}",
            tus.upload,
            methods=[*TUS_COLLECTION, "HEAD", "PATCH", "DELETE"],
            name="api_upload",
        ),
        *media_routes,
        Mount(
            "/static",
            CachedStaticFiles(directory=settings.web_dir / "static"),
            name="static",
        ),
    ]
    middleware = [
        # Before anything writes an absolute URL, media included: a request for another host
        # is refused, and a trusted proxy's forwarded address is taken.
        Middleware(HostMiddleware, settings=settings, json_paths=JSON_PATHS),
        # Media next: a segment needs none of what follows (media.MediaMiddleware).
        Middleware(media.MediaMiddleware, routes=media_routes),
        # Then nosniff, framing and the pages' CSP: pages served from the cache get them too.
        Middleware(SecurityHeadersMiddleware),
        Middleware(PageCacheMiddleware, seconds=settings.page_cache_seconds),
        Middleware(LocaleMiddleware),
        # Inside the locale, so that its refusals are in the visitor's language.
        Middleware(AuthMiddleware),
    ]
    handlers: dict[Any, Any] = {HTTPException: error, Exception: error}
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan
    )
    app.state.templates = templates
    if services is not None:
        app.state.services = services
    return app
