"""How a handler that waits on something is called: in a worker thread, never on the event loop.

One rule for the whole app: a handler that touches the database, the store or a password hash
is a plain ``def``, which Starlette runs in its threadpool; one that also needs the request's
form is a plain ``def`` taking the form, decorated with :func:`with_form`. The event loop only
reads what arrives from the network and writes what leaves; a statement that waits on a lock,
a slow disk or a remote store would otherwise hold every other visitor meanwhile (a SQLite
writer waits up to 30 s for its lock). Handlers that stream a body (tus uploads, media) stay
``async`` and hand each blocking step to ``run_in_threadpool``. tests/test_access_matrix.py
watches the loop.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

FormHandler = Callable[[Request, FormData], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def with_form(*, max_files: int = 0, max_fields: int = 1000) -> Callable[[FormHandler], Endpoint]:
    """Read the form on the event loop (within these limits), then run the handler with it in
    a worker thread; uploaded files stay open until the handler returns."""

    def decorate(handler: FormHandler) -> Endpoint:
        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            async with request.form(max_files=max_files, max_fields=max_fields) as form:
                return await run_in_threadpool(handler, request, form)

        return endpoint

    return decorate
