"""The artist's studio: my productions and their jobs, the status endpoint, edit, cover, replace,
delete and retry; driven through the app in-process, with records made in the database."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from starlette.testclient import TestClient

from cite_live import covers
from cite_live.catalogue import set_credits, unique_slug
from cite_live.models import Artist, Chapter, Job, MediaVersion, Production, Venue
from cite_live.production_form import (
    SETLIST_AFTER_END,
    SETLIST_BAD_LINE,
    SETLIST_BAD_TIME,
    SETLIST_MORE_LINES,
    SETLIST_TOO_LONG,
    clock,
    parse_setlist,
)
from cite_live.services import Services, open_services
from cite_live.storage import original_key
from cite_live.web.urls import Urls
from tests.account_fixtures import artist_id, login, make_user, token_for
from tests.app_fixtures import make_settings
from tests.test_openapi import check

BASE = datetime(2025, 3, 1, 12, tzinfo=UTC)
PLAYLIST_ERROR = "This file is a playlist, not a recording."


@dataclass
class Owner:
    email: str
    id: int
    csrf: str


@pytest.fixture
def nora(services: Services, client: TestClient) -> Owner:
    """An artist account linked to "Nora Ilić", signed in on ``client``."""
    user_id = make_user(services, "nora@example.org", artists=["Nora Ilić"])
    return Owner("nora@example.org", user_id, login(client, "nora@example.org"))


@dataclass
class RecordingQueue:
    """A broker stand-in: the studio's part ends when a job is handed over."""

    sent: list[int] = field(default_factory=list)

    def enqueue(self, job_id: int) -> None:
        self.sent.append(job_id)


def add_production(
    services: Services,
    owner_id: int | None,
    title: str,
    *,
    status: str = "ready",
    visibility: str = "public",
    minutes: int = 0,
    job: tuple[str, float, str | None] | None = None,
    original: bool = False,
    duration: float = 300.0,
) -> str:
    """A production as ingest leaves it (a version whose objects need not exist, unless asked),
    created ``minutes`` after BASE, with its newest job in the given (state, progress, error)."""
    with services.sessions.begin() as session:
        production = Production(
            title=title,
            slug=unique_slug(session, Production, title),
            kind="audio",
            status=status,
            visibility=visibility,
            duration=duration,
            owner_id=owner_id,
            created_at=BASE + timedelta(minutes=minutes),
            published_at=BASE + timedelta(minutes=minutes) if status == "ready" else None,
            error=job[2] if job and status == "failed" else None,
        )
        session.add(production)
        session.flush()
        set_credits(session, production, [("Nora Ilić", "performer")])
        if original:
            production.original_key = original_key(production.id, "capture.wav")
            services.store.put_bytes(production.original_key, b"RIFF....WAVE")
        if status == "ready":
            prefix = f"productions/{production.id}/v1/"
            version = MediaVersion(
                production_id=production.id,
                name="v1",
                state="published",
                prefix=prefix,
                master_key=prefix + "master.m3u8",
                cover_key=prefix + "cover.jpg",
                ladder=[],
            )
            session.add(version)
            session.flush()
            production.current_version = version
        if job is not None:
            state, progress, error = job
            session.add(
                Job(
                    type="transcode",
                    production_id=production.id,
                    state=state,
                    progress=progress,
                    error=error,
                    attempts=1 if state != "queued" else 0,
                )
            )
        return production.id


def page_token(client: TestClient, path: str) -> str:
    """The hidden csrf_token of the forms on ``path``, as a browser would send it."""
    found = re.findall(r'name="csrf_token" value="([^"]*)"', client.get(path).text)
    assert found and all(found), f"every form on {path} carries its token"
    return str(found[0])


def csrf_form(owner: Owner, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": owner.csrf, **fields}


def edit_form(owner: Owner, **overrides: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "title": "Nuit au Cargo",
        "title_en": "Night at the Cargo",
        "description": "Un concert.\n\nDeux rappels.",
        "description_en": "",
        "credit_name": ["Nora Ilić", "Paul Vercors", ""],
        "credit_role": ["performer", "composer", "performer"],
        "venue_id": "",
        "venue_new": "La Cordonnerie",
        "recorded_on": "2025-03-14",
        "session_type": "live",
        "licence": "CC-BY-4.0",
        "tags": "jazz, trio , ,Jazz",
        "setlist": "0:00 Ouverture\n\n1:02 – Deuxième mouvement\n3:02.5 Rappel",
        "visibility": "unlisted",
    }
    form.update(overrides)
    return csrf_form(owner, **form)


def jpeg_object(services: Services, key: str) -> Image.Image:
    with services.store.available_locally(key) as path:
        image = Image.open(path)
        image.load()
    return image


# --- my productions ------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    page = client.get("/studio", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2Fstudio"
    status = client.get("/api/v1/me/productions")
    assert status.status_code == 401
    assert status.json()["error"]


def test_my_productions_shows_mine_newest_first_with_the_state_of_their_jobs(
    services: Services, client: TestClient, nora: Owner
) -> None:
    someone = make_user(services, "paul@example.org")
    add_production(services, someone, "Pas à moi", minutes=50)
    add_production(services, nora.id, "Prête depuis longtemps", minutes=1, job=("done", 1, None))
    add_production(
        services, nora.id, "En file", status="processing", minutes=2, job=("queued", 0, None)
    )
    add_production(
        services, nora.id, "En cours", status="processing", minutes=3, job=("running", 0.42, None)
    )
    add_production(
        services, nora.id, "Refusée", status="failed", minutes=4, job=("failed", 0, PLAYLIST_ERROR)
    )
    page = client.get("/studio")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "private, no-store"
    text = page.text
    assert "Pas à moi" not in text
    order = [text.index(t) for t in ("Refusée", "En cours", "En file", "Prête depuis longtemps")]
    assert order == sorted(order)
    assert "4 productions" in text
    # Each state in plain French words; the transcoder's sentence too.
    assert "En attente de traitement" in text
    assert 'data-state="running"' in text and 'value="0.42"' in text
    assert "42\u00a0%" in text or "42\u202f%" in text
    assert "Ce fichier est une playlist, pas un enregistrement." in text
    failed_id = re.search(r'data-id="(\w+)" data-state="failed"', text)
    assert failed_id is not None
    assert f'action="/studio/productions/{failed_id.group(1)}/retry"' in text
    # The upload panel: tus endpoint, the size limit, the page's language.
    assert 'data-endpoint="/api/v1/uploads/"' in text
    assert f'data-max-bytes="{services.settings.limits.max_bytes}"' in text
    assert '<meta name="csrf-token"' in text
    assert Urls().static("vendor/uppy/uppy.min.css") in text
    english = client.get("/studio?lang=en").text
    assert "Waiting to be processed" in english and PLAYLIST_ERROR in english


def test_the_status_endpoint_answers_the_page_and_scripts_alike(
    services: Services, client: TestClient, other_client: TestClient, nora: Owner
) -> None:
    production_id = add_production(
        services, nora.id, "En cours", status="processing", job=("running", 0.25, None)
    )
    make_user(services, "paul@example.org")
    add_production(services, None, "Démo")
    by_cookie = client.get("/api/v1/me/productions")
    assert by_cookie.status_code == 200
    assert by_cookie.headers["cache-control"] == "private, no-store"
    body = by_cookie.json()
    assert body["total"] == 1 and body["page"] == 1
    (item,) = body["items"]
    assert item["id"] == production_id
    assert item["status"] == "processing" and item["visibility"] == "public"
    assert item["job"] == {
        "state": "running",
        "progress": 0.25,
        "error": None,
        "attempts": 1,
        "max_attempts": 3,
    }
    assert item["edit_url"] == f"http://testserver/studio/productions/{production_id}"
    assert item["page_url"].startswith("http://testserver/productions/")
    token = token_for(services, nora.email)
    by_token = other_client.get(
        "/api/v1/me/productions", headers={"Authorization": f"Bearer {token}"}
    )
    assert by_token.json() == body
    paul = token_for(services, "paul@example.org")
    theirs = other_client.get("/api/v1/me/productions", headers={"Authorization": f"Bearer {paul}"})
    assert theirs.json()["items"] == []


# --- edit ----------------------------------------------------------------------------------------


def test_edit_saves_every_field_and_search_follows(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Capture du 14")
    with services.sessions() as session:
        slug = session.get(Production, production_id).slug  # type: ignore[union-attr]
    form = client.get(f"/studio/productions/{production_id}")
    assert form.status_code == 200
    assert 'value="Capture du 14"' in form.text
    token = page_token(client, f"/studio/productions/{production_id}")
    saved = client.post(
        f"/studio/productions/{production_id}",
        data={**edit_form(nora), "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"/studio/productions/{production_id}?done=saved"
    shown = client.get(saved.headers["location"]).text
    assert "Enregistré." in shown
    assert "0:00 Ouverture\n1:02 Deuxième mouvement\n3:02.5 Rappel" in shown
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        # The form made it unlisted: a new address holding a secret, whatever the old one was.
        assert production.slug != slug
        assert re.fullmatch(r"nuit-au-cargo-[A-Za-z0-9_-]{11}", production.slug)
        assert (production.title, production.title_en) == ("Nuit au Cargo", "Night at the Cargo")
        assert production.description == "Un concert.\n\nDeux rappels."
        assert production.description_en is None
        assert [(c.artist.name, c.role) for c in production.credits] == [
            ("Nora Ilić", "performer"),
            ("Paul Vercors", "composer"),
        ]
        assert production.credits[0].artist_id == artist_id(services, "Nora Ilić")
        assert production.venue is not None and production.venue.name == "La Cordonnerie"
        assert production.recorded_on == date(2025, 3, 14)
        assert (production.session_type, production.licence) == ("live", "CC-BY-4.0")
        assert [t.name for t in production.tags] == ["jazz", "trio"]
        assert [(c.title, c.start) for c in production.chapters] == [
            ("Ouverture", 0.0),
            ("Deuxième mouvement", 62.0),
            ("Rappel", 182.5),
        ]
        assert production.visibility == "unlisted"
        # search.py's listener reindexed what search reads.
        for word in ("nuit au cargo", "night", "paul vercors", "cordonnerie", "jazz", "rappel"):
            assert word in production.search_text
        assert "capture" not in production.search_text


def test_a_second_save_picks_an_existing_venue_and_keeps_the_setlist(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Capture")
    with services.sessions.begin() as session:
        venue = Venue(name="Le Cargo", slug="le-cargo", description="")
        session.add(venue)
        session.flush()
        venue_id = venue.id
    url = f"/studio/productions/{production_id}"
    client.post(url, data=edit_form(nora, venue_new="", venue_id=str(venue_id)))
    with services.sessions() as session:
        chapter_ids = session.scalars(select(Chapter.id).order_by(Chapter.start)).all()
    client.post(url, data=edit_form(nora, venue_new="", venue_id=str(venue_id)))
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.venue_id == venue_id
        assert session.scalars(select(Chapter.id).order_by(Chapter.start)).all() == chapter_ids
        assert session.scalars(select(Venue.name)).all() == ["Le Cargo"]


@pytest.mark.parametrize(
    ("field", "value", "sentence"),
    [
        (
            "setlist",
            "0:00 Ouverture\nDeuxième sans temps",
            "La ligne 2 du programme (« Deuxième sans temps ») ne commence pas par un temps",
        ),
        ("setlist", "0:00 A\n1:75 B", "La ligne 2 du programme (« 1:75 B ») indique un temps"),
        (
            "setlist",
            "0:00 A\n5:00 Après la fin",
            "La ligne 2 du programme (« 5:00 Après la fin ») commence après la fin",
        ),
        ("licence", "WTFPL", "Choisissez une licence dans la liste."),
        ("recorded_on", "14/03/2025", "La date d’enregistrement doit être une vraie date"),
        ("recorded_on", "2025-02-30", "La date d’enregistrement doit être une vraie date"),
        ("recorded_on", "2999-01-01", "La date d’enregistrement ne peut pas être dans le futur."),
        ("session_type", "wedding", "Choisissez un type dans la liste."),
        ("visibility", "everyone", "Choisissez qui peut voir cette production."),
        ("title", "   ", "Donnez un titre à la production."),
        ("venue_id", "999999", "Choisissez un lieu dans la liste"),
        ("credit_role", ["performer", "kazoo", "performer"], "Choisissez un rôle dans la liste"),
    ],
)
def test_edit_refuses_bad_input_with_one_sentence_and_keeps_what_was_typed(
    services: Services,
    client: TestClient,
    nora: Owner,
    field: str,
    value: Any,
    sentence: str,
) -> None:
    production_id = add_production(services, nora.id, "Capture", duration=240.0)
    overrides = {field: value}
    if field == "venue_id":
        overrides["venue_new"] = ""
    response = client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora, description="Texte tapé <b>à garder</b>", **overrides),
        follow_redirects=False,
    )
    assert response.status_code == 400
    assert sentence in response.text
    assert response.text.count('class="field-error"') == 1
    assert 'aria-invalid="true"' in response.text
    assert "Texte tapé &lt;b&gt;à garder&lt;/b&gt;" in response.text
    assert "Certains champs sont à corriger" in response.text
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.title == "Capture"
        assert production.description == "" and not production.chapters


def test_a_placeholder_title_names_the_page_until_it_is_published(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "capture 0042", status="processing")
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.title_is_placeholder = True
    client.post(f"/studio/productions/{production_id}", data=edit_form(nora))
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        # Its page's address follows the chosen title (with a secret: it is not listed yet).
        assert production.slug.startswith("nuit-au-cargo-") and not production.title_is_placeholder


def test_private_hides_the_production_from_everyone_else(
    services: Services, client: TestClient, other_client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Répétition")
    with services.sessions() as session:
        slug = session.get(Production, production_id).slug  # type: ignore[union-attr]
    assert other_client.get(f"/productions/{slug}").status_code == 200
    client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora, title="Répétition", visibility="private"),
    )
    assert other_client.get(f"/productions/{slug}").status_code == 404
    assert other_client.get(f"/api/v1/productions/{production_id}").status_code == 404
    (item,) = client.get("/api/v1/me/productions").json()["items"]
    assert item["visibility"] == "private"


# --- who may ------------------------------------------------------------------------------------


def test_every_studio_page_is_404_to_other_accounts_and_open_to_admins(
    services: Services, client: TestClient, other_client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "À Nora", original=True)
    make_user(services, "paul@example.org")
    paul = login(other_client, "paul@example.org")
    base = f"/studio/productions/{production_id}"
    for path in (base, f"{base}/replace", f"{base}/delete", "/studio/productions/nope"):
        assert other_client.get(path).status_code == 404, path
    for path in (base, f"{base}/delete", f"{base}/retry"):
        response = other_client.post(path, data={"csrf_token": paul, "title": "Volé"})
        assert response.status_code == 404, path
        # The same answer as for an id that does not exist: nothing confirms it is there.
        assert response.text == other_client.post(
            path.replace(production_id, "nope00000000"), data={"csrf_token": paul}
        ).text.replace("nope00000000", production_id)
    # A cover sent for someone else's production is not even decoded, let alone stored.
    stolen = other_client.post(
        base,
        data={"csrf_token": paul, "title": "Volé", "visibility": "public"},
        files={"cover": ("c.png", _png_with_transparency(32, 32), "image/png")},
    )
    assert stolen.status_code == 404
    assert services.store.list(f"productions/{production_id}/covers/") == []
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.title == "À Nora"
    assert services.store.exists(original_key(production_id, "capture.wav"))
    other_client.post("/logout", data={"csrf_token": paul})
    make_user(services, "admin@example.org", "admin")
    login(other_client, "admin@example.org")
    assert other_client.get(base).status_code == 200
    assert other_client.get(f"{base}/delete").status_code == 200


def test_a_form_without_its_csrf_token_is_refused(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Capture")
    form = edit_form(nora)
    del form["csrf_token"]
    response = client.post(f"/studio/productions/{production_id}", data=form)
    assert response.status_code == 403
    # The same with a cover: the multipart body is refused before anything reads the image.
    response = client.post(
        f"/studio/productions/{production_id}",
        data=form,
        files={"cover": ("c.png", _png_with_transparency(32, 32), "image/png")},
    )
    assert response.status_code == 403
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        assert (production.title, production.cover_key) == ("Capture", None)
    assert services.store.list(f"productions/{production_id}/covers/") == []


# --- cover ---------------------------------------------------------------------------------------


def _png_with_transparency(width: int, height: int) -> bytes:
    image = Image.new("RGBA", (width, height), (200, 30, 30, 0))
    image.paste((20, 40, 200, 255), (0, 0, width // 2, height))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A few bytes of PNG whose header claims ``width``×``height`` pixels: a decompression
    bomb's opening, refused before a single row is inflated."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def _rotated_jpeg() -> bytes:
    """400×200 pixels, with an EXIF orientation saying "turn me a quarter" (as phones write)."""
    image = Image.new("RGB", (400, 200), (10, 120, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_a_cover_is_reencoded_shown_everywhere_and_replaces_the_previous_one(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Pochette")
    url = f"/studio/productions/{production_id}"
    # The cover travels with the rest of the form, and is saved by the same button.
    first = client.post(
        url,
        data={**edit_form(nora, visibility="public"), "csrf_token": page_token(client, url)},
        files={"cover": ("logo.png", _png_with_transparency(3000, 2000), "image/png")},
        follow_redirects=False,
    )
    assert first.status_code == 303
    assert first.headers["location"] == f"/studio/productions/{production_id}?done=saved"
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.cover_key is not None
        assert production.title == "Nuit au Cargo", "the other fields were saved with it"
        first_key, slug = production.cover_key, production.slug
    assert re.fullmatch(rf"productions/{production_id}/covers/[\w-]{{16}}\.jpg", first_key)
    stored = jpeg_object(services, first_key)
    assert (stored.format, stored.mode, stored.size) == ("JPEG", "RGB", (1600, 1067))
    # Transparency was laid on white, not black.
    assert stored.getpixel((1500, 500)) >= (250, 250, 250)  # type: ignore[operator]
    assert "Image.Exif" not in repr(stored.info.get("exif"))

    # A new file wins over the box asking for the recording's image (both were sent).
    second = client.post(
        url,
        data=edit_form(nora, visibility="public", remove_cover="1"),
        files={"cover": ("phone.jpg", _rotated_jpeg(), "image/jpeg")},
        follow_redirects=False,
    )
    assert second.status_code == 303
    with services.sessions() as session:
        second_key = session.get(Production, production_id).cover_key  # type: ignore[union-attr]
    assert second_key and second_key != first_key
    assert jpeg_object(services, second_key).size == (200, 400), "turned upright"
    assert not services.store.exists(first_key), "the previous custom cover left the store"

    cover_url = services.store.public_url(second_key, "http://testserver")
    assert client.get(f"/api/v1/productions/{production_id}").json()["poster_url"] == cover_url
    page = client.get(f"/productions/{slug}").text
    assert f'content="{cover_url}"' in page, "og:image"
    assert cover_url in client.get(f"/studio/productions/{production_id}").text

    # Saving again without choosing a file (a browser sends an empty part) keeps the cover.
    kept = client.post(
        url,
        data=edit_form(nora, visibility="public", title="Pochette gardée"),
        files={"cover": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert kept.status_code == 303
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.title == "Pochette gardée"
        assert production.cover_key == second_key

    removed = client.post(
        url, data=edit_form(nora, visibility="public", remove_cover="1"), follow_redirects=False
    )
    assert removed.headers["location"].endswith("?done=saved")
    assert not services.store.exists(second_key)
    with services.sessions() as session:
        assert session.get(Production, production_id).cover_key is None  # type: ignore[union-attr]
    assert services.store.list(f"productions/{production_id}/covers/") == []


@pytest.mark.parametrize(
    ("name", "content", "sentence"),
    [
        ("cover.jpg", b"not an image at all", "Ce fichier n’est pas une image JPEG, PNG ou WebP."),
        ("cover.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "n’est pas une image JPEG, PNG"),
        ("cover.png", None, "Cette image est endommagée"),
        ("big.jpg", b"\xff\xd8" + bytes(20 * 1024 * 1024), "Cette image dépasse 20 Mo."),
        ("bomb.png", _png_claiming(60_000, 60_000), "Cette image a trop de pixels"),
    ],
)
def test_a_file_that_is_not_a_usable_image_is_refused_in_one_sentence_keeping_the_rest(
    services: Services,
    client: TestClient,
    nora: Owner,
    name: str,
    content: bytes | None,
    sentence: str,
) -> None:
    production_id = add_production(services, nora.id, "Pochette")
    if content is None:
        content = _png_with_transparency(64, 64)[:-40]  # cut before its end
    response = client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora, description="Texte tapé <b>à garder</b>"),
        files={"cover": (name, content, "application/octet-stream")},
    )
    assert response.status_code == 400
    assert sentence in response.text
    assert response.text.count('class="field-error"') == 1
    assert 'id="cover" name="cover" type="file"' in response.text
    # Everything typed comes back; the file cannot, and the page says so.
    assert 'value="Nuit au Cargo"' in response.text
    assert "Texte tapé &lt;b&gt;à garder&lt;/b&gt;" in response.text
    assert "le fichier de l’image est à choisir à nouveau" in response.text
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        assert (production.title, production.cover_key) == ("Pochette", None)
    assert services.store.list(f"productions/{production_id}/covers/") == []


def test_a_good_image_is_not_kept_when_another_field_is_refused(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Pochette")
    response = client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora, recorded_on="2999-01-01"),
        files={"cover": ("c.png", _png_with_transparency(64, 64), "image/png")},
    )
    assert response.status_code == 400
    assert "La date d’enregistrement ne peut pas être dans le futur." in response.text
    assert "le fichier de l’image est à choisir à nouveau" in response.text
    assert services.store.list(f"productions/{production_id}/covers/") == []
    # Without a file sent, nothing is said about choosing one again.
    again = client.post(
        f"/studio/productions/{production_id}", data=edit_form(nora, recorded_on="2999-01-01")
    )
    assert again.status_code == 400 and "à choisir à nouveau" not in again.text


def test_two_files_sent_for_the_cover_are_refused_and_none_is_stored(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Pochette")
    png = _png_with_transparency(8, 8)
    response = client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora),
        files=[("cover", ("a.png", png, "image/png")), ("cover", ("b.png", png, "image/png"))],
    )
    assert response.status_code == 400
    assert services.store.list(f"productions/{production_id}/covers/") == []


def test_an_image_with_too_many_pixels_is_refused_before_decoding(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Pochette")
    # A 10000×10000 PNG of one colour compresses to a few hundred kilobytes.
    image = Image.new("L", (10_000, 10_000), 0)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    response = client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora),
        files={"cover": ("huge.png", out.getvalue(), "image/png")},
    )
    assert response.status_code == 400
    assert "Cette image a trop de pixels" in response.text


# --- replace, delete, retry ----------------------------------------------------------------------


def test_the_replace_page_tells_the_uploader_which_production(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "À remplacer")
    page = client.get(f"/studio/productions/{production_id}/replace")
    assert page.status_code == 200
    assert f'data-production="{production_id}"' in page.text and "data-single" in page.text
    assert Urls().static("js/studio.js") in page.text


def test_delete_asks_first_then_removes_records_and_objects(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "À effacer", original=True)
    prefix = f"productions/{production_id}/v1/"
    services.store.put_bytes(prefix + "master.m3u8", b"#EXTM3U\n")
    client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora, title="À effacer"),
        files={"cover": ("c.png", _png_with_transparency(32, 32), "image/png")},
    )
    assert services.store.list(f"productions/{production_id}/covers/") != []
    confirm = client.get(f"/studio/productions/{production_id}/delete")
    assert confirm.status_code == 200
    assert "Supprimer « À effacer » ?" in confirm.text
    assert f'action="/studio/productions/{production_id}/delete"' in confirm.text
    with services.sessions() as session:
        assert session.get(Production, production_id) is not None, "a GET deletes nothing"
    token = page_token(client, f"/studio/productions/{production_id}/delete")
    done = client.post(
        f"/studio/productions/{production_id}/delete",
        data={"csrf_token": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == "/studio?done=deleted"
    assert "La production a été supprimée." in client.get("/studio?done=deleted").text
    with services.sessions() as session:
        assert session.get(Production, production_id) is None
        assert session.scalars(select(Job).where(Job.production_id == production_id)).all() == []
    assert services.store.list(f"productions/{production_id}/") == []
    assert services.store.list(f"originals/{production_id}/") == []
    assert client.get(f"/studio/productions/{production_id}").status_code == 404


def test_retry_queues_a_new_job_for_a_failed_production(
    services: Services, client: TestClient, nora: Owner
) -> None:
    queue = RecordingQueue()
    services.queue = queue
    failed = add_production(
        services,
        nora.id,
        "Échouée",
        status="failed",
        original=True,
        job=("failed", 0, "The media store could not be reached, so this file was not processed."),
    )
    response = client.post(
        f"/studio/productions/{failed}/retry",
        data={"csrf_token": page_token(client, "/studio")},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/studio?done=retried"
    with services.sessions() as session:
        jobs = session.scalars(select(Job).where(Job.production_id == failed).order_by(Job.id))
        states = [(job.state, job.id) for job in jobs]
        production = session.get(Production, failed)
        assert production is not None and production.status == "processing"
    assert [state for state, _ in states] == ["failed", "queued"]
    assert queue.sent == [states[1][1]]
    again = client.post(
        f"/studio/productions/{failed}/retry", data=csrf_form(nora), follow_redirects=False
    )
    assert again.headers["location"] == "/studio?done=busy"
    assert queue.sent == [states[1][1]]


def test_retry_says_so_when_the_original_is_gone(
    services: Services, client: TestClient, nora: Owner
) -> None:
    services.queue = RecordingQueue()
    refused = add_production(
        services, nora.id, "Refusée", status="failed", job=("failed", 0, PLAYLIST_ERROR)
    )
    response = client.post(
        f"/studio/productions/{refused}/retry", data=csrf_form(nora), follow_redirects=False
    )
    assert response.headers["location"] == "/studio?done=not-retried"
    assert "son fichier d’origine n’existe plus" in client.get(response.headers["location"]).text


# --- the setlist grammar -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1:23 Titre", [("Titre", 83.0)]),
        ("01:02:03 Titre", [("Titre", 3723.0)]),
        ("  1:23 -  Titre  long ", [("Titre long", 83.0)]),
        ("2:00 B\n1:00 A", [("A", 60.0), ("B", 120.0)]),
        ("0:05,5 Virgule", [("Virgule", 5.5)]),
        ("\n\n", []),
    ],
)
def test_setlist_lines_are_read_in_time_order(text: str, expected: Sequence[Any]) -> None:
    assert parse_setlist(text, None) == (list(expected), None)


@pytest.mark.parametrize(
    "line", ["Titre seul", "1:23", "1:2:3:4 Trop", "1:60 Secondes", "1:60:00 X"]
)
def test_a_setlist_line_that_is_not_time_then_title_is_named(line: str) -> None:
    chapters, error = parse_setlist(f"0:00 Début\n{line}", None)
    assert chapters == [] and error is not None
    assert error.values["number"] == "2"


def test_setlist_times_are_shown_as_they_were_typed() -> None:
    assert [clock(s) for s in (0, 83, 3723, 5.5, 62.25)] == [
        "0:00",
        "1:23",
        "1:02:03",
        "0:05.5",
        "1:02.25",
    ]


def test_an_edit_names_a_new_artist_once_and_matches_an_existing_one_by_name(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Duo")
    form = edit_form(
        nora,
        credit_name=["nora ilić", "Zoé Nouvelle", "Zoé  Nouvelle"],
        credit_role=["performer", "guest", "guest"],
    )
    assert client.post(f"/studio/productions/{production_id}", data=form).status_code == 200
    with services.sessions() as session:
        names = session.scalars(select(Artist.name).order_by(Artist.name)).all()
        assert names == ["Nora Ilić", "Zoé Nouvelle"]


def test_the_cover_of_a_private_production_reaches_its_owner_only_through_a_signed_link(
    services: Services, client: TestClient, other_client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Secrète", visibility="private")
    client.post(
        f"/studio/productions/{production_id}",
        data=edit_form(nora, visibility="private"),
        files={"cover": ("c.png", _png_with_transparency(64, 64), "image/png")},
    )
    with services.sessions() as session:
        key = session.get(Production, production_id).cover_key  # type: ignore[union-attr]
    assert key is not None
    page = client.get(f"/studio/productions/{production_id}").text
    found = re.search(r'class="studio-cover__image" src="http://testserver([^"]+)"', page)
    assert found is not None and found.group(1).startswith("/media/private/")
    signed = other_client.get(found.group(1))
    assert signed.status_code == 200 and signed.headers["content-type"] == "image/jpeg"
    assert other_client.get(f"/media/{key}").status_code == 404


def test_two_saves_of_a_cover_at_once_each_remove_only_what_they_replaced(
    any_database_url: str, tmp_path: Path
) -> None:
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        production_id = add_production(services, None, "Pochette")
        with services.sessions.begin() as session:
            assert covers.swap(session, production_id, "first") is None
        with services.sessions.begin() as late:
            # A save that read the production before another one committed its cover...
            production = late.get(Production, production_id)
            assert production is not None and production.cover_key == "first"
            with services.sessions.begin() as quick:
                assert covers.swap(quick, production_id, "quick") == "first"
            # ...replaces what is there now: the cover to remove is "quick", not "first" (which
            # the quick save removes), so that no image is left in the store for nobody.
            assert covers.swap(late, production_id, "late") == "quick"
        with services.sessions() as session:
            production = session.get(Production, production_id)
            assert production is not None and production.cover_key == "late"
    finally:
        services.close()


def rows_of(page: str) -> dict[str, str]:
    """Each row of the studio's list, by production id."""
    return {
        found.group(1): block
        for block in page.split('<li class="studio-item"')[1:]
        if (found := re.search(r'data-id="(\w+)"', block))
    }


def picture_src(row: str) -> str | None:
    found = re.search(r'<img class="studio-item__picture"[^>]* src="([^"]+)"', row)
    return found.group(1) if found else None


def test_each_of_my_productions_shows_its_picture_signed_when_only_i_may_see_it(
    services: Services, client: TestClient, other_client: TestClient, nora: Owner
) -> None:
    public_id = add_production(services, nora.id, "Publique", minutes=1)
    private_id = add_production(services, nora.id, "Privée", visibility="private", minutes=2)
    waiting_id = add_production(
        services, nora.id, "En cours", status="processing", minutes=3, job=("running", 0.5, None)
    )
    chosen_id = add_production(services, nora.id, "Choisie", status="processing", minutes=4)
    jpeg = covers.reencode(io.BytesIO(_png_with_transparency(32, 32)))
    for production_id in (public_id, private_id):
        services.store.put_bytes(f"productions/{production_id}/v1/cover.jpg", jpeg)
    # A cover chosen while the recording still processes is shown to its owner at once.
    chosen_key = f"productions/{chosen_id}/covers/chosen.jpg"
    services.store.put_bytes(chosen_key, jpeg)
    with services.sessions.begin() as session:
        session.get(Production, chosen_id).cover_key = chosen_key  # type: ignore[union-attr]

    page = client.get("/studio").text
    rows = rows_of(page)
    site = "http://testserver"
    assert picture_src(rows[public_id]) == f"{site}/media/productions/{public_id}/v1/cover.jpg"
    for production_id, key in (
        (private_id, f"productions/{private_id}/v1/cover.jpg"),
        (chosen_id, chosen_key),
    ):
        src = picture_src(rows[production_id])
        assert src is not None and src.startswith(f"{site}/media/private/"), src
        assert src.endswith(key)
        shown = client.get(src.removeprefix(site))
        assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
        # Its public address answers nobody, and the page never names it.
        assert other_client.get(f"/media/{key}").status_code == 404
        assert f"{site}/media/{key}" not in page
    # Nothing to show yet: a neutral placeholder, not a broken image.
    assert picture_src(rows[waiting_id]) is None
    assert 'class="studio-item__picture studio-item__picture--none"' in rows[waiting_id]

    # Another artist's list has none of them, nor their addresses.
    make_user(services, "paul@example.org")
    login(other_client, "paul@example.org")
    theirs = other_client.get("/studio").text
    assert "/media/private/" not in theirs and private_id not in theirs


def player_config(page: str) -> dict[str, Any] | None:
    found = re.search(r"<script type=\"application/json\" data-player-config>(.*?)</script>", page)
    return json.loads(found.group(1)) if found else None


def test_the_edit_page_plays_the_production_for_its_managers_or_says_why_it_cannot(
    services: Services, client: TestClient, other_client: TestClient, nora: Owner
) -> None:
    private_id = add_production(services, nora.id, "Privée", visibility="private")
    edit = f"/studio/productions/{private_id}"
    page = client.get(edit).text
    config = player_config(page)
    assert config is not None and config["kind"] == "audio"
    master = f"productions/{private_id}/v1/master.m3u8"
    assert config["hls_url"].startswith("http://testserver/media/private/")
    assert config["hls_url"].endswith(master)
    # The player's styles are in the site's sheet, its loader comes with the site's script.
    assert Urls().static("css/site.css") in page and Urls().static("js/site.js") in page
    # The token in the link is good for this production's media, whoever holds the link.
    services.store.put_bytes(master, b"#EXTM3U\n")
    assert other_client.get(config["hls_url"]).status_code == 200
    assert other_client.get(f"/media/{master}").status_code == 404
    # The administrators preview it alike.
    make_user(services, "admin@example.org", "admin")
    login(other_client, "admin@example.org")
    admin_config = player_config(other_client.get(edit).text)
    assert admin_config is not None and "/media/private/" in admin_config["hls_url"]

    waiting_id = add_production(
        services, nora.id, "En cours", status="processing", job=("running", 0.25, None)
    )
    failed_id = add_production(
        services, nora.id, "Ratée", status="failed", job=("failed", 0, PLAYLIST_ERROR)
    )
    for production_id, said in (
        (waiting_id, "Traitement en cours"),
        (failed_id, "Échec du traitement"),
    ):
        page = client.get(f"/studio/productions/{production_id}").text
        preview = page.split('class="section studio-preview"', 1)[1].split("</section>", 1)[0]
        assert said in preview, production_id
        # No element is a player (the inline script of every page names the attribute).
        assert player_config(page) is None
        assert not re.search(r"<[a-z]+\s[^>]*\bdata-player[\s=>]", page)
        assert Urls().static("js/player.js") not in page
    assert "Il n’y a rien à lire" in preview
    assert f'action="/studio/productions/{failed_id}/retry"' in preview


def test_the_status_endpoint_answers_what_the_openapi_document_says(
    services: Services, client: TestClient, nora: Owner
) -> None:
    add_production(services, nora.id, "Prête", job=("done", 1, None))
    add_production(
        services, nora.id, "Ratée", status="failed", minutes=1, job=("failed", 0, PLAYLIST_ERROR)
    )
    add_production(services, nora.id, "Sans tâche", status="processing", minutes=2)
    document = client.get("/api/v1/openapi.json").json()
    path = "/api/v1/me/productions"
    body = check(client, document, path, path)
    assert [item["title"] for item in body["items"]] == ["Sans tâche", "Ratée", "Prête"]
    assert body["items"][0]["job"] is None and body["items"][1]["error"] == PLAYLIST_ERROR
    check(client, document, path, f"{path}?page=2")
    check(client, document, path, f"{path}?page=zero")
    client.post("/logout", data={"csrf_token": nora.csrf})
    check(client, document, path, path)


# --- every bad line of a setlist -----------------------------------------------------------------


def _sentences(error: Any) -> list[tuple[str, dict[str, str]]]:
    assert error is not None
    return [(e.message, e.values) for e in (error, *error.more)]


def test_every_bad_line_of_a_setlist_is_named_in_order_with_what_is_wrong() -> None:
    text = "0:00 Début\nSans temps\n1:00 Bien\n1:75 Trop de secondes\n\n9:00 Après la fin"
    chapters, error = parse_setlist(text, 300.0)
    assert chapters == []
    assert _sentences(error) == [
        (SETLIST_BAD_LINE, {"number": "2", "line": "Sans temps"}),
        (SETLIST_BAD_TIME, {"number": "4", "line": "1:75 Trop de secondes"}),
        (SETLIST_AFTER_END, {"number": "6", "line": "9:00 Après la fin", "duration": "5:00"}),
    ]


def test_a_setlist_with_many_bad_lines_names_the_first_ten_and_counts_the_rest() -> None:
    text = "\n".join(["0:00 Début"] + [f"mauvaise {n}" for n in range(2, 17)])
    _, error = parse_setlist(text, None)
    named = _sentences(error)
    assert [values["number"] for _, values in named[:-1]] == [str(n) for n in range(2, 12)]
    assert named[-1] == (SETLIST_MORE_LINES, {"num": "15", "shown": "10"})


def test_a_setlist_of_exactly_ten_bad_lines_is_named_whole() -> None:
    _, error = parse_setlist("\n".join(f"mauvaise {n}" for n in range(10)), None)
    assert [message for message, _ in _sentences(error)] == [SETLIST_BAD_LINE] * 10


def test_a_setlist_over_the_line_limit_gets_one_sentence_not_one_per_line() -> None:
    _, error = parse_setlist("\n".join(["n’importe quoi"] * 400), None)
    assert _sentences(error) == [(SETLIST_TOO_LONG, {})]


def test_the_edit_page_lists_every_bad_setlist_line_and_keeps_the_text_as_typed(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Capture", duration=240.0)
    typed = "0:00 Ouverture\r\n<b>Sans temps</b>\r\n1:00 Bien\r\n1:75 Faux\r\n5:00 Trop tard"
    url = f"/studio/productions/{production_id}"
    response = client.post(url, data=edit_form(nora, setlist=typed))
    assert response.status_code == 400
    block = re.search(r'<ul class="field-error" id="setlist-error">(.*?)</ul>', response.text, re.S)
    assert block is not None, "the sentences are a list beside the field"
    items = re.findall(r"<li>(.*?)</li>", block.group(1), re.S)
    assert items == [
        "La ligne 2 du programme (« &lt;b&gt;Sans temps&lt;/b&gt; ») ne commence pas par un "
        "temps comme 1:23 ou 1:02:03 suivi d’un titre.",
        "La ligne 4 du programme (« 1:75 Faux ») indique un temps impossible.",
        "La ligne 5 du programme (« 5:00 Trop tard ») commence après la fin de l’enregistrement "
        "(4:00).",
    ]
    assert response.text.count('class="field-error"') == 1
    assert typed.replace("<", "&lt;").replace(">", "&gt;") in response.text
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and not production.chapters
    english = client.post(f"{url}?lang=en", data=edit_form(nora, setlist="0:00 A\nB\nC"))
    assert "Line 2 of the setlist (“B”) does not start with a time" in english.text
    assert "Line 3 of the setlist (“C”) does not start with a time" in english.text


def test_one_bad_setlist_line_is_one_sentence_beside_the_field(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Capture", duration=240.0)
    response = client.post(
        f"/studio/productions/{production_id}", data=edit_form(nora, setlist="0:00 A\nB")
    )
    assert response.status_code == 400
    assert (
        '<p class="field-error" id="setlist-error">La ligne 2 du programme (« B ») ne commence '
        "pas par un temps" in response.text
    )
    # One aria-describedby naming the hint and the error: a second attribute would be ignored.
    (textarea,) = re.findall(r'<textarea id="setlist"[^>]*>', response.text)
    assert textarea.count("aria-describedby") == 1
    assert 'aria-describedby="setlist-hint setlist-error"' in textarea


VIDEO_MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",LANGUAGE="fr",DEFAULT=YES,'
    'AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"\n'
    '#EXT-X-STREAM-INF:BANDWIDTH=900000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,'
    'AUDIO="audio"\nv360/index.m3u8\n'
)


def test_the_language_chosen_on_the_form_is_what_the_master_playlist_announces(
    services: Services, client: TestClient, nora: Owner
) -> None:
    production_id = add_production(services, nora.id, "Concert en anglais")
    master_key = f"productions/{production_id}/v1/master.m3u8"
    services.store.put_bytes(master_key, VIDEO_MASTER.encode())
    page = client.get(f"/studio/productions/{production_id}").text
    # French by default, chosen in a labelled list.
    assert '<label for="language">' in page and '<option value="fr" selected>' in page
    token = page_token(client, f"/studio/productions/{production_id}")
    for hostile in ('"><script>alert(1)</script>', "x" * 100, "und", "12", "fr-"):
        refused = client.post(
            f"/studio/productions/{production_id}",
            data={**edit_form(nora, language=hostile), "csrf_token": token},
            follow_redirects=False,
        )
        assert refused.status_code == 400, hostile
        assert "Choisissez la langue dans la liste." in refused.text
        assert "<script>alert" not in refused.text
    assert services.store.read_bytes(master_key).decode() == VIDEO_MASTER
    saved = client.post(
        f"/studio/productions/{production_id}",
        data={**edit_form(nora, language="en"), "csrf_token": token},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.language == "en"
    master = services.store.read_bytes(master_key).decode()
    assert master == VIDEO_MASTER.replace('LANGUAGE="fr"', 'LANGUAGE="en"')
    assert '<option value="en" selected>' in client.get(f"/studio/productions/{production_id}").text
    # Saved again unchanged: the master is not touched.
    services.store.put_bytes(master_key, b"#EXTM3U\n")
    client.post(
        f"/studio/productions/{production_id}",
        data={**edit_form(nora, language="en"), "csrf_token": token},
        follow_redirects=False,
    )
    assert services.store.read_bytes(master_key) == b"#EXTM3U\n"
    # The API says it too.
    assert client.get(f"/api/v1/productions/{production_id}").json()["language"] == "en"
