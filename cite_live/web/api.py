"""The JSON API: productions and artists as outside tools read them (see DESIGN.md's contract).

Every response, errors included, carries ``Access-Control-Allow-Origin: *``: partner sites read
the catalogue from their own pages. The objects are built by ``cite_live.presenter``;
``cite_live.web.openapi`` describes each of them, and a test checks real responses against that
description.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cite_live import params, play_stats, plays
from cite_live.access import viewer_link
from cite_live.auth import can_manage, can_view
from cite_live.catalogue import (
    playable_preview,
    preview_is_public,
    production_by_address,
    production_query,
)
from cite_live.listing import (
    artist_productions,
    artists_where,
    page_of_productions,
    productions_where,
)
from cite_live.models import Artist, Production
from cite_live.presenter import artist_json, production_json
from cite_live.throttle import AttemptLimiter, ThrottleError, storage_for
from cite_live.vocabulary import KINDS, SESSION_TYPES
from cite_live.web.context import ACCOUNT_CACHE, PRIVATE_HEADERS, Context, api, page
from cite_live.web.errors import json_error
from cite_live.web.limits import (
    API_DEFAULT_PER_PAGE,
    API_MAX_PAGE,
    API_MAX_PER_PAGE,
    MAX_FILTER_LENGTH,
)

# An artist object lists this many of its productions; the rest are a link away.
ARTIST_PRODUCTIONS = 50
NOT_FOUND_PRODUCTION = "There is no production with this identifier."
NOT_FOUND_ARTIST = "There is no artist with this name."
# Beacons one address may send per hour: a listener hearing 30 s of every recording in turn
# sends 120; a script sending more is counted no further.
PLAYS_PER_HOUR = 120
log = logging.getLogger("cite_live.web.api")


def _int_param(ctx: Context, name: str, default: int, low: int, high: int) -> int:
    value = params.whole_number(ctx.query.get(name), name, low=low, high=high)
    return default if value is None else value


def _text_param(ctx: Context, name: str, allowed: tuple[str, ...] = ()) -> str | None:
    raw = ctx.query.get(name)
    # Nothing stored holds one, PostgreSQL refuses text that does, and the OpenAPI document
    # calls such a filter invalid: refused, not cleaned like the other control characters.
    if raw is not None and "\x00" in raw:
        raise HTTPException(400, f"The parameter {name} must not contain a NUL character.")
    value = params.text(raw).strip()
    if not value:
        return None
    if len(value) > MAX_FILTER_LENGTH:
        raise HTTPException(400, f"The parameter {name} is too long.")
    if allowed and value not in allowed:
        raise HTTPException(400, f"The parameter {name} must be one of: {', '.join(allowed)}.")
    return value


def _pagination(ctx: Context) -> tuple[int, int]:
    page = _int_param(ctx, "page", 1, 1, API_MAX_PAGE)
    per_page = _int_param(ctx, "per_page", API_DEFAULT_PER_PAGE, 1, API_MAX_PER_PAGE)
    return page, per_page


def _page_body(
    ctx: Context, items: list[dict[str, Any]], page: int, per_page: int, total: int
) -> dict[str, Any]:
    """A page of this request's list, with absolute links to its neighbours; these keep the
    request's other query parameters, in their order."""

    def link(number: int) -> str:
        return ctx.urls.absolute(ctx.page_link(number, say_first=True))

    last = max(1, -(-total // per_page))
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "next": link(page + 1) if page < last else None,
        # A page past the end points back to the last one that has items.
        "prev": link(min(page - 1, last)) if page > 1 else None,
    }


def _full() -> Select[Any]:
    """Productions with everything ``production_json`` shows."""
    query: Select[Any] = production_query().options(selectinload(Production.chapters))
    return query


@api
def list_productions(ctx: Context) -> JSONResponse:
    page, per_page = _pagination(ctx)
    where = productions_where(
        q=_text_param(ctx, "q"),
        artist=_text_param(ctx, "artist"),
        kind=_text_param(ctx, "kind", KINDS),
        venue=_text_param(ctx, "venue"),
        tag=_text_param(ctx, "tag"),
        session_type=_text_param(ctx, "session_type", SESSION_TYPES),
    )
    with ctx.services.sessions() as session:
        rows, total = page_of_productions(
            session, where, offset=(page - 1) * per_page, limit=per_page, query=_full()
        )
        items = [production_json(p, ctx.store, ctx.urls) for p in rows]
    return JSONResponse(_page_body(ctx, items, page, per_page, total))


@api
def show_production(ctx: Context) -> JSONResponse:
    services = ctx.services
    # One holding a NUL or a space names nothing (and PostgreSQL would refuse a NUL): not found,
    # before any query.
    identifier = ctx.path_name("production_id")
    with services.sessions() as session:
        # By its id, or by its page's address: an unlisted production is readable by whoever
        # has that address (its id is no secret); a private, processing or failed one only by
        # its owner and the admins — to anyone else it does not exist.
        found = production_by_address(session, identifier) if identifier else None
        production, by_address = found if found is not None else (None, False)
        # One that is processing: by whoever may play its preview too (its artist publishes it
        # early), which hls_url then names.
        preview = (
            playable_preview(session, ctx.user, production, by_address=by_address)
            if production is not None
            else None
        )
        if production is None or (
            not can_view(ctx.user, production, by_address=by_address) and preview is None
        ):
            raise HTTPException(404, NOT_FOUND_PRODUCTION)
        link = viewer_link(services, production, ctx.site, preview)
        manager = can_manage(ctx.user, production)
        data = production_json(
            production, services.store, ctx.urls, link=link, preview=preview, manager=manager
        )
        private = (
            production.visibility == "private"
            or (preview is not None and not preview_is_public(production))
            # Its settings, for its managers alone.
            or manager
        )
    if private:
        # Signed links, for one viewer: no shared cache keeps them, no Referer carries them.
        return JSONResponse(data, headers=PRIVATE_HEADERS)
    return JSONResponse(data)


@api
def list_artists(ctx: Context) -> JSONResponse:
    page, per_page = _pagination(ctx)
    q = _text_param(ctx, "q")
    discipline = _text_param(ctx, "discipline")
    commune = _text_param(ctx, "commune")
    with ctx.services.sessions() as session:
        where = artists_where(session, q=q, discipline=discipline, commune=commune)
        total = session.scalar(select(func.count()).select_from(Artist).where(*where)) or 0
        rows = session.scalars(
            select(Artist)
            .where(*where)
            .order_by(Artist.search_text, Artist.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        items = [artist_json(artist, ctx.store, ctx.urls) for artist in rows]
    return JSONResponse(_page_body(ctx, items, page, per_page, total))


@api
def show_artist(ctx: Context) -> JSONResponse:
    urls = ctx.urls
    slug = ctx.path_name("slug")
    with ctx.services.sessions() as session:
        found = artist_productions(session, slug, limit=ARTIST_PRODUCTIONS, query=_full())
        if found is None:
            raise HTTPException(404, NOT_FOUND_ARTIST)
        artist, rows, total = found
        data = artist_json(artist, ctx.store, urls)
        data["productions"] = [production_json(p, ctx.store, urls) for p in rows]
    data["productions_total"] = total
    data["productions_url"] = urls.absolute(urls.api_productions(artist=artist.slug))
    return JSONResponse(data)


@page
def my_stats(ctx: Context) -> Response:
    """The plays of the caller's productions, as the studio's statistics page shows them."""
    user = ctx.require_user()
    days = _int_param(ctx, "days", play_stats.DEFAULT_RANGE, 1, max(play_stats.RANGES))
    if days not in play_stats.RANGES:
        raise HTTPException(400, play_stats.BAD_RANGE)
    with ctx.services.sessions() as session:
        stats = play_stats.play_stats(
            session,
            days=days,
            owner_id=user.id,
            lang=ctx.lang,
        )
    # No CORS (a plain page handler): a partner page has no business reading an artist's numbers.
    return JSONResponse(play_stats.stats_json(stats), headers={"Cache-Control": ACCOUNT_CACHE})


# --- the player's beacon -------------------------------------------------------------------------

_making_limiter = threading.Lock()


def _limiter(request: Request) -> AttemptLimiter:
    state = request.app.state
    with _making_limiter:
        limiter = getattr(state, "play_limiter", None)
        if not isinstance(limiter, AttemptLimiter):
            storage = storage_for(request.app.state.services.settings)
            limiter = AttemptLimiter(storage, PLAYS_PER_HOUR, window=3600, namespace="plays")
            state.play_limiter = limiter
        return limiter


async def _beacon_body(request: Request) -> bytes | None:
    """The body, or None past plays.MAX_BEACON_BYTES (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > plays.MAX_BEACON_BYTES:
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > plays.MAX_BEACON_BYTES:
            return None
    return body


async def record_play(request: Request) -> Response:
    """``POST /api/v1/plays``: one play of a production, sent once by the player (plays.js).
    204 whether it was counted or not (a replay, a crawler): the page never reads the answer."""
    body = await _beacon_body(request)
    if body is None:
        return json_error(413, "A play is described in less than 1 KB.")
    try:
        return await run_in_threadpool(_record, Context.of(request), body)
    except HTTPException as exc:
        return json_error(exc.status_code, str(exc.detail), exc.headers)


def _record(ctx: Context, body: bytes) -> Response:
    own = plays.normalize_origin(ctx.site)
    # As the forms' check (cite_live.csrf): the site's address, or the one the request came to.
    url = ctx.request.url
    here = plays.normalize_origin(f"{url.scheme}://{url.netloc}")
    try:
        beacon = plays.parse_beacon(json.loads(body.decode("utf-8")), own)
    except (UnicodeDecodeError, ValueError) as exc:
        # json's errors are ValueErrors too: their message names a position, not the field.
        message = str(exc) if isinstance(exc, plays.BadBeacon) else "The body must be JSON."
        raise HTTPException(400, message) from exc
    # A browser writes the Origin of the page that sends a beacon, and no script may change it:
    # another site's page cannot make its visitors' browsers count plays here. A request made by
    # hand can claim any Origin (and any origin in its body): that is why counts are limited per
    # address below, and why the embedding origin is what browsers reported, not a proof.
    claimed = ctx.request.headers.get("origin")
    if claimed is not None and plays.normalize_origin(claimed) not in {own, here} - {None}:
        raise HTTPException(403, "Plays are counted from this site's own pages.")
    user_agent = ctx.request.headers.get("user-agent", "")
    if plays.is_crawler(user_agent):
        return Response(status_code=204)
    client = ctx.request.client
    address = client.host if client else "unknown"
    # Counted per address, before the database is asked anything, so that guessing addresses is
    # limited too. Keyed with the site's secret: a shared Redis holds no address, nor a plain
    # hash of one (every IPv4 address can be hashed in minutes to reverse it).
    digest = hmac.new(ctx.services.secret_key.encode(), address.encode(), hashlib.sha256)
    key = "address:" + digest.hexdigest()
    try:
        wait = _limiter(ctx.request).attempt([key])
    except ThrottleError as exc:
        log.warning("plays not counted: the rate limit's storage cannot be reached")
        raise HTTPException(
            503, "Plays cannot be counted right now.", {"Retry-After": "60"}
        ) from exc
    if wait is not None:
        raise HTTPException(429, "Too many plays from this address.", {"Retry-After": str(wait)})
    with ctx.services.sessions() as session:
        found = production_by_address(session, beacon.production)
        # Unknown, private, a draft, another's, processing, an unlisted one named by its id:
        # the same answer for all, which tells nothing of which it is.
        if found is None or not plays.countable(found[0], by_address=found[1]):
            raise HTTPException(404, NOT_FOUND_PRODUCTION)
        production_id = found[0].id
        plays.record_play(session, production_id, beacon, address=address, user_agent=user_agent)
    return Response(status_code=204)
