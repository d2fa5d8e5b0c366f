"""The embeddable player: ``/embed/{id}``, a page holding only the player, for partner sites.

Where it may be framed is the production's ``embed_policy`` (cite_live.partners). Whatever
cannot be played in the partner's frame (an unknown id, a private, draft, processing or failed
production, or a frame of a site the policy leaves out) answers a small card in that frame:
"This recording is no longer available here" and a link to the site, framed by any site, so
that the partner's page never shows the browser's broken-frame icon. A public production that is
processing plays its preview there when its artist publishes it as soon as playable.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import Response

from cite_live import partners
from cite_live.access import media_link
from cite_live.auth import can_view
from cite_live.catalogue import preview_version, production_by_address
from cite_live.player import PlayerOptions, player_data
from cite_live.presenter import page_url
from cite_live.web.context import Context, page, unavailable_card

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
# A production kept for some sites answers each framer its own way (the player, or the card):
# no cache may hand one framer's answer to another (the page cache keeps no private answer).
RESTRICTED_CACHE = {
    "Cache-Control": "private, no-store",
    "Vary": "Referer, Sec-Fetch-Dest",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def _here(ctx: Context) -> str:
    """The origin this request was made to (it passed cite_live.site.HostMiddleware)."""
    parts = urlsplit(str(ctx.request.base_url))
    return f"{parts.scheme}://{parts.netloc}".lower()


@page
def embed_page(ctx: Context) -> Response:
    services, lang, site = ctx.services, ctx.lang, ctx.site
    home = ctx.urls.absolute(ctx.urls.home())
    with services.sessions() as session:
        found = production_by_address(session, ctx.path_param("production_id"))
        production, by_address = found if found is not None else (None, False)
        # Unlisted productions embed by their secret address: whoever has the link may share
        # it. Private ones do not exist for the outside: only their owner and the admins see
        # them, on this site.
        # A public production its artist publishes early plays its preview in partners'
        # frames while it is processing; any other preview stays on this site.
        preview = (
            preview_version(session, production)
            if production is not None
            and production.publish_early
            and production.visibility == "public"
            else None
        )
        if production is None or (
            not can_view(ctx.user, production, by_address=by_address) and preview is None
        ):
            return unavailable_card(ctx, 404, home)
        allowed = partners.allowed_origins(production, site)
        headers = ctx.request.headers
        if partners.framer_refused(
            allowed, headers.get("sec-fetch-dest"), headers.get("referer"), _here(ctx)
        ):
            return unavailable_card(ctx, 403, page_url(production, ctx.urls), production.kind)
        link = media_link(services, production, site)
        data = player_data(production, services.store, site, lang=lang, link=link, preview=preview)
        private = production.visibility == "private"
    options = PlayerOptions.from_query(ctx.query)
    if private:
        response_headers = PRIVATE_EMBED_HEADERS
    elif allowed is None:
        response_headers = EMBED_HEADERS
    else:
        ancestors = partners.frame_ancestors(allowed)
        response_headers = {
            **RESTRICTED_CACHE,
            "Content-Security-Policy": f"frame-ancestors {ancestors}",
        }
    return ctx.render(
        "embed.html",
        {"data": data, "options": options.as_dict(), "lang": lang},
        headers=response_headers,
    )
