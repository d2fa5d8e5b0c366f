"""``/productions/{slug}/player.json``: what the lasting player needs to play a production.

The bar at the foot of every page (web/static/js/bar.js) plays productions started from a card,
a queue or a list without opening their page: it asks this address, which answers
:func:`cite_live.player.player_data` as JSON under the production page's own rules. A private,
processing or failed production is a 404 to everyone but its managers, who get its signed media
links, and but those who may play the preview of one processing (cite_live.catalogue); an
unlisted one opens by its secret address only; a public one is cached as its page is (the page
cache keeps anonymous answers, browsers and proxies a minute).
"""

from __future__ import annotations

from sqlalchemy.orm import selectinload
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response

from cite_live.access import viewer_link
from cite_live.auth import can_view
from cite_live.catalogue import playable_preview, production_at, production_query
from cite_live.i18n import N_
from cite_live.models import Production
from cite_live.player import player_data
from cite_live.web.catalogue import for_managers_only
from cite_live.web.context import PRIVATE_HEADERS, Context, page

PUBLIC_CACHE = "public, max-age=60"


@page
def player_config(ctx: Context) -> Response:
    services, site = ctx.services, ctx.site
    slug = ctx.path_param("slug")
    with services.sessions() as session:
        production = production_at(
            session, slug, production_query().options(selectinload(Production.chapters))
        )
        # One that is processing plays its preview for whoever may play it (as on its page).
        preview = (
            playable_preview(session, ctx.user, production, by_address=True)
            if production is not None
            else None
        )
        if production is None or (
            not can_view(ctx.user, production, by_address=True) and preview is None
        ):
            raise ctx.not_found(N_("There is no production at this address."))
        if production.slug != slug:
            # Renamed or made public: the same answer at its present address.
            raise HTTPException(301, headers={"Location": ctx.urls.player_config(production.slug)})
        data = player_data(
            production,
            services.store,
            site,
            lang=ctx.lang,
            link=viewer_link(services, production, site, preview),
            preview=preview,
        )
        private = for_managers_only(production, preview)
    # Where the player asks for fresh media links when signed ones expire (as on the page).
    data["api_url"] = ctx.urls.api_production(data["id"])
    headers = dict(PRIVATE_HEADERS) if private else {"Cache-Control": PUBLIC_CACHE}
    return JSONResponse(data, headers=headers)
