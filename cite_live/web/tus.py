"""Resumable uploads over tus 1.0 (https://tus.io/protocols/resumable-upload), on Starlette.

Core protocol plus the creation, creation-with-upload, termination, checksum (sha1, sha256,
md5) and expiration extensions; Upload-Defer-Length is not supported (the length is needed up
front to check the size limit and the quota). Every request needs a signed-in account, and an
upload answers only to the account that created it: anyone else gets 404.

A PATCH streams its body to a local file in batches written from a worker thread, syncs the
file, and only then records and answers the new offset; a client that goes away keeps what it
sent (see :mod:`cite_live.partials`). With a store that assembles parts (S3) that file is only
a spool: what it holds goes to the bucket before the offset moves, so that any web process may
take the next request. What an upload is, and how it becomes a production, is in
:mod:`cite_live.uploads`.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from email.utils import format_datetime
from typing import Any

from babel.numbers import format_decimal
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from cite_live import i18n, uploads
from cite_live.auth import CHALLENGE, CurrentUser
from cite_live.i18n import N_
from cite_live.params import digits
from cite_live.partials import CHECKSUM_ALGORITHMS, Appender, Checksum, UploadBusy
from cite_live.services import Services
from cite_live.storage import StorageError
from cite_live.uploads import UploadRefused, UploadView
from cite_live.web.context import Context
from cite_live.web.urls import Urls

log = logging.getLogger("cite_live.web.tus")

VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,checksum,expiration"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
MAX_METADATA = 16 * 1024
# Upload-Metadata keys kept, with their longest value; Uppy names the first two name/type.
METADATA_FIELDS = {
    "filename": 300,
    "filetype": 100,
    "title": 300,
    "production": 16,
    "visibility": 10,
    # "1": publish as soon as playable (cite_live.catalogue.may_play_preview).
    "publish_early": 1,
}
METADATA_ALIASES = {"name": "filename", "type": "filetype"}

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_METADATA_KEY = re.compile(r"^[!-+\--~]+$")  # printable ASCII without space and comma


VERSION_REQUIRED = N_("This server speaks tus 1.0.0: send the header Tus-Resumable: 1.0.0.")
LENGTH_REQUIRED = N_("Send the size of the file in the header Upload-Length.")
NO_DEFERRED_LENGTH = N_("Send the size of the file when the upload starts.")
BAD_METADATA = N_("The header Upload-Metadata is malformed.")
BAD_OFFSET = N_("Send the offset of this chunk in the header Upload-Offset.")
BAD_CHECKSUM_HEADER = N_("The header Upload-Checksum is malformed.")
UNKNOWN_CHECKSUM = N_("This checksum algorithm is not supported; use sha1, sha256 or md5.")
WRONG_TYPE = N_("Send the bytes of the file as application/offset+octet-stream.")
NOT_FOUND = N_("There is no such upload.")
GONE = N_("This upload was cancelled or has expired; start it again.")
BUSY = N_("Another request is sending this upload; try again in a moment.")
OFFSET_MISMATCH = N_("This chunk does not start where the upload stands; ask for its offset.")
PAST_THE_END = N_("This chunk goes past the end of the upload.")
CHECKSUM_MISMATCH = N_("This chunk was damaged on the way (its checksum differs); send it again.")
IDLE = N_("Nothing was received for too long; the upload keeps what arrived.")
STORE_AWAY = N_("The media store did not answer; send this chunk again in a moment.")
ALREADY_COMPLETE = N_("This upload is complete; delete its production instead.")
METHOD = N_("This method is not allowed here.")

SIZE_UNITS = (
    (1024**4, N_("%(num)s TB")),
    (1024**3, N_("%(num)s GB")),
    (1024**2, N_("%(num)s MB")),
    (1024, N_("%(num)s KB")),
)


# --- answers -------------------------------------------------------------------------------------


def format_size(size: int) -> str:
    """A size for people, in their language: 53687091200 → "50 GB" ("50 Go")."""
    lang = i18n.current_language()
    for factor, unit in SIZE_UNITS:
        if size >= factor:
            number = format_decimal(round(size / factor, 1), locale=lang)
            return i18n.gettext(unit) % {"num": number}
    return i18n.gettext(N_("%(num)s bytes")) % {"num": format_decimal(size, locale=lang)}


def _expires(view: UploadView) -> dict[str, str]:
    return {"Upload-Expires": format_datetime(view.expires_at, usegmt=True)}


def _answer(status: int, headers: dict[str, str] | None = None, **kwargs: Any) -> Response:
    return Response(
        status_code=status,
        headers={"Tus-Resumable": VERSION, "Cache-Control": "no-store", **(headers or {})},
        **kwargs,
    )


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
) -> Response:
    text = i18n.gettext(message) % params if params else i18n.gettext(message)
    response = PlainTextResponse(text + "\n", status_code=status)
    response.headers.update({"Tus-Resumable": VERSION, "Cache-Control": "no-store"})
    response.headers.update(headers or {})
    return response


def _refused(exc: UploadRefused) -> Response:
    params = {name: format_size(int(value)) for name, value in exc.params.items()}
    headers = CHALLENGE if exc.status == 401 else None
    return _error(exc.status, exc.message, headers, params=params)


# --- what a request says -------------------------------------------------------------------------


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _number(request: Request, name: str, message: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    number = digits(value.strip(), 19)
    if number is None:
        raise BadRequest(400, message)
    return number


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _clean(value: str, limit: int) -> str:
    # Control characters (newlines, escapes, NUL) never belong in a name or a title.
    text = "".join(c for c in value if unicodedata.category(c) != "Cc")
    return " ".join(text.split())[:limit]


def parse_metadata(header: str) -> dict[str, str]:
    """The Upload-Metadata we keep, decoded and cleaned; BadRequest if it is malformed."""
    if len(header) > MAX_METADATA:
        raise BadRequest(400, BAD_METADATA)
    raw: dict[str, str] = {}
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, encoded = pair.partition(" ")
        if not _METADATA_KEY.match(key) or key in raw:
            raise BadRequest(400, BAD_METADATA)
        try:
            raw[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(400, BAD_METADATA) from None
    for alias, name in METADATA_ALIASES.items():
        if alias in raw and name not in raw:
            raw[name] = raw[alias]
    meta: dict[str, str] = {}
    for name, limit in METADATA_FIELDS.items():
        if name not in raw:
            continue
        value = raw[name]
        if name == "filename":
            # Clients may send a path; only its last part names the file.
            value = value.replace("\\", "/").rsplit("/", 1)[-1]
        value = _clean(value, limit)
        if value:
            meta[name] = value
    return meta


def encode_metadata(meta: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode('ascii')}" for key, value in meta.items()
    )


def parse_checksum(request: Request) -> Checksum | None:
    header = request.headers.get("upload-checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(400, UNKNOWN_CHECKSUM)
    try:
        checksum = Checksum(algorithm, base64.b64decode(encoded.strip(), validate=True))
    except binascii.Error:
        raise BadRequest(400, BAD_CHECKSUM_HEADER) from None
    if len(checksum.digest) != checksum.new().digest_size:
        raise BadRequest(400, BAD_CHECKSUM_HEADER)
    return checksum


def _method(request: Request) -> str:
    # For clients behind proxies that only pass GET and POST (tus-js-client's overridePatchMethod).
    override = request.headers.get("x-http-method-override", "").strip().upper()
    if request.method == "POST" and override in ("PATCH", "DELETE", "HEAD"):
        return override
    return request.method


# --- the endpoints -------------------------------------------------------------------------------


async def collection(request: Request) -> Response:
    """The collection of uploads: OPTIONS (what this server supports) and POST (a new upload)."""
    return await _dispatch(request, {"OPTIONS": _options, "POST": _create})


async def upload(request: Request) -> Response:
    """One upload: HEAD (its offset), PATCH (bytes), DELETE (cancel)."""
    handlers = {"OPTIONS": _options, "HEAD": _head, "PATCH": _patch, "DELETE": _delete}
    return await _dispatch(request, handlers)


# What a request is answered by, given its context and the signed-in account.
Handler = Callable[[Context, CurrentUser], Awaitable[Response]]


async def _dispatch(request: Request, handlers: Mapping[str, Handler]) -> Response:
    ctx = Context.of(request)
    try:
        user = ctx.require_user()
    except HTTPException as exc:
        # Its WWW-Authenticate too: a 401 says how to authenticate.
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}))
    method = _method(request)
    handler = handlers.get(method)
    if handler is None:
        return _error(405, METHOD, {"Allow": ", ".join(handlers)})
    if method != "OPTIONS" and request.headers.get("tus-resumable") != VERSION:
        return _error(412, VERSION_REQUIRED, {"Tus-Version": VERSION})
    try:
        response = await handler(ctx, user)
    except BadRequest as exc:
        return _error(exc.status, exc.message)
    except UploadRefused as exc:
        return _refused(exc)
    return response


async def _options(ctx: Context, user: CurrentUser) -> Response:
    return _answer(
        204,
        {
            "Tus-Version": VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(ctx.settings.limits.max_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        },
    )


async def _create(ctx: Context, user: CurrentUser) -> Response:
    request, services = ctx.request, ctx.services
    if "upload-defer-length" in request.headers:
        raise BadRequest(400, NO_DEFERRED_LENGTH)
    length = _number(request, "upload-length", LENGTH_REQUIRED)
    if length is None:
        raise BadRequest(400, LENGTH_REQUIRED)
    meta = parse_metadata(request.headers.get("upload-metadata", ""))
    with_body = _content_type(request) == OFFSET_OCTET_STREAM
    body_length = _number(request, "content-length", WRONG_TYPE) or 0
    if body_length and not with_body:
        raise BadRequest(415, WRONG_TYPE)
    checksum = parse_checksum(request) if with_body else None
    if body_length > length:
        raise BadRequest(413, PAST_THE_END)
    view = await run_in_threadpool(uploads.create, services, user, length, meta)
    # On the address this request came to (not site.url): the client comes back where it
    # reached the server, which a script on the server's own network may need.
    here = Urls(str(request.base_url))
    headers = {"Location": here.absolute(here.api_upload(view.id)), **_expires(view)}
    if not with_body:
        return _answer(201, headers)
    # creation-with-upload: whatever becomes of the first chunk, the upload exists now and
    # the client learns where it stands from Upload-Offset.
    response = await _write_chunk(request, services, view.id, 0, checksum)
    headers["Upload-Offset"] = response.headers.get("upload-offset", "0")
    if "upload-expires" in response.headers:
        headers["Upload-Expires"] = response.headers["upload-expires"]
    return _answer(201, headers, background=response.background)


async def _own(services: Services, user: CurrentUser, upload_id: str) -> UploadView | None:
    if not _UPLOAD_ID.match(upload_id):
        return None
    view = await run_in_threadpool(uploads.get, services, upload_id)
    # Someone else's upload does not exist, for them (administrators included).
    return view if view is not None and view.user_id == user.id else None


def _final(view: UploadView) -> Response:
    return _answer(204, {"Upload-Offset": str(view.length)})


async def _head(ctx: Context, user: CurrentUser) -> Response:
    services = ctx.services
    view = await _own(services, user, ctx.path_param("upload_id"))
    if view is None:
        return _answer(404)
    if view.state == "terminated" or view.expired:
        return _answer(410)
    offset = view.length
    if not view.finished and view.key is not None and services.store.assembles_parts:
        # Sent in parts: the row says the offset, whichever process took the last PATCH.
        offset = view.offset
        if offset == view.length and await run_in_threadpool(uploads.complete, services, view.id):
            await run_in_threadpool(_store, services, view.id)
    elif not view.finished:
        try:
            claimed, partial = await run_in_threadpool(uploads.claim, services, view.id)
        except UploadBusy:
            # A PATCH is writing: the recorded offset is what is durable so far.
            claimed, partial = view, None
        if partial is not None:
            partial.close()
        if claimed is None or claimed.state == "terminated" or claimed.expired:
            return _answer(410)
        view = claimed
        offset = view.length if view.finished else view.offset
        if offset == view.length and await run_in_threadpool(uploads.complete, services, view.id):
            # Every byte was recorded but the server stopped before completing it.
            await run_in_threadpool(_store, services, view.id)
    headers = {"Upload-Offset": str(offset), "Upload-Length": str(view.length)}
    if view.meta:
        headers["Upload-Metadata"] = encode_metadata(view.meta)
    if not view.finished:
        headers.update(_expires(view))
    return _answer(200, headers)


async def _patch(ctx: Context, user: CurrentUser) -> Response:
    request, services = ctx.request, ctx.services
    if _content_type(request) != OFFSET_OCTET_STREAM:
        raise BadRequest(415, WRONG_TYPE)
    offset = _number(request, "upload-offset", BAD_OFFSET)
    if offset is None:
        raise BadRequest(400, BAD_OFFSET)
    checksum = parse_checksum(request)
    view = await _own(services, user, ctx.path_param("upload_id"))
    if view is None:
        return _error(404, NOT_FOUND)
    if view.finished:
        # The final PATCH sent again (its answer was lost): the upload is whole already.
        return _final(view)
    if view.state == "terminated" or view.expired:
        return _error(410, GONE)
    body_length = _number(request, "content-length", PAST_THE_END)
    return await _write_chunk(request, services, view.id, offset, checksum, body_length)


async def _write_chunk(
    request: Request,
    services: Services,
    upload_id: str,
    offset: int,
    checksum: Checksum | None,
    body_length: int | None = None,
) -> Response:
    """Append the body at ``offset``, once the upload is claimed. A chunk that starts at the
    wrong place is a 409 before anything else is said of it, a chunk longer than what is left
    (by its Content-Length) a 413: a client told 413 would shorten a chunk it must move."""
    try:
        view, receiver = await run_in_threadpool(uploads.receive, services, upload_id)
    except UploadBusy:
        return _error(423, BUSY)
    except StorageError:
        log.warning("upload %s: the store did not answer", upload_id, exc_info=True)
        return _error(503, STORE_AWAY, {"Retry-After": "5"})
    if view is None:
        return _error(404, NOT_FOUND)
    if receiver is None:
        return _final(view) if view.finished else _error(410, GONE)
    try:
        if view.offset != offset:
            return _error(409, OFFSET_MISMATCH, {"Upload-Offset": str(view.offset)})
        if body_length is not None and offset + body_length > view.length:
            return _error(413, PAST_THE_END, {"Upload-Offset": str(view.offset)})
        origin = receiver.origin
        appender = Appender(
            receiver.partial,
            view.offset - origin,
            view.length - origin,
            checksum,
            receiver.record,
            receiver.renew,
            receiver.checkpoint,
        )
        try:
            received = await appender.run(request)
        except UploadBusy:
            # Its lease ran out (a stalled request) and another request writes now.
            return _error(423, BUSY)
        except StorageError:
            # A part or the tail was refused: what was recorded before stands (HEAD says it).
            log.warning("upload %s: the store did not answer", upload_id, exc_info=True)
            return _error(503, STORE_AWAY, {"Retry-After": "5"})
        received = dataclasses.replace(received, offset=origin + received.offset)
        # What is kept (a chunk whose checksum failed keeps nothing), for the metrics.
        services.metrics.upload_bytes.inc(max(0, received.offset - view.offset))
        completed = received.offset == view.length and await run_in_threadpool(
            uploads.complete, services, view.id
        )
    finally:
        await run_in_threadpool(receiver.close)
    expires = format_datetime(received.expires or view.expires_at, usegmt=True)
    headers = {"Upload-Offset": str(received.offset), "Upload-Expires": expires}
    if received.checksum_mismatch:
        return _error(460, CHECKSUM_MISMATCH, headers)
    if received.idle:
        return _error(408, IDLE, headers)
    if not completed:
        return _answer(204, headers)
    if services.store.moves_cheaply:
        # A rename on the same disk: the original is in place before the client hears back.
        await run_in_threadpool(_store, services, view.id)
        return _answer(204, headers)
    # Into a remote store a big file takes a while: answer first, store afterwards (and if this
    # process dies meanwhile, uploads.finish_pending does it again).
    return _answer(
        204, headers, background=BackgroundTask(run_in_threadpool, _store, services, view.id)
    )


def _store(services: Services, upload_id: str) -> None:
    try:
        uploads.store_original(services, upload_id)
    except Exception:
        log.exception("could not store the original of upload %s; the sweeper will", upload_id)


async def _delete(ctx: Context, user: CurrentUser) -> Response:
    services = ctx.services
    view = await _own(services, user, ctx.path_param("upload_id"))
    if view is None:
        return _error(404, NOT_FOUND)
    if view.state == "terminated":
        return _error(410, GONE)
    if view.finished:
        return _error(409, ALREADY_COMPLETE)
    try:
        terminated = await run_in_threadpool(uploads.terminate, services, view.id)
    except UploadBusy:
        return _error(423, BUSY)
    return _answer(204) if terminated else _error(410, GONE)
