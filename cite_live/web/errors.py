"""The site's error answers, built in one place.

Under the API, media and oEmbed an error is the JSON object ``{"error": message, "status":
status}`` (in English, as the rest of the API); elsewhere it is the error page, in the visitor's
language. The app's exception handler, the middleware that refuse a request before any handler
(host, session, CSRF) and the raw media answers all build it here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cite_live.web.urls import API_PREFIX, MEDIA_PREFIX, PATHS

#: Paths whose errors are answered in JSON rather than with an HTML page.
JSON_PATHS = (API_PREFIX, MEDIA_PREFIX, PATHS["oembed"])


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
    response: Response = templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "detail": detail},
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
