"""The partners' guide (/partners): what it tells the people who build partner sites."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from cite_live.services import Services, open_services
from tests.app_fixtures import make_settings, new_client
from tests.dbs import sqlite_url
from tests.test_pages import publish


def _text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_the_guide_frames_the_newest_listed_production_and_names_its_addresses(
    client: TestClient, services: Services
) -> None:
    with services.sessions.begin() as session:
        publish(session, "Ancienne session", kind="audio")
        newest = publish(session, "Concert de clôture", kind="video")
        publish(session, "Répétition privée", kind="video", visibility="private")
        slug, address = newest.slug, newest.id
    page = client.get("/partners")
    assert page.status_code == 200
    body = page.text
    assert f'src="http://testserver/embed/{address}"' in body
    assert "data-guide-try" in body
    # The oEmbed example asks for the page of the production the live example frames.
    assert f"/oembed?url=http%3A%2F%2Ftestserver%2Fproductions%2F{slug}&amp;format=json" in body
    assert "Répétition privée" not in body
    for name in ("setCurrentTime(seconds)", "getDuration(callback)", "timeupdate", "seeked"):
        assert name in _text(body)


def test_the_guide_speaks_french_and_english(client: TestClient) -> None:
    french = client.get("/partners")
    english = client.get("/partners?lang=en")
    assert "<h1>Pour les sites partenaires</h1>" in french.text
    assert "<h1>For partner sites</h1>" in english.text
    assert 'lang="en"' in english.text
    # Reached from every page's footer.
    assert 'href="/partners"' in client.get("/").text


def test_without_a_production_the_guide_shows_the_code_alone(client: TestClient) -> None:
    body = client.get("/partners").text
    assert "data-guide-try" not in body
    assert "guide.js" not in body
    assert "http://testserver/embed/ID" in body
    assert "L’exemple interactif apparaîtra ici" in _text(body)


@pytest.fixture
def contact_client(tmp_path: Path) -> Iterator[TestClient]:
    contact = "Cité de la Musique <partenaires@citedelamusique.example>"
    services = open_services(
        make_settings(tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_CONTACT=contact)
    )
    with new_client(services) as client:
        yield client
    services.close()


def test_the_contact_address_is_a_mail_link_when_it_is_set(
    client: TestClient, contact_client: TestClient
) -> None:
    assert "mailto:" not in client.get("/partners").text
    body = contact_client.get("/partners").text
    assert (
        '<a href="mailto:partenaires@citedelamusique.example">'
        "partenaires@citedelamusique.example</a>" in body
    )


def test_a_contact_that_is_not_an_address_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"site\.contact"):
        make_settings(tmp_path, sqlite_url(tmp_path), CITE_LIVE_SITE_CONTACT="<script>")


def test_the_live_example_never_frames_a_production_kept_for_some_sites(
    client: TestClient, services: Services
) -> None:
    with services.sessions.begin() as session:
        anywhere = publish(session, "Ouverture du festival", kind="audio")
        kept = publish(session, "Réservée aux partenaires", kind="video")
        kept.embed_policy = "partners"
        address = anywhere.id
    body = client.get("/partners").text
    assert f'src="http://testserver/embed/{address}"' in body
    assert "Réservée aux partenaires" not in body
