"""The administrators' page: every production and account, unpublish/publish, account settings,
invitations; driven through the app in-process."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from cite_live.models import Invitation, Production, User
from cite_live.services import Services
from tests.account_fixtures import login, make_user
from tests.test_studio import add_production, page_token

GIB = 1024**3


@pytest.fixture
def admin_csrf(services: Services, client: TestClient) -> str:
    make_user(services, "admin@example.org", "admin")
    return login(client, "admin@example.org")


def user_row(services: Services, email: str) -> User:
    with services.sessions() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        user.artists  # noqa: B018 - loaded before the session closes
        session.expunge(user)
        return user


def test_only_admins_get_in(services: Services, client: TestClient) -> None:
    anonymous = client.get("/admin", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fadmin"
    make_user(services, "nora@example.org")
    csrf = login(client, "nora@example.org")
    assert client.get("/admin").status_code == 403
    production_id = add_production(services, None, "Démo")
    refused = client.post(
        f"/admin/productions/{production_id}/unpublish", data={"csrf_token": csrf}
    )
    assert refused.status_code == 403
    assert client.post("/admin/invitations", data={"csrf_token": csrf}).status_code == 403
    with services.sessions() as session:
        assert session.get(Production, production_id).visibility == "public"  # type: ignore[union-attr]


def test_every_production_is_listed_with_filters_and_pages(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    nora = make_user(services, "nora@example.org")
    add_production(services, nora, "Concert de Nora", minutes=500)
    add_production(services, nora, "Secret", visibility="private", minutes=501)
    add_production(
        services, nora, "Cassée", status="failed", minutes=502, job=("failed", 0, "Nope.")
    )
    for n in range(50):
        add_production(services, None, f"Démo {n:02d}", minutes=n)
    page = client.get("/admin")
    assert page.status_code == 200
    assert "53 productions" in page.text
    assert page.text.index("Cassée") < page.text.index("Secret") < page.text.index("Concert de")
    assert "nora@example.org" in page.text and "Démo 49" in page.text
    assert "Démo 02" not in page.text, "50 a page"
    assert "Démo 02" in client.get("/admin?page=2").text
    failed = client.get("/admin?status=failed").text
    assert "Cassée" in failed and "Concert de Nora" not in failed
    private = client.get("/admin?visibility=private").text
    assert "Secret" in private and "Concert de Nora" not in private
    found = client.get("/admin", params={"q": "nora concert"}).text
    assert "1 production" in found and "Concert de Nora" in found


def test_the_list_shows_each_production_s_picture_signed_when_private(
    services: Services, client: TestClient, other_client: TestClient, admin_csrf: str
) -> None:
    public_id = add_production(services, None, "Publique", minutes=1)
    private_id = add_production(services, None, "Privée", visibility="private", minutes=2)
    waiting_id = add_production(services, None, "En cours", status="processing", minutes=3)
    for production_id in (public_id, private_id):
        services.store.put_bytes(f"productions/{production_id}/v1/cover.jpg", b"\xff\xd8jpeg")
    page = client.get("/admin").text
    rows = {
        found.group(1): block
        for block in page.split("<tr data-id=")[1:]
        if (found := re.match(r'"(\w+)"', block))
    }
    site = "http://testserver"
    assert f'src="{site}/media/productions/{public_id}/v1/cover.jpg"' in rows[public_id]
    signed = re.search(r'<img class="studio-item__picture"[^>]* src="([^"]+)"', rows[private_id])
    assert signed is not None and signed.group(1).startswith(f"{site}/media/private/")
    assert client.get(signed.group(1).removeprefix(site)).status_code == 200
    assert other_client.get(f"/media/productions/{private_id}/v1/cover.jpg").status_code == 404
    assert "studio-item__picture--none" in rows[waiting_id] and "<img" not in rows[waiting_id]


def test_unpublish_and_publish_back(
    services: Services, client: TestClient, other_client: TestClient, admin_csrf: str
) -> None:
    production_id = add_production(services, None, "Démo")
    with services.sessions() as session:
        slug = session.get(Production, production_id).slug  # type: ignore[union-attr]
    assert other_client.get(f"/productions/{slug}").status_code == 200
    hidden = client.post(
        f"/admin/productions/{production_id}/unpublish",
        data={"csrf_token": page_token(client, "/admin"), "next": "/admin?visibility=public"},
        follow_redirects=False,
    )
    assert hidden.status_code == 303
    assert hidden.headers["location"] == "/admin?visibility=public&done=saved"
    assert other_client.get(f"/productions/{slug}").status_code == 404
    shown = client.post(
        f"/admin/productions/{production_id}/publish",
        data={"csrf_token": admin_csrf, "next": "https://evil.example/"},
        follow_redirects=False,
    )
    assert shown.headers["location"] == "/admin?done=saved"
    assert other_client.get(f"/productions/{slug}").status_code == 200
    missing = client.post("/admin/productions/nope/publish", data={"csrf_token": admin_csrf})
    assert missing.status_code == 404


def test_an_admin_deletes_any_production_through_the_confirmation(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    nora = make_user(services, "nora@example.org")
    production_id = add_production(services, nora, "À Nora", original=True)
    listing = client.get("/admin").text
    link = f"/studio/productions/{production_id}/delete?next=%2Fadmin"
    assert link in listing
    assert client.get(link).status_code == 200
    done = client.post(
        f"/studio/productions/{production_id}/delete",
        data={"csrf_token": admin_csrf, "next": "/admin"},
        follow_redirects=False,
    )
    assert done.headers["location"] == "/admin?done=deleted"
    with services.sessions() as session:
        assert session.get(Production, production_id) is None
    assert services.store.list(f"originals/{production_id}/") == []


def test_accounts_show_their_role_artists_sign_in_and_storage(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    nora = make_user(services, "nora@example.org", artists=["Nora Ilić", "Trio Nora"])
    # What the store holds counts: an original present, whatever its recorded size.
    production_id = add_production(services, nora, "Grosse capture", original=True)
    with services.sessions.begin() as session:
        session.get(Production, production_id).original_bytes = 3 * GIB // 2  # type: ignore[union-attr]
    make_user(services, "invited@example.org", password=None)
    page = client.get("/admin").text
    row = page[page.index('id="account-') :]
    assert "nora@example.org" in row and "Nora Ilić, Trio Nora" in row
    assert "1,5\u00a0Go sur 50\u00a0Go" in page
    assert "Invité, pas encore de mot de passe" in page
    assert "jamais" in page, "never signed in"
    english = client.get("/admin?lang=en").text
    assert "1.5\u00a0GB of 50\u00a0GB" in english


def test_an_admin_changes_role_artists_quota_and_disables_an_account(
    services: Services, client: TestClient, other_client: TestClient, admin_csrf: str
) -> None:
    nora = make_user(services, "nora@example.org", artists=["Nora Ilić"])
    login(other_client, "nora@example.org")
    assert other_client.get("/studio").status_code == 200
    response = client.post(
        f"/admin/users/{nora}",
        data={
            "csrf_token": admin_csrf,
            "role": "artist",
            "artists": "Nora Ilić\n\n  Trio   Nora \n",
            "quota_gb": "2,5",
            "disabled": "1",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/admin?done=saved#account-{nora}"
    user = user_row(services, "nora@example.org")
    assert sorted(a.name for a in user.artists) == ["Nora Ilić", "Trio Nora"]
    assert user.quota_bytes == int(2.5 * GIB) and user.disabled
    # Signed out at once, on every device.
    assert other_client.get("/studio", follow_redirects=False).status_code == 303
    client.post(
        f"/admin/users/{nora}",
        data={"csrf_token": admin_csrf, "role": "admin", "artists": "", "quota_gb": ""},
    )
    user = user_row(services, "nora@example.org")
    assert (user.role, user.artists, user.quota_bytes, user.disabled) == ("admin", [], None, False)


@pytest.mark.parametrize(
    ("fields", "sentence"),
    [
        ({"quota_gb": "beaucoup"}, "Le quota doit être un nombre de gigaoctets"),
        ({"role": "superuser"}, "Le rôle doit être"),
        ({"artists": "\n".join(f"Groupe {n}" for n in range(21))}, "au plus 20 profils"),
    ],
)
def test_a_refused_account_change_keeps_nothing(
    services: Services, client: TestClient, admin_csrf: str, fields: dict[str, str], sentence: str
) -> None:
    nora = make_user(services, "nora@example.org")
    response = client.post(
        f"/admin/users/{nora}",
        data={"csrf_token": admin_csrf, "role": "artist", "artists": "Nouveau groupe", **fields},
    )
    assert response.status_code == 400
    assert sentence in response.text
    user = user_row(services, "nora@example.org")
    assert (user.role, user.artists, user.quota_bytes) == ("artist", [], None)
    assert "Nouveau groupe" not in client.get("/artists").text


def test_an_admin_cannot_lock_themselves_out(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    me = user_row(services, "admin@example.org").id
    for fields in ({"role": "artist"}, {"role": "admin", "disabled": "1"}):
        response = client.post(f"/admin/users/{me}", data={"csrf_token": admin_csrf, **fields})
        assert response.status_code == 400
        assert "Vous ne pouvez ni retirer votre propre rôle" in response.text
    assert client.get("/admin").status_code == 200
    assert client.post("/admin/users/999999", data={"csrf_token": admin_csrf}).status_code == 404
    assert client.post("/admin/users/abc", data={"csrf_token": admin_csrf}).status_code == 404


def test_an_invitation_creates_the_account_and_shows_its_link_once(
    services: Services, client: TestClient, other_client: TestClient, admin_csrf: str
) -> None:
    response = client.post(
        "/admin/invitations",
        data={
            "csrf_token": admin_csrf,
            "email": " Zoe@Example.org ",
            "role": "artist",
            "artists": "Zoé Nouvelle",
        },
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "private, no-store"
    assert "Compte créé pour zoe@example.org" in response.text
    link = re.search(r"http://testserver/invite/[\w-]+", response.text)
    assert link is not None
    user = user_row(services, "zoe@example.org")
    assert user.password_hash is None and user.role == "artist"
    assert [a.name for a in user.artists] == ["Zoé Nouvelle"]
    with services.sessions() as session:
        assert len(session.scalars(select(Invitation)).all()) == 1
    assert other_client.get(link.group(0).removeprefix("http://testserver")).status_code == 200
    # The same address again: refused in one sentence, with what was typed kept.
    again = client.post(
        "/admin/invitations",
        data={"csrf_token": admin_csrf, "email": "zoe@example.org", "role": "admin"},
    )
    assert again.status_code == 400
    assert 'value="zoe@example.org"' in again.text
    assert len(re.findall(r'class="field-error"', again.text)) == 1
    bad = client.post(
        "/admin/invitations", data={"csrf_token": admin_csrf, "email": "pas une adresse"}
    )
    assert bad.status_code == 400


def test_a_draft_is_shown_as_a_draft_with_what_its_artist_chose(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    """Not as "Privée", which it is only until its artist publishes it."""
    nora = make_user(services, "nora@example.org")
    production_id = add_production(services, nora, "Maquette", visibility="private")
    with services.sessions.begin() as session:
        session.get_one(Production, production_id).publish_as = "unlisted"
    page = client.get("/admin").text
    row = page[page.index(f'data-id="{production_id}"') :]
    row = row[: row.index("</tr>")]
    assert "Brouillon" in row and "Une fois publiée : Non répertoriée" in row
    assert "visibility--private" not in row
