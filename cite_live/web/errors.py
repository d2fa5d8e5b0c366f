"""The site's error answers, built in one place.

Under the API, media and oEmbed an error is the JSON object ``{"error": message, "status":
status}`` (in English, as the rest of the API); elsewhere it is the error page, in the visitor's
language. The app's exception handler, the middleware that refuse a request before any handler
(host, session, CSRF) and the raw media answers all build it here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cite_live import i18n
from cite_live.i18n import N_
from cite_live.web.urls import API_PREFIX, MEDIA_PREFIX, PATHS

#: Paths whose errors are answered in JSON rather than with an HTML page.
JSON_PATHS = (API_PREFIX, MEDIA_PREFIX, PATHS["oembed"])


#: What the error page calls each status, in the visitor's language (never Starlette's English
#: reason phrase): its title, and the heading of its page.
STATUS_TITLES = {
    400: N_("Bad request"),
    401: N_("Sign-in needed"),
    403: N_("Forbidden"),
    404: N_("Not found"),
    405: N_("Method not allowed"),
    409: N_("Conflict"),
    410: N_("Gone"),
    412: N_("Precondition failed"),
    413: N_("Too large"),
    415: N_("Unsupported file type"),
    421: N_("Wrong address"),
    422: N_("Cannot be processed"),
    429: N_("Too many requests"),
    500: N_("Server error"),
    502: N_("Server error"),
    503: N_("Service unavailable"),
    504: N_("Server error"),
}
#: Starlette's own details (the reason phrases, in English), for what has no sentence of ours.
DEFAULT_DETAILS = {
    405: N_("This address does not accept this kind of request."),
}
ERROR_TITLE = N_("Error")


def status_title(status: int, lang: str) -> str:
    """The status's name in ``lang``: "Introuvable" for a 404 in French."""
    return i18n.gettext(STATUS_TITLES.get(status, ERROR_TITLE), lang)


def page_detail(status: int, detail: str, lang: str) -> str:
    """``detail`` as the page shows it: a reason phrase Starlette gave (English, whatever the
    visitor's language) becomes our sentence for the status, or nothing."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = None
    if detail == phrase:
        default = DEFAULT_DETAILS.get(status)
        return i18n.gettext(default, lang) if default else ""
    return detail


def answers_in_json(path: str) -> bool:
    return path.startswith(JSON_PATHS)


def error_object(status: int, message: str) -> dict[str, Any]:
    return {"error": message, "status": status}


def error_body(status: int, message: str) -> bytes:
    """The JSON error as bytes, for answers sent as raw ASGI messages."""
    return json.dumps(error_object(status, message)).encode()


def json_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_object(status, message), status_code=status, headers=headers)


def error_page(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The error page; ``detail`` is already in the visitor's language."""
    templates = request.scope["app"].state.templates
    lang = request.scope.get("state", {}).get("lang", i18n.DEFAULT_LANGUAGE)
    response: Response = templates.TemplateResponse(
        request,
        "error.html",
        {
            "status": status,
            "status_title": status_title(status, lang),
            "detail": page_detail(status, detail, lang),
        },
        status_code=status,
        headers=headers,
    )
    return response


def error_answer(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """JSON or the error page, whichever the path is answered in."""
    if answers_in_json(request.url.path):
        return json_error(status, detail, headers)
    return error_page(request, status, detail, headers)
