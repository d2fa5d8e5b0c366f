"""oEmbed 1.0 for production pages: what partner sites get when they paste our links."""

from __future__ import annotations

from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from starlette.testclient import TestClient

from cite_live.models import Production
from cite_live.services import Services, open_services
from cite_live.web.app import create_app
from cite_live.web.oembed import player_size
from tests.app_fixtures import LiveServer, make_settings
from tests.dbs import sqlite_url
from tests.media import HOSTILE_ARTIST, HOSTILE_TITLE
from tests.test_api import publish_fake

SITE = "http://testserver"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url=SITE) as c:
        yield c


def oembed(client: TestClient, url: str, **params: str) -> httpx.Response:
    query = "&".join(f"{k}={quote(v)}" for k, v in {"url": url, **params}.items())
    return client.get(f"/oembed?{query}")


class Elements(HTMLParser):
    """Every start tag of a fragment with its attributes, as a browser's parser sees them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def only_iframe(html: str) -> dict[str, str | None]:
    elements = Elements(html).found
    assert [tag for tag, _ in elements] == ["iframe"], html
    return elements[0][1]


def test_video_page_gets_a_16_9_video_player(client: TestClient, services: Services) -> None:
    production_id = publish_fake(
        services, "Clip du soir", kind="video", artists=["Zoé Lacroix-Muñoz"], picture=(320, 180)
    )
    response = oembed(client, f"{SITE}/productions/clip-du-soir", format="json")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    body = response.json()
    assert body["version"] == "1.0" and body["type"] == "video"
    assert (body["width"], body["height"]) == (640, 360)
    assert body["title"] == "Clip du soir"
    assert body["provider_name"] == "Cité Live Web"
    assert body["provider_url"] == f"{SITE}/"
    assert body["author_name"] == "Zoé Lacroix-Muñoz"
    assert body["author_url"] == f"{SITE}/artists/zoe-lacroix-munoz"
    assert body["thumbnail_url"] == f"{SITE}/media/productions/{production_id}/j1/poster.jpg"
    assert (body["thumbnail_width"], body["thumbnail_height"]) == (320, 180)
    frame = only_iframe(body["html"])
    assert frame["src"] == f"{SITE}/embed/{production_id}"
    assert (frame["width"], frame["height"]) == ("640", "360")
    assert "allowfullscreen" in frame


def test_audio_page_gets_the_compact_rich_player(client: TestClient, services: Services) -> None:
    production_id = publish_fake(services, "Session piano", picture=(480, 480))
    body = oembed(client, f"{SITE}/productions/session-piano").json()
    assert body["type"] == "rich"
    assert (body["width"], body["height"]) == (640, 166)
    assert only_iframe(body["html"])["src"] == f"{SITE}/embed/{production_id}"
    assert body["thumbnail_url"].endswith("/cover.jpg")
    assert (body["thumbnail_width"], body["thumbnail_height"]) == (480, 480)


@pytest.mark.parametrize(
    ("kind", "maxwidth", "maxheight", "size"),
    [
        ("video", None, None, (640, 360)),
        ("video", 320, None, (320, 180)),
        ("video", None, 90, (160, 90)),
        ("video", 320, 90, (160, 90)),
        ("video", 1920, 1080, (640, 360)),
        ("audio", 300, None, (300, 166)),
        ("audio", None, 100, (640, 100)),
        ("audio", 2000, 2000, (640, 166)),
    ],
)
def test_player_size_fits_maxwidth_and_maxheight(
    kind: str, maxwidth: int | None, maxheight: int | None, size: tuple[int, int]
) -> None:
    assert player_size(kind, maxwidth, maxheight) == size


def test_maxwidth_shrinks_the_iframe_and_drops_a_thumbnail_too_big(
    client: TestClient, services: Services
) -> None:
    publish_fake(services, "Clip", kind="video", picture=(320, 180))
    body = oembed(client, f"{SITE}/productions/clip", maxwidth="300").json()
    assert (body["width"], body["height"]) == (300, 169)
    frame = only_iframe(body["html"])
    assert (frame["width"], frame["height"]) == ("300", "169")
    assert "thumbnail_url" not in body and "thumbnail_width" not in body
    fits = oembed(client, f"{SITE}/productions/clip", maxwidth="320", maxheight="200").json()
    assert (fits["thumbnail_width"], fits["thumbnail_height"]) == (320, 180)


def styles(frame: dict[str, str | None]) -> dict[str, str]:
    """The iframe's style attribute as property: value pairs."""
    pairs = (part.split(":", 1) for part in str(frame["style"]).split(";") if part)
    return {name.strip(): value.strip() for name, value in pairs}


@pytest.mark.parametrize(
    ("kind", "params", "cap", "shape"),
    [
        ("video", {}, "640px", {"aspect-ratio": "16/9", "height": "auto"}),
        ("video", {"maxwidth": "300"}, "300px", {"aspect-ratio": "16/9", "height": "auto"}),
        ("audio", {}, "640px", {"height": "166px"}),
        ("audio", {"maxwidth": "300", "maxheight": "120"}, "300px", {"height": "120px"}),
    ],
)
def test_the_iframe_fits_any_width_within_maxwidth(
    client: TestClient,
    services: Services,
    kind: str,
    params: dict[str, str],
    cap: str,
    shape: dict[str, str],
) -> None:
    """A fixed width="640" overflowed a 320 px page: the style stretches the frame across the
    partner's column, no wider than oEmbed's width, in its shape; the attributes stay."""
    publish_fake(services, "Clip", kind=kind)
    body = oembed(client, f"{SITE}/productions/clip", **params).json()
    assert isinstance(body["width"], int) and isinstance(body["height"], int)
    frame = only_iframe(body["html"])
    assert (frame["width"], frame["height"]) == (str(body["width"]), str(body["height"]))
    style = styles(frame)
    assert style["width"] == "100%" and style["max-width"] == cap
    assert {name: style.get(name) for name in shape} == shape
    assert frame["referrerpolicy"] == "strict-origin-when-cross-origin"


def test_page_address_with_query_or_trailing_slash_is_ours(
    client: TestClient, services: Services
) -> None:
    production_id = publish_fake(services, "Concert")
    for url in (
        f"{SITE}/productions/concert?utm_source=x",
        f"{SITE}/productions/concert/",
        "https://testserver/productions/concert",
    ):
        assert oembed(client, url).status_code == 200, url
    # A shared moment embeds at that moment.
    body = oembed(client, f"{SITE}/productions/concert?t=1m30s").json()
    assert only_iframe(body["html"])["src"] == f"{SITE}/embed/{production_id}?t=90"


def test_with_site_url_set_its_pages_are_ours_and_the_player_is_there(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_URL="https://live.example"
    )
    services = open_services(settings)
    try:
        production_id = publish_fake(services, "Concert")
        with TestClient(create_app(settings, services), base_url=SITE) as client:
            # Asked at another of the site's names, with the public address or that name.
            for url in ("https://live.example/productions/concert", f"{SITE}/productions/concert"):
                body = oembed(client, url).json()
                src = only_iframe(body["html"])["src"]
                assert src == f"https://live.example/embed/{production_id}", url
                assert body["provider_url"] == "https://live.example/"
    finally:
        services.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example/productions/concert",
        "http://testserver.evil.example/productions/concert",
        "http://user@evil.example/productions/concert",
        f"{SITE}/artists/elodie-faure",
        f"{SITE}/productions/concert/chapters.vtt",
        f"{SITE}/productions/unknown",
        f"{SITE}/productions/prive",
        f"{SITE}/productions/en-cours",
        f"{SITE}/api/v1/productions",
        "javascript:alert(1)",
        "not a url at all",
        f"{SITE}/productions/" + "x" * 3000,
    ],
)
def test_addresses_that_are_not_our_playable_pages_are_404_json(
    client: TestClient, services: Services, url: str
) -> None:
    publish_fake(services, "Concert")
    publish_fake(services, "Privé", visibility="private")
    publish_fake(services, "En cours", status="processing")
    response = oembed(client, url)
    assert response.status_code == 404
    assert response.json()["error"] == "This address is not a production page of this site."
    assert response.headers["access-control-allow-origin"] == "*"


def test_unlisted_production_can_be_embedded_by_its_address(
    client: TestClient, services: Services
) -> None:
    production_id = publish_fake(services, "Lien", visibility="unlisted")
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        address = production.slug
    response = oembed(client, f"{SITE}/productions/{address}")
    assert response.status_code == 200
    # The player it hands out opens by that address too, never by the id.
    assert only_iframe(response.json()["html"])["src"] == f"{SITE}/embed/{address}"
    assert oembed(client, f"{SITE}/productions/lien").status_code == 404


def test_xml_is_501_and_a_missing_url_is_400(client: TestClient, services: Services) -> None:
    publish_fake(services, "Concert")
    response = oembed(client, f"{SITE}/productions/concert", format="xml")
    assert response.status_code == 501
    assert response.json()["status"] == 501
    assert client.get("/oembed?format=json").status_code == 400
    assert oembed(client, f"{SITE}/productions/concert", maxwidth="-3").status_code == 400


def test_hostile_title_and_artist_stay_text(client: TestClient, services: Services) -> None:
    title = HOSTILE_TITLE + '" onload="alert(2)'
    publish_fake(services, title, artists=[HOSTILE_ARTIST])
    response = client.get("/api/v1/productions").json()["items"][0]
    body: dict[str, Any] = oembed(client, response["page_url"]).json()
    assert body["title"] == title
    assert body["author_name"] == HOSTILE_ARTIST.strip()
    frame = only_iframe(body["html"])
    assert frame["title"] == title
    assert "onload" not in frame


def test_a_partner_fetches_oembed_from_the_real_server(
    live_server: LiveServer, services: Services
) -> None:
    publish_fake(services, "En direct", kind="video")
    page = f"{live_server.url}/productions/en-direct"
    response = httpx.get(
        f"{live_server.url}/oembed",
        params={"url": page, "format": "json"},
        headers={"Origin": "https://festival.example"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"] == "application/json"
    assert only_iframe(response.json()["html"])["src"].startswith(f"{live_server.url}/embed/")


def test_the_title_is_in_the_catalogue_language_unless_the_consumer_asks(
    client: TestClient, services: Services
) -> None:
    # Only the JSON API turns to English for a client that names no language: a partner's
    # server asking for an embed names none, and gets the title the page shows by default.
    publish_fake(services, "Nuit électro", title_en="Electro night")
    url = f"{SITE}/productions/nuit-electro"
    assert oembed(client, url).json()["title"] == "Nuit électro"
    english = client.get("/oembed", params={"url": url}, headers={"Accept-Language": "en"})
    assert english.json()["title"] == "Electro night"
