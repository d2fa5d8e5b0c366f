"""Behind nginx: the app checks each media request and nginx sends the file (X-Accel-Redirect).

A real nginx (Debian's, installed by scripts/install) runs in front of the app on 127.0.0.1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from cite_live.services import Services, open_services
from cite_live.storage import LocalStore
from cite_live.web.app import create_app
from cite_live.web.media import CORS_HEADERS
from tests import nginx
from tests.app_fixtures import free_port, make_settings, serving
from tests.dbs import sqlite_url
from tests.test_pages import publish
from tests.test_storage import plant_links

SERVER = """\
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            proxy_set_header Host $host;
        }}
        location /_media/ {{
            internal;
            alias {root}/;
            disable_symlinks on from=$document_root;
            # nginx keeps only a few of the app's headers (Content-Type, Cache-Control...):
            # the cross-origin and security ones are set here, as the README's configuration
            # does.
            add_header Access-Control-Allow-Origin "*" always;
            add_header Access-Control-Expose-Headers "{expose}" always;
            add_header Timing-Allow-Origin "*" always;
            add_header X-Content-Type-Options "nosniff" always;
            add_header X-Frame-Options "DENY" always;
            add_header Content-Security-Policy "frame-ancestors 'none'" always;
        }}
    }}
"""


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_LOCAL_ACCEL_REDIRECT="/_media/"
    )
    opened = open_services(settings)
    yield opened
    opened.close()


@pytest.fixture
def nginx_front(services: Services, tmp_path: Path) -> Iterator[str]:
    if nginx.nginx_binary() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is required in CI (scripts/install installs nginx-light)")
        pytest.skip("nginx is not installed (scripts/install)")
    store = services.store
    assert isinstance(store, LocalStore)
    store.root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with serving(services) as app_url:
        server = SERVER.format(
            port=port,
            app_port=app_url.rsplit(":", 1)[1],
            root=store.root.resolve(),
            expose=CORS_HEADERS["Access-Control-Expose-Headers"],
        )
        with nginx.running(tmp_path / "nginx", server, port, "/api/v1/productions") as front:
            yield front.url


def test_nginx_sends_the_file_the_app_allows(services: Services, nginx_front: str) -> None:
    with services.sessions.begin() as session:
        public = publish(session, "Concert public").id
        private = publish(session, "Concert privé", visibility="private").id
    segment = os.urandom(300_000)
    for production_id in (public, private):
        services.store.put_bytes(f"productions/{production_id}/v1/seg_00001.m4s", segment)
    services.store.put_bytes(f"originals/{public}/capture.mov", b"raw capture")

    whole = httpx.get(f"{nginx_front}/media/productions/{public}/v1/seg_00001.m4s")
    assert whole.status_code == 200 and whole.content == segment
    assert whole.headers["access-control-allow-origin"] == "*"
    assert "immutable" in whole.headers["cache-control"]
    assert whole.headers["content-type"] == "video/iso.segment"
    assert "x-accel-redirect" not in whole.headers
    assert whole.headers["x-content-type-options"] == "nosniff"
    assert whole.headers["x-frame-options"] == "DENY"
    # nginx keeps the app's type: sound without picture is audio/mp4 (RFC 4337).
    services.store.put_bytes(f"productions/{public}/v1/audio/init.mp4", segment[:800])
    audio = httpx.get(f"{nginx_front}/media/productions/{public}/v1/audio/init.mp4")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/mp4"
    part = httpx.get(
        f"{nginx_front}/media/productions/{public}/v1/seg_00001.m4s",
        headers={"Range": "bytes=1000-1999"},
    )
    assert part.status_code == 206 and part.content == segment[1000:2000]

    # What the app refuses, nginx never sends; and its own location is not reachable from outside.
    for refused in (
        f"/media/productions/{private}/v1/seg_00001.m4s",
        f"/media/originals/{public}/capture.mov",
        f"/_media/productions/{public}/v1/seg_00001.m4s",
    ):
        assert httpx.get(nginx_front + refused).status_code == 404, refused


def test_nginx_is_never_sent_to_a_link_planted_in_the_media_folder(
    services: Services, nginx_front: str
) -> None:
    with services.sessions.begin() as session:
        public = publish(session, "Concert public").id
        private = publish(session, "Concert privé", visibility="private").id
    store = services.store
    assert isinstance(store, LocalStore)
    for key in plant_links(store, public, private):
        response = httpx.get(f"{nginx_front}/media/{key}")
        # The app's own refusal: nginx was never asked for the file.
        assert response.status_code == 404, key
        assert response.json() == {"error": "There is no media at this address.", "status": 404}
        assert "x-accel-redirect" not in response.headers


def test_without_nginx_the_answer_names_the_internal_location(services: Services) -> None:
    with services.sessions.begin() as session:
        public = publish(session, "Concert").id
    key = f"productions/{public}/v1/seg 1.m4s"
    services.store.put_bytes(key, b"segment")
    with serving(services) as url:
        response = httpx.get(f"{url}/media/{key}")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["x-accel-redirect"] == f"/_media/productions/{public}/v1/seg%201.m4s"


MEDIA_PLAYLIST = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n" + "".join(
    f"#EXTINF:6.000000,\nseg_{n:05d}.m4s\n" for n in range(1, 80)
)


def test_playlists_leave_gzipped_and_audio_segments_as_audio_mp4(tmp_path: Path) -> None:
    """Apple's HLS authoring specification: playlists are gzip-compressed for clients that
    accept it (its general authoring requirements); segments never are."""
    opened = open_services(make_settings(tmp_path / "data", sqlite_url(tmp_path)))
    try:
        with opened.sessions.begin() as session:
            public = publish(session, "Concert").id
        prefix = f"/media/productions/{public}/v1/"
        store = opened.store
        store.put_bytes(f"productions/{public}/v1/a128/index.m3u8", MEDIA_PLAYLIST.encode())
        segment = os.urandom(4000)
        for name in ("a128/init.mp4", "a128/seg_00001.m4s", "v360/init.mp4"):
            store.put_bytes(f"productions/{public}/v1/{name}", segment)
        client = TestClient(create_app(opened.settings, opened))
        zipped = client.get(prefix + "a128/index.m3u8", headers={"accept-encoding": "gzip"})
        assert zipped.status_code == 200
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.headers["content-type"].startswith("application/vnd.apple.mpegurl")
        assert "accept-encoding" in zipped.headers["vary"].lower()
        # httpx undoes the coding: the bytes are the playlist's, and fewer went over the wire.
        assert zipped.text == MEDIA_PLAYLIST
        assert int(zipped.headers["content-length"]) < len(MEDIA_PLAYLIST) / 3
        plain = client.get(prefix + "a128/index.m3u8", headers={"accept-encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.text == MEDIA_PLAYLIST

        types = {}
        for name in ("a128/init.mp4", "a128/seg_00001.m4s", "v360/init.mp4"):
            answer = client.get(prefix + name, headers={"accept-encoding": "gzip"})
            assert answer.content == segment and "content-encoding" not in answer.headers
            types[name] = answer.headers["content-type"]
        assert types == {
            "a128/init.mp4": "audio/mp4",
            "a128/seg_00001.m4s": "audio/mp4",
            "v360/init.mp4": "video/mp4",
        }
    finally:
        opened.close()
