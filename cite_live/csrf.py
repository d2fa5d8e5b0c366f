"""Forged requests: the Origin check and the CSRF token of unsafe requests.

A synchronizer token: the session holds it, pages put it in a hidden ``csrf_token`` field of
every form, scripts send it in an ``X-CSRF-Token`` header. To find the field, a form's body
(urlencoded or multipart) is read here, within a size cap, and replayed to the app; any other
body (a tus PATCH) is left to stream, and must come with the header.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope

from cite_live.i18n import N_

MAX_URLENCODED = 1024 * 1024
# Multipart forms carry cover images.
MAX_MULTIPART = 25 * 1024 * 1024

FOREIGN_ORIGIN = N_("This request came from another site.")
BAD_CSRF = N_("This form has expired: reload the page and try again.")
FORM_TOO_LARGE = N_("This form is too large to be sent.")


def _origin(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    scheme = parts.scheme.lower()
    default = {"http": 80, "https": 443}.get(scheme)
    suffix = f":{port}" if port is not None and port != default else ""
    return f"{scheme}://{parts.hostname.lower()}{suffix}"


def _allowed_origins(scope: Scope, headers: Headers, site_url: str) -> set[str | None]:
    own = _origin(f"{scope.get('scheme', 'http')}://{headers.get('host', '')}")
    return {_origin(site_url), own} - {None}


async def check_forgery(
    scope: Scope, receive: Receive, expected: str | None, site_url: str
) -> tuple[tuple[int, str] | None, Receive]:
    """(status, untranslated message) when the request may be forged, else None; and the
    receive the app must read the body from (a form's body, read here, is replayed)."""
    headers = Headers(scope=scope)
    claimed = headers.get("origin")
    if claimed is None and headers.get("referer"):
        claimed = _origin(headers["referer"]) or "null"
    if claimed is not None and _origin(claimed) not in _allowed_origins(scope, headers, site_url):
        return (403, FOREIGN_ORIGIN), receive
    if not expected:
        return (403, BAD_CSRF), receive
    supplied = headers.get("x-csrf-token")
    if supplied is None:
        content_type, options = parse_options_header(headers.get("content-type", ""))
        if content_type in (b"application/x-www-form-urlencoded", b"multipart/form-data"):
            multipart = content_type == b"multipart/form-data"
            body = await _read_body(receive, MAX_MULTIPART if multipart else MAX_URLENCODED)
            if body is None:
                return (413, FORM_TOO_LARGE), receive
            boundary = options.get(b"boundary", b"")
            supplied = _multipart_field(body, boundary) if multipart else _urlencoded_field(body)
            receive = _replay(body, receive)
    if supplied is None or not hmac.compare_digest(supplied.encode(), expected.encode()):
        return (403, BAD_CSRF), receive
    return None, receive


async def _read_body(receive: Receive, cap: int) -> bytes | None:
    """The whole body, or None beyond ``cap`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away; the app sees an empty form and its answer is lost
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _urlencoded_field(body: bytes) -> str | None:
    try:
        fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    except ValueError:
        return None
    return next((value for name, value in fields if name == "csrf_token"), None)


def _multipart_field(body: bytes, boundary: bytes) -> str | None:
    """The ``csrf_token`` field of a multipart body (other parts are skipped, not kept)."""
    found: list[bytes] = []
    part: dict[str, Any] = {}

    def on_part_begin() -> None:
        part.clear()
        part.update(field=b"", value=b"", headers={}, data=[])

    def on_header_field(data: bytes, start: int, end: int) -> None:
        part["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        part["value"] += data[start:end]

    def on_header_end() -> None:
        part["headers"][part["field"].lower()] = part["value"]
        part["field"], part["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        _, params = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if params.get(b"name") == b"csrf_token" and sum(map(len, part["data"])) < 256:
            part["data"].append(data[start:end])

    def on_part_end() -> None:
        _, params = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if params.get(b"name") == b"csrf_token" and not found:
            found.append(b"".join(part["data"]))

    callbacks: Any = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    try:
        parser = MultipartParser(boundary, callbacks)
        parser.write(body)
        parser.finalize()
    except (FormParserError, ValueError):
        pass
    return found[0].decode("utf-8", "replace") if found else None
