"""The site's address: the hosts it answers to, the proxies it believes, its absolute URLs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.testclient import TestClient
from starlette.types import Message, Scope

from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.site import HostMiddleware
from cite_live.web.app import create_app
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
from tests.test_api import publish_fake

MakeServices = Callable[..., Services]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[MakeServices]:
    """Services whose settings a test chooses: ``site(**env)``."""
    opened: list[Services] = []

    def make(**env: str) -> Services:
        services = open_services(make_settings(tmp_path / "data", sqlite_url(tmp_path), **env))
        opened.append(services)
        return services

    yield make
    for services in opened:
        services.close()


def client_of(services: Services, peer: str = "203.0.113.9", **options: str) -> TestClient:
    app = create_app(services.settings, services)
    return TestClient(app, client=(peer, 40000), raise_server_exceptions=False, **options)


def production_urls(client: TestClient, **headers: str) -> dict[str, str]:
    response = client.get("/api/v1/productions", headers=headers)
    assert response.status_code == 200, response.text
    item = response.json()["items"][0]
    return {name: item[name] for name in ("hls_url", "page_url", "embed_url")}


# --- hosts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "json"),
    [
        ("/", False),
        ("/productions/concert", False),
        ("/login", False),
        ("/static/css/site.css", False),
        ("/api/v1/productions", True),
        ("/media/productions/x/j1/master.m3u8", True),
        ("/oembed?url=http://attacker.example/productions/concert", True),
    ],
)
def test_a_host_the_site_does_not_answer_to_gets_400_in_one_sentence(
    client: TestClient, path: str, json: bool
) -> None:
    response = client.get(path, headers={"Host": "attacker.example"})
    assert response.status_code == 400
    assert "attacker.example" not in response.text
    assert response.headers["cache-control"] == "no-store"
    if json:
        body = response.json()
        assert set(body) == {"error", "status"} and body["status"] == 400
        sentence = body["error"]
    else:
        assert response.headers["content-type"].startswith("text/plain")
        sentence = response.text
    assert sentence.endswith(".") and "\n" not in sentence and "site.allowed_hosts" in sentence


@pytest.mark.parametrize(
    "host",
    [
        "testserver:80@attacker.example",
        "testserver@attacker.example",
        "attacker.example#testserver",
        "testserver:x",
        "testserver:80:80",
        "testserver/attacker.example",
        "[::1",
        "",
        "testserver.attacker.example",
        "xtestserver",
    ],
)
def test_a_host_that_only_looks_like_an_allowed_one_is_refused(
    client: TestClient, host: str
) -> None:
    assert client.get("/api/v1/productions", headers={"Host": host}).status_code == 400


@pytest.mark.parametrize(
    "host", ["testserver", "TestServer", "testserver:8000", "localhost", "127.0.0.1:80", "[::1]:81"]
)
def test_the_allowed_hosts_are_answered_with_or_without_a_port(
    client: TestClient, services: Services, host: str
) -> None:
    publish_fake(services, "Concert")
    urls = production_urls(client, Host=host)
    assert urls["page_url"] == f"http://{host}/productions/concert"


def test_by_default_only_loopback_names_and_the_bind_address_are_answered(tmp_path: Path) -> None:
    from cite_live.settings import load_settings
    from cite_live.site import allowed_hosts, bound_to

    settings = load_settings({"CITE_LIVE_DATA_DIR": str(tmp_path)})
    assert settings.site_url == ""
    assert allowed_hosts(settings) == {"localhost", "127.0.0.1", "::1"}
    assert allowed_hosts(bound_to(settings, "192.0.2.10")) == {
        "localhost",
        "127.0.0.1",
        "::1",
        "192.0.2.10",
    }
    # A wildcard is where the server listens, not an address a visitor asks for.
    assert allowed_hosts(bound_to(settings, "0.0.0.0")) == allowed_hosts(settings)
    assert allowed_hosts(bound_to(settings, "::")) == allowed_hosts(settings)


def test_the_host_of_site_url_is_always_answered(tmp_path: Path) -> None:
    from cite_live.settings import load_settings
    from cite_live.site import allowed_hosts

    settings = load_settings(
        {
            "CITE_LIVE_DATA_DIR": str(tmp_path),
            "CITE_LIVE_SITE_URL": "https://Live.Example:8443/",
            "CITE_LIVE_SITE_ALLOWED_HOSTS": "backend.internal",
        }
    )
    assert settings.site_url == "https://Live.Example:8443"
    assert allowed_hosts(settings) == {"live.example", "backend.internal"}


# --- site.url ------------------------------------------------------------------------------------


def test_with_site_url_set_every_absolute_url_comes_from_it(site: MakeServices) -> None:
    services = site(CITE_LIVE_SITE_URL="https://live.example")
    publish_fake(services, "Concert")
    publish_fake(services, "Second")
    with client_of(services) as client:
        for host in ("testserver", "localhost", "live.example"):
            urls = production_urls(client, Host=host)
            assert all(url.startswith("https://live.example/") for url in urls.values()), urls
        listing = client.get("/api/v1/productions?per_page=1", headers={"Host": "localhost"})
        assert listing.json()["next"] == "https://live.example/api/v1/productions?per_page=1&page=2"
        artist = client.get("/api/v1/artists/elodie-faure", headers={"Host": "localhost"}).json()
        assert artist["productions_url"].startswith("https://live.example/api/v1/productions?")
        page = client.get("/productions/concert", headers={"Host": "localhost"}).text
        assert '<link rel="canonical" href="https://live.example/productions/concert">' in page
        assert "localhost" not in page
        # Any other host is still refused.
        assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400


# --- proxies -------------------------------------------------------------------------------------

FORGED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "live.example"}


def test_forwarded_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored(
    site: MakeServices,
) -> None:
    services = site(CITE_LIVE_SITE_ALLOWED_HOSTS="testserver,live.example")
    publish_fake(services, "Concert")
    with client_of(services, peer="127.0.0.1") as client:
        assert production_urls(client, **FORGED)["page_url"] == (
            "http://testserver/productions/concert"
        )


def test_forwarded_headers_from_a_trusted_proxy_are_believed(site: MakeServices) -> None:
    services = site(
        CITE_LIVE_SITE_ALLOWED_HOSTS="testserver,live.example",
        CITE_LIVE_SITE_TRUSTED_PROXIES="10.0.0.0/8, 192.0.2.1",
    )
    publish_fake(services, "Concert")
    for peer in ("10.1.2.3", "192.0.2.1"):
        with client_of(services, peer=peer) as client:
            urls = production_urls(client, **FORGED)
            assert urls["page_url"] == "https://live.example/productions/concert"
            # The proxy's forwarded host is held to the same list as a Host header.
            refused = client.get("/", headers={"X-Forwarded-Host": "attacker.example"})
            assert refused.status_code == 400
    with client_of(services, peer="192.0.2.2") as client:
        assert production_urls(client, **FORGED)["page_url"].startswith("http://testserver/")


def run_middleware(
    scope_headers: list[tuple[bytes, bytes]], peer: str, proxies: str
) -> tuple[int, dict[str, object]]:
    """What an app behind HostMiddleware sees of a request from ``peer``."""
    seen: dict[str, object] = {}

    async def app(scope: Scope, receive: object, send: object) -> None:
        request = Request(scope)
        seen.update(client=scope["client"], scheme=scope["scheme"], url=str(request.base_url))
        await JSONResponse({})(scope, receive, send)  # type: ignore[arg-type]

    settings: Settings = make_settings(
        Path("/nonexistent"),
        "sqlite://",
        CITE_LIVE_SITE_TRUSTED_PROXIES=proxies,
        CITE_LIVE_SITE_ALLOWED_HOSTS="testserver,live.example",
    )
    middleware = HostMiddleware(app, settings=settings)  # type: ignore[arg-type]
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "root_path": "",
        "query_string": b"",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": (peer, 40000),
        "headers": [(b"host", b"testserver"), *scope_headers],
    }
    asyncio.run(middleware(scope, receive, send))  # type: ignore[arg-type]
    return sent[0]["status"], seen


def test_the_client_address_is_the_first_one_no_trusted_proxy_added() -> None:
    chain = [(b"x-forwarded-for", b"198.51.100.66, 198.51.100.7, 10.0.0.5")]
    status, seen = run_middleware(chain, "10.0.0.1", "10.0.0.0/8")
    # 198.51.100.66 is what the client itself wrote: only the proxies' additions are believed.
    assert (status, seen["client"]) == (200, ("198.51.100.7", 0))
    status, seen = run_middleware(chain, "198.51.100.200", "10.0.0.0/8")
    assert (status, seen["client"]) == (200, ("198.51.100.200", 40000))
    # Two headers are one list; an IPv6 client and a port are understood.
    split = [(b"x-forwarded-for", b"198.51.100.66"), (b"x-forwarded-for", b"[2001:db8::7]:4711")]
    status, seen = run_middleware(split, "10.0.0.1", "10.0.0.0/8")
    assert seen["client"] == ("2001:db8::7", 4711)


def test_only_the_last_forwarded_proto_and_host_count_and_only_sane_values() -> None:
    headers = [
        (b"x-forwarded-proto", b"http, https"),
        (b"x-forwarded-host", b"attacker.example, live.example"),
    ]
    status, seen = run_middleware(headers, "10.0.0.1", "10.0.0.0/8")
    assert (status, seen["scheme"], seen["url"]) == (200, "https", "https://live.example/")
    status, seen = run_middleware([(b"x-forwarded-proto", b"javascript")], "10.0.0.1", "10.0.0.0/8")
    assert (status, seen["scheme"]) == (200, "http")


def test_lifespan_and_requests_without_a_host_header_pass() -> None:
    settings = make_settings(Path("/nonexistent"), "sqlite://")
    seen: list[str] = []

    async def app(scope: Scope, receive: object, send: object) -> None:
        seen.append(scope["type"])
        if scope["type"] == "http":
            await JSONResponse({})(scope, receive, send)  # type: ignore[arg-type]

    middleware = HostMiddleware(app, settings=settings)  # type: ignore[arg-type]
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(middleware({"type": "lifespan"}, receive, send))  # type: ignore[arg-type]
    # HTTP/1.0 may leave Host out: URLs then name the address the server listens on.
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "query_string": b"",
        "scheme": "http",
        "server": ("127.0.0.1", 8000),
        "client": ("192.0.2.3", 1),
        "headers": [],
        "http_version": "1.0",
    }
    asyncio.run(middleware(scope, receive, send))  # type: ignore[arg-type]
    assert seen == ["lifespan", "http"] and sent[0]["status"] == 200
