"""The tus 1.0 server: protocol answers in-process, tuspy against a real server, kill -9."""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient
from tusclient import client as tus_client

from cite_live import partials, uploads
from cite_live.jobs import ingest
from cite_live.models import Job, Production, Upload, User
from cite_live.partials import PartialFile
from cite_live.services import Services, open_services
from cite_live.uploads import data_path
from cite_live.web.app import create_app
from tests.account_fixtures import login, make_user, token_for
from tests.app_fixtures import LiveServer, free_port, make_settings
from tests.test_jobs import Media, production_row
from transcoder import InputRefused

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = "application/offset+octet-stream"
OWNER = "owner@example.org"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def metadata(**values: str) -> str:
    return ",".join(f"{key} {b64(value)}" for key, value in values.items())


def checksum(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


class Tus:
    """A tus client speaking through a TestClient with one account's Bearer token."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.auth = {"Authorization": f"Bearer {token}", **TUS}

    def create(self, length: int, **meta: str) -> httpx.Response:
        headers = {**self.auth, "Upload-Length": str(length)}
        if meta:
            headers["Upload-Metadata"] = metadata(**meta)
        return self.client.post("/api/v1/uploads/", headers=headers)

    def new(self, length: int, **meta: str) -> str:
        response = self.create(length, **{"filename": "concert.mp4", **meta})
        assert response.status_code == 201, response.text
        return str(response.headers["Location"])

    def patch(self, url: str, offset: int, data: bytes, **headers: str) -> httpx.Response:
        sent = {**self.auth, "Upload-Offset": str(offset), "Content-Type": OCTETS, **headers}
        return self.client.patch(url, content=data, headers=sent)

    def head(self, url: str) -> httpx.Response:
        return self.client.head(url, headers=self.auth)

    def delete(self, url: str) -> httpx.Response:
        return self.client.delete(url, headers=self.auth)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services), base_url="http://testserver") as c:
        yield c


@pytest.fixture
def tus(services: Services, client: TestClient) -> Tus:
    make_user(services, OWNER, artists=["Nora Ilić"])
    return Tus(client, token_for(services, OWNER))


def counts(services: Services) -> tuple[int, int]:
    with services.sessions() as session:
        productions = session.scalar(select(func.count()).select_from(Production))
        jobs = session.scalar(select(func.count()).select_from(Job))
        return int(productions or 0), int(jobs or 0)


def upload_row(services: Services, url: str) -> Upload:
    with services.sessions() as session:
        upload = session.get(Upload, url.rsplit("/", 1)[-1])
        assert upload is not None
        session.expunge(upload)
        return upload


def stored_bytes(services: Services, production_id: str) -> bytes:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.original_key
        key = production.original_key
    with services.store.available_locally(key, services.settings.tmp_dir) as path:
        return path.read_bytes()


# --- discovery and creation ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/uploads/", "/api/v1/uploads"])
def test_options_says_what_the_server_supports(tus: Tus, services: Services, path: str) -> None:
    response = tus.client.options(path, headers={"Authorization": tus.auth["Authorization"]})
    assert response.status_code == 204
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["Tus-Version"] == "1.0.0"
    extensions = set(response.headers["Tus-Extension"].split(","))
    assert extensions == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert response.headers["Tus-Max-Size"] == str(services.settings.limits.max_bytes)
    assert set(response.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256", "md5"}


def test_anonymous_requests_are_refused(client: TestClient) -> None:
    response = client.post("/api/v1/uploads/", headers={**TUS, "Upload-Length": "10"})
    assert response.status_code == 401
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.text.strip().endswith(".")


def test_a_bad_token_is_refused_in_tus_terms_too(client: TestClient) -> None:
    headers = {**TUS, "Upload-Length": "10", "Authorization": "Bearer clw_not-a-token"}
    response = client.post("/api/v1/uploads/", headers=headers)
    assert response.status_code == 401
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_creation_answers_an_absolute_location_and_an_expiry(tus: Tus) -> None:
    before = datetime.now(UTC)
    response = tus.create(1000, filename="Concert à Romans.mov", title="Nuit blanche")
    assert response.status_code == 201
    assert response.headers["Tus-Resumable"] == "1.0.0"
    location = response.headers["Location"]
    assert urlsplit(location).scheme == "http" and urlsplit(location).netloc == "testserver"
    assert urlsplit(location).path.startswith("/api/v1/uploads/")
    expires = parsedate_to_datetime(response.headers["Upload-Expires"])
    assert response.headers["Upload-Expires"].endswith(" GMT")
    assert before + timedelta(hours=23) < expires <= before + timedelta(hours=24, seconds=5)

    head = tus.head(location)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == "1000"
    assert head.headers["Cache-Control"] == "no-store"
    assert head.headers["Tus-Resumable"] == "1.0.0"
    sent = dict(pair.split(" ") for pair in head.headers["Upload-Metadata"].split(","))
    assert base64.b64decode(sent["filename"]).decode() == "Concert à Romans.mov"
    assert base64.b64decode(sent["title"]).decode() == "Nuit blanche"


def test_the_collection_answers_without_its_slash(tus: Tus) -> None:
    response = tus.client.post(
        "/api/v1/uploads", headers={**tus.auth, "Upload-Length": "10"}, follow_redirects=False
    )
    assert response.status_code == 201


def test_metadata_from_the_client_is_cleaned(tus: Tus, services: Services) -> None:
    url = tus.new(3, filename="C:\\captures\\live\x00\x1b[31m.mp4", title="  Nuit\n blanche\t")
    upload = upload_row(services, url)
    assert upload.meta["filename"] == "live[31m.mp4"
    assert upload.meta["title"] == "Nuit blanche"
    long = tus.create(3, filename="x" * 5000 + ".mp4")
    assert long.status_code == 201
    assert len(upload_row(services, long.headers["Location"]).meta["filename"]) == 300


@pytest.mark.parametrize(
    "headers",
    [
        {"Upload-Metadata": "filename not-base64!"},
        {"Upload-Metadata": "filename eA== more"},
        {"Upload-Metadata": f"filename {b64('a')},filename {b64('b')}"},
        {"Upload-Length": "-1"},
        {"Upload-Length": "ten"},
        {"Upload-Length": "0"},
        {"Upload-Defer-Length": "1"},
    ],
)
def test_malformed_creations_are_400(tus: Tus, headers: dict[str, str]) -> None:
    sent = {**tus.auth, "Upload-Length": "10", **headers}
    if "Upload-Defer-Length" in headers:
        del sent["Upload-Length"]
    response = tus.client.post("/api/v1/uploads/", headers=sent)
    assert response.status_code == 400, headers
    assert response.headers["Tus-Resumable"] == "1.0.0"


def test_a_missing_or_other_protocol_version_is_412(tus: Tus) -> None:
    url = tus.new(10)
    bearer = {"Authorization": tus.auth["Authorization"]}
    for version in ({}, {"Tus-Resumable": "0.2.2"}):
        headers = {**bearer, **version}
        post = tus.client.post("/api/v1/uploads/", headers={**headers, "Upload-Length": "1"})
        head = tus.client.head(url, headers=headers)
        patch = tus.client.patch(
            url, content=b"x", headers={**headers, "Upload-Offset": "0", "Content-Type": OCTETS}
        )
        for response in (post, head, patch):
            assert response.status_code == 412
            assert response.headers["Tus-Version"] == "1.0.0"
    assert tus.head(url).headers["Upload-Offset"] == "0"


# --- writing -------------------------------------------------------------------------------------


def test_chunks_make_one_production_whose_original_is_the_file(
    tus: Tus, services: Services
) -> None:
    data = os.urandom(300_000)
    url = tus.new(len(data), title="Nuit blanche", filetype="video/mp4")
    for start in range(0, len(data), 100_000):
        response = tus.patch(url, start, data[start : start + 100_000])
        assert response.status_code == 204, response.text
        assert response.headers["Upload-Offset"] == str(start + 100_000)
        assert response.headers["Tus-Resumable"] == "1.0.0"
        assert "Upload-Expires" in response.headers
        assert tus.head(url).headers["Upload-Offset"] == str(start + 100_000)

    upload = upload_row(services, url)
    assert upload.state == "stored" and upload.offset == len(data)
    assert not data_path(services.settings, upload.id).exists()
    with services.sessions() as session:
        production = session.get(Production, upload.production_id)
        assert production is not None
        assert production.title == "Nuit blanche" and not production.title_is_placeholder
        # A draft: its uploader's alone until they publish it, then public.
        assert production.status == "processing" and production.visibility == "private"
        assert production.publish_as == "public"
        assert production.owner is not None and production.owner.email == OWNER
        assert production.original_bytes == len(data)
        assert production.original_key == f"originals/{production.id}/concert.mp4"
        assert [(c.artist.name, c.role) for c in production.credits] == [("Nora Ilić", "performer")]
        jobs = list(session.scalars(select(Job)))
        assert [(j.production_id, j.upload_id, j.state) for j in jobs] == [
            (production.id, upload.id, "queued")
        ]
    assert hashlib.sha256(stored_bytes(services, upload.production_id or "")).digest() == (
        hashlib.sha256(data).digest()
    )
    head = tus.head(url)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == str(len(data))


def test_the_final_patch_sent_again_makes_no_second_production(
    tus: Tus, services: Services
) -> None:
    data = os.urandom(2_000)
    url = tus.new(len(data))
    assert tus.patch(url, 0, data[:1000]).status_code == 204
    first = tus.patch(url, 1000, data[1000:])
    again = tus.patch(url, 1000, data[1000:])
    assert first.status_code == again.status_code == 204
    assert again.headers["Upload-Offset"] == str(len(data))
    assert counts(services) == (1, 1)


def test_head_completes_an_upload_whose_last_byte_was_recorded_before_a_crash(
    tus: Tus, services: Services
) -> None:
    url = tus.new(3)
    upload_id = url.rsplit("/", 1)[-1]
    data_path(services.settings, upload_id).write_bytes(b"abc")
    uploads.record_offset(services, upload_id, 3)
    head = tus.head(url)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "3"
    assert upload_row(services, url).state == "stored"
    assert counts(services) == (1, 1)


def test_an_offset_mismatch_is_409_and_changes_nothing(tus: Tus) -> None:
    url = tus.new(100)
    assert tus.patch(url, 0, b"a" * 10).status_code == 204
    for offset in (0, 5, 20):
        response = tus.patch(url, offset, b"b" * 10)
        assert response.status_code == 409
        assert response.headers["Upload-Offset"] == "10"
    assert tus.head(url).headers["Upload-Offset"] == "10"


def test_an_offset_mismatch_is_409_even_when_the_chunk_would_also_overflow(tus: Tus) -> None:
    # The wrong offset is what the client must correct first (tus 1.0: "MUST respond with the
    # 409 Conflict status"): told 413, it would shorten a chunk that starts at the wrong place.
    url = tus.new(10)
    assert tus.patch(url, 0, b"a" * 4).status_code == 204
    for offset, size in ((0, 11), (2, 9), (8, 3), (11, 1), (10**18, 1)):
        response = tus.patch(url, offset, b"b" * size)
        assert response.status_code == 409, (offset, size, response.text)
        assert response.headers["Upload-Offset"] == "4"
    # At the right offset, a chunk too long is still refused as such.
    assert tus.patch(url, 4, b"b" * 7).status_code == 413
    assert tus.head(url).headers["Upload-Offset"] == "4"


def test_a_chunk_without_the_tus_content_type_is_415(tus: Tus) -> None:
    url = tus.new(100)
    response = tus.patch(url, 0, b"abc", **{"Content-Type": "application/octet-stream"})
    assert response.status_code == 415
    assert tus.head(url).headers["Upload-Offset"] == "0"


def test_a_chunk_past_the_end_is_413(tus: Tus) -> None:
    url = tus.new(10)
    assert tus.patch(url, 0, b"x" * 11).status_code == 413
    assert tus.patch(url, 0, b"x" * 4).status_code == 204
    assert tus.patch(url, 4, b"x" * 7).status_code == 413
    assert tus.head(url).headers["Upload-Offset"] == "4"


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_a_checksum_that_matches_is_accepted(tus: Tus, algorithm: str) -> None:
    url = tus.new(20)
    response = tus.patch(url, 0, b"a" * 10, **{"Upload-Checksum": checksum(algorithm, b"a" * 10)})
    assert response.status_code == 204
    assert tus.head(url).headers["Upload-Offset"] == "10"


def test_a_checksum_mismatch_is_460_and_the_chunk_is_discarded(
    tus: Tus, services: Services
) -> None:
    url = tus.new(20)
    assert tus.patch(url, 0, b"a" * 5).status_code == 204
    wrong = tus.patch(url, 5, b"b" * 10, **{"Upload-Checksum": checksum("sha256", b"c" * 10)})
    assert wrong.status_code == 460
    assert wrong.headers["Upload-Offset"] == "5"
    assert tus.head(url).headers["Upload-Offset"] == "5"
    assert data_path(services.settings, url.rsplit("/", 1)[-1]).read_bytes() == b"a" * 5
    # The metrics count what was kept.
    registry = services.metrics.registry
    assert registry.get_sample_value("cite_live_upload_bytes_total") == 5


@pytest.mark.parametrize(
    "header", ["crc32 AAAAAA==", "sha256 not*base64", "sha1 " + base64.b64encode(b"short").decode()]
)
def test_an_unusable_checksum_header_is_400(tus: Tus, header: str) -> None:
    url = tus.new(20)
    response = tus.patch(url, 0, b"a" * 10, **{"Upload-Checksum": header})
    assert response.status_code == 400
    assert tus.head(url).headers["Upload-Offset"] == "0"


def test_creation_with_upload_takes_the_first_chunk(tus: Tus, services: Services) -> None:
    headers = {
        **tus.auth,
        "Upload-Length": "10",
        "Content-Type": OCTETS,
        "Upload-Metadata": metadata(filename="a.mp3"),
    }
    part = tus.client.post("/api/v1/uploads/", headers=headers, content=b"12345")
    assert part.status_code == 201 and part.headers["Upload-Offset"] == "5"
    assert tus.head(part.headers["Location"]).headers["Upload-Offset"] == "5"

    whole = tus.client.post("/api/v1/uploads/", headers=headers, content=b"0123456789")
    assert whole.status_code == 201 and whole.headers["Upload-Offset"] == "10"
    upload = upload_row(services, whole.headers["Location"])
    assert upload.state == "stored"
    assert stored_bytes(services, upload.production_id or "") == b"0123456789"


def test_creation_with_a_damaged_first_chunk_exists_at_offset_zero(tus: Tus) -> None:
    headers = {
        **tus.auth,
        "Upload-Length": "10",
        "Content-Type": OCTETS,
        "Upload-Checksum": checksum("sha1", b"other"),
    }
    response = tus.client.post("/api/v1/uploads/", headers=headers, content=b"12345")
    assert response.status_code == 201 and response.headers["Upload-Offset"] == "0"


def test_a_body_with_another_type_on_creation_is_415(tus: Tus) -> None:
    headers = {**tus.auth, "Upload-Length": "10", "Content-Type": "text/plain"}
    response = tus.client.post("/api/v1/uploads/", headers=headers, content=b"12345")
    assert response.status_code == 415


def test_a_second_writer_at_once_is_told_to_wait(tus: Tus, services: Services) -> None:
    url = tus.new(10)
    held = PartialFile.open(data_path(services.settings, url.rsplit("/", 1)[-1]))
    try:
        assert tus.patch(url, 0, b"x").status_code == 423
        assert tus.delete(url).status_code == 423
        # HEAD still answers, with the offset recorded so far.
        assert tus.head(url).headers["Upload-Offset"] == "0"
    finally:
        held.close()
    assert tus.patch(url, 0, b"x").status_code == 204


def test_method_override_for_clients_that_only_post(tus: Tus) -> None:
    url = tus.new(3)
    headers = {**tus.auth, "X-HTTP-Method-Override": "PATCH", "Content-Type": OCTETS}
    response = tus.client.post(url, content=b"ab", headers={**headers, "Upload-Offset": "0"})
    assert response.status_code == 204 and response.headers["Upload-Offset"] == "2"


# --- owners, termination, limits -----------------------------------------------------------------


def test_other_accounts_get_404_and_the_offset_stays(
    tus: Tus, services: Services, client: TestClient
) -> None:
    url = tus.new(100)
    assert tus.patch(url, 0, b"a" * 10).status_code == 204
    make_user(services, "other@example.org", artists=["Autre"])
    make_user(services, "admin@example.org", "admin")
    for email in ("other@example.org", "admin@example.org"):
        intruder = Tus(client, token_for(services, email))
        assert intruder.head(url).status_code == 404
        assert intruder.patch(url, 10, b"b" * 10).status_code == 404
        assert intruder.delete(url).status_code == 404
    assert tus.head(url).headers["Upload-Offset"] == "10"
    assert tus.head(url.rsplit("/", 1)[0] + "/" + "0" * 32).status_code == 404


def test_delete_removes_the_upload_and_it_is_gone_afterwards(tus: Tus, services: Services) -> None:
    url = tus.new(100)
    assert tus.patch(url, 0, b"a" * 10).status_code == 204
    path = data_path(services.settings, url.rsplit("/", 1)[-1])
    assert path.exists()
    response = tus.delete(url)
    assert response.status_code == 204 and response.headers["Tus-Resumable"] == "1.0.0"
    assert not path.exists()
    assert tus.head(url).status_code == 410
    assert tus.patch(url, 10, b"b").status_code == 410
    assert tus.delete(url).status_code == 410
    assert counts(services) == (0, 0)


def test_a_complete_upload_cannot_be_deleted(tus: Tus, services: Services) -> None:
    url = tus.new(3)
    assert tus.patch(url, 0, b"abc").status_code == 204
    assert tus.delete(url).status_code == 409
    assert counts(services) == (1, 1)


def test_an_upload_larger_than_the_limit_is_413(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", f"sqlite:///{tmp_path / 'db.sqlite'}", CITE_LIVE_LIMITS_MAX_BYTES="2048"
    )
    opened = open_services(settings)
    try:
        make_user(opened, OWNER)
        with TestClient(create_app(settings, opened)) as client:
            tus = Tus(client, token_for(opened, OWNER))
            assert tus.create(2048).status_code == 201
            refused = tus.create(2049, filename="big.mov")
            assert refused.status_code == 413
            # In English to a client that names no language (tuspy), as the rest of the API.
            assert refused.text.strip() == "This file is larger than the 2 KB an upload may be."
    finally:
        opened.close()


def test_an_upload_over_the_quota_is_413_with_a_sentence(tus: Tus, services: Services) -> None:
    with services.sessions.begin() as session:
        user = session.scalars(select(User).where(User.email == OWNER)).one()
        user.quota_bytes = 50 * 1024**2
    assert tus.create(30 * 1024**2).status_code == 201
    refused = tus.create(25 * 1024**2)
    assert refused.status_code == 413
    assert refused.text.strip() == "This upload would exceed your 50 MB storage quota."
    # The studio's uploader, in a French browser.
    french = tus.client.post(
        "/api/v1/uploads/",
        headers={**tus.auth, "Upload-Length": str(25 * 1024**2), "Accept-Language": "fr-FR"},
    )
    assert french.text.strip() == "Cet envoi dépasserait votre quota de stockage de 50 Mo."
    assert tus.create(20 * 1024**2).status_code == 201


# --- what the uploads become --------------------------------------------------------------------


def send_file(tus: Tus, services: Services, data: bytes, **meta: str) -> Upload:
    """Upload ``data`` whole; return its upload row once its original is stored."""
    url = tus.new(len(data), **meta)
    assert tus.patch(url, 0, data).status_code == 204
    upload = upload_row(services, url)
    assert upload.state == "stored"
    return upload


def job_of(services: Services, upload: Upload) -> int:
    with services.sessions() as session:
        job_id = session.scalar(select(Job.id).where(Job.upload_id == upload.id))
        assert job_id is not None
        return job_id


def test_a_refused_replacement_leaves_the_playing_production_as_it_was(
    tus: Tus, services: Services, media: Media
) -> None:
    good = media("ogg_vorbis").read_bytes()
    first = send_file(tus, services, good, filename="concert.ogg", filetype="audio/ogg")
    production_id = first.production_id or ""
    ingest.run_transcode(services, job_of(services, first))
    before = production_row(services, production_id)
    assert before.status == "ready" and before.current_version_id is not None
    original = before.original_key or ""

    bad = media("text_as_mp3").read_bytes()
    second = send_file(tus, services, bad, filename="notes.mp3", production=production_id)
    job_id = job_of(services, second)
    # Until its transcode publishes it, the replacement changes nothing of the production.
    waiting = production_row(services, production_id)
    assert (waiting.status, waiting.current_version_id, waiting.original_key) == (
        "ready",
        before.current_version_id,
        original,
    )
    with pytest.raises(InputRefused):
        ingest.run_transcode(services, job_id)

    after = production_row(services, production_id)
    assert (after.status, after.current_version_id, after.error) == (
        "ready",
        before.current_version_id,
        None,
    )
    assert (after.original_key, after.original_filename, after.original_bytes) == (
        original,
        before.original_filename,
        len(good),
    )
    # The original that plays is whole; the refused file is gone from the store.
    assert services.store.list(f"originals/{production_id}/") == [original]
    assert stored_bytes(services, production_id) == good
    assert production_row(services, production_id).updated_at == before.updated_at

    # The artist learns why, in plain words, where they look: the API and the studio.
    refusal = "This file is text, not a recording."
    mine = tus.client.get(
        "/api/v1/me/productions", headers={"Authorization": tus.auth["Authorization"]}
    )
    [item] = mine.json()["items"]
    assert (item["status"], item["job"]["state"], item["job"]["error"]) == (
        "ready",
        "failed",
        refusal,
    )
    login(tus.client, OWNER)
    studio = tus.client.get("/studio", headers={"Accept-Language": "en"}).text
    edit = tus.client.get(f"/studio/productions/{production_id}", headers={"Accept-Language": "en"})
    for page in (studio, edit.text):
        assert "Replacement failed" in page and refusal in page
        assert "The previous recording still plays." in page
    # Its file is gone: there is nothing to try again.
    assert f"/studio/productions/{production_id}/retry" not in studio
    french = tus.client.get("/studio?lang=fr").text
    assert "Ce fichier est du texte, pas un enregistrement." in french


def test_a_published_replacement_takes_the_place_of_the_original(
    tus: Tus, services: Services, media: Media
) -> None:
    first = send_file(tus, services, media("opus").read_bytes(), filename="take-1.opus")
    production_id = first.production_id or ""
    ingest.run_transcode(services, job_of(services, first))
    old = production_row(services, production_id)
    new = media("ogg_vorbis").read_bytes()
    second = send_file(tus, services, new, filename="take-2.ogg", production=production_id)
    ingest.run_transcode(services, job_of(services, second))
    after = production_row(services, production_id)
    assert (after.status, after.original_filename, after.original_bytes) == (
        "ready",
        "take-2.ogg",
        len(new),
    )
    assert after.current_version_id != old.current_version_id
    assert services.store.list(f"originals/{production_id}/") == [after.original_key]
    assert stored_bytes(services, production_id) == new
    with services.sessions() as session:
        assert uploads.bytes_used(session, after.owner_id or 0) == len(new)


def test_refused_uploads_stop_counting_against_the_quota(tus: Tus, services: Services) -> None:
    with services.sessions.begin() as session:
        user = session.scalars(select(User).where(User.email == OWNER)).one()
        user.quota_bytes = 1024**2
        user_id = user.id
    # Eleven files of 97 KB that are not recordings: each is refused, and none is kept.
    for number in range(11):
        noise = os.urandom(97 * 1024)
        upload = send_file(tus, services, noise, filename=f"noise-{number}.mp4")
        with pytest.raises(InputRefused):
            ingest.run_transcode(services, job_of(services, upload))
        production = production_row(services, upload.production_id or "")
        assert (production.status, production.original_key) == ("failed", None)
    assert services.store.list("originals/") == []
    with services.sessions() as session:
        assert uploads.bytes_used(session, user_id) == 0
    assert tus.create(1000 * 1024).status_code == 201


# --- cookies, as Uppy sends them -----------------------------------------------------------------


def test_a_signed_in_browser_uploads_with_its_csrf_header(
    services: Services, client: TestClient
) -> None:
    make_user(services, OWNER)
    csrf = login(client, OWNER)
    headers = {**TUS, "Upload-Length": "3", "Origin": "http://testserver"}
    assert client.post("/api/v1/uploads/", headers=headers).status_code == 403
    created = client.post("/api/v1/uploads/", headers={**headers, "X-CSRF-Token": csrf})
    assert created.status_code == 201
    patch = client.patch(
        created.headers["Location"],
        content=b"abc",
        headers={**TUS, "X-CSRF-Token": csrf, "Upload-Offset": "0", "Content-Type": OCTETS},
    )
    assert patch.status_code == 204
    assert counts(services) == (1, 1)


# --- tuspy against a real server -----------------------------------------------------------------


def tuspy(server_url: str, token: str) -> Any:
    return tus_client.TusClient(
        f"{server_url}/api/v1/uploads/", headers={"Authorization": f"Bearer {token}"}
    )


@contextmanager
def uploading(client: Any, source: Path, **options: Any) -> Iterator[Any]:
    """A tuspy uploader of ``source`` (tuspy leaves files it opens by path open)."""
    with source.open("rb") as stream:
        yield client.uploader(file_stream=stream, **options)


def test_tuspy_uploads_in_chunks_with_checksums(live_server: LiveServer, tmp_path: Path) -> None:
    services = live_server.services
    make_user(services, OWNER)
    source = tmp_path / "capture.mp4"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 123))
    client = tuspy(live_server.url, token_for(services, OWNER))
    options = {"chunk_size": 512 * 1024, "upload_checksum": True, "metadata": {"filename": "c"}}
    with uploading(client, source, **options) as uploader:
        uploader.upload()
    upload = upload_row(services, uploader.url)
    assert upload.state == "stored"
    assert hashlib.sha256(stored_bytes(services, upload.production_id or "")).hexdigest() == (
        hashlib.sha256(source.read_bytes()).hexdigest()
    )


def open_patch(url: str, token: str, offset: int, declared: int) -> socket.socket:
    """A PATCH whose headers promise ``declared`` bytes; the caller sends (some of) them."""
    parts = urlsplit(url)
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: {OCTETS}\r\n"
        f"Content-Length: {declared}\r\n\r\n"
    )
    sock = socket.create_connection((parts.hostname or "", parts.port or 80), timeout=20)
    sock.sendall(head.encode())
    return sock


def wait_for_offset(url: str, token: str, at_least: int) -> int:
    deadline = time.monotonic() + 20
    while True:
        response = httpx.head(url, headers={**TUS, "Authorization": f"Bearer {token}"})
        offset = int(response.headers["Upload-Offset"])
        if offset >= at_least or time.monotonic() > deadline:
            return offset
        time.sleep(0.05)


def test_a_chunk_cut_midway_keeps_what_arrived_and_tuspy_resumes(
    live_server: LiveServer, tmp_path: Path
) -> None:
    services = live_server.services
    make_user(services, OWNER)
    token = token_for(services, OWNER)
    source = tmp_path / "capture.mp4"
    data = os.urandom(4 * 1024 * 1024)
    source.write_bytes(data)
    client = tuspy(live_server.url, token)
    with uploading(client, source, chunk_size=1024 * 1024) as uploader:
        uploader.upload_chunk()
        assert uploader.offset == 1024 * 1024

    # Half of a 2 MiB chunk arrives, then the connection closes.
    half = 1024 * 1024
    with open_patch(uploader.url, token, uploader.offset, 2 * half) as sock:
        sock.sendall(data[half : 2 * half])
    offset = wait_for_offset(uploader.url, token, 2 * half)
    assert offset == 2 * half

    with uploading(client, source, url=uploader.url, chunk_size=1024 * 1024) as resumed:
        assert resumed.offset == offset
        resumed.upload()
    upload = upload_row(services, uploader.url)
    assert upload.state == "stored"
    assert hashlib.sha256(stored_bytes(services, upload.production_id or "")).digest() == (
        hashlib.sha256(data).digest()
    )


def test_a_long_patch_records_its_offset_as_it_goes(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A browser may send a whole file in one PATCH: a crash must not lose all of it.
    monkeypatch.setattr(partials, "CHECKPOINT", 1024 * 1024)
    services = live_server.services
    make_user(services, OWNER)
    token = token_for(services, OWNER)
    auth = {**TUS, "Authorization": f"Bearer {token}"}
    url = httpx.post(
        f"{live_server.url}/api/v1/uploads/", headers={**auth, "Upload-Length": str(8 * 1024**2)}
    ).headers["Location"]
    with open_patch(url, token, 0, 8 * 1024**2) as sock:
        sock.sendall(os.urandom(3 * 1024**2))
        # The request is still open, yet its first megabytes are recorded already.
        assert wait_for_offset(url, token, 2 * 1024**2) >= 2 * 1024**2


def test_a_patch_that_stalls_ends_and_keeps_what_arrived(
    live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partials, "IDLE_SECONDS", 0.5)
    services = live_server.services
    make_user(services, OWNER)
    token = token_for(services, OWNER)
    auth = {**TUS, "Authorization": f"Bearer {token}"}
    url = httpx.post(
        f"{live_server.url}/api/v1/uploads/", headers={**auth, "Upload-Length": "1000"}
    ).headers["Location"]
    with open_patch(url, token, 0, 1000) as sock:
        sock.sendall(b"x" * 300)
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 408")
    assert "upload-offset: 300" in answer.lower()
    assert wait_for_offset(url, token, 300) == 300
    # The lock went with the request: the upload goes on.
    response = httpx.patch(
        url,
        content=b"y" * 700,
        headers={**auth, "Upload-Offset": "300", "Content-Type": OCTETS},
    )
    assert response.status_code == 204


def test_the_final_patch_sent_twice_at_once_makes_one_production(
    live_server: LiveServer,
) -> None:
    services = live_server.services
    make_user(services, OWNER)
    token = token_for(services, OWNER)
    auth = {**TUS, "Authorization": f"Bearer {token}"}
    data = os.urandom(4 * 1024 * 1024)
    with httpx.Client(base_url=live_server.url, headers=auth, timeout=30) as http:
        created = http.post("/api/v1/uploads/", headers={"Upload-Length": str(len(data))})
        url = created.headers["Location"]
        first = http.patch(
            url, content=data[:1024], headers={"Upload-Offset": "0", "Content-Type": OCTETS}
        )
        assert first.status_code == 204
    statuses: list[int] = []

    def final() -> None:
        with httpx.Client(headers=auth, timeout=30) as own:
            response = own.patch(
                url,
                content=data[1024:],
                headers={"Upload-Offset": "1024", "Content-Type": OCTETS},
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=final) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One wrote the chunk; the other found it busy (423) or already whole (204).
    assert 204 in statuses and set(statuses) <= {204, 423}
    assert counts(services) == (1, 1)
    assert upload_row(services, url).state == "stored"


# --- kill -9 -------------------------------------------------------------------------------------


def start_server(
    data_dir: Path, database_url: str, log: Path, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """A `cite-live serve` process of its own session on a free port; ``env`` adds settings."""
    port = free_port()
    environ = dict(os.environ)
    environ.pop("CITE_LIVE_CONFIG", None)
    environ.update(
        {
            **env,
            "CITE_LIVE_DATA_DIR": str(data_dir),
            "CITE_LIVE_DATABASE_URL": database_url,
            "CITE_LIVE_AUTH_ARGON2_MEMORY_KIB": "1024",
            "CITE_LIVE_AUTH_ARGON2_TIME_COST": "1",
        }
    )
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cite_live", "serve", "--port", str(port)],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            httpx.get(f"{url}/api/v1/productions", timeout=2)
            return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    os.killpg(process.pid, signal.SIGKILL)
    raise AssertionError(f"the server never answered:\n{log.read_text()}")


def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=15)


def test_kill_9_during_a_patch_loses_no_acknowledged_byte(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    database_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    settings = make_settings(data_dir, database_url)
    services = open_services(settings)
    try:
        make_user(services, OWNER)
        token = token_for(services, OWNER)
    finally:
        services.close()
    auth = {**TUS, "Authorization": f"Bearer {token}"}
    source = tmp_path / "capture.mp4"
    data = os.urandom(6 * 1024 * 1024)
    source.write_bytes(data)
    log = tmp_path / "serve.log"

    process, url = start_server(data_dir, database_url, log)
    try:
        created = httpx.post(
            f"{url}/api/v1/uploads/", headers={**auth, "Upload-Length": str(len(data))}
        )
        location = created.headers["Location"]
        acknowledged = httpx.patch(
            location,
            content=data[: 2 * 1024 * 1024],
            headers={**auth, "Upload-Offset": "0", "Content-Type": OCTETS},
        )
        assert acknowledged.status_code == 204
        assert acknowledged.headers["Upload-Offset"] == str(2 * 1024 * 1024)

        # A second chunk is streaming (half of it sent, the connection still open) when the
        # server dies.
        with open_patch(location, token, 2 * 1024 * 1024, 2 * 1024 * 1024) as sock:
            sock.sendall(data[2 * 1024 * 1024 : 3 * 1024 * 1024])
            partial = data_path(settings, location.rsplit("/", 1)[-1])
            deadline = time.monotonic() + 10
            while partial.stat().st_size <= 2 * 1024 * 1024 and time.monotonic() < deadline:
                time.sleep(0.02)
            # Killed with bytes of the second chunk written but never acknowledged.
            assert partial.stat().st_size > 2 * 1024 * 1024
            kill(process)
    finally:
        kill(process)

    on_disk = data_path(settings, location.rsplit("/", 1)[-1]).read_bytes()
    assert on_disk[: 2 * 1024 * 1024] == data[: 2 * 1024 * 1024]

    process, url = start_server(data_dir, database_url, log)
    try:
        location = location.replace(urlsplit(location).netloc, urlsplit(url).netloc)
        offset = int(httpx.head(location, headers=auth).headers["Upload-Offset"])
        assert 2 * 1024 * 1024 <= offset <= len(on_disk)
        client = tuspy(url, token)
        with uploading(client, source, url=location, chunk_size=2 * 1024**2) as uploader:
            assert uploader.offset == offset
            # All but the last byte: what the server holds is the file, byte for byte.
            uploader.upload(stop_at=len(data) - 1)
            partial = data_path(settings, location.rsplit("/", 1)[-1])
            assert partial.read_bytes() == data[:-1]
            uploader.upload()
            assert uploader.offset == len(data)
        services = open_services(settings, run_migrations=False)
        try:
            upload = upload_row(services, location)
            assert upload.state in ("complete", "stored") and upload.production_id
            assert counts(services) == (1, 1)
        finally:
            services.close()
    finally:
        kill(process, signal.SIGTERM)
