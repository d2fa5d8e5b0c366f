"""tus uploads without sticky routing: two web processes on one PostgreSQL database and one
bucket (a real SeaweedFS), each with a data dir of its own, take alternate requests of one upload.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from cite_live import uploads
from cite_live.jobs import ingest
from cite_live.models import Job, Production, Upload, utcnow
from cite_live.services import Services, open_services
from cite_live.storage import StorageError
from cite_live.web import tus as tus_module
from cite_live.web.app import create_app
from tests.account_fixtures import make_user, token_for
from tests.app_fixtures import make_settings
from tests.dbs import REDIS_URL
from tests.s3server import S3Server
from tests.test_jobs import Media, production_row
from tests.test_tus import (
    OWNER,
    Tus,
    checksum,
    job_of,
    kill,
    open_patch,
    start_server,
    stored_bytes,
    tuspy,
    uploading,
)

pytestmark = [pytest.mark.s3, pytest.mark.postgres]

MIB = 1024 * 1024


@dataclass
class Web:
    """One web process of the site: its services (its own data dir) and a tus client."""

    services: Services
    tus: Tus


def token_of(web: Web) -> str:
    return web.tus.auth["Authorization"].removeprefix("Bearer ")


@dataclass
class Site:
    """Two web processes on one database and one bucket (under ``prefix``); ``env`` is what
    a ``cite-live serve`` of the same site is started with."""

    a: Web
    b: Web
    env: dict[str, str]
    prefix: str
    s3: S3Server

    def row(self, url: str) -> Upload:
        with self.a.services.sessions() as session:
            upload = session.get(Upload, url.rsplit("/", 1)[-1])
            assert upload is not None
            session.expunge(upload)
            return upload

    def original(self, upload: Upload) -> bytes:
        assert upload.key == f"originals/{upload.production_id}/{upload.filename or 'upload'}"
        key = f"{self.prefix}/{upload.key}"
        body = self.s3.client().get_object(Bucket=self.s3.bucket, Key=key)["Body"]
        with body:
            return bytes(body.read())

    def multipart_uploads(self) -> list[Any]:
        return multipart_uploads(self.s3, self.prefix)

    def jobs(self) -> int:
        with self.a.services.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Job)) or 0)


def multipart_uploads(s3: S3Server, prefix: str) -> list[Any]:
    listed = s3.client().list_multipart_uploads(Bucket=s3.bucket, Prefix=f"{prefix}/")
    return list(listed.get("Uploads", []))


@pytest.fixture
def site(tmp_path: Path, postgres_url: str, s3_server: S3Server) -> Iterator[Site]:
    prefix = f"s{os.urandom(4).hex()}"
    env = {
        "CITE_LIVE_STORAGE_BACKEND": "s3",
        "CITE_LIVE_S3_ENDPOINT_URL": s3_server.endpoint_url,
        "CITE_LIVE_S3_BUCKET": s3_server.bucket,
        "CITE_LIVE_S3_PREFIX": prefix,
    }
    first = open_services(make_settings(tmp_path / "a", postgres_url, **env))
    second = open_services(make_settings(tmp_path / "b", postgres_url, **env))
    make_user(first, OWNER)
    token = token_for(first, OWNER)
    clients = [TestClient(app_of(s), raise_server_exceptions=False) for s in (first, second)]
    try:
        with clients[0] as one, clients[1] as two:
            yield Site(
                Web(first, Tus(one, token)),
                Web(second, Tus(two, token)),
                {**env, "CITE_LIVE_DATABASE_URL": postgres_url},
                prefix,
                s3_server,
            )
    finally:
        first.store.delete_prefix("originals/")
        for item in multipart_uploads(s3_server, prefix):
            s3_server.client().abort_multipart_upload(
                Bucket=s3_server.bucket, Key=item["Key"], UploadId=item["UploadId"]
            )
        first.close()
        second.close()


def app_of(services: Services) -> Any:
    return create_app(services.settings, services)


def test_patches_alternating_between_two_processes_make_the_exact_original(site: Site) -> None:
    data = os.urandom(12 * MIB + 3)
    url = site.a.tus.new(len(data))
    offset = 0
    for number, start in enumerate(range(0, len(data), 5 * MIB)):
        web = (site.a, site.b)[number % 2]
        chunk = data[start : start + 5 * MIB]
        response = web.tus.patch(url, offset, chunk)
        assert response.status_code == 204, response.text
        offset += len(chunk)
        assert response.headers["Upload-Offset"] == str(offset)
        # Either process knows where the upload stands.
        other = (site.b, site.a)[number % 2]
        assert other.tus.head(url).headers["Upload-Offset"] == str(offset)
    upload = site.row(url)
    assert upload.state == "stored"
    assert hashlib.sha256(site.original(upload)).digest() == hashlib.sha256(data).digest()
    assert site.jobs() == 1
    assert site.multipart_uploads() == []
    # Nothing waits on either process's disk, nor beside the original.
    assert site.a.services.store.list("originals/") == [
        f"originals/{upload.production_id}/concert.mp4"
    ]


def test_small_patches_wait_in_the_bucket_until_they_make_a_part(site: Site) -> None:
    data = os.urandom(6 * MIB + MIB // 2)
    url = site.a.tus.new(len(data))
    for number, start in enumerate(range(0, len(data), MIB)):
        web = (site.a, site.b)[number % 2]
        response = web.tus.patch(url, start, data[start : start + MIB])
        assert response.status_code == 204, response.text
        if number == 0:
            # One MiB makes no part yet: it waits beside the original, in the bucket.
            upload = site.row(url)
            assert upload.key is not None and upload.offset == MIB and not upload.parts
            assert site.a.services.store.size(uploads.tail_key(upload.key)) == MIB
    upload = site.row(url)
    assert upload.state == "stored"
    assert [part["size"] for part in upload.parts or []] == [5 * MIB, MIB + MIB // 2]
    assert site.original(upload) == data
    assert site.jobs() == 1
    assert site.a.services.store.list("originals/") == [
        f"originals/{upload.production_id}/concert.mp4"
    ]


def test_a_checksum_mismatch_on_the_other_process_is_460_and_keeps_the_offset(
    site: Site,
) -> None:
    data = os.urandom(7 * MIB)
    url = site.a.tus.new(len(data))
    assert site.a.tus.patch(url, 0, data[:MIB]).status_code == 204
    chunk = data[MIB : 6 * MIB]
    damaged = site.b.tus.patch(
        url, MIB, chunk, **{"Upload-Checksum": checksum("sha256", chunk + b"!")}
    )
    assert damaged.status_code == 460
    assert damaged.headers["Upload-Offset"] == str(MIB)
    assert site.a.tus.head(url).headers["Upload-Offset"] == str(MIB)
    sent = site.a.tus.patch(url, MIB, chunk, **{"Upload-Checksum": checksum("sha256", chunk)})
    assert sent.status_code == 204 and sent.headers["Upload-Offset"] == str(6 * MIB)
    assert site.b.tus.patch(url, 6 * MIB, data[6 * MIB :]).status_code == 204
    assert site.original(site.row(url)) == data


def test_a_chunk_at_the_wrong_offset_on_the_other_process_is_409_with_the_true_offset(
    site: Site,
) -> None:
    data = os.urandom(2 * MIB)
    url = site.a.tus.new(len(data))
    assert site.a.tus.patch(url, 0, data[:MIB]).status_code == 204
    for offset in (0, MIB - 1, MIB + 1):
        refused = site.b.tus.patch(url, offset, data[offset:])
        assert refused.status_code == 409
        assert refused.headers["Upload-Offset"] == str(MIB)
    assert site.b.tus.patch(url, MIB, data[MIB:] + b"more").status_code == 413
    assert site.b.tus.patch(url, MIB, data[MIB:]).status_code == 204
    assert site.original(site.row(url)) == data


def test_a_replacement_sent_in_parts_takes_the_place_of_the_original(
    site: Site, media: Media
) -> None:
    services = site.a.services
    first = media("opus").read_bytes()
    url = site.a.tus.new(len(first), filename="take-1.opus")
    assert site.b.tus.patch(url, 0, first).status_code == 204
    production_id = site.row(url).production_id or ""
    ingest.run_transcode(services, job_of(services, site.row(url)))
    new = media("ogg_vorbis").read_bytes()
    url = site.b.tus.new(len(new), filename="take-2.ogg", production=production_id)
    half = len(new) // 2
    assert site.a.tus.patch(url, 0, new[:half]).status_code == 204
    assert site.b.tus.patch(url, half, new[half:]).status_code == 204
    second = site.row(url)
    assert second.state == "stored" and second.production_id == production_id
    assert second.key == f"originals/{production_id}/{second.id[:8]}-take-2.ogg"
    ingest.run_transcode(services, job_of(services, second))
    after = production_row(services, production_id)
    assert (after.status, after.original_key) == ("ready", second.key)
    assert services.store.list(f"originals/{production_id}/") == [second.key]
    assert stored_bytes(services, production_id) == new


def test_a_part_the_store_refuses_is_503_and_the_recorded_offset_stands(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(6 * MIB)
    url = site.a.tus.new(len(data))
    assert site.a.tus.patch(url, 0, data[:MIB]).status_code == 204

    def refuse(*args: Any) -> str:
        raise StorageError("the bucket is away")

    monkeypatch.setattr(site.b.services.store, "put_part", refuse)
    refused = site.b.tus.patch(url, MIB, data[MIB:])
    assert refused.status_code == 503
    assert site.a.tus.head(url).headers["Upload-Offset"] == str(MIB)
    # Its lease went with the request: the other process takes the chunk at once.
    assert site.a.tus.patch(url, MIB, data[MIB:]).status_code == 204
    assert site.original(site.row(url)) == data


def test_a_patch_while_another_process_writes_is_told_to_wait(site: Site) -> None:
    data = os.urandom(6 * MIB)
    url = site.a.tus.new(len(data))
    upload_id = url.rsplit("/", 1)[-1]
    token = uploads.take_lease(site.a.services, upload_id)
    assert token is not None
    assert site.b.tus.patch(url, 0, data[: 5 * MIB]).status_code == 423
    uploads.release_lease(site.a.services, upload_id, token)

    statuses: list[int] = []

    def send(web: Web) -> None:
        with TestClient(app_of(web.services)) as own:
            sent = Tus(own, token_of(web)).patch(url, 0, data[: 5 * MIB])
            statuses.append(sent.status_code)

    threads = [threading.Thread(target=send, args=(web,)) for web in (site.a, site.b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One wrote the chunk; the other found it busy, or found it written (offset moved).
    assert 204 in statuses and set(statuses) <= {204, 409, 423}
    assert site.a.tus.head(url).headers["Upload-Offset"] == str(5 * MIB)
    assert site.b.tus.patch(url, 5 * MIB, data[5 * MIB :]).status_code == 204
    assert site.original(site.row(url)) == data
    assert site.jobs() == 1


def test_a_writer_that_outlived_its_lease_cannot_overwrite_the_next_writers_part(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(12 * MIB)
    url = site.a.tus.new(len(data))
    upload_id = url.rsplit("/", 1)[-1]
    store_a = site.a.services.store
    put_part = store_a.put_part
    answers: list[int] = []
    late_numbers: list[int] = []

    def stalled(key: str, parts_id: str, number: int, path: Path) -> str:
        # A stalls past its lease with its part on the way; meanwhile B takes the upload over
        # and records a part of another size, then A's part reaches the store at last.
        with site.a.services.sessions.begin() as session:
            session.execute(
                update(Upload)
                .where(Upload.id == upload_id)
                .values(writer_until=utcnow() - timedelta(seconds=1))
            )
        answers.append(site.b.tus.patch(url, 0, data[: 6 * MIB]).status_code)
        late_numbers.append(number)
        return put_part(key, parts_id, number, path)

    monkeypatch.setattr(store_a, "put_part", stalled)
    late = site.a.tus.patch(url, 0, data[: 7 * MIB])
    assert answers == [204]
    assert late.status_code == 423
    # S3 keeps the last part sent under a number (SeaweedFS happens to keep both): the late
    # part must not have the number of the part B recorded.
    recorded = [part["number"] for part in site.row(url).parts or []]
    assert len(recorded) == 1 and late_numbers[0] not in recorded
    assert site.b.tus.head(url).headers["Upload-Offset"] == str(6 * MIB)
    assert site.b.tus.patch(url, 6 * MIB, data[6 * MIB :]).status_code == 204
    upload = site.row(url)
    assert upload.state == "stored"
    assert site.original(upload) == data
    assert site.jobs() == 1


def test_the_sweeper_of_another_process_does_not_lose_a_complete_upload(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Process A acknowledges the last byte, then is slow to put the original in the store.
    monkeypatch.setattr(tus_module, "_store", lambda services, upload_id: None)
    data = os.urandom(MIB)
    url = site.a.tus.new(len(data))
    assert site.a.tus.patch(url, 0, data).status_code == 204
    assert site.row(url).state == "complete"
    upload_id = url.rsplit("/", 1)[-1]
    # While A holds the upload (storing it), B's maintenance leaves it alone...
    token = uploads.take_lease(site.a.services, upload_id, "complete")
    assert token is not None
    assert uploads.finish_pending(site.b.services) == 0
    uploads.sweep_expired(site.b.services)
    upload = site.row(url)
    assert upload.state == "complete"
    with site.b.services.sessions() as session:
        production = session.get(Production, upload.production_id)
        assert production is not None and production.status == "processing"
    # ... and once A is gone (its lease released, or run out), B finishes it: the bytes are
    # in the bucket, not on A's disk.
    uploads.release_lease(site.a.services, upload_id, token)
    assert uploads.finish_pending(site.b.services) == 1
    upload = site.row(url)
    assert upload.state == "stored"
    assert site.original(upload) == data
    assert site.jobs() == 1


def test_a_complete_upload_whose_process_stopped_is_stored_by_the_other(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Process A acknowledges the last byte, then stops before the original is in the store.
    monkeypatch.setattr(tus_module, "_store", lambda services, upload_id: None)
    data = os.urandom(MIB)
    url = site.a.tus.new(len(data))
    assert site.a.tus.patch(url, 0, data).status_code == 204
    assert site.row(url).state == "complete"
    # B's maintenance finds the bytes where every process sees them, and does not call the
    # upload lost.
    assert uploads.finish_pending(site.b.services) == 1
    upload = site.row(url)
    assert upload.state == "stored"
    assert site.original(upload) == data
    assert site.jobs() == 1


def test_expiry_aborts_the_multipart_upload_and_removes_the_waiting_bytes(site: Site) -> None:
    data = os.urandom(7 * MIB)
    url = site.a.tus.new(len(data))
    assert site.a.tus.patch(url, 0, data[: 5 * MIB]).status_code == 204
    # A part in the multipart upload, and a MiB waiting beside it.
    assert site.b.tus.patch(url, 5 * MIB, data[5 * MIB : 6 * MIB]).status_code == 204
    assert len(site.multipart_uploads()) == 1
    assert site.a.services.store.list("originals/") != []
    with site.a.services.sessions.begin() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == url.rsplit("/", 1)[-1])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert uploads.sweep_expired(site.b.services) == 1
    assert site.row(url).state == "terminated"
    assert site.multipart_uploads() == []
    assert site.a.services.store.list("originals/") == []
    assert site.a.tus.head(url).status_code == 410


def test_delete_on_the_other_process_aborts_the_multipart_upload(site: Site) -> None:
    data = os.urandom(6 * MIB)
    url = site.a.tus.new(len(data))
    assert site.a.tus.patch(url, 0, data[: 5 * MIB + 10]).status_code == 204
    assert site.b.tus.client.delete(url, headers=site.b.tus.auth).status_code == 204
    assert site.row(url).state == "terminated"
    assert site.multipart_uploads() == []
    assert site.a.services.store.list("originals/") == []


# --- tuspy through a round-robin balancer, and kill -9 -------------------------------------------


def queue_only(redis_namespace: str) -> dict[str, str]:
    """Web processes that only queue transcodes, as on many machines: a job run in them would
    refuse the tests' random bytes and remove the original before the test reads it."""
    return {
        "CITE_LIVE_JOBS_BROKER": "redis",
        "CITE_LIVE_JOBS_URL": f"{REDIS_URL}?namespace={redis_namespace}",
        "CITE_LIVE_AUTH_SECRET_KEY": "shared-by-the-web-processes",
    }


def start_web(
    site: Site, data_dir: Path, log: Path, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    return start_server(data_dir, site.env["CITE_LIVE_DATABASE_URL"], log, **site.env, **env)


def test_kill_9_mid_patch_resumes_from_the_last_part_on_the_other_process(
    site: Site, tmp_path: Path, redis_namespace: str
) -> None:
    data = os.urandom(21 * MIB)
    source = tmp_path / "concert.mp4"
    source.write_bytes(data)
    token = token_of(site.a)
    auth = site.a.tus.auth
    log = tmp_path / "serve.log"
    first, first_url = start_web(site, tmp_path / "one", log, **queue_only(redis_namespace))
    second, second_url = start_web(site, tmp_path / "two", log, **queue_only(redis_namespace))
    try:
        created = httpx.post(
            f"{first_url}/api/v1/uploads/",
            headers={**auth, "Upload-Length": str(len(data))},
        )
        location = created.headers["Location"]
        upload_id = location.rsplit("/", 1)[-1]
        # One PATCH carries the whole file (a browser's way); its first part (at a checkpoint)
        # is in the bucket and recorded when the process dies.
        with open_patch(location, token, 0, len(data)) as sock:
            sock.sendall(data[: 18 * MIB])
            deadline = time.monotonic() + 20
            while site.row(location).offset == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            kill(first)
        recorded = site.row(location).offset
        assert uploads.PART_CHECKPOINT <= recorded <= 18 * MIB
        assert [part["size"] for part in site.row(location).parts or []] == [recorded]
        # Its lease runs out (90 s later; here, at once) and the other process takes over.
        with site.a.services.sessions.begin() as session:
            session.execute(
                update(Upload)
                .where(Upload.id == upload_id)
                .values(writer_until=utcnow() - timedelta(seconds=1))
            )
        there = f"{second_url}/api/v1/uploads/{upload_id}"
        client = tuspy(second_url, token)
        with uploading(client, source, url=there, chunk_size=5 * MIB) as uploader:
            assert uploader.offset == recorded
            uploader.upload()
        upload = site.row(location)
        assert upload.state in ("complete", "stored")
        deadline = time.monotonic() + 20
        while site.row(location).state != "stored" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert site.original(site.row(location)) == data
        assert site.jobs() == 1
    finally:
        kill(first)
        kill(second, signal.SIGTERM)


def test_tuspy_through_a_round_robin_balancer(
    site: Site, tmp_path: Path, redis_namespace: str
) -> None:
    data = os.urandom(11 * MIB + 5)
    source = tmp_path / "concert.mp4"
    source.write_bytes(data)
    token = token_of(site.a)
    log = tmp_path / "serve.log"
    one, one_url = start_web(site, tmp_path / "one", log, **queue_only(redis_namespace))
    two, two_url = start_web(site, tmp_path / "two", log, **queue_only(redis_namespace))
    try:
        with round_robin([one_url, two_url]) as balancer:
            client = tuspy(balancer, token)
            options = {"chunk_size": 5 * MIB, "metadata": {"filename": "concert.mp4"}}
            with uploading(client, source, **options) as uploader:
                uploader.upload()
            upload_id = uploader.url.rsplit("/", 1)[-1]
        deadline = time.monotonic() + 20
        while site.row(upload_id).state != "stored" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert site.original(site.row(upload_id)) == data
        assert site.jobs() == 1
    finally:
        kill(one, signal.SIGTERM)
        kill(two, signal.SIGTERM)


@contextmanager
def round_robin(backends: list[str]) -> Iterator[str]:
    """A balancer without sticky routing: each request goes to the next backend in turn."""
    turn = itertools.cycle(backends)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
            answer = httpx.request(
                self.command, f"{next(turn)}{self.path}", headers=headers, content=body, timeout=60
            )
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.content)

        do_GET = do_POST = do_PATCH = do_HEAD = do_DELETE = do_OPTIONS = forward

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
