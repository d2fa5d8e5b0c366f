"""The JSON API: production objects as outside tools read them (see DESIGN.md's contract)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from cite_live.catalogue import get_production, list_public_productions
from cite_live.models import Production
from cite_live.storage import ObjectStore

MAX_PER_PAGE = 100


def production_json(production: Production, store: ObjectStore, site_url: str) -> dict[str, Any]:
    """The production object: ids, status, credits and absolute URLs for players and pages."""
    version = production.current_version if production.status == "ready" else None

    def url(key: str | None) -> str | None:
        return store.public_url(key, site_url) if key else None

    data: dict[str, Any] = {
        "id": production.id,
        "slug": production.slug,
        "title": production.title,
        "title_en": production.title_en,
        "kind": production.kind,
        "status": production.status,
        "visibility": production.visibility,
        "duration": round(production.duration, 3) if production.duration is not None else None,
        "description": production.description,
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
        "hls_url": url(version.master_key) if version else None,
        "poster_url": url(version.poster_key or version.cover_key) if version else None,
        "waveform_url": url(version.waveform_key) if version else None,
        "storyboard_url": url(version.storyboard_vtt_key) if version else None,
        "loudness_lufs": version.loudness_lufs if version else None,
        "page_url": f"{site_url}/productions/{production.slug}",
        "embed_url": f"{site_url}/embed/{production.id}",
        "created_at": production.created_at.isoformat(),
        "published_at": production.published_at.isoformat() if production.published_at else None,
    }
    if production.status == "failed":
        data["error"] = production.error
    return data


def site_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise HTTPException(400, f"The parameter {name} must be a whole number.") from None
    if not low <= value <= high:
        raise HTTPException(400, f"The parameter {name} must be between {low} and {high}.")
    return value


async def list_productions(request: Request) -> JSONResponse:
    services = request.app.state.services
    page = _int_param(request, "page", 1, 1, 1_000_000)
    per_page = _int_param(request, "per_page", 20, 1, MAX_PER_PAGE)
    with services.sessions() as session:
        rows, total = list_public_productions(session, offset=(page - 1) * per_page, limit=per_page)
        base = site_url(request)
        items = [production_json(p, services.store, base) for p in rows]
    has_next = page * per_page < total
    next_url = str(request.url.include_query_params(page=page + 1)) if has_next else None
    return JSONResponse(
        {"items": items, "page": page, "per_page": per_page, "total": total, "next": next_url}
    )


async def show_production(request: Request) -> JSONResponse:
    services = request.app.state.services
    with services.sessions() as session:
        production = get_production(session, request.path_params["production_id"])
        # Private productions are invisible until accounts exist to see them.
        if production is None or production.visibility == "private":
            raise HTTPException(404, "There is no production with this identifier.")
        data = production_json(production, services.store, site_url(request))
    return JSONResponse(data)
