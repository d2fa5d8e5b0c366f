"""Nothing untranslated: every page of the site, in French and in English, holds no string of
the other language outside the user content it shows.

A catalogue whose user content is known (:func:`furnish`) is shown page by page, to anyone,
to its artist and to an admin. From each page the user content is taken out (the elements
marked with a ``lang`` of the other language, then the known titles, names and texts); what is
left must hold no message of the other language: on a French page no English msgid whose
French translation differs, on an English page no French translation that differs from its
msgid (both read from the .po catalogues), nor Starlette's English reason phrases.
tests/test_browser_a11y.py shows the same pages to axe-core in Chromium, and the player's
labels are checked there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from html.parser import HTMLParser
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from sqlalchemy import select
from starlette.testclient import TestClient

from cite_live import accounts
from cite_live.catalogue import set_tags
from cite_live.models import Artist, Chapter, Collection, CollectionItem, Partner, Production, Venue
from cite_live.services import Services
from cite_live.web.app import create_app
from tests.account_fixtures import login, make_user
from tests.test_pages import publish

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "cite_live" / "locale"
ADMIN = "admin@example.org"
ARTIST = "choeur@example.org"
INVITED = "nouvelle@example.org"
ARTIST_NAME = "Chœur Diois"

# --- the catalogue ----------------------------------------------------------------------------


@dataclass
class World:
    """What the pages are about: ids and slugs of the catalogue, and its user content."""

    audio_id: str
    audio_slug: str
    video_id: str
    video_slug: str
    artist_slug: str
    artist_id: int
    venue_slug: str
    tag_slug: str
    collection_id: str
    collection_slug: str
    partner_id: int
    invitation: str
    reset: str
    #: Every text that users typed: taken out of the pages before they are read.
    user_content: list[str] = field(default_factory=list)


# What users typed: French where the page has no English version, both where it does.
VENUE = ("Temple de Die", "temple-de-die", "Die")
VENUE_TEXT = "Un temple protestant à l’acoustique généreuse."
TAG = "Polyphonies"
AUDIO = {
    "title": "Chanson du Vercors",
    "title_en": "Song of the Vercors",
    "description": "Une chanson des alpages.",
    "description_en": "A song from the high pastures.",
}
VIDEO = {"title": "Répétition à la Cité", "description": "Le chœur répète avant le concert."}
CHAPTERS = (("Ouverture", 0.0), ("Deuxième mouvement", 6.0))
BIO = "Chœur de la vallée de la Drôme.\n\nVingt voix."
DISCIPLINES = ["Chant", "Polyphonies alpines"]
COLLECTION = {"title": "Saison des chœurs", "description": "Les concerts de la saison."}
PARTNER = ("Festival des Voix", "https://festival.example")


def furnish(services: Services, audio_id: str, video_id: str) -> World:
    """Around two ready productions by ARTIST_NAME (an audio and a video one): their texts,
    venue, tag and setlist, the artist's profile, a public collection, a partner site, an
    admin, the artist's account (owning both), an invitation and a password reset."""
    make_user(services, ADMIN, "admin")
    artist_user = make_user(services, ARTIST, artists=[ARTIST_NAME])
    with services.sessions.begin() as session:
        venue = Venue(name=VENUE[0], slug=VENUE[1], commune=VENUE[2], description=VENUE_TEXT)
        session.add(venue)
        audio = session.get(Production, audio_id)
        video = session.get(Production, video_id)
        assert audio is not None and video is not None
        for production, texts in ((audio, AUDIO), (video, VIDEO)):
            for name, value in texts.items():
                setattr(production, name, value)
            production.owner_id = artist_user
            production.venue = venue
            production.session_type = "live"
            production.licence = "CC-BY-4.0"
            production.recorded_on = date(2025, 6, 21)
        set_tags(session, video, [TAG])
        video.chapters.clear()
        for title, start in CHAPTERS:
            video.chapters.append(Chapter(title=title, start=start))
        artist = session.scalars(select(Artist).where(Artist.name == ARTIST_NAME)).one()
        artist.bio, artist.disciplines, artist.commune = BIO, DISCIPLINES, VENUE[2]
        artist.links = [{"url": "https://choeur.example/", "label": "Site du chœur"}]
        collection = Collection(
            slug="saison-des-choeurs", kind="season", state="public", **COLLECTION
        )
        session.add(collection)
        session.flush()
        collection.items.extend(
            CollectionItem(production_id=p.id, position=n) for n, p in enumerate((video, audio))
        )
        partner = Partner(name=PARTNER[0], origins=[PARTNER[1]])
        session.add(partner)
        invited = accounts.create_user(session, INVITED, "artist")
        invitation = accounts.create_invitation(session, invited)
        reset = accounts.request_reset(session, ARTIST)
        assert reset is not None
        session.flush()
        tag_slug = video.tags[0].slug
        world = World(
            audio_id=audio.id,
            audio_slug=audio.slug,
            video_id=video.id,
            video_slug=video.slug,
            artist_slug=artist.slug,
            artist_id=artist.id,
            venue_slug=venue.slug,
            tag_slug=tag_slug,
            collection_id=collection.id,
            collection_slug=collection.slug,
            partner_id=partner.id,
            invitation=invitation,
            reset=reset[1],
        )
    world.user_content = [
        *AUDIO.values(),
        *VIDEO.values(),
        *(title for title, _ in CHAPTERS),
        *BIO.split("\n\n"),
        *DISCIPLINES,
        *COLLECTION.values(),
        *VENUE,
        VENUE_TEXT,
        TAG,
        ARTIST_NAME,
        "Site du chœur",
        *PARTNER,
        ADMIN,
        ARTIST,
        INVITED,
    ]
    return world


@dataclass(frozen=True)
class Page:
    name: str
    path: str
    who: str | None = None  # None: anyone; else the email signed in
    status: int = 200


def pages(world: World) -> list[Page]:
    """Every page of the site, as each kind of visitor sees it."""
    w = world
    return [
        Page("home", "/"),
        Page("artists", "/artists"),
        Page("artists A–Z", "/artists?letter=c"),
        Page("artist", f"/artists/{w.artist_slug}"),
        Page("audio production", f"/productions/{w.audio_slug}"),
        Page("video production", f"/productions/{w.video_slug}"),
        Page("venues", "/venues"),
        Page("venue", f"/venues/{w.venue_slug}"),
        Page("tags", "/tags"),
        Page("tag", f"/tags/{w.tag_slug}"),
        Page("collections", "/collections"),
        Page("collection", f"/collections/{w.collection_slug}"),
        Page("search", "/search"),
        Page("search with results", "/search?q=vercors"),
        Page("search without results", "/search?q=zzzzqqq"),
        Page("partner guide", "/partners"),
        Page("login", "/login"),
        Page("forgotten password", "/login/forgot"),
        Page("invitation", f"/invite/{w.invitation}"),
        Page("password reset", f"/login/reset/{w.reset}"),
        Page("audio embed", f"/embed/{w.audio_id}"),
        Page("video embed", f"/embed/{w.video_id}"),
        Page("collection embed", f"/embed/collections/{w.collection_id}"),
        Page("unavailable card", "/embed/zzzzzzzzzzz", status=404),
        Page("404", "/no/such/page", status=404),
        Page("405", "/logout", status=405),
        Page("account", "/account", ARTIST),
        Page("studio", "/studio", ARTIST),
        Page("studio edit", f"/studio/productions/{w.audio_id}", ARTIST),
        Page("studio replace", f"/studio/productions/{w.video_id}/replace", ARTIST),
        Page("studio delete", f"/studio/productions/{w.video_id}/delete", ARTIST),
        # An artist with one profile goes straight to it: the list is an admin's.
        Page("studio profiles", "/studio/profiles", ADMIN),
        Page("studio profile", f"/studio/profiles/{w.artist_id}", ARTIST),
        Page("studio collections", "/studio/collections", ARTIST),
        Page("studio stats", "/studio/stats", ARTIST),
        Page("403", "/admin", ARTIST, status=403),
        Page("admin", "/admin", ADMIN),
        Page("admin stats", "/admin/stats", ADMIN),
        Page("admin partners", "/admin/partners", ADMIN),
        Page("admin partner", f"/admin/partners/{w.partner_id}", ADMIN),
        Page("admin tags", "/admin/tags", ADMIN),
        Page("studio collection", f"/studio/collections/{w.collection_id}", ADMIN),
    ]


# --- reading a page ---------------------------------------------------------------------------

VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)
# Attributes whose values are no words (addresses, names of things, codes).
NOT_WORDS = frozenset(
    [
        "href",
        "src",
        "srcset",
        "class",
        "id",
        "for",
        "name",
        "type",
        "rel",
        "lang",
        "hreflang",
        "action",
        "method",
        "style",
        "datetime",
        "pattern",
        "autocomplete",
        "inputmode",
        "sizes",
        "media",
        "as",
        "crossorigin",
        "nonce",
        "integrity",
        "charset",
        "http-equiv",
        "property",
        "form",
        "list",
    ]
)


class Words(HTMLParser):
    """The text and the attribute values a visitor may read or hear, without what is marked
    as being in another language than ``lang`` and without scripts and styles."""

    def __init__(self, lang: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = lang
        self.found: list[str] = []
        self.skipping = 0  # depth inside an element left out

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if self.skipping:
            if tag not in VOID:
                self.skipping += 1
            return
        other = values.get("lang") not in (None, "", self.lang)
        # Scripts, styles and code samples (the partner guide's) are code, not words.
        is_code = tag in ("script", "style", "code") and values.get("type") != "text/template"
        if other or is_code:
            if tag not in VOID:
                self.skipping = 1
            return
        self.found += [v for k, v in attrs if v and k not in NOT_WORDS]

    def handle_endtag(self, tag: str) -> None:
        if self.skipping and tag not in VOID:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self.skipping and data.strip():
            self.found.append(data)


def words_of(body: str, lang: str, user_content: Iterable[str]) -> str:
    """The page's own words, one chunk a line, the user content taken out."""
    parser = Words(lang)
    parser.feed(body)
    text = "\n".join(" ".join(chunk.split()) for chunk in parser.found)
    for typed in sorted({" ".join(t.split()) for t in user_content if t}, key=len, reverse=True):
        text = text.replace(typed, " ")
    return text


# --- the other language's messages ------------------------------------------------------------

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\w*\}")
# Literal text this short says nothing of its language ("%(num)s h", "« %(q)s »").
SHORTEST = 4


def _pattern(message: str) -> re.Pattern[str] | None:
    """A message as found in a page: its words on one line, each placeholder standing for a
    word or a few; None when its words are too few to tell its language."""
    pieces = PLACEHOLDER.split(" ".join(message.split()))
    if sum(len(p.strip()) for p in pieces) < SHORTEST:
        return None
    body = r"\S(?:.{0,118}?\S)?".join(re.escape(p) for p in pieces)
    return re.compile(rf"(?<!\w){body}(?!\w)")


def _forms(text: str | tuple[str, ...] | None) -> tuple[str, ...]:
    return text if isinstance(text, tuple) else (text,) if text else ()


@cache
def foreign_messages(lang: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The messages that must not appear on a page in ``lang``: on French pages the English
    msgids translated otherwise, on English pages the French translations that differ."""
    with (LOCALE / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale="fr")
    found: dict[str, re.Pattern[str]] = {}
    # What a page in ``lang`` may say: every message of its own language ("Administration" is
    # both an English msgid and the French for "Admin").
    own = {
        text
        for message in catalog
        for text in _forms(message.string if lang == "fr" else message.id)
    }
    for message in catalog:
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        # A plural's forms differ in number between the languages: a form is foreign when the
        # other language has no such form.
        mine, theirs = (strings, ids) if lang == "fr" else (ids, strings)
        for other in theirs:
            if other and other not in mine and other not in own and (pattern := _pattern(other)):
                found[other] = pattern
    if lang == "fr":
        # Starlette's own words, when a page passes them on untranslated.
        for status in HTTPStatus:
            if status.value >= 400:
                found[status.phrase] = re.compile(rf"(?<!\w){re.escape(status.phrase)}(?!\w)")
    return tuple(found.items())


def foreign_in(text: str, lang: str) -> list[str]:
    """The messages of the other language found in ``text``, each with what surrounds it."""
    problems = []
    for message, pattern in foreign_messages(lang):
        hit = pattern.search(text)
        if hit:
            start, end = max(0, hit.start() - 40), hit.end() + 40
            problems.append(f"{message!r} in …{text[start:end]!r}…")
    return problems


def get(client: TestClient, path: str, lang: str) -> Any:
    """``path`` as a visitor who chose ``lang`` sees it (the switch sets this cookie)."""
    client.cookies.set("lang", lang)
    return client.get(path, follow_redirects=False)


# --- the tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, World]]:
    from cite_live.services import open_services
    from tests.app_fixtures import make_settings

    directory = tmp_path_factory.mktemp("i18n-pages")
    services = open_services(make_settings(directory, f"sqlite:///{directory / 'db.sqlite'}"))
    with services.sessions.begin() as session:
        audio = publish(session, "a", artists=[(ARTIST_NAME, "performer")], kind="audio")
        video = publish(session, "v", artists=[(ARTIST_NAME, "performer")], kind="video")
        ids = audio.id, video.id
    try:
        yield services, furnish(services, *ids)
    finally:
        services.close()


@pytest.fixture(scope="module")
def clients(site: tuple[Services, World]) -> Iterator[dict[str | None, TestClient]]:
    services, _ = site
    app = create_app(services.settings, services)
    made: dict[str | None, TestClient] = {}
    for who in (None, ARTIST, ADMIN):
        client = TestClient(app, base_url="http://testserver")
        client.__enter__()
        if who:
            login(client, who)
        made[who] = client
    yield made
    for client in made.values():
        client.__exit__(None, None, None)


def _page_ids() -> list[str]:
    fake = World("a", "a", "v", "v", "s", 1, "v", "t", "c", "c", 1, "i", "r")
    return [page.name for page in pages(fake)]


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("name", _page_ids())
def test_every_page_speaks_one_language_outside_user_content(
    site: tuple[Services, World], clients: dict[str | None, TestClient], name: str, lang: str
) -> None:
    _, world = site
    page = next(p for p in pages(world) if p.name == name)
    client = clients[page.who]
    response = get(client, page.path, lang)
    assert response.status_code == page.status, (page.path, response.status_code)
    body = response.text
    assert f'<html lang="{lang}"' in body
    text = words_of(body, lang, world.user_content)
    problems = foreign_in(text, lang)
    assert not problems, f"{page.name} ({page.path}) in {lang}:\n" + "\n".join(problems)


def test_the_check_finds_the_other_language_where_it_is() -> None:
    """The reader of pages is no sieve: it finds an English msgid on a French page, a French
    translation on an English page and Starlette's reason phrase, and lets marked or known user
    content through."""
    french_page = (
        '<html lang="fr"><body><h1>Introuvable</h1><p>Latest productions</p>'
        '<p lang="en">Latest productions</p><p>Not Found</p><img alt="Back to the home page">'
        "<script>const s = 'Search the catalogue';</script></body></html>"
    )
    text = words_of(french_page, "fr", [])
    problems = "\n".join(foreign_in(text, "fr"))
    assert "'Latest productions'" in problems and "'Not Found'" in problems
    assert "'Back to the home page'" in problems
    assert "Search the catalogue" not in text, "scripts are code, not words"
    assert text.count("Latest productions") == 1, "the element marked lang=en is left out"
    english_page = '<html lang="en"><p>Dernières productions</p><p lang="fr">Mots-clés</p></html>'
    english = "\n".join(foreign_in(words_of(english_page, "en", []), "en"))
    assert "Dernières productions" in english and "Mots-clés" not in english
    typed = words_of(
        '<html lang="fr"><h1>Latest productions</h1></html>', "fr", ["Latest productions"]
    )
    assert foreign_in(typed, "fr") == []


@pytest.mark.parametrize("name", ["home", "audio production", "admin", "404"])
def test_a_page_read_as_the_other_language_is_caught(
    site: tuple[Services, World], clients: dict[str | None, TestClient], name: str
) -> None:
    """Each page read as if it were in the other language fails the check, many times over:
    the pages the test passes hold words it reads."""
    _, world = site
    page = next(p for p in pages(world) if p.name == name)
    for lang, other in (("fr", "en"), ("en", "fr")):
        body = get(clients[page.who], page.path, lang).text
        body = body.replace(f'<html lang="{lang}"', f'<html lang="{other}"', 1)
        assert len(foreign_in(words_of(body, other, world.user_content), other)) >= 5


@pytest.mark.parametrize(
    ("path", "status", "fr", "en"),
    [
        ("/no/such/page", 404, "404 · Introuvable", "404 · Not found"),
        ("/logout", 405, "405 · Méthode non autorisée", "405 · Method not allowed"),
    ],
)
def test_error_pages_name_their_status_in_the_visitor_language(
    clients: dict[str | None, TestClient], path: str, status: int, fr: str, en: str
) -> None:
    for lang, title in (("fr", fr), ("en", en)):
        response = get(clients[None], path, lang)
        assert response.status_code == status
        assert f'<p class="error-page__status">{title}</p>' in response.text
        assert f"<title>{title} · Cité Live Web</title>" in response.text
    french = get(clients[None], path, "fr").text
    assert HTTPStatus(status).phrase not in french


def test_a_refusal_names_forbidden_in_french(clients: dict[str | None, TestClient]) -> None:
    refused = get(clients[ARTIST], "/admin", "fr")
    assert refused.status_code == 403
    assert '<p class="error-page__status">403 · Accès refusé</p>' in refused.text
    assert "Only an administrator may do this." not in refused.text
