"""Where a production may play: partner sites, the embed's policy per framer, the card of what
cannot play, oEmbed and discovery of restricted productions, and the admins' partner list."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from alembic import command
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from cite_live import partners
from cite_live.db import alembic_config, make_engine, migrate
from cite_live.models import Partner, Production
from cite_live.partners import PartnerError, PartnerForm
from cite_live.security_headers import parse_policy
from cite_live.services import Services
from cite_live.web.app import create_app
from tests.account_fixtures import login, make_user
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
from tests.test_embeds import fake_production, player_config, tags_named
from tests.test_studio import Owner, edit_form, page_token

SITE = "http://testserver"
PARTNER = "https://festival.example"
STRANGER = "https://stranger.example"
FRAME = {"Sec-Fetch-Dest": "iframe"}


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url=SITE) as c:
        yield c


def add_partner(services: Services, name: str = "Festival", *origins: str) -> int:
    with services.sessions.begin() as session:
        form = PartnerForm(name=name, origins="\n".join(origins or (PARTNER,)))
        return partners.save_partner(session, form).id


def set_policy(services: Services, production_id: str, policy: str) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == production_id).values(embed_policy=policy)
        )


def slug_of(services: Services, production_id: str) -> str:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production.slug


def policy_of(services: Services, production_id: str) -> str:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production.embed_policy


def ancestors(response: httpx.Response) -> str:
    return parse_policy(response.headers["content-security-policy"])["frame-ancestors"]


def is_card(response: httpx.Response) -> bool:
    cards = [a for a in tags_named(response.text, "main") if "data-embed-unavailable" in a]
    return len(cards) == 1 and "data-player" not in response.text


# --- origins -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "origin"),
    [
        ("https://festival.example", "https://festival.example"),
        ("  HTTPS://Festival.Example/  ", "https://festival.example"),
        ("https://festival.example:443", "https://festival.example"),
        ("http://festival.example:80/", "http://festival.example"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://fêtes.example", "https://xn--ftes-gpa.example"),
        ("https://www.ville-romans.fr.", "https://www.ville-romans.fr"),
    ],
)
def test_origins_are_normalised(typed: str, origin: str) -> None:
    assert partners.normalize_origin(typed) == origin


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "festival.example",
        "//festival.example",
        "https://festival.example/blog",
        "https://festival.example/?x=1",
        "https://festival.example?",
        "https://festival.example#top",
        "https://user:secret@festival.example",
        "https://@festival.example",
        "javascript:alert(1)",
        "javascript://festival.example/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://festival.example",
        "https://<b>festival</b>.example",
        'https://festival.example"onload="x',
        "https://*.festival.example",
        "https://festival.example:0",
        "https://festival.example:99999",
        "https://festival.example:-1",
        "https://festival.example:port",
        "https://-festival.example",
        "https://fest ival.example",
        "https://festival.example\\evil.example",
        "https://" + "a" * 5000 + ".example",
        "https:// ",
        "https://[::1",
    ],
)
def test_what_is_not_an_origin_is_refused(typed: str) -> None:
    with pytest.raises(PartnerError) as refused:
        partners.normalize_origin(typed)
    assert refused.value.message == partners.BAD_ORIGIN
    assert len(refused.value.values["origin"]) <= 80


def test_origins_are_read_one_per_line_each_once() -> None:
    typed = "https://festival.example\r\nHTTPS://FESTIVAL.EXAMPLE:443\n\n http://127.0.0.1:8080 ,"
    assert partners.parse_origins(typed) == ["https://festival.example", "http://127.0.0.1:8080"]
    with pytest.raises(PartnerError):
        partners.parse_origins(" \n ")
    with pytest.raises(PartnerError) as refused:
        partners.parse_origins("\n".join(f"https://s{n}.example" for n in range(21)))
    assert refused.value.message == partners.TOO_MANY_ORIGINS


def test_an_origin_belongs_to_one_partner(services: Services) -> None:
    first = add_partner(services, "Festival", PARTNER)
    with services.sessions.begin() as session, pytest.raises(PartnerError) as refused:
        partners.save_partner(session, PartnerForm("Other", "https://FESTIVAL.example/"))
    assert refused.value.values == {"origin": PARTNER, "partner": "Festival"}
    # Saving a partner with its own origins again is no clash.
    with services.sessions.begin() as session:
        partner = session.get(Partner, first)
        assert partner is not None
        partners.save_partner(session, PartnerForm("Festival 2026", PARTNER), partner)
    with services.sessions() as session:
        assert [p.name for p in partners.list_partners(session)] == ["Festival 2026"]


@pytest.mark.parametrize(
    ("allowed", "dest", "referer", "refused"),
    [
        (None, "iframe", f"{STRANGER}/page", False),
        ([SITE], "iframe", f"{STRANGER}/page", True),
        ([SITE, PARTNER], "iframe", f"{PARTNER}/programme?x=1", False),
        ([SITE, PARTNER], "iframe", f"{PARTNER}:443/", False),
        ([SITE, PARTNER], "frame", f"{STRANGER}/", True),
        ([SITE, PARTNER], "IFRAME", f"{STRANGER}/", True),
        # A visit (the address opened in a tab) is no frame: the CSP has nothing to refuse.
        ([SITE], "document", f"{STRANGER}/", False),
        # Without Fetch Metadata or a Referer nothing tells: the CSP alone decides.
        ([SITE], None, f"{STRANGER}/", False),
        ([SITE], "iframe", None, False),
        ([SITE], "iframe", "", False),
        ([SITE], "iframe", "not a url", False),
        ([SITE], "iframe", "https://user@stranger.example/", False),
        # The site frames its own player, whatever address it was reached at.
        (["https://cite.example"], "iframe", f"{SITE}/productions/x", False),
    ],
)
def test_a_refused_framer_is_told_from_fetch_metadata_and_the_referer(
    allowed: list[str] | None, dest: str | None, referer: str | None, refused: bool
) -> None:
    assert partners.framer_refused(allowed, dest, referer, SITE) is refused


# --- the embed, per policy and framer ------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "framer", "status", "frame_ancestors"),
    [
        ("anywhere", None, 200, "*"),
        ("anywhere", STRANGER, 200, "*"),
        ("partners", None, 200, f"'self' {SITE} {PARTNER}"),
        ("partners", PARTNER, 200, f"'self' {SITE} {PARTNER}"),
        ("partners", SITE, 200, f"'self' {SITE} {PARTNER}"),
        ("partners", STRANGER, 403, "*"),
        ("site", None, 200, f"'self' {SITE}"),
        ("site", SITE, 200, f"'self' {SITE}"),
        ("site", PARTNER, 403, "*"),
        ("site", STRANGER, 403, "*"),
    ],
)
def test_each_policy_answers_each_framer(
    client: TestClient,
    services: Services,
    policy: str,
    framer: str | None,
    status: int,
    frame_ancestors: str,
) -> None:
    add_partner(services, "Festival", PARTNER)
    production_id = fake_production(services, "Concert")
    set_policy(services, production_id, policy)
    headers = {**FRAME, "Referer": f"{framer}/programme"} if framer else {}
    response = client.get(f"/embed/{production_id}", headers=headers)
    assert response.status_code == status
    assert ancestors(response) == frame_ancestors
    # Framed either way: no X-Frame-Options to overrule the policy.
    assert "x-frame-options" not in response.headers
    if status == 200:
        config = player_config(response.text)
        expected = None if policy == "anywhere" else frame_ancestors.split()[1:]
        assert config["embed_origins"] == expected
    else:
        assert is_card(response)
        assert (
            tags_named(response.text, "body")[0]["class"] == "cl-unavailable cl-unavailable--video"
        )
        link = tags_named(response.text, "a")[0]
        # The way to where it plays: its page on the site, in a tab of its own.
        assert link["href"] == f"{SITE}/productions/concert"
        assert link["target"] == "_blank" and "noopener" in str(link["rel"])
    if policy != "anywhere":
        cache = response.headers["cache-control"]
        assert "no-store" in cache or "private" in cache
        assert "Referer" in response.headers.get("vary", "") or status != 200


def test_a_forged_referer_gains_nothing(client: TestClient, services: Services) -> None:
    """The stranger who sends the partner's Referer gets the player, but the browser is told
    that only this site and the partner may frame it."""
    add_partner(services, "Festival", PARTNER)
    production_id = fake_production(services, "Concert")
    set_policy(services, production_id, "partners")
    response = client.get(f"/embed/{production_id}", headers={**FRAME, "Referer": PARTNER})
    assert response.status_code == 200
    assert STRANGER not in ancestors(response) and "*" not in ancestors(response)


def test_a_partner_deleted_frames_no_more(client: TestClient, services: Services) -> None:
    partner_id = add_partner(services, "Festival", PARTNER)
    production_id = fake_production(services, "Concert")
    set_policy(services, production_id, "partners")
    framed = {**FRAME, "Referer": f"{PARTNER}/"}
    assert client.get(f"/embed/{production_id}", headers=framed).status_code == 200
    with services.sessions.begin() as session:
        session.execute(text("DELETE FROM partners WHERE id = :id"), {"id": partner_id})
    refused = client.get(f"/embed/{production_id}", headers=framed)
    assert refused.status_code == 403 and is_card(refused)


@pytest.mark.parametrize(
    ("case", "kind"),
    [("unknown", "video"), ("private", "audio"), ("processing", "video"), ("failed", "audio")],
)
def test_what_cannot_play_shows_a_frameable_card(
    client: TestClient, services: Services, case: str, kind: str
) -> None:
    if case == "unknown":
        address = "n0-such-production"
    elif case == "private":
        address = fake_production(services, "Secret", kind=kind, visibility="private")
    else:
        address = fake_production(services, "Pas prêt", kind=kind, status=case)
    response = client.get(f"/embed/{address}", headers={**FRAME, "Referer": f"{PARTNER}/"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert ancestors(response) == "*"
    assert "x-frame-options" not in response.headers
    assert "no-store" in response.headers["cache-control"]
    assert is_card(response)
    assert "Cet enregistrement n’est plus disponible ici" in response.text
    # Nothing tells a hidden production from one that does not exist, not even its kind.
    assert tags_named(response.text, "body")[0]["class"] == "cl-unavailable"
    unknown = client.get("/embed/n0-such-production", headers={**FRAME, "Referer": f"{PARTNER}/"})
    assert response.text.replace(address, "X") == unknown.text.replace("n0-such-production", "X")
    link = tags_named(response.text, "a")[0]
    assert link["href"] == f"{SITE}/" and link["target"] == "_blank"
    english = client.get(f"/embed/{address}?lang=en")
    assert "This recording is no longer available here" in english.text
    assert tags_named(english.text, "html")[0]["lang"] == "en"


def test_a_draft_shows_the_card(client: TestClient, services: Services) -> None:
    production_id = fake_production(services, "Brouillon", visibility="private")
    with services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == production_id).values(publish_as="public")
        )
    response = client.get(f"/embed/{production_id}")
    assert response.status_code == 404 and is_card(response)


def test_the_page_cache_never_hands_one_framers_answer_to_another(
    tmp_path: Path,
) -> None:
    """With the page cache on: an "anywhere" embed is kept (so the cache works here), a
    restricted one never is, whoever asked first."""
    from cite_live.services import open_services

    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_PAGE_CACHE_SECONDS="60"
    )
    services = open_services(settings)
    try:
        add_partner(services, "Festival", PARTNER)
        open_id = fake_production(services, "Ouvert")
        kept_id = fake_production(services, "Gardé")
        set_policy(services, kept_id, "partners")
        with TestClient(create_app(settings, services), base_url=SITE) as client:
            client.get(f"/embed/{open_id}")
            assert client.get(f"/embed/{open_id}").headers["x-cache"] == "hit"
            partner = {**FRAME, "Referer": f"{PARTNER}/"}
            stranger = {**FRAME, "Referer": f"{STRANGER}/"}
            for _ in range(2):
                assert client.get(f"/embed/{kept_id}", headers=partner).status_code == 200
                refused = client.get(f"/embed/{kept_id}", headers=stranger)
                assert refused.status_code == 403 and is_card(refused)
                assert refused.headers.get("x-cache") != "hit"
            # The page's player settings name the partners: a new one shows at once.
            page = f"/productions/{slug_of(services, kept_id)}"
            client.get(page)
            assert client.get(page).headers["x-cache"] == "hit"
            add_partner(services, "Salle", "https://salle.example")
            origins = player_config(client.get(page).text)["embed_origins"]
            assert origins == [SITE, PARTNER, "https://salle.example"]
    finally:
        services.close()


# --- oEmbed and discovery ------------------------------------------------------------------------


def oembed(client: TestClient, url: str, **params: str) -> httpx.Response:
    query = "&".join(f"{k}={quote(v)}" for k, v in {"url": url, **params}.items())
    return client.get(f"/oembed?{query}")


@pytest.mark.parametrize("policy", ["partners", "site"])
def test_oembed_of_a_restricted_production_is_401(
    client: TestClient, services: Services, policy: str
) -> None:
    production_id = fake_production(services, "Concert")
    assert oembed(client, f"{SITE}/productions/concert").status_code == 200
    set_policy(services, production_id, policy)
    response = oembed(client, f"{SITE}/productions/concert")
    assert response.status_code == 401
    assert response.json() == {"error": response.json()["error"], "status": 401}
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("policy", ["partners", "site"])
def test_a_restricted_page_offers_no_oembed_nor_player_card(
    client: TestClient, services: Services, policy: str
) -> None:
    production_id = fake_production(services, "Concert")
    discovery = 'type="application/json+oembed"'
    page = client.get("/productions/concert").text
    assert discovery in page and 'content="player"' in page
    set_policy(services, production_id, policy)
    page = client.get("/productions/concert").text
    assert discovery not in page
    assert 'name="twitter:player"' not in page and 'property="og:video"' not in page
    # The page itself still plays it.
    assert player_config(page)["embed_origins"] is not None


@pytest.mark.parametrize("kind", ["video", "audio"])
def test_structured_data_offers_no_player_to_embed_when_it_is_kept(
    client: TestClient, services: Services, kind: str
) -> None:
    """Search engines read embedUrl as "embed this player anywhere": only for "anywhere"."""
    production_id = fake_production(services, "Concert", kind=kind)
    assert f"/embed/{production_id}" in _json_ld(client.get("/productions/concert").text)
    set_policy(services, production_id, "partners")
    assert "embedUrl" not in _json_ld(client.get("/productions/concert").text)


def _json_ld(page: str) -> str:
    start = page.index('<script type="application/ld+json">')
    return page[start : page.index("</script>", start)]


@pytest.mark.parametrize(
    ("policy", "code", "note"),
    [("anywhere", True, None), ("partners", True, "partners"), ("site", False, "site")],
)
def test_the_share_panel_offers_what_the_policy_allows(
    client: TestClient, services: Services, policy: str, code: bool, note: str | None
) -> None:
    production_id = fake_production(services, "Concert")
    set_policy(services, production_id, policy)
    page = client.get("/productions/concert").text
    assert ("data-share-code" in page) is code
    assert ('name="autoplay"' in page) is code
    assert "data-share-link" in page
    notes = [
        tag["data-share-policy"] for tag in tags_named(page, "p") if "data-share-policy" in tag
    ]
    assert notes == ([note] if note else [])


def test_the_api_says_the_policy(client: TestClient, services: Services) -> None:
    production_id = fake_production(services, "Concert")
    assert client.get(f"/api/v1/productions/{production_id}").json()["embed_policy"] == "anywhere"
    set_policy(services, production_id, "site")
    assert client.get(f"/api/v1/productions/{production_id}").json()["embed_policy"] == "site"


# --- the admins' partner list --------------------------------------------------------------------


@pytest.fixture
def admin_csrf(services: Services, client: TestClient) -> str:
    make_user(services, "admin@example.org", "admin")
    return login(client, "admin@example.org")


def test_only_admins_keep_the_partner_list(services: Services, client: TestClient) -> None:
    anonymous = client.get("/admin/partners", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
    partner_id = add_partner(services, "Festival", PARTNER)
    make_user(services, "nora@example.org")
    csrf = login(client, "nora@example.org")
    assert client.get("/admin/partners").status_code == 403
    assert client.get(f"/admin/partners/{partner_id}").status_code == 403
    form = {"csrf_token": csrf, "name": "Mine", "origins": STRANGER}
    assert client.post("/admin/partners", data=form).status_code == 403
    assert client.post(f"/admin/partners/{partner_id}", data=form).status_code == 403
    deleting = client.post(f"/admin/partners/{partner_id}/delete", data={"csrf_token": csrf})
    assert deleting.status_code == 403
    with services.sessions() as session:
        assert [(p.name, p.origins) for p in partners.list_partners(session)] == [
            ("Festival", [PARTNER])
        ]


def test_an_admin_adds_edits_and_deletes_a_partner(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    added = client.post(
        "/admin/partners",
        data={
            "csrf_token": admin_csrf,
            "name": "  Festival  des  Cafés ",
            "origins": "HTTPS://Festival.Example/\nhttp://127.0.0.1:8080",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    with services.sessions() as session:
        partner = session.scalars(select(Partner)).one()
        partner_id = partner.id
        assert partner.name == "Festival des Cafés"
        assert partner.origins == [PARTNER, "http://127.0.0.1:8080"]
    listing = client.get(added.headers["location"])
    assert "Festival des Cafés" in listing.text and PARTNER in listing.text
    assert re.search(r'role="status">[^<]+</p>', listing.text)
    edit = client.get(f"/admin/partners/{partner_id}").text
    assert "http://127.0.0.1:8080" in edit
    saved = client.post(
        f"/admin/partners/{partner_id}",
        data={"csrf_token": admin_csrf, "name": "Festival", "origins": PARTNER},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with services.sessions() as session:
        assert session.get(Partner, partner_id).origins == [PARTNER]  # type: ignore[union-attr]
    path = f"/admin/partners/{partner_id}/delete"
    gone = client.post(path, data={"csrf_token": admin_csrf}, follow_redirects=False)
    assert gone.status_code == 303
    assert client.post(path, data={"csrf_token": admin_csrf}).status_code == 404
    assert client.get(f"/admin/partners/{partner_id}").status_code == 404
    assert client.get("/admin/partners/-1").status_code == 404
    assert client.get("/admin/partners/99999999999999999999").status_code == 404


@pytest.mark.parametrize(
    ("name", "origins"),
    [
        ("", PARTNER),
        ("Festival", ""),
        ("Festival", "https://festival.example/page"),
        ("Festival", "javascript:alert(1)"),
        ("Festival", "https://user:pw@festival.example"),
        ("Festival", "<script>alert(1)</script>"),
        ("x" * 500, PARTNER),
        ("Festival", "https://a.example\n" * 10_000),
        ("Other", "https://taken.example"),
    ],
)
def test_a_refused_partner_comes_back_with_what_was_typed(
    services: Services, client: TestClient, admin_csrf: str, name: str, origins: str
) -> None:
    add_partner(services, "Taken", "https://taken.example")
    response = client.post(
        "/admin/partners", data={"csrf_token": admin_csrf, "name": name, "origins": origins}
    )
    assert response.status_code == 400
    assert "<script>alert" not in response.text
    errors = re.findall(
        r'<p class="field-error" id="partner-error" role="alert">([^<]+)</p>', response.text
    )
    assert len(errors) == 1
    # The field to correct says so, and only it; what was typed comes back.
    wrong = "partner-name" if not name or len(name) > 200 else "partner-origins"
    invalid = re.findall(r'id="(partner-[a-z]+)"[^>]*aria-invalid="true"', response.text)
    assert invalid == [wrong]
    if len(origins) < 1000:
        assert html.escape(origins.strip(), quote=False) in response.text
    with services.sessions() as session:
        assert len(partners.list_partners(session)) == 1


def test_a_partner_form_without_its_token_is_refused(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    response = client.post("/admin/partners", data={"name": "Festival", "origins": PARTNER})
    assert response.status_code == 403
    with services.sessions() as session:
        assert partners.list_partners(session) == []


def test_sending_the_same_partner_twice_adds_it_once(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    form = {"csrf_token": admin_csrf, "name": "Festival", "origins": PARTNER}
    assert client.post("/admin/partners", data=form, follow_redirects=False).status_code == 303
    assert client.post("/admin/partners", data=form).status_code == 400
    with services.sessions() as session:
        assert len(partners.list_partners(session)) == 1


# --- the studio's field --------------------------------------------------------------------------


def owned_production(services: Services, owner_id: int) -> str:
    production_id = fake_production(services, "Nuit au Cargo")
    with services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == production_id).values(owner_id=owner_id)
        )
    return production_id


def test_the_owner_chooses_where_its_player_plays(services: Services, client: TestClient) -> None:
    nora_id = make_user(services, "nora@example.org", artists=["Nora Ilić"])
    nora = Owner("nora@example.org", nora_id, login(client, "nora@example.org"))
    production_id = owned_production(services, nora_id)
    page = client.get(f"/studio/productions/{production_id}").text
    radios = [a for a in tags_named(page, "input") if a.get("name") == "embed_policy"]
    assert [a["value"] for a in radios] == ["anywhere", "partners", "site"]
    assert [a["value"] for a in radios if "checked" in a] == ["anywhere"]
    path = f"/studio/productions/{production_id}"
    form = edit_form(nora, embed_policy="partners", setlist="")
    saved = client.post(path, data=form, follow_redirects=False)
    assert saved.status_code == 303
    assert policy_of(services, production_id) == "partners"
    # A form without the field (an older page) leaves the policy as it is.
    client.post(path, data=edit_form(nora, setlist=""), follow_redirects=False)
    assert policy_of(services, production_id) == "partners"
    refused = client.post(path, data=edit_form(nora, embed_policy="everywhere<b>", setlist=""))
    assert refused.status_code == 400
    assert 'id="embed_policy-error"' in refused.text and "everywhere<b>" not in refused.text
    assert policy_of(services, production_id) == "partners"


def test_another_artist_cannot_set_the_policy(
    services: Services, client: TestClient, other_client: TestClient
) -> None:
    nora = make_user(services, "nora@example.org")
    production_id = owned_production(services, nora)
    paul_id = make_user(services, "paul@example.org")
    paul = Owner("paul@example.org", paul_id, login(other_client, "paul@example.org"))
    response = other_client.post(
        f"/studio/productions/{production_id}", data=edit_form(paul, embed_policy="site")
    )
    assert response.status_code == 404
    assert policy_of(services, production_id) == "anywhere"


def test_the_edit_page_token_is_on_the_form(services: Services, client: TestClient) -> None:
    nora = make_user(services, "nora@example.org")
    login(client, "nora@example.org")
    production_id = owned_production(services, nora)
    assert page_token(client, f"/studio/productions/{production_id}")


# --- the migration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_migration_lets_every_production_play_anywhere_and_keeps_its_rows(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    url = sqlite_url(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), "0008_mail_sessions")
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO productions (id, slug, title, title_is_placeholder, kind, status,"
                    " description, visibility, created_at, updated_at, search_text) VALUES"
                    " ('p0', 'good', 'Good', false, 'audio', 'ready', '', 'public', :now, :now, '')"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO artists (id, name, slug, bio, disciplines, links, created_at)"
                    " VALUES (1, 'Nora', 'nora', '', '[]', '[]', :now)"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO credits (production_id, artist_id, role, position)"
                    " VALUES ('p0', 1, 'performer', 0)"
                )
            )
        migrate(engine)
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT embed_policy FROM productions")) == "anywhere"
            assert connection.scalar(text("SELECT count(*) FROM credits")) == 1
        with pytest.raises(Exception, match=r"(?i)check|constraint"), engine.begin() as connection:
            connection.execute(text("UPDATE productions SET embed_policy = 'everywhere'"))
        command.downgrade(alembic_config(engine), "0008_mail_sessions")
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT count(*) FROM credits")) == 1
            assert connection.scalar(text("SELECT count(*) FROM productions")) == 1
    finally:
        engine.dispose()


def test_a_partner_name_with_markup_stays_text(
    services: Services, client: TestClient, admin_csrf: str
) -> None:
    name = '<img src=x onerror="alert(1)"> Festival'
    form = {"csrf_token": admin_csrf, "name": name, "origins": PARTNER}
    assert client.post("/admin/partners", data=form, follow_redirects=False).status_code == 303
    listing = client.get("/admin/partners").text
    assert "<img src=x" not in listing and "&lt;img src=x onerror=" in listing
    assert tags_named(listing, "img") == []
