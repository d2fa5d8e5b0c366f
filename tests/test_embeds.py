"""The embed page and what the player is told, in-process, on records made directly."""

from __future__ import annotations

import html as html_module
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from starlette.testclient import TestClient

from cite_live.catalogue import create_production
from cite_live.models import Chapter, Credit, MediaVersion, Production, utcnow
from cite_live.player import (
    PlayerOptions,
    embed_snippet,
    parse_colour,
    parse_flag,
    parse_time,
    player_data,
)
from cite_live.services import Services
from cite_live.web import early_press
from cite_live.web.app import create_app
from cite_live.web.templating import make_templates
from cite_live.web.urls import Urls
from tests.account_fixtures import login, make_user

HOSTILE = "</script><script>alert(1)</script>\u2028<!-- \"quoted\" & 'single'"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url="http://testserver") as c:
        yield c


def fake_production(
    services: Services,
    title: str = "Nuit Électro",
    *,
    kind: str = "video",
    visibility: str = "public",
    status: str = "ready",
    chapters: tuple[tuple[str, float], ...] = (),
    title_en: str | None = None,
) -> str:
    """A production with a published version whose keys point at nothing (no transcoding)."""
    with services.sessions.begin() as session:
        production = create_production(
            session, title=title, filename="x.mp4", artists=["Élodie Fauré"], kind=kind
        )
        prefix = f"productions/{production.id}/v1/"
        video = kind == "video"
        version = MediaVersion(
            production_id=production.id,
            name="v1",
            state="published",
            prefix=prefix,
            master_key=prefix + "master.m3u8",
            poster_key=prefix + "poster.jpg" if video else None,
            cover_key=None if video else prefix + "cover.jpg",
            waveform_key=None if video else prefix + "waveform.json",
            storyboard_vtt_key=prefix + "storyboard.vtt" if video else None,
            ladder=[],
        )
        session.add(version)
        session.flush()
        production.current_version_id = version.id
        production.status, production.duration, production.visibility = status, 125.0, visibility
        production.title_en = title_en
        production.published_at = utcnow()
        for name, start in chapters:
            production.chapters.append(Chapter(title=name, start=start))
        return production.id


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the text of <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser


def player_config(html: str) -> dict[str, object]:
    configs = [text for attrs, text in parse(html).scripts if "data-player-config" in attrs]
    assert len(configs) == 1
    loaded: dict[str, object] = json.loads(configs[0])
    return loaded


def tags_named(html: str, name: str) -> list[dict[str, str | None]]:
    return [attrs for tag, attrs in parse(html).tags if tag == name]


# --- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("90.5", 90.5),
        ("1m30s", 90.0),
        ("1M30S", 90.0),
        ("45s", 45.0),
        ("2m", 120.0),
        ("1h2m3s", 3723.0),
        ("1h", 3600.0),
        ("1:30", 90.0),
        ("1:02:03", 3723.0),
        (" 12 ", 12.0),
        ("0", 0.0),
    ],
)
def test_time_codes_in_seconds_or_units_become_seconds(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "abc",
        "-5",
        "1e3",
        "nan",
        "inf",
        "1m30x",
        "m",
        "1:2:3:4",
        "1:99",
        "1:75:00",
        "9" * 30,
        "604801",
        "\u0669\u0660",  # Arabic-Indic "90": a digit for Python's \d, not for the browser
        "<script>",
    ],
)
def test_anything_else_is_not_a_time_code(text: str | None) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize(
    ("text", "colour"),
    [("#ff5500", "#ff5500"), ("FF5500", "#ff5500"), ("#F50", "#ff5500"), ("0a0b0c", "#0a0b0c")],
)
def test_hex_colours_are_normalised(text: str, colour: str) -> None:
    assert parse_colour(text) == colour


@pytest.mark.parametrize(
    "text",
    [None, "", "red", "#12345", "#ff55001", "ff5500;background:url(x)", "javascript:alert(1)"],
)
def test_other_colours_are_ignored(text: str | None) -> None:
    assert parse_colour(text) is None


@pytest.mark.parametrize(
    ("text", "on"),
    [(None, False), ("", True), ("1", True), ("true", True), ("0", False), ("nope", False)],
)
def test_flags_are_on_when_present_or_truthy(text: str | None, on: bool) -> None:
    assert parse_flag(text) is on


def test_options_from_a_query_keep_only_valid_values() -> None:
    options = PlayerOptions.from_query({"t": "1m30s", "autoplay": "1", "color": "f50"})
    assert options == PlayerOptions(start=90.0, autoplay=True, loop=False, color="#ff5500")
    bad = PlayerOptions.from_query({"t": "soon", "loop": "no", "color": "blue"})
    assert bad == PlayerOptions()


# --- what the player is told ---------------------------------------------------------------------


def test_player_data_points_at_the_published_media(services: Services) -> None:
    production_id = fake_production(services, chapters=(("Intro", 0.0), ("Outro", 95.5)))
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        data = player_data(production, services.store, "https://cite.example/")
    media = f"https://cite.example/media/productions/{production_id}/v1/"
    assert data["ready"] is True
    assert data["hls_url"] == media + "master.m3u8"
    assert data["poster"] == media + "poster.jpg"
    assert data["storyboard_url"] == media + "storyboard.vtt"
    assert data["chapters_url"] == "https://cite.example/productions/nuit-electro/chapters.vtt"
    assert data["chapters"] == [{"title": "Intro", "start": 0.0}, {"title": "Outro", "start": 95.5}]
    assert data["page_url"] == "https://cite.example/productions/nuit-electro"
    assert data["embed_url"] == f"https://cite.example/embed/{production_id}"
    assert data["duration"] == 125.0


def test_player_data_of_audio_uses_the_cover_and_the_waveform(services: Services) -> None:
    production_id = fake_production(services, kind="audio", title="Chant", title_en="Song")
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        french = player_data(production, services.store, "http://x")
        english = player_data(production, services.store, "http://x", lang="en")
    assert french["poster"] == french["cover"] is not None
    assert str(french["cover"]).endswith("/v1/cover.jpg")
    assert str(french["waveform_url"]).endswith("/v1/waveform.json")
    assert french["chapters_url"] is None and french["chapters"] == []
    assert (french["title"], english["title"]) == ("Chant", "Song")


def test_player_data_has_no_media_until_a_version_is_ready(services: Services) -> None:
    production_id = fake_production(services, status="processing")
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        data = player_data(production, services.store, "http://x")
    assert data["ready"] is False
    assert data["hls_url"] is None and data["poster"] is None


def test_embed_snippet_escapes_the_title_as_an_attribute() -> None:
    snippet = embed_snippet("https://cite.example/embed/abc?t=5&loop=1", "audio", HOSTILE)
    iframes = tags_named(snippet, "iframe")
    assert len(iframes) == 1, "the title cannot open or close elements"
    attrs = iframes[0]
    assert attrs["src"] == "https://cite.example/embed/abc?t=5&loop=1"
    assert attrs["title"] == HOSTILE
    assert (attrs["width"], attrs["height"]) == ("640", "166")
    assert attrs["allow"] == "autoplay; fullscreen; picture-in-picture"
    assert attrs["referrerpolicy"] == "strict-origin-when-cross-origin"


def test_embed_snippet_fits_any_width_in_its_shape() -> None:
    """Numbers in width and height for those who read them; the style, which browsers follow,
    stretches the frame across the partner's column: 16:9 for video, 166 px high for audio."""
    video = tags_named(embed_snippet("u", "video", "t"), "iframe")[0]
    assert (video["width"], video["height"]) == ("640", "360")
    video_style = str(video["style"])
    assert "width:100%" in video_style and "aspect-ratio:16/9" in video_style
    assert "height:auto" in video_style
    audio_style = str(tags_named(embed_snippet("u", "audio", "t"), "iframe")[0]["style"])
    assert "width:100%" in audio_style and "height:166px" in audio_style
    assert "aspect-ratio" not in audio_style


# --- the embed page ------------------------------------------------------------------------------


def test_embed_page_of_a_video_holds_only_the_player(
    client: TestClient, services: Services
) -> None:
    production_id = fake_production(services, chapters=(("Intro", 0.0),))
    response = client.get(f"/embed/{production_id}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    videos = tags_named(html, "video")
    assert len(videos) == 1
    assert str(videos[0]["poster"]).endswith("/v1/poster.jpg")
    tracks = {attrs["kind"]: attrs for attrs in tags_named(html, "track")}
    assert tracks["metadata"]["label"] == "thumbnails"
    assert str(tracks["metadata"]["src"]).endswith("/v1/storyboard.vtt")
    assert str(tracks["chapters"]["src"]).endswith("/productions/nuit-electro/chapters.vtt")
    assert tags_named(html, "header") == [] and tags_named(html, "nav") == []
    config = player_config(html)
    assert config["kind"] == "video" and config["embed"] is True
    assert str(config["hls_url"]).endswith(f"/media/productions/{production_id}/v1/master.m3u8")
    sources = [attrs.get("src") for attrs in tags_named(html, "script")]
    assert Urls().static("js/player.js") in sources


def test_embed_page_of_audio_has_cover_and_waveform(client: TestClient, services: Services) -> None:
    production_id = fake_production(services, kind="audio")
    html = client.get(f"/embed/{production_id}").text
    assert len(tags_named(html, "audio")) == 1 and tags_named(html, "video") == []
    covers = [a for a in tags_named(html, "img") if "cl-player__cover" in str(a.get("class"))]
    assert str(covers[0]["src"]).endswith("/v1/cover.jpg")
    waves = [a for a in tags_named(html, "div") if "cl-player__wave" in str(a.get("class"))]
    assert str(waves[0]["data-waveform-url"]).endswith("/v1/waveform.json")
    assert waves[0]["tabindex"] == "0" and waves[0]["role"] == "slider"


def test_embed_page_applies_valid_parameters(client: TestClient, services: Services) -> None:
    production_id = fake_production(services)
    html = client.get(f"/embed/{production_id}?t=1m30s&autoplay=1&loop&color=%23FF5500").text
    config = player_config(html)
    assert (config["start"], config["autoplay"], config["loop"]) == (90.0, True, True)
    assert config["color"] == "#ff5500"
    assert "loop" in tags_named(html, "video")[0]
    # The player's script applies the colour: the page's policy refuses style attributes.
    players = [a for a in tags_named(html, "div") if "data-player" in a]
    assert "style" not in players[0]


def test_embed_page_ignores_invalid_parameters(client: TestClient, services: Services) -> None:
    production_id = fake_production(services)
    html = client.get(
        f"/embed/{production_id}",
        params={"t": "later", "autoplay": "0", "color": "red;background:url(//evil.example)"},
    ).text
    config = player_config(html)
    assert (config["start"], config["autoplay"], config["loop"], config["color"]) == (
        None,
        False,
        False,
        None,
    )
    assert "evil.example" not in html
    assert "loop" not in tags_named(html, "video")[0]
    assert all("style" not in a for a in tags_named(html, "div") if "data-player" in a)


def test_hostile_query_values_never_reach_the_page(client: TestClient, services: Services) -> None:
    production_id = fake_production(services)
    attack = '"><script>alert(1)</script>'
    html = client.get(
        f"/embed/{production_id}",
        params={"t": attack, "color": attack, "autoplay": attack, "lang": attack},
    ).text
    assert "<script>alert" not in html
    assert "alert(1)" not in html
    scripts = parse(html).scripts
    # The early press's inline script (allowed by its hash), the loader, the player's settings.
    assert [attrs.get("type") for attrs, _ in scripts] == [None, "module", "application/json"]
    assert scripts[0][1] == early_press.SCRIPT


def test_hostile_title_stays_text_in_the_embed(client: TestClient, services: Services) -> None:
    production_id = fake_production(services, title=HOSTILE + "x" * 100_000)
    html = client.get(f"/embed/{production_id}").text
    assert "<script>alert" not in html
    scripts = parse(html).scripts
    assert len(scripts) == 3, "the title opened no script element"
    assert all("\u2028" not in text for _, text in scripts), "U+2028 ends a line in JavaScript"
    assert str(player_config(html)["title"]).startswith(HOSTILE)


def test_embed_page_may_be_framed_by_any_site(client: TestClient, services: Services) -> None:
    production_id = fake_production(services)
    response = client.get(f"/embed/{production_id}")
    assert "x-frame-options" not in response.headers
    policy = response.headers["content-security-policy"]
    assert re.search(r"(^|;)\s*frame-ancestors \*\s*(;|$)", policy)


def test_unlisted_productions_embed_by_their_address_only(
    client: TestClient, services: Services
) -> None:
    production_id = fake_production(services, visibility="unlisted")
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        address = production.slug
    response = client.get(f"/embed/{address}")
    assert response.status_code == 200
    assert player_config(response.text)["id"] == address
    # Its id is no secret (it may have been public once): it opens nothing.
    assert client.get(f"/embed/{production_id}").status_code == 404


@pytest.mark.parametrize("visibility", ["private", None])
def test_private_or_unknown_productions_are_not_found(
    client: TestClient, services: Services, visibility: str | None
) -> None:
    production_id = fake_production(services, visibility=visibility) if visibility else "nope"
    response = client.get(f"/embed/{production_id}")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "data-player" not in response.text


def as_admin(client: TestClient, services: Services) -> TestClient:
    make_user(services, "admin@example.org", "admin")
    login(client, "admin@example.org")
    return client


@pytest.mark.parametrize("status", ["processing", "failed"])
def test_productions_not_ready_show_their_managers_a_notice(
    client: TestClient, services: Services, status: str
) -> None:
    production_id = fake_production(services, status=status)
    # To anyone else, they do not exist.
    assert client.get(f"/embed/{production_id}").status_code == 404
    response = as_admin(client, services).get(f"/embed/{production_id}")
    assert response.status_code == 200
    assert "data-player-config" not in response.text
    assert tags_named(response.text, "video") == []
    notices = [a for a in tags_named(response.text, "div") if a.get("role") == "status"]
    assert len(notices) == 1


def test_embed_page_speaks_the_visitors_language(client: TestClient, services: Services) -> None:
    production_id = fake_production(services, title="Chant", title_en="Song")
    french = client.get(f"/embed/{production_id}").text
    english = client.get(f"/embed/{production_id}?lang=en").text
    assert tags_named(french, "html")[0]["lang"] == "fr"
    assert tags_named(english, "html")[0]["lang"] == "en"
    assert tags_named(english, "media-controller")[0]["lang"] == "en"
    assert player_config(french)["title"] == "Chant"
    assert player_config(english)["title"] == "Song"


def test_processing_notice_is_translated(client: TestClient, services: Services) -> None:
    production_id = fake_production(services, status="processing")
    client = as_admin(client, services)
    french = client.get(f"/embed/{production_id}").text
    english = client.get(f"/embed/{production_id}?lang=en").text
    assert "en cours de traitement" in french
    assert "is being processed" in english


def test_share_panel_shows_a_hostile_title_as_text(services: Services) -> None:
    production_id = fake_production(services, title=HOSTILE)
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        data = player_data(production, services.store, "https://cite.example")
    environment = make_templates(services.settings).env
    html = environment.from_string(
        '{% from "_player.html" import share_panel %}{{ share_panel(data) }}'
    ).render(data=data)
    assert "<script>alert" not in html and "<iframe" not in html
    panels = [attrs for tag, attrs in parse(html).tags if "data-share-panel" in attrs]
    assert panels[0]["data-title"] == HOSTILE
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", html, re.S)
    assert textarea is not None
    # What the partner copies is the snippet itself, its title escaped once, as HTML needs.
    shown = html_module.unescape(textarea.group(1))
    assert shown == data["embed_snippet"]
    assert tags_named(shown, "iframe")[0]["title"] == HOSTILE


# --- what the player is told for partner sites (player.js) and the audio embed's credits ---------


def test_player_data_names_the_artists_once_in_credit_order(services: Services) -> None:
    production_id = fake_production(services, kind="audio")
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        nora = create_production(session, title="x", filename="x.mp3", artists=["Nora Ilić"])
        elodie = production.credits[0].artist
        # The same artist credited twice (performer and composer) is named once.
        production.credits.append(Credit(artist=elodie, role="composer", position=1))
        production.credits.append(Credit(artist=nora.credits[0].artist, role="mixing", position=2))
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        data = player_data(production, services.store, "http://x")
    assert data["artists"] == ["Élodie Fauré", "Nora Ilić"]
    # Any site may embed the player and drive it until embed_origins says otherwise.
    assert data["embed_origins"] is None


def test_the_player_configuration_carries_the_allowed_origins(
    client: TestClient, services: Services
) -> None:
    production_id = fake_production(services)
    config = player_config(client.get(f"/embed/{production_id}").text)
    assert "embed_origins" in config and config["embed_origins"] is None


@pytest.mark.parametrize("kind", ["audio", "video"])
def test_no_media_is_loaded_before_play(client: TestClient, services: Services, kind: str) -> None:
    production_id = fake_production(services, kind=kind)
    html = client.get(f"/embed/{production_id}").text
    media = tags_named(html, kind)
    assert len(media) == 1
    assert media[0]["preload"] == "none"
    assert "src" not in media[0], "the player gives the source at the first play"


def test_the_audio_embed_names_the_artists_and_links_to_the_site(
    client: TestClient, services: Services
) -> None:
    production_id = fake_production(services, kind="audio")
    html = client.get(f"/embed/{production_id}").text
    artists = re.search(r'<p class="cl-player__artists">(.*?)</p>', html)
    assert artists is not None and artists.group(1) == "Élodie Fauré"
    marks = [a for a in tags_named(html, "a") if a.get("class") == "cl-player__mark"]
    assert len(marks) == 1
    page = player_config(html)["page_url"]
    assert marks[0]["href"] == page
    assert (marks[0]["target"], marks[0]["rel"]) == ("_blank", "noopener")
    assert marks[0]["aria-label"] == "Ouvrir sur Cité Live"
    assert re.search(r'class="cl-player__mark"[^>]*>Cité Live</a>', html)
    english = client.get(f"/embed/{production_id}?lang=en").text
    assert 'aria-label="Open on Cité Live"' in english
    # The catalogue's page shows its credits its own way: no mark there.
    slug = client.get(f"/api/v1/productions/{production_id}").json()["slug"]
    assert "cl-player__mark" not in client.get(f"/productions/{slug}").text


def test_an_artist_name_stays_text_in_the_audio_embed(
    client: TestClient, services: Services
) -> None:
    production_id = fake_production(services, kind="audio")
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.credits[0].artist.name = HOSTILE
    html = client.get(f"/embed/{production_id}").text
    assert "<script>alert" not in html
    artists = re.search(r'<p class="cl-player__artists">(.*?)</p>', html, re.S)
    assert artists is not None
    assert html_module.unescape(artists.group(1)) == HOSTILE
    assert len(parse(html).scripts) == 3


@pytest.mark.parametrize(
    ("lang", "words"), [("fr", "lecture depuis le début"), ("en", "from the beginning")]
)
def test_the_player_can_say_that_a_start_time_is_past_the_end(
    client: TestClient, services: Services, lang: str, words: str
) -> None:
    """Said by the script when `t` is past the end (tests/test_browser_playerapi.py)."""
    production_id = fake_production(services, kind="audio")
    html = client.get(f"/embed/{production_id}?t=9999&lang={lang}").text
    notices = re.findall(r"<p [^>]*data-start-notice[^>]*>(.*?)</p>", html)
    assert len(notices) == 1 and words in notices[0]
    assert "hidden" in next(a for a in tags_named(html, "p") if "data-start-notice" in a)
    # The server keeps the start it was given; the player knows the duration and decides.
    assert player_config(html)["start"] == 9999.0
