"""The URL builder (cite_live.web.urls), and the templates and scripts that take every link from it.

A path written by hand in a template drifts from the route table the day a path moves; the
scans below name the file and the line of any such literal. The builder's own tests pin what a
link looks like: each value percent-encoded once, None left out of a query.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from cite_live.models import Production
from cite_live.services import Services
from cite_live.settings import Settings
from cite_live.web.app import create_app
from cite_live.web.urls import PATHS, Urls, path, with_query
from tests.account_fixtures import login, make_user
from tests.test_studio import add_production

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "web/templates"
SCRIPTS = ROOT / "web/static/js"

# An attribute holding a URL, or a CSS url(), that starts with the site's root.
HAND_WRITTEN_LINK = re.compile(
    r"""(?<![\w-])(?:href|action|formaction|src|srcset|poster|content|data-[\w-]+)\s*=\s*["']?/"""
    r"""|url\(\s*["']?/"""
)
# A quoted string starting with the first segment of one of the site's paths ("/studio",
# "/api/", "/static/", "/feed.atom"…): inline JSON, a Jinja string, a script's fetch().
SITE_PREFIXES = sorted({p.split("/")[1] for p in PATHS.values() if p != "/"})
QUOTED_SITE_PATH = re.compile(
    r"""["'`(]/(?:""" + "|".join(re.escape(p) for p in SITE_PREFIXES) + r""")(?![\w.-])"""
)
SLUG = "a b/é?c"


def literals(files: list[Path], *patterns: re.Pattern[str]) -> list[str]:
    """``file:line: text`` of each line of ``files`` where one of ``patterns`` matches."""
    found = []
    for file in files:
        for number, line in enumerate(file.read_text().splitlines(), start=1):
            if any(pattern.search(line) for pattern in patterns):
                found.append(f"{file.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_the_scans_see_what_they_look_for() -> None:
    assert SITE_PREFIXES, "PATHS names no path"
    for line in (
        '<a href="/artists">',
        "<form action='/login' method=post>",
        '<img srcset="/static/a.png 2x">',
        '<meta property="og:image" content="/media/x.jpg">',
        '<div data-endpoint="/api/v1/uploads/">',
        "background: url(/static/a.png)",
    ):
        assert HAND_WRITTEN_LINK.search(line), line
    for line in ('{"url": "/api/v1/productions"}', 'fetch("/embed/" + id)', 'x = "/feed.atom"'):
        assert QUOTED_SITE_PATH.search(line), line
    for line in (
        '<a href="{{ urls.home() }}">',
        '<a href="#main">',
        '<a href="https://example.org/">',
        "{#- GET /api/v1/me/productions, polled -#}",
        'import "./share.js";',
        '{{ "%s/%s" | format(a, b) }}',
    ):
        assert not HAND_WRITTEN_LINK.search(line), line
        assert not QUOTED_SITE_PATH.search(line), line


def test_templates_write_no_site_path_by_hand() -> None:
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert templates, f"no template under {TEMPLATES}"
    found = literals(templates, HAND_WRITTEN_LINK, QUOTED_SITE_PATH)
    assert found == [], "a link written by hand; build it with `urls` instead:\n" + "\n".join(found)


def test_our_scripts_take_site_paths_from_the_page() -> None:
    """The page hands its scripts their links (data- attributes, the player's JSON); a module
    imports its neighbours by relative paths, which follow wherever /static/ is served."""
    scripts = sorted(SCRIPTS.glob("*.js"))
    assert scripts, f"no script under {SCRIPTS}"
    code = re.compile(r"^\s*(//|\*|/\*)")
    found = [
        hit for hit in literals(scripts, QUOTED_SITE_PATH) if not code.match(hit.split(": ", 1)[1])
    ]
    assert found == [], "a site path written in a script; hand it over from the page:\n" + (
        "\n".join(found)
    )


# --- the builder -----------------------------------------------------------------------------


def sample_values(name: str) -> dict[str, str]:
    """A plain value for each of the path's parameters (nothing a route would encode)."""
    return {key: f"{key}-1" for key in re.findall(r"{(\w+)(?::\w+)?}", PATHS[name])}


def test_every_named_path_is_a_route_of_the_app(settings: Settings) -> None:
    app = create_app(settings)
    routes = {r.name: r.path for r in app.routes if isinstance(r, Route | Mount)}
    for name, template in PATHS.items():
        assert routes.get(name) == template, f"{name} ({template}) is not a route of the app"
        values = sample_values(name)
        if name != "static":
            assert str(app.url_path_for(name, **values)) == path(name, **values)


def test_a_value_is_percent_encoded_once() -> None:
    urls = Urls()
    built = urls.artist(SLUG)
    assert built == "/artists/a%20b%2F%C3%A9%3Fc"
    assert unquote(built.removeprefix("/artists/")) == SLUG
    assert urls.artist("100%") == "/artists/100%25"
    assert urls.production(SLUG, t=30) == "/productions/a%20b%2F%C3%A9%3Fc?t=30"
    assert urls.invite(SLUG) == "/invite/a%20b%2F%C3%A9%3Fc"
    assert path("api_artist", slug=SLUG) == "/api/v1/artists/a%20b%2F%C3%A9%3Fc"
    assert urls.admin_user(7) == "/admin/users/7"
    # In a query too: the value comes back whole, once decoded.
    query = urls.search(q=SLUG, type="live")
    assert query == "/search?q=a+b%2F%C3%A9%3Fc&type=live"
    assert parse_qs(urlsplit(query).query) == {"q": [SLUG], "type": ["live"]}
    assert urls.set_language("en", next="/artists?letter=e") == (
        "/lang/en?next=%2Fartists%3Fletter%3De"
    )


def test_a_query_leaves_out_none_values() -> None:
    assert with_query("/artists", {"letter": None, "page": 2}) == "/artists?page=2"
    assert with_query("/artists", {"letter": None}) == "/artists"
    assert with_query("/artists", None) == "/artists"
    assert with_query("/search?q=x", {"page": 3}) == "/search?q=x&page=3"
    # A false value that is not None is a value.
    assert with_query("/artists", {"page": 0, "letter": ""}) == "/artists?page=0&letter="
    assert with_query("/admin", {}, fragment="accounts") == "/admin#accounts"
    urls = Urls()
    assert urls.artists(letter=None, discipline=None, page=None) == "/artists"
    assert urls.artists(letter="é", discipline=None) == "/artists?letter=%C3%A9"
    assert urls.login(next=None) == "/login"
    assert urls.admin(fragment="accounts") == "/admin#accounts"


def test_absolute_urls_are_on_the_site_address() -> None:
    urls = Urls("https://cite.example/")
    assert urls.site == "https://cite.example"
    assert urls.absolute(urls.artist("elodie-faure")) == "https://cite.example/artists/elodie-faure"
    assert urls.absolute(urls.home()) == "https://cite.example/"
    assert Urls("https://cite.example/sub").absolute("/feed.atom") == (
        "https://cite.example/sub/feed.atom"
    )
    # Without a site address, the path alone.
    assert Urls().absolute("/feed.atom") == "/feed.atom"
    # Paths do not depend on it.
    assert urls.artist("x") == Urls().artist("x") == "/artists/x"


def test_static_and_media_keys_keep_their_slashes() -> None:
    urls = Urls()
    # Files the build has not made (see tests/test_assets.py for those it has).
    assert urls.static("img/site.png") == "/static/img/site.png"
    assert urls.static("/img/player.png") == "/static/img/player.png"
    assert urls.static("vendor/hls.js/hls.min.mjs") == "/static/vendor/hls.js/hls.min.mjs"
    assert urls.static("a b/é.css") == "/static/a%20b/%C3%A9.css"
    key = "productions/abc/v1/master.m3u8"
    assert urls.media(key) == "/media/productions/abc/v1/master.m3u8"
    assert urls.media("x/a b?.jpg") == "/media/x/a%20b%3F.jpg"
    # The token is one segment: its slash is encoded, the key's are not.
    assert urls.private_media("t/k", key) == "/media/private/t%2Fk/productions/abc/v1/master.m3u8"


def test_path_refuses_a_value_it_has_no_place_for() -> None:
    with pytest.raises(TypeError, match="artist takes no page"):
        path("artist", slug="x", page=2)
    with pytest.raises(TypeError, match="home takes no slug"):
        path("home", slug="x")
    with pytest.raises(KeyError):
        path("artist")
    with pytest.raises(KeyError):
        path("no_such_page")


# --- what the templates write ----------------------------------------------------------------


class Page(HTMLParser):
    """The tags of a page with their attributes (a bare attribute as ""), and its scripts' text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[tuple[dict[str, str], str]] = []
        self.in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {key: value or "" for key, value in attrs}))
        self.in_script = tag == "script"
        if self.in_script:
            self.scripts.append((self.tags[-1][1], ""))

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def first(self, tag: str, **wanted: str) -> dict[str, str]:
        """The attributes of the first ``tag`` with ``wanted`` (data_x for data-x)."""
        for name, attrs in self.tags:
            if name == tag and all(
                attrs.get(key.replace("_", "-")) == value for key, value in wanted.items()
            ):
                return attrs
        raise AssertionError(f"no <{tag}> with {wanted}")


def test_the_language_switch_and_the_sign_in_link_come_back_to_the_page(
    client: TestClient,
) -> None:
    """``next`` is encoded by the builder (its slashes as %2F): the same path comes back."""
    here = "/artists?letter=e&discipline=Musique+classique"
    page = Page(client.get(here).text)
    switch = page.first("a", data_lang_switch="")["href"]
    assert switch == "/lang/en?next=%2Fartists%3Fletter%3De%26discipline%3DMusique%2Bclassique"
    assert client.get(switch, follow_redirects=False).headers["location"] == here
    sign_in = next(
        attrs["href"]
        for tag, attrs in page.tags
        if tag == "a" and attrs.get("href", "").startswith("/login?")
    )
    assert Page(client.get(sign_in).text).first("input", name="next")["value"] == here


def test_the_page_hands_its_scripts_their_links(client: TestClient, services: Services) -> None:
    owner = make_user(services, "nora@example.org")
    login(client, "nora@example.org")
    production_id = add_production(services, owner, "À Nora")
    urls = Urls()
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        slug = production.slug
    page = Page(client.get(urls.production(slug)).text)
    config = json.loads(next(text for attrs, text in page.scripts if "data-player-config" in attrs))
    assert config["api_url"] == urls.api_production(config["id"])
    assert client.get(config["api_url"]).json()["id"] == production_id
    replace = Page(client.get(urls.studio_replace(production_id)).text)
    assert replace.first("div", data_uploader="")["data-return-url"] == urls.studio()
    # The site's own module (site.js, on every page) comes first; the studio's is there too.
    assert replace.first("script", type="module")["src"] == urls.static("js/site.js")
    assert replace.first("script", type="module", src=urls.static("js/studio.js"))
