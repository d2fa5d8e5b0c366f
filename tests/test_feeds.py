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
from urllib.parse import urlsplit

import feedparser
import httpx
import podcastparser
import pytest
from PIL import Image
from starlette.testclient import TestClient

from cite_live import podcast_art
from cite_live.catalogue import get_production, retitle
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.metadata import image_size, stored_size
from cite_live.models import Collection, CollectionItem, Production
from cite_live.services import Services, open_services
from cite_live.vocabulary import CREDIT_ROLES
from cite_live.web.app import create_app
from cite_live.web.feeds import PERSON_ROLES, podcast_guid
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url
from tests.media import ARTISTS, HOSTILE_TITLE, TITLE
from tests.test_api import DOWNLOAD_BYTES, jpeg, publish_fake

SITE = "http://testserver"
ATOM = "{http://www.w3.org/2005/Atom}"
ITUNES = "{http://www.itunes.com/dtds/podcast-1.0.dtd}"
PODCAST = "{https://podcastindex.org/namespace/1.0}"
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


def rss(client: TestClient, path: str = "/podcast.rss") -> ET.Element:
    response = client.get(path)
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
    # The show's artwork is its own, not its newest episode's (cite_live.podcast_art).
    channel_image = channel.find(f"{ITUNES}image")
    assert channel_image is not None and channel_image.get("href") == f"{SITE}/podcast.jpg"
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


def test_every_entry_has_text_of_its_own(client: TestClient, services: Services) -> None:
    """The W3C feed validator flags an Atom entry with neither summary nor content."""
    publish_fake(
        services,
        "Sans description",
        artists=["Noé Chabert", "Élodie Fauré"],
        venue=("La Cité", "la-cite", "Romans-sur-Isère"),
    )
    publish_fake(services, "Décrit", description="Un concert.")
    for path in ("/feed.atom", "/artists/elodie-faure/feed.atom"):
        entries = feedparser.parse(client.get(path).content).entries
        summaries = {entry.title: entry.summary for entry in entries}
        assert summaries == {
            "Sans description": "Sans description — Noé Chabert, Élodie Fauré — La Cité",
            "Décrit": "Un concert.",
        }, path


def test_collection_feed_ids_are_the_same_whatever_address_it_is_read_at(
    client: TestClient, services: Services
) -> None:
    production_id = publish_fake(services, "Premier")
    collection_id = make_collection(services, [production_id], kind="festival")
    path = "/collections/saison/feed.atom"
    ids = {host: feed_ids(client, path, host) for host in ("testserver", "localhost")}
    assert (
        ids["testserver"]
        == ids["localhost"]
        == [
            f"http://127.0.0.1:8000/api/v1/collections/{collection_id}",
            f"http://127.0.0.1:8000/api/v1/productions/{production_id}",
        ]
    )


# --- the podcasts as their directories read them -------------------------------------------------


def make_collection(
    services: Services,
    production_ids: list[str],
    *,
    kind: str = "podcast",
    state: str = "public",
    slug: str = "saison",
    cover: tuple[int, int] | None = None,
) -> str:
    """A collection of ``production_ids``, in that order; ``cover``: a JPEG of that size."""
    cover_key = f"collections/{slug}/covers/c.jpg" if cover else None
    if cover:
        services.store.put_bytes(f"collections/{slug}/covers/c.jpg", jpeg(*cover))
    with services.sessions.begin() as session:
        collection = Collection(
            title=f"Série {slug}", slug=slug, kind=kind, state=state, cover_key=cover_key
        )
        session.add(collection)
        session.flush()
        for position, production_id in enumerate(production_ids):
            session.add(
                CollectionItem(
                    collection_id=collection.id, production_id=production_id, position=position
                )
            )
        return collection.id


def test_podcast_guid_is_made_as_the_namespace_says() -> None:
    # The two examples of the Podcast Index namespace's docs/tags/guid.md.
    assert podcast_guid("https://mp3s.nashownotes.com/pc20rss.xml") == (
        "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    )
    assert podcast_guid("http://podnews.net/rss/") == "9b024349-ccf0-5f69-a609-6b82873eab3c"


def test_every_credit_role_is_a_role_of_the_podcast_taxonomy() -> None:
    assert set(PERSON_ROLES) == set(CREDIT_ROLES)


@pytest.fixture
def podcast_services(tmp_path: Path) -> Iterator[Services]:
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_SITE_URL="https://live.example",
        CITE_LIVE_SITE_ALLOWED_HOSTS="testserver,localhost,127.0.0.1",
        CITE_LIVE_SITE_CONTACT="Cité Live <contact@live.example>",
    )
    opened = open_services(settings)
    yield opened
    opened.close()


def test_podcasts_on_a_live_server_parse_clean_and_speak_the_podcast_index_namespace(
    podcast_services: Services,
) -> None:
    services = podcast_services
    episode = publish_fake(
        services,
        "Épisode",
        download=True,
        picture=(1400, 1400),
        artists=["Noé Chabert", ("Élodie Fauré", "composer"), ("Zoé Martin", "engineer")],
        chapters=[("Deuxième", 75.25), ("Ouverture", 0.0)],
    )
    plain = publish_fake(services, "Sans setlist", download=True, picture=(600, 600))
    hidden = publish_fake(services, "Caché", download=True, visibility="unlisted")
    make_collection(services, [plain, hidden, episode], cover=(2000, 2000))
    with serving(services) as url, httpx.Client(base_url=url) as http:
        for path in (
            "/feed.atom",
            "/artists/elodie-faure/feed.atom",
            "/collections/saison/feed.atom",
        ):
            atom_feed = feedparser.parse(http.get(path).content)
            assert not atom_feed.bozo and atom_feed.version == "atom10", path
            assert all(entry.summary for entry in atom_feed.entries), path
        podcasts = (
            "/podcast.rss",
            "/artists/elodie-faure/podcast.rss",
            "/collections/saison/podcast.rss",
        )
        for path in podcasts:
            body = http.get(path).content
            parsed = feedparser.parse(body)
            assert not parsed.bozo, (path, parsed.get("bozo_exception"))
            podcast = podcastparser.parse(url + path, io.BytesIO(body))
            titles = [e["title"] for e in podcast["episodes"]]
            assert sorted(titles) == ["Sans setlist", "Épisode"], path
            root = ET.fromstring(body)
            channel = root.find("channel")
            assert channel is not None
            # Stable: made of site.url, not of the address the feed was read at.
            assert channel.findtext(f"{PODCAST}guid") == podcast_guid("live.example" + path)
            locked = channel.find(f"{PODCAST}locked")
            assert locked is not None and locked.text == "yes"
            assert locked.get("owner") == "contact@live.example"
            assert channel.findtext(f"{ITUNES}owner/{ITUNES}email") == "contact@live.example"
            items = {item.findtext("guid"): item for item in channel.iter("item")}
            persons = [
                (p.text, p.get("group"), p.get("role"), p.get("href"))
                for p in items[episode].findall(f"{PODCAST}person")
            ]
            assert persons == [
                ("Noé Chabert", "audio post-production", "music contributor",
                 "https://live.example/artists/noe-chabert"),
                ("Élodie Fauré", "audio post-production", "composer",
                 "https://live.example/artists/elodie-faure"),
                ("Zoé Martin", "audio production", "audio engineer",
                 "https://live.example/artists/zoe-martin"),
            ]  # fmt: skip
            assert items[plain].find(f"{PODCAST}chapters") is None
            chapters = items[episode].find(f"{PODCAST}chapters")
            assert chapters is not None
            assert chapters.get("type") == "application/json+chapters"
            # Every address starts with site.url; the test server answers its path.
            chapters_url = urlsplit(chapters.get("url", ""))
            assert chapters_url.netloc == "live.example"
            answer = http.get(chapters_url.path)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json+chapters"
            document = answer.json()
            assert document["version"] == "1.2.0"
            assert document["chapters"] == [
                {"startTime": 0.0, "title": "Ouverture"},
                {"startTime": 75.25, "title": "Deuxième"},
            ]
        guids = {
            ET.fromstring(http.get(path).content).findtext(f"channel/{PODCAST}guid")
            for path in podcasts
        }
        series = ET.fromstring(http.get("/collections/saison/podcast.rss").content)
        assert http.get("/artists/nobody/podcast.rss").status_code == 404
    # Each podcast is one of its own for the directories.
    assert len(guids) == len(podcasts)
    assert series.findtext("channel/title") == "Série saison"
    # The series' cover fits Apple's rules: it is the series' artwork.
    series_art = series.find(f"channel/{ITUNES}image")
    assert series_art is not None
    assert series_art.get("href") == "https://live.example/media/collections/saison/covers/c.jpg"


def test_an_episode_shows_its_own_cover_only_where_apple_takes_it(
    client: TestClient, services: Services
) -> None:
    """Apple Podcasts' artwork requirements: square, 1400 to 3000 pixels a side, JPEG or PNG.
    A cover that does not fit is left out of the episode, which then shows the show's."""
    sizes = {"fits": (1400, 1400), "small": (600, 600), "wide": (1600, 1400)}
    made = {name: publish_fake(services, name, download=True, picture=size)
            for name, size in sizes.items()}  # fmt: skip
    items = {item.findtext("guid"): item for item in rss(client).iter("item")}
    image = items[made["fits"]].find(f"{ITUNES}image")
    assert image is not None and image.get("href", "").endswith("/j1/cover.jpg")
    assert items[made["small"]].find(f"{ITUNES}image") is None
    assert items[made["wide"]].find(f"{ITUNES}image") is None


def test_a_series_without_a_cover_that_fits_shows_the_site_s_artwork(
    client: TestClient, services: Services
) -> None:
    episode = publish_fake(services, "Épisode", download=True)
    make_collection(services, [episode], cover=(800, 800))
    channel = rss(client, "/collections/saison/podcast.rss").find("channel")
    assert channel is not None
    image = channel.find(f"{ITUNES}image")
    assert image is not None and image.get("href") == f"{SITE}/podcast.jpg"
    # Nobody to write to: the owner's address is left out, not made up.
    assert channel.find(f"{ITUNES}owner/{ITUNES}email") is None
    locked = channel.find(f"{PODCAST}locked")
    assert locked is not None and locked.get("owner") is None


def test_only_a_public_series_of_kind_podcast_has_a_podcast(
    client: TestClient, services: Services
) -> None:
    episode = publish_fake(services, "Épisode", download=True)
    make_collection(services, [episode], slug="brouillon", state="draft")
    make_collection(services, [episode], slug="festival", kind="festival")
    make_collection(services, [episode], slug="serie")
    assert client.get("/collections/brouillon/podcast.rss").status_code == 404
    assert client.get("/collections/festival/podcast.rss").status_code == 404
    assert client.get("/collections/nowhere/podcast.rss").status_code == 404
    assert client.get("/collections/serie/podcast.rss").status_code == 200


def test_a_series_lists_only_its_public_ready_audio_with_a_file(
    client: TestClient, services: Services
) -> None:
    shown = publish_fake(services, "Public", download=True)
    hidden = [
        publish_fake(services, "Privé", download=True, visibility="private"),
        publish_fake(services, "Non listé", download=True, visibility="unlisted"),
        publish_fake(services, "En cours", download=True, status="processing"),
        publish_fake(services, "Vidéo", download=True, kind="video"),
        publish_fake(services, "Sans fichier"),
    ]
    make_collection(services, [*hidden, shown])
    body = client.get("/collections/saison/podcast.rss").content
    titles = [item.findtext("title") for item in ET.fromstring(body).iter("item")]
    assert titles == ["Public"]
    for word in ("Privé", "Non listé", "En cours", "Vidéo", "Sans fichier"):
        assert word.encode() not in body


def test_chapters_are_given_for_listed_productions_only(
    client: TestClient, services: Services
) -> None:
    made = {
        name: publish_fake(services, f"Concert {name}", chapters=[("Secret", 1.0)], **options)
        for name, options in {
            "public": {},
            "private": {"visibility": "private"},
            "unlisted": {"visibility": "unlisted"},
            "processing": {"status": "processing"},
        }.items()
    }
    with services.sessions() as session:
        slugs = {name: session.get(Production, pid).slug for name, pid in made.items()}  # type: ignore[union-attr]
    assert client.get(f"/productions/{slugs['public']}/chapters.json").status_code == 200
    for name in ("private", "unlisted", "processing"):
        response = client.get(f"/productions/{slugs[name]}/chapters.json")
        assert response.status_code == 404, name
        assert "Secret" not in response.text


def test_the_generated_artwork_is_what_apple_takes(client: TestClient) -> None:
    response = client.get("/podcast.jpg")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert image.size == (3000, 3000)
    # Made once: the same bytes every time, on every process.
    assert client.get("/podcast.jpg").content == response.content


def test_the_configured_artwork_is_served_as_an_rgb_jpeg(tmp_path: Path) -> None:
    source = tmp_path / "art.png"
    Image.new("RGBA", (1500, 1500), (10, 200, 30, 0)).save(source)
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_PODCAST_ARTWORK=str(source)
    )
    services = open_services(settings)
    try:
        with TestClient(create_app(settings, services), base_url=SITE) as client:
            response = client.get("/podcast.jpg")
    finally:
        services.close()
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (1500, 1500))
        # Transparency is laid on white.
        assert image.getpixel((700, 700)) == pytest.approx((255, 255, 255), abs=3)
    assert podcast_art.fits((1500, 1500)) and not podcast_art.fits((1500, 1400))


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
    # The file's own cover is 480 pixels a side, too small for Apple (1400 at least): the
    # episode shows the show's artwork; the cover is served all the same (Atom's thumbnail).
    assert item.find(f"{ITUNES}image") is None
    entries = atom(real_client, "/feed.atom").iter(f"{ATOM}entry")
    entry = next(e for e in entries if e.findtext(f"{ATOM}title") == TITLE)
    thumbnail = entry.find("{http://search.yahoo.com/mrss/}thumbnail")
    assert thumbnail is not None
    cover = real_client.get(thumbnail.get("url", ""))
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
