"""User content in the other language than the page's carries its own ``lang``: titles and
descriptions that fall back, tags (whose English names admins give on /admin/tags) and
artists' disciplines (a known one is shown in the page's language, another as typed)."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from cite_live.models import Artist, Production, Tag
from cite_live.services import Services
from tests.account_fixtures import login, make_user
from tests.test_pages import catalogue  # noqa: F401 - the fixture

pytestmark = pytest.mark.usefixtures("catalogue")


def tag_id(services: Services, slug: str) -> int:
    with services.sessions() as session:
        return session.scalars(select(Tag.id).where(Tag.slug == slug)).one()


def name_en(services: Services, slug: str) -> str | None:
    with services.sessions() as session:
        return session.scalars(select(Tag.name_en).where(Tag.slug == slug)).one()


@pytest.fixture
def admin_csrf(services: Services, client: TestClient) -> str:
    make_user(services, "admin@example.org", "admin")
    return login(client, "admin@example.org")


def test_english_pages_mark_a_tag_without_english_name_as_french(client: TestClient) -> None:
    production = client.get("/productions/nuit-electro?lang=en").text
    assert '<a href="/tags/electro" lang="fr">Électro</a>' in production
    assert '<h1 lang="fr">Électro</h1>' in client.get("/tags/electro?lang=en").text
    index = client.get("/tags?lang=en").text
    assert re.search(
        r'<a href="/tags/electro" lang="fr">Électro <span class="count" lang="en">', index
    )
    # In French the name is the page's own language: no attribute.
    assert '<a href="/tags/electro">Électro</a>' in client.get("/productions/nuit-electro").text
    assert "<h1>Électro</h1>" in client.get("/tags/electro").text


def test_an_admin_gives_a_tag_its_english_name(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    listing = client.get("/admin/tags?lang=en")
    assert listing.status_code == 200
    assert 'id="tag-' in listing.text and "Électro" in listing.text and "Folk" in listing.text
    electro = tag_id(services, "electro")
    saved = client.post(
        f"/admin/tags/{electro}",
        data={"csrf_token": admin_csrf, "name_en": "  Electronic   music "},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/admin/tags?done=tag_saved#tag-{electro}"
    assert name_en(services, "electro") == "Electronic music"
    notice = html.unescape(client.get("/admin/tags?done=tag_saved&lang=en").text)
    assert "The tag's English name is saved." in notice
    english = client.get("/productions/nuit-electro?lang=en").text
    assert '<a href="/tags/electro">Electronic music</a>' in english
    assert "<h1>Electronic music</h1>" in client.get("/tags/electro?lang=en").text
    assert 'term="electro" label="Electronic music"' in client.get("/feed.atom?lang=en").text
    assert 'term="electro" label="Électro"' in client.get("/feed.atom?lang=fr").text
    # French pages keep the French name.
    assert "<h1>Électro</h1>" in client.get("/tags/electro?lang=fr").text
    assert "Electronic music" not in client.get("/productions/nuit-electro?lang=fr").text
    # Emptied, it is gone again.
    client.post(f"/admin/tags/{electro}", data={"csrf_token": admin_csrf, "name_en": "   "})
    assert name_en(services, "electro") is None


def test_a_refused_name_comes_back_with_a_sentence_and_markup_stays_text(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    folk = tag_id(services, "folk")
    too_long = client.post(
        f"/admin/tags/{folk}", data={"csrf_token": admin_csrf, "name_en": "x" * 101}
    )
    assert too_long.status_code == 400
    assert "Le nom en anglais est trop long" in too_long.text
    assert 'aria-invalid="true"' in too_long.text and "x" * 101 in too_long.text
    assert name_en(services, "folk") is None
    markup = "<script>alert(1)</script>"
    client.post(f"/admin/tags/{folk}", data={"csrf_token": admin_csrf, "name_en": markup})
    assert name_en(services, "folk") == markup
    page = client.get("/admin/tags").text + client.get("/tags?lang=en").text
    assert markup not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@pytest.mark.parametrize("bad", ["999999", "99999999999999999999", "-1", "0", "abc"])
def test_a_tag_that_does_not_exist_is_a_404(client: TestClient, admin_csrf: str, bad: str) -> None:
    response = client.post(f"/admin/tags/{bad}", data={"csrf_token": admin_csrf, "name_en": "X"})
    assert response.status_code == 404


def test_only_admins_with_the_form_token_change_a_name(
    services: Services, client: TestClient
) -> None:
    folk = tag_id(services, "folk")
    assert client.get("/admin/tags", follow_redirects=False).status_code == 303
    make_user(services, "nora@example.org")
    csrf = login(client, "nora@example.org")
    assert client.get("/admin/tags").status_code == 403
    refused = client.post(f"/admin/tags/{folk}", data={"csrf_token": csrf, "name_en": "Folk"})
    assert refused.status_code == 403
    make_user(services, "admin@example.org", "admin")
    login(client, "admin@example.org")
    forged = client.post(f"/admin/tags/{folk}", data={"csrf_token": "forged", "name_en": "Folk"})
    assert forged.status_code == 403
    assert name_en(services, "folk") is None


def test_a_title_and_description_that_fall_back_are_marked_with_their_language(
    client: TestClient,
) -> None:
    home = client.get("/?lang=en").text
    assert '<span class="card__title" lang="fr">Session acoustique</span>' in home
    assert '<span class="card__title">Electro Night</span>' in home
    french = client.get("/").text
    assert '<span class="card__title">Session acoustique</span>' in french
    assert '<span class="card__title">Nuit Électro</span>' in french
    page = client.get("/productions/nuit-electro?lang=en").text
    assert '<section class="prose description" aria-label="Description">' in page
    feed = client.get("/feed.atom?lang=en").text
    assert '<title type="text" xml:lang="fr">Session acoustique</title>' in feed
    assert '<title type="text">Electro Night</title>' in feed


def set_profile(services: Services, slug: str, **values: object) -> None:
    with services.sessions.begin() as session:
        artist = session.scalars(select(Artist).where(Artist.slug == slug)).one()
        for name, value in values.items():
            setattr(artist, name, value)


def test_known_disciplines_are_shown_in_the_page_language(client: TestClient) -> None:
    english = client.get("/artists/elodie-faure?lang=en").text
    assert "<span>Classical music, Electro</span>" in english
    assert "<span>Musique classique, Électro</span>" in client.get("/artists/elodie-faure").text
    artists = client.get("/artists?lang=en").text
    assert "Classical music, Electro · Romans-sur-Isère" in artists


def test_other_disciplines_are_shown_as_typed_in_the_profile_language(
    services: Services, client: TestClient
) -> None:
    set_profile(services, "elodie-faure", disciplines=["Vielle à roue", "Bourrée"])
    english = client.get("/artists/elodie-faure?lang=en").text
    assert '<span lang="fr">Vielle à roue, Bourrée</span>' in english
    assert "<span>Vielle à roue, Bourrée</span>" in client.get("/artists/elodie-faure").text
    # A profile written in English only: its typed disciplines are English.
    set_profile(services, "elodie-faure", bio="", bio_en="Cellist.", disciplines=["Hurdy-gurdy"])
    assert '<span lang="en">Hurdy-gurdy</span>' in client.get("/artists/elodie-faure").text
    assert "<span>Hurdy-gurdy</span>" in client.get("/artists/elodie-faure?lang=en").text
    # Case and accents do not hide a known one; markup stays text.
    set_profile(services, "elodie-faure", disciplines=["VIOLONCELLE", "<b>x</b>"])
    page = client.get("/artists/elodie-faure?lang=en").text
    assert "<span>Cello, &lt;b&gt;x&lt;/b&gt;</span>" in page


def test_the_admin_list_marks_titles_that_fall_back(client: TestClient, admin_csrf: str) -> None:
    english = client.get("/admin?lang=en").text
    assert re.search(r'<a href="[^"]+" lang="fr">Session acoustique</a>', english)
    assert re.search(r'<a href="[^"]+">Electro Night</a>', english)
    assert re.search(r'<a href="[^"]+">Session acoustique</a>', client.get("/admin").text)


def test_a_venue_description_written_in_french_is_marked_on_english_pages(
    client: TestClient,
) -> None:
    english = client.get("/venues/la-cite?lang=en").text
    assert '<div class="prose" lang="fr"><p>Studios et scène.</p></div>' in english
    assert '<div class="prose"><p>Studios et scène.</p></div>' in client.get("/venues/la-cite").text


def test_the_discipline_filter_marks_a_known_one_typed_in_the_other_language(
    client: TestClient,
) -> None:
    english = client.get("/artists?lang=en").text
    assert '<option value="Musique classique" lang="fr">Musique classique</option>' in english
    # "Jazz" and "Électro" are both languages' words, but for an accent.
    assert '<option value="Jazz">Jazz</option>' in english
    assert '<option value="Électro">Électro</option>' in english
    assert '<option value="Musique classique">' in client.get("/artists").text


def test_the_embedded_player_marks_a_title_that_falls_back(
    services: Services, client: TestClient
) -> None:
    with services.sessions.begin() as session:
        audio = session.scalars(
            select(Production).where(Production.title == "Session acoustique")
        ).one()
        video = session.scalars(select(Production).where(Production.title == "Nuit Électro")).one()
        audio_id, video_id = audio.id, video.id
        video.title_en = None
    english = client.get(f"/embed/{audio_id}?lang=en").text
    assert re.search(r'class="cl-player__title"[^>]* lang="fr">Session acoustique</a>', english)
    assert re.search(
        r'class="cl-player__title"[^>]*">Session acoustique</a>',
        client.get(f"/embed/{audio_id}").text,
    )
    video_page = client.get(f"/embed/{video_id}?lang=en").text
    assert re.search(r'<video [^>]*aria-label="Nuit Électro" lang="fr">', video_page)
