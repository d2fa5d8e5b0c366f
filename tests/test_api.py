"""The JSON API and the local media route, on records made directly (no transcoding)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from cite_live.app import create_app
from cite_live.catalogue import create_production, set_tags
from cite_live.models import MediaVersion, utcnow
from cite_live.services import Services

MASTER = "#EXTM3U\n#EXT-X-VERSION:7\n"


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url="http://testserver") as c:
        yield c


def publish_fake(services: Services, title: str, *, visibility: str = "public") -> str:
    """A ready production whose version holds a small master and a 1000-byte segment."""
    with services.sessions.begin() as session:
        production = create_production(
            session, title=title, filename="x.flac", artists=["Élodie Fauré"], kind="audio"
        )
        prefix = f"productions/{production.id}/j1/"
        version = MediaVersion(
            production_id=production.id,
            name="j1",
            state="published",
            prefix=prefix,
            master_key=prefix + "master.m3u8",
            cover_key=prefix + "cover.jpg",
            ladder=[],
        )
        session.add(version)
        session.flush()
        production.current_version_id = version.id
        production.status, production.duration, production.visibility = "ready", 61.5, visibility
        production.published_at = utcnow()
        set_tags(session, production, ["Jazz"])
        production_id = production.id
    services.store.put_bytes(prefix + "master.m3u8", MASTER.encode())
    services.store.put_bytes(prefix + "a128/seg_00001.m4s", bytes(range(250)) * 4)
    return production_id


def test_production_object_has_the_contract_fields(client: TestClient, services: Services) -> None:
    production_id = publish_fake(services, "Nuit Électro")
    body = client.get(f"/api/v1/productions/{production_id}").json()
    assert body["id"] == production_id
    assert (body["slug"], body["title"], body["kind"]) == ("nuit-electro", "Nuit Électro", "audio")
    assert (body["status"], body["duration"]) == ("ready", 61.5)
    assert body["artists"] == [
        {"name": "Élodie Fauré", "slug": "elodie-faure", "role": "performer"}
    ]
    assert body["hls_url"] == (
        f"http://testserver/media/productions/{production_id}/j1/master.m3u8"
    )
    assert body["poster_url"].endswith("/j1/cover.jpg")
    assert body["page_url"] == "http://testserver/productions/nuit-electro"
    assert body["embed_url"] == f"http://testserver/embed/{production_id}"
    assert body["tags"] == ["Jazz"]
    assert "error" not in body


def test_failed_production_carries_its_error(client: TestClient, services: Services) -> None:
    with services.sessions.begin() as session:
        production = create_production(session, title="Raté", filename="x.mp4")
        production.status, production.error = "failed", "This file is a playlist, not a recording."
        production_id = production.id
    body = client.get(f"/api/v1/productions/{production_id}").json()
    assert body["status"] == "failed"
    assert body["error"] == "This file is a playlist, not a recording."
    assert body["hls_url"] is None


def test_unknown_and_private_productions_are_404_in_json(
    client: TestClient, services: Services
) -> None:
    hidden = publish_fake(services, "Secret", visibility="private")
    for production_id in ("nope", hidden):
        response = client.get(f"/api/v1/productions/{production_id}")
        assert response.status_code == 404
        assert response.json()["error"] == "There is no production with this identifier."


def test_list_pages_through_public_ready_productions(
    client: TestClient, services: Services
) -> None:
    ids = [publish_fake(services, f"Session {n}") for n in range(5)]
    publish_fake(services, "Unlisted", visibility="unlisted")
    first = client.get("/api/v1/productions?per_page=2").json()
    assert (first["total"], first["page"], len(first["items"])) == (5, 1, 2)
    assert first["next"].endswith("page=2")
    seen = [item["id"] for item in first["items"]]
    page = first
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [item["id"] for item in page["items"]]
    assert sorted(seen) == sorted(ids)
    bad = client.get("/api/v1/productions?per_page=1000")
    assert bad.status_code == 400
    assert "per_page" in bad.json()["error"]


def test_media_is_served_with_range_cors_and_cache_headers(
    client: TestClient, services: Services
) -> None:
    production_id = publish_fake(services, "Range")
    base = f"/media/productions/{production_id}/j1"
    segment = client.get(f"{base}/a128/seg_00001.m4s", headers={"Range": "bytes=10-19"})
    assert segment.status_code == 206
    assert segment.content == (bytes(range(250)) * 4)[10:20]
    assert segment.headers["content-range"] == "bytes 10-19/1000"
    assert segment.headers["access-control-allow-origin"] == "*"
    assert segment.headers["content-type"] == "video/iso.segment"
    assert "immutable" in segment.headers["cache-control"]

    master = client.get(f"{base}/master.m3u8")
    assert master.status_code == 200
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert "immutable" not in master.headers["cache-control"]
    assert "max-age=" in master.headers["cache-control"]
    again = client.get(f"{base}/master.m3u8", headers={"If-None-Match": master.headers["etag"]})
    assert again.status_code == 304

    preflight = client.options(f"{base}/master.m3u8")
    assert preflight.status_code == 204
    assert "Range" in preflight.headers["access-control-allow-headers"]


@pytest.mark.parametrize(
    "path",
    ["/media/../cite-live.db", "/media/%2e%2e/cite-live.db", "/media/productions/none/x.m4s"],
)
def test_media_outside_the_store_or_missing_is_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_originals_are_never_served(client: TestClient, services: Services) -> None:
    services.store.put_bytes("originals/abc/raw.wav", b"RIFF....")
    assert client.get("/media/originals/abc/raw.wav").status_code == 404


def test_html_errors_render_the_error_page(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert "<h1>404</h1>" in response.text
