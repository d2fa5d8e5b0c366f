"""A partner's web site for the browser tests: a server of its own on 127.0.0.1 (another port,
so another origin than the site's), serving the pages a test publishes on it."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TYPES = {".js": "text/javascript", ".html": "text/html"}


class PartnerSite:
    """Pages at addresses of their own, published by the test, until ``close()``."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        pages: dict[str, bytes] = dict(files or {})
        self.pages = pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                path = self.path.split("?")[0]
                body = pages.get(path)
                self.send_response(200 if body is not None else 404)
                kind = next((t for end, t in TYPES.items() if path.endswith(end)), "text/html")
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def publish(self, html: str) -> str:
        """The address of a new page holding ``html``, as it is."""
        path = f"/page-{len(self.pages)}.html"
        self.pages[path] = html.encode()
        return self.origin + path

    def page(self, content: str, title: str = "Festival partenaire") -> str:
        """The address of a new page holding ``content`` (HTML) under a heading, in a plain
        column, at the width of a phone or a desktop."""
        return self.publish(
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title}</title></head>"
            f"<body style='margin:20px;font-family:sans-serif'><h1>{title}</h1>"
            f"{content}</body></html>"
        )

    def framing(self, src: str, height: int = 360, width: int = 640) -> str:
        """The address of a new page framing ``src`` in an iframe of that size."""
        return self.page(
            f"<iframe src='{src}' width='{width}' height='{height}' "
            "style='border:0;max-width:100%' allow='autoplay; fullscreen'></iframe>"
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def partner_sites(count: int) -> Iterator[list[PartnerSite]]:
    """``count`` partner sites, each on an origin of its own, closed on the way out."""
    sites = [PartnerSite() for _ in range(count)]
    try:
        yield sites
    finally:
        for site in sites:
            site.close()
