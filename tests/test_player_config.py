"""/productions/{slug}/player.json: what the lasting player plays a production with.

The production page's rules (tests/test_access_matrix.py has the statuses for every account):
a public production's settings for anyone, cached as its page is; a private one's for its owner
only, with signed media links and kept by no cache; an unlisted one by its secret address. The
loudness measured at ingest rides along for the player's levelling.
"""

from __future__ import annotations

from starlette.testclient import TestClient

from cite_live.models import MediaVersion, Production
from cite_live.services import Services
from tests.account_fixtures import login, make_user
from tests.test_private_media import make_production, set_visibility, write_stream


def slug_of(services: Services, production_id: str) -> str:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production.slug


def set_loudness(services: Services, production_id: str, lufs: float) -> None:
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        version = session.get(MediaVersion, production.current_version_id)
        assert version is not None
        version.loudness_lufs = lufs


def test_a_public_production_answers_its_player_settings(
    services: Services, client: TestClient
) -> None:
    production_id = make_production(services, "Veillée <b>chantée</b>", "public", None)
    write_stream(services, production_id)
    set_loudness(services, production_id, -23.5)
    slug = slug_of(services, production_id)
    response = client.get(f"/productions/{slug}/player.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "public, max-age=60"
    data = response.json()
    assert data["id"] == production_id and data["slug"] == slug
    assert data["title"] == "Veillée <b>chantée</b>", "data, never markup: the bar sets text"
    assert data["ready"] is True and data["kind"] == "audio"
    assert data["hls_url"].startswith("http://testserver/media/productions/")
    assert data["loudness_lufs"] == -23.5
    assert data["page_url"] == f"http://testserver/productions/{slug}"
    assert data["api_url"] == f"/api/v1/productions/{production_id}"


def test_a_private_production_is_its_owners_alone_with_signed_links(
    services: Services, client: TestClient
) -> None:
    owner = make_user(services, "owner@example.org")
    make_user(services, "other@example.org")
    production_id = make_production(services, "Maquette", "private", owner)
    write_stream(services, production_id)
    slug = slug_of(services, production_id)
    url = f"/productions/{slug}/player.json"
    assert client.get(url).status_code == 404
    login(client, "other@example.org")
    assert client.get(url).status_code == 404
    client.cookies.clear()
    login(client, "owner@example.org")
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    assert response.json()["hls_url"].startswith("http://testserver/media/private/")
    assert response.json()["loudness_lufs"] is None


def test_an_unlisted_production_opens_by_its_address_only(
    services: Services, client: TestClient
) -> None:
    production_id = make_production(services, "Brouillon", "public", None)
    write_stream(services, production_id)
    set_visibility(services, production_id, "unlisted")
    slug = slug_of(services, production_id)
    assert client.get(f"/productions/{slug}/player.json").status_code == 200
    assert client.get(f"/productions/{production_id}/player.json").status_code == 404
    for hostile in ("nope", "%3Cscript%3E", "..%2F..%2Fetc", "9" * 400):
        assert client.get(f"/productions/{hostile}/player.json").status_code == 404
