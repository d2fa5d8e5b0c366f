"""Private media: signed links on the local store, presigned links and the bucket policy on a real
S3 server (SeaweedFS), and the player renewing expired links in a real browser."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import update
from starlette.routing import Route
from starlette.testclient import TestClient

from cite_live import access
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.jobs.maintenance import Maintenance
from cite_live.models import MediaVersion, Production
from cite_live.services import Services, open_services
from cite_live.storage import LocalStore, S3Store
from cite_live.web import media
from cite_live.web.app import create_app
from tests.account_fixtures import login, make_user
from tests.app_fixtures import make_settings, serving
from tests.dbs import sqlite_url
from tests.media import ffmpeg, split
from tests.test_pages import publish
from tests.test_storage import plant_links

MASTER = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=128000,AVERAGE-BANDWIDTH=120000,CODECS="mp4a.40.2"
a128/index.m3u8
"""
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.000,
seg_00001.m4s
#EXTINF:6.000,
seg_00002.m4s
#EXT-X-ENDLIST
"""
SEGMENT = bytes(range(256)) * 64


def write_stream(services: Services, production_id: str, name: str = "v1") -> str:
    """Objects of a small published audio stream (as the transcoder lays them out) in the
    store, and a current version pointing at them; returns the version's prefix."""
    prefix = f"productions/{production_id}/{name}/"
    store = services.store
    store.put_bytes(prefix + "master.m3u8", MASTER.encode())
    store.put_bytes(prefix + "a128/index.m3u8", MEDIA.encode())
    store.put_bytes(prefix + "a128/init.mp4", b"init" * 100)
    for number in (1, 2):
        store.put_bytes(prefix + f"a128/seg_0000{number}.m4s", SEGMENT)
    store.put_bytes(prefix + "cover.jpg", b"\xff\xd8cover")
    store.put_bytes(prefix + "waveform.json", b'{"peaks": []}')
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        version = MediaVersion(
            production_id=production_id,
            name=name,
            state="published",
            prefix=prefix,
            master_key=prefix + "master.m3u8",
            cover_key=prefix + "cover.jpg",
            waveform_key=prefix + "waveform.json",
            ladder=[],
        )
        session.add(version)
        session.flush()
        production.current_version = version
        production.status = "ready"
    return prefix


def make_production(services: Services, title: str, visibility: str, owner: int | None) -> str:
    with services.sessions.begin() as session:
        production = publish(session, title, visibility=visibility, status="processing")
        production.owner_id = owner
        return production.id


def set_visibility(services: Services, production_id: str, visibility: str) -> None:
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.visibility = visibility


def stream_urls(get: Callable[[str], httpx.Response], master_url: str) -> list[str]:
    """Every URL a player fetches for the stream at ``master_url``, playlists first, found by
    resolving each URI against the URL of the playlist naming it, as players do."""
    found = [master_url]
    playlists = [master_url]
    while playlists:
        url = playlists.pop()
        response = get(url)
        assert response.status_code == 200, (url, response.status_code)
        for line in response.text.splitlines():
            uris = [line.split('URI="')[1].split('"')[0]] if 'URI="' in line else []
            if line and not line.startswith("#"):
                uris.append(line.strip())
            for uri in uris:
                target = urljoin(url, uri)
                found.append(target)
                if urlsplit(target).path.endswith(".m3u8"):
                    playlists.append(target)
    return found


# --- tokens --------------------------------------------------------------------------------------


def test_tokens_are_checked_for_signature_expiry_and_shape() -> None:
    now = 1_800_000_000.0
    token = access.sign("key", "abc", int(now) + 60)
    assert access.verify("key", token, now=now) == access.MediaGrant("abc", int(now) + 60)
    assert access.verify("key", token, now=now + 60) is None  # expired
    assert access.verify("another key", token, now=now) is None  # forged
    assert access.verify("key", token[:-2] + "xx", now=now) is None  # tampered
    assert access.verify("key", "not-a-token", now=now) is None
    other_salt = access.URLSafeTimedSerializer("key", salt="session").dumps(["abc", 2e9])
    assert access.verify("key", other_salt, now=now) is None  # a session cookie is no token
    shaped = access.URLSafeTimedSerializer("key", salt="media").dumps({"p": "abc"})
    assert access.verify("key", shaped, now=now) is None


def test_a_grant_covers_only_its_own_production() -> None:
    grant = access.MediaGrant("abc", 2_000_000_000)
    assert access.grant_covers(grant, "productions/abc/v1/master.m3u8")
    assert not access.grant_covers(grant, "productions/abcd/v1/master.m3u8")
    assert not access.grant_covers(grant, "productions/abc/../xyz/v1/master.m3u8")
    assert not access.grant_covers(grant, "originals/abc/capture.wav")
    assert not access.grant_covers(grant, "productions/abc")


def test_media_tokens_stay_out_of_the_access_log() -> None:
    # What the server does before it serves (cite_live.server.server_config).
    access.install()
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (
            "127.0.0.1:5000",
            "GET",
            "/media/private/WyJhYmMiLDJd.x.y/productions/abc/m.m3u8",
            "1.1",
            200,
        ),
        None,
    )
    logger = logging.getLogger("uvicorn.access")
    assert all(f.filter(record) for f in logger.filters if hasattr(f, "filter"))
    message = record.getMessage()
    assert "WyJhYmMiLDJd" not in message
    assert "/media/private/…/productions/abc/m.m3u8" in message


def test_the_media_middleware_answers_by_the_route_lists_own_media_routes(
    services: Services,
) -> None:
    """One declaration of the media routes: the route list's, which the middleware that answers
    them ahead of the page middleware is handed."""
    app = create_app(services.settings, services)
    declared = [r for r in app.routes if isinstance(r, Route) and r.path.startswith("/media/")]
    assert [r.name for r in declared] == ["private_media", "media"]
    layer: Any = app.build_middleware_stack()
    while not isinstance(layer, media.MediaMiddleware):
        layer = layer.app
    assert all(a is b for a, b in zip(layer.routes, declared, strict=True))


# --- local store ---------------------------------------------------------------------------------


def test_old_public_playlist_and_segment_urls_return_404_once_private(
    services: Services, client: TestClient
) -> None:
    production_id = make_production(services, "Répétition", "public", None)
    prefix = write_stream(services, production_id)
    urls = [f"/media/{prefix}master.m3u8", f"/media/{prefix}a128/seg_00001.m4s"]
    assert [client.get(url).status_code for url in urls] == [200, 200]

    set_visibility(services, production_id, "private")
    refused = [client.get(url) for url in urls]
    assert [r.status_code for r in refused] == [404, 404]
    # Exactly what a missing file gets: nothing tells that something is there.
    missing = client.get(f"/media/productions/{production_id}/v1/nothing.m4s")
    assert refused[1].json() == missing.json()

    set_visibility(services, production_id, "unlisted")
    assert [client.get(url).status_code for url in urls] == [200, 200]


def test_the_owner_plays_a_private_stream_through_signed_links(
    services: Services, client: TestClient
) -> None:
    owner = make_user(services, "owner@example.org")
    production_id = make_production(services, "Maquette", "private", owner)
    write_stream(services, production_id)
    login(client, "owner@example.org")
    data = client.get(f"/api/v1/productions/{production_id}").json()
    master = data["hls_url"]
    assert master.startswith("http://testserver/media/private/")
    assert data["poster_url"].startswith("http://testserver/media/private/")

    urls = stream_urls(client.get, master)
    # master, media playlist, init, two segments: the token rode along in the path.
    assert len(urls) == 5
    assert all("/media/private/" in url for url in urls)
    playlist = client.get(master)
    assert playlist.headers["cache-control"] == "private, no-store"
    assert playlist.headers["referrer-policy"] == "no-referrer"
    assert "access-control-allow-origin" not in playlist.headers
    segment = client.get(urls[-1], headers={"Range": "bytes=0-99"})
    assert segment.status_code == 206 and segment.content == SEGMENT[:100]
    max_age = int(segment.headers["cache-control"].removeprefix("private, max-age="))
    assert 0 < max_age <= services.settings.signed_url_seconds

    # Without the session, the same links keep working until they expire: they are the
    # capability, for the one viewer they were handed to.
    client.cookies.clear()
    assert client.get(urls[-1]).status_code == 200


def test_expired_forged_and_misdirected_tokens_get_404(
    services: Services, client: TestClient
) -> None:
    production_id = make_production(services, "Maquette", "private", None)
    other_id = make_production(services, "Autre", "private", None)
    prefix = write_stream(services, production_id)
    write_stream(services, other_id)
    key = prefix + "a128/seg_00001.m4s"
    secret = services.secret_key
    now = int(time.time())
    valid = access.sign(secret, production_id, now + 60)
    assert client.get(f"/media/private/{valid}/{key}").status_code == 200
    tokens = {
        "expired": access.sign(secret, production_id, now - 1),
        "forged": access.sign("not the site's key", production_id, now + 60),
        "other production": access.sign(secret, other_id, now + 60),
    }
    for why, token in tokens.items():
        response = client.get(f"/media/private/{token}/{key}")
        assert response.status_code == 404, why
        assert response.json()["error"] == "There is no media at this address.", why
    # A token never opens what lies outside its production's published media.
    services.store.put_bytes(f"originals/{production_id}/capture.wav", b"RIFF")
    for outside in (
        f"originals/{production_id}/capture.wav",
        f"productions/{production_id}/../{other_id}/v1/master.m3u8",
    ):
        assert client.get(f"/media/private/{valid}/{outside}").status_code == 404


def test_links_planted_in_the_media_folder_serve_nothing(
    services: Services, client: TestClient
) -> None:
    """The reproduction: a symlink ``productions/x/1/a.m4s -> ../../../originals/…`` served an
    original through /media. Nor does a signed link open what a link in its folder points at."""
    public = make_production(services, "Concert", "public", None)
    write_stream(services, public)
    other = make_production(services, "Maquette", "private", None)
    write_stream(services, other)
    store = services.store
    assert isinstance(store, LocalStore)
    token = access.sign(services.secret_key, public, int(time.time()) + 60)
    missing = client.get(f"/media/productions/{public}/v1/nothing.m4s")
    for key in plant_links(store, public, other):
        for url in (f"/media/{key}", f"/media/private/{token}/{key}"):
            response = client.get(url)
            assert response.status_code == 404, url
            assert response.json() == missing.json(), url
    # The production's own media still plays.
    assert client.get(f"/media/productions/{public}/v1/a128/seg_00001.m4s").status_code == 200


def test_public_and_unlisted_productions_keep_their_public_urls(
    services: Services, client: TestClient
) -> None:
    for visibility in ("public", "unlisted"):
        production_id = make_production(services, f"Concert {visibility}", visibility, None)
        write_stream(services, production_id)
        with services.sessions() as session:
            production = session.get(Production, production_id)
            assert production is not None
            address = production.slug if visibility == "unlisted" else production_id
        data = client.get(f"/api/v1/productions/{address}").json()
        assert (
            data["hls_url"] == f"http://testserver/media/productions/{production_id}/v1/master.m3u8"
        )


def test_the_public_route_caches_visibility_for_a_second_at_most(services: Services) -> None:
    production_id = make_production(services, "Cache", "public", None)
    write_stream(services, production_id)
    guard = services.access
    key = f"productions/{production_id}/v1/seg_00001.m4s"
    assert guard.refuses_public(key, now=100.0) is False
    # Changed behind the ORM's back (another process, say): no listener tells this one.
    with services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == production_id).values(visibility="private")
        )
    assert guard.refuses_public(key, now=100.5) is False
    assert guard.refuses_public(key, now=100.0 + access.VISIBILITY_TTL + 0.01) is True
    assert guard.refuses_public("productions/no-such-id/v1/seg.m4s") is True
    assert guard.refuses_public("covers/site-logo.png") is False


# --- S3 ------------------------------------------------------------------------------------------


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
        CITE_LIVE_S3_PREFIX=f"private-{tmp_path.name}",
        CITE_LIVE_MEDIA_SIGNED_URL_SECONDS="60",
    )
    services = open_services(settings)
    yield services
    # The bucket is shared by the session: leave its policy as it was found.
    assert isinstance(services.store, S3Store)
    services.store.set_private_prefixes([])
    services.close()


def wait_for_status(url: str, expected: int, timeout: float = 15.0) -> int:
    """The status of ``url`` once it is ``expected`` (a policy change may take a moment to reach
    every part of the server), or the last one seen when it never is."""
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(url).status_code
        if status == expected or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_s3_private_media_is_presigned_and_refused_at_its_public_url(
    s3_services: Services, s3_server: Any
) -> None:
    services = s3_services
    store = services.store
    assert isinstance(store, S3Store)
    owner = make_user(services, "owner@example.org")
    production_id = make_production(services, "Maquette S3", "public", owner)
    prefix = write_stream(services, production_id)
    store.put_bytes(f"originals/{production_id}/capture.wav", b"RIFF")
    segment_public = store.public_url(prefix + "a128/seg_00001.m4s", "")
    master_public = store.public_url(prefix + "master.m3u8", "")
    app = create_app(services.settings, services)
    with TestClient(app, base_url="http://testserver") as client:
        # Start-up made the originals unreadable to anonymous readers, whatever the visibility.
        assert (
            wait_for_status(store.public_url(f"originals/{production_id}/capture.wav", ""), 403)
            == 403
        )
        assert httpx.get(segment_public).status_code == 200

        set_visibility(services, production_id, "private")
        services.access.push()  # what the sweeper's thread does when a visibility changes
        assert wait_for_status(segment_public, 403) == 403
        assert httpx.get(master_public).status_code == 403

        login(client, "owner@example.org")
        data = client.get(f"/api/v1/productions/{production_id}").json()
        assert data["hls_url"].startswith("http://testserver/media/private/")
        assert data["poster_url"].startswith(s3_server.endpoint_url)
        assert "X-Amz-Signature=" in data["poster_url"]
        assert httpx.get(data["poster_url"]).content == b"\xff\xd8cover"

        def get(url: str) -> httpx.Response:
            # The app's own URLs in-process; presigned ones from SeaweedFS itself.
            return client.get(url) if url.startswith("http://testserver") else httpx.get(url)

        urls = stream_urls(get, data["hls_url"])
        assert len(urls) == 5
        segments = [url for url in urls if url.startswith(s3_server.endpoint_url)]
        assert len(segments) == 3 and all("X-Amz-Signature=" in url for url in segments)
        fetched = httpx.get(segments[-1])
        assert fetched.content == SEGMENT
        assert fetched.headers["cache-control"].startswith("private, max-age=")
        assert client.get(data["hls_url"]).headers["cache-control"] == "private, no-store"
        # Anything else asked of the app's private route is sent on to its presigned address.
        through_app = data["hls_url"].replace("master.m3u8", "a128/seg_00002.m4s")
        redirected = client.get(through_app, follow_redirects=False)
        assert redirected.status_code == 302
        assert httpx.get(redirected.headers["location"]).content == SEGMENT

        # Links that live 3 s: the presigned one, then the app's own, stop working.
        grant = access.MediaGrant(production_id, int(time.time()) + 3)
        short = access.grant_link(services, grant, "http://testserver")
        segment, master = short(prefix + "a128/seg_00001.m4s"), short(prefix + "master.m3u8")
        assert httpx.get(segment).status_code == 200
        deadline = time.monotonic() + 10
        while client.get(master).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert client.get(master).status_code == 404
        expired = httpx.get(segment)
        assert expired.status_code == 403 and b"expired" in expired.content

        set_visibility(services, production_id, "public")
        services.access.push()
        assert wait_for_status(segment_public, 200) == 200
        assert httpx.get(master_public).status_code == 200


def test_a_visibility_change_leaves_the_bucket_policy_to_the_sweeper(
    s3_services: Services, s3_server: Any
) -> None:
    """An admin unpublishes through the site: the request makes no S3 call (each would hold
    it), and the sweeper, woken by the change rather than at its next pass, writes the policy."""
    store = s3_services.store
    assert isinstance(store, S3Store)
    # A sweeper whose next pass is an hour away: only the change itself can wake it.
    settings = s3_services.settings
    services = dataclasses.replace(
        s3_services,
        settings=dataclasses.replace(
            settings, jobs=dataclasses.replace(settings.jobs, sweep_seconds=3600.0)
        ),
    )
    make_user(services, "admin@example.org", "admin")
    production_id = make_production(services, "Maquette S3", "public", None)
    prefix = write_stream(services, production_id)
    segment_public = store.public_url(prefix + "a128/seg_00001.m4s", "")
    calls: list[tuple[str, str]] = []

    def record(model: Any, **_: Any) -> None:
        calls.append((model.name, threading.current_thread().name))

    app = create_app(services.settings, services)
    with TestClient(app, base_url="http://testserver") as client:
        csrf = login(client, "admin@example.org")
        assert httpx.get(segment_public).status_code == 200
        sweeper = Maintenance(services).start()
        store.client.meta.events.register("before-call.s3", record)
        try:
            response = client.post(
                f"/admin/productions/{production_id}/unpublish",
                data={"csrf_token": csrf},
                follow_redirects=False,
            )
            assert response.status_code == 303
            assert wait_for_status(segment_public, 403) == 403
        finally:
            store.client.meta.events.unregister("before-call.s3", record)
            sweeper.stop()
    elsewhere = [call for call in calls if call[1] != "maintenance"]
    assert not elsewhere, f"S3 calls outside the sweeper: {elsewhere}"
    assert ("PutBucketPolicy", "maintenance") in calls


def test_s3_policy_keeps_the_operators_own_statements(
    s3_services: Services, s3_server: Any
) -> None:
    store = s3_services.store
    assert isinstance(store, S3Store)
    client = s3_server.client()
    theirs = {
        "Sid": "OperatorsOwn",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{s3_server.bucket}/nothing-here/*",
    }
    client.put_bucket_policy(
        Bucket=s3_server.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [theirs]})
    )
    try:
        store.set_private_prefixes(["productions/abc/"])
        statements = json.loads(client.get_bucket_policy(Bucket=s3_server.bucket)["Policy"])[
            "Statement"
        ]
        assert statements[0]["Sid"] == "OperatorsOwn"
        assert len(statements) == 2
        store.set_private_prefixes([])
        statements = json.loads(client.get_bucket_policy(Bucket=s3_server.bucket)["Policy"])[
            "Statement"
        ]
        assert [s["Sid"] for s in statements] == ["OperatorsOwn"]
    finally:
        client.delete_bucket_policy(Bucket=s3_server.bucket)


# --- the player, in a real browser ---------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
AUDIO_SECONDS = 60


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    if not Path(CHROMIUM).is_file():
        return "Debian's chromium is not installed (scripts/install)"
    return None


def test_the_player_renews_expired_links_and_plays_on(tmp_path: Path) -> None:
    if (reason := _browser_missing()) is not None:
        pytest.skip(reason)
    from playwright import sync_api

    lifetime = 5
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_MEDIA_SIGNED_URL_SECONDS=str(lifetime)
    )
    services = open_services(settings)
    try:
        capture = tmp_path / "concert.wav"
        ffmpeg(
            *split(f"-f lavfi -i sine=frequency=330:sample_rate=44100:duration={AUDIO_SECONDS}"),
            str(capture),
        )
        owner = make_user(services, "owner@example.org")
        production_id, job_id = submit_file(services, capture, title="Long concert privé")
        run_transcode(services, job_id)
        with services.sessions.begin() as session:
            production = session.get(Production, production_id)
            assert production is not None and production.status == "ready"
            production.visibility, production.owner_id = "private", owner
        # Made private, it left its plain slug for a secret one.
        with services.sessions() as session:
            production = session.get(Production, production_id)
            assert production is not None
            slug = production.slug
        with serving(services) as url, sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                page.set_default_timeout(30_000)
                page.goto(f"{url}/login")
                page.fill("input[name=email]", "owner@example.org")
                page.fill("input[name=password]", "correct horse battery")
                page.click("form:has(#login-email) button[type=submit]")
                page.wait_for_url(lambda target: "/login" not in target)
                refused: list[str] = []

                def watch(response: Any) -> None:
                    if "/media/private/" in response.url and response.status == 404:
                        refused.append(response.url)

                page.on("response", watch)
                page.goto(f"{url}/productions/{slug}")
                page.wait_for_selector("[data-player][data-engine]", state="attached")
                page.evaluate(
                    "() => { const a = document.querySelector('audio'); a.muted = true; "
                    "return a.play(); }"
                )
                page.wait_for_function("() => document.querySelector('audio').currentTime > 1")
                # Outlive the links, then need media that is not in the buffer any more. A
                # minute of audio is fetched whole at once, so the buffer is emptied here, as
                # the browser does on a long concert, and playback moves on to 40 s.
                time.sleep(lifetime + 1)
                page.evaluate(
                    """() => {
                        const player = window.CiteLivePlayer.players[0];
                        player.hls.trigger(window.CiteLivePlayer.Hls.Events.BUFFER_FLUSHING, {
                            startOffset: 0, endOffset: Number.POSITIVE_INFINITY, type: null,
                        });
                        player.media.currentTime = 40;
                    }"""
                )
                # Functions, not expressions: Playwright evaluates an expression with eval(),
                # which the page's Content-Security-Policy refuses.
                page.wait_for_function(
                    "() => document.querySelector('[data-player]').dataset.linksRenewed >= 1"
                )
                page.wait_for_function("() => document.querySelector('audio').currentTime > 41")
                assert refused, "the expired links were never refused"
                assert page.query_selector(".cl-player__error") is None
            finally:
                browser.close()
    finally:
        services.close()


def test_a_media_key_that_cannot_be_stored_never_reaches_the_database(
    tmp_path: Path, any_database_url: str
) -> None:
    """The public route looked up the visibility of the production a key names before it
    checked the key: on PostgreSQL, a NUL in it failed the query and dropped the connection."""
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        app = create_app(services.settings, services)
        with TestClient(app, raise_server_exceptions=False) as client:
            for path in (
                "/media/productions/a%00b/v1/master.m3u8",
                "/media/productions/a%01b/v1/master.m3u8",
                "/media/productions/a%5Cb/v1/master.m3u8",
            ):
                response = client.get(path)
                assert response.status_code == 404, path
                assert response.json()["error"] == "There is no media at this address."
    finally:
        services.close()
