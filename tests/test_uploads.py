"""Upload records: quota, completion into one production and one job, replacement, expiry,
recovery after a crash, and the move of a received file into the store."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from cite_live import uploads
from cite_live.auth import CurrentUser
from cite_live.catalogue import create_production
from cite_live.models import Job, Production, Upload, User, utcnow
from cite_live.partials import PartialFile
from cite_live.services import Services, open_services
from cite_live.storage import LocalStore, S3Store
from cite_live.uploads import UploadRefused, UploadView, data_path
from cite_live.web.app import create_app
from tests.account_fixtures import make_user, token_for
from tests.app_fixtures import make_settings
from tests.s3server import S3Server

OWNER = "owner@example.org"


def account(services: Services, email: str = OWNER, role: str = "artist", **kw: Any) -> CurrentUser:
    user_id = make_user(services, email, role, **kw)
    return CurrentUser(id=user_id, email=email, role=role, artist_ids=frozenset())


def receive(services: Services, view: UploadView, data: bytes) -> None:
    """Append ``data`` as a PATCH would: write, sync, record."""
    claimed, partial = uploads.claim(services, view.id)
    assert claimed is not None and partial is not None
    try:
        partial.write([data])
        partial.sync()
        uploads.record_offset(services, view.id, claimed.offset + len(data))
    finally:
        partial.close()


def received(services: Services, user: CurrentUser, data: bytes, **meta: str) -> UploadView:
    view = uploads.create(services, user, len(data), {"filename": "live.mp4", **meta})
    receive(services, view, data)
    return view


def finished(services: Services, user: CurrentUser, data: bytes, **meta: str) -> UploadView:
    view = received(services, user, data, **meta)
    assert uploads.complete(services, view.id)
    assert uploads.store_original(services, view.id) is not None
    found = uploads.get(services, view.id)
    assert found is not None
    return found


def jobs_of(services: Services) -> list[tuple[str | None, str | None]]:
    with services.sessions() as session:
        return [(j.production_id, j.upload_id) for j in session.scalars(select(Job))]


def production_count(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Production)) or 0)


def age(services: Services, upload_id: str, **delta: float) -> None:
    with services.sessions.begin() as session:
        upload = session.get(Upload, upload_id)
        assert upload is not None
        upload.expires_at = utcnow() - timedelta(**delta)


@pytest.fixture
def any_services(tmp_path: Path, any_database_url: str) -> Iterator[Services]:
    """Services on SQLite, then on PostgreSQL (where row counts of UPDATEs really race)."""
    opened = open_services(make_settings(tmp_path / "data", any_database_url))
    yield opened
    opened.close()


# --- the store -----------------------------------------------------------------------------------


def test_local_store_takes_a_received_file_by_renaming_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "upload"
    source.write_bytes(b"capture")
    source.chmod(0o600)
    inode = source.stat().st_ino
    store.put_file_move("originals/p1/live.mp4", source)
    target = store.path_for("originals/p1/live.mp4")
    assert not source.exists()
    assert target.read_bytes() == b"capture" and target.stat().st_ino == inode
    assert target.stat().st_mode & 0o777 == 0o644
    # Again with a new file under the same key: it replaces the object.
    source.write_bytes(b"second")
    store.put_file_move("originals/p1/live.mp4", source)
    assert target.read_bytes() == b"second"


@pytest.mark.s3
def test_s3_store_takes_a_received_file_by_uploading_then_removing_it(
    s3_server: S3Server, tmp_path: Path
) -> None:
    store = S3Store(
        s3_server.bucket,
        prefix=f"t/{os.urandom(6).hex()}",
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
    )
    source = tmp_path / "upload"
    source.write_bytes(b"capture")
    store.put_file_move("originals/p1/live.mp4", source)
    assert not source.exists()
    with store.available_locally("originals/p1/live.mp4", tmp_path) as copy:
        assert copy.read_bytes() == b"capture"
    store.delete_prefix("originals/")


# --- creation and quota --------------------------------------------------------------------------


def test_creation_makes_a_private_empty_partial_file(services: Services) -> None:
    view = uploads.create(services, account(services), 10, {"filename": "a.mp4"})
    path = data_path(services.settings, view.id)
    assert path.read_bytes() == b"" and path.stat().st_mode & 0o777 == 0o600
    assert services.settings.uploads_dir.stat().st_mode & 0o777 == 0o700
    assert view.state == "receiving" and view.offset == 0 and view.length == 10


def test_the_quota_counts_originals_and_unfinished_uploads(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        CITE_LIVE_UPLOADS_QUOTA_BYTES="100",
    )
    services = open_services(settings)
    try:
        user = account(services)
        finished(services, user, b"x" * 40)
        uploads.create(services, user, 30, {})
        expired = uploads.create(services, user, 30, {})
        age(services, expired.id, minutes=1)
        # 40 stored + 30 receiving (the expired one no longer counts): 30 left.
        with pytest.raises(UploadRefused) as refused:
            uploads.create(services, user, 31, {})
        assert refused.value.status == 413
        assert refused.value.params == {"size": 100}
        uploads.create(services, user, 30, {})
        # An account's own quota wins over the default.
        with services.sessions.begin() as session:
            found = session.get(User, user.id)
            assert found is not None
            found.quota_bytes = 1000
        uploads.create(services, user, 500, {})
    finally:
        services.close()


# --- completion ----------------------------------------------------------------------------------


def test_completion_happens_once_and_the_store_step_once(any_services: Services) -> None:
    services = any_services
    user = account(services, artists=["Nora Ilić", "Léa Martin"])
    view = received(services, user, b"capture")
    assert uploads.complete(services, view.id)
    assert not uploads.complete(services, view.id)
    job_id = uploads.store_original(services, view.id)
    assert job_id is not None
    assert uploads.store_original(services, view.id) is None
    assert uploads.finish_pending(services) == 0
    upload = uploads.get(services, view.id)
    assert upload is not None and upload.state == "stored"
    assert jobs_of(services) == [(upload.production_id, view.id)]
    with services.sessions() as session:
        production = session.get(Production, upload.production_id)
        assert production is not None
        # No title: the file name stands in, and the file's tags may replace it.
        assert production.title == "live" and production.title_is_placeholder
        assert production.kind == "video"
        # A draft, public once its artist publishes it.
        assert (production.visibility, production.publish_as) == ("private", "public")
        # The account's first artist profile is credited.
        assert [c.artist.name for c in production.credits] == ["Nora Ilić"]


def test_metadata_chooses_title_kind_and_visibility(services: Services) -> None:
    user = account(services)
    view = finished(
        services, user, b"a", title="Répétition", filetype="audio/flac", visibility="private"
    )
    with services.sessions() as session:
        production = session.get(Production, view.production_id)
        assert production is not None
        assert (production.title, production.kind, production.publish_as) == (
            "Répétition",
            "audio",
            "private",
        )
        assert production.credits == []
    odd = finished(services, user, b"b", visibility="everyone")
    with services.sessions() as session:
        production = session.get(Production, odd.production_id)
        assert production is not None and production.publish_as == "public"


def test_an_upload_is_not_complete_before_its_last_byte(services: Services) -> None:
    user = account(services)
    view = uploads.create(services, user, 10, {})
    receive(services, view, b"123456789")
    assert not uploads.complete(services, view.id)
    assert production_count(services) == 0


def test_a_crash_between_completion_and_storing_is_finished_by_the_sweeper(
    any_services: Services,
) -> None:
    services = any_services
    user = account(services)
    view = received(services, user, b"capture")
    assert uploads.complete(services, view.id)
    # The process died here: the file is still in the uploads folder, no job exists yet.
    assert jobs_of(services) == []
    assert uploads.finish_pending(services) == 1
    assert uploads.finish_pending(services) == 0
    upload = uploads.get(services, view.id)
    assert upload is not None and upload.state == "stored"
    assert len(jobs_of(services)) == 1
    assert not data_path(services.settings, view.id).exists()


def test_a_crash_after_the_last_byte_was_recorded_is_completed_by_the_sweeper(
    services: Services,
) -> None:
    user = account(services)
    view = received(services, user, b"capture")
    # The process died between recording the last byte and completing the upload.
    assert production_count(services) == 0
    assert uploads.finish_pending(services) == 1
    upload = uploads.get(services, view.id)
    assert upload is not None and upload.state == "stored"
    assert jobs_of(services) == [(upload.production_id, view.id)]


def test_a_crash_after_the_move_is_finished_without_the_file(services: Services) -> None:
    user = account(services)
    view = received(services, user, b"capture")
    assert uploads.complete(services, view.id)
    with services.sessions() as session:
        upload = session.get(Upload, view.id)
        assert upload is not None
        key = session.get(Production, upload.production_id).original_key  # type: ignore[union-attr]
    assert key is not None
    services.store.put_file_move(key, data_path(services.settings, view.id))
    assert uploads.finish_pending(services) == 1
    assert len(jobs_of(services)) == 1


def test_a_move_in_progress_elsewhere_is_left_alone(services: Services) -> None:
    user = account(services)
    view = received(services, user, b"capture")
    assert uploads.complete(services, view.id)
    held = PartialFile.open(data_path(services.settings, view.id))
    try:
        assert uploads.finish_pending(services) == 0
    finally:
        held.close()
    assert uploads.finish_pending(services) == 1


def test_a_lost_file_fails_its_production_in_plain_words(services: Services) -> None:
    user = account(services)
    view = received(services, user, b"capture")
    assert uploads.complete(services, view.id)
    data_path(services.settings, view.id).unlink()
    assert uploads.finish_pending(services) == 0
    upload = uploads.get(services, view.id)
    assert upload is not None and upload.state == "terminated"
    with services.sessions() as session:
        production = session.get(Production, upload.production_id)
        assert production is not None
        assert production.status == "failed" and production.error == uploads.LOST
    assert jobs_of(services) == []


def test_a_production_deleted_before_storing_takes_the_file_with_it(services: Services) -> None:
    user = account(services)
    view = received(services, user, b"capture")
    assert uploads.complete(services, view.id)
    with services.sessions.begin() as session:
        upload = session.get(Upload, view.id)
        assert upload is not None
        session.delete(session.get(Production, upload.production_id))
    assert uploads.finish_pending(services) == 0
    assert not data_path(services.settings, view.id).exists()
    assert services.store.list("originals/") == []
    assert jobs_of(services) == []


# --- replacing a recording -----------------------------------------------------------------------


def owned_production(services: Services, user: CurrentUser, status: str = "failed") -> str:
    with services.sessions.begin() as session:
        production = create_production(session, title="Concert", filename="old.mp4")
        production.owner_id = user.id
        production.status = status
        production.error = "This file is text, not a recording."
        production.original_key = f"originals/{production.id}/old.mp4"
        production.original_bytes = 60
        key, production_id = production.original_key, production.id
    services.store.put_bytes(key, b"old recording")
    return production_id


def test_a_replacement_waits_on_its_job_beside_the_original_it_replaces(
    any_services: Services,
) -> None:
    services = any_services
    user = account(services)
    production_id = owned_production(services, user)
    before = production_fields(services, production_id)
    view = finished(services, user, b"new recording", production=production_id)
    assert view.production_id == production_id
    assert production_count(services) == 1
    assert jobs_of(services) == [(production_id, view.id)]
    # Nothing of the production changes until the job publishes the new recording.
    assert production_fields(services, production_id) == before
    with services.sessions() as session:
        job = session.scalars(select(Job)).one()
        key = job.original_key
        assert (job.original_filename, job.original_bytes) == ("live.mp4", len(b"new recording"))
        assert key is not None and key != before[0]
    assert services.store.list(f"originals/{production_id}/") == sorted([before[0], key])
    with services.store.available_locally(key) as path:
        assert path.read_bytes() == b"new recording"
    with services.sessions() as session:
        assert uploads.bytes_used(session, user.id) == 60 + len(b"new recording")


def production_fields(services: Services, production_id: str) -> tuple[Any, ...]:
    with services.sessions() as session:
        p = session.get(Production, production_id)
        assert p is not None
        return (p.original_key, p.original_bytes, p.status, p.error, p.slug, p.updated_at)


def test_the_quota_of_a_replacement_does_not_count_the_recording_it_replaces(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        CITE_LIVE_UPLOADS_QUOTA_BYTES="100",
    )
    services = open_services(settings)
    try:
        user = account(services)
        production_id = owned_production(services, user)
        with pytest.raises(UploadRefused):
            uploads.create(services, user, 50, {})
        uploads.create(services, user, 90, {"production": production_id})
    finally:
        services.close()


def test_only_a_manager_may_replace_and_not_while_it_processes(services: Services) -> None:
    owner = account(services)
    other = account(services, "other@example.org")
    admin = account(services, "admin@example.org", "admin")
    production_id = owned_production(services, owner)
    for meta in ({"production": production_id}, {"production": "nosuchid"}):
        with pytest.raises(UploadRefused) as refused:
            uploads.create(services, other, 10, meta)
        assert refused.value.status == 404
    uploads.create(services, admin, 10, {"production": production_id})
    with services.sessions.begin() as session:
        session.add(Job(type="transcode", production_id=production_id, state="running"))
    with pytest.raises(UploadRefused) as refused:
        uploads.create(services, owner, 10, {"production": production_id})
    assert refused.value.status == 409


# --- partial files -------------------------------------------------------------------------------


def test_bytes_never_recorded_are_cut_off_and_lost_bytes_lower_the_offset(
    services: Services,
) -> None:
    user = account(services)
    view = uploads.create(services, user, 100, {})
    receive(services, view, b"a" * 10)
    path = data_path(services.settings, view.id)
    # A server killed mid-PATCH: bytes on disk past the recorded offset.
    with path.open("ab") as handle:
        handle.write(b"b" * 20)
    claimed, partial = uploads.claim(services, view.id)
    assert partial is not None and claimed is not None
    partial.close()
    assert claimed.offset == 10 and path.read_bytes() == b"a" * 10
    # A disk that lost acknowledged bytes: the file is the truth.
    os.truncate(path, 4)
    claimed, partial = uploads.claim(services, view.id)
    assert partial is not None and claimed is not None
    partial.close()
    assert claimed.offset == 4
    found = uploads.get(services, view.id)
    assert found is not None and found.offset == 4


def test_a_missing_partial_file_restarts_the_upload(services: Services) -> None:
    view = uploads.create(services, account(services), 100, {})
    receive(services, view, b"a" * 10)
    data_path(services.settings, view.id).unlink()
    claimed, partial = uploads.claim(services, view.id)
    assert claimed is not None and partial is not None
    partial.close()
    assert claimed.offset == 0


# --- expiry --------------------------------------------------------------------------------------


def test_expired_uploads_are_swept_with_their_files(any_services: Services) -> None:
    services = any_services
    user = account(services)
    fresh = uploads.create(services, user, 10, {})
    expired = uploads.create(services, user, 10, {})
    busy = uploads.create(services, user, 10, {})
    for view in (expired, busy):
        age(services, view.id, seconds=1)
    held = PartialFile.open(data_path(services.settings, busy.id))
    try:
        assert uploads.sweep_expired(services) == 1
    finally:
        held.close()
    assert not data_path(services.settings, expired.id).exists()
    assert data_path(services.settings, fresh.id).exists()
    states = {v.id: uploads.get(services, v.id) for v in (fresh, expired, busy)}
    assert {k: v.state if v else None for k, v in states.items()} == {
        fresh.id: "receiving",
        expired.id: "terminated",
        busy.id: "receiving",
    }
    assert uploads.sweep_expired(services) == 1
    assert uploads.sweep_expired(services) == 0


def test_the_sweep_forgets_old_terminated_uploads_and_stray_files(services: Services) -> None:
    user = account(services)
    view = uploads.create(services, user, 10, {})
    assert uploads.terminate(services, view.id)
    stray = services.settings.uploads_dir / ("f" * 32)
    stray.write_bytes(b"left by a crash")
    young = services.settings.uploads_dir / ("e" * 32)
    young.write_bytes(b"an upload being created")
    old = utcnow().timestamp() - 25 * 3600
    os.utime(stray, (old, old))
    with services.sessions.begin() as session:
        upload = session.get(Upload, view.id)
        assert upload is not None
        upload.updated_at = utcnow() - timedelta(days=8)
    uploads.sweep_expired(services)
    assert uploads.get(services, view.id) is None
    assert not stray.exists() and young.exists()


def test_an_expired_upload_answers_410_until_swept(services: Services) -> None:
    make_user(services, OWNER)
    token = token_for(services, OWNER)
    headers = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    with TestClient(create_app(services.settings, services)) as client:
        created = client.post("/api/v1/uploads/", headers={**headers, "Upload-Length": "5"})
        url = created.headers["Location"]
        age(services, url.rsplit("/", 1)[-1], seconds=1)
        assert client.head(url, headers=headers).status_code == 410
        patch = client.patch(
            url,
            content=b"12345",
            headers={
                **headers,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert patch.status_code == 410
        assert uploads.sweep_expired(services) == 1
        assert client.head(url, headers=headers).status_code == 410
    assert production_count(services) == 0


# --- S3 ------------------------------------------------------------------------------------------


@pytest.fixture
def s3_services(tmp_path: Path, s3_server: S3Server) -> Iterator[Services]:
    settings = make_settings(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        CITE_LIVE_STORAGE_BACKEND="s3",
        CITE_LIVE_S3_ENDPOINT_URL=s3_server.endpoint_url,
        CITE_LIVE_S3_BUCKET=s3_server.bucket,
        CITE_LIVE_S3_PREFIX=f"u{os.urandom(4).hex()}",
    )
    opened = open_services(settings)
    yield opened
    opened.store.delete_prefix("originals/")
    opened.close()


@pytest.mark.s3
def test_completion_with_s3_stores_the_original_under_originals(
    s3_services: Services, s3_server: S3Server
) -> None:
    services = s3_services
    make_user(services, OWNER)
    headers = {
        "Authorization": f"Bearer {token_for(services, OWNER)}",
        "Tus-Resumable": "1.0.0",
    }
    data = os.urandom(200_000)
    with TestClient(create_app(services.settings, services)) as client:
        created = client.post(
            "/api/v1/uploads/",
            headers={
                **headers,
                "Upload-Length": str(len(data)),
                "Upload-Metadata": "filename bC5tcDQ=",
            },
        )
        url = created.headers["Location"]
        # The answer comes first; the original is stored right after it.
        patch = client.patch(
            url,
            content=data,
            headers={
                **headers,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
            },
        )
        assert patch.status_code == 204 and patch.headers["Upload-Offset"] == str(len(data))
    upload = uploads.get(services, url.rsplit("/", 1)[-1])
    assert upload is not None and upload.state == "stored"
    assert not data_path(services.settings, upload.id).exists()
    key = f"originals/{upload.production_id}/l.mp4"
    assert services.store.list("originals/") == [key]
    prefix = services.settings.storage.s3_prefix
    body = s3_server.client().get_object(Bucket=s3_server.bucket, Key=f"{prefix}/{key}")["Body"]
    with body:
        assert hashlib.sha256(body.read()).digest() == hashlib.sha256(data).digest()
    assert jobs_of(services) == [(upload.production_id, upload.id)]
