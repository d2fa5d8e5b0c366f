"""The collections of the studio: the list of those the account may edit with the form making a
new one (``/studio/collections``), and one collection's edit page.

The edit page is one form that works without any script: every button saves what was typed
(titles, descriptions, kind, state, cover) and then does its own part: add the production chosen
in the list, move one up or down, take one out. Someone who may not edit the collection gets a
404, exactly as for an id that does not exist. After a change, a 303 back with ``?done=``.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from cite_live import collections, covers, i18n, params
from cite_live.auth import CurrentUser
from cite_live.collection_view import title_of
from cite_live.collections import Fields
from cite_live.i18n import N_, pick
from cite_live.models import Collection, Production
from cite_live.presenter import media_url
from cite_live.vocabulary import (
    COLLECTION_KIND_LABELS,
    COLLECTION_STATE_HINTS,
    COLLECTION_STATE_LABELS,
    KIND_LABELS,
    STATUS_LABELS,
    VISIBILITY_LABELS,
    choices,
    label,
)
from cite_live.web.context import ACCOUNT_CACHE, Context, form_page, notices, page

NOT_FOUND = N_("There is no collection at this address.")
TITLE_MISSING = N_("Give the collection a title.")
PROBLEMS = {
    "missing": TITLE_MISSING,
    "too-long": N_("The title is too long: 300 characters at most."),
    "kind": N_("Choose a kind of collection from the list."),
    "state": N_("Choose who may see this collection."),
}
DESCRIPTION_TOO_LONG = N_("The description is too long: 20,000 characters at most.")
NOT_OFFERED = N_("This production cannot be added: choose one from the list.")
NOT_CONFIRMED = N_("Tick the box to confirm that the collection is to be deleted.")
FORM_HAS_ERRORS = N_("Some fields need a correction; they are marked below.")
# Of the items' states, what its maker is told: visitors never see a hidden one.
HIDDEN_HINT = N_("Not shown to visitors until it is ready and public.")

notices(
    **{
        "collection-created": N_("The collection was created."),
        "collection-saved": N_("Saved."),
        "collection-added": N_("Added to the collection."),
        "collection-already": N_("This production is in the collection already."),
        "collection-full": N_("A collection holds at most 200 productions."),
        "collection-moved": N_("The order was changed."),
        "collection-removed": N_("Taken out of the collection."),
        "collection-deleted": N_("The collection was deleted."),
    }
)
_STEPS = {"up": -1, "down": 1}


def _fields(form: FormData) -> Fields:
    return Fields(
        title=params.text(form.get("title")),
        title_en=params.text(form.get("title_en")),
        description=params.text(form.get("description")),
        description_en=params.text(form.get("description_en")),
        kind=params.text(form.get("kind")),
        state=params.text(form.get("state")),
    )


def _errors(fields: Fields, lang: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for name, problem in fields.problems().items():
        if name.startswith("description"):
            message = DESCRIPTION_TOO_LONG
        elif name in ("kind", "state"):
            message = PROBLEMS[name]
        else:
            message = PROBLEMS[problem]
        errors[name] = i18n.gettext(message, lang)
    return errors


def _managed(ctx: Context, session: Session, user: CurrentUser) -> Collection:
    collection_id = params.public_id(ctx.path_param("collection_id"))
    found = collections.managed(session, user, collection_id) if collection_id else None
    if found is None:
        raise ctx.not_found(NOT_FOUND)
    return found


def _item(production: Production, ctx: Context) -> dict[str, Any]:
    lang = ctx.lang
    shown = production.status == "ready" and production.visibility == "public"
    return {
        "id": production.id,
        "title": pick(production.title, production.title_en, lang),
        "kind_label": label(KIND_LABELS, production.kind, lang),
        "shown": shown,
        "state_label": (
            label(VISIBILITY_LABELS, production.visibility, lang)
            if production.status == "ready"
            else label(STATUS_LABELS, production.status, lang)
        ),
        "hidden_hint": None if shown else i18n.gettext(HIDDEN_HINT, lang),
        "page_url": ctx.urls.production(production.slug) if shown else None,
    }


def _edit_context(
    ctx: Context,
    session: Session,
    user: CurrentUser,
    collection: Collection,
    fields: Fields,
    errors: dict[str, str],
) -> dict[str, Any]:
    lang = ctx.lang
    items = [_item(item.production, ctx) for item in collection.items]
    inside = {item["id"] for item in items}
    offered = [
        {"id": p.id, "title": pick(p.title, p.title_en, lang)}
        for p in collections.offered_list(session, user)
        if p.id not in inside
    ]
    return {
        "nav": "studio",
        "collection": {
            "id": collection.id,
            "title": title_of(collection, lang),
            "public": collection.state == "public",
            "page_url": ctx.urls.collection(collection.slug),
            "edit_url": ctx.urls.studio_collection(collection.id),
            "cover_url": media_url(ctx.store, ctx.site)(collection.cover_key),
        },
        "form": fields,
        "errors": errors,
        "summary": ctx.gettext(FORM_HAS_ERRORS) if errors else None,
        "done": ctx.notice(),
        "items": items,
        "offered": offered,
        "kinds": choices(COLLECTION_KIND_LABELS, lang),
        "states": [
            {
                "code": code,
                "label": i18n.gettext(text, lang),
                "hint": i18n.gettext(COLLECTION_STATE_HINTS[code], lang),
            }
            for code, text in COLLECTION_STATE_LABELS.items()
        ],
        "max_cover_mb": covers.MAX_BYTES // (1024 * 1024),
        "max_cover_bytes": covers.MAX_BYTES,
        "cover_too_big": i18n.gettext(covers.TOO_BIG, lang),
    }


def _as_form(collection: Collection) -> Fields:
    return Fields(
        title=collection.title,
        title_en=collection.title_en or "",
        description=collection.description,
        description_en=collection.description_en or "",
        kind=collection.kind,
        state=collection.state,
    )


# --- the list, and a new one ---------------------------------------------------------------------


def _list_context(ctx: Context, user: CurrentUser, errors: dict[str, str]) -> dict[str, Any]:
    with ctx.services.sessions() as session:
        rows = [
            {
                "title": title_of(c, ctx.lang),
                "kind_label": label(COLLECTION_KIND_LABELS, c.kind, ctx.lang),
                "state": c.state,
                "state_label": label(COLLECTION_STATE_LABELS, c.state, ctx.lang),
                "count": len(c.items),
                "edit_url": ctx.urls.studio_collection(c.id),
                "page_url": ctx.urls.collection(c.slug) if c.state == "public" else None,
            }
            for c in collections.editable(session, user)
        ]
    return {
        "nav": "studio",
        "rows": rows,
        "kinds": choices(COLLECTION_KIND_LABELS, ctx.lang),
        "errors": errors,
        "done": ctx.notice(),
        "is_admin": user.is_admin,
    }


@page
def collections_page(ctx: Context) -> Response:
    user = ctx.require_user()
    return ctx.render("studio_collections.html", _list_context(ctx, user, {}), cache=ACCOUNT_CACHE)


@form_page()
def create_submit(ctx: Context, form: FormData) -> Response:
    user = ctx.require_user()
    title = params.text(form.get("title")).strip()
    kind = params.text(form.get("kind"))
    fields = Fields(title, "", "", "", kind, "draft")
    errors = {k: v for k, v in _errors(fields, ctx.lang).items() if k in ("title", "kind")}
    if errors:
        context = _list_context(ctx, user, errors)
        context["typed"] = {"title": title, "kind": kind}
        return ctx.render("studio_collections.html", context, status=400, cache=ACCOUNT_CACHE)
    with ctx.services.sessions.begin() as session:
        collection_id = collections.create(session, user, title, kind).id
    return ctx.see_other(ctx.urls.studio_collection(collection_id), done="collection-created")


# --- one collection ------------------------------------------------------------------------------


@page
def edit_page(ctx: Context) -> Response:
    user = ctx.require_user()
    with ctx.services.sessions() as session:
        collection = _managed(ctx, session, user)
        context = _edit_context(ctx, session, user, collection, _as_form(collection), {})
    return ctx.render("studio_collection.html", context, cache=ACCOUNT_CACHE)


def _action(form: FormData) -> tuple[str, str | None]:
    """The button pressed: ``("save", None)``, ``("add", None)``, ``("delete", None)`` or
    (``up``/``down``/``remove``, the production's id); ``("", None)`` for anything else."""
    raw = params.text(form.get("action") or "save")
    name, _, target = raw.partition(":")
    if name in ("save", "add", "delete") and not target:
        return name, None
    if name in ("up", "down", "remove"):
        production_id = params.public_id(target)
        if production_id is not None:
            return name, production_id
    return "", None


@form_page(max_files=1)
def edit_submit(ctx: Context, form: FormData) -> Response:
    user = ctx.require_user()
    services = ctx.services
    fields = _fields(form)
    action, target = _action(form)
    with services.sessions() as session:
        # Someone who may not edit it gets the 404 before any image of theirs is decoded.
        collection_id = _managed(ctx, session, user).id
    if not action:
        raise ctx.refusal(400, N_("This button does nothing here."))
    if action == "delete":
        return _delete(ctx, user, form)
    errors = _errors(fields, ctx.lang)
    upload = form.get("cover")
    jpeg, refused = covers.read(upload)
    if refused is not None:
        errors["cover"] = ctx.gettext(refused)
    wanted = params.public_id(params.text(form.get("add_production"))) if action == "add" else None
    new_cover: str | None = None
    old_cover: str | None = None
    done = "collection-saved"
    try:
        with services.sessions.begin() as session:
            collection = _managed(ctx, session, user)
            production = None
            if action == "add":
                production = collections.may_add(session, user, wanted) if wanted else None
                if production is None:
                    errors["add_production"] = ctx.gettext(NOT_OFFERED)
            if errors:
                context = _edit_context(ctx, session, user, collection, fields, errors)
                context["cover_again"] = isinstance(upload, UploadFile) and bool(upload.filename)
                return ctx.render(
                    "studio_collection.html", context, status=400, cache=ACCOUNT_CACHE
                )
            collections.apply(collection, fields)
            if jpeg is not None:
                # Stored before the row points at it, so that no page shows a missing image.
                new_cover = collections.cover_key(collection_id, secrets.token_urlsafe(12))
                services.store.put_bytes(new_cover, jpeg)
            if new_cover is not None or form.get("remove_cover"):
                old_cover, collection.cover_key = collection.cover_key, new_cover
            done = _do(session, collection, action, target, production)
    except IntegrityError:
        # The same production added by two requests at once: the first one put it there.
        done = "collection-already"
        old_cover = None
        if new_cover is not None:
            covers.remove_quietly(services, new_cover)
    except BaseException:
        if new_cover is not None:
            covers.remove_quietly(services, new_cover)
        raise
    if old_cover:
        covers.remove_quietly(services, old_cover)
    return ctx.see_other(ctx.urls.studio_collection(collection_id), done=done)


def _do(
    session: Session,
    collection: Collection,
    action: str,
    target: str | None,
    production: Production | None,
) -> str:
    """Do what the button pressed asks, after the fields were saved; the notice's code."""
    if action == "add" and production is not None:
        if production.id in {item.production_id for item in collection.items}:
            return "collection-already"
        return (
            "collection-added"
            if collections.add(session, collection, production)
            else ("collection-full")
        )
    if action in _STEPS and target is not None:
        collections.move(collection, target, _STEPS[action])
        return "collection-moved"
    if action == "remove" and target is not None:
        collections.remove(session, collection, target)
        return "collection-removed"
    return "collection-saved"


def _delete(ctx: Context, user: CurrentUser, form: FormData) -> Response:
    """Delete the collection once its box is ticked (its productions stay as they are), and its
    cover from the store; unticked, nothing is saved and the box is marked."""
    services = ctx.services
    with services.sessions.begin() as session:
        collection = _managed(ctx, session, user)
        if not form.get("confirm_delete"):
            fields = _fields(form)
            errors = {"confirm_delete": ctx.gettext(NOT_CONFIRMED)}
            context = _edit_context(ctx, session, user, collection, fields, errors)
            return ctx.render("studio_collection.html", context, status=400, cache=ACCOUNT_CACHE)
        cover = collection.cover_key
        session.delete(collection)
    if cover:
        covers.remove_quietly(services, cover)
    return ctx.see_other(ctx.urls.studio_collections(), done="collection-deleted")
