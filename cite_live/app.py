"""The web application, assembled from data in one place: the whole URL map is below."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from cite_live import api, embeds, feeds, media, oembed, openapi, pages
from cite_live.i18n import LocaleMiddleware
from cite_live.pagecache import PageCacheMiddleware
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.templating import make_templates

log = logging.getLogger("cite_live.app")
SERVER_ERROR = "Something went wrong on our side."
# Paths whose errors are answered in JSON rather than with an HTML page.
JSON_PATHS = ("/api/", "/media/", "/oembed")


class CachedStaticFiles(StaticFiles):
    """Static files with a cache lifetime: paths are not versioned, so an hour, revalidated."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.setdefault("Cache-Control", "public, max-age=3600")
        return response


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    """The ASGI app for ``settings``; pass ``services`` to share already-open resources."""
    templates = make_templates(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or open_services(settings)
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
        if request.url.path.startswith(JSON_PATHS):
            return JSONResponse({"error": detail, "status": status}, status_code=status)
        return templates.TemplateResponse(
            request, "error.html", {"status": status, "detail": detail}, status_code=status
        )

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
        Route("/feed.atom", feeds.site_feed, name="site_feed"),
        Route("/podcast.rss", feeds.podcast_feed, name="podcast_feed"),
        Route("/embed/{production_id}", embeds.embed_page, name="embed"),
        Route("/oembed", oembed.oembed, name="oembed"),
        Route("/api/v1/openapi.json", openapi.openapi_document, name="api_openapi"),
        Route("/api/v1/productions", api.list_productions, name="api_productions"),
        Route("/api/v1/productions/{production_id}", api.show_production, name="api_production"),
        Route("/api/v1/artists", api.list_artists, name="api_artists"),
        Route("/api/v1/artists/{slug}", api.show_artist, name="api_artist"),
        Route(
            "/media/{key:path}",
            media.serve_media,
            methods=["GET", "HEAD", "OPTIONS"],
            name="media",
        ),
        Mount(
            "/static",
            CachedStaticFiles(directory=settings.web_dir / "static"),
            name="static",
        ),
    ]
    middleware = [
        Middleware(PageCacheMiddleware, seconds=settings.page_cache_seconds),
        Middleware(LocaleMiddleware),
    ]
    handlers: dict[Any, Any] = {HTTPException: error, Exception: error}
    app = Starlette(
        routes=routes, middleware=middleware, exception_handlers=handlers, lifespan=lifespan
    )
    app.state.templates = templates
    if services is not None:
        app.state.services = services
    return app
