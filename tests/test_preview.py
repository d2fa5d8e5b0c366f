"""Play while processing: who may play a production's preview (its growing EVENT playlists)
before it is finished, and where its media is served from; driven through the app in-process,
with the preview made in the database and the store as the pipeline leaves it."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from starlette.testclient import TestClient

from cite_live import access
from cite_live.catalogue import create_production, preview_version, set_credits
from cite_live.db import alembic_config, make_engine, migrate
from cite_live.models import MediaVersion, Production
from cite_live.services import Services
from tests.account_fixtures import login, make_user, token_for
from tests.test_openapi import check

MASTER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    '#EXT-X-STREAM-INF:BANDWIDTH=140000,CODECS="mp4a.40.2"\na128/index.m3u8\n'
)
EVENT = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
    '#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:6.0,\nseg_00001.m4s\n'
)
NOTICE_EN = {"audio": "Still processing — you can already listen.", "video": "…watch."}
NOTICE_FR = "Traitement en cours — vous pouvez déjà écouter."
NOT_HERE = "There is no production at this address."


@dataclass
class Made:
    id: str
    slug: str
    prefix: str

    @property
    def master(self) -> str:
        return self.prefix + "master.m3u8"

    @property
    def page(self) -> str:
        return f"/productions/{self.slug}"


def make_processing(
    services: Services,
    owner_id: int | None,
    *,
    visibility: str = "public",
    publish_early: bool = False,
    kind: str = "audio",
    replacement: bool = False,
    preview: bool = True,
) -> Made:
    """A production whose job runs and whose preview plays (the pipeline's ``preview`` version
    with its master, an EVENT media playlist of one segment, its init and segment); with
    ``replacement``, one that was ready already, whose first version plays on."""
    with services.sessions.begin() as session:
        production = create_production(
            session, title="Nuit au Cargo", filename="cargo.wav", artists=[], kind=kind
        )
        set_credits(session, production, [("Nora Ilić", "performer")])
        production.owner_id, production.visibility = owner_id, visibility
        production.publish_early = publish_early
        session.flush()
        if replacement:
            old = f"productions/{production.id}/j1/"
            first = MediaVersion(
                production_id=production.id,
                name="j1",
                state="published",
                prefix=old,
                master_key=old + "master.m3u8",
                ladder=[],
                duration=30.0,
            )
            session.add(first)
            session.flush()
            production.current_version_id = first.id
            production.status, production.duration = "ready", 30.0
            production.published_at = datetime.now(UTC)
        prefix = f"productions/{production.id}/j2/"
        if preview:
            session.add(
                MediaVersion(
                    production_id=production.id,
                    name="j2",
                    state="preview",
                    prefix=prefix,
                    master_key=prefix + "master.m3u8",
                    ladder=[{"name": "a128"}],
                    duration=30.0,
                )
            )
        session.flush()
        made = Made(production.id, production.slug, prefix)
    if replacement:
        services.store.put_bytes(f"productions/{made.id}/j1/master.m3u8", MASTER.encode())
    services.store.put_bytes(made.master, MASTER.encode())
    services.store.put_bytes(made.prefix + "a128/index.m3u8", EVENT.encode())
    services.store.put_bytes(made.prefix + "a128/init.mp4", b"\0" * 64)
    services.store.put_bytes(made.prefix + "a128/seg_00001.m4s", b"\1" * 256)
    return made


def player_config(page: str) -> dict[str, Any] | None:
    found = re.search(r"<script type=\"application/json\" data-player-config>(.*?)</script>", page)
    return json.loads(found.group(1)) if found else None


def shows_no_playlist(page: str, made: Made) -> bool:
    """Neither a player nor any address of the preview's media in the page."""
    return player_config(page) is None and made.prefix not in page and ".m3u8" not in page


def local(url: str) -> str:
    """The path (and query) of an absolute URL of the test server."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def owner(services: Services) -> int:
    return make_user(services, "nora@example.org", artists=["Nora Ilić"])


def english(client: TestClient) -> TestClient:
    client.cookies.set("lang", "en")
    return client


# --- who plays it --------------------------------------------------------------------------------


def test_only_its_owner_and_the_admins_play_a_preview_its_artist_keeps_for_themselves(
    services: Services, client: TestClient, other_client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public")
    login(client, "nora@example.org")
    page = client.get(made.page, headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "Still processing — you can already listen." in page.text
    config = player_config(page.text)
    assert config is not None and config["preview"] is True
    # Signed links: nobody else may fetch them, and they name the preview's master.
    assert config["hls_url"].startswith("http://testserver/media/private/")
    assert config["hls_url"].endswith(made.master)
    assert page.headers["cache-control"] == "private, no-store"
    # Its playlists through that link are never kept: they grow every few seconds.
    master = other_client.get(local(config["hls_url"]))
    assert master.status_code == 200 and master.headers["cache-control"] == "private, no-store"
    media = other_client.get(local(config["hls_url"]).replace("master.m3u8", "a128/index.m3u8"))
    assert media.status_code == 200 and "#EXT-X-PLAYLIST-TYPE:EVENT" in media.text
    # Its public address answers as if there were nothing there.
    assert other_client.get(f"/media/{made.master}").status_code == 404
    assert other_client.get(f"/media/{made.prefix}a128/seg_00001.m4s").status_code == 404

    # The API names it for its owner, with their setting.
    token = token_for(services, "nora@example.org")
    body = client.get(
        f"/api/v1/productions/{made.id}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert body["status"] == "processing" and body["playable"] is True
    assert body["hls_url"].endswith(made.master) and "/media/private/" in body["hls_url"]
    assert body["publish_early"] is False

    # An administrator plays it alike.
    make_user(services, "admin@example.org", "admin")
    login(other_client, "admin@example.org")
    admin_config = player_config(other_client.get(made.page).text)
    assert admin_config is not None and admin_config["hls_url"].endswith(made.master)


@pytest.mark.parametrize("who", ["anonymous", "other artist"])
def test_without_publish_early_nobody_else_learns_the_production_is_there(
    services: Services, client: TestClient, owner: int, who: str
) -> None:
    made = make_processing(services, owner, visibility="public")
    headers: dict[str, str] = {}
    if who == "other artist":
        make_user(services, "paul@example.org", artists=["Paul Vercors"])
        login(client, "paul@example.org")
        headers = {"Authorization": f"Bearer {token_for(services, 'paul@example.org')}"}
    page = english(client).get(made.page)
    assert page.status_code == 404 and NOT_HERE in page.text
    assert shows_no_playlist(page.text, made)
    api = client.get(f"/api/v1/productions/{made.id}", headers=headers)
    assert api.status_code == 404 and made.prefix not in api.text
    embed = client.get(f"/embed/{made.id}")
    assert embed.status_code == 404 and shows_no_playlist(embed.text, made)
    oembed = client.get(f"/oembed?url=http://testserver{made.page}")
    assert oembed.status_code == 404
    assert client.get(f"{made.page}/player.json").status_code == 404
    assert client.get(f"/media/{made.master}").status_code == 404


def test_published_early_everyone_plays_it_from_public_addresses_its_playlists_never_kept(
    services: Services, client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public", publish_early=True)
    page = english(client).get(made.page)
    assert page.status_code == 200
    assert NOTICE_EN["audio"] in page.text
    config = player_config(page.text)
    assert config is not None and config["preview"] is True
    assert config["hls_url"] == f"http://testserver/media/{made.master}"
    # Shared like any page of a public production, but kept out of search engines.
    assert "no-store" not in page.headers.get("cache-control", "")
    assert '<meta name="robots" content="noindex">' in page.text
    assert "data-share-panel" in page.text
    # A preview plays on its page: not in the bar's queue, which takes finished productions.
    assert "data-queue-add" not in page.text

    master = client.get(f"/media/{made.master}")
    assert master.status_code == 200 and master.headers["cache-control"] == "no-cache"
    media = client.get(f"/media/{made.prefix}a128/index.m3u8")
    assert media.headers["cache-control"] == "no-cache"
    segment = client.get(f"/media/{made.prefix}a128/seg_00001.m4s")
    assert segment.status_code == 200 and segment.content == b"\1" * 256
    # Only the preview: nothing else of a production still processing.
    services.store.put_bytes(f"productions/{made.id}/covers/other.jpg", b"jpeg")
    assert client.get(f"/media/productions/{made.id}/covers/other.jpg").status_code == 404

    body = client.get(f"/api/v1/productions/{made.id}").json()
    assert body["status"] == "processing" and body["playable"] is True
    assert body["hls_url"] == f"http://testserver/media/{made.master}"
    # The owner's setting is theirs to read.
    assert "publish_early" not in body
    # The bar plays it after a reload as the page does.
    bar = client.get(f"{made.page}/player.json").json()
    assert bar["ready"] and bar["preview"] and bar["hls_url"] == body["hls_url"]

    # French readers are told in French.
    client.cookies.set("lang", "fr")
    assert NOTICE_FR in client.get(made.page).text


def test_published_early_the_embed_and_oembed_play_a_public_preview(
    services: Services, client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public", publish_early=True, kind="video")
    embed = english(client).get(f"/embed/{made.id}")
    assert embed.status_code == 200
    config = player_config(embed.text)
    assert config is not None and config["hls_url"] == f"http://testserver/media/{made.master}"
    assert "Still processing — you can already watch." in embed.text
    assert "cl-preview-notice--overlay" in embed.text
    oembed = client.get(f"/oembed?url=http://testserver{made.page}")
    assert oembed.status_code == 200 and f"/embed/{made.id}" in oembed.json()["html"]


def test_an_unlisted_preview_plays_by_its_address_only_and_never_in_an_embed(
    services: Services, client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="unlisted", publish_early=True)
    page = client.get(made.page)
    assert page.status_code == 200
    config = player_config(page.text)
    assert config is not None and config["hls_url"].endswith(made.master)
    # By its id, which is no secret: nothing.
    assert client.get(f"/api/v1/productions/{made.id}").status_code == 404
    assert client.get(f"/api/v1/productions/{made.slug}").json()["playable"] is True
    # Embeds play previews of public productions only.
    assert client.get(f"/embed/{made.slug}").status_code == 404


def test_a_draft_stays_its_owners_whatever_the_box_says(
    services: Services, client: TestClient, other_client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="private", publish_early=True)
    assert english(other_client).get(made.page).status_code == 404
    assert other_client.get(f"/media/{made.master}").status_code == 404
    assert other_client.get(f"/api/v1/productions/{made.id}").status_code == 404
    login(client, "nora@example.org")
    config = player_config(client.get(made.page).text)
    assert config is not None and "/media/private/" in config["hls_url"]


def test_a_replacements_preview_is_nobodys_the_old_version_plays_on(
    services: Services, client: TestClient, other_client: TestClient, owner: int
) -> None:
    made = make_processing(
        services, owner, visibility="public", publish_early=True, replacement=True
    )
    old_master = f"http://testserver/media/productions/{made.id}/j1/master.m3u8"
    with services.sessions() as session:
        production = session.get(Production, made.id)
        assert production is not None and preview_version(session, production) is None
        slug = production.slug
    login(client, "nora@example.org")
    for viewer in (other_client, client):
        page = english(viewer).get(f"/productions/{slug}")
        assert page.status_code == 200
        config = player_config(page.text)
        assert config is not None and config["hls_url"] == old_master
        assert not config["preview"] and "Still processing" not in page.text
        assert made.prefix not in page.text
        body = viewer.get(f"/api/v1/productions/{made.id}").json()
        assert body["hls_url"] == old_master
    # Its objects are not at the public address of the production that plays.
    assert other_client.get(f"/media/{made.master}").status_code == 404
    assert other_client.get(f"/media/{made.prefix}a128/seg_00001.m4s").status_code == 404
    assert other_client.get(local(old_master)).status_code == 200


def test_before_its_first_segments_a_processing_page_has_no_player(
    services: Services, client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public", publish_early=True, preview=False)
    # Nobody else: nothing to play yet, so nothing to see.
    assert english(client).get(made.page).status_code == 404
    login(client, "nora@example.org")
    page = client.get(made.page)
    assert page.status_code == 200 and shows_no_playlist(page.text, made)
    assert "This recording is being processed" in page.text


# --- forged and borrowed -------------------------------------------------------------------------


def test_forged_expired_and_borrowed_links_to_a_preview_are_missing_files(
    services: Services, client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public")
    mine = make_processing(services, make_user(services, "paul@example.org"), visibility="public")
    secret = services.secret_key
    later = int(time.time()) + 600
    key = quote(made.master)
    cases = {
        # A genuine token of another production (its owner's own), shown with this key.
        "borrowed": access.sign(secret, mine.id, later),
        "expired": access.sign(secret, made.id, int(time.time()) - 1),
        "forged": access.sign("not the site's key", made.id, later),
        "garbage": "x" * 40,
    }
    for name, token in cases.items():
        answer = client.get(f"/media/private/{token}/{key}")
        assert answer.status_code == 404, name
    genuine = access.sign(secret, made.id, later)
    assert client.get(f"/media/private/{genuine}/{key}").status_code == 200


def test_another_account_cannot_publish_someone_elses_preview_early(
    services: Services, client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public")
    make_user(services, "paul@example.org", artists=["Paul Vercors"])
    csrf = login(client, "paul@example.org")
    form = {
        "csrf_token": csrf,
        "title": "Volée",
        "visibility": "public",
        "publish_early": "1",
        "credit_name": ["Paul Vercors"],
        "credit_role": ["performer"],
    }
    answer = client.post(f"/studio/productions/{made.id}", data=form, follow_redirects=False)
    assert answer.status_code == 404
    with services.sessions() as session:
        production = session.get(Production, made.id)
        assert production is not None and not production.publish_early
    client.cookies.clear()
    assert client.get(made.page).status_code == 404


def test_the_owner_publishes_early_from_the_edit_form_and_takes_it_back(
    services: Services, client: TestClient, other_client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public")
    csrf = login(english(client), "nora@example.org")
    edit = f"/studio/productions/{made.id}"
    form_page = client.get(edit).text
    assert 'name="publish_early"' in form_page and "Publish as soon as playable" in form_page
    # The owner's own preview on the edit page, from its start, with the same notice.
    config = player_config(form_page)
    assert config is not None and config["preview"] is True
    assert "Still processing — you can already listen." in form_page
    form = {
        "csrf_token": csrf,
        "title": "Nuit au Cargo",
        "visibility": "public",
        "credit_name": ["Nora Ilić"],
        "credit_role": ["performer"],
    }
    saved = client.post(edit, data={**form, "publish_early": "1"}, follow_redirects=False)
    assert saved.status_code == 303
    assert re.search(r'name="publish_early" value="1"[^>]* checked', client.get(edit).text)
    assert other_client.get(made.page).status_code == 200
    assert other_client.get(f"/media/{made.master}").status_code == 200
    # Unticked (a checkbox sends nothing): back to its managers alone, at once.
    client.post(edit, data=form, follow_redirects=False)
    assert other_client.get(made.page).status_code == 404
    assert other_client.get(f"/media/{made.master}").status_code == 404


def test_the_api_object_of_a_preview_matches_the_openapi_document(
    services: Services, client: TestClient, owner: int
) -> None:
    document = client.get("/api/v1/openapi.json").json()
    one = "/api/v1/productions/{production_id}"
    made = make_processing(services, owner, visibility="public", publish_early=True)
    assert check(client, document, one, f"/api/v1/productions/{made.id}")["playable"] is True
    client.headers["Authorization"] = f"Bearer {token_for(services, 'nora@example.org')}"
    assert check(client, document, one, f"/api/v1/productions/{made.id}")["publish_early"]


# --- the record ----------------------------------------------------------------------------------


def test_the_migration_allows_previews_and_keeps_every_current_version(
    any_database_url: str,
) -> None:
    """0016 copies media_versions on SQLite to change its CHECK constraint: the productions
    pointing at their versions keep pointing at them (and on PostgreSQL, which alters it in
    place)."""
    engine = make_engine(any_database_url)
    config = alembic_config(engine)
    try:
        command.upgrade(config, "0015_production_language")
        now = datetime.now(UTC)
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO productions (id, slug, title, title_is_placeholder, kind, status,"
                    " description, visibility, created_at, updated_at, search_text) VALUES"
                    " ('p0', 'good', 'Good', false, 'audio', 'ready', '', 'public', :now, :now,"
                    " '')"
                ),
                {"now": now},
            )
            connection.execute(
                text(
                    "INSERT INTO media_versions (id, production_id, name, state, prefix, ladder,"
                    " created_at) VALUES (7, 'p0', 'j1', 'published', 'productions/p0/j1/',"
                    " '[]', :now)"
                ),
                {"now": now},
            )
            connection.execute(text("UPDATE productions SET current_version_id = 7"))
        migrate(engine)
        insert_preview = text(
            "INSERT INTO media_versions (production_id, name, state, prefix, ladder, created_at)"
            " VALUES ('p0', 'j2', :state, 'productions/p0/j2/', '[]', :now)"
        )
        with engine.begin() as connection:
            assert connection.scalar(text("SELECT current_version_id FROM productions")) == 7
            assert connection.scalar(text("SELECT publish_early FROM productions")) in (0, False)
            connection.execute(insert_preview, {"state": "preview", "now": now})
        with pytest.raises(Exception, match=r"(?i)check constraint"), engine.begin() as refused:
            refused.execute(insert_preview, {"state": "growing", "now": now})
        command.downgrade(config, "0015_production_language")
        with engine.connect() as connection:
            assert connection.scalar(text("SELECT current_version_id FROM productions")) == 7
            states = connection.scalars(text("SELECT state FROM media_versions")).all()
            assert states == ["published"]
            columns = {c["name"] for c in inspect(connection).get_columns("productions")}
            assert "publish_early" not in columns
    finally:
        engine.dispose()


def test_a_failed_job_leaves_no_preview_to_play(
    services: Services, client: TestClient, owner: int
) -> None:
    made = make_processing(services, owner, visibility="public", publish_early=True)
    with services.sessions.begin() as session:
        production = session.get(Production, made.id)
        assert production is not None
        production.status = "failed"
        for version in session.scalars(
            select(MediaVersion).where(MediaVersion.production_id == made.id)
        ):
            session.delete(version)
    assert client.get(made.page).status_code == 404
    assert client.get(f"/media/{made.master}").status_code == 404


@pytest.mark.parametrize(
    ("sent", "early"), [("1", True), ("0", False), (None, False), ("x", False)]
)
def test_a_new_uploads_card_may_ask_to_publish_it_as_soon_as_playable(
    services: Services, client: TestClient, owner: int, sent: str | None, early: bool
) -> None:
    """What the upload panel's card sends (web/static/js/uploader.js): "1" when ticked."""
    meta = {"filename": "cargo.wav", "filetype": "audio/wav", "title": "Nuit au Cargo"}
    if sent is not None:
        meta["publish_early"] = sent
    data = b"RIFF" + bytes(2000)
    auth = {"Authorization": f"Bearer {token_for(services, 'nora@example.org')}"}
    tus = {**auth, "Tus-Resumable": "1.0.0"}
    encoded = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in meta.items())
    created = client.post(
        "/api/v1/uploads/",
        headers={**tus, "Upload-Length": str(len(data)), "Upload-Metadata": encoded},
    )
    assert created.status_code == 201, created.text
    sent_chunk = client.patch(
        created.headers["Location"],
        content=data,
        headers={
            **tus,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert sent_chunk.status_code == 204, sent_chunk.text
    with services.sessions() as session:
        production = session.scalars(select(Production)).one()
        # A draft all the same: its owner's alone until published, early or not.
        assert production.visibility == "private" and production.publish_as == "public"
        assert production.publish_early is early
