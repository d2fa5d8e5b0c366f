"""The administrators' list of partner sites: the sites that may frame the players of the
productions kept for partners (cite_live.partners). List, add, edit, delete.

Only admins get here: anyone else signed in gets 403, an anonymous visitor the login page.
A refused form comes back with what was typed and one sentence saying what to correct.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import Response

from cite_live import params, partners
from cite_live.i18n import N_
from cite_live.models import Partner, Production
from cite_live.partners import PartnerError, PartnerForm
from cite_live.web.context import ACCOUNT_CACHE, Context, form_page, notices, page

notices(
    partner_added=N_("The partner site is added."),
    partner_saved=N_("The partner site is saved."),
    partner_deleted=N_("The partner site is deleted."),
)


def _problem(ctx: Context, refused: PartnerError) -> str:
    text = ctx.gettext(refused.message)
    return text % refused.values if refused.values else text


def _find(ctx: Context, session: Session) -> Partner:
    partner_id = params.row_id(ctx.path_param("partner_id"))
    partner = session.get(Partner, partner_id) if partner_id is not None else None
    if partner is None:
        raise ctx.not_found(partners.NO_PARTNER)
    return partner


def _list_context(ctx: Context, session: Session, **extra: Any) -> dict[str, Any]:
    urls = ctx.urls
    kept = session.scalar(
        select(func.count()).select_from(Production).where(Production.embed_policy == "partners")
    )
    return {
        "nav": "admin",
        "partners": [
            {
                "id": partner.id,
                "name": partner.name,
                "origins": partner.origins,
                "edit_url": urls.admin_partner(partner.id),
            }
            for partner in partners.list_partners(session)
        ],
        "kept_for_partners": kept or 0,
        "form": PartnerForm(),
        "error": None,
        "error_field": None,
        "done": ctx.notice(),
        **extra,
    }


def _typed(form: FormData) -> PartnerForm:
    # The origins box may be long: its own checks refuse more than MAX_ORIGINS lines.
    return PartnerForm(
        name=params.text(form.get("name"))[: partners.MAX_NAME * 2],
        origins=params.text(form.get("origins"))[: partners.MAX_ORIGINS * partners.MAX_ORIGIN],
    )


@page
def partners_page(ctx: Context) -> Response:
    ctx.require_admin()
    with ctx.services.sessions() as session:
        context = _list_context(ctx, session)
    return ctx.render("admin_partners.html", context, cache=ACCOUNT_CACHE)


@form_page()
def add_partner(ctx: Context, form: FormData) -> Response:
    ctx.require_admin()
    typed = _typed(form)
    services = ctx.services
    try:
        with services.sessions.begin() as session:
            partner = partners.save_partner(session, typed)
            partner_id = partner.id
    except PartnerError as refused:
        with services.sessions() as session:
            context = _list_context(
                ctx, session, form=typed, error=_problem(ctx, refused), error_field=refused.field
            )
        return ctx.render("admin_partners.html", context, status=400, cache=ACCOUNT_CACHE)
    return ctx.see_other(
        ctx.urls.admin_partners(fragment=f"partner-{partner_id}", done="partner_added")
    )


def _edit_context(
    ctx: Context, partner: Partner, form: PartnerForm, error: str | None
) -> dict[str, Any]:
    return {
        "nav": "admin",
        "partner": {
            "id": partner.id,
            "name": partner.name,
            "action": ctx.urls.admin_partner(partner.id),
            "delete_url": ctx.urls.admin_partner_delete(partner.id),
        },
        "form": form,
        "error": error,
        "error_field": None,
    }


@page
def edit_page(ctx: Context) -> Response:
    ctx.require_admin()
    with ctx.services.sessions() as session:
        partner = _find(ctx, session)
        form = PartnerForm(name=partner.name, origins="\n".join(partner.origins))
        context = _edit_context(ctx, partner, form, None)
    return ctx.render("admin_partners_edit.html", context, cache=ACCOUNT_CACHE)


@form_page()
def save_partner(ctx: Context, form: FormData) -> Response:
    ctx.require_admin()
    typed = _typed(form)
    services = ctx.services
    try:
        with services.sessions.begin() as session:
            partner = _find(ctx, session)
            partners.save_partner(session, typed, partner)
            partner_id = partner.id
    except PartnerError as refused:
        with services.sessions() as session:
            context = _edit_context(ctx, _find(ctx, session), typed, _problem(ctx, refused))
            context["error_field"] = refused.field
        return ctx.render("admin_partners_edit.html", context, status=400, cache=ACCOUNT_CACHE)
    return ctx.see_other(
        ctx.urls.admin_partners(fragment=f"partner-{partner_id}", done="partner_saved")
    )


@form_page()
def delete_partner(ctx: Context, form: FormData) -> Response:
    """Its origins may frame no restricted player any more; deleting it twice is a 404."""
    ctx.require_admin()
    with ctx.services.sessions.begin() as session:
        session.delete(_find(ctx, session))
    return ctx.see_other(ctx.urls.admin_partners(), "partner_deleted")
