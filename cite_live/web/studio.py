"""The artist's own pages: my productions with their live processing state, the upload panel,
edit, cover, replace, delete and retry.

Every production page here answers 404 to anyone who may not manage it, exactly as for an id
that does not exist: a private production's id must not be confirmed to strangers. Handlers
read what a page shows into plain dicts while their session is open, then render (as pages.py).
After a change, a 303 goes back with ``?done=<code>``: the message is chosen by the page from a
fixed list, so nothing typed in an address is ever shown as a notice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from cite_live import access, covers, i18n, params
from cite_live.auth import CurrentUser, can_manage, require_user
from cite_live.catalogue import production_query
from cite_live.i18n import N_
from cite_live.jobs import ingest, table
from cite_live.models import Artist, Job, Production, Venue
from cite_live.production_form import FieldError, ProductionForm, apply
from cite_live.production_status import (
    VISIBILITY_HINTS,
    human_size,
    latest_jobs,
    status_json,
    studio_row,
)
from cite_live.services import Services
from cite_live.site import site_url
from cite_live.vocabulary import (
    CREDIT_ROLE_LABELS,
    LICENCE_NAMES,
    LICENCES,
    SESSION_TYPE_LABELS,
    SESSION_TYPES,
    VISIBILITY_LABELS,
    label,
)
from cite_live.web.catalogue import make_pager, page_number, safe_next
from cite_live.web.endpoints import with_form

PER_PAGE = 50
# Names offered as suggestions in the credits' rows; beyond, the artist types the whole name.
MAX_SUGGESTED_ARTISTS = 2000
NOT_FOUND = N_("There is no production at this address.")
UPLOAD_ENDPOINT = "/api/v1/uploads/"

DONE = {
    "saved": N_("Saved."),
    "cover": N_("The new cover is saved."),
    "cover-removed": N_("The cover chosen from the recording is shown again."),
    "deleted": N_("The production was deleted."),
    "retried": N_("Processing starts again."),
    "not-retried": N_("This production cannot be processed again: its original file is gone."),
    "busy": N_("This production is already being processed."),
}
FORM_HAS_ERRORS = N_("Some fields need a correction; they are marked below.")


# --- helpers shared with admin.py ----------------------------------------------------------------


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def lang_of(request: Request) -> str:
    lang = getattr(request.state, "lang", i18n.DEFAULT_LANGUAGE)
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


def site_of(request: Request) -> str:
    return site_url(request)


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    # Pages of one account: never kept by a shared cache nor the browser's back-forward copy.
    response.headers["Cache-Control"] = "private, no-store"
    return response


def done_message(request: Request) -> str | None:
    code = request.query_params.get("done", "")
    return i18n.gettext(DONE[code], lang_of(request)) if code in DONE else None


def see_other(path: str, done: str | None = None) -> RedirectResponse:
    if done:
        path += ("&" if "?" in path else "?") + f"done={done}"
    return RedirectResponse(path, status_code=303)


def sentence(error: FieldError, lang: str) -> str:
    text = i18n.gettext(error.message, lang)
    return text % error.values if error.values else text


def choices(labels: dict[str, str], lang: str) -> list[dict[str, str]]:
    return [{"code": code, "label": i18n.gettext(text, lang)} for code, text in labels.items()]


def _own_page(
    request: Request, session: Session, user: CurrentUser
) -> tuple[list[tuple[Production, Job | None]], Any]:
    """One page of the productions ``user`` owns, newest first, with their newest jobs."""
    page = page_number(request)
    mine = Production.owner_id == user.id
    total = session.scalar(select(func.count()).select_from(Production).where(mine)) or 0
    pager = make_pager(request, page, PER_PAGE, total)
    rows = list(
        session.scalars(
            select(Production)
            .where(mine)
            .order_by(Production.created_at.desc(), Production.id)
            .offset(pager.offset)
            .limit(PER_PAGE)
        )
    )
    found = latest_jobs(session, [p.id for p in rows])
    return [(p, found.get(p.id)) for p in rows], pager


def managed(request: Request, session: Session, user: CurrentUser) -> Production:
    """The production of the path, with what the edit page shows; 404 unless ``user`` may
    manage it."""
    production_id = params.public_id(request.path_params["production_id"])
    production: Production | None = None
    if production_id is not None:
        production = session.scalars(
            production_query()
            .options(selectinload(Production.chapters))
            .where(Production.id == production_id)
        ).first()
    if production is None or not can_manage(user, production):
        raise HTTPException(404, i18n.gettext(NOT_FOUND, lang_of(request)))
    return production


def uploader(request: Request, production_id: str | None = None) -> dict[str, Any]:
    """What the upload panel's script is told (web/static/js/uploader.js)."""
    return {
        "endpoint": UPLOAD_ENDPOINT,
        "max_bytes": services_of(request).settings.limits.max_bytes,
        "max_size": human_size(services_of(request).settings.limits.max_bytes, lang_of(request)),
        "production": production_id or "",
        "lang": lang_of(request),
    }


# --- my productions ------------------------------------------------------------------------------
# Every handler below reads or writes the database: a plain ``def``, or ``with_form`` when it
# needs the form (cite_live/endpoints.py), so that it runs in a worker thread.


def studio_page(request: Request) -> Response:
    user = require_user(request)
    lang = lang_of(request)
    with services_of(request).sessions() as session:
        rows, pager = _own_page(request, session, user)
        items = [studio_row(p, job, lang) for p, job in rows]
    context = {
        "nav": "studio",
        "items": items,
        "pager": pager,
        "done": done_message(request),
        "is_admin": user.is_admin,
        "uploader": uploader(request),
        "status_url": "/api/v1/me/productions" + (f"?page={pager.page}" if pager.page > 1 else ""),
    }
    return render(request, "studio.html", context)


def my_productions(request: Request) -> Response:
    """GET /api/v1/me/productions: the caller's productions and their jobs, for the studio's
    polling and for scripts (Bearer token)."""
    user = require_user(request)
    site = site_of(request)
    with services_of(request).sessions() as session:
        rows, pager = _own_page(request, session, user)
        body = {
            "items": [status_json(p, job, site) for p, job in rows],
            "page": pager.page,
            "per_page": PER_PAGE,
            "total": pager.total,
        }
    return JSONResponse(body, headers={"Cache-Control": "private, no-store"})


def retry(request: Request) -> Response:
    user = require_user(request)
    services = services_of(request)
    with services.sessions() as session:
        production = managed(request, session, user)
        job = latest_jobs(session, [production.id]).get(production.id)
        production_id = production.id
        busy = job is not None and job.state in ("queued", "running")
    if busy:
        return see_other("/studio", "busy")
    job_id = ingest.retry(services, production_id)
    if job_id is None:
        return see_other("/studio", "not-retried")
    table.enqueue(services, job_id)
    return see_other("/studio", "retried")


# --- edit ----------------------------------------------------------------------------------------


def _edit_context(
    request: Request,
    session: Session,
    production: Production,
    form: ProductionForm,
    errors: dict[str, FieldError],
) -> dict[str, Any]:
    lang = lang_of(request)
    job = latest_jobs(session, [production.id]).get(production.id)
    venues = session.scalars(select(Venue).order_by(Venue.name, Venue.id)).all()
    artist_names = session.scalars(
        select(Artist.name).order_by(Artist.search_text, Artist.id).limit(MAX_SUGGESTED_ARTISTS)
    ).all()
    # A private production's cover is refused at its public address: the owner gets a signed one.
    link = access.media_link(services_of(request), production, site_of(request))
    cover = link(production.cover_key) if production.cover_key else None
    return {
        "nav": "studio",
        "production": studio_row(production, job, lang),
        "duration": production.duration,
        "form": form,
        "rows": form.rows(),
        "errors": {name: sentence(error, lang) for name, error in errors.items()},
        "done": done_message(request),
        "summary": None,
        "cover_url": cover,
        "roles": choices(CREDIT_ROLE_LABELS, lang),
        "venues": [{"id": str(v.id), "name": v.name} for v in venues],
        "artist_names": list(artist_names),
        "session_types": [
            {"code": c, "label": label(SESSION_TYPE_LABELS, c, lang)} for c in SESSION_TYPES
        ],
        "licences": [{"code": c, "label": i18n.gettext(LICENCE_NAMES[c], lang)} for c in LICENCES],
        "visibilities": [
            {
                "code": code,
                "label": i18n.gettext(text, lang),
                "hint": i18n.gettext(VISIBILITY_HINTS[code], lang),
            }
            for code, text in VISIBILITY_LABELS.items()
        ],
        "max_cover_mb": covers.MAX_BYTES // (1024 * 1024),
    }


def edit_page(request: Request) -> Response:
    user = require_user(request)
    with services_of(request).sessions() as session:
        production = managed(request, session, user)
        context = _edit_context(request, session, production, ProductionForm.of(production), {})
    return render(request, "studio_edit.html", context)


@with_form()
def edit_submit(request: Request, fields: FormData) -> Response:
    user = require_user(request)
    form = ProductionForm.read(fields)
    today = datetime.now(UTC).date()
    with services_of(request).sessions.begin() as session:
        production = managed(request, session, user)
        changes, errors = form.check(session, production.duration, today)
        if changes is None:
            context = _edit_context(request, session, production, form, errors)
            context["summary"] = i18n.gettext(FORM_HAS_ERRORS, lang_of(request))
        else:
            apply(session, production, changes)
            production_id = production.id
    if changes is None:
        return render(request, "studio_edit.html", context, status_code=400)
    return see_other(f"/studio/productions/{production_id}", "saved")


@with_form(max_files=1, max_fields=10)
def cover_submit(request: Request, form: FormData) -> Response:
    user = require_user(request)
    services = services_of(request)
    with services.sessions() as session:
        production_id = managed(request, session, user).id
    if form.get("remove"):
        _remove_cover(services, production_id)
        return see_other(f"/studio/productions/{production_id}", "cover-removed")
    upload = form.get("cover")
    problem: str | None = None
    jpeg = b""
    if not isinstance(upload, UploadFile) or not upload.filename:
        problem = covers.NO_FILE
    elif upload.size is not None and upload.size > covers.MAX_BYTES:
        problem = covers.TOO_BIG
    else:
        try:
            jpeg = covers.reencode(upload.file)
        except covers.CoverRefused as refused:
            problem = refused.message
    if problem is not None:
        with services.sessions() as session:
            production = managed(request, session, user)
            form_of = ProductionForm.of(production)
            context = _edit_context(request, session, production, form_of, {})
        context["errors"]["cover"] = i18n.gettext(problem, lang_of(request))
        return render(request, "studio_edit.html", context, status_code=400)
    covers.replace_cover(services, production_id, jpeg)
    return see_other(f"/studio/productions/{production_id}", "cover")


def _remove_cover(services: Services, production_id: str) -> None:
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        old = production.cover_key if production is not None else None
        if production is not None:
            production.cover_key = None
    if old:
        covers.remove_quietly(services, old)


# --- replace, delete -----------------------------------------------------------------------------


def replace_page(request: Request) -> Response:
    user = require_user(request)
    lang = lang_of(request)
    with services_of(request).sessions() as session:
        production = managed(request, session, user)
        job = latest_jobs(session, [production.id]).get(production.id)
        context = {
            "nav": "studio",
            "production": studio_row(production, job, lang),
            "uploader": uploader(request, production.id),
        }
    return render(request, "studio_replace.html", context)


def delete_page(request: Request) -> Response:
    user = require_user(request)
    lang = lang_of(request)
    with services_of(request).sessions() as session:
        production = managed(request, session, user)
        context = {
            "nav": "studio",
            "production": studio_row(production, None, lang),
            "next": back_to(request.query_params.get("next")),
        }
    return render(request, "studio_delete.html", context)


@with_form()
def delete_submit(request: Request, form: FormData) -> Response:
    user = require_user(request)
    services = services_of(request)
    target = form.get("next")
    with services.sessions() as session:
        production_id = managed(request, session, user).id
    remove_production(services, production_id)
    return see_other(back_to(target if isinstance(target, str) else None), "deleted")


def back_to(target: str | None) -> str:
    """Where to go after a delete: the studio or admin list it was asked from, else /studio."""
    path = safe_next(target)
    return path if path.startswith(("/studio", "/admin")) else "/studio"


def remove_production(services: Services, production_id: str) -> bool:
    """Delete a production, its records and its objects in the store, custom cover included."""
    with services.sessions() as session:
        production = session.get(Production, production_id)
        cover = production.cover_key if production is not None else None
    removed = ingest.delete_production(services, production_id)
    if cover:
        covers.remove_quietly(services, cover)
    return removed
