"""The partners' guide: ``/partners``, for the people who build the festival's, the town's or a
label's site — the embed and its parameters, oEmbed, the player API with a live example,
collections, where a production may play, how plays are counted, and how to be listed.

The live example frames the newest production that plays anywhere; without one, the guide shows
the code alone.
"""

from __future__ import annotations

from email.utils import parseaddr
from typing import Any

from starlette.responses import Response

from cite_live.listing import newest_first, visible
from cite_live.models import Production
from cite_live.player import EMBED_SIZES, embed_snippet
from cite_live.presenter import embed_url, page_url, title_of
from cite_live.web.context import Context, page

# What the examples show when the catalogue has nothing to frame yet.
PLACEHOLDER_ID = "ID"


def _example(ctx: Context) -> dict[str, Any] | None:
    """The newest listed production that plays on any site, as the examples name it."""
    with ctx.services.sessions() as session:
        anywhere = Production.embed_policy == "anywhere"
        production = session.scalars(newest_first([visible(), anywhere]).limit(1)).first()
        if production is None:
            return None
        title = title_of(production, ctx.lang)
        embed = embed_url(production, ctx.urls)
        return {
            "title": title,
            "kind": production.kind,
            "embed_url": embed,
            "page_url": page_url(production, ctx.urls),
            "snippet": embed_snippet(embed, production.kind, title),
            "height": EMBED_SIZES.get(production.kind, EMBED_SIZES["video"])[1],
        }


@page
def partners_guide(ctx: Context) -> Response:
    urls = ctx.urls
    example = _example(ctx)
    embed = example["embed_url"] if example else urls.absolute(urls.embed(PLACEHOLDER_ID))
    production_page = (
        example["page_url"] if example else urls.absolute(urls.production(PLACEHOLDER_ID))
    )
    return ctx.render(
        "partners_guide.html",
        {
            "nav": "partners",
            "example": example,
            "embed": embed,
            "production_page": production_page,
            "oembed": urls.absolute(urls.oembed(url=production_page, format="json")),
            # The address alone: a mailto link takes no display name.
            "contact": parseaddr(ctx.settings.contact)[1],
        },
    )
