"""oEmbed 1.0 (https://oembed.com): a partner site gives a production page's address and gets
the iframe of our player, sized to fit, with its title, credits and thumbnail.

Only the addresses of our own production pages are answered (the host the request was made
to, or the host of ``site.url``); anything else is a 404, as the specification asks. Responses
are JSON only; ``format=xml`` gets the 501 the specification names for an unsupported format.
A production whose player only some sites may frame (``embed_policy``, cite_live.partners) is
not for everyone who asks: 401, the specification's answer for a resource that is not public.
The iframe fits any width (cite_live.player.embed_iframe), within maxwidth and maxheight.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from cite_live import collection_view, collections, params
from cite_live.auth import CHALLENGE, can_view
from cite_live.catalogue import picture_key, preview_version, production_at
from cite_live.metadata import PROVIDER_NAME, image_size
from cite_live.models import Production
from cite_live.player import EMBED_SIZES, embed_iframe, parse_time
from cite_live.presenter import artist_url, embed_url, picture_url, title_of
from cite_live.web.context import CORS, Context, api
from cite_live.web.errors import json_error
from cite_live.web.limits import OEMBED_MAX_URL_LENGTH
from cite_live.web.urls import PATHS, with_query


def _page_path(name: str = "production") -> re.Pattern[str]:
    """A production (or collection) page's path, with or without a trailing slash; the slug is
    one segment."""
    before, _, after = PATHS[name].partition("{slug}")
    return re.compile(f"{re.escape(before)}([^/]+){re.escape(after)}/?")


_PAGE_PATH = _page_path()
_COLLECTION_PATH = _page_path("collection_page")
CACHE_AGE = 3600
NOT_OURS = "This address is not a production page of this site."
RESTRICTED = "This production may only be embedded on the sites it is kept for."


def _size_param(ctx: Context, name: str) -> int | None:
    return params.whole_number(ctx.query.get(name), name)


def player_size(kind: str, maxwidth: int | None, maxheight: int | None) -> tuple[int, int]:
    """The iframe's size: the usual one, shrunk to fit; video keeps 16:9, audio its height."""
    width, height = EMBED_SIZES.get(kind, EMBED_SIZES["video"])
    if kind == "video":
        if maxwidth is not None and width > maxwidth:
            width, height = maxwidth, round(maxwidth * 9 / 16)
        if maxheight is not None and height > maxheight:
            width, height = round(maxheight * 16 / 9), maxheight
    else:
        # The compact audio player keeps its height and stretches across the width.
        if maxwidth is not None:
            width = min(width, maxwidth)
        if maxheight is not None:
            height = min(height, maxheight)
    return max(1, width), max(1, height)


def _slug_of(url: str, hosts: set[str], pattern: re.Pattern[str] = _PAGE_PATH) -> str | None:
    """The slug in ``url`` when it is one of our production pages (or those of ``pattern``)."""
    if len(url) > OEMBED_MAX_URL_LENGTH:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.netloc.lower() not in hosts:
        return None
    match = pattern.fullmatch(parts.path)
    return params.path_name(unquote(match.group(1))) if match else None


def _start_time(url: str) -> float | None:
    """``t`` of the page address, so a link shared at a moment embeds at that moment."""
    values = parse_qs(urlsplit(url.strip()).query).get("t")
    return parse_time(values[0]) if values else None


@api
def oembed(ctx: Context) -> JSONResponse:
    services, urls = ctx.services, ctx.urls
    fmt = (ctx.query.get("format") or "json").strip().lower()
    if fmt != "json":
        raise HTTPException(501, "Only the json format is offered.")
    url = ctx.query.get("url")
    if not url:
        raise HTTPException(400, "The parameter url is required.")
    maxwidth = _size_param(ctx, "maxwidth")
    maxheight = _size_param(ctx, "maxheight")
    # The address the request arrived at (it passed cite_live.site.HostMiddleware) and site.url.
    here = urlsplit(str(ctx.request.base_url)).netloc.lower()
    hosts = {here, urlsplit(ctx.site).netloc.lower()}
    collection_slug = _slug_of(url, hosts, _COLLECTION_PATH)
    if collection_slug is not None:
        return _collection(ctx, collection_slug, maxwidth, maxheight)
    slug = _slug_of(url, hosts)
    if slug is None:
        raise HTTPException(404, NOT_OURS)
    with services.sessions() as session:
        production = production_at(session, slug)
        # Only what plays can be embedded; private, processing and failed productions do not
        # exist for the outside (nor for oEmbed, which answers servers, never a viewer).
        if production is None or not (
            can_view(None, production, by_address=True) or _public_preview(session, production)
        ):
            raise HTTPException(404, NOT_OURS)
        if production.embed_policy != "anywhere":
            # A 401 names a scheme (RFC 9110): the API's, though no token opens it either.
            return json_error(401, RESTRICTED, {**CORS, **CHALLENGE})
        width, height = player_size(production.kind, maxwidth, maxheight)
        title = title_of(production, ctx.lang)
        start = _start_time(url)
        src = with_query(embed_url(production, urls), {"t": f"{start:g}" if start else None})
        data: dict[str, Any] = {
            "version": "1.0",
            "type": "video" if production.kind == "video" else "rich",
            "title": title,
            "provider_name": PROVIDER_NAME,
            "provider_url": urls.absolute(urls.home()),
            "html": embed_iframe(src, production.kind, title, (width, height), capped=True),
            "width": width,
            "height": height,
            "cache_age": CACHE_AGE,
        }
        if production.credits:
            first = production.credits[0].artist
            data["author_name"] = first.name
            data["author_url"] = artist_url(first.slug, urls)
        picture = picture_key(production)
        thumbnail = picture_url(production, services.store, ctx.site)
    size = image_size(services.store, picture) if picture else None
    # The specification wants the thumbnail within maxwidth/maxheight too; there is one size,
    # so a thumbnail that would not fit is left out rather than described as smaller.
    if (
        thumbnail
        and size
        and (maxwidth is None or size[0] <= maxwidth)
        and (maxheight is None or size[1] <= maxheight)
    ):
        data["thumbnail_url"] = thumbnail
        data["thumbnail_width"], data["thumbnail_height"] = size
    return JSONResponse(data, headers={**CORS, "Cache-Control": f"public, max-age={CACHE_AGE}"})


def _public_preview(session: Session, production: Production) -> bool:
    """A public production its artist publishes early, processing, whose preview plays: its
    embed plays that preview (cite_live.web.embeds), which oEmbed may hand out."""
    return (
        production.publish_early
        and production.visibility == "public"
        and preview_version(session, production) is not None
    )


def _collection(
    ctx: Context, slug: str, maxwidth: int | None, maxheight: int | None
) -> JSONResponse:
    """The answer for a public collection's page: its playlist player (collection_view)."""
    with ctx.services.sessions() as session:
        found = collections.public_at(session, slug)
        if found is None:
            raise HTTPException(404, NOT_OURS)
        items = collections.shown_items(session, found.id)
        data = collection_view.oembed(
            found,
            items,
            ctx.store,
            ctx.urls,
            ctx.lang,
            maxwidth=maxwidth,
            maxheight=maxheight,
            cache_age=CACHE_AGE,
        )
    return JSONResponse(data, headers={**CORS, "Cache-Control": f"public, max-age={CACHE_AGE}"})
