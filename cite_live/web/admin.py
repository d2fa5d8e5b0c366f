"""The administrators' page: every production (unpublish, publish, delete) and every account
(role, artist profiles, quota, disabled), and invitations for new accounts.

Only admins get here: anyone else signed in gets 403, an anonymous visitor the login page.
Deleting goes through the studio's confirmation page, which admins may open for any production;
it comes back here, to the list the admin was looking at, saying so.
"""

from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, joinedload, selectinload
from starlette.datastructures import FormData
from starlette.responses import Response

from cite_live import accounts, devices, i18n, mail, params, uploads
from cite_live.accounts import AccountError
from cite_live.auth import CurrentUser
from cite_live.catalogue import artist_by_name
from cite_live.i18n import N_, fallback_lang, pick
from cite_live.models import Artist, Production, Tag, User, user_artists
from cite_live.production_status import (
    STATE_LABELS,
    human_size,
    latest_jobs,
    managed_picture,
    state_of,
    visibility_of,
)
from cite_live.search import artist_match, production_match
from cite_live.vocabulary import (
    ROLE_LABELS,
    ROLES,
    STATUS_LABELS,
    STATUSES,
    VISIBILITIES,
    VISIBILITY_LABELS,
    choices,
    label,
)
from cite_live.web.context import ACCOUNT_CACHE, Context, form_page, notices, page
from cite_live.web.urls import PATHS

PER_PAGE = 50
MAX_QUERY = 200
# Artist profiles listed at once in their section; a name narrows the list.
PROFILES_SHOWN = 50
MAX_ARTISTS = 20
GIB = 1024**3
# A quota typed in GB: "50", "2.5", "0,5".
_QUOTA = re.compile(r"\d{1,6}(?:[.,]\d{1,3})?", re.ASCII)

NO_ACCOUNT = N_("There is no such account.")
NO_PRODUCTION = N_("There is no production at this address.")
BAD_QUOTA = N_("The quota must be a number of gigabytes, such as 50 or 2.5.")
BAD_ROLE = N_("The role must be admin or artist.")
TOO_MANY_ARTISTS = N_("Link at most 20 artist profiles to one account.")
# The languages a message can be written in, each named in its own language.
LANGUAGE_NAMES = (("fr", "Français"), ("en", "English"))
NOT_YOURSELF = N_("You cannot take away your own administrator role nor disable your own account.")
NO_PROFILE = N_("There is no such artist profile.")
NO_SUCH_EMAIL = N_("No account has this email address.")
NO_TAG = N_("There is no such tag.")
TAG_NAME_TOO_LONG = N_("The English name is too long: 100 characters at most.")
MAX_TAG_NAME = 100
TAGS_PER_PAGE = 100

# After a deletion, the studio's delete page comes back here with its own code ("deleted").
notices(
    saved=N_("Saved."),
    linked=N_("The profile is linked to the account."),
    unlinked=N_("The profile is no longer linked to the account."),
    tag_saved=N_("The tag's English name is saved."),
)


# --- reading -------------------------------------------------------------------------------------


def _productions(ctx: Context, session: Session) -> dict[str, Any]:
    query = ctx.query
    status = query.get("status", "")
    visibility = query.get("visibility", "")
    q = params.text(query.get("q")).strip()[:MAX_QUERY]
    status = status if status in STATUSES else ""
    visibility = visibility if visibility in VISIBILITIES else ""
    where: list[Any] = [production_match(q)]
    if status:
        where.append(Production.status == status)
    if visibility:
        where.append(Production.visibility == visibility)
    page = ctx.page_number()
    total = session.scalar(select(func.count()).select_from(Production).where(*where)) or 0
    pager = ctx.pager(page, PER_PAGE, total)
    rows = session.execute(
        select(Production, User.email)
        .options(joinedload(Production.current_version))
        .outerjoin(User, User.id == Production.owner_id)
        .where(*where)
        .order_by(Production.created_at.desc(), Production.id)
        .offset(pager.offset)
        .limit(PER_PAGE)
    ).all()
    jobs = latest_jobs(session, [p.id for p, _ in rows])
    lang, urls, services, site = ctx.lang, ctx.urls, ctx.services, ctx.site
    items = []
    for production, owner in rows:
        state = state_of(production, jobs.get(production.id))
        items.append(
            {
                "id": production.id,
                "title": pick(production.title, production.title_en, lang),
                "title_lang": fallback_lang(production.title, production.title_en, lang),
                "owner": owner,
                "state_label": label(STATE_LABELS, state, lang),
                "state": state,
                **visibility_of(production, lang),
                "created_at": production.created_at,
                # Admins may see every production: private ones' pictures come signed.
                "picture": managed_picture(services, production, site),
                "page_url": urls.production(production.slug),
                "edit_url": urls.studio_edit(production.id),
                "delete_url": urls.studio_delete(production.id),
                "publish_url": urls.admin_publish(production.id),
                "unpublish_url": urls.admin_unpublish(production.id),
            }
        )
    return {
        "productions": items,
        "pager": pager,
        "q": q,
        "status": status,
        "visibility": visibility,
        "statuses": choices(STATUS_LABELS, lang),
        "visibilities": choices(VISIBILITY_LABELS, lang),
        "here": ctx.here(),
    }


def _accounts(ctx: Context, session: Session) -> list[dict[str, Any]]:
    """Every account with what it uses of its quota, as uploads.bytes_used counts it."""
    settings = ctx.settings
    lang = ctx.lang
    used_by = uploads.usage(session)
    users = session.scalars(
        select(User).options(selectinload(User.artists)).order_by(User.email)
    ).all()
    shown = []
    for user in users:
        used = used_by.get(user.id, 0)
        limit = user.quota_bytes if user.quota_bytes is not None else settings.uploads.quota_bytes
        shown.append(
            {
                "id": user.id,
                "email": user.email,
                "role": user.role,
                "role_label": label(ROLE_LABELS, user.role, lang),
                "artists": [a.name for a in user.artists],
                "artists_text": "\n".join(a.name for a in user.artists),
                "last_login_at": user.last_login_at,
                "disabled": user.disabled,
                "invited": user.password_hash is None,
                "used": human_size(used, lang),
                "limit": human_size(limit, lang),
                "quota_gb": _gb(user.quota_bytes) if user.quota_bytes is not None else "",
                "default_quota_gb": _gb(settings.uploads.quota_bytes),
                "action": ctx.urls.admin_user(user.id),
            }
        )
    return shown


def _profiles(ctx: Context, session: Session, q: str | None = None) -> dict[str, Any]:
    """The artist profiles section: those no account speaks for yet (made from a credit, say),
    or, when a name is given, every profile it matches; each with its accounts."""
    if q is None:
        q = params.text(ctx.query.get("profile_q")).strip()[:MAX_QUERY]
    claimed = exists().where(user_artists.c.artist_id == Artist.id)
    where = artist_match(q) if q else ~claimed
    total = session.scalar(select(func.count()).select_from(Artist).where(where)) or 0
    artists = session.scalars(
        select(Artist).where(where).order_by(Artist.search_text, Artist.id).limit(PROFILES_SHOWN)
    ).all()
    accounts_of: dict[int, list[tuple[int, str]]] = {a.id: [] for a in artists}
    for artist_id, user_id, email in session.execute(
        select(user_artists.c.artist_id, User.id, User.email)
        .join(User, User.id == user_artists.c.user_id)
        .where(user_artists.c.artist_id.in_(list(accounts_of)))
        .order_by(User.email)
    ):
        accounts_of[artist_id].append((user_id, email))
    urls = ctx.urls
    return {
        "profile_q": q,
        "profiles_total": total,
        "profiles": [
            {
                "id": artist.id,
                "name": artist.name,
                "page_url": urls.artist(artist.slug),
                "edit_url": urls.studio_profile(artist.id),
                "link_url": urls.admin_artist_link(artist.id),
                "accounts": [
                    {"email": email, "unlink_url": urls.admin_artist_unlink(artist.id, user_id)}
                    for user_id, email in accounts_of[artist.id]
                ],
            }
            for artist in artists
        ],
        "profile_errors": {},
        "profile_typed": {},
    }


def _gb(size: int) -> str:
    return f"{Decimal(size) / GIB:.3f}".rstrip("0").rstrip(".")


def _context(ctx: Context, session: Session, **extra: Any) -> dict[str, Any]:
    artist_names = session.scalars(select(Artist.name).order_by(Artist.search_text)).all()
    return {
        "nav": "admin",
        **_productions(ctx, session),
        "accounts": _accounts(ctx, session),
        **_profiles(ctx, session),
        "roles": choices(ROLE_LABELS, ctx.lang),
        "artist_names": list(artist_names),
        "done": ctx.notice(),
        "account_errors": {},
        "invite": {"email": "", "role": "artist", "artists": "", "lang": i18n.DEFAULT_LANGUAGE},
        "languages": LANGUAGE_NAMES,
        "invite_error": None,
        **extra,
    }


@page
def admin_page(ctx: Context) -> Response:
    ctx.require_admin()
    with ctx.services.sessions() as session:
        context = _context(ctx, session)
    return ctx.render("admin.html", context, cache=ACCOUNT_CACHE)


# --- productions ---------------------------------------------------------------------------------


def _set_visibility(ctx: Context, form: FormData, visibility: str) -> Response:
    ctx.require_admin()
    production_id = params.public_id(ctx.path_param("production_id"))
    with ctx.services.sessions.begin() as session:
        production = session.get(Production, production_id) if production_id else None
        if production is None:
            raise ctx.not_found(NO_PRODUCTION)
        production.visibility = visibility
    back = form.get("next")
    return ctx.see_other(_safe_admin_path(ctx, back if isinstance(back, str) else None), "saved")


def _safe_admin_path(ctx: Context, target: str | None) -> str:
    # Back to the filtered list the admin came from; anything else is the admin page itself.
    admin = PATHS["admin"]
    path = ctx.safe_next(target)
    return path if path == admin or path.startswith(admin + "?") else ctx.urls.admin()


@form_page()
def unpublish(ctx: Context, form: FormData) -> Response:
    return _set_visibility(ctx, form, "private")


@form_page()
def publish(ctx: Context, form: FormData) -> Response:
    return _set_visibility(ctx, form, "public")


# --- accounts ------------------------------------------------------------------------------------


def _artist_ids(session: Session, text: str) -> list[int]:
    """Artist profiles named one per line, made when missing (as credits make them)."""
    names = [" ".join(line.split()) for line in text.splitlines()]
    names = [name for name in names if name]
    if len(names) > MAX_ARTISTS:
        raise AccountError(TOO_MANY_ARTISTS)
    return [artist_by_name(session, name).id for name in names]


def _quota(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not _QUOTA.fullmatch(text):
        raise AccountError(BAD_QUOTA)
    try:
        return int(Decimal(text.replace(",", ".")) * GIB)
    except InvalidOperation:
        raise AccountError(BAD_QUOTA) from None


def _update_account(session: Session, admin: CurrentUser, user: User, form: FormData) -> None:
    role = params.text(form.get("role")) or user.role
    disabled = bool(form.get("disabled"))
    if role not in ROLES:
        raise AccountError(BAD_ROLE)
    if user.id == admin.id and (role != "admin" or disabled):
        raise AccountError(NOT_YOURSELF)
    # As it came: a control character in it makes it no number at all.
    typed_quota = form.get("quota_gb")
    quota = _quota(typed_quota if isinstance(typed_quota, str) else "")
    ids = _artist_ids(session, params.text(form.get("artists")))
    accounts.set_artists(session, user.id, ids)
    user.role = role
    user.quota_bytes = quota
    if disabled and not user.disabled:
        # A disabled account is signed out at once, on every device.
        devices.end_all(session, user.id)
    user.disabled = disabled


@form_page()
def update_user(ctx: Context, form: FormData) -> Response:
    admin = ctx.require_admin()
    account_id = params.row_id(ctx.path_param("user_id"))
    services = ctx.services
    try:
        # An AccountError leaves the block: nothing of a refused change is kept.
        with services.sessions.begin() as session:
            user = session.get(User, account_id) if account_id is not None else None
            if user is None:
                raise ctx.not_found(NO_ACCOUNT)
            user_id = user.id
            _update_account(session, admin, user, form)
    except AccountError as refused:
        problem = ctx.gettext(refused.message)
        with services.sessions() as session:
            context = _context(ctx, session, account_errors={user_id: problem})
        return ctx.render("admin.html", context, status=400, cache=ACCOUNT_CACHE)
    # Back to the account's own row, saying so (the notice before the fragment).
    return ctx.see_other(ctx.urls.admin(fragment=f"account-{user_id}", done="saved"))


@form_page()
def invite(ctx: Context, form: FormData) -> Response:
    ctx.require_admin()
    typed = {
        "email": params.text(form.get("email")).strip(),
        "role": params.text(form.get("role")) or "artist",
        "artists": params.text(form.get("artists")),
        "lang": params.text(form.get("lang")),
    }
    # The language of the message; the site's own unless English is chosen.
    if typed["lang"] not in i18n.LANGUAGES:
        typed["lang"] = i18n.DEFAULT_LANGUAGE
    services = ctx.services
    try:
        with services.sessions.begin() as session:
            user = accounts.create_user(
                session,
                typed["email"],
                typed["role"],
                artist_ids=_artist_ids(session, typed["artists"]),
                settings=services.settings,
            )
            secret = accounts.create_invitation(session, user)
            email = user.email
    except AccountError as refused:
        problem = ctx.gettext(refused.message)
        with services.sessions() as session:
            context = _context(ctx, session, invite=typed, invite_error=problem)
        return ctx.render("admin.html", context, status=400, cache=ACCOUNT_CACHE)
    # The account is kept whatever happens to the message; the link is shown either way.
    link = accounts.invitation_url(ctx.site, secret)
    letter = accounts.invitation_letter(email, link, typed["lang"])
    sent = mail.send_letter(services.mailer, services.settings, letter)
    context = {
        "nav": "admin",
        "email": email,
        "link": link,
        "days": accounts.INVITATION_DAYS,
        # "sent", "failed" (the log says why) or "logged" (no mail server set up).
        "mailed": ("sent" if sent else "failed") if services.mailer.delivers else "logged",
        "site_url_set": bool(services.settings.site_url),
    }
    return ctx.render("admin_invited.html", context, cache=ACCOUNT_CACHE)


# --- artist profiles -----------------------------------------------------------------------------


@form_page()
def link_artist(ctx: Context, form: FormData) -> Response:
    """Let the account of the typed address speak for the profile (claim a profile that a
    credit made, say); linking it again changes nothing."""
    ctx.require_admin()
    artist_id = params.row_id(ctx.path_param("artist_id"))
    email = params.text(form.get("email")).strip()[: accounts.MAX_EMAIL]
    services = ctx.services
    with services.sessions.begin() as session:
        artist = session.get(Artist, artist_id) if artist_id is not None else None
        if artist is None:
            raise ctx.not_found(NO_PROFILE)
        name = artist.name
        user = accounts.find_user(session, email)
        if user is not None:
            accounts.link_artist(session, user.id, artist.id)
    if user is None:
        with services.sessions() as session:
            # The section shows this profile, whatever it listed, with what was typed.
            context = _context(ctx, session, **_profiles(ctx, session, q=name))
        context["profile_errors"] = {artist_id: ctx.gettext(NO_SUCH_EMAIL)}
        context["profile_typed"] = {artist_id: email}
        return ctx.render("admin.html", context, status=400, cache=ACCOUNT_CACHE)
    # Back to the profile, now listed with its accounts.
    return ctx.see_other(ctx.urls.admin(fragment="profiles", profile_q=name, done="linked"))


@form_page()
def unlink_artist(ctx: Context, form: FormData) -> Response:
    """The account no longer speaks for the profile (already done: nothing changes)."""
    ctx.require_admin()
    artist_id = params.row_id(ctx.path_param("artist_id"))
    user_id = params.row_id(ctx.path_param("user_id"))
    with ctx.services.sessions.begin() as session:
        artist = session.get(Artist, artist_id) if artist_id is not None else None
        user = session.get(User, user_id) if user_id is not None else None
        if artist is None or user is None:
            raise ctx.not_found(NO_PROFILE if artist is None else NO_ACCOUNT)
        accounts.unlink_artist(session, user.id, artist.id)
        name = artist.name
    return ctx.see_other(ctx.urls.admin(fragment="profiles", profile_q=name, done="unlinked"))


# --- tags ----------------------------------------------------------------------------------------


def _tags_context(ctx: Context, session: Session, page: int, **extra: Any) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(Tag)) or 0
    # Links to this list's pages, from its own address or from a refused form's.
    pager = replace(
        ctx.pager(page, TAGS_PER_PAGE, total),
        prev_url=ctx.urls.admin_tags(page=page - 1 if page > 2 else None) if page > 1 else None,
        next_url=(ctx.urls.admin_tags(page=page + 1) if page * TAGS_PER_PAGE < total else None),
    )
    rows = session.scalars(
        select(Tag).order_by(Tag.name, Tag.id).offset(pager.offset).limit(TAGS_PER_PAGE)
    )
    return {
        "nav": "admin",
        "tags": [
            {
                "id": tag.id,
                "name": tag.name,
                "name_en": tag.name_en or "",
                "url": ctx.urls.tag(tag.slug),
                "action": ctx.urls.admin_tag(tag.id),
            }
            for tag in rows
        ],
        "pager": pager,
        "page": page,
        "done": ctx.notice(),
        "error": None,
        "error_tag": None,
        **extra,
    }


@page
def tags_page(ctx: Context) -> Response:
    """Every tag with its English name, which English pages show instead of the name."""
    ctx.require_admin()
    with ctx.services.sessions() as session:
        context = _tags_context(ctx, session, ctx.page_number())
    return ctx.render("admin_tags.html", context, cache=ACCOUNT_CACHE)


@form_page()
def save_tag(ctx: Context, form: FormData) -> Response:
    """One tag's English name: spaces folded, empty for none; too long, the list again."""
    ctx.require_admin()
    tag_id = params.row_id(ctx.path_param("tag_id"))
    page = params.row_id(params.text(form.get("page"))) or 1
    typed = " ".join(params.text(form.get("name_en")).split())
    with ctx.services.sessions.begin() as session:
        tag = session.get(Tag, tag_id) if tag_id is not None else None
        if tag is None:
            raise ctx.not_found(NO_TAG)
        if len(typed) > MAX_TAG_NAME:
            context = _tags_context(
                ctx, session, page, error=ctx.gettext(TAG_NAME_TOO_LONG), error_tag=tag.id
            )
            context["tags"] = [
                {**t, "name_en": typed[: MAX_TAG_NAME * 2]} if t["id"] == tag.id else t
                for t in context["tags"]
            ]
            return ctx.render("admin_tags.html", context, status=400, cache=ACCOUNT_CACHE)
        tag.name_en = typed or None
        tag_id = tag.id
    return ctx.see_other(
        ctx.urls.admin_tags(
            page=page if page > 1 else None, done="tag_saved", fragment=f"tag-{tag_id}"
        )
    )
