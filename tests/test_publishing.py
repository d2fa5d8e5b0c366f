"""Publishing is the artist's decision, and addresses never break.

An upload is a draft, private in every respect, until its artist publishes it from the studio;
then it takes the visibility they chose. Once published, a rename moves its address and the old
one answers 301 to the new one, for as long as the secrecy rules of cite_live.catalogue allow.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from alembic import command
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from cite_live.catalogue import create_production, hold, production_at, publish
from cite_live.db import alembic_config, make_engine, make_sessionmaker, migrate
from cite_live.jobs import ingest
from cite_live.models import Production, ProductionSlug, aware
from cite_live.services import Services
from cite_live.web.app import create_app
from tests.account_fixtures import login, make_user, token_for
from tests.conftest import MediaFactory
from tests.dbs import sqlite_url
from tests.test_api import publish_fake
from tests.test_tus import Tus, job_of, send_file

OWNER = "owner@example.org"
OTHER = "other@example.org"
ADMIN = "admin@example.org"
TITLE = "Nuit au Cargo"
SECRET = r"[A-Za-z0-9_-]{11}"


def production_row(services: Services, production_id: str) -> Production:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        session.expunge(production)
        return production


def history(services: Services, production_id: str) -> dict[str, bool]:
    """The addresses ``production_id`` held before, each with whether it was a secret one."""
    with services.sessions() as session:
        rows = session.scalars(
            select(ProductionSlug).where(ProductionSlug.production_id == production_id)
        )
        return {row.slug: row.secret for row in rows}


@pytest.fixture
def app(services: Services) -> Any:
    return create_app(services.settings, services)


@pytest.fixture
def anonymous(app: Any) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def signed_in(app: Any, email: str) -> tuple[TestClient, str]:
    client = TestClient(app, base_url="http://testserver")
    return client, login(client, email)


@pytest.fixture
def accounts(services: Services) -> None:
    make_user(services, OWNER, artists=["Nora Ilić"])
    make_user(services, OTHER, artists=["Zoé Martin"])
    make_user(services, ADMIN, "admin")


def edit_fields(csrf: str, **overrides: Any) -> dict[str, Any]:
    """The studio's edit form as a browser sends it, untouched but for ``overrides``."""
    fields: dict[str, Any] = {
        "csrf_token": csrf,
        "title": TITLE,
        "title_en": "",
        "description": "Deux sets.",
        "description_en": "",
        "credit_name": ["Nora Ilić", ""],
        "credit_role": ["performer", "performer"],
        "venue_id": "",
        "venue_new": "",
        "recorded_on": "",
        "session_type": "live",
        "licence": "",
        "tags": "",
        "setlist": "",
        "visibility": "public",
    }
    fields.update(overrides)
    return fields


def listings(q: str) -> list[str]:
    """Every list a visitor (or a partner's server) reads productions from."""
    return [
        "/",
        f"/search?q={quote(q)}",
        "/artists/nora-ilic",
        "/api/v1/productions",
        f"/api/v1/productions?q={quote(q)}",
        "/api/v1/productions?artist=nora-ilic",
        "/api/v1/artists/nora-ilic",
        "/feed.atom",
        "/artists/nora-ilic/feed.atom",
        "/podcast.rss",
    ]


def oembed(slug: str) -> str:
    return "/oembed?url=" + quote(f"http://testserver/productions/{slug}", safe="")


# --- a draft, then published ---------------------------------------------------------------------


def test_an_upload_is_a_draft_for_its_owner_alone_until_published(
    services: Services, app: Any, anonymous: TestClient, accounts: None, media: MediaFactory
) -> None:
    tus = Tus(anonymous, token_for(services, OWNER))
    upload = send_file(
        tus,
        services,
        media("ogg_vorbis").read_bytes(),
        filename="prise-3.ogg",
        filetype="audio/ogg",
        title=TITLE,
        visibility="public",
    )
    production_id = upload.production_id or ""
    ingest.run_transcode(services, job_of(services, upload))
    draft = production_row(services, production_id)
    assert (draft.status, draft.visibility, draft.publish_as) == ("ready", "private", "public")
    assert draft.published_at is None, "a draft was never published"
    assert draft.title == TITLE and re.fullmatch(rf"nuit-au-cargo-{SECRET}", draft.slug)
    with services.sessions() as session:
        master = session.get(Production, production_id).current_version.master_key  # type: ignore[union-attr]
    slug = draft.slug

    # Nobody else learns it exists: not a visitor, not another artist.
    other, other_csrf = signed_in(app, OTHER)
    for client in (anonymous, other):
        for path in listings("nuit"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert TITLE not in response.text and production_id not in response.text, path
        for path in (
            f"/productions/{slug}",
            f"/productions/{slug}/chapters.vtt",
            f"/api/v1/productions/{production_id}",
            f"/api/v1/productions/{slug}",
            f"/embed/{production_id}",
            f"/embed/{slug}",
            oembed(slug),
            f"/media/{master}",
        ):
            assert client.get(path).status_code == 404, path
    # Nor may another artist publish it: the very 404 of a production that does not exist.
    refused = other.post(
        f"/studio/productions/{production_id}",
        data=edit_fields(other_csrf, action="publish"),
        follow_redirects=False,
    )
    assert refused.status_code == 404
    assert production_row(services, production_id).publish_as == "public"

    # Its owner sees it and plays it, and is told it is a draft.
    owner, owner_csrf = signed_in(app, OWNER)
    page = owner.get(f"/productions/{slug}")
    assert page.status_code == 200 and TITLE in page.text
    hls_url = owner.get(f"/api/v1/productions/{production_id}").json()["hls_url"]
    assert hls_url.startswith("http://testserver/media/private/")
    playlist = owner.get(hls_url.removeprefix("http://testserver"))
    assert playlist.status_code == 200 and playlist.text.startswith("#EXTM3U")
    (item,) = owner.get("/api/v1/me/productions").json()["items"]
    assert (item["draft"], item["publish_as"], item["visibility"]) == (True, "public", "private")
    studio = owner.get("/studio", headers={"Accept-Language": "fr"}).text
    assert "Brouillon" in studio
    edit = owner.get(f"/studio/productions/{production_id}", headers={"Accept-Language": "fr"})
    assert "Brouillon" in edit.text
    assert 'name="action" value="publish"' in edit.text
    assert "Qui pourra la voir une fois publiée" in edit.text

    # Publish, with a last change of title: both are kept, in one POST.
    published = owner.post(
        f"/studio/productions/{production_id}",
        data=edit_fields(owner_csrf, title="Nuit au Cargo, second set", action="publish"),
        follow_redirects=False,
    )
    assert published.status_code == 303
    assert published.headers["location"].endswith("?done=published")
    after = production_row(services, production_id)
    assert (after.visibility, after.publish_as) == ("public", None)
    assert after.published_at is not None and after.title == "Nuit au Cargo, second set"
    # The address followed the title while it was a draft; nothing of that is kept.
    assert after.slug == "nuit-au-cargo-second-set"
    assert history(services, production_id) == {}
    assert anonymous.get(f"/productions/{slug}").status_code == 404

    # Now everyone finds it, wherever productions are listed.
    for path in listings("nuit"):
        response = anonymous.get(path)
        assert "Nuit au Cargo, second set" in response.text, path
    page_url = f"/productions/{after.slug}"
    for path in (
        page_url,
        f"{page_url}/chapters.vtt",
        f"/api/v1/productions/{production_id}",
        f"/embed/{production_id}",
        oembed(after.slug),
        f"/media/{master}",
    ):
        assert anonymous.get(path).status_code == 200, path
    (item,) = owner.get("/api/v1/me/productions").json()["items"]
    assert (item["draft"], item["publish_as"], item["visibility"]) == (False, None, "public")
    assert "Brouillon" not in owner.get("/studio", headers={"Accept-Language": "fr"}).text

    # Publishing again changes nothing: it was published once, at one moment.
    again = owner.post(
        f"/studio/productions/{production_id}",
        data=edit_fields(owner_csrf, title="Nuit au Cargo, second set", action="publish"),
        follow_redirects=False,
    )
    assert again.status_code == 303
    assert production_row(services, production_id).published_at == after.published_at


@pytest.mark.parametrize("chosen", ["unlisted", "private"])
def test_a_draft_takes_the_visibility_its_artist_chose(
    services: Services, app: Any, anonymous: TestClient, accounts: None, chosen: str
) -> None:
    owner, csrf = signed_in(app, OWNER)
    production_id = draft_of(services, OWNER, publish_as="public")
    # The visibility field of a draft is the one it will have: saving sets it, and no more.
    owner.post(f"/studio/productions/{production_id}", data=edit_fields(csrf, visibility=chosen))
    saved = production_row(services, production_id)
    assert (saved.visibility, saved.publish_as) == ("private", chosen)
    owner.post(
        f"/studio/productions/{production_id}",
        data=edit_fields(csrf, visibility=chosen, action="publish"),
    )
    after = production_row(services, production_id)
    assert (after.visibility, after.publish_as) == (chosen, None)
    assert after.published_at is not None
    visible = anonymous.get(f"/productions/{after.slug}").status_code
    assert visible == (200 if chosen == "unlisted" else 404)
    assert TITLE not in anonymous.get("/").text
    (item,) = owner.get("/api/v1/me/productions").json()["items"]
    assert item["draft"] is False


def draft_of(services: Services, email: str, *, publish_as: str, status: str = "ready") -> str:
    """A draft of ``email``'s, as an upload leaves it once processed (or still processing)."""
    production_id = publish_fake(
        services, TITLE, artists=["Nora Ilić"], status=status, visibility="private"
    )
    with services.sessions.begin() as session:
        owner = session.scalar(text("SELECT id FROM users WHERE email = :e"), {"e": email})
        production = session.get(Production, production_id)
        assert production is not None
        production.owner_id = owner
        production.visibility, production.publish_as = "private", publish_as
        production.published_at = None
    return production_id


def test_a_refused_form_publishes_nothing_and_keeps_what_was_typed(
    services: Services, app: Any, accounts: None
) -> None:
    production_id = draft_of(services, OWNER, publish_as="unlisted")
    owner, csrf = signed_in(app, OWNER)
    typed = edit_fields(
        csrf, title="<b>Nuit</b> & jour", recorded_on="2025-02-30", action="publish"
    )
    refused = owner.post(
        f"/studio/productions/{production_id}", data=typed, headers={"Accept-Language": "fr"}
    )
    assert refused.status_code == 400
    assert "La date d’enregistrement doit être une vraie date" in refused.text
    assert 'value="&lt;b&gt;Nuit&lt;/b&gt; &amp; jour"' in refused.text
    assert 'value="2025-02-30"' in refused.text
    # Still a draft, whose Publish button is there to press again once the date is right.
    assert 'name="action" value="publish"' in refused.text
    after = production_row(services, production_id)
    assert (after.title, after.visibility, after.publish_as) == (TITLE, "private", "unlisted")


def test_a_draft_published_while_processing_is_listed_once_ready(
    services: Services, anonymous: TestClient, accounts: None, media: MediaFactory
) -> None:
    tus = Tus(anonymous, token_for(services, OWNER))
    upload = send_file(
        tus, services, media("opus").read_bytes(), filename="prise.opus", title=TITLE
    )
    production_id = upload.production_id or ""
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.status == "processing"
        assert publish(production)
    waiting = production_row(services, production_id)
    assert (waiting.visibility, waiting.publish_as, waiting.published_at) == ("public", None, None)
    assert TITLE not in anonymous.get("/").text
    ingest.run_transcode(services, job_of(services, upload))
    ready = production_row(services, production_id)
    assert ready.published_at is not None and ready.slug == "nuit-au-cargo"
    assert TITLE in anonymous.get("/").text


def test_an_upload_without_a_title_or_with_the_file_names_own_is_named_by_its_tags(
    services: Services, anonymous: TestClient, accounts: None
) -> None:
    tus = Tus(anonymous, token_for(services, OWNER))
    # What the studio's panel proposes before the artist types anything: the file's own name.
    proposed = send_file(tus, services, b"a", filename="prise_3-live.ogg", title="prise 3 live")
    chosen = send_file(tus, services, b"b", filename="prise_3-live.ogg", title="Nuit")
    odd = send_file(tus, services, b"c", filename="x.ogg", visibility="everyone")
    rows = [production_row(services, u.production_id or "") for u in (proposed, chosen, odd)]
    assert [(p.title, p.title_is_placeholder) for p in rows] == [
        ("prise 3 live", True),
        ("Nuit", False),
        ("x", True),
    ]
    assert {(p.visibility, p.publish_as) for p in rows[:2]} == {("private", "public")}
    assert (rows[2].visibility, rows[2].publish_as) == ("private", "public")


def test_the_admins_publish_a_draft_as_they_publish_anything(
    services: Services, app: Any, anonymous: TestClient, accounts: None
) -> None:
    production_id = draft_of(services, OWNER, publish_as="unlisted")
    admin, csrf = signed_in(app, ADMIN)
    admin.post(f"/admin/productions/{production_id}/publish", data={"csrf_token": csrf})
    after = production_row(services, production_id)
    # Made public by hand: no longer a draft, whatever its artist had in mind.
    assert (after.visibility, after.publish_as) == ("public", None)
    assert after.published_at is not None
    assert TITLE in anonymous.get("/").text


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_publishing_twice_at_once_publishes_once(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    """Two requests publishing the same draft: the second waits for the first to commit, then
    finds nothing to do; the production keeps the first one's publication time."""
    url = sqlite_url(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    try:
        migrate(engine)
        sessions = make_sessionmaker(engine)
        with sessions.begin() as session:
            production = create_production(session, title=TITLE, filename="x.ogg")
            production.status, production.visibility = "ready", "private"
            production.publish_as = "public"
            production_id = production.id
        first, second = sessions(), sessions()
        try:
            hold(first, production_id)
            mine = first.get(Production, production_id)
            assert mine is not None and publish(mine)
            first.flush()
            first_time = mine.published_at
            started = threading.Event()
            outcome: list[Any] = []

            def publish_second() -> None:
                try:
                    started.set()
                    hold(second, production_id)
                    theirs = second.get(Production, production_id)
                    assert theirs is not None
                    outcome.append(publish(theirs))
                    second.commit()
                except BaseException as exc:  # reported below, in the test's thread
                    outcome.append(exc)

            worker = threading.Thread(target=publish_second)
            worker.start()
            started.wait()
            if database == "postgresql":
                # The first commits only once the second waits on it, having read nothing yet.
                with engine.connect() as watcher:
                    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    while worker.is_alive() and not watcher.execute(waiting).scalar():
                        watcher.rollback()
                        time.sleep(0.01)
            first.commit()
            worker.join(60)
            assert outcome == [False], outcome
        finally:
            first.close()
            second.close()
        with sessions() as session:
            final = session.get(Production, production_id)
            assert final is not None
            assert (final.visibility, final.publish_as) == ("public", None)
            assert final.published_at is not None and aware(final.published_at) == first_time
    finally:
        engine.dispose()


# --- addresses -----------------------------------------------------------------------------------


def rename(services: Services, production_id: str, title: str) -> str:
    """Retitle it as the studio's form does; returns its new address."""
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.title = title
    return production_row(services, production_id).slug


def set_visibility(services: Services, production_id: str, visibility: str) -> str:
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.visibility = visibility
    return production_row(services, production_id).slug


def moved(client: TestClient, path: str) -> str | None:
    """Where ``path`` redirects for good (301); None when it does not."""
    response = client.get(path, follow_redirects=False)
    return response.headers["location"] if response.status_code == 301 else None


def test_a_renamed_production_keeps_its_old_addresses(
    services: Services, app: Any, anonymous: TestClient, accounts: None
) -> None:
    production_id = publish_fake(services, "Good", chapters=[("Ouverture", 0.0)])
    owner, csrf = signed_in(app, OWNER)
    with services.sessions.begin() as session:
        owner_id = session.scalar(text("SELECT id FROM users WHERE email = :e"), {"e": OWNER})
        session.execute(
            update(Production).where(Production.id == production_id).values(owner_id=owner_id)
        )
    # Renamed in the studio: the address follows the title; the old one leads to the new.
    owner.post(
        f"/studio/productions/{production_id}",
        data=edit_fields(
            csrf, title="Better", credit_name=["Élodie Fauré"], credit_role=["performer"]
        ),
    )
    assert production_row(services, production_id).slug == "better"
    assert moved(anonymous, "/productions/good?t=30") == "/productions/better?t=30"
    assert moved(anonymous, "/productions/good/chapters.vtt") == "/productions/better/chapters.vtt"
    # Twice: both former addresses lead to the present one, in one step.
    assert rename(services, production_id, "Best") == "best"
    assert moved(anonymous, "/productions/good") == "/productions/best"
    assert moved(anonymous, "/productions/better") == "/productions/best"
    assert history(services, production_id) == {"good": False, "better": False}
    for old in ("good", "better"):
        assert anonymous.get(f"/api/v1/productions/{old}").json()["id"] == production_id
        assert anonymous.get(f"/embed/{old}").status_code == 200
        assert anonymous.get(oembed(old)).json()["title"] == "Best"
    # A newcomer is not given an address that leads elsewhere.
    assert production_row(services, publish_fake(services, "Good")).slug == "good-2"
    # Back to an earlier title: that address is its own again, and no longer a former one.
    assert rename(services, production_id, "Better") == "better"
    assert history(services, production_id) == {"good": False, "best": False}
    assert moved(anonymous, "/productions/best") == "/productions/better"


def test_a_former_plain_address_leads_only_to_a_listed_production(
    services: Services, anonymous: TestClient
) -> None:
    production_id = publish_fake(services, "Good")
    assert rename(services, production_id, "Better") == "better"
    assert re.fullmatch(rf"better-{SECRET}", set_visibility(services, production_id, "private"))
    # Hidden: its former addresses lead nowhere, and never push a newcomer to "-2".
    for old in ("good", "better"):
        assert anonymous.get(f"/productions/{old}").status_code == 404
        assert anonymous.get(f"/api/v1/productions/{old}").status_code == 404
    newcomer = publish_fake(services, "Better")
    assert production_row(services, newcomer).slug == "better"
    assert "better" not in history(services, production_id)
    # Listed again: "good" leads to it once more; "better" is the newcomer's now.
    assert set_visibility(services, production_id, "public") == "better-2"
    assert moved(anonymous, "/productions/good") == "/productions/better-2"
    assert anonymous.get("/productions/better").status_code == 200
    assert anonymous.get("/api/v1/productions/better").json()["id"] == newcomer


def test_former_secret_addresses_lead_on_until_it_is_made_unlisted_anew(
    services: Services, anonymous: TestClient
) -> None:
    production_id = publish_fake(services, "Good", visibility="unlisted")
    first = production_row(services, production_id).slug
    second = rename(services, production_id, "Better")
    assert re.fullmatch(rf"better-{SECRET}", second) and second != first
    # Unlisted and renamed: the link shared before leads to the new one.
    assert moved(anonymous, f"/productions/{first}") == f"/productions/{second}"
    assert anonymous.get(f"/api/v1/productions/{first}").json()["id"] == production_id
    assert anonymous.get(f"/embed/{first}").status_code == 200
    # Made public: both links shared while it was unlisted lead to its plain address.
    assert set_visibility(services, production_id, "public") == "better"
    for old in (first, second):
        assert moved(anonymous, f"/productions/{old}") == "/productions/better"
    assert history(services, production_id) == {first: True, second: True}
    # Unlisted anew: whoever knew any address of it before loses it.
    third = set_visibility(services, production_id, "unlisted")
    assert third not in (first, second)
    for gone in (first, second, "better"):
        assert anonymous.get(f"/productions/{gone}").status_code == 404, gone
        assert anonymous.get(f"/api/v1/productions/{gone}").status_code == 404, gone
        assert anonymous.get(f"/embed/{gone}").status_code == 404, gone
        assert anonymous.get(oembed(gone)).status_code == 404, gone
    assert anonymous.get(f"/productions/{third}").status_code == 200
    assert history(services, production_id) == {"better": False}


def test_a_draft_renamed_keeps_no_former_address(services: Services, accounts: None) -> None:
    production_id = draft_of(services, OWNER, publish_as="public")
    first = production_row(services, production_id).slug
    second = rename(services, production_id, "Better")
    assert re.fullmatch(rf"better-{SECRET}", second)
    assert history(services, production_id) == {}
    with services.sessions() as session:
        assert production_at(session, first) is None


def test_a_hidden_production_with_a_plain_history_never_pushes_a_newcomer(
    services: Services,
) -> None:
    hidden = publish_fake(services, "Good")
    set_visibility(services, hidden, "private")
    assert history(services, hidden) == {"good": False}
    assert production_row(services, publish_fake(services, "Good")).slug == "good"
    assert history(services, hidden) == {}


# --- the migration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_the_migration_publishes_what_exists_and_keeps_former_addresses(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> None:
    url = sqlite_url(tmp_path) if database == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    try:
        command.upgrade(alembic_config(engine), "0005_secret_addresses")
        now = datetime.now(UTC)
        rows = {
            "p0": ("good", "ready", "public", "good-AAAAAAAAAAA"),
            "p1": ("other-BBBBBBBBBBB", "ready", "private", None),
            "p2": ("third-CCCCCCCCCCC", "processing", "public", None),
        }
        with engine.begin() as connection:
            for production_id, (slug, status, visibility, former) in rows.items():
                connection.execute(
                    text(
                        "INSERT INTO productions (id, slug, former_slug, title,"
                        " title_is_placeholder, kind, status, description, visibility,"
                        " created_at, updated_at) VALUES (:id, :slug, :former, 'Good', false,"
                        " 'audio', :status, '', :visibility, :now, :now)"
                    ),
                    {
                        "id": production_id,
                        "slug": slug,
                        "former": former,
                        "status": status,
                        "visibility": visibility,
                        "now": now,
                    },
                )
            # What refers to a production stays: the table is altered, never copied and dropped.
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
        sessions = make_sessionmaker(engine)
        with sessions() as session:
            assert session.scalar(text("SELECT count(*) FROM credits")) == 1
            drafts = session.scalars(select(Production.publish_as)).all()
            assert drafts == [None, None, None]
            assert {
                (s.slug, s.production_id, s.secret) for s in session.scalars(select(ProductionSlug))
            } == {("good-AAAAAAAAAAA", "p0", True)}
            found = production_at(session, "good-AAAAAAAAAAA")
            assert found is not None and found.id == "p0"
        command.downgrade(alembic_config(engine), "0005_secret_addresses")
        with engine.connect() as connection:
            former = dict(connection.execute(text("SELECT id, former_slug FROM productions")).all())
            # Undone too, every migration alters in place: the credit is still there.
            assert connection.execute(text("SELECT count(*) FROM credits")).scalar() == 1
        assert former == {"p0": "good-AAAAAAAAAAA", "p1": None, "p2": None}
    finally:
        engine.dispose()
