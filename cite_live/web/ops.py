"""For the operator's machines: ``/healthz``, ``/readyz`` and ``/metrics``.

- ``/healthz``: the process is alive and its event loop turns; touches nothing else, so a
  restart is never ordered because the database is down (that is not this process's fault).
- ``/readyz``: the database, the store and the broker answer (cite_live.health); 503 otherwise,
  so that a load balancer sends visitors to another process meanwhile.
- ``/metrics``: Prometheus' text format (cite_live.metrics), for the addresses of
  ``site.metrics_allow`` only.

:class:`OpsMiddleware` answers them ahead of the page cache, the language and the session (none
of which they need): a probe never gets a page the cache kept from before the database went
down, and a session cookie never makes ``/healthz`` wait on the database. It comes after the
security headers and :class:`~cite_live.site.HostMiddleware`: a load balancer probes at the
address the server binds or at one of ``site.allowed_hosts``, and a forwarded client address is
believed from trusted proxies only.

:class:`RequestMetricsMiddleware`, outermost, counts every answer by route template.
"""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cite_live.health import OK, Readiness
from cite_live.metrics import CONTENT_TYPE
from cite_live.services import Services
from cite_live.site import PROXIED

NO_STORE = {"Cache-Control": "no-store"}
NOT_ALLOWED = "The metrics are read from the addresses in site.metrics_allow only."
# Headers a proxy adds: a request carrying one that no trusted proxy vouched for came through
# a proxy we do not know, which may be serving anyone.
FORWARDING = (b"x-forwarded-for", b"forwarded", b"x-real-ip")
UNMATCHED = "(unmatched)"


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok", headers=NO_STORE)


async def readyz(request: Request) -> Response:
    readiness: Readiness = request.app.state.readiness
    checks = await readiness.run()
    ready = all(outcome == OK for outcome in checks.values())
    body = {"status": "ready" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503, headers=NO_STORE)


def metrics(request: Request) -> Response:
    if not may_read_metrics(request):
        return PlainTextResponse(NOT_ALLOWED, status_code=403, headers=NO_STORE)
    body = _services(request).metrics.exposition()
    return Response(body, media_type=CONTENT_TYPE, headers=NO_STORE)


def may_read_metrics(request: Request) -> bool:
    """The client is in ``site.metrics_allow``, and came directly or through a trusted proxy."""
    if not request.scope.get("state", {}).get(PROXIED) and any(
        name in FORWARDING for name, _value in request.scope["headers"]
    ):
        return False
    client = request.client
    if client is None:
        return False
    try:
        address = ipaddress.ip_address(client.host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    networks = _services(request).settings.metrics_allow
    return any(address.version == net.version and address in net for net in networks)


class OpsMiddleware:
    """Hands the requests of the ops ``routes`` to their endpoints ahead of the page middleware;
    anything else goes on down the stack."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = tuple(routes)
        self.paths = frozenset(route.path for route in routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in self.paths:
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is not Match.NONE:
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class RequestMetricsMiddleware:
    """Counts each answer and its duration by route template (``/artists/{slug}``, never the
    path asked: the series stay as few as the routes), method and status."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = tuple(routes)
        # A page from the cache, or media, never reaches the router that names the route.
        self._template = functools.lru_cache(maxsize=4096)(self._match)

    def _match(self, path: str) -> str:
        scope: Scope = {"type": "http", "path": path, "method": "GET", "root_path": ""}
        for route in self.routes:
            match, _child = route.matches(scope)
            if match is not Match.NONE:
                return str(getattr(route, "path", UNMATCHED))
        return UNMATCHED

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or self._template(scope["path"])
            services = getattr(scope["app"].state, "services", None)
            if services is not None:
                services.metrics.count_request(
                    template, scope["method"], status, time.perf_counter() - started
                )
