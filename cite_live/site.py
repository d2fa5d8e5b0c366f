"""The site's address: the hosts it answers to, the proxies it believes, the base of its URLs.

Every absolute URL the site writes (API objects, canonical and OG links, feeds, oEmbed, media
links) starts with :func:`site_url`: ``site.url`` when it is set, else the address the request
arrived at. That address must then be one of the site's own, or a forged ``Host`` header would
be written into pages that the page cache serves to everyone after: :class:`HostMiddleware`,
first in the stack, refuses any other with a 400. ``X-Forwarded-Proto``, ``X-Forwarded-Host``
and ``X-Forwarded-For`` are believed only from ``site.trusted_proxies``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import replace
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from cite_live.settings import Settings, host_name
from cite_live.web.errors import JSON_PATHS, error_body

NOT_OURS = (
    "This site does not answer to the host name in this request; its operator may add it to "
    "site.allowed_hosts."
)
_PORT = re.compile(r":[0-9]{1,5}")
#: Set in a request's state when its client address was taken from a trusted proxy's
#: X-Forwarded-For: one with forwarding headers but without it came through a proxy not trusted
#: (or forged them).
PROXIED = "proxied"


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """The host names answered: ``site.allowed_hosts`` and the host of ``site.url``."""
    hosts = set(settings.allowed_hosts)
    if settings.site_url:
        hosts.add(host_name(urlsplit(settings.site_url).hostname or ""))
    return frozenset(hosts)


def bound_to(settings: Settings, host: str) -> Settings:
    """``settings`` answering at ``host`` as well, the address the server binds; a wildcard
    (0.0.0.0, ::) is where it listens, not a name anyone asks for, and adds nothing."""
    try:
        name = host_name(host)
    except ValueError:
        return settings
    try:
        if ipaddress.ip_address(name).is_unspecified:
            return settings
    except ValueError:
        pass
    if name in settings.allowed_hosts:
        return settings
    return replace(settings, allowed_hosts=(*settings.allowed_hosts, name))


def site_url(request: Request) -> str:
    """The base of the absolute URLs written for ``request``, without a trailing slash."""
    return scope_site_url(request.scope)


def scope_site_url(scope: Scope) -> str:
    """:func:`site_url` for middleware and raw ASGI apps, which have a scope."""
    settings: Settings = scope["app"].state.services.settings
    if settings.site_url:
        return settings.site_url
    # The Host header has passed HostMiddleware: it names this site.
    return str(Request(scope).base_url).rstrip("/")


# Parsing a host costs some 15 µs (ipaddress is slow to refuse a name); a site sees few.
@functools.lru_cache(maxsize=1024)
def _host_of(value: str) -> str | None:
    """The host name of a Host header's value (``name[:port]``, ``[v6][:port]``), or None when
    the value is anything else: no user info, path or second port rides along into a URL."""
    if value.startswith("["):
        name, bracket, port = value[1:].partition("]")
        if not bracket:
            return None
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
    else:
        name, colon, rest = value.partition(":")
        port = colon + rest
    if port and not _PORT.fullmatch(port):
        return None
    try:
        return host_name(name)
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def _ip(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


def _address(entry: str) -> tuple[str, int]:
    """An X-Forwarded-For entry as (address, port): ``a.b.c.d[:port]``, ``[v6][:port]``, ``v6``."""
    if entry.startswith("[") and "]" in entry:
        address, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif entry.count(":") == 1:
        address, _, port = entry.partition(":")
    else:
        address, port = entry, ""
    return address, int(port) if port.isascii() and port.isdigit() else 0


class HostMiddleware:
    """Believes the forwarded headers of trusted proxies, then refuses a request whose host is
    not the site's own (400: the site's JSON error under ``json_paths``, by default the paths
    whose errors are answered in JSON; else one line of text)."""

    def __init__(
        self, app: ASGIApp, *, settings: Settings, json_paths: tuple[str, ...] = JSON_PATHS
    ) -> None:
        self.app = app
        self.hosts = allowed_hosts(settings)
        self.proxies = settings.trusted_proxies
        self.json_paths = json_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.proxies and self._trusts(scope.get("client")):
            self._believe_proxy(scope)
        hosts = [value for name, value in scope["headers"] if name == b"host"]
        # No Host at all (HTTP/1.0) leaves URLs to the address the server listens on.
        if len(hosts) > 1 or (hosts and _host_of(hosts[0].decode("latin-1")) not in self.hosts):
            await self._refuse(scope, send)
            return
        await self.app(scope, receive, send)

    def _trusted_address(self, address: str) -> bool:
        ip = _ip(address)
        if ip is None:
            return False
        # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d.
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return any(
            candidate in net
            for candidate in (ip, mapped)
            if candidate is not None
            for net in self.proxies
            if candidate.version == net.version
        )

    def _trusts(self, client: tuple[str, int] | None) -> bool:
        return client is not None and self._trusted_address(client[0])

    def _believe_proxy(self, scope: Scope) -> None:
        # Changed in place, as uvicorn's own proxy handling does, so that its access log shows
        # the client too.
        chain: list[str] = []
        proto = host = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                chain += value.decode("latin-1").split(",")
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1")
            elif name == b"x-forwarded-host":
                host = value.decode("latin-1")
        # Proxies add to the end of these lists and a client may start them: only the last
        # proto and host (the nearest proxy's) count, and the client is the last address no
        # trusted proxy added.
        if proto is not None:
            scheme = proto.split(",")[-1].strip().lower()
            if scheme in ("http", "https"):
                scope["scheme"] = scheme
        if host is not None:
            others = [(k, v) for k, v in scope["headers"] if k != b"host"]
            scope["headers"] = [*others, (b"host", host.split(",")[-1].strip().encode("latin-1"))]
        entries = [entry.strip() for entry in chain if entry.strip()]
        for index in reversed(range(len(entries))):
            address, port = _address(entries[index])
            # Every address trusted: the client is a proxy of ours itself.
            if index == 0 or not self._trusted_address(address):
                scope["client"] = (address, port)
                scope.setdefault("state", {})[PROXIED] = True
                break

    async def _refuse(self, scope: Scope, send: Send) -> None:
        if scope["path"].startswith(self.json_paths):
            body = error_body(400, NOT_OURS)
            content_type = b"application/json"
        else:
            body, content_type = NOT_OURS.encode(), b"text/plain; charset=utf-8"
        headers = [
            (b"content-type", content_type),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"x-content-type-options", b"nosniff"),
        ]
        await send({"type": "http.response.start", "status": 400, "headers": headers})
        await send({"type": "http.response.body", "body": body})
