"""The interface in French and English: negotiation, the switch, the catalogues and plurals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import jinja2
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.plurals import get_plural
from babel.messages.pofile import read_po
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.testclient import TestClient

from cite_live import i18n
from cite_live.services import Services
from cite_live.settings import Settings
from cite_live.web.app import create_app
from cite_live.web.templating import make_environment

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url="http://testserver") as c:
        yield c


def page_language(
    client: TestClient, path: str = "/", headers: dict[str, str] | None = None
) -> str:
    body = client.get(path, headers=headers).text
    if '<html lang="en">' in body:
        assert "Latest productions" in body
        return "en"
    assert '<html lang="fr">' in body
    assert "Dernières productions" in body
    return "fr"


def test_french_is_the_default(client: TestClient) -> None:
    assert page_language(client) == "fr"
    assert page_language(client, headers={"Accept-Language": "de-DE, es;q=0.8"}) == "fr"


def test_accept_language_is_honoured_with_its_weights(client: TestClient) -> None:
    assert page_language(client, headers={"Accept-Language": "en-GB,en;q=0.9"}) == "en"
    assert page_language(client, headers={"Accept-Language": "de, en;q=0.5, fr;q=0.7"}) == "fr"
    assert page_language(client, headers={"Accept-Language": "fr;q=0, en-US;q=0.1"}) == "en"


def test_the_cookie_beats_accept_language_and_the_query_beats_both(client: TestClient) -> None:
    client.cookies.set("lang", "en")
    assert page_language(client, headers={"Accept-Language": "fr"}) == "en"
    assert page_language(client, "/?lang=fr", headers={"Accept-Language": "en"}) == "fr"
    client.cookies.set("lang", "klingon")
    assert page_language(client, headers={"Accept-Language": "en"}) == "en"


def test_the_switch_sets_the_cookie_and_goes_back_where_the_visitor_was(
    client: TestClient,
) -> None:
    response = client.get("/lang/en?next=/artists%3Fletter%3De", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/artists?letter=e"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("lang=en;")
    assert "Path=/" in cookie and "SameSite=lax" in cookie and "Max-Age=31536000" in cookie
    assert page_language(client) == "en"
    back = client.get("/lang/fr?next=/", follow_redirects=False)
    assert back.headers["location"] == "/"
    assert page_language(client) == "fr"


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example", "/\\evil.example", "http:evil.example"]
)
def test_the_switch_never_sends_visitors_to_another_site(client: TestClient, target: str) -> None:
    response = client.get("/lang/en", params={"next": target}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_the_switch_in_the_header_points_at_the_other_language_and_this_page(
    client: TestClient,
) -> None:
    body = client.get("/artists?letter=e").text
    assert 'href="/lang/en?next=%2Fartists%3Fletter%3De"' in body
    assert 'hreflang="en" lang="en"' in body
    english = client.get("/artists?letter=e", headers={"Accept-Language": "en"}).text
    assert 'href="/lang/fr?next=%2Fartists%3Fletter%3De"' in english
    assert ">Français</a>" in english


def test_html_answers_say_their_language_and_what_it_depends_on(client: TestClient) -> None:
    response = client.get("/", headers={"Accept-Language": "en"})
    assert response.headers["content-language"] == "en"
    vary = {v.strip().lower() for v in response.headers["vary"].split(",")}
    assert {"cookie", "accept-language"} <= vary
    feedless = client.get("/api/v1/productions")
    assert "content-language" not in feedless.headers


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("fr", ["0 production", "1 production", "2 productions", "1 000 000 de productions"]),
        ("en", ["0 productions", "1 production", "2 productions", "1,000,000 productions"]),
    ],
)
def test_plural_forms_in_templates_with_the_three_french_forms(
    settings: Settings, lang: str, expected: list[str]
) -> None:
    environment = make_environment(settings)
    template = environment.from_string(
        '{{ ngettext("%(num)s production", "%(num)s productions", n, num=n | number) }}'
    )
    shown = [template.render(lang=lang, n=n) for n in (0, 1, 2, 1_000_000)]
    # Babel writes French thousands with a narrow no-break space.
    assert [s.replace("\u202f", " ") for s in shown] == expected


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        (
            "fr",
            [
                "%(num)s production",
                "%(num)s production",
                "%(num)s productions",
                "%(num)s de productions",
            ],
        ),
        (
            "en",
            [
                "%(num)s productions",
                "%(num)s production",
                "%(num)s productions",
                "%(num)s productions",
            ],
        ),
    ],
)
def test_plural_forms_in_python_code(lang: str, expected: list[str]) -> None:
    shown = [
        i18n.ngettext("%(num)s production", "%(num)s productions", n, lang)
        for n in (0, 1, 2, 10**6)
    ]
    assert shown == expected


def test_french_catalogue_declares_the_plural_forms_babel_knows() -> None:
    catalog = read_catalogue("fr")
    assert catalog.num_plurals == 3
    assert catalog.plural_expr == get_plural("fr").plural_expr
    for message in catalog:
        if message.id and message.pluralizable:
            assert len(message.string) == 3 and all(message.string), message.id


def test_the_english_catalogue_says_what_the_message_ids_say() -> None:
    """The ids are the English interface: a plural's singular in the singular's place."""
    for message in read_catalogue("en"):
        if message.id:
            expected = tuple(message.id) if message.pluralizable else message.id
            assert message.string == expected, message.id


def read_catalogue(lang: str) -> Catalog:
    with (i18n.LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=lang)


def _extracted_messages() -> set[str | tuple[str, str]]:
    with (i18n.LOCALE_DIR / "babel.cfg").open() as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found: set[str | tuple[str, str]] = set()

    def only_sources(path: str) -> bool:
        # The patterns only name cite_live/ and web/templates/: no need to walk the rest.
        relative = Path(path).relative_to(ROOT).as_posix()
        return relative in ("", "cite_live", "web", "web/templates") or relative.startswith(
            ("cite_live/", "web/templates/")
        )

    for _filename, _line, message, _comments, _context in extract_from_dir(
        str(ROOT), method_map, options_map, directory_filter=only_sources
    ):
        found.add(message if isinstance(message, str) else (message[0], message[1]))
    return found


def test_every_interface_string_is_translated_in_both_catalogues() -> None:
    extracted = _extracted_messages()
    assert "Latest productions" in extracted
    assert ("%(num)s production", "%(num)s productions") in extracted
    for lang in i18n.LANGUAGES:
        catalog = read_catalogue(lang)
        missing = []
        for message in extracted:
            key = message if isinstance(message, str) else message[0]
            entry = catalog.get(key)
            strings = entry.string if entry is not None else ""
            if entry is None or not (all(strings) if isinstance(strings, tuple) else strings):
                missing.append(message)
        assert not missing, f"untranslated in {lang}: {sorted(map(str, missing))}"


def test_python_code_translates_in_the_current_language() -> None:
    assert i18n.gettext("Venues", "fr") == "Lieux"
    assert i18n.gettext("Venues", "en") == "Venues"
    assert i18n.gettext("Venues", "de") == "Lieux"
    i18n.set_current_language("en")
    try:
        assert i18n.gettext("Venues") == "Venues"
    finally:
        i18n.set_current_language("fr")
    assert i18n.gettext("Venues") == "Lieux"


def test_python_code_in_a_handler_speaks_the_request_language(services: Services) -> None:
    app = create_app(services.settings, services)

    async def probe(request: Request) -> PlainTextResponse:
        return PlainTextResponse(i18n.gettext("Venues") + " " + request.state.lang)

    app.add_route("/probe", probe)
    with TestClient(app) as client:
        assert client.get("/probe?lang=en").text == "Venues en"
        assert client.get("/probe").text == "Lieux fr"
        assert client.get("/probe", headers={"Accept-Language": "en"}).text == "Venues en"


@pytest.mark.parametrize(
    ("fr", "en", "lang", "expected"),
    [
        ("Nuit", "Night", "fr", "Nuit"),
        ("Nuit", "Night", "en", "Night"),
        ("Nuit", None, "en", "Nuit"),
        ("Nuit", "  ", "en", "Nuit"),
        ("", "Night", "fr", "Night"),
        (None, None, "fr", ""),
    ],
)
def test_pick_shows_the_visitor_language_and_falls_back_to_the_other(
    fr: str | None, en: str | None, lang: str, expected: str
) -> None:
    assert i18n.pick(fr, en, lang) == expected


def test_templates_escape_what_they_are_given_to_translate(settings: Settings) -> None:
    environment = make_environment(settings)
    rendered = environment.from_string('{{ _("Productions of %(name)s", name=x) }}').render(
        lang="fr", x="<script>alert(1)</script>"
    )
    assert rendered == "Productions de &lt;script&gt;alert(1)&lt;/script&gt;"
    assert isinstance(environment.undefined, type) and issubclass(
        environment.undefined, jinja2.StrictUndefined
    )


# --- one word per thing -------------------------------------------------------------------------

# The glossary at the top of the French catalogue, as words that must not come back: each
# pattern (case-insensitive) with what the site says instead.
FORBIDDEN = {
    "fr": {
        r"\bsessions?\b(?! studio)": "production (« Session studio » is a type's name)",
        r"setlist": "programme",
        r"t[ée]l[ée]vers": "envoyer, envoi",
        r"t[ée]l[ée]charg": "envoyer, envoi",
        r"d[ée]pos": "envoyer, envoi",
        r"mettre en ligne|mis en ligne": "envoyer, envoi",
        r"captation": "production, enregistrement",
        r"type de session": "type",
    },
    "en": {
        r"(?<!studio )\bsessions?\b": "production (“Studio session” is a type's name)",
        r"track ?list": "setlist",
        r"\bcaptures?\b": "recording",
    },
}


def _visible_strings(lang: str) -> Iterator[tuple[str, str]]:
    for message in read_catalogue(lang):
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            yield msgid, string


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_each_thing_has_one_word_in_each_catalogue(lang: str) -> None:
    found = [
        f"{string!r} ({instead})"
        for msgid, string in _visible_strings(lang)
        for pattern, instead in FORBIDDEN[lang].items()
        if re.search(pattern, string, re.IGNORECASE)
    ]
    assert found == [], f"words the {lang} glossary replaced came back: {found}"


def test_the_french_programme_is_only_the_setlist() -> None:
    """« Programme » is the setlist's word: an executable file is « un logiciel », and a
    producer's credit is not « Production », the catalogue's word for what it lists."""
    misused = [
        string
        for msgid, string in _visible_strings("fr")
        if re.search(r"\bprogrammes?\b", string, re.IGNORECASE) and "setlist" not in msgid.lower()
    ]
    assert misused == []
    assert "production" not in i18n.gettext("Producer", "fr").lower()


def test_the_glossary_is_written_where_translators_read() -> None:
    head = (i18n.LOCALE_DIR / "fr" / "LC_MESSAGES" / "messages.po").read_text().split("msgid")[0]
    for word in ("production", "enregistrement", "envoyer", "programme"):
        assert word in head


def _template_text(path: Path) -> str:
    """What a template writes as it is, without markup, expressions, statements or comments."""
    text = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", path.read_text(), flags=re.S)
    return re.sub(r"<[^>]*>", " ", text)


def test_templates_write_no_forbidden_word_outside_the_catalogues() -> None:
    found = [
        f"{path.name}: {pattern}"
        for path in sorted((ROOT / "web" / "templates").glob("*.html"))
        for patterns in FORBIDDEN.values()
        for pattern in patterns
        if re.search(pattern, _template_text(path), re.IGNORECASE)
    ]
    assert found == []
