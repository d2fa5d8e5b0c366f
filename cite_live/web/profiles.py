"""The artist's own profile, from the studio: the profiles an account speaks for, and the one
form of a profile (photo, biographies, links, disciplines, town).

A profile answers 404 to anyone who may not edit it (see cite_live.artist_profile.may_edit),
exactly as one that does not exist. The photo travels in the same multipart form as the text:
a form with a refusal anywhere saves nothing and comes back with everything typed (a page
cannot hand a file back, so it asks for the photo again); a valid one stores the photo's two
sizes first, then points the profile at them, then removes the previous ones, so that no page
ever shows a missing image.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.responses import Response

from cite_live import covers, i18n, params
from cite_live.artist_profile import (
    FieldError,
    ProfileForm,
    StoredPhoto,
    apply,
    may_edit,
)
from cite_live.auth import CurrentUser
from cite_live.i18n import N_
from cite_live.models import Artist, Venue, user_artists
from cite_live.presenter import artist_card, discipline_names
from cite_live.web.context import ACCOUNT_CACHE, Context, form_page, notices, page

NOT_FOUND = N_("There is no artist profile at this address.")
FORM_HAS_ERRORS = N_("Nothing was saved: some fields need a correction; they are marked below.")
CHOOSE_PHOTO_AGAIN = N_(
    "Choose your photo again: it was not saved, as other fields need a correction."
)
# Suggestions under the disciplines field and in the town's list.
SUGGESTED_DISCIPLINES = 12
SUGGESTED_COMMUNES = 300

notices(profile=N_("Your profile is saved."))


def sentence(error: FieldError, lang: str) -> str:
    text = i18n.gettext(error.message, lang)
    return text % error.values if error.values else text


def editable(ctx: Context, session: Session, user: CurrentUser) -> Artist:
    """The profile of the path; 404 unless ``user`` may edit it."""
    artist_id = params.row_id(ctx.path_param("artist_id"))
    artist = session.get(Artist, artist_id) if artist_id is not None else None
    if artist is None or not may_edit(user, artist.id):
        raise ctx.not_found(NOT_FOUND)
    return artist


# --- the profiles of an account ------------------------------------------------------------------


@page
def profiles_page(ctx: Context) -> Response:
    """The profiles the account speaks for, each with its form's link; straight to the form
    when there is one."""
    user = ctx.require_user()
    with ctx.services.sessions() as session:
        artists = session.scalars(
            select(Artist)
            .join(user_artists, user_artists.c.artist_id == Artist.id)
            .where(user_artists.c.user_id == user.id)
            .order_by(Artist.search_text, Artist.id)
        ).all()
        # Each card leads to the profile's form.
        items = [
            {**artist_card(a, ctx.store, ctx.urls), "url": ctx.urls.studio_profile(a.id)}
            for a in artists
        ]
    if len(items) == 1:
        return ctx.see_other(items[0]["url"])
    context = {"nav": "studio", "items": items, "is_admin": user.is_admin}
    return ctx.render("studio_profiles.html", context, cache=ACCOUNT_CACHE)


# --- the form of one profile ---------------------------------------------------------------------


def _suggestions(session: Session) -> tuple[list[str], list[str]]:
    """The disciplines the catalogue uses most, and the towns it knows (artists' and venues')."""
    counted: Counter[str] = Counter()
    for values in session.scalars(select(Artist.disciplines)):
        counted.update(discipline_names(values))
    disciplines = [name for name, _ in counted.most_common(SUGGESTED_DISCIPLINES)]
    towns = set(session.scalars(select(Artist.commune).where(Artist.commune.is_not(None))))
    towns.update(session.scalars(select(Venue.commune).where(Venue.commune.is_not(None))))
    communes = sorted((t for t in towns if t), key=str.casefold)[:SUGGESTED_COMMUNES]
    return disciplines, communes


def _form_context(
    ctx: Context,
    session: Session,
    user: CurrentUser,
    artist: Artist,
    form: ProfileForm,
    errors: dict[str, FieldError],
) -> dict[str, Any]:
    disciplines, communes = _suggestions(session)
    return {
        "nav": "studio",
        "artist": {**artist_card(artist, ctx.store, ctx.urls), "id": artist.id},
        "form": form,
        "errors": {name: sentence(error, ctx.lang) for name, error in errors.items()},
        "done": ctx.notice(),
        "summary": None,
        "photo_again": False,
        # The way back to the account's list of profiles, when it has a choice.
        "several": len(user.artist_ids) > 1,
        "disciplines": disciplines,
        "communes": communes,
        "max_photo_mb": covers.MAX_BYTES // (1024 * 1024),
    }


@page
def edit_page(ctx: Context) -> Response:
    user = ctx.require_user()
    with ctx.services.sessions() as session:
        artist = editable(ctx, session, user)
        context = _form_context(ctx, session, user, artist, ProfileForm.of(artist), {})
    return ctx.render("studio_profile.html", context, cache=ACCOUNT_CACHE)


def _photo(upload: Any) -> tuple[covers.Photo | None, str | None]:
    """The photo sent with the form, re-encoded, or why it is refused; (None, None) when none
    was sent."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, None
    if upload.size is not None and upload.size > covers.MAX_BYTES:
        return None, covers.TOO_BIG
    try:
        return covers.reencode_photo(upload.file), None
    except covers.CoverRefused as refused:
        return None, refused.message


@form_page(max_files=1, max_fields=20)
def edit_submit(ctx: Context, fields: FormData) -> Response:
    user = ctx.require_user()
    services = ctx.services
    form = ProfileForm.read(fields)
    # Whoever may not edit it learns nothing, and no image of theirs is decoded.
    with services.sessions() as session:
        artist_id = editable(ctx, session, user).id
    changes, errors = form.check()
    photo, problem = _photo(fields.get("photo"))
    if problem is not None:
        errors["photo"] = FieldError(problem)
    if changes is None or errors:
        with services.sessions() as session:
            artist = editable(ctx, session, user)
            context = _form_context(ctx, session, user, artist, form, errors)
        context["summary"] = ctx.gettext(FORM_HAS_ERRORS)
        context["photo_again"] = photo is not None
        return ctx.render("studio_profile.html", context, status=400, cache=ACCOUNT_CACHE)

    stored: StoredPhoto | None = None
    if photo is not None:
        key, square_key = covers.put_photo(services, artist_id, photo)
        stored = StoredPhoto(key, square_key, photo.width, photo.height)
    old: list[str] = []
    with services.sessions.begin() as session:
        found = session.get(Artist, artist_id, with_for_update=True)
        if found is not None:
            old = apply(found, changes, stored)
    if found is None:
        # Gone meanwhile: what was just written belongs to nobody.
        for key in (stored.key, stored.square_key) if stored else ():
            covers.remove_quietly(services, key)
        raise ctx.not_found(NOT_FOUND)
    for key in old:
        covers.remove_quietly(services, key)
    return ctx.see_other(ctx.urls.studio_profile(artist_id), done="profile")
