"""The embeddable player: ``/embed/{id}``, a page holding only the player, for partner sites."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cite_live import params
from cite_live.access import media_link
from cite_live.auth import can_view, current_user
from cite_live.catalogue import get_production
from cite_live.player import PlayerOptions, player_data

# Any site may frame the player: that is what it is for. The page runs no inline script, so
# the policy can otherwise stay strict about what it loads.
EMBED_HEADERS = {
    "Content-Security-Policy": "frame-ancestors *",
    # The partner's page is not our business: keep its address out of our media requests.
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "public, max-age=60",
}
# A private production's player carries signed links for one viewer: framed by this site only
# (a partner's frame would not send the session cookie anyway), kept by no cache, and its links
# never sent on as a Referer.
PRIVATE_EMBED_HEADERS = {
    "Content-Security-Policy": "frame-ancestors 'self'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}


def embed_page(request: Request) -> Response:
    # A plain def: Starlette runs it in a worker thread, away from the event loop.
    services = request.app.state.services
    lang = getattr(request.state, "lang", "fr")
    production_id = params.public_id(request.path_params["production_id"])
    with services.sessions() as session:
        production = get_production(session, production_id) if production_id else None
        # Unlisted productions embed: whoever has the link may share it. Private ones do not
        # exist for the outside: only their owner and the admins see them, on this site.
        if production is None or not can_view(current_user(request), production):
            raise HTTPException(404, "There is no production with this identifier.")
        site = str(request.base_url).rstrip("/")
        link = media_link(services, production, site)
        data = player_data(production, services.store, site, lang=lang, link=link)
        private = production.visibility == "private"
    options = PlayerOptions.from_query(request.query_params)
    response: Response = request.app.state.templates.TemplateResponse(
        request,
        "embed.html",
        {"data": data, "options": options.as_dict(), "lang": lang},
        headers=PRIVATE_EMBED_HEADERS if private else EMBED_HEADERS,
    )
    return response


class FramingMiddleware:
    """Only the embeddable player may be framed by other sites; every other page says so
    (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), so that no site can lay the
    studio's or the admin's buttons under a visitor's click (clickjacking).

    A response that states its own ``frame-ancestors`` (the embed page) is left as it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "frame-ancestors" not in headers.get("content-security-policy", ""):
                    headers.append("Content-Security-Policy", "frame-ancestors 'none'")
                    headers.append("X-Frame-Options", "DENY")
            await send(message)

        await self.app(scope, receive, guarded)
