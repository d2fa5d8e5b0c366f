"""The visitor's language: negotiation, Babel catalogues and the gettext of Python code.

French is the default. A request's language comes from ``?lang=``, then the ``lang`` cookie (set
by ``/lang/{code}``), then ``Accept-Language``. The JSON API speaks English to a client that asks
for none of these (a script, curl): French is the site's default, not the API's.
The catalogues are the ``.po`` files under ``cite_live/locale/``, compiled in memory once per
process: no ``.mo`` file is kept anywhere.
"""

from __future__ import annotations

import functools
import io
from contextvars import ContextVar
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"
COOKIE = "lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"

# The language of the request being handled, for Python code that has no request at hand.
_current: ContextVar[str] = ContextVar("cite_live_language", default=DEFAULT_LANGUAGE)


def N_(message: str) -> str:
    """Mark ``message`` for extraction; it is translated later, where it is shown."""
    return message


@functools.cache
def translations(lang: str) -> Translations:
    """The compiled catalogue of ``lang`` (a language we do not have gets French)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    path = LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=lang, domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def load_all() -> None:
    """Compile every catalogue now, so that a broken .po fails at start-up, not on a visit."""
    for lang in LANGUAGES:
        translations(lang)


def current_language() -> str:
    return _current.get()


def set_current_language(lang: str) -> None:
    _current.set(lang if lang in LANGUAGES else DEFAULT_LANGUAGE)


def gettext(message: str, lang: str | None = None) -> str:
    return translations(lang or _current.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int, lang: str | None = None) -> str:
    return translations(lang or _current.get()).ngettext(singular, plural, n)


def pick(fr: str | None, en: str | None, lang: str) -> str:
    """The visitor's version of a bilingual field, or the other one when theirs is empty."""
    first, second = (en, fr) if lang == "en" else (fr, en)
    if first and first.strip():
        return first
    return second or ""


def fallback_lang(fr: str | None, en: str | None, lang: str) -> str | None:
    """The language of what :func:`pick` gives when it fell back to the other one; None when
    it is in ``lang`` (or there is nothing). A page sets it as the ``lang`` attribute of the
    element holding the text, so that a screen reader pronounces a French title on an English
    page as French."""
    first, second = (en, fr) if lang == "en" else (fr, en)
    if (first and first.strip()) or not (second and second.strip()):
        return None
    return "fr" if lang == "en" else "en"


def parse_accept_language(header: str) -> str | None:
    """The language we have that the header prefers most, honouring q-values; None if none."""
    choices: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:50]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-", 1)[0].lower()
        if quality > 0 and primary in LANGUAGES:
            choices.append((-quality, position, primary))
    return min(choices)[2] if choices else None


def negotiate(
    query_lang: str | None,
    cookie_lang: str | None,
    accept_language: str,
    default: str = DEFAULT_LANGUAGE,
) -> str:
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGUAGES:
            return candidate
    return parse_accept_language(accept_language) or default


class LocaleMiddleware:
    """Sets ``request.state.lang`` and ``request.state.translations`` for every HTTP request.

    HTML answers say which language they are in and that it depends on the cookie and the
    Accept-Language header, so that shared caches keep one copy per language. Other answers
    (media segments, JSON) are left alone: a Vary header would only split their cache.

    Under ``english_paths`` (the JSON API's) a request that asks for no language gets English.
    """

    def __init__(self, app: ASGIApp, english_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.english_paths = english_paths
        load_all()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        english = bool(self.english_paths) and scope["path"].startswith(self.english_paths)
        lang = negotiate(
            connection.query_params.get("lang"),
            connection.cookies.get(COOKIE),
            connection.headers.get("accept-language", ""),
            "en" if english else DEFAULT_LANGUAGE,
        )
        # The same dict that request.state reads, and that the error handlers outside this
        # middleware see too.
        state = scope.setdefault("state", {})
        state["lang"] = lang
        state["translations"] = translations(lang)
        _current.set(lang)

        async def send_with_language(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    headers.setdefault("content-language", lang)
                    headers.add_vary_header("Cookie")
                    headers.add_vary_header("Accept-Language")
            await send(message)

        await self.app(scope, receive, send_with_language)
