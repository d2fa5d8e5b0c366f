"""The artist's own pages: my productions with their live processing state and pictures, the
upload panel, edit (with the cover and a preview player), replace, delete and retry.

Every production page here answers 404 to anyone who may not manage it, exactly as for an id
that does not exist: a private production's id must not be confirmed to strangers. Handlers
read what a page shows into plain dicts while their session is open, then render (as the
catalogue's do). After a change, a 303 goes back with ``?done=<code>``: the message is chosen by
the page from a fixed list (:func:`cite_live.web.context.notices`), so nothing typed in an
address is ever shown as a notice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload, selectinload
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, Response

from cite_live import access, covers, i18n, params
from cite_live.auth import CurrentUser, can_manage
from cite_live.catalogue import (
    announce_language,
    hold,
    playing_version,
    preview_version,
    production_query,
    publish,
)
from cite_live.i18n import N_
from cite_live.jobs import ingest, table
from cite_live.models import Artist, Job, Production, Venue
from cite_live.player import player_data
from cite_live.production_form import FieldError, ProductionForm, apply
from cite_live.production_status import (
    human_size,
    latest_jobs,
    managed_picture,
    status_json,
    studio_row,
)
from cite_live.services import Services
from cite_live.vocabulary import (
    CREDIT_ROLE_LABELS,
    DRAFT_HINT,
    DRAFT_VISIBILITY_LEGEND,
    EMBED_POLICY_HINTS,
    EMBED_POLICY_LABELS,
    LICENCE_NAMES,
    PUBLISH_EARLY,
    SESSION_TYPE_LABELS,
    UPLOAD_DRAFT_HINT,
    VISIBILITY_HINTS,
    VISIBILITY_LABELS,
    choices,
    hinted_choices,
    language_choices,
)
from cite_live.web.context import ACCOUNT_CACHE, Context, Pager, form_page, notices, page
from cite_live.web.urls import PATHS

PER_PAGE = 50
# Names offered as suggestions in the credits' rows; beyond, the artist types the whole name.
MAX_SUGGESTED_ARTISTS = 2000
NOT_FOUND = N_("There is no production at this address.")

notices(
    **{
        "saved": N_("Saved."),
        "published": N_("Published."),
        "deleted": N_("The production was deleted."),
        "retried": N_("Processing starts again."),
        "not-retried": N_("This production cannot be processed again: its original file is gone."),
        "busy": N_("This production is already being processed."),
    }
)
FORM_HAS_ERRORS = N_("Some fields need a correction; they are marked below.")


def sentence(error: FieldError, lang: str) -> str | list[str]:
    """What to show beside a field: its sentence, or the list of them when there are several."""
    sentences = error.sentences(lang)
    return sentences[0] if len(sentences) == 1 else sentences


def _own_page(
    ctx: Context, session: Session, user: CurrentUser
) -> tuple[list[tuple[Production, Job | None]], Pager]:
    """One page of the productions ``user`` owns, newest first, with their newest jobs."""
    page = ctx.page_number()
    mine = Production.owner_id == user.id
    total = session.scalar(select(func.count()).select_from(Production).where(mine)) or 0
    pager = ctx.pager(page, PER_PAGE, total)
    rows = list(
        session.scalars(
            select(Production)
            .options(joinedload(Production.current_version))
            .where(mine)
            .order_by(Production.created_at.desc(), Production.id)
            .offset(pager.offset)
            .limit(PER_PAGE)
        )
    )
    found = latest_jobs(session, [p.id for p in rows])
    return [(p, found.get(p.id)) for p in rows], pager


def managed(ctx: Context, session: Session, user: CurrentUser) -> Production:
    """The production of the path, with what the edit page shows; 404 unless ``user`` may
    manage it."""
    production_id = params.public_id(ctx.path_param("production_id"))
    production: Production | None = None
    if production_id is not None:
        production = session.scalars(
            production_query()
            .options(selectinload(Production.chapters))
            .where(Production.id == production_id)
        ).first()
    if production is None or not can_manage(user, production):
        raise ctx.not_found(NOT_FOUND)
    return production


def uploader(ctx: Context, production_id: str | None = None) -> dict[str, Any]:
    """What the upload panel's script is told (web/static/js/uploader.js)."""
    max_bytes = ctx.settings.limits.max_bytes
    return {
        "endpoint": ctx.urls.api_uploads(),
        "max_bytes": max_bytes,
        "max_size": human_size(max_bytes, ctx.lang),
        "production": production_id or "",
        "lang": ctx.lang,
        # A new upload is a draft: the panel asks its title and its visibility once published.
        "draft_hint": ctx.gettext(UPLOAD_DRAFT_HINT),
        "visibility_legend": ctx.gettext(DRAFT_VISIBILITY_LEGEND),
        "visibilities": choices(VISIBILITY_LABELS, ctx.lang),
        "publish_early_label": ctx.gettext(PUBLISH_EARLY),
    }


# --- my productions ------------------------------------------------------------------------------


@page
def studio_page(ctx: Context) -> Response:
    user = ctx.require_user()
    services, site = ctx.services, ctx.site
    with services.sessions() as session:
        rows, pager = _own_page(ctx, session, user)
        items = [
            {
                **studio_row(p, job, ctx.lang, ctx.urls),
                "picture": managed_picture(services, p, site),
            }
            for p, job in rows
        ]
    context = {
        "nav": "studio",
        "items": items,
        "pager": pager,
        "done": ctx.notice(),
        "is_admin": user.is_admin,
        "uploader": uploader(ctx),
        "status_url": ctx.urls.api_my_productions(page=pager.page if pager.page > 1 else None),
    }
    return ctx.render("studio.html", context, cache=ACCOUNT_CACHE)


@page
def my_productions(ctx: Context) -> Response:
    """The caller's productions and their jobs, in JSON, for the studio's polling and for
    scripts (Bearer token). No CORS: a partner page has no business reading them."""
    user = ctx.require_user()
    with ctx.services.sessions() as session:
        rows, pager = _own_page(ctx, session, user)
        body = {
            "items": [status_json(p, job, ctx.urls) for p, job in rows],
            "page": pager.page,
            "per_page": PER_PAGE,
            "total": pager.total,
        }
    return JSONResponse(body, headers={"Cache-Control": ACCOUNT_CACHE})


@page
def retry(ctx: Context) -> Response:
    user = ctx.require_user()
    services = ctx.services
    with services.sessions() as session:
        production = managed(ctx, session, user)
        job = latest_jobs(session, [production.id]).get(production.id)
        production_id = production.id
        busy = job is not None and job.state in ("queued", "running")
    if busy:
        return ctx.see_other(ctx.urls.studio(), done="busy")
    job_id = ingest.retry(services, production_id)
    if job_id is None:
        return ctx.see_other(ctx.urls.studio(), done="not-retried")
    table.enqueue(services, job_id)
    return ctx.see_other(ctx.urls.studio(), done="retried")


# --- edit ----------------------------------------------------------------------------------------


def _edit_context(
    ctx: Context,
    session: Session,
    production: Production,
    form: ProductionForm,
    errors: dict[str, FieldError],
) -> dict[str, Any]:
    lang = ctx.lang
    job = latest_jobs(session, [production.id]).get(production.id)
    venues = session.scalars(select(Venue).order_by(Venue.name, Venue.id)).all()
    artist_names = session.scalars(
        select(Artist.name).order_by(Artist.search_text, Artist.id).limit(MAX_SUGGESTED_ARTISTS)
    ).all()
    # Its media as its managers get them: signed wherever the public address refuses them
    # (private, processing, failed), so that the preview plays and a new cover shows at once.
    link = access.manager_link(ctx.services, production, ctx.site)
    version = playing_version(production)
    recording_picture = (version.poster_key or version.cover_key) if version else None
    return {
        "nav": "studio",
        "production": studio_row(production, job, lang, ctx.urls),
        "duration": production.duration,
        "form": form,
        "rows": form.rows(),
        "errors": {name: sentence(error, lang) for name, error in errors.items()},
        "done": ctx.notice(),
        "summary": None,
        "cover_url": link(production.cover_key) if production.cover_key else None,
        "recording_picture_url": link(recording_picture) if recording_picture else None,
        # Set when a refused form had a file: a browser cannot be given it back.
        "cover_again": False,
        # While it processes, its preview as soon as it plays (its managers may always).
        "player_data": player_data(
            production,
            ctx.services.store,
            ctx.site,
            lang=lang,
            link=link,
            preview=preview_version(session, production),
        ),
        "roles": choices(CREDIT_ROLE_LABELS, lang),
        "venues": [{"id": str(v.id), "name": v.name} for v in venues],
        "artist_names": list(artist_names),
        "session_types": choices(SESSION_TYPE_LABELS, lang),
        "licences": choices(LICENCE_NAMES, lang),
        "languages": language_choices(form.language, lang),
        "visibilities": [
            {
                "code": code,
                "label": i18n.gettext(text, lang),
                "hint": i18n.gettext(VISIBILITY_HINTS[code], lang),
            }
            for code, text in VISIBILITY_LABELS.items()
        ],
        "embed_policies": hinted_choices(EMBED_POLICY_LABELS, EMBED_POLICY_HINTS, lang),
        "max_cover_mb": covers.MAX_BYTES // (1024 * 1024),
        "draft_hint": i18n.gettext(DRAFT_HINT, lang),
        "visibility_legend": i18n.gettext(DRAFT_VISIBILITY_LEGEND, lang),
        "publish_early_label": i18n.gettext(PUBLISH_EARLY, lang),
        "max_cover_bytes": covers.MAX_BYTES,
        "cover_too_big": i18n.gettext(covers.TOO_BIG, lang),
    }


@page
def edit_page(ctx: Context) -> Response:
    user = ctx.require_user()
    with ctx.services.sessions() as session:
        production = managed(ctx, session, user)
        context = _edit_context(ctx, session, production, ProductionForm.of(production), {})
    return ctx.render("studio_edit.html", context, cache=ACCOUNT_CACHE)


@form_page(max_files=1)
def edit_submit(ctx: Context, fields: FormData) -> Response:
    """The edit form, its cover included: everything is saved together, or nothing is and the
    page comes back with what was typed and a sentence beside each field to correct. With
    ``action=publish`` (a draft's second button) the draft is published in the same
    transaction, so that nothing typed before pressing it is lost."""
    user = ctx.require_user()
    services = ctx.services
    form = ProductionForm.read(fields)
    publishing = fields.get("action") == "publish"
    today = datetime.now(UTC).date()
    with services.sessions() as session:
        # Someone who may not manage it gets the 404 before any image of theirs is decoded.
        managed(ctx, session, user)
    upload = fields.get("cover")
    sent_a_file = isinstance(upload, UploadFile) and bool(upload.filename)
    jpeg, refused = covers.read(upload)
    new_cover: str | None = None
    old_cover: str | None = None
    try:
        with services.sessions.begin() as session:
            held = params.public_id(ctx.path_param("production_id"))
            if held is not None:
                # Read after any other save or publish of it has ended, never beside one.
                hold(session, held)
            production = managed(ctx, session, user)
            spoken = production.language
            changes, errors = form.check(session, production.duration, today)
            if refused is not None:
                errors["cover"] = FieldError(refused)
            if changes is None or errors:
                context = _edit_context(ctx, session, production, form, errors)
                context["summary"] = ctx.gettext(FORM_HAS_ERRORS)
                context["cover_again"] = sent_a_file
            else:
                production_id = production.id
                if jpeg is not None:
                    # Stored before the row points at it, so that no page shows a missing image.
                    new_cover = covers.put(services, production_id, jpeg)
                apply(session, production, changes)
                version = playing_version(production)
                if production.language != spoken and version and version.master_key:
                    announce_language(services.store, version.master_key, production.language)
                if publishing:
                    # False when a request that came first published it: published all the same.
                    publish(production)
                if new_cover is not None or form.remove_cover:
                    old_cover = covers.swap(session, production_id, new_cover)
    except BaseException:
        if new_cover is not None:
            covers.remove_quietly(services, new_cover)
        raise
    if changes is None or errors:
        return ctx.render("studio_edit.html", context, status=400, cache=ACCOUNT_CACHE)
    if old_cover:
        covers.remove_quietly(services, old_cover)
    done = "published" if publishing else "saved"
    return ctx.see_other(ctx.urls.studio_edit(production_id), done=done)


# --- replace, delete -----------------------------------------------------------------------------


@page
def replace_page(ctx: Context) -> Response:
    user = ctx.require_user()
    with ctx.services.sessions() as session:
        production = managed(ctx, session, user)
        job = latest_jobs(session, [production.id]).get(production.id)
        context = {
            "nav": "studio",
            "production": studio_row(production, job, ctx.lang, ctx.urls),
            "uploader": uploader(ctx, production.id),
        }
    return ctx.render("studio_replace.html", context, cache=ACCOUNT_CACHE)


@page
def delete_page(ctx: Context) -> Response:
    user = ctx.require_user()
    with ctx.services.sessions() as session:
        production = managed(ctx, session, user)
        context = {
            "nav": "studio",
            "production": studio_row(production, None, ctx.lang, ctx.urls),
            "next": back_to(ctx, ctx.query.get("next")),
        }
    return ctx.render("studio_delete.html", context, cache=ACCOUNT_CACHE)


@form_page()
def delete_submit(ctx: Context, form: FormData) -> Response:
    user = ctx.require_user()
    services = ctx.services
    target = form.get("next")
    with services.sessions() as session:
        production_id = managed(ctx, session, user).id
    remove_production(services, production_id)
    return ctx.see_other(back_to(ctx, target if isinstance(target, str) else None), done="deleted")


def back_to(ctx: Context, target: str | None) -> str:
    """Where to go after a delete: the studio or admin list it was asked from, else the
    studio."""
    path = ctx.safe_next(target)
    return path if path.startswith((PATHS["studio"], PATHS["admin"])) else ctx.urls.studio()


def remove_production(services: Services, production_id: str) -> bool:
    """Delete a production, its records and its objects in the store, custom cover included."""
    with services.sessions() as session:
        production = session.get(Production, production_id)
        cover = production.cover_key if production is not None else None
    removed = ingest.delete_production(services, production_id)
    if cover:
        covers.remove_quietly(services, cover)
    return removed
