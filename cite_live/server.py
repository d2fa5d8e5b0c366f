"""The HTTP server `cite-live serve` runs: uvicorn with httptools, limits on a request's head,
and no forwarded header believed by uvicorn itself (cite_live.site decides, from settings).

Neither httptools nor uvicorn limits a request head: a client may send megabytes of headers, or
thousands of them, all kept in memory and handed to the app. h11's ``max_incomplete_event_size``
(uvicorn's ``h11_max_incomplete_event_size``) is no cap either: it is checked only while a head
is still incomplete at the end of a read, so a large head that arrives in one read passes.
"""

from __future__ import annotations

from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cite_live import access

# nginx's default buffers for a request head hold 32 KiB; Apache and gunicorn allow 100 fields.
MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
# While a head is read, data is handed to the parser this much at a time, so that a head over
# the limit is refused before httptools has buffered much more of it.
HEAD_SLICE = 4096
TOO_LARGE = "The request's headers are too large or too many."
# After a refusal, what the client goes on sending is read and dropped this long before the
# connection is closed: closing with unread data would reset the connection, and the client
# could lose the answer (a "lingering close", as nginx and Apache do).
LINGER_SECONDS = 2.0


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering 431 and closing the connection when a request's
    head (request line and headers) exceeds MAX_HEAD_BYTES or MAX_HEADERS fields."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0  # received while reading the current head
        self._field_bytes = 0  # of the request line and headers parsed
        self._too_many = False
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if not self._in_head:
            super().data_received(data)
            return
        start = 0
        while self._in_head and start < len(data):
            piece = data[start : start + HEAD_SLICE]
            start += len(piece)
            self._head_bytes += len(piece)
            super().data_received(piece)
            if self._refused or self.transport.is_closing():
                return
            if self._in_head and self._head_bytes > MAX_HEAD_BYTES:
                self._refuse()
                return
        if start < len(data):
            super().data_received(data[start:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._field_bytes, self._too_many = 0, False

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            self._field_bytes += len(url)
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused:
            return
        self._field_bytes += len(name) + len(value) + 4
        if len(self.headers) >= MAX_HEADERS:
            self._too_many = True
            return
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._refused:
            return
        # A head that arrived with the end of the previous request's body, in one read, was
        # parsed whole: its size is checked here instead.
        if self._too_many or self._field_bytes > MAX_HEAD_BYTES:
            self._refuse()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            super().send_400_response(msg)

    def _refuse(self) -> None:
        self._refused, self._in_head = True, False
        self.logger.warning(
            "Request head refused: over %d bytes or %d headers.", MAX_HEAD_BYTES, MAX_HEADERS
        )
        # An answer still being sent for an earlier request on this connection is not
        # interleaved with this one: the connection just ends.
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()
            return
        body = TOO_LARGE.encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
            b"content-type: text/plain; charset=utf-8\r\n"
            b"content-length: %d\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), body)
        )
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def server_config(app: ASGIApp, *, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app``, as `cite-live serve` runs it."""
    # Its access log names every path served: media tokens are kept out of it.
    access.install()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=HttpProtocol,
        # The site has no WebSocket: an Upgrade header is left unanswered.
        ws="none",
        # X-Forwarded-* are believed by cite_live.site.HostMiddleware from site.trusted_proxies
        # only; uvicorn's own handling would trust 127.0.0.1 (or FORWARDED_ALLOW_IPS).
        proxy_headers=False,
        **options,
    )
