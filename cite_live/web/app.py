"""The web application, assembled from data in one place: the whole URL map is below."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from cite_live.auth import AuthMiddleware
from cite_live.health import Readiness
from cite_live.i18n import LocaleMiddleware
from cite_live.pagecache import PageCacheMiddleware
from cite_live.security_headers import ERROR_HEADERS, SecurityHeadersMiddleware
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.site import HostMiddleware
from cite_live.web import (
    account,
    admin,
    api,
    catalogue,
    collections,
    embeds,
    feeds,
    guide,
    media,
    oembed,
    openapi,
    ops,
    partner_sites,
    player_config,
    profiles,
    stats,
    studio,
    studio_collections,
    tus,
)
from cite_live.web.compression import CompressionMiddleware
from cite_live.web.errors import JSON_PATHS, error_answer
from cite_live.web.static import StaticFiles
from cite_live.web.templating import make_templates
from cite_live.web.urls import API_PREFIX, PATHS

log = logging.getLogger("cite_live.web.app")
SERVER_ERROR = "Something went wrong on our side."
GET_POST = ("GET", "POST")
POST = ("POST",)
TUS_COLLECTION = ("OPTIONS", "POST")


def route(
    path_name: str, endpoint: Any, methods: Sequence[str] = ("GET",), name: str | None = None
) -> Route:
    """The route of the path named ``path_name`` in cite_live.web.urls (and by that name)."""
    return Route(PATHS[path_name], endpoint, methods=list(methods), name=name or path_name)


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    """The ASGI app for ``settings``; pass ``services`` to share already-open resources."""
    feeds.install()
    templates = make_templates(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or open_services(settings)
        app.state.readiness = Readiness(app.state.services)
        # S3: a private production's objects, and every original, refused to anonymous readers
        # (in a worker thread: the store is waited on, not the event loop).
        await run_in_threadpool(app.state.services.access.sync)
        # What the installation's other processes commit makes what this one keeps obsolete.
        await run_in_threadpool(app.state.services.broadcast.listen)
        try:
            yield
        finally:
            app.state.readiness.close()
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
        return error_answer(request, status, detail, headers)

    # Raw ASGI apps, answered by MediaMiddleware (which dispatches by these very routes) ahead
    # of the page middleware. The private one first: /media/{key:path} would otherwise take
    # "private/…" for a key.
    media_routes = [
        route("private_media", media.PrivateMedia(), media.PRIVATE_METHODS),
        route("media", media.PublicMedia(), media.PUBLIC_METHODS),
    ]
    # Answered by OpsMiddleware, ahead of the page cache, the language and the session.
    ops_routes = [
        route("healthz", ops.healthz),
        route("readyz", ops.readyz),
        route("metrics", ops.metrics),
    ]
    routes = [
        route("home", catalogue.home),
        route("artists", catalogue.artists_index),
        route("artist", catalogue.artist_page),
        route("artist_feed", feeds.artist_feed),
        route("artist_podcast", feeds.artist_podcast),
        route("production", catalogue.production_page),
        route("chapters", catalogue.chapters_vtt),
        route("chapters_json", feeds.chapters_json),
        route("production_download", catalogue.production_download),
        route("player_config", player_config.player_config),
        route("venues", catalogue.venues_index),
        route("venue", catalogue.venue_page),
        route("tags", catalogue.tags_index),
        route("tag", catalogue.tag_page),
        route("search", catalogue.search_page),
        route("collections", collections.collections_index),
        route("collection_page", collections.collection_page),
        route("collection_feed", feeds.collection_feed),
        route("collection_podcast", feeds.collection_podcast),
        route("set_language", catalogue.set_language),
        route("login", account.login, GET_POST),
        route("logout", account.logout, POST),
        route("account", account.account, GET_POST),
        route("invite", account.invitation, GET_POST),
        route("password_forgot", account.password_forgot, GET_POST),
        route("password_reset", account.password_reset, GET_POST),
        route("studio", studio.studio_page),
        route("studio_edit", studio.edit_page),
        route("studio_edit", studio.edit_submit, POST, name="studio_save"),
        route("studio_replace", studio.replace_page),
        route("studio_delete", studio.delete_page),
        route("studio_delete", studio.delete_submit, POST, name="studio_delete_confirmed"),
        route("studio_retry", studio.retry, POST),
        route("studio_profiles", profiles.profiles_page),
        route("studio_profile", profiles.edit_page),
        route("studio_profile", profiles.edit_submit, POST, name="studio_profile_save"),
        route("studio_collections", studio_collections.collections_page),
        route(
            "studio_collections",
            studio_collections.create_submit,
            POST,
            name="studio_collections_create",
        ),
        route("studio_collection", studio_collections.edit_page),
        route(
            "studio_collection",
            studio_collections.edit_submit,
            POST,
            name="studio_collection_save",
        ),
        route("studio_stats", stats.studio_stats),
        route("admin", admin.admin_page),
        route("admin_stats", stats.admin_stats),
        route("admin_unpublish", admin.unpublish, POST),
        route("admin_publish", admin.publish, POST),
        route("admin_user", admin.update_user, POST),
        route("admin_invitations", admin.invite, POST),
        route("admin_artist_link", admin.link_artist, POST),
        route("admin_artist_unlink", admin.unlink_artist, POST),
        route("admin_partners", partner_sites.partners_page),
        route("admin_partners", partner_sites.add_partner, POST, name="admin_partners_add"),
        route("admin_partner", partner_sites.edit_page),
        route("admin_partner", partner_sites.save_partner, POST, name="admin_partner_save"),
        route("admin_partner_delete", partner_sites.delete_partner, POST),
        route("admin_tags", admin.tags_page),
        route("admin_tag", admin.save_tag, POST),
        route("site_feed", feeds.site_feed),
        route("podcast_feed", feeds.podcast_feed),
        route("podcast_artwork", feeds.podcast_artwork),
        route("embed", embeds.embed_page),
        route("embed_collection", collections.collection_embed),
        route("oembed", oembed.oembed),
        route("partners_guide", guide.partners_guide),
        route("api_openapi", openapi.openapi_document),
        route("api_productions", api.list_productions),
        route("api_production", api.show_production),
        route("api_artists", api.list_artists),
        route("api_artist", api.show_artist),
        route("api_collection", collections.show_collection),
        route("api_my_productions", studio.my_productions),
        route("api_my_stats", api.my_stats),
        route("api_plays", api.record_play, POST),
        # tus 1.0 resumable uploads; the collection answers with and without its slash.
        route("api_uploads", tus.collection, TUS_COLLECTION),
        Route(PATHS["api_uploads"].rstrip("/"), tus.collection, methods=list(TUS_COLLECTION)),
        route("api_upload", tus.upload, (*TUS_COLLECTION, "HEAD", "PATCH", "DELETE")),
        *media_routes,
        *ops_routes,
        # The build's fingerprinted, precompressed files (scripts/build) and the sources.
        Mount(PATHS["static"], StaticFiles(settings.web_dir / "static"), name="static"),
    ]
    middleware = [
        # Outermost: every answer counted, by route template (cite_live.web.ops).
        Middleware(ops.RequestMetricsMiddleware, routes=routes),
        # Then every text answer, media playlists and cached pages included, leaves
        # compressed (cite_live.web.compression).
        Middleware(CompressionMiddleware),
        # Before anything writes an absolute URL, media included: a request for another host
        # is refused, and a trusted proxy's forwarded address is taken.
        Middleware(HostMiddleware, settings=settings, json_paths=JSON_PATHS),
        # Media next: a segment needs none of what follows (media.MediaMiddleware).
        Middleware(media.MediaMiddleware, routes=media_routes),
        # Then nosniff, framing and the pages' CSP: pages served from the cache get them too.
        Middleware(SecurityHeadersMiddleware),
        # Health and metrics need nothing of what follows, and must not come from the cache.
        Middleware(ops.OpsMiddleware, routes=ops_routes),
        Middleware(PageCacheMiddleware, seconds=settings.page_cache_seconds),
        # The API speaks English to a client that asks for no language; oEmbed's titles stay
        # in the catalogue's language, as its pages'.
        Middleware(LocaleMiddleware, english_paths=(API_PREFIX,)),
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
        app.state.readiness = Readiness(services)
    return app
