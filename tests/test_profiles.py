"""The artist's own profile: the studio's form (photo, biographies, links, disciplines, town),
who may use it, what the catalogue and the API then show, and the admin's links between
accounts and profiles; driven through the app in-process, with records made in the database."""

from __future__ import annotations

import html
import io
import re
import struct
import threading
import zlib
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select
from starlette.testclient import TestClient

from cite_live import accounts
from cite_live.catalogue import artist_by_name
from cite_live.cli import add_user
from cite_live.db import make_engine, make_sessionmaker, migrate
from cite_live.models import Artist, User, user_artists
from cite_live.services import Services
from tests.account_fixtures import login, make_user
from tests.app_fixtures import new_client
from tests.test_openapi import check
from tests.test_pages import publish

PHOTO_ERROR_KEPT = "Choisissez à nouveau votre photo"


@dataclass
class Signed:
    email: str
    id: int
    csrf: str


def artist_of(services: Services, name: str) -> Artist:
    with services.sessions() as session:
        artist = session.scalars(select(Artist).where(Artist.name == name)).one()
        session.expunge(artist)
        return artist


@pytest.fixture
def nora(services: Services, client: TestClient) -> Signed:
    """An artist account linked to "Nora Ilić", signed in on ``client``."""
    user_id = make_user(services, "nora@example.org", artists=["Nora Ilić"])
    return Signed("nora@example.org", user_id, login(client, "nora@example.org"))


def png(width: int, height: int, mode: str = "RGBA") -> bytes:
    """Half transparent red, half opaque blue: where the crop and the white background show."""
    image = Image.new(mode, (width, height), (200, 30, 30, 0) if mode == "RGBA" else 0)
    if mode == "RGBA":
        image.paste((20, 40, 200, 255), (0, 0, width // 2, height))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def phone_jpeg() -> bytes:
    """A 400×300 JPEG with what a phone writes: a quarter-turn orientation and a GPS position."""
    image = Image.new("RGB", (400, 300), (10, 120, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {2: (45.0, 2.0, 3.0)}  # GPSInfo: latitude
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def decompression_bomb() -> bytes:
    """A PNG of a few dozen bytes that claims 100,000 × 100,000 pixels."""
    signature = b"\x89PNG\r\n\x1a\n"

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    return (
        signature
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + (chunk(b"IEND", b""))
    )


def stored_image(services: Services, key: str) -> Image.Image:
    with services.store.available_locally(key) as path:
        image = Image.open(path)
        image.load()
    return image


def profile_form(csrf: str, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": csrf,
        "bio": "Pianiste et compositrice.\n\nElle joue à la Cordonnerie.",
        "bio_en": "Pianist and composer.",
        "links": "Bandcamp https://nora.bandcamp.com/\nhttps://nora.example.org/concerts",
        "disciplines": "piano, composition, Piano",
        "commune": "  Romans-sur-Isère ",
    }
    form.update(overrides)
    return form


def post_profile(
    client: TestClient,
    artist_id: int,
    form: dict[str, Any],
    photo: tuple[str, bytes, str] | None = None,
) -> Any:
    # Multipart, as the page's form sends it, with or without a file.
    files = {"photo": photo} if photo else {"photo": ("", b"", "application/octet-stream")}
    return client.post(
        f"/studio/profiles/{artist_id}", data=form, files=files, follow_redirects=False
    )


# --- the form and what it changes ----------------------------------------------------------------


def test_an_artist_edits_their_profile_and_every_view_shows_it(
    services: Services, client: TestClient, nora: Signed
) -> None:
    artist = artist_of(services, "Nora Ilić")
    with services.sessions.begin() as session:
        publish(session, "Nuit au Cargo", artists=[("Nora Ilić", "performer")])
    form_page = client.get(f"/studio/profiles/{artist.id}")
    assert form_page.status_code == 200
    assert form_page.headers["cache-control"] == "private, no-store"
    assert 'enctype="multipart/form-data"' in form_page.text

    saved = post_profile(
        client, artist.id, profile_form(nora.csrf), ("logo.png", png(3000, 2000), "image/png")
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/studio/profiles/{artist.id}?done=profile"
    with services.sessions() as session:
        row = session.get(Artist, artist.id)
        assert row is not None
        assert row.bio == "Pianiste et compositrice.\n\nElle joue à la Cordonnerie."
        assert row.bio_en == "Pianist and composer."
        assert row.links == [
            {"label": "Bandcamp", "url": "https://nora.bandcamp.com/"},
            {"label": "", "url": "https://nora.example.org/concerts"},
        ]
        assert row.disciplines == ["piano", "composition"], "one piano, as first typed"
        assert row.commune == "Romans-sur-Isère"
        large_key, square_key = row.photo_key, row.photo_square_key
        assert (row.photo_width, row.photo_height) == (1200, 800)
    assert large_key and square_key
    assert re.fullmatch(rf"artists/{artist.id}/photos/[\w-]{{16}}\.jpg", large_key)
    assert square_key == large_key.replace(".jpg", "-square.jpg")
    large, square = stored_image(services, large_key), stored_image(services, square_key)
    assert (large.format, large.mode, large.size) == ("JPEG", "RGB", (1200, 800))
    assert (square.format, square.size) == ("JPEG", (400, 400))
    # Transparency laid on white; the square is cut from the middle (blue left, white right).
    assert large.getpixel((1100, 400)) >= (250, 250, 250)  # type: ignore[operator]
    assert square.getpixel((20, 200))[2] > 150  # type: ignore[index]
    assert square.getpixel((380, 200)) >= (250, 250, 250)  # type: ignore[operator]

    done = client.get(saved.headers["location"])
    assert "Votre profil est enregistré." in done.text
    assert 'value="Romans-sur-Isère"' in done.text

    large_url = services.store.public_url(large_key, "http://testserver")
    square_url = services.store.public_url(square_key, "http://testserver")
    page = client.get(f"/artists/{artist.slug}").text
    assert re.search(
        rf'<img class="artist__photo" src="{re.escape(large_url)}" alt="Photo de Nora Ilić" '
        r'width="1200" height="800"',
        page,
    ), page
    assert "<p>Pianiste et compositrice.</p>" in page
    assert "Pianist and composer." not in page
    assert '<a href="https://nora.bandcamp.com/" rel="me noopener">Bandcamp</a>' in page
    assert '<a href="https://nora.example.org/concerts" rel="me noopener">nora.example.org</a>' in (
        page
    )
    assert f'<meta property="og:image" content="{large_url}">' in page
    assert '"sameAs":["https://nora.bandcamp.com/","https://nora.example.org/concerts"]' in page
    english = client.get(f"/artists/{artist.slug}?lang=en").text
    assert "<p>Pianist and composer.</p>" in english
    assert "Pianiste et compositrice." not in english

    for listing in ("/artists", "/search?q=nora"):
        shown = client.get(listing).text
        assert re.search(
            rf'<img class="artist-card__photo" src="{re.escape(square_url)}" alt="" '
            r'width="64" height="64" loading="lazy"',
            shown,
        ), listing

    api = client.get(f"/api/v1/artists/{artist.slug}").json()
    assert api["picture_url"] == large_url
    assert (api["bio"], api["bio_en"]) == (
        "Pianiste et compositrice.\n\nElle joue à la Cordonnerie.",
        "Pianist and composer.",
    )
    listed = client.get("/api/v1/artists").json()["items"]
    assert [a["picture_url"] for a in listed if a["slug"] == artist.slug] == [large_url]

    # A new photo replaces the old one; both sizes of the old one leave the store.
    again = post_profile(
        client, artist.id, profile_form(nora.csrf), ("phone.jpg", phone_jpeg(), "image/jpeg")
    )
    assert again.status_code == 303
    with services.sessions() as session:
        row = session.get(Artist, artist.id)
        assert row is not None and row.photo_key not in (None, large_key)
        assert (row.photo_width, row.photo_height) == (300, 400), "turned upright"
        newer = (row.photo_key, row.photo_square_key)
    assert not services.store.exists(large_key) and not services.store.exists(square_key)
    stored = stored_image(services, newer[0])  # type: ignore[arg-type]
    assert not stored.getexif(), "no EXIF (orientation, GPS position) left in the photo"

    # Saving without a file keeps the photo; "remove" takes it away, from the store too.
    assert post_profile(client, artist.id, profile_form(nora.csrf)).status_code == 303
    assert artist_of(services, "Nora Ilić").photo_key == newer[0]
    removed = post_profile(client, artist.id, profile_form(nora.csrf, remove_photo="1"))
    assert removed.status_code == 303
    gone = artist_of(services, "Nora Ilić")
    assert (gone.photo_key, gone.photo_square_key, gone.photo_width) == (None, None, None)
    assert not any(services.store.exists(key) for key in newer if key)
    assert 'class="artist__photo"' not in client.get(f"/artists/{artist.slug}").text
    assert client.get(f"/api/v1/artists/{artist.slug}").json()["picture_url"] is None


def test_english_readers_get_the_french_biography_when_there_is_no_english_one(
    services: Services, client: TestClient, nora: Signed
) -> None:
    artist = artist_of(services, "Nora Ilić")
    response = post_profile(client, artist.id, profile_form(nora.csrf, bio_en="  \r\n "))
    assert response.status_code == 303
    assert artist_of(services, "Nora Ilić").bio_en is None
    english = client.get(f"/artists/{artist.slug}?lang=en").text
    assert '<div class="prose bio" lang="fr">' in english, "said to be French, for screen readers"
    assert "<p>Pianiste et compositrice.</p>" in english
    french = client.get(f"/artists/{artist.slug}").text
    assert '<div class="prose bio">' in french


def test_only_the_linked_accounts_and_the_admins_edit_a_profile(
    services: Services, client: TestClient, other_client: TestClient, nora: Signed
) -> None:
    nora_artist = artist_of(services, "Nora Ilić")
    make_user(services, "zoe@example.org", artists=["Zoé Martin"])
    zoe_csrf = login(other_client, "zoe@example.org")
    before = artist_of(services, "Nora Ilić")
    base = f"/studio/profiles/{nora_artist.id}"
    # Another artist: as if there were no such profile, for reading and writing alike.
    assert other_client.get(base).status_code == 404
    refused = post_profile(other_client, nora_artist.id, profile_form(zoe_csrf, bio="Volé"))
    assert refused.status_code == 404
    for missing in ("999999", "0", "-1", "99999999999999999999", "abc", "1%2F2"):
        assert client.get(f"/studio/profiles/{missing}").status_code == 404, missing
    assert artist_of(services, "Nora Ilić").bio == before.bio
    # The artist page offers the form to its own accounts only.
    assert f'href="{base}"' in client.get(f"/artists/{nora_artist.slug}").text
    assert f'href="{base}"' not in other_client.get(f"/artists/{nora_artist.slug}").text
    with new_client(services) as anonymous:
        visit = anonymous.get(f"/artists/{nora_artist.slug}")
        assert f'href="{base}"' not in visit.text
        assert anonymous.get(base, follow_redirects=False).status_code == 303

    make_user(services, "admin@example.org", "admin")
    with new_client(services) as admin:
        csrf = login(admin, "admin@example.org")
        assert admin.get(base).status_code == 200
        assert f'href="{base}"' in admin.get(f"/artists/{nora_artist.slug}").text
        saved = post_profile(admin, nora_artist.id, profile_form(csrf, bio="Corrigé."))
        assert saved.status_code == 303
    assert artist_of(services, "Nora Ilić").bio == "Corrigé."


def test_the_profiles_page_lists_an_accounts_profiles_and_leads_straight_to_a_single_one(
    services: Services, client: TestClient, other_client: TestClient, nora: Signed
) -> None:
    single = client.get("/studio/profiles", follow_redirects=False)
    nora_id = artist_of(services, "Nora Ilić").id
    assert single.status_code == 303
    assert single.headers["location"] == f"/studio/profiles/{nora_id}"
    assert 'href="/studio/profiles"' in client.get("/studio").text

    make_user(services, "duo@example.org", artists=["Duo Sable", "Trio Sable"])
    login(other_client, "duo@example.org")
    several = other_client.get("/studio/profiles")
    assert several.status_code == 200
    for name in ("Duo Sable", "Trio Sable"):
        assert f'href="/studio/profiles/{artist_of(services, name).id}"' in several.text
    assert f'href="/studio/profiles/{nora_id}"' not in several.text


# --- what the form refuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("links", "sentence"),
    [
        ("javascript:alert(1)", "La ligne 1 des liens (« javascript:alert(1) »)"),
        ("https://ok.example.org\nVoir data:text/html,<b>x</b>", "La ligne 2 des liens"),
        ("ftp://files.example.org/", "n’est pas une adresse web commençant par http:// ou"),
        ("https://", "n’est pas une adresse web"),
        ("www.example.org", "n’est pas une adresse web"),
        ('https://example.org/"onmouseover="x', "n’est pas une adresse web"),
        ("\n".join(f"https://example.org/{n}" for n in range(11)), "Donnez au plus 10 liens."),
        ("x" * 101 + " https://example.org/", "a un nom de plus de 100 caractères"),
    ],
)
def test_a_link_that_is_not_a_web_address_is_refused_and_nothing_typed_is_lost(
    services: Services, client: TestClient, nora: Signed, links: str, sentence: str
) -> None:
    artist = artist_of(services, "Nora Ilić")
    typed = profile_form(nora.csrf, links=links, bio="Ma bio tapée", commune="Valence")
    response = post_profile(client, artist.id, typed, ("p.png", png(64, 64), "image/png"))
    assert response.status_code == 400
    text = html.unescape(response.text)
    assert sentence in text
    assert 'aria-invalid="true" aria-describedby="links-hint links-error"' in response.text
    for value in ("Ma bio tapée", "Pianist and composer.", "Valence", "piano, composition"):
        assert value in text, value
    assert links in text, "the links as typed"
    assert PHOTO_ERROR_KEPT in text, "the photo, which a page cannot keep, is asked for again"
    unchanged = artist_of(services, "Nora Ilić")
    assert (unchanged.bio, unchanged.links, unchanged.photo_key) == ("", [], None)
    assert services.store.list("artists/") == [], "nothing of a refused form is stored"


@pytest.mark.parametrize(
    ("field", "value", "sentence"),
    [
        ("bio", "a" * 10_001, "La biographie est trop longue : 10 000 caractères au plus."),
        ("bio_en", "a" * 10_001, "La biographie en anglais est trop longue"),
        ("commune", "R" * 121, "Le nom de la commune est trop long : 120 caractères au plus."),
        ("disciplines", "d" * 61, "Une discipline est trop longue : 60 caractères au plus."),
        ("disciplines", ",".join(f"d{n}" for n in range(11)), "Donnez au plus 10 disciplines."),
    ],
)
def test_what_is_too_long_is_refused_in_one_sentence(
    services: Services, client: TestClient, nora: Signed, field: str, value: str, sentence: str
) -> None:
    artist = artist_of(services, "Nora Ilić")
    response = post_profile(client, artist.id, profile_form(nora.csrf, **{field: value}))
    assert response.status_code == 400
    assert sentence in html.unescape(response.text)
    assert value in response.text, "what was typed comes back"
    assert artist_of(services, "Nora Ilić").bio == ""


def test_a_field_larger_than_a_form_may_carry_is_refused_without_an_error_of_ours(
    services: Services, client: TestClient, nora: Signed
) -> None:
    artist = artist_of(services, "Nora Ilić")
    response = post_profile(client, artist.id, profile_form(nora.csrf, bio="a" * 3_000_000))
    assert response.status_code == 400
    assert artist_of(services, "Nora Ilić").bio == ""


@pytest.mark.parametrize(
    ("name", "content", "sentence"),
    [
        ("photo.jpg", b"not an image at all", "Ce fichier n’est pas une image JPEG, PNG ou WebP."),
        ("photo.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "n’est pas une image JPEG, PNG"),
        ("photo.png", "damaged", "Cette image est endommagée"),
        ("big.jpg", b"\xff\xd8" + bytes(20 * 1024 * 1024), "Cette image dépasse 20 Mo."),
        ("huge.png", "huge", "Cette image a trop de pixels"),
        ("bomb.png", "bomb", "Cette image a trop de pixels"),
    ],
)
def test_a_photo_that_is_not_a_usable_image_is_refused_and_the_text_is_kept(
    services: Services,
    client: TestClient,
    nora: Signed,
    name: str,
    content: bytes | str,
    sentence: str,
) -> None:
    artist = artist_of(services, "Nora Ilić")
    made = {
        "damaged": lambda: png(64, 64)[:-40],
        # 100 megapixels of one colour: a few hundred kilobytes.
        "huge": lambda: png(10_000, 10_000, mode="L"),
        "bomb": decompression_bomb,
    }
    data = made[content]() if isinstance(content, str) else content
    typed = profile_form(nora.csrf, bio="Gardée telle quelle")
    response = post_profile(client, artist.id, typed, (name, data, "application/octet-stream"))
    assert response.status_code == 400
    text = html.unescape(response.text)
    assert sentence in text
    assert 'aria-invalid="true" aria-describedby="photo-hint photo-error"' in response.text
    assert "Gardée telle quelle" in text and "https://nora.bandcamp.com/" in text
    assert services.store.list("artists/") == []
    assert artist_of(services, "Nora Ilić").bio == ""


def test_markup_in_every_field_is_shown_as_text_everywhere(
    services: Services, client: TestClient, nora: Signed
) -> None:
    artist = artist_of(services, "Nora Ilić")
    mark = "<script>alert(1)</script>"
    typed = profile_form(
        nora.csrf,
        bio=f"{mark} bio",
        bio_en=f"{mark} en",
        links=f'<b onclick="x">Site</b> https://example.org/\n{mark} https://example.net/',
        disciplines=f"{mark}, <i>jazz</i>",
        commune=f"{mark} ville",
    )
    assert post_profile(client, artist.id, typed).status_code == 303
    for url in (
        f"/artists/{artist.slug}",
        f"/artists/{artist.slug}?lang=en",
        "/artists",
        f"/studio/profiles/{artist.id}",
    ):
        page = client.get(url).text
        assert "<script>alert" not in page, url
        assert "<i>jazz" not in page and "<b onclick" not in page, url
    page = client.get(f"/artists/{artist.slug}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; bio" in page
    # Inside the JSON-LD script, the markup is escaped as JSON may be.
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in page
    api = client.get(f"/api/v1/artists/{artist.slug}").json()
    assert api["bio"] == f"{mark} bio" and api["commune"] == f"{mark} ville"


def test_links_stored_before_the_form_existed_never_become_unsafe_hrefs(
    services: Services, client: TestClient, nora: Signed
) -> None:
    with services.sessions.begin() as session:
        artist = session.scalars(select(Artist).where(Artist.name == "Nora Ilić")).one()
        artist.links = [
            {"label": "Piège", "url": "javascript:alert(1)"},
            {"label": "Bon", "url": "https://ok.example.org/"},
            "data:text/html,x",
        ]
        slug = artist.slug
    page = client.get(f"/artists/{slug}").text
    assert "javascript:" not in page and "data:text" not in page
    api = client.get(f"/api/v1/artists/{slug}").json()
    assert api["links"] == [{"label": "Bon", "url": "https://ok.example.org/"}]


def test_the_artist_object_answers_what_the_openapi_document_says(
    services: Services, client: TestClient, nora: Signed
) -> None:
    artist = artist_of(services, "Nora Ilić")
    post_profile(client, artist.id, profile_form(nora.csrf), ("p.png", png(90, 60), "image/png"))
    document = client.get("/api/v1/openapi.json").json()
    artist_schema = document["components"]["schemas"]["Artist"]["properties"]
    assert {"picture_url", "bio_en"} <= set(artist_schema)
    detail = check(client, document, "/api/v1/artists/{slug}", f"/api/v1/artists/{artist.slug}")
    assert detail["picture_url"].startswith("http://testserver/media/artists/")
    check(client, document, "/api/v1/artists", "/api/v1/artists")


# --- the admin links profiles and accounts -------------------------------------------------------


def admin_client(services: Services, number: int) -> tuple[TestClient, str]:
    client = new_client(services)
    client.__enter__()
    make_user(services, f"admin{number}@example.org", "admin")
    return client, login(client, f"admin{number}@example.org")


def links_of(services: Services, artist_id: int) -> list[int]:
    with services.sessions() as session:
        return sorted(
            session.scalars(
                select(user_artists.c.user_id).where(user_artists.c.artist_id == artist_id)
            )
        )


def test_an_admin_links_a_profile_made_from_a_credit_to_an_account_and_unlinks_it(
    services: Services, client: TestClient, nora: Signed
) -> None:
    with services.sessions.begin() as session:
        publish(session, "Session du Cargo", artists=[("Les Ondes", "performer")])
    ondes = artist_of(services, "Les Ondes")
    make_user(services, "admin@example.org", "admin")
    with new_client(services) as admin:
        csrf = login(admin, "admin@example.org")
        page = admin.get("/admin").text
        # Unclaimed: listed with a form to give it to an account.
        assert f'action="/admin/artists/{ondes.id}/accounts"' in page
        linked = admin.post(
            f"/admin/artists/{ondes.id}/accounts",
            data={"csrf_token": csrf, "email": "  NORA@example.org "},
            follow_redirects=False,
        )
        assert linked.status_code == 303
        assert linked.headers["location"] == "/admin?profile_q=Les+Ondes&done=linked#profiles"
        assert links_of(services, ondes.id) == [nora.id]
        # Twice is still one link.
        again = admin.post(
            f"/admin/artists/{ondes.id}/accounts",
            data={"csrf_token": csrf, "email": "nora@example.org"},
            follow_redirects=False,
        )
        assert again.status_code == 303
        assert links_of(services, ondes.id) == [nora.id]
        # Nora may now edit it, and chooses between her two profiles.
        assert client.get(f"/studio/profiles/{ondes.id}").status_code == 200
        assert client.get("/studio/profiles").status_code == 200

        # An address of no account: one sentence, the address kept.
        unknown = admin.post(
            f"/admin/artists/{ondes.id}/accounts",
            data={"csrf_token": csrf, "email": "personne@example.org"},
        )
        assert unknown.status_code == 400
        assert "Aucun compte n’a cette adresse e-mail." in html.unescape(unknown.text)
        assert 'value="personne@example.org"' in unknown.text
        for bad in ("999999", "abc", "0"):
            missing = admin.post(
                f"/admin/artists/{bad}/accounts",
                data={"csrf_token": csrf, "email": "nora@example.org"},
            )
            assert missing.status_code == 404, bad

        unlink = f"/admin/artists/{ondes.id}/accounts/{nora.id}/unlink"
        shown = admin.get(linked.headers["location"]).text
        assert "Le profil est lié au compte." in shown
        assert f'action="{unlink}"' in shown
        unlinked = admin.post(unlink, data={"csrf_token": csrf}, follow_redirects=False)
        assert unlinked.status_code == 303
        assert unlinked.headers["location"] == "/admin?profile_q=Les+Ondes&done=unlinked#profiles"
        assert links_of(services, ondes.id) == []
        assert client.get(f"/studio/profiles/{ondes.id}").status_code == 404
        # Unlinking what is no longer linked changes nothing; unknown ids are 404.
        again = admin.post(unlink, data={"csrf_token": csrf}, follow_redirects=False)
        assert again.status_code == 303
        for path in (
            f"/admin/artists/{ondes.id}/accounts/999999/unlink",
            f"/admin/artists/999999/accounts/{nora.id}/unlink",
            f"/admin/artists/{ondes.id}/accounts/x/unlink",
        ):
            assert admin.post(path, data={"csrf_token": csrf}).status_code == 404, path
    # An artist may do neither.
    assert (
        client.post(
            f"/admin/artists/{ondes.id}/accounts",
            data={"csrf_token": nora.csrf, "email": "nora@example.org"},
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/admin/artists/{artist_of(services, 'Nora Ilić').id}/accounts/{nora.id}/unlink",
            data={"csrf_token": nora.csrf},
        ).status_code
        == 403
    )
    assert links_of(services, ondes.id) == []


def test_two_admins_linking_the_same_profile_at_once_make_one_link(
    services: Services, nora: Signed
) -> None:
    with services.sessions.begin() as session:
        ondes_id = artist_by_name(session, "Les Ondes").id
    admins = [admin_client(services, number) for number in range(2)]
    barrier = threading.Barrier(len(admins))
    statuses: list[int] = []

    def link(client: TestClient, csrf: str) -> None:
        barrier.wait()
        response = client.post(
            f"/admin/artists/{ondes_id}/accounts",
            data={"csrf_token": csrf, "email": "nora@example.org"},
            follow_redirects=False,
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=link, args=admin) for admin in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client, _ in admins:
        client.__exit__(None, None, None)
    assert statuses == [303, 303]
    assert links_of(services, ondes_id) == [nora.id]


def test_a_link_made_while_another_is_being_made_is_kept_once(any_database_url: str) -> None:
    """The second of two transactions making the same link waits for the first, then finds it
    made: neither fails, one row is left (SQLite and PostgreSQL alike)."""
    engine = make_engine(any_database_url)
    try:
        migrate(engine)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            user = accounts.create_user(session, "nora@example.org", "artist")
            artist_id, user_id = artist_by_name(session, "Les Ondes").id, user.id
        first_made = threading.Event()
        second_started = threading.Event()
        results: dict[str, bool] = {}

        def first() -> None:
            with sessions.begin() as session:
                results["first"] = accounts.link_artist(session, user_id, artist_id)
                first_made.set()
                second_started.wait()

        def second() -> None:
            first_made.wait()
            with sessions.begin() as session:
                second_started.set()
                results["second"] = accounts.link_artist(session, user_id, artist_id)

        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == {"first": True, "second": False}
        with sessions() as session:
            count = session.scalar(select(func.count()).select_from(user_artists))
            assert count == 1
            assert accounts.unlink_artist(session, user_id, artist_id) is True
            assert accounts.unlink_artist(session, user_id, artist_id) is False
            session.commit()
    finally:
        engine.dispose()


def test_the_account_form_of_the_admin_page_keeps_one_link_per_profile(
    services: Services, nora: Signed
) -> None:
    """Saving an account's profiles adds the new links and drops the others, leaving the links
    it keeps alone (two saves at once then cannot insert one link twice)."""
    make_user(services, "admin@example.org", "admin")
    with new_client(services) as admin:
        csrf = login(admin, "admin@example.org")
        response = admin.post(
            f"/admin/users/{nora.id}",
            data={"csrf_token": csrf, "role": "artist", "artists": "Nora Ilić\nLes Ondes"},
            follow_redirects=False,
        )
        assert response.status_code == 303
    with services.sessions() as session:
        user = session.get(User, nora.id)
        assert user is not None
        assert sorted(a.name for a in user.artists) == ["Les Ondes", "Nora Ilić"]


def test_an_invitation_and_the_command_line_claim_a_profile_made_from_a_credit(
    services: Services,
) -> None:
    """Naming a profile that a credit made, in any case and spacing, links that very profile:
    no second "Les Ondes" appears."""
    with services.sessions.begin() as session:
        publish(session, "Session du Cargo", artists=[("Les Ondes", "performer")])
        publish(session, "Autre session", artists=[("Trio Sable", "performer")])
    ondes, sable = artist_of(services, "Les Ondes"), artist_of(services, "Trio Sable")
    add_user(services, "ondes@example.org", "artist", ["  les   ondes "], None)
    make_user(services, "admin@example.org", "admin")
    with new_client(services) as admin:
        csrf = login(admin, "admin@example.org")
        invited = admin.post(
            "/admin/invitations",
            data={
                "csrf_token": csrf,
                "email": "sable@example.org",
                "role": "artist",
                "artists": "TRIO SABLE",
            },
        )
        assert invited.status_code == 200
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Artist)) == 2
        by_email = {
            email: artist
            for email, artist in session.execute(
                select(User.email, user_artists.c.artist_id).join(
                    user_artists, user_artists.c.user_id == User.id
                )
            )
        }
    assert by_email == {"ondes@example.org": ondes.id, "sable@example.org": sable.id}
