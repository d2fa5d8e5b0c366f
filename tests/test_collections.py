"""Collections: made and ordered in the studio by their artist (or an admin), shown on their
page, feed, playlist player, API object and oEmbed answer, never showing a production that a
visitor may not see. Driven through the app in-process, with records made in the database."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote

import feedparser
import httpx
import pytest
from PIL import Image
from sqlalchemy import delete, select
from starlette.testclient import TestClient

from cite_live.models import Collection, CollectionItem, Production
from cite_live.services import Services
from cite_live.web.openapi import document
from cite_live.web.urls import Urls
from tests.account_fixtures import login, make_user
from tests.app_fixtures import new_client
from tests.test_api import publish_fake
from tests.test_openapi import check

SITE = "http://testserver"


@dataclass
class Account:
    email: str
    id: int
    csrf: str
    client: TestClient


@pytest.fixture
def nora(services: Services, client: TestClient) -> Account:
    """An artist account linked to "Nora Ilić", signed in on ``client``."""
    user_id = make_user(services, "nora@example.org", artists=["Nora Ilić"])
    return Account("nora@example.org", user_id, login(client, "nora@example.org"), client)


@pytest.fixture
def paul(services: Services, other_client: TestClient) -> Account:
    """Another artist ("Paul Vercors"), signed in on ``other_client``."""
    user_id = make_user(services, "paul@example.org", artists=["Paul Vercors"])
    return Account(
        "paul@example.org", user_id, login(other_client, "paul@example.org"), other_client
    )


@pytest.fixture
def admin(services: Services) -> Iterator[Account]:
    user_id = make_user(services, "admin@example.org", "admin")
    with new_client(services) as c:
        yield Account("admin@example.org", user_id, login(c, "admin@example.org"), c)


@pytest.fixture
def anonymous(services: Services) -> Iterator[TestClient]:
    with new_client(services) as c:
        yield c


def production(services: Services, title: str, owner: Account | None = None, **options: Any) -> str:
    """A production (see tests.test_api.publish_fake), owned by ``owner`` when given."""
    options.setdefault("artists", ["Nora Ilić"])
    production_id = publish_fake(services, title, **options)
    if owner is not None:
        with services.sessions.begin() as session:
            row = session.get(Production, production_id)
            assert row is not None
            row.owner_id = owner.id
    return production_id


def create(account: Account, title: str = "Festival Mix'Art", kind: str = "festival") -> str:
    response = account.client.post(
        "/studio/collections",
        data={"csrf_token": account.csrf, "title": title, "kind": kind},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    found = re.fullmatch(
        r"/studio/collections/(\w+)\?done=collection-created", response.headers["location"]
    )
    assert found, response.headers["location"]
    return found.group(1)


FORM = {
    "title": "Festival Mix'Art",
    "title_en": "Mix'Art festival",
    "description": "Trois soirs à la Cité.",
    "description_en": "Three nights at the Cité.",
    "kind": "festival",
    "state": "public",
}


def post(
    account: Account,
    collection_id: str,
    action: str = "save",
    files: dict[str, Any] | None = None,
    **fields: str,
) -> httpx.Response:
    data = {"csrf_token": account.csrf, **FORM, "action": action, **fields}
    return account.client.post(
        f"/studio/collections/{collection_id}", data=data, files=files, follow_redirects=False
    )


def add(account: Account, collection_id: str, production_id: str) -> httpx.Response:
    return post(account, collection_id, "add", add_production=production_id)


def order(services: Services, collection_id: str) -> list[str]:
    with services.sessions() as session:
        return list(
            session.scalars(
                select(CollectionItem.production_id)
                .where(CollectionItem.collection_id == collection_id)
                .order_by(CollectionItem.position)
            )
        )


def slug_of(services: Services, collection_id: str) -> str:
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None
        return found.slug


def jpeg(width: int, height: int, colour: tuple[int, int, int] = (200, 60, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


class Links(HTMLParser):
    """The <link> elements of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.found: list[dict[str, str | None]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.found.append(dict(attrs))


# --- making one ----------------------------------------------------------------------------------


def test_an_artist_makes_a_collection_of_their_productions_and_publishes_it(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    first = production(services, "Ouverture du festival", nora)
    second = production(services, "Nuit électro", nora)
    collection_id = create(nora)
    page = nora.client.get(f"/studio/collections/{collection_id}?done=collection-created")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    assert "La collection est créée." in page.text
    assert "Ouverture du festival" in page.text and "Nuit électro" in page.text
    slug = slug_of(services, collection_id)
    assert slug == "festival-mix-art"
    # A draft: nobody sees it yet.
    assert anonymous.get(f"/collections/{slug}").status_code == 404

    for production_id in (first, second):
        response = add(nora, collection_id, production_id)
        assert response.status_code == 303
        assert response.headers["location"].endswith("?done=collection-added")
    assert order(services, collection_id) == [first, second]

    page = anonymous.get(f"/collections/{slug}")
    assert page.status_code == 200
    assert "<h1>Festival Mix&#39;Art</h1>" in page.text
    assert "Trois soirs à la Cité." in page.text
    assert page.text.index("Ouverture du festival") < page.text.index("Nuit électro")
    english = anonymous.get(f"/collections/{slug}?lang=en")
    assert "<h1>Mix&#39;Art festival</h1>" in english.text
    assert "Three nights at the Cité." in english.text
    listing = anonymous.get("/collections")
    assert f'href="/collections/{slug}"' in listing.text
    assert "2 productions" in listing.text and "Temps fort" in listing.text
    assert "/studio/collections" in nora.client.get("/studio").text


def test_a_production_page_says_which_collections_it_is_in(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    production_id = production(services, "Ouverture du festival", nora)
    collection_id = create(nora)
    add(nora, collection_id, production_id)
    page = anonymous.get("/productions/ouverture-du-festival")
    assert "Dans :" in page.text
    assert 'href="/collections/festival-mix-art">Festival Mix&#39;Art</a>' in page.text
    # A collection made a draft again is no longer named.
    post(nora, collection_id, state="draft")
    assert "Dans :" not in anonymous.get("/productions/ouverture-du-festival").text


def test_the_order_is_changed_with_the_buttons_and_items_come_out(
    services: Services, nora: Account
) -> None:
    ids = [production(services, f"Morceau {n}", nora) for n in (1, 2, 3)]
    collection_id = create(nora)
    for production_id in ids:
        add(nora, collection_id, production_id)
    assert (
        post(nora, collection_id, f"down:{ids[0]}")
        .headers["location"]
        .endswith("done=collection-moved")
    )
    assert order(services, collection_id) == [ids[1], ids[0], ids[2]]
    post(nora, collection_id, f"up:{ids[2]}")
    assert order(services, collection_id) == [ids[1], ids[2], ids[0]]
    # At the ends, nothing moves.
    post(nora, collection_id, f"up:{ids[1]}")
    post(nora, collection_id, f"down:{ids[0]}")
    assert order(services, collection_id) == [ids[1], ids[2], ids[0]]
    post(nora, collection_id, f"remove:{ids[2]}")
    assert order(services, collection_id) == [ids[1], ids[0]]
    with services.sessions() as session:
        positions = session.scalars(
            select(CollectionItem.position)
            .where(CollectionItem.collection_id == collection_id)
            .order_by(CollectionItem.position)
        ).all()
    assert list(positions) == [0, 1]
    # The other buttons save what was typed too.
    post(nora, collection_id, f"up:{ids[0]}", title="Saison 2026")
    assert order(services, collection_id) == [ids[0], ids[1]]
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and found.title == "Saison 2026"


def test_a_production_deleted_leaves_the_collection_and_a_collection_deleted_its_items(
    services: Services, nora: Account
) -> None:
    ids = [production(services, f"Morceau {n}", nora) for n in (1, 2)]
    collection_id = create(nora)
    for production_id in ids:
        add(nora, collection_id, production_id)
    with services.sessions.begin() as session:
        session.execute(delete(Production).where(Production.id == ids[0]))
    assert order(services, collection_id) == [ids[1]]
    with services.sessions.begin() as session:
        session.execute(delete(Collection).where(Collection.id == collection_id))
    with services.sessions() as session:
        assert session.scalars(select(CollectionItem)).all() == []
        assert session.get(Production, ids[1]) is not None


def test_the_cover_is_reencoded_and_shown(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    production_id = production(services, "Ouverture du festival", nora)
    collection_id = create(nora)
    add(nora, collection_id, production_id)
    response = post(nora, collection_id, files={"cover": ("c.png", jpeg(2400, 1200), "image/png")})
    assert response.status_code == 303
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and found.cover_key is not None
        key = found.cover_key
    assert key.startswith(f"collections/{collection_id.lower()}/covers/") and key.endswith(".jpg")
    with Image.open(io.BytesIO(services.store.read_bytes(key))) as image:
        assert (image.format, image.size) == ("JPEG", (1600, 800))
    page = anonymous.get("/collections/festival-mix-art")
    assert f'src="{SITE}/media/{key}"' in page.text
    # A new cover replaces it, and the old one leaves the store.
    post(nora, collection_id, files={"cover": ("d.png", jpeg(400, 400, (0, 0, 255)), "image/png")})
    assert not services.store.exists(key)
    # Not an image: refused beside the field, nothing saved.
    refused = post(
        nora, collection_id, title="Autre titre", files={"cover": ("e.png", b"nope", "image/png")}
    )
    assert refused.status_code == 400
    assert "Ce fichier n’est pas une image JPEG, PNG ou WebP." in refused.text
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and found.title == "Festival Mix'Art"
    post(nora, collection_id, remove_cover="1")
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and found.cover_key is None


# --- who may -------------------------------------------------------------------------------------


def test_another_artist_can_neither_see_nor_change_a_collection(
    services: Services, nora: Account, paul: Account, anonymous: TestClient
) -> None:
    mine = production(services, "Ouverture du festival", nora)
    theirs = production(services, "Paul en solo", paul, artists=["Paul Vercors"])
    collection_id = create(nora)
    add(nora, collection_id, mine)
    for action in ("save", "add", f"up:{mine}", f"down:{mine}", f"remove:{mine}"):
        response = post(paul, collection_id, action, add_production=theirs, title="Volé")
        assert response.status_code == 404, action
    assert paul.client.get(f"/studio/collections/{collection_id}").status_code == 404
    assert "Festival Mix" not in paul.client.get("/studio/collections").text
    assert order(services, collection_id) == [mine]
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and found.title == "Festival Mix'Art"
    # Signed out: to the sign-in page.
    response = anonymous.get(f"/studio/collections/{collection_id}", follow_redirects=False)
    assert response.status_code in (302, 303, 307) and "/login" in response.headers["location"]


def test_an_artist_adds_only_productions_they_own_or_are_credited_on(
    services: Services, nora: Account, paul: Account
) -> None:
    collection_id = create(nora)
    credited = production(services, "Nora invitée", paul, artists=["Paul Vercors", "Nora Ilić"])
    credited_private = production(
        services, "Maquette de Paul", paul, artists=["Nora Ilić"], visibility="private"
    )
    someone_elses = production(services, "Paul en solo", paul, artists=["Paul Vercors"])
    page = nora.client.get(f"/studio/collections/{collection_id}").text
    assert "Nora invitée" in page
    assert "Maquette de Paul" not in page and "Paul en solo" not in page
    assert add(nora, collection_id, credited).status_code == 303
    for forged in (credited_private, someone_elses, "nope", "x" * 17, "../../etc", "' OR 1=1"):
        refused = add(nora, collection_id, forged)
        assert refused.status_code == 400, forged
        assert "Cette production ne peut pas être ajoutée" in refused.text
    assert order(services, collection_id) == [credited]


def test_an_admin_reaches_every_collection_and_makes_the_site_s_own(
    services: Services, nora: Account, admin: Account
) -> None:
    theirs = production(services, "Paul en solo", None, artists=["Paul Vercors"])
    collection_id = create(nora)
    assert "Festival Mix" in admin.client.get("/studio/collections").text
    assert add(admin, collection_id, theirs).status_code == 303
    assert order(services, collection_id) == [theirs]
    site_id = create(admin, "Saison 2026", "season")
    with services.sessions() as session:
        found = session.get(Collection, site_id)
        assert found is not None and found.owner_id is None and found.kind == "season"
    assert "Saison 2026" not in nora.client.get("/studio/collections").text
    assert nora.client.get(f"/studio/collections/{site_id}").status_code == 404


# --- hostile inputs ------------------------------------------------------------------------------


def test_markup_in_titles_is_shown_as_text(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    production_id = production(services, "Ouverture", nora)
    collection_id = create(nora, hostile)
    add(nora, collection_id, production_id)
    post(nora, collection_id, title=hostile, description=hostile)
    slug = slug_of(services, collection_id)
    for path in (f"/collections/{slug}", "/collections", f"/embed/collections/{collection_id}"):
        text = anonymous.get(path).text
        assert "<script>alert(1)" not in text and "<img src=x" not in text, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, path
    assert "&lt;script&gt;" in nora.client.get("/studio/collections").text
    feed = feedparser.parse(anonymous.get(f"/collections/{slug}/feed.atom").content)
    assert feed.feed.title.startswith(hostile)


def test_what_is_not_valid_is_refused_and_nothing_is_saved(
    services: Services, nora: Account
) -> None:
    collection_id = create(nora)
    refusals = [
        {"title": ""},
        {"title": "x" * 301},
        {"title_en": "x" * 301},
        {"description": "x" * 20_001},
        {"kind": "opera"},
        {"state": "unlisted"},
    ]
    for fields in refusals:
        response = post(nora, collection_id, **fields)
        assert response.status_code == 400, fields
        assert 'aria-invalid="true"' in response.text
    for action in ("delete", "up:", "up:x:y", "remove:" + "x" * 5000, "move:1", "save:2", "add:x"):
        assert post(nora, collection_id, action).status_code == 400, action
    # Moving or taking out what is not there changes nothing.
    assert post(nora, collection_id, "up:AAAAAAAAAAA", state="draft").status_code == 303
    assert post(nora, collection_id, "remove:AAAAAAAAAAA", state="draft").status_code == 303
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and (found.title, found.state) == ("Festival Mix'Art", "draft")
    # The form making one refuses the same way.
    for fields in ({"title": " "}, {"title": "x" * 301}, {"kind": "opera"}):
        response = nora.client.post(
            "/studio/collections",
            data={"csrf_token": nora.csrf, "title": "Bon titre", "kind": "album", **fields},
        )
        assert response.status_code == 400, fields
    with services.sessions() as session:
        assert len(session.scalars(select(Collection)).all()) == 1


def test_forms_need_their_csrf_token(services: Services, nora: Account) -> None:
    collection_id = create(nora)
    response = nora.client.post(
        "/studio/collections", data={"title": "Sans jeton", "kind": "album"}
    )
    assert response.status_code == 403
    response = nora.client.post(
        f"/studio/collections/{collection_id}", data={**FORM, "csrf_token": "forged"}
    )
    assert response.status_code == 403
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and found.state == "draft"


def test_a_production_added_twice_is_there_once(services: Services, nora: Account) -> None:
    production_id = production(services, "Ouverture", nora)
    collection_id = create(nora)
    assert add(nora, collection_id, production_id).headers["location"].endswith("collection-added")
    again = add(nora, collection_id, production_id)
    assert again.status_code == 303 and again.headers["location"].endswith("collection-already")
    assert order(services, collection_id) == [production_id]
    # Two collections of the same title get two addresses.
    other = create(nora)
    assert slug_of(services, other) == "festival-mix-art-2"


# --- what visitors see ---------------------------------------------------------------------------


@pytest.fixture
def mixed(services: Services, nora: Account) -> dict[str, str]:
    """A public collection holding one production of each state; only "Visible" is listed."""
    titles = {
        "Visible": {},
        "Privée": {"visibility": "private"},
        "Non listée": {"visibility": "unlisted"},
        "En cours": {"status": "processing"},
        "Échouée": {"status": "failed"},
    }
    ids = {title: production(services, title, nora, **options) for title, options in titles.items()}
    with services.sessions.begin() as session:
        draft = session.get(Production, ids["Privée"])
        assert draft is not None
        draft.publish_as = "public"  # a draft too: private until published
    collection_id = create(nora)
    for production_id in ids.values():
        add(nora, collection_id, production_id)
    post(nora, collection_id)
    return {"id": collection_id, **ids}


HIDDEN = ("Privée", "Non listée", "En cours", "Échouée")


def test_hidden_productions_are_never_shown_by_a_collection(
    services: Services, mixed: dict[str, str], anonymous: TestClient
) -> None:
    collection_id = mixed["id"]
    answers = {
        "page": anonymous.get("/collections/festival-mix-art").text,
        "list": anonymous.get("/collections").text,
        "feed": anonymous.get("/collections/festival-mix-art/feed.atom").text,
        "embed": anonymous.get(f"/embed/collections/{collection_id}").text,
        "api": anonymous.get(f"/api/v1/collections/{collection_id}").text,
        "oembed": anonymous.get(
            "/oembed?url=" + quote(f"{SITE}/collections/festival-mix-art")
        ).text,
    }
    for where, text in answers.items():
        for title in HIDDEN:
            assert title not in text and mixed[title] not in text, (where, title)
    assert "Visible" in answers["page"] and "Visible" in answers["embed"]
    assert "1 production" in answers["list"]
    api = anonymous.get(f"/api/v1/collections/{collection_id}").json()
    assert [item["id"] for item in api["items"]] == [mixed["Visible"]]
    feed = feedparser.parse(answers["feed"])
    assert [entry.title for entry in feed.entries] == ["Visible"]


def test_the_maker_sees_every_item_with_its_state(mixed: dict[str, str], nora: Account) -> None:
    page = nora.client.get(f"/studio/collections/{mixed['id']}").text
    for title in ("Visible", *HIDDEN):
        assert title in page
    assert page.count("Cachée aux visiteurs tant qu’elle n’est pas prête et publique.") == 4


def test_a_draft_collection_is_nowhere(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    production_id = production(services, "Ouverture", nora)
    collection_id = create(nora)
    post(nora, collection_id, "add", add_production=production_id, state="draft")
    assert order(services, collection_id) == [production_id]
    for client in (anonymous, nora.client):
        for path in (
            "/collections/festival-mix-art",
            "/collections/festival-mix-art/feed.atom",
            f"/embed/collections/{collection_id}",
            f"/api/v1/collections/{collection_id}",
            "/oembed?url=" + quote(f"{SITE}/collections/festival-mix-art"),
        ):
            assert client.get(path).status_code == 404, path
    assert "Festival Mix" not in anonymous.get("/collections").text
    for path in ("/collections/%00", "/collections/" + "x" * 300, "/embed/collections/" + "x" * 40):
        assert anonymous.get(path).status_code == 404, path
    assert anonymous.get("/api/v1/collections/%00").json()["status"] == 404


def test_the_feed_lists_the_productions_in_the_collection_s_order(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    ids = [production(services, f"Morceau {n}", nora) for n in (1, 2, 3)]
    collection_id = create(nora)
    for production_id in reversed(ids):
        add(nora, collection_id, production_id)
    post(nora, collection_id)
    response = anonymous.get("/collections/festival-mix-art/feed.atom")
    assert response.headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "Festival Mix'Art — Cité Live Web"
    stable = services.settings.stable_url.rstrip("/")
    assert feed.feed.id == f"{stable}/api/v1/collections/{collection_id}"
    assert feed.feed.link == f"{SITE}/collections/festival-mix-art"
    assert [e.title for e in feed.entries] == ["Morceau 3", "Morceau 2", "Morceau 1"]
    english = feedparser.parse(
        anonymous.get("/collections/festival-mix-art/feed.atom?lang=en").content
    )
    assert english.feed.title == "Mix'Art festival — Cité Live Web"


def test_the_page_announces_its_feed_and_its_oembed(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    production_id = production(services, "Ouverture", nora)
    collection_id = create(nora)
    add(nora, collection_id, production_id)
    post(nora, collection_id)
    links = Links(anonymous.get("/collections/festival-mix-art").text).found
    feeds = [
        link for link in links if link.get("href") == "/collections/festival-mix-art/feed.atom"
    ]
    assert feeds and feeds[0]["type"] == "application/atom+xml"
    discovery = [link for link in links if link.get("type") == "application/json+oembed"]
    assert len(discovery) == 1
    href = str(discovery[0]["href"])
    assert href.startswith(f"{SITE}/oembed?")
    assert anonymous.get(href.removeprefix(SITE)).json()["type"] == "rich"


def test_oembed_gives_the_playlist_player(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    production_id = production(services, "Ouverture", nora)
    collection_id = create(nora)
    add(nora, collection_id, production_id)
    post(nora, collection_id, files={"cover": ("c.png", jpeg(600, 600), "image/png")})
    url = quote(f"{SITE}/collections/festival-mix-art/")
    body = anonymous.get(f"/oembed?url={url}&format=json").json()
    assert body["version"] == "1.0" and body["type"] == "rich"
    assert body["title"] == "Festival Mix'Art"
    assert (body["author_name"], body["author_url"]) == ("Nora Ilić", f"{SITE}/artists/nora-ilic")
    assert (body["width"], body["height"]) == (640, 400)
    assert body["thumbnail_url"].startswith(f"{SITE}/media/collections/")
    assert (body["thumbnail_width"], body["thumbnail_height"]) == (600, 600)
    frame = re.fullmatch(
        r'<iframe src="([^"]+)" width="100%" height="400" .*></iframe>', body["html"]
    )
    assert frame and frame.group(1) == f"{SITE}/embed/collections/{collection_id}"
    small = anonymous.get(f"/oembed?url={url}&maxwidth=300&maxheight=200").json()
    assert (small["width"], small["height"]) == (300, 200)
    assert 'height="200"' in small["html"] and "thumbnail_url" not in small
    for bad in (
        "http://elsewhere.example/collections/festival-mix-art",
        f"{SITE}/collections/nope",
    ):
        assert anonymous.get(f"/oembed?url={quote(bad)}").status_code == 404


def test_the_embed_may_be_framed_anywhere_and_holds_one_player_per_item(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    ids = [production(services, f"Morceau {n}", nora) for n in (1, 2)]
    collection_id = create(nora)
    for production_id in ids:
        add(nora, collection_id, production_id)
    post(nora, collection_id)
    response = anonymous.get(f"/embed/collections/{collection_id}")
    assert response.status_code == 200
    assert response.headers["content-security-policy"].count("frame-ancestors") == 1
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers
    text = response.text
    assert text.count("<template data-playlist-player>") == 2
    assert text.count("data-player-config") == 2
    # The player's loader, which starts the playlist (player-core.js, playlist.js).
    assert Urls().static("js/player.js") in text
    # Any other page of the site still refuses to be framed.
    page = anonymous.get("/collections/festival-mix-art")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_the_api_object_is_what_the_openapi_document_says(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    ids = [production(services, f"Morceau {n}", nora) for n in (1, 2)]
    collection_id = create(nora)
    for production_id in ids:
        add(nora, collection_id, production_id)
    post(nora, collection_id, f"up:{ids[1]}")
    spec = document(SITE)
    template = "/api/v1/collections/{collection_id}"
    body = check(anonymous, spec, template, f"/api/v1/collections/{collection_id}")
    assert [item["id"] for item in body["items"]] == [ids[1], ids[0]]
    assert body["page_url"] == f"{SITE}/collections/festival-mix-art"
    assert body["embed_url"] == f"{SITE}/embed/collections/{collection_id}"
    assert body["kind"] == "festival" and body["title_en"] == "Mix'Art festival"
    check(anonymous, spec, template, "/api/v1/collections/AAAAAAAAAAA")
    response = anonymous.get(f"/api/v1/collections/{collection_id}")
    assert response.headers["access-control-allow-origin"] == "*"


def test_its_editors_get_an_edit_link_that_no_cache_keeps(
    services: Services, nora: Account, paul: Account, anonymous: TestClient
) -> None:
    collection_id = create(nora)
    post(nora, collection_id)
    edit = f'href="/studio/collections/{collection_id}"'
    mine = nora.client.get("/collections/festival-mix-art")
    assert edit in mine.text and mine.headers["cache-control"] == "private, no-store"
    for client in (paul.client, anonymous):
        page = client.get("/collections/festival-mix-art")
        assert page.status_code == 200 and edit not in page.text


def test_a_collection_is_deleted_once_confirmed_and_its_productions_stay(
    services: Services, nora: Account, paul: Account, anonymous: TestClient
) -> None:
    production_id = production(services, "Ouverture", nora)
    collection_id = create(nora)
    add(nora, collection_id, production_id)
    post(nora, collection_id, files={"cover": ("c.png", jpeg(400, 400), "image/png")})
    with services.sessions() as session:
        found = session.get(Collection, collection_id)
        assert found is not None and found.cover_key is not None
        cover = found.cover_key
    assert post(paul, collection_id, "delete", confirm_delete="1").status_code == 404
    unconfirmed = post(nora, collection_id, "delete")
    assert unconfirmed.status_code == 400
    assert "Cochez la case pour confirmer" in unconfirmed.text
    response = post(nora, collection_id, "delete", confirm_delete="1")
    assert response.status_code == 303
    assert response.headers["location"] == "/studio/collections?done=collection-deleted"
    with services.sessions() as session:
        assert session.get(Collection, collection_id) is None
        assert session.scalars(select(CollectionItem)).all() == []
        assert session.get(Production, production_id) is not None
    assert not services.store.exists(cover)
    assert anonymous.get("/collections/festival-mix-art").status_code == 404
    assert post(nora, collection_id, "delete", confirm_delete="1").status_code == 404


def test_the_framed_playlist_leaves_out_what_may_not_play_on_other_sites(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    """A production kept for partner sites, or for this site, plays on the collection's page
    but is not in the playlist player other sites frame (its own embed would refuse them)."""
    policies = {"Partout": "anywhere", "Partenaires": "partners", "Ici seulement": "site"}
    ids = {title: production(services, title, nora) for title in policies}
    with services.sessions.begin() as session:
        for title, policy in policies.items():
            session.get_one(Production, ids[title]).embed_policy = policy
    collection_id = create(nora)
    for production_id in ids.values():
        add(nora, collection_id, production_id)
    post(nora, collection_id)
    page = anonymous.get("/collections/festival-mix-art").text
    framed = anonymous.get(f"/embed/collections/{collection_id}").text
    for title in policies:
        assert title in page
    assert "Partout" in framed
    for title in ("Partenaires", "Ici seulement"):
        assert title not in framed and ids[title] not in framed


def test_a_collection_gone_shows_the_frameable_card(anonymous: TestClient) -> None:
    response = anonymous.get("/embed/collections/nothinghere")
    assert response.status_code == 404
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors *" in policy and policy.count("frame-ancestors") == 1
    assert "x-frame-options" not in response.headers
    assert 'target="_blank"' in response.text


def test_a_podcast_series_names_its_podcast_on_its_page_and_in_the_api(
    services: Services, nora: Account, anonymous: TestClient
) -> None:
    production_id = production(services, "Épisode 1", nora)
    podcast_id = create(nora, "Les Voix du Quai", kind="podcast")
    add(nora, podcast_id, production_id)
    post(nora, podcast_id, title="Les Voix du Quai", kind="podcast")
    festival_id = create(nora)
    add(nora, festival_id, production_id)
    post(nora, festival_id)
    spec = document(SITE)
    template = "/api/v1/collections/{collection_id}"
    podcast = check(anonymous, spec, template, f"/api/v1/collections/{podcast_id}")
    assert podcast["podcast_url"] == f"{SITE}/collections/les-voix-du-quai/podcast.rss"
    festival = check(anonymous, spec, template, f"/api/v1/collections/{festival_id}")
    assert festival["podcast_url"] is None
    # Podcast apps and browsers find it from the page; the feed it names answers.
    page = anonymous.get("/collections/les-voix-du-quai").text
    link = re.search(r'<link rel="alternate" type="application/rss\+xml" href="([^"]+)"', page)
    assert link and link.group(1) == "/collections/les-voix-du-quai/podcast.rss"
    assert anonymous.get(link.group(1)).status_code == 200
    assert "application/rss+xml" not in anonymous.get("/collections/festival-mix-art").text
