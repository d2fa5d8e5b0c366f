"""Link previews and search engines: Open Graph, Twitter card, JSON-LD and oEmbed discovery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import extruct
import pytest
from starlette.testclient import TestClient

from cite_live.catalogue import get_production
from cite_live.metadata import PageMeta, iso_duration, page_metadata, script_json
from cite_live.services import Services
from cite_live.web.app import create_app
from cite_live.web.templating import make_templates
from tests.media import HOSTILE_ARTIST, HOSTILE_TITLE
from tests.test_api import publish_fake

SITE = "http://testserver"
CITE = ("Cité de la Musique", "cite-de-la-musique", "Romans-sur-Isère")
PAGE = '{% from "_meta.html" import head_meta %}<!doctype html><html><head>{{ head_meta(meta) }}'
PAGE += "</head><body><p>after</p></body></html>"


class Head(HTMLParser):
    """The elements of a page as a browser's parser splits them, script text included."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data

    def meta(self, attribute: str) -> dict[str, list[str | None]]:
        found: dict[str, list[str | None]] = {}
        for tag, attrs in self.elements:
            if tag == "meta" and attribute in attrs:
                found.setdefault(str(attrs[attribute]), []).append(attrs.get("content"))
        return found

    def json_ld(self) -> Any:
        assert len(self.scripts) == 1
        return json.loads(self.scripts[0])


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url=SITE) as c:
        yield c


def metadata(services: Services, production_id: str, lang: str = "fr") -> PageMeta:
    with services.sessions() as session:
        production = get_production(session, production_id)
        assert production is not None
        return page_metadata(production, services.store, SITE, lang)


def render(services: Services, meta: PageMeta) -> Head:
    template = make_templates(services.settings).env.from_string(PAGE)
    return Head(template.render(meta=meta))


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (205, "PT3M25S"),
        (205.4, "PT3M25S"),
        (3723, "PT1H2M3S"),
        (3600, "PT1H"),
        (7260, "PT2H1M"),
        (59.6, "PT1M"),
        (0, "PT0S"),
        (None, None),
        (float("nan"), None),
    ],
)
def test_iso_durations(seconds: float | None, expected: str | None) -> None:
    assert iso_duration(seconds) == expected


def test_audio_page_is_a_music_song_with_a_player_card(services: Services) -> None:
    production_id = publish_fake(
        services,
        "Nuit Électro",
        artists=["Noé Chabert"],
        venue=CITE,
        picture=(480, 480),
        download=True,
        duration=205.2,
        description="Une nuit entière de synthétiseurs.",
    )
    head = render(services, metadata(services, production_id))
    og, twitter = head.meta("property"), head.meta("name")
    assert og["og:type"] == ["music.song"]
    assert og["og:title"] == ["Nuit Électro"]
    assert og["og:description"] == ["Une nuit entière de synthétiseurs."]
    assert og["og:url"] == [f"{SITE}/productions/nuit-electro"]
    assert og["og:image"] == [f"{SITE}/media/productions/{production_id}/j1/cover.jpg"]
    assert (og["og:image:width"], og["og:image:height"]) == (["480"], ["480"])
    assert og["og:video"] == [f"{SITE}/embed/{production_id}"]
    assert og["og:video:type"] == ["text/html"]
    assert og["og:audio"] == [f"{SITE}/media/productions/{production_id}/j1/download.m4a"]
    assert og["music:duration"] == ["205"]
    assert twitter["twitter:card"] == ["player"]
    assert twitter["twitter:player"] == [f"{SITE}/embed/{production_id}"]
    assert (twitter["twitter:player:width"], twitter["twitter:player:height"]) == (
        ["640"],
        ["166"],
    )
    assert twitter["twitter:image"] == og["og:image"]

    ld = head.json_ld()
    assert ld["@context"] == "https://schema.org" and ld["@type"] == "MusicRecording"
    assert ld["name"] == "Nuit Électro" and ld["duration"] == "PT3M25S"
    assert ld["byArtist"] == {
        "@type": "MusicGroup",
        "name": "Noé Chabert",
        "url": f"{SITE}/artists/noe-chabert",
    }
    assert ld["locationCreated"]["@type"] == "Place"
    assert ld["locationCreated"]["name"] == "Cité de la Musique"
    assert ld["locationCreated"]["address"]["addressLocality"] == "Romans-sur-Isère"
    assert ld["audio"]["contentUrl"] == og["og:audio"][0]
    assert ld["license"] == "https://creativecommons.org/licenses/by/4.0/"


def test_video_page_is_a_video_object(services: Services) -> None:
    production_id = publish_fake(
        services,
        "Clip",
        kind="video",
        artists=["Zoé Lacroix-Muñoz", "Élodie Fauré"],
        venue=CITE,
        picture=(1280, 720),
        duration=3723.0,
    )
    head = render(services, metadata(services, production_id))
    og, twitter = head.meta("property"), head.meta("name")
    assert og["og:type"] == ["video.other"]
    assert (og["og:video:width"], og["og:video:height"]) == (["640"], ["360"])
    assert "og:audio" not in og
    assert (twitter["twitter:player:width"], twitter["twitter:player:height"]) == (
        ["640"],
        ["360"],
    )
    ld = head.json_ld()
    assert ld["@type"] == "VideoObject"
    assert ld["duration"] == "PT1H2M3S"
    assert ld["embedUrl"] == f"{SITE}/embed/{production_id}"
    assert ld["contentUrl"] == f"{SITE}/media/productions/{production_id}/j1/master.m3u8"
    assert ld["thumbnailUrl"] == f"{SITE}/media/productions/{production_id}/j1/poster.jpg"
    assert ld["uploadDate"].endswith("+00:00")
    assert [artist["name"] for artist in ld["creator"]] == ["Zoé Lacroix-Muñoz", "Élodie Fauré"]
    assert ld["locationCreated"]["name"] == "Cité de la Musique"
    # Without a description, previews still get a sentence: who and where.
    assert ld["description"] == "Clip — Zoé Lacroix-Muñoz, Élodie Fauré — Cité de la Musique"


def test_english_visitors_get_the_english_title_or_the_french_one(services: Services) -> None:
    both = publish_fake(services, "Nuit", title_en="Night", description="Une nuit.")
    french_only = publish_fake(services, "Matin")
    assert metadata(services, both, "en").title == "Night"
    assert metadata(services, both, "fr").title == "Nuit"
    assert metadata(services, french_only, "en").title == "Matin"
    assert ("og:locale", "en_GB") in metadata(services, both, "en").open_graph


def test_hostile_text_cannot_leave_its_attribute_or_script(services: Services) -> None:
    title = HOSTILE_TITLE + "</script><!--<script>\u2028\u2029]]>' \" &amp;"
    production_id = publish_fake(
        services, title, artists=[HOSTILE_ARTIST], description=HOSTILE_ARTIST
    )
    meta = metadata(services, production_id)
    text = make_templates(services.settings).env.from_string(PAGE).render(meta=meta)
    head = Head(text)
    # Only the elements the macro writes: nothing was smuggled in, the body is still there.
    assert {tag for tag, _ in head.elements} == {
        "html",
        "head",
        "meta",
        "link",
        "script",
        "body",
        "p",
    }
    assert text.count("<script") == 1 and text.endswith("<p>after</p></body></html>")
    assert head.meta("property")["og:title"] == [title]
    assert head.meta("name")["twitter:title"] == [title]
    ld = head.json_ld()
    assert ld["name"] == title
    assert ld["byArtist"]["name"] == HOSTILE_ARTIST.strip()
    script = head.scripts[0]
    for unsafe in ("<", ">", "&", "\u2028", "\u2029"):
        assert unsafe not in script


def test_script_json_escapes_what_could_end_a_script() -> None:
    value = {"a": "</script><!-- & \u2028", "b": ["ok", 1, None]}
    text = str(script_json(value))
    assert "</" not in text and "<!--" not in text and "&" not in text
    assert json.loads(text) == value


def test_discovery_link_leads_to_the_oembed_of_the_page(
    client: TestClient, services: Services
) -> None:
    production_id = publish_fake(services, "Découverte & co", picture=(480, 480))
    head = render(services, metadata(services, production_id))
    links = [attrs for tag, attrs in head.elements if tag == "link"]
    discovery = [a for a in links if a.get("type") == "application/json+oembed"]
    assert len(discovery) == 1 and discovery[0]["rel"] == "alternate"
    href = str(discovery[0]["href"])
    assert href.startswith(f"{SITE}/oembed?") and "format=json" in href
    response = client.get(href)
    assert response.status_code == 200
    assert response.json()["title"] == "Découverte & co"
    canonical = [a for a in links if a.get("rel") == "canonical"]
    assert canonical == [{"rel": "canonical", "href": f"{SITE}/productions/decouverte-co"}]


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_extruct_reads_the_production_page_as_search_engines_do(
    services: Services, client: TestClient, kind: str
) -> None:
    """extruct (Scrapinghub's extractor of structured data, as crawlers use it) on the page
    itself: one JSON-LD object of the right type, and Open Graph, with nothing it cannot read."""
    publish_fake(
        services,
        "Lecture par extruct",
        kind=kind,
        artists=["Noé Chabert"],
        venue=CITE,
        picture=(480, 480) if kind == "audio" else (1280, 720),
        duration=95.0,
    )
    html = client.get("/productions/lecture-par-extruct").text
    data = extruct.extract(
        html, base_url=f"{SITE}/productions/lecture-par-extruct", syntaxes=["json-ld", "opengraph"]
    )
    (ld,) = data["json-ld"]
    assert ld["@type"] == ("MusicRecording" if kind == "audio" else "VideoObject")
    assert ld["name"] == "Lecture par extruct"
    assert ld["duration"] == "PT1M35S"
    (og,) = data["opengraph"]
    properties = dict(og["properties"])
    assert properties["og:title"] == "Lecture par extruct"
    assert properties["og:type"] == ("music.song" if kind == "audio" else "video.other")
