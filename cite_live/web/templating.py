"""The Jinja2 environment: autoescaped .html templates, Babel translations and display helpers.

Templates translate with ``_()`` and ``ngettext()`` (new-style: ``_("%(name)s", name=x)``); the
language is the request's (see :mod:`cite_live.i18n`). Every template rendered through a
``TemplateResponse`` also gets ``lang``, ``other_lang``, ``current_path``, ``site_url``,
``urls`` (the :class:`~cite_live.web.urls.Urls` of every link) and ``user`` (the signed-in
:class:`~cite_live.auth.CurrentUser` or None; these names win over a handler's own); every
form puts ``csrf_token()`` in a hidden field.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

import jinja2
from babel.dates import format_date as babel_format_date
from babel.numbers import format_decimal
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from cite_live import auth, i18n, metadata
from cite_live.settings import Settings
from cite_live.site import site_url
from cite_live.web import early_press
from cite_live.web.urls import Urls


def _context_language(context: jinja2.runtime.Context) -> str:
    request = context.get("request")
    if isinstance(request, Request):
        lang = getattr(request.state, "lang", None)
        if isinstance(lang, str):
            return lang
    lang = context.get("lang")
    return lang if isinstance(lang, str) else i18n.current_language()


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str) -> str:
    return i18n.gettext(message, _context_language(context))


@jinja2.pass_context
def _ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return i18n.ngettext(singular, plural, n, _context_language(context))


def format_duration(seconds: float | None) -> str:
    """ "3:25", "1:02:03"; empty when unknown."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return ""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def iso_duration(seconds: float | None) -> str:
    """The ISO-8601 duration of a <time datetime> attribute: "PT3M25S"; empty when unknown."""
    return metadata.iso_duration(seconds) or ""


@jinja2.pass_context
def _format_date(context: jinja2.runtime.Context, value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.date()
    return babel_format_date(value, format="long", locale=_context_language(context))


@jinja2.pass_context
def _format_number(context: jinja2.runtime.Context, value: int | float) -> str:
    return format_decimal(value, locale=_context_language(context))


@jinja2.pass_context
def _csrf_token(context: jinja2.runtime.Context) -> str:
    """The hidden field's value of every form (see :func:`cite_live.auth.csrf_token`)."""
    request = context.get("request")
    return auth.csrf_token(request) if isinstance(request, Request) else ""


def _request_context(request: Request) -> dict[str, Any]:
    lang = getattr(request.state, "lang", i18n.DEFAULT_LANGUAGE)
    path = request.url.path
    if request.url.query:
        path += "?" + request.url.query
    return {
        "lang": lang,
        "other_lang": "en" if lang == "fr" else "fr",
        "current_path": path,
        "site_url": site_url(request),
        "urls": Urls(site_url(request)),
        "user": auth.current_user(request),
    }


def make_environment(settings: Settings) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(settings.web_dir / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    i18n.load_all()
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=True
    )
    environment.globals.update(
        pick=i18n.pick, csrf_token=_csrf_token, early_press=early_press.element
    )
    environment.filters.update(
        duration=format_duration,
        iso_duration=iso_duration,
        date=_format_date,
        number=_format_number,
    )
    return environment


def make_templates(settings: Settings) -> Jinja2Templates:
    return Jinja2Templates(env=make_environment(settings), context_processors=[_request_context])
