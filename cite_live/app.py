"""The web application, assembled from data in one place: the whole URL map is below."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from cite_live import api, media
from cite_live.services import Services, open_services
from cite_live.settings import Settings

log = logging.getLogger("cite_live.app")
SERVER_ERROR = "Something went wrong on our side."


def create_app(settings: Settings, services: Services | None = None) -> Starlette:
    """The ASGI app for ``settings``; pass ``services`` to share already-open resources."""
    # Only .html templates, always autoescaped: tag text from uploaded files is hostile.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.web_dir / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    templates = Jinja2Templates(env=environment)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        own = services is None
        app.state.services = services or open_services(settings)
        try:
            yield
        finally:
            if own:
                app.state.services.close()

    async def home(request: Request) -> Response:
        return templates.TemplateResponse(request, "home.html", {})

    async def error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = (
            exc.detail if isinstance(exc, HTTPException) else "Something went wrong on our side."
        )
        if status == 500:
            log.exception("unhandled error on %s", request.url.path, exc_info=exc)
        if request.url.path.startswith("/api/") or request.url.path.startswith("/media/"):
            return JSONResponse({"error": detail, "status": status}, status_code=status)
        return templates.TemplateResponse(
            request, "error.html", {"status": status, "detail": detail}, status_code=status
        )

    routes = [
        Route("/", home, name="home"),
        Route("/api/v1/productions", api.list_productions, name="api_productions"),
        Route("/api/v1/productions/{production_id}", api.show_production, name="api_production"),
        Route(
            "/media/{key:path}",
            media.serve_media,
            methods=["GET", "HEAD", "OPTIONS"],
            name="media",
        ),
    ]
    handlers: dict[Any, Any] = {HTTPException: error, Exception: error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    if services is not None:
        app.state.services = services
    return app
