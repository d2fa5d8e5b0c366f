"""What every handler receives: the request's context, and the wrappers that build it.

A handler is a plain function of a :class:`Context` (and of the request's form, for a form
handler), declared with one of the wrappers below; the wrapper runs it in a worker thread,
never on the event loop: a handler that touches the database, the store or a password hash
would otherwise hold every other visitor while it waits (a SQLite writer waits up to 30 s for
its lock). Handlers that stream a body (tus uploads, media) stay ``async`` and hand each
blocking step to ``run_in_threadpool``. tests/test_access_matrix.py watches the loop.

- :func:`page`: ``def handler(ctx) -> Response``;
- :func:`form_page`: ``def handler(ctx, form) -> Response``, the form read on the event loop
  within limits (uploaded files stay open until the handler returns);
- :func:`api`: like :func:`page`, answering with CORS headers and its HTTP errors as the JSON
  error object, so that a partner page reading a 404 sees the 404 and not a CORS failure.

The context holds the services, the signed-in user, the language, the URL builder
(:class:`~cite_live.web.urls.Urls`, also given to every template as ``urls``) and what handlers
do with them: render a template, refuse with a translated message, go back to a safe path of
the site, paginate.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, FormData, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from cite_live import auth, i18n, params
from cite_live.auth import CurrentUser
from cite_live.i18n import N_
from cite_live.services import Services
from cite_live.settings import Settings
from cite_live.site import site_url
from cite_live.storage import ObjectStore
from cite_live.web.errors import json_error
from cite_live.web.limits import LIST_MAX_PAGE
from cite_live.web.urls import Urls

#: A page for one viewer (a private production's, with signed media links): never kept by a
#: shared cache, and its links must not leak through a Referer header.
PRIVATE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "private, no-store",
    "Referrer-Policy": "no-referrer",
}
#: A page of one account (a form with a CSRF token): never kept by a cache nor the browser's
#: back-forward copy.
ACCOUNT_CACHE = "private, no-store"
#: Partner pages may read what the API answers.
CORS: Mapping[str, str] = {"Access-Control-Allow-Origin": "*"}
NO_SUCH_PAGE = N_("There is no such page.")
#: The "not available here" card that takes a player's place in a partner's frame: framed by any
#: site, so that the partner's page never shows the browser's broken-frame icon, and never kept
#: (what it stands for may come back).
CARD_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": "frame-ancestors *",
    "Cache-Control": "no-store",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}

#: What ``?done=`` says after a form was handled (a redirect to a page of the studio or the
#: admin page, see :meth:`Context.see_other`), by code.
NOTICES: dict[str, str] = {}

_UNSAFE_IN_PATH = re.compile(r"[\x00-\x1f\x7f\\]")


def notices(**messages: str) -> None:
    """Register what a ``?done=CODE`` page says (each message marked with ``N_``)."""
    NOTICES.update(messages)


def safe_next(target: str | None) -> str:
    """A path of this site to go on to, or "/": never another host (``//evil``, ``/\\evil``,
    ``https://evil``, or one of these encoded once or twice, since whatever reads the redirect
    may decode it again), no control character, and without a ``lang`` parameter that would
    undo a language switch."""
    if not target or len(target) > 2000 or not target.startswith("/"):
        return "/"
    decoded = unquote(unquote(target))
    for candidate in (target, decoded):
        if candidate.startswith(("//", "/\\")) or _UNSAFE_IN_PATH.search(candidate):
            return "/"
    try:
        parts = urlsplit(target)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc:
        return "/"
    if "lang" not in dict(parse_qsl(parts.query, keep_blank_values=True)):
        return target
    url = URL(target).remove_query_params("lang")
    path = url.path or "/"
    return f"{path}?{url.query}" if url.query else path


@dataclass(frozen=True)
class Pager:
    """A page of a list, with links to its neighbours (keeping the other query parameters)."""

    page: int
    per_page: int
    total: int
    prev_url: str | None
    next_url: str | None

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


@dataclass(frozen=True)
class Context:
    """One request, as a handler sees it."""

    request: Request
    services: Services
    lang: str
    urls: Urls

    @classmethod
    def of(cls, request: Request) -> Context:
        lang = getattr(request.state, "lang", i18n.DEFAULT_LANGUAGE)
        return cls(
            request=request,
            services=request.app.state.services,
            lang=lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE,
            urls=Urls(site_url(request)),
        )

    # --- what the request holds ------------------------------------------------------------------

    @property
    def site(self) -> str:
        """The site's public address, without a final slash (see cite_live.site)."""
        return self.urls.site

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def store(self) -> ObjectStore:
        return self.services.store

    @property
    def user(self) -> CurrentUser | None:
        return auth.current_user(self.request)

    @property
    def query(self) -> QueryParams:
        return self.request.query_params

    def path_param(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def path_name(self, name: str) -> str | None:
        """The path parameter ``name`` as a slug or another name, or None when it cannot name
        anything (see :func:`cite_live.params.path_name`): then nothing is looked up."""
        return params.path_name(self.path_param(name))

    def here(self) -> str:
        """This request's path and query: where to come back to."""
        url = self.request.url
        return url.path + (f"?{url.query}" if url.query else "")

    def require_user(self) -> CurrentUser:
        return auth.require_user(self.request)

    def require_admin(self) -> CurrentUser:
        return auth.require_admin(self.request)

    # --- answers ---------------------------------------------------------------------------------

    def gettext(self, message: str) -> str:
        return i18n.gettext(message, self.lang)

    def refusal(self, status: int, message: str) -> HTTPException:
        """The error to raise: its page says ``message`` in the visitor's language."""
        return HTTPException(status, self.gettext(message))

    def not_found(self, message: str) -> HTTPException:
        return self.refusal(404, message)

    def render(
        self,
        template: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        cache: str | None = None,
    ) -> Response:
        """``template`` rendered with ``context`` (and what every template gets, see
        cite_live.web.templating); ``cache`` is its Cache-Control (ACCOUNT_CACHE)."""
        templates = self.request.app.state.templates
        response: Response = templates.TemplateResponse(
            self.request, template, dict(context), status_code=status, headers=headers
        )
        if cache is not None:
            response.headers["Cache-Control"] = cache
        return response

    def see_other(self, url: str, done: str | None = None) -> RedirectResponse:
        """After a form: on to ``url`` (a path of this site), saying ``done`` there."""
        if done:
            url += ("&" if "?" in url else "?") + urlencode({"done": done})
        return RedirectResponse(url, status_code=303)

    def notice(self) -> str | None:
        """What the page says after a form sent the visitor here (``?done=``)."""
        code = self.query.get("done", "")
        return self.gettext(NOTICES[code]) if code in NOTICES else None

    def safe_next(self, target: str | None) -> str:
        return safe_next(target)

    # --- lists -----------------------------------------------------------------------------------

    def page_number(self) -> int:
        """The list page asked for (``?page=``, 1 when absent); 400 when it is not a number."""
        raw = self.query.get("page")
        return params.whole_number(raw, "page", high=LIST_MAX_PAGE, lang=self.lang) or 1

    def pager(self, page: int, per_page: int, total: int) -> Pager:
        """Page ``page`` of ``total`` items; a page past the end is a 404, not an empty list."""
        pages = max(1, math.ceil(total / per_page))
        if page > pages:
            raise self.not_found(NO_SUCH_PAGE)

        return Pager(
            page=page,
            per_page=per_page,
            total=total,
            prev_url=self.page_link(page - 1) if page > 1 else None,
            next_url=self.page_link(page + 1) if page < pages else None,
        )

    def page_link(self, number: int, *, say_first: bool = False) -> str:
        """This request's path at list page ``number``, keeping the other query parameters in
        their order; the first page without ``page=`` unless ``say_first``."""
        kept = [(k, v) for k, v in self.query.multi_items() if k != "page"]
        if number > 1 or say_first:
            kept.append(("page", str(number)))
        query = urlencode(kept)
        return self.request.url.path + (f"?{query}" if query else "")


# --- the wrappers --------------------------------------------------------------------------------

Handler = Callable[[Context], Response]
FormHandler = Callable[[Context, FormData], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def page(handler: Handler) -> Endpoint:
    """The endpoint running ``handler(ctx)`` in a worker thread."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        return await run_in_threadpool(lambda: handler(Context.of(request)))

    return endpoint


def form_page(*, max_files: int = 0, max_fields: int = 1000) -> Callable[[FormHandler], Endpoint]:
    """The endpoint reading the form on the event loop (within these limits), then running
    ``handler(ctx, form)`` with it in a worker thread (an empty form but for POST)."""

    def decorate(handler: FormHandler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            async with request.form(max_files=max_files, max_fields=max_fields) as form:
                return await run_in_threadpool(lambda: handler(Context.of(request), form))

        return endpoint

    return decorate


def api(handler: Callable[[Context], JSONResponse]) -> Endpoint:
    """The endpoint of a JSON API handler: in a worker thread, with CORS headers, its HTTP
    errors answered as the JSON error object here."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        try:
            response = await run_in_threadpool(lambda: handler(Context.of(request)))
        except HTTPException as exc:
            return json_error(exc.status_code, str(exc.detail), CORS)
        response.headers.update(CORS)
        return response

    return endpoint


def unavailable_card(ctx: Context, status: int, link: str, kind: str | None = None) -> Response:
    """The card an embed answers in its frame when it has nothing to play there, with ``link``
    to the site. ``kind`` (audio, video) sizes it, only for what anyone may know of: a hidden
    production's card is the card of one that does not exist, to the byte."""
    context = {"kind": kind, "link": link, "lang": ctx.lang}
    return ctx.render("embed_unavailable.html", context, status=status, headers=CARD_HEADERS)
