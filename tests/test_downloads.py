"""Downloads: a production's .m4a, where its artist allows it and its licence permits it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from cite_live.catalogue import download_key
from cite_live.models import Production
from cite_live.services import Services, open_services
from cite_live.storage import S3Store
from cite_live.web.catalogue import attachment
from tests.account_fixtures import login, make_user
from tests.app_fixtures import make_settings, new_client
from tests.dbs import sqlite_url
from tests.test_api import DOWNLOAD_BYTES, publish_fake
from tests.test_pages import text_of
from tests.test_studio import Owner, edit_form


def allow(services: Services, production_id: str, **fields: Any) -> str:
    """Let listeners save the production (or set ``fields``); its slug."""
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.allow_download = True
        for name, value in fields.items():
            setattr(production, name, value)
        session.flush()
        return production.slug


def slug_of(services: Services, production_id: str) -> str:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production.slug


@pytest.fixture
def allowed(services: Services) -> str:
    """A public audio production under CC BY 4.0 whose artist allows downloads: its slug."""
    production_id = publish_fake(
        services, "Nuit Électro", artists=["Élodie Fauré", "Marc Lenoir"], download=True
    )
    return allow(services, production_id)


def test_an_allowed_production_is_saved_under_its_artists_and_title(
    client: TestClient, allowed: str
) -> None:
    response = client.get(f"/productions/{allowed}/download")
    assert response.status_code == 200
    assert response.content == b"\0" * DOWNLOAD_BYTES
    assert response.headers["content-type"] == "audio/mp4"
    assert response.headers["content-disposition"] == (
        'attachment; filename="Elodie Faure, Marc Lenoir - Nuit Electro.m4a"; '
        "filename*=UTF-8''%C3%89lodie%20Faur%C3%A9%2C%20Marc%20Lenoir%20-%20Nuit%20%C3%89lectro.m4a"
    )
    # A file is no page: never kept by the site's page cache nor a shared one.
    assert response.headers["cache-control"].startswith("private")
    # What a browser makes of the header: the exact name, accents and all.
    star = response.headers["content-disposition"].split("filename*=UTF-8''")[1]
    assert unquote(star) == "Élodie Fauré, Marc Lenoir - Nuit Électro.m4a"
    head = client.head(f"/productions/{allowed}/download")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(DOWNLOAD_BYTES)


def test_a_download_resumes_with_range(client: TestClient, allowed: str) -> None:
    part = client.get(f"/productions/{allowed}/download", headers={"Range": "bytes=10-19"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 10-19/{DOWNLOAD_BYTES}"
    assert part.content == b"\0" * 10
    assert "attachment" in part.headers["content-disposition"]
    past_the_end = client.get(
        f"/productions/{allowed}/download", headers={"Range": f"bytes={DOWNLOAD_BYTES * 9}-"}
    )
    assert past_the_end.status_code == 416


@pytest.mark.parametrize(
    ("filename", "header"),
    [
        ("Alice - Aube.m4a", 'attachment; filename="Alice - Aube.m4a"'),
        (
            "Zoé - Été.m4a",
            'attachment; filename="Zoe - Ete.m4a"; '
            "filename*=UTF-8''Zo%C3%A9%20-%20%C3%89t%C3%A9.m4a",
        ),
        # Nothing of it is ASCII: a plain name all the same, the exact one beside it.
        (
            "東京.m4a",
            "attachment; filename=\"production.m4a\"; filename*=UTF-8''%E6%9D%B1%E4%BA%AC.m4a",
        ),
    ],
)
def test_the_attachment_header_follows_rfc_6266(filename: str, header: str) -> None:
    assert attachment(filename) == header


def test_markup_and_path_characters_never_reach_the_file_name(
    services: Services, client: TestClient
) -> None:
    production_id = publish_fake(
        services,
        '../../etc/passwd "<b>live</b>"\r\nSet-Cookie: x=1',
        artists=["AC/DC\\Tribute"],
        download=True,
    )
    slug = allow(services, production_id)
    disposition = client.get(f"/productions/{slug}/download").headers["content-disposition"]
    name = re.fullmatch(r'attachment; filename="([^"]*)"', disposition)
    assert name is not None, disposition
    assert name.group(1) == "AC DC Tribute - .. .. etc passwd b live b Set-Cookie x=1.m4a"
    assert "set-cookie" not in {k.lower() for k in client.cookies}


def test_refused_unless_allowed_by_the_artist_and_permitted_by_the_licence(
    services: Services, client: TestClient
) -> None:
    never = publish_fake(services, "Jamais", download=True)
    reserved = publish_fake(services, "Réservé", download=True)
    allow(services, reserved, licence="all-rights-reserved")
    unsaid = publish_fake(services, "Sans licence", download=True)
    allow(services, unsaid, licence=None)
    video = publish_fake(services, "Clip", kind="video")
    allow(services, video)
    for production_id in (never, reserved, unsaid, video):
        slug = slug_of(services, production_id)
        response = client.get(f"/productions/{slug}/download")
        assert response.status_code == 404, production_id
        assert "Il n’y a pas de fichier à récupérer à cette adresse." in text_of(response.text)
        assert "Récupérer le fichier" not in text_of(client.get(f"/productions/{slug}").text)
        api = client.get(f"/api/v1/productions/{production_id}").json()
        assert api["attachment_url"] is None
    # Under CC BY-NC-ND or CC0 a copy may be shared: allowed.
    for licence in ("CC-BY-NC-ND-4.0", "CC0-1.0"):
        allow(services, reserved, licence=licence)
        assert client.get(f"/productions/{slug_of(services, reserved)}/download").status_code == 200


def test_private_drafts_and_failed_productions_are_never_downloaded(
    services: Services, client: TestClient
) -> None:
    owner = make_user(services, "nora@example.org", artists=["Élodie Fauré"])
    private = publish_fake(services, "Privé", visibility="private", download=True)
    draft = publish_fake(services, "Brouillon", visibility="private", download=True)
    failed = publish_fake(services, "Échoué", status="failed", download=True)
    allow(services, private, owner_id=owner)
    allow(services, draft, owner_id=owner, publish_as="public")
    allow(services, failed, owner_id=owner)
    slugs = [slug_of(services, p) for p in (private, draft, failed)]
    for slug in slugs:
        assert client.get(f"/productions/{slug}/download").status_code == 404
    # Not even to their owner, who may see their pages.
    login(client, "nora@example.org")
    for slug in slugs:
        assert client.get(f"/productions/{slug}/download").status_code == 404
        page = client.get(f"/productions/{slug}")
        assert "Récupérer le fichier" not in text_of(page.text)


def test_an_unlisted_production_is_downloaded_at_its_secret_address_only(
    services: Services, client: TestClient
) -> None:
    production_id = publish_fake(services, "En coulisse", visibility="unlisted", download=True)
    slug = allow(services, production_id)
    assert client.get(f"/productions/{slug}/download").status_code == 200
    assert client.get(f"/productions/{production_id}/download").status_code == 404
    assert client.get("/productions/en-coulisse/download").status_code == 404


def test_a_former_address_leads_to_the_file_at_the_present_one(
    services: Services, client: TestClient, allowed: str
) -> None:
    with services.sessions.begin() as session:
        production = session.scalars(select(Production).where(Production.slug == allowed)).one()
        production.title = "Nuit Électro, deuxième"
    moved = client.get(f"/productions/{allowed}/download", follow_redirects=False)
    assert moved.status_code == 301
    assert moved.headers["location"] == "/productions/nuit-electro-deuxieme/download"


@pytest.mark.parametrize(
    "slug",
    ["<script>", "9" * 300, "-1", "nuit-electro%00", "..%2F..%2Fetc", "nuit-electro'--"],
)
def test_hostile_addresses_get_a_404(client: TestClient, allowed: str, slug: str) -> None:
    assert client.get(f"/productions/{slug}/download").status_code == 404


def test_the_page_and_the_api_offer_the_file(client: TestClient, allowed: str) -> None:
    page = client.get(f"/productions/{allowed}").text
    link = f'<a class="button" href="/productions/{allowed}/download" download>'
    assert link in page
    assert "Récupérer le fichier (.m4a)" in text_of(page)
    assert "Download (.m4a)" in text_of(client.get(f"/productions/{allowed}?lang=en").text)
    # The link sits among the facts, after the licence.
    assert page.index("Licence") < page.index(link) < page.index("</aside>")
    api = client.get("/api/v1/productions?q=nuit").json()["items"][0]
    assert api["allow_download"] is True
    assert api["attachment_url"] == f"http://testserver/productions/{allowed}/download"


def test_the_page_cache_leaves_downloads_alone(tmp_path: Path) -> None:
    """With the page cache on, a page goes through it; the file never does (a second listener
    would wait for the first one's download of it to end)."""
    services = open_services(
        make_settings(
            tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_PAGE_CACHE_SECONDS="30"
        )
    )
    try:
        slug = allow(services, publish_fake(services, "Aube", download=True))
        with new_client(services) as client:
            assert client.get(f"/productions/{slug}").headers["x-cache"] == "miss"
            for _ in range(2):
                response = client.get(f"/productions/{slug}/download")
                assert response.status_code == 200 and "x-cache" not in response.headers
    finally:
        services.close()


# --- the studio's checkbox ---------------------------------------------------------------------


@pytest.fixture
def nora(services: Services, client: TestClient) -> Owner:
    user_id = make_user(services, "nora@example.org", artists=["Nora Ilić"])
    return Owner("nora@example.org", user_id, login(client, "nora@example.org"))


def owned(services: Services, owner: Owner) -> str:
    production_id = publish_fake(
        services, "Nuit au Cargo", artists=["Nora Ilić"], download=True, duration=300.0
    )
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.owner_id = owner.id
    return production_id


def allow_download_of(services: Services, production_id: str) -> bool:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production.allow_download


def test_the_studio_checkbox_saves_under_a_licence_that_permits_it(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = owned(services, nora)
    url = f"/studio/productions/{production_id}"
    form = client.get(url).text
    assert re.search(
        r'<input type="checkbox" name="allow_download" value="1" aria-describedby', form
    )
    assert "Permettre de récupérer le fichier (.m4a) depuis sa page" in text_of(form)
    saved = client.post(url, data=edit_form(nora, allow_download="1"), follow_redirects=False)
    assert saved.status_code == 303
    assert allow_download_of(services, production_id)
    assert 'name="allow_download" value="1" checked' in client.get(url).text
    slug = slug_of(services, production_id)
    assert client.get(f"/productions/{slug}/download").status_code == 200
    # Unticked (a browser sends nothing for it): listeners may no longer save it.
    client.post(url, data=edit_form(nora), follow_redirects=False)
    assert not allow_download_of(services, production_id)
    assert (
        client.get(f"/productions/{slug_of(services, production_id)}/download").status_code == 404
    )


@pytest.mark.parametrize("licence", ["all-rights-reserved", ""])
def test_the_studio_refuses_downloads_under_all_rights_reserved(
    services: Services, client: TestClient, nora: Owner, licence: str
) -> None:
    production_id = owned(services, nora)
    url = f"/studio/productions/{production_id}"
    refused = client.post(url, data=edit_form(nora, allow_download="1", licence=licence))
    assert refused.status_code == 400
    assert (
        "On ne peut récupérer le fichier que sous une licence qui permet de le partager : "
        "choisissez une licence Creative Commons ou CC0, ou décochez cette case."
    ) in text_of(refused.text)
    assert re.search(r'name="allow_download" value="1" checked aria-invalid="true"', refused.text)
    assert not allow_download_of(services, production_id)


def test_another_account_cannot_allow_downloads_of_someone_elses_production(
    services: Services, client: TestClient, other_client: TestClient, nora: Owner
) -> None:
    production_id = owned(services, nora)
    make_user(services, "paul@example.org", artists=["Paul Vercors"])
    paul = login(other_client, "paul@example.org")
    form = {**edit_form(nora, allow_download="1"), "csrf_token": paul}
    stolen = other_client.post(f"/studio/productions/{production_id}", data=form)
    assert stolen.status_code == 404
    assert not allow_download_of(services, production_id)


# --- on PostgreSQL too, and from S3 -----------------------------------------------------------


def test_downloads_on_either_database(tmp_path: Path, any_database_url: str) -> None:
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        production_id = publish_fake(services, "Aube", download=True)
        with new_client(services) as client:
            slug = slug_of(services, production_id)
            assert client.get(f"/productions/{slug}/download").status_code == 404
            allow(services, production_id)
            assert client.get(f"/productions/{slug}/download").status_code == 200
            with services.sessions() as session:
                production = session.get(Production, production_id)
                assert production is not None and download_key(production) is not None
    finally:
        services.close()


@pytest.fixture
def s3_services(
    tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_STORAGE_BACKEND="s3",
        CITE_LIVE_S3_ENDPOINT_URL=s3_server.endpoint_url,
        CITE_LIVE_S3_BUCKET=s3_server.bucket,
        CITE_LIVE_S3_PREFIX=f"downloads-{tmp_path.name}",
        CITE_LIVE_MEDIA_SIGNED_URL_SECONDS="60",
    )
    services = open_services(settings)
    yield services
    assert isinstance(services.store, S3Store)
    services.store.set_private_prefixes([])
    services.close()


def test_from_s3_a_signed_link_names_the_file(s3_services: Services) -> None:
    production_id = publish_fake(s3_services, "Été indien", artists=["Zoé"], download=True)
    slug = allow(s3_services, production_id)
    with new_client(s3_services) as client:
        moved = client.get(f"/productions/{slug}/download", follow_redirects=False)
    assert moved.status_code == 302
    assert moved.headers["cache-control"] == "private, no-store"
    location = moved.headers["location"]
    asked = parse_qs(urlsplit(location).query)["response-content-disposition"][0]
    assert asked == attachment("Zoé - Été indien.m4a")
    # The bucket itself answers with that name, and the bytes.
    fetched = httpx.get(location)
    assert fetched.status_code == 200
    assert fetched.content == b"\0" * DOWNLOAD_BYTES
    assert fetched.headers["content-disposition"] == attachment("Zoé - Été indien.m4a")
