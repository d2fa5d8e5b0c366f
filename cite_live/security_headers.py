"""The headers every answer carries: ``nosniff``, framing refused, and a Content-Security-Policy
on every page.

- ``X-Content-Type-Options: nosniff`` on everything (pages, API, feeds, static files, errors,
  the refusals of the auth and CSRF checks, tus): a browser never takes a JSON answer or an
  artist's file for a script or a page. ``/media`` answers say so themselves (cite_live.web.media),
  as they are served ahead of this middleware.
- Framing: only the embeddable player may be framed by other sites; every other answer says
  ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``, so that no site can lay the
  studio's or the admin's buttons under a visitor's click (clickjacking). A response that
  states its own ``frame-ancestors`` keeps it, and gets no X-Frame-Options: the embed page
  (its production's ``embed_policy``), and its card of what cannot play there, which the
  embed answers itself instead of raising to the site's error page, so that a partner's frame
  shows the card and never the browser's broken-frame icon (cite_live.web.embeds).
- Pages (``text/html``) get :func:`page_policy`: scripts only from the site's own files, and
  the one inline script every page has, by its hash.

No nonces and one hash: the templates hold no event-handler attribute and a single inline
script, the few lines that keep a press on a play button made before the site's scripts run
(cite_live.web.early_press), allowed by its SHA-256; the player's settings and the JSON-LD are
``<script type="application/json">`` data blocks, which browsers never run, so the policy does
not apply to them, and behaviour lives in ``web/static/js``. This also suits the page cache
(cite_live.pagecache): one rendering of a page is served to many visitors, and a per-request
nonce baked into it would be shared by all of them, worth nothing; a hash is the same for all.
The policy is the same for every page and added here, outside the cache.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cite_live.storage import ObjectStore
from cite_live.web import early_press

CSP = "Content-Security-Policy"
NOSNIFF = {"X-Content-Type-Options": "nosniff"}
Policy = dict[str, str]


def page_policy(media_sources: Iterable[str] = ()) -> Policy:
    """The policy of every page; ``media_sources`` are where the store's media is fetched from
    when it is not this site (the S3 endpoint, the bucket's host, the CDN)."""
    media = "".join(f" {source}" for source in sorted(set(media_sources)))
    return {
        "default-src": "'self'",
        "script-src": f"'self' {early_press.CSP_SOURCE}",
        # media-chrome and wavesurfer.js draw their controls in shadow roots from templates
        # holding <style> elements, some built from options (wavesurfer's height): they cannot
        # move to a stylesheet nor have stable hashes, so <style> elements are allowed. Style
        # cannot run code, and what CSS could fetch to leak a page is held to this site and the
        # media store by img-src, font-src (default) and connect-src. Style attributes, which
        # neither the templates nor the scripts write (the scripts use element.style, which no
        # policy restricts), stay refused where browsers know style-src-attr.
        "style-src": "'self' 'unsafe-inline'",
        "style-src-attr": "'none'",
        # data: is what the uploader's stylesheet (Uppy's) draws its icons with.
        "img-src": f"'self' data:{media}",
        # hls.js plays through Media Source Extensions: the element's source is a blob: URL.
        "media-src": f"'self' blob:{media}",
        # hls.js fetches playlists and segments, the player the waveform's peaks. (worker-src
        # falls back to script-src: the ES module build of hls.js starts no worker.)
        "connect-src": f"'self'{media}",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def media_sources(store: ObjectStore) -> list[str]:
    """Where players fetch the store's media from, as CSP sources: nothing for a store the site
    serves itself (``/media`` on this site), the store's own addresses otherwise
    (``ObjectStore.media_origins``)."""
    return store.media_origins()


def parse_policy(text: str) -> Policy:
    """A policy's directives by name; the first of a repeated name counts, as in browsers."""
    policy: Policy = {}
    for part in text.split(";"):
        name, _, sources = part.strip().partition(" ")
        if name:
            policy.setdefault(name.lower(), sources.strip())
    return policy


def write_policy(policy: Policy) -> str:
    return "; ".join(f"{name} {sources}".strip() for name, sources in policy.items())


# For the one answer made outside this middleware: the page of an unhandled error, which
# Starlette's ServerErrorMiddleware sends from outside the whole stack. It shows no media.
ERROR_HEADERS = {**NOSNIFF, CSP: write_policy(page_policy()), "X-Frame-Options": "DENY"}


class SecurityHeadersMiddleware:
    """Adds the headers above to every HTTP answer as it leaves (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._policy: Policy | None = None
        self._page_header: bytes | None = None

    def _page_policy(self, scope: Scope) -> Policy:
        # The store is opened with the app (its lifespan), after this middleware is made.
        if self._policy is None:
            services: Any = getattr(getattr(scope.get("app"), "state", None), "services", None)
            if services is None:
                return page_policy()
            self._policy = page_policy(media_sources(services.store))
        return self._policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self.secured_headers(scope, list(message["headers"]))
            await send(message)

        await self.app(scope, receive, secured)

    def secured_headers(
        self, scope: Scope, headers: list[tuple[bytes, bytes]]
    ) -> list[tuple[bytes, bytes]]:
        """``headers`` with the site's added, as :meth:`secure` adds them. Most answers state
        no policy of their own: theirs is one of two constant headers, appended to the raw list
        as it is (every page served from the cache comes through here)."""
        own_policy = content_type = None
        nosniff = frame_options = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-security-policy":
                own_policy = value
            elif name == b"content-type":
                content_type = value
            elif name == b"x-content-type-options":
                nosniff = True
            elif name == b"x-frame-options":
                frame_options = True
        if own_policy is not None:
            self.secure(scope, MutableHeaders(raw=headers))
            return headers
        if not nosniff:
            headers.append((b"x-content-type-options", b"nosniff"))
        if content_type is not None and content_type.startswith(b"text/html"):
            headers.append((b"content-security-policy", self._page_policy_header(scope)))
        else:
            headers.append((b"content-security-policy", b"frame-ancestors 'none'"))
        if not frame_options:
            headers.append((b"x-frame-options", b"DENY"))
        return headers

    def _page_policy_header(self, scope: Scope) -> bytes:
        if self._page_header is None:
            policy = write_policy(self._page_policy(scope)).encode("latin-1")
            if self._policy is None:
                return policy  # no services yet: not kept, the store's sources are to come
            self._page_header = policy
        return self._page_header

    def secure(self, scope: Scope, headers: MutableHeaders) -> None:
        if "x-content-type-options" not in headers:
            headers["X-Content-Type-Options"] = "nosniff"
        own = parse_policy(headers.get("content-security-policy", ""))
        if headers.get("content-type", "").startswith("text/html"):
            # What the response states (the embed's frame-ancestors) wins over the site's.
            policy = {**self._page_policy(scope), **own}
            headers[CSP] = write_policy(policy)
        elif "frame-ancestors" not in own:
            policy = {**own, "frame-ancestors": "'none'"}
            headers[CSP] = write_policy(policy)
        else:
            policy = own
        if policy.get("frame-ancestors") == "'none'" and "x-frame-options" not in headers:
            headers["X-Frame-Options"] = "DENY"
