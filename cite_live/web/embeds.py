"""The embeddable player: ``/embed/{id}``, a page holding only the player, for partner sites."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.responses import Response

from cite_live.access import media_link
from cite_live.auth import can_view
from cite_live.catalogue import production_by_address
from cite_live.player import PlayerOptions, player_data
from cite_live.web.context import Context, page

# Said in English, as the API says it.
NO_SUCH_PRODUCTION = "There is no production with this identifier."
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


@page
def embed_page(ctx: Context) -> Response:
    services, lang, site = ctx.services, ctx.lang, ctx.site
    with services.sessions() as session:
        found = production_by_address(session, ctx.path_param("production_id"))
        production, by_address = found if found is not None else (None, False)
        # Unlisted productions embed by their secret address: whoever has the link may share
        # it. Private ones do not exist for the outside: only their owner and the admins see
        # them, on this site.
        if production is None or not can_view(ctx.user, production, by_address=by_address):
            raise HTTPException(404, NO_SUCH_PRODUCTION)
        link = media_link(services, production, site)
        data = player_data(production, services.store, site, lang=lang, link=link)
        private = production.visibility == "private"
    options = PlayerOptions.from_query(ctx.query)
    return ctx.render(
        "embed.html",
        {"data": data, "options": options.as_dict(), "lang": lang},
        headers=PRIVATE_EMBED_HEADERS if private else EMBED_HEADERS,
    )
