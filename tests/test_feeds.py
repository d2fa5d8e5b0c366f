"""Atom feeds of the site and of each artist, and the podcast of audio sessions, parsed back."""

from __future__ import annotations

import html
import io
import json
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import podcastparser
import pytest
from starlette.testclient import TestClient

from cite_live.catalogue import get_production, retitle
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.metadata import image_size, stored_size
from cite_live.services import Services, open_services
from cite_live.web.app import create_app
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
from tests.media import ARTISTS, HOSTILE_TITLE, TITLE
from tests.test_api import DOWNLOAD_BYTES, publish_fake

SITE = "http://testserver"
ATOM = "{http://www.w3.org/2005/Atom}"
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
Media = Callable[[str], Path]


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url=SITE) as c:
        yield c


def atom(client: TestClient, path: str) -> ET.Element:
    response = client.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    return root


def rss(client: TestClient) -> ET.Element:
    response = client.get("/podcast.rss")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/rss+xml; charset=utf-8"
    # Podcast directories look for the usual prefix, not just the namespace.
    assert b'xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"' in response.content
    root = ET.fromstring(response.content)
    assert root.tag == "rss" and root.get("version") == "2.0"
    return root


def entry_titles(feed: ET.Element) -> list[str | None]:
    return [entry.findtext(f"{ATOM}title") for entry in feed.iter(f"{ATOM}entry")]


# --- on records ----------------------------------------------------------------------------------


def test_site_feed_lists_public_ready_productions_newest_first(
    client: TestClient, services: Services
) -> None:
    publish_fake(services, "Premier", tags=["Jazz", "Électro"], description="La première.")
    publish_fake(services, "Caché", visibility="unlisted")
    publish_fake(services, "Privé", visibility="private")
    publish_fake(services, "En cours", status="processing")
    latest = publish_fake(
        services, "Second", kind="video", artists=["Noé Chabert", ("Élodie Fauré", "director")]
    )
    feed = atom(client, "/feed.atom")
    assert entry_titles(feed) == ["Second", "Premier"]
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links == {"self": f"{SITE}/feed.atom", "alternate": f"{SITE}/"}
    assert feed.findtext(f"{ATOM}updated")
    second, first = feed.findall(f"{ATOM}entry")
    # site.url is not set: ids are made from the address outside requests (Settings.stable_url).
    assert second.findtext(f"{ATOM}id") == f"http://127.0.0.1:8000/api/v1/productions/{latest}"
    alternate = second.find(f"{ATOM}link")
    assert alternate is not None and alternate.get("href") == f"{SITE}/productions/second"
    authors = [a.findtext(f"{ATOM}name") for a in second.findall(f"{ATOM}author")]
    assert authors == ["Noé Chabert", "Élodie Fauré"]
    categories = [(c.get("term"), c.get("label")) for c in first.findall(f"{ATOM}category")]
    assert categories == [("jazz", "Jazz"), ("electro", "Électro")]
    assert first.findtext(f"{ATOM}summary") == "La première."
    parsed = feedparser.parse(client.get("/feed.atom").content)
    assert not parsed.bozo and parsed.version == "atom10"
    assert [e.title for e in parsed.entries] == ["Second", "Premier"]


def test_entry_id_survives_a_new_title(client: TestClient, services: Services) -> None:
    production_id = publish_fake(services, "Ancien titre")
    before = atom(client, "/feed.atom").find(f"{ATOM}entry")
    with services.sessions.begin() as session:
        production = get_production(session, production_id)
        assert production is not None
        retitle(production, "Nouveau titre")
    after = atom(client, "/feed.atom").find(f"{ATOM}entry")
    assert before is not None and after is not None
    assert after.findtext(f"{ATOM}title") == "Nouveau titre"
    assert after.findtext(f"{ATOM}id") == before.findtext(f"{ATOM}id")


def feed_ids(client: TestClient, path: str, host: str) -> list[str | None]:
    feed = ET.fromstring(client.get(path, headers={"Host": host}).content)
    return [feed.findtext(f"{ATOM}id")] + [
        e.findtext(f"{ATOM}id") for e in feed.iter(f"{ATOM}entry")
    ]


@pytest.mark.parametrize("site_url", ["", "https://live.example"])
def test_ids_are_the_same_whatever_address_the_feed_is_read_at(
    tmp_path: Path, site_url: str
) -> None:
    settings = make_settings(tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_URL=site_url)
    services = open_services(settings)
    try:
        production_id = publish_fake(services, "Premier", artists=["Noé Chabert"])
        with TestClient(create_app(settings, services)) as client:
            for path in ("/feed.atom", "/artists/noe-chabert/feed.atom"):
                ids = {host: feed_ids(client, path, host) for host in ("testserver", "localhost")}
                assert ids["testserver"] == ids["localhost"], path
                stable = site_url or "http://127.0.0.1:8000"
                assert ids["localhost"] == [
                    stable + path,
                    f"{stable}/api/v1/productions/{production_id}",
                ]
    finally:
        services.close()


def test_artist_feed_holds_only_their_productions(client: TestClient, services: Services) -> None:
    publish_fake(services, "Solo", artists=["Élodie Fauré"])
    publish_fake(services, "Duo", artists=["Noé Chabert", ("Élodie Fauré", "composer")])
    publish_fake(services, "Autre", artists=["Noé Chabert"])
    feed = atom(client, "/artists/elodie-faure/feed.atom")
    assert entry_titles(feed) == ["Duo", "Solo"]
    assert feed.findtext(f"{ATOM}title") == "Élodie Fauré — Cité Live Web"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links["self"] == f"{SITE}/artists/elodie-faure/feed.atom"
    assert links["alternate"] == f"{SITE}/artists/elodie-faure"
    assert client.get("/artists/nobody/feed.atom").status_code == 404


def test_podcast_encloses_the_m4a_of_audio_productions_only(
    client: TestClient, services: Services
) -> None:
    episode = publish_fake(
        services, "Épisode", download=True, picture=(1400, 1400), duration=3725.4
    )
    publish_fake(services, "Sans fichier")
    publish_fake(services, "Vidéo", kind="video", download=True)
    channel = rss(client).find("channel")
    assert channel is not None
    assert channel.findtext("language") == "fr"
    category = channel.find(f"{ITUNES}category")
    assert category is not None and category.get("text") == "Music"
    items = channel.findall("item")
    assert [item.findtext("title") for item in items] == ["Épisode"]
    item = items[0]
    enclosure = item.find("enclosure")
    assert enclosure is not None
    assert enclosure.get("url") == f"{SITE}/media/productions/{episode}/j1/download.m4a"
    assert enclosure.get("length") == str(DOWNLOAD_BYTES)
    assert enclosure.get("type") == "audio/mp4"
    assert item.findtext("guid") == episode
    assert item.findtext(f"{ITUNES}duration") == "3725"
    image = item.find(f"{ITUNES}image")
    assert image is not None and image.get("href", "").endswith(f"/{episode}/j1/cover.jpg")
    channel_image = channel.find(f"{ITUNES}image")
    assert channel_image is not None and channel_image.get("href") == image.get("href")
    assert item.findtext("pubDate", "").endswith("+0000")
    parsed = feedparser.parse(client.get("/podcast.rss").content)
    assert not parsed.bozo and parsed.version == "rss20"
    assert parsed.entries[0].enclosures[0]["length"] == str(DOWNLOAD_BYTES)


def test_hostile_and_unprintable_text_round_trips_as_text(
    client: TestClient, services: Services
) -> None:
    title = HOSTILE_TITLE + " ]]> &amp; \x0b\x00fin"
    publish_fake(services, title, artists=['<b>"Duo"</b> & co'], tags=["<i>tag</i>"], download=True)
    kept = HOSTILE_TITLE + " ]]> &amp; fin"
    for path in ("/feed.atom", "/artists/b-duo-b-co/feed.atom"):
        feed = atom(client, path)
        entry = feed.find(f"{ATOM}entry")
        assert entry is not None
        assert entry.findtext(f"{ATOM}title") == kept
        assert entry.findtext(f"{ATOM}author/{ATOM}name") == '<b>"Duo"</b> & co'
        category = entry.find(f"{ATOM}category")
        assert category is not None and category.get("label") == "<i>tag</i>"
    item = rss(client).find("channel/item")
    # Escaped as HTML too, as an RSS title holding a "<" must be (feeds.rss_title).
    assert item is not None and item.findtext("title") == html.escape(kept, quote=False)
    assert item.findtext(f"{ITUNES}title") == kept
    assert item.findtext(f"{ITUNES}author") == '<b>"Duo"</b> & co'


class _Shown(HTMLParser):
    """What a reader shows of an HTML fragment: the elements it makes, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: set[str] = set()
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.add(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def shown(value: str, as_html: bool) -> tuple[set[str], str]:
    """The elements and the visible text of ``value``, read as HTML or as plain text."""
    if not as_html:
        return set(), value
    parser = _Shown()
    parser.feed(value)
    parser.close()
    return parser.elements, parser.text


ARTIST_MARKUP = "<script>alert(1)</script> <b>gras</b> & co"
BOLD_TITLE = "<b>gras</b> live"


def test_an_artists_markup_reaches_podcast_apps_as_visible_text(
    client: TestClient, services: Services
) -> None:
    """The reproduction: ``<description>&lt;script&gt;…`` is markup to every podcast app."""
    publish_fake(
        services,
        ARTIST_MARKUP,
        description=f"{ARTIST_MARKUP}\n\nDeuxième <i>partie</i>.",
        artists=[ARTIST_MARKUP],
        tags=[ARTIST_MARKUP],
        download=True,
    )
    publish_fake(services, "Tom & Jerry", description="Rock & roll", download=True)
    # Without a <script>, feedparser takes this title for HTML.
    publish_fake(services, BOLD_TITLE, download=True)
    body = client.get("/podcast.rss").content

    parsed = feedparser.parse(body)
    assert not parsed.bozo
    entries = {entry.title_detail.value: entry for entry in parsed.entries}
    hostile = next(e for title, e in entries.items() if "script" in title)
    # feedparser takes a title or a description for HTML when it looks like some.
    for field in ("title", "summary"):
        detail = hostile[f"{field}_detail"]
        elements, text = shown(detail["value"], detail["type"] == "text/html")
        assert elements <= {"p"}, (field, detail)
        assert ARTIST_MARKUP in text, (field, text)
    elements, text = shown(hostile.summary, True)
    assert "Deuxième <i>partie</i>." in text
    bold = next(e for title, e in entries.items() if "live" in title).title_detail
    assert shown(bold["value"], bold["type"] == "text/html") == (set(), BOLD_TITLE)
    # What has no markup reads as it was written, whichever way it is taken.
    plain = entries["Tom & Jerry"]
    assert plain.title_detail.type == "text/plain" and plain.title == "Tom & Jerry"
    assert shown(plain.summary, True)[1] == "Rock & roll"

    podcast = podcastparser.parse(f"{SITE}/podcast.rss", io.BytesIO(body))
    episodes = {episode["guid"]: episode for episode in podcast["episodes"]}
    for episode in episodes.values():
        markup = episode.get("description_html") or ""
        assert shown(markup, True)[0] <= {"p"}, markup
    texts = [shown(e.get("description_html") or "", True)[1] for e in episodes.values()]
    assert any(ARTIST_MARKUP in text for text in texts), texts
    assert [e["title"] for e in episodes.values() if "Tom" in e["title"]] == ["Tom & Jerry"]


@pytest.mark.parametrize("path", ["/feed.atom", "/artists/b-duo-b-co/feed.atom"])
def test_an_artists_markup_is_text_in_atom(
    client: TestClient, services: Services, path: str
) -> None:
    publish_fake(
        services,
        ARTIST_MARKUP,
        description=ARTIST_MARKUP,
        artists=['<b>"Duo"</b> & co'],
        download=True,
    )
    entry = feedparser.parse(client.get(path).content).entries[0]
    # Atom says what its text is: type="text", shown as written, never parsed as HTML.
    for field in ("title", "summary"):
        detail = entry[f"{field}_detail"]
        assert detail["type"] == "text/plain" and detail["value"] == ARTIST_MARKUP, field


# --- on real ingested media ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ingested(
    media: Media, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Services, dict[str, str]]]:
    """Two short audio files transcoded for real: tagged single and hostile tags."""
    directory = tmp_path_factory.mktemp("feeds")
    opened = open_services(make_settings(directory / "data", sqlite_url(directory)))
    made: dict[str, str] = {}
    try:
        for name in ("mp3_id3v24_apic", "hostile_tags_mp3"):
            production_id, job_id = submit_file(opened, media(name))
            run_transcode(opened, job_id)
            made[name] = production_id
        yield opened, made
    finally:
        opened.close()


@pytest.fixture
def real_client(ingested: tuple[Services, dict[str, str]]) -> Iterator[TestClient]:
    services, _ = ingested
    with TestClient(create_app(services.settings, services), base_url=SITE) as c:
        yield c


def test_podcast_enclosure_is_the_ingested_m4a_with_its_true_length(
    real_client: TestClient, ingested: tuple[Services, dict[str, str]], tmp_path: Path
) -> None:
    _, made = ingested
    items = {item.findtext("guid"): item for item in rss(real_client).iter("item")}
    item = items[made["mp3_id3v24_apic"]]
    assert item.findtext("title") == TITLE
    assert item.findtext(f"{ITUNES}author") == ", ".join(ARTISTS)
    enclosure = item.find("enclosure")
    assert enclosure is not None
    response = real_client.get(enclosure.get("url", ""))
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/mp4"
    assert enclosure.get("length") == str(len(response.content))
    downloaded = tmp_path / "episode.m4a"
    downloaded.write_bytes(response.content)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", "-show_format", "-show_streams", downloaded],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    info = json.loads(probe.stdout)
    assert [s["codec_name"] for s in info["streams"]] == ["aac"]
    assert info["format"]["tags"]["title"] == TITLE
    duration = float(info["format"]["duration"])
    assert abs(int(item.findtext(f"{ITUNES}duration", "0")) - duration) <= 1
    image = item.find(f"{ITUNES}image")
    assert image is not None
    cover = real_client.get(image.get("href", ""))
    assert cover.status_code == 200 and cover.headers["content-type"] == "image/jpeg"


def test_hostile_tags_of_a_real_file_stay_text_in_every_feed(
    real_client: TestClient, ingested: tuple[Services, dict[str, str]]
) -> None:
    _, made = ingested
    items = {item.findtext("guid"): item for item in rss(real_client).iter("item")}
    hostile = items[made["hostile_tags_mp3"]]
    assert hostile.findtext("title") == html.escape(HOSTILE_TITLE, quote=False)
    assert hostile.findtext(f"{ITUNES}title") == HOSTILE_TITLE
    feed = atom(real_client, "/feed.atom")
    assert HOSTILE_TITLE in entry_titles(feed)
    parsed = feedparser.parse(real_client.get("/podcast.rss").content)
    assert not parsed.bozo and len(parsed.entries) == 2


@pytest.mark.s3
def test_enclosure_length_and_picture_size_come_from_s3(
    tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_STORAGE_BACKEND="s3",
        CITE_LIVE_S3_ENDPOINT_URL=s3_server.endpoint_url,
        CITE_LIVE_S3_BUCKET=s3_server.bucket,
        CITE_LIVE_S3_PREFIX="feeds-test",
    )
    services = open_services(settings)
    try:
        episode = publish_fake(services, "Sur S3", download=True, picture=(600, 600))
        with TestClient(create_app(settings, services), base_url=SITE) as client:
            enclosure = rss(client).find("channel/item/enclosure")
            assert enclosure is not None
            assert enclosure.get("length") == str(DOWNLOAD_BYTES)
            assert enclosure.get("url", "").startswith(s3_server.endpoint_url)
        prefix = f"productions/{episode}/j1/"
        assert image_size(services.store, prefix + "cover.jpg") == (600, 600)
        assert stored_size(services.store, prefix + "missing.m4a") is None
    finally:
        services.close()
