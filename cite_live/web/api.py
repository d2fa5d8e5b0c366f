"""The JSON API: productions and artists as outside tools read them (see DESIGN.md's contract).

Every response, errors included, carries ``Access-Control-Allow-Origin: *``: partner sites read
the catalogue from their own pages. ``cite_live.web.openapi`` describes each object below, and a
test checks real responses against that description.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote, urlencode

from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from cite_live import params
from cite_live.access import media_link
from cite_live.auth import can_view, current_user
from cite_live.catalogue import playing_version, production_by_address, production_query
from cite_live.listing import artists_where, page_of_productions, productions_where
from cite_live.metadata import artist_url, aware, embed_url, page_url
from cite_live.models import Artist, Production
from cite_live.presenter import chapters_of, duration_of, media_of, media_url
from cite_live.site import site_url
from cite_live.storage import ObjectStore
from cite_live.vocabulary import KINDS, SESSION_TYPES

MAX_PAGE = 1_000_000
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
# An artist object lists this many of its productions; the rest are a link away.
ARTIST_PRODUCTIONS = 50
MAX_FILTER_LENGTH = 200
CORS = {"Access-Control-Allow-Origin": "*"}
PRIVATE_HEADERS = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
NOT_FOUND_PRODUCTION = "There is no production with this identifier."
NOT_FOUND_ARTIST = "There is no artist with this name."

Handler = Callable[[Request], JSONResponse]


def production_json(
    production: Production,
    store: ObjectStore,
    site_url: str,
    *,
    link: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The production object: ids, status, credits and absolute URLs for players and pages.

    ``link`` turns a key into its URL (``access.media_link``: signed links for a private
    production shown to its managers); by default, the store's public URL."""
    version = playing_version(production)
    media = media_of(production, media_url(store, site_url, link))
    data: dict[str, Any] = {
        "id": production.id,
        "slug": production.slug,
        "title": production.title,
        "title_en": production.title_en,
        "kind": production.kind,
        "status": production.status,
        "visibility": production.visibility,
        "duration": duration_of(production),
        "description": production.description,
        "description_en": production.description_en,
        "recorded_on": production.recorded_on.isoformat() if production.recorded_on else None,
        "session_type": production.session_type,
        "licence": production.licence,
        "venue": (
            {"name": production.venue.name, "slug": production.venue.slug}
            if production.venue
            else None
        ),
        "tags": [tag.name for tag in production.tags],
        "artists": [
            {"name": c.artist.name, "slug": c.artist.slug, "role": c.role}
            for c in production.credits
        ],
        "chapters": chapters_of(production),
        "hls_url": media["hls"],
        "poster_url": media["picture"],
        "waveform_url": media["waveform"],
        "storyboard_url": media["storyboard"],
        "download_url": media["download"],
        "loudness_lufs": version.loudness_lufs if version else None,
        "page_url": page_url(production, site_url),
        "embed_url": embed_url(production, site_url),
        "created_at": aware(production.created_at).isoformat(),
        "published_at": (
            aware(production.published_at).isoformat() if production.published_at else None
        ),
    }
    if production.status == "failed":
        data["error"] = production.error
    return data


def artist_json(artist: Artist, site_url: str) -> dict[str, Any]:
    """The artist object: who they are, where from, and where to read or follow them."""
    links = [
        {"label": str(link.get("label") or link["url"]), "url": str(link["url"])}
        for link in artist.links or []
        if isinstance(link, dict) and link.get("url")
    ]
    return {
        "slug": artist.slug,
        "name": artist.name,
        "commune": artist.commune,
        "disciplines": [d for d in artist.disciplines or [] if isinstance(d, str)],
        "bio": artist.bio,
        "links": links,
        "featured": artist.featured,
        "page_url": artist_url(artist.slug, site_url),
        "feed_url": f"{artist_url(artist.slug, site_url)}/feed.atom",
        "api_url": f"{site_url}/api/v1/artists/{quote(artist.slug)}",
    }


def api(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    """Answer with CORS headers, and turn HTTP errors into the JSON error object here, so that
    a partner page reading a 404 sees the 404 rather than a cross-origin failure."""

    @wraps(handler)
    async def wrapped(request: Request) -> JSONResponse:
        try:
            # Off the event loop: database work and rendering would hold every other visitor.
            response = await run_in_threadpool(handler, request)
        except HTTPException as exc:
            return JSONResponse(
                {"error": exc.detail, "status": exc.status_code},
                status_code=exc.status_code,
                headers=CORS,
            )
        response.headers.update(CORS)
        return response

    return wrapped


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    value = params.whole_number(request.query_params.get(name), name, low=low, high=high)
    return default if value is None else value


def _text_param(request: Request, name: str, allowed: tuple[str, ...] = ()) -> str | None:
    raw = request.query_params.get(name)
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


def _path_param(request: Request, name: str, not_found: str) -> str:
    """The path parameter ``name``; one holding a NUL names nothing (and PostgreSQL would
    refuse it), so it is ``not_found`` before any query."""
    value: str = request.path_params[name]
    if "\x00" in value:
        raise HTTPException(404, not_found)
    return value


def _pagination(request: Request) -> tuple[int, int]:
    page = _int_param(request, "page", 1, 1, MAX_PAGE)
    per_page = _int_param(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    return page, per_page


def _here(request: Request, **params: Any) -> str:
    """This request's address with ``params`` in its query, on the site's address."""
    url = request.url.include_query_params(**params)
    return f"{site_url(request)}{url.path}?{url.query}"


def _page_body(
    request: Request, items: list[dict[str, Any]], page: int, per_page: int, total: int
) -> dict[str, Any]:
    last = max(1, -(-total // per_page))
    next_url = _here(request, page=page + 1) if page < last else None
    # A page past the end points back to the last one that has items.
    prev_url = _here(request, page=min(page - 1, last)) if page > 1 else None
    return {
        "items": items,
        "page": page,
        "per_page": per_page,
        "total": total,
        "next": next_url,
        "prev": prev_url,
    }


def _full() -> Select[Any]:
    """Productions with everything ``production_json`` shows."""
    query: Select[Any] = production_query().options(selectinload(Production.chapters))
    return query


@api
def list_productions(request: Request) -> JSONResponse:
    services = request.app.state.services
    page, per_page = _pagination(request)
    where = productions_where(
        q=_text_param(request, "q"),
        artist=_text_param(request, "artist"),
        kind=_text_param(request, "kind", KINDS),
        venue=_text_param(request, "venue"),
        tag=_text_param(request, "tag"),
        session_type=_text_param(request, "session_type", SESSION_TYPES),
    )
    with services.sessions() as session:
        rows, total = page_of_productions(
            session, where, offset=(page - 1) * per_page, limit=per_page, query=_full()
        )
        base = site_url(request)
        items = [production_json(p, services.store, base) for p in rows]
    return JSONResponse(_page_body(request, items, page, per_page, total))


@api
def show_production(request: Request) -> JSONResponse:
    services = request.app.state.services
    with services.sessions() as session:
        # By its id, or by its page's address: an unlisted production is readable by whoever
        # has that address (its id is no secret); a private, processing or failed one only by
        # its owner and the admins — to anyone else it does not exist.
        production_id = _path_param(request, "production_id", NOT_FOUND_PRODUCTION)
        found = production_by_address(session, production_id)
        production, by_address = found if found is not None else (None, False)
        if production is None or not can_view(
            current_user(request), production, by_address=by_address
        ):
            raise HTTPException(404, NOT_FOUND_PRODUCTION)
        base = site_url(request)
        link = media_link(services, production, base)
        data = production_json(production, services.store, base, link=link)
        private = production.visibility == "private"
    if private:
        # Signed links, for one viewer: no shared cache keeps them, no Referer carries them.
        return JSONResponse(data, headers=PRIVATE_HEADERS)
    return JSONResponse(data)


@api
def list_artists(request: Request) -> JSONResponse:
    services = request.app.state.services
    page, per_page = _pagination(request)
    q = _text_param(request, "q")
    discipline = _text_param(request, "discipline")
    commune = _text_param(request, "commune")
    with services.sessions() as session:
        where = artists_where(session, q=q, discipline=discipline, commune=commune)
        total = session.scalar(select(func.count()).select_from(Artist).where(*where)) or 0
        rows = session.scalars(
            select(Artist)
            .where(*where)
            .order_by(Artist.search_text, Artist.id)
            .offset((page - 1) * per_page)
            .limit(per_page)
        ).all()
        base = site_url(request)
        items = [artist_json(artist, base) for artist in rows]
    return JSONResponse(_page_body(request, items, page, per_page, total))


@api
def show_artist(request: Request) -> JSONResponse:
    services = request.app.state.services
    slug = params.path_name(request.path_params["slug"])
    base = site_url(request)
    with services.sessions() as session:
        artist = (
            session.scalars(select(Artist).where(Artist.slug == slug)).first() if slug else None
        )
        if artist is None:
            raise HTTPException(404, NOT_FOUND_ARTIST)
        rows, total = page_of_productions(
            session,
            productions_where(artist=slug),
            offset=0,
            limit=ARTIST_PRODUCTIONS,
            query=_full(),
        )
        data = artist_json(artist, base)
        data["productions"] = [production_json(p, services.store, base) for p in rows]
    data["productions_total"] = total
    data["productions_url"] = (
        f"{base}{request.app.url_path_for('api_productions')}?{urlencode({'artist': slug})}"
    )
    return JSONResponse(data)
