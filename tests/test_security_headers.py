"""The headers every answer carries: nosniff everywhere, a Content-Security-Policy on pages.

Whether browsers then run the pages within that policy is tests/test_browser.py's business:
every page it opens fails its test on a violation.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from cite_live.security_headers import media_sources, page_policy, parse_policy
from cite_live.services import Services, open_services
from cite_live.storage import LocalStore, S3Store
from cite_live.web import early_press
from cite_live.web.app import create_app
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
from tests.test_access_matrix import MATRIX, app_routes, build_world, client_for
from tests.test_api import publish_fake

# What every page's policy must say, exactly.
REQUIRED = {
    "default-src": "'self'",
    # The site's files, and the one inline script of every page by its hash (early_press).
    "script-src": f"'self' {early_press.CSP_SOURCE}",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
}


def policy_problem(response: Any) -> str | None:
    """Why ``response`` falls short of what every answer must carry, or None."""
    if response.headers.get("x-content-type-options") != "nosniff":
        return "no X-Content-Type-Options: nosniff"
    if not response.headers.get("content-type", "").startswith("text/html"):
        return None
    policy = parse_policy(response.headers.get("content-security-policy", ""))
    for name, sources in REQUIRED.items():
        if policy.get(name) != sources:
            return f"a page whose {name} is {policy.get(name)!r}"
    if not policy.get("frame-ancestors"):
        return "a page without frame-ancestors"
    return None


# --- the reproduction ----------------------------------------------------------------------------


def test_a_page_tells_browsers_not_to_sniff(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers.get("x-content-type-options") == "nosniff"


def test_a_page_restricts_scripts_to_the_site(client: TestClient) -> None:
    response = client.get("/")
    policy = parse_policy(response.headers.get("content-security-policy", ""))
    for name, sources in REQUIRED.items():
        assert policy.get(name) == sources, f"{name}: {policy.get(name)!r}"
    assert policy.get("frame-ancestors") == "'none'"
    assert response.headers["x-frame-options"] == "DENY"


# --- every route ---------------------------------------------------------------------------------


def test_every_answer_of_every_route_carries_the_headers(services: Services) -> None:
    """Each request of the access matrix (which covers every route of the app, a test says so),
    made by an anonymous visitor, an artist and an admin in turn against one world: successes,
    redirects, the auth and CSRF refusals, 403s, 404s, tus and media. (Another artist's answers
    are of the same kinds.) The statuses are the matrix's business, not this test's."""
    app = create_app(services.settings, services)
    assert {path for kind, path in app_routes(app) if kind == "MOUNT"} == {"/static"}
    world = build_world(services, app)
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    for role in ("anonymous", "owner", "admin"):
        with client_for(app, role) as (client, session_headers):
            for entry in MATRIX:
                request = entry.request(world, services)
                headers = {**session_headers, **request.pop("headers", {})}
                response = client.request(
                    entry.method, entry.url(world, services), headers=headers, **request
                )
                seen.add((entry.method, entry.route))
                if problem := policy_problem(response):
                    label = f"{role}: {entry.method} {entry.route} ({entry.what})"
                    problems.append(f"{label} → {response.status_code}: {problem}")
    assert seen >= app_routes(app) - {("MOUNT", "/static")}
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "path",
    [
        "/static/css/site.css",
        "/static/js/player.js",
        "/static/vendor/hls.js/hls.min.mjs",
        "/static/nothing-here.js",
    ],
)
def test_static_files_are_never_sniffed(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("OPTIONS", "/", 405),
        ("HEAD", "/artists", 200),
        ("GET", "/productions/nothing-here", 404),
        ("GET", "/api/v1/productions/nothing-here", 404),
        ("POST", "/login", 403),  # no CSRF token: refused before any handler
        ("GET", "/studio", 303),  # the way to the login page
        ("GET", "/api/v1/me/productions", 401),
    ],
)
def test_refusals_and_errors_carry_the_headers(
    client: TestClient, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, follow_redirects=False)
    assert response.status_code == status
    assert policy_problem(response) is None


def test_an_unhandled_error_carries_the_headers(services: Services) -> None:
    """Starlette answers these from outside every middleware: the handler adds the headers."""

    def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    app = create_app(services.settings, services)
    app.add_route("/boom", boom)
    app.add_route("/api/v1/boom", boom)
    with TestClient(app, raise_server_exceptions=False) as client:
        page = client.get("/boom")
        api = client.get("/api/v1/boom")
    assert page.status_code == api.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert policy_problem(page) is None
    assert parse_policy(page.headers["content-security-policy"])["frame-ancestors"] == "'none'"
    assert policy_problem(api) is None and api.headers["x-frame-options"] == "DENY"


def test_pages_served_from_the_cache_carry_the_headers(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_PAGE_CACHE_SECONDS="60"
    )
    services = open_services(settings)
    try:
        with TestClient(create_app(settings, services)) as client:
            first, again = client.get("/"), client.get("/")
        assert (first.headers["x-cache"], again.headers["x-cache"]) == ("miss", "hit")
        assert policy_problem(again) is None
        # One header each: the cache keeps the page without them; they are added as it leaves.
        assert len(again.headers.get_list("content-security-policy")) == 1
        assert len(again.headers.get_list("x-content-type-options")) == 1
        assert first.headers["content-security-policy"] == again.headers["content-security-policy"]
    finally:
        services.close()


def test_the_embed_may_be_framed_within_the_same_policy(
    client: TestClient, services: Services
) -> None:
    production = publish_fake(services, "Concert encadré")
    response = client.get(f"/embed/{production}")
    assert policy_problem(response) is None
    assert parse_policy(response.headers["content-security-policy"])["frame-ancestors"] == "*"
    assert len(response.headers.get_list("content-security-policy")) == 1
    assert "x-frame-options" not in response.headers


@pytest.mark.parametrize("page", ["production", "embed"])
def test_a_page_holds_one_inline_script_the_policy_names_by_its_hash(
    client: TestClient, services: Services, page: str
) -> None:
    """No nonce, one hash: the script that keeps an early press on a play button, whose
    SHA-256 (of the text between its tags, as browsers compute it) is in the policy. Data
    blocks are not scripts."""
    production_id = publish_fake(services, "Concert sans script")
    path = "/productions/concert-sans-script" if page == "production" else f"/embed/{production_id}"
    response = client.get(path)
    html = response.text
    assert "data-player-config" in html
    inline = []
    for opening in html.split("<script")[1:]:
        tag, rest = opening.split(">", 1)
        if 'type="application/json"' in tag or 'type="application/ld+json"' in tag:
            continue
        if " src=" in tag:
            continue
        inline.append(rest.split("</script>", 1)[0])
    assert inline == [early_press.SCRIPT]
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    policy = parse_policy(response.headers["content-security-policy"])
    assert policy["script-src"].split() == ["'self'", f"'sha256-{digest}'"]


# --- media from S3 -------------------------------------------------------------------------------


def s3_store(**options: Any) -> S3Store:
    """An S3 store that is never reached: only the addresses it would hand out matter here."""
    return S3Store("concerts", region="eu-west-3", **options)


def test_the_local_store_needs_no_other_source(tmp_path: Path) -> None:
    assert media_sources(LocalStore(tmp_path)) == []


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            {"endpoint_url": "http://127.0.0.1:8333"},
            {"http://127.0.0.1:8333/concerts/"},
        ),
        (
            {"endpoint_url": "https://s3.example.net", "prefix": "site-a"},
            {"https://s3.example.net/concerts/site-a/"},
        ),
        (
            {"endpoint_url": "https://s3.example.net", "addressing_style": "virtual"},
            {"https://concerts.s3.example.net/", "https://s3.example.net/concerts/"},
        ),
        (
            {"addressing_style": "auto"},
            {
                "https://s3.eu-west-3.amazonaws.com/concerts/",
                "https://concerts.s3.eu-west-3.amazonaws.com/",
            },
        ),
        (
            {
                "endpoint_url": "https://s3.example.net",
                "public_base_url": "https://cdn.example.org",
            },
            {"https://cdn.example.org/", "https://s3.example.net/concerts/"},
        ),
    ],
)
def test_media_sources_are_where_the_store_sends_players(
    options: dict[str, str], expected: set[str]
) -> None:
    store = s3_store(**options)
    sources = set(media_sources(store))
    assert sources == expected
    # Every address the store hands out is within one of them (a CSP path source ending in /
    # matches what starts with it).
    public = store.public_url("productions/p1/v1/master.m3u8", "http://site")
    assert any(public.startswith(source) for source in sources), public


def test_pages_of_a_site_on_s3_may_fetch_media_from_it(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_STORAGE_BACKEND="s3",
        CITE_LIVE_S3_BUCKET="concerts",
        CITE_LIVE_S3_ENDPOINT_URL="http://127.0.0.1:9",
        CITE_LIVE_S3_PUBLIC_BASE_URL="https://cdn.example.org/media",
    )
    services = open_services(settings)
    try:
        # No lifespan: nothing reaches the (absent) S3 server; pages only name its addresses.
        client = TestClient(create_app(settings, services))
        policy = parse_policy(client.get("/").headers["content-security-policy"])
    finally:
        services.close()
    for name in ("img-src", "media-src", "connect-src"):
        sources = policy[name].split()
        assert "https://cdn.example.org/media/" in sources, name
        assert "http://127.0.0.1:9/concerts/" in sources, name
    assert "blob:" in policy["media-src"].split()
    assert policy["script-src"] == REQUIRED["script-src"]


def test_the_policy_without_a_store_names_only_the_site() -> None:
    policy = page_policy()
    assert policy["connect-src"] == "'self'"
    assert policy["media-src"] == "'self' blob:"
