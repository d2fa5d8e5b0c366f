"""The whole path from a capture file to published HLS, with real ffmpeg and real stores."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cite_live.jobs.ingest import publish_order, run_transcode, submit_file
from cite_live.models import Job, MediaVersion, Production
from cite_live.services import Services, open_services
from cite_live.storage import LocalStore, StorageError
from tests import hls_check
from tests.app_fixtures import LiveServer, make_settings
from transcoder import InputRefused

Media = Callable[[str], Path]


def ingest(services: Services, path: Path, **kwargs: Any) -> Production:
    production_id, job_id = submit_file(services, path, **kwargs)
    seen: list[float] = []
    run_transcode(services, job_id, seen.append)
    assert seen and seen == sorted(seen), "progress is reported and never goes back"
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production


def ffprobe_duration(source: str) -> float:
    out = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-protocol_whitelist",
            "file,http,tcp",
            "-show_entries",
            "format=duration",
            "-of",
            "json",
            source,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return float(json.loads(out)["format"]["duration"])


def version_of(services: Services, production: Production) -> MediaVersion:
    with services.sessions() as session:
        versions = session.scalars(
            select(MediaVersion).where(MediaVersion.production_id == production.id)
        ).all()
    assert len(versions) == 1
    assert versions[0].id == production.current_version_id
    return versions[0]


def test_publish_order_puts_segments_then_media_playlists_then_master() -> None:
    files = ["master.m3u8", "v720/index.m3u8", "v720/seg_00001.m4s", "v720/init.mp4", "poster.jpg"]
    ordered = publish_order(files)
    assert ordered[-1] == "master.m3u8"
    assert ordered[-2] == "v720/index.m3u8"
    assert set(ordered[:3]) == {"v720/seg_00001.m4s", "v720/init.mp4", "poster.jpg"}


def test_video_capture_becomes_valid_aligned_hls(services: Services, media: Media) -> None:
    source = media("video_1080p_h264_aac")
    production = ingest(services, source, artists=["Compagnie Cartoucherie"])
    assert (production.status, production.kind, production.error) == ("ready", "video", None)
    version = version_of(services, production)
    assert isinstance(services.store, LocalStore)
    root = services.store.path_for(version.prefix.rstrip("/"))
    hls_check.check_hls_tree(root)
    hls_check.check_keyframe_alignment(root)
    # The file says nothing of its language: the production's (French by default) is used.
    assert (
        'TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",LANGUAGE="fr"'
        in (root / "master.m3u8").read_text()
    )
    assert abs(ffprobe_duration(str(root / "master.m3u8")) - ffprobe_duration(str(source))) < 1.0
    assert version.poster_key and services.store.exists(version.poster_key)
    assert version.storyboard_vtt_key and services.store.exists(version.storyboard_vtt_key)
    assert version.loudness_lufs is not None and -70 < version.loudness_lufs < 0
    heights = sorted(r["height"] for r in version.ladder if r["kind"] == "video")
    # 720p would cost what 1080p does, the 2 Mb/s source's bitrate: it adds nothing.
    assert heights == [240, 360, 480, 1080]
    # The original stays in the store, under its own key, for later re-transcodes.
    assert production.original_key and services.store.exists(production.original_key)


def test_audio_capture_gets_cover_waveform_and_tag_metadata(
    services: Services, media: Media
) -> None:
    production = ingest(services, media("flac_24bit_picture"))
    assert (production.status, production.kind) == ("ready", "audio")
    assert not production.title_is_placeholder
    with services.sessions() as session:
        row = session.get(Production, production.id)
        assert row is not None
        artists = [c.artist.name for c in row.credits]
    assert len(artists) == 2, "both ARTIST comments are credited"
    version = version_of(services, production)
    assert version.cover_key and version.waveform_key and version.poster_key is None
    peaks = json.loads(services.store.path_for(version.waveform_key).read_bytes())
    assert peaks["channels"] == 1 and len(peaks["data"]) > 100
    assert max(abs(v) for v in peaks["data"]) > 0
    assert all(r["kind"] == "audio" for r in version.ladder)
    hls_check.check_hls_tree(services.store.path_for(version.prefix.rstrip("/")))


def test_rerun_publishes_one_new_version_and_removes_the_old(
    services: Services, media: Media
) -> None:
    production = ingest(services, media("opus"))
    old = version_of(services, production)
    with services.sessions.begin() as session:
        job = Job(type="transcode", production_id=production.id)
        session.add(job)
        session.flush()
        job_id = job.id
    run_transcode(services, job_id)
    with services.sessions() as session:
        current = session.get(Production, production.id)
        assert current is not None
    new = version_of(services, current)
    assert new.prefix != old.prefix
    assert services.store.list(old.prefix) == []
    assert services.store.exists(new.master_key or "")


def test_a_failed_run_never_disturbs_the_version_that_plays(
    services: Services, media: Media
) -> None:
    production = ingest(services, media("ogg_vorbis"))
    playing = version_of(services, production)
    before = services.store.list(playing.prefix)
    # The artist replaces the recording with something that is not one.
    bad_key = f"originals/{production.id}/replacement.mp4"
    services.store.put_file(bad_key, media("ffconcat"))
    with services.sessions.begin() as session:
        row = session.get(Production, production.id)
        assert row is not None
        row.original_key = bad_key
        job = Job(type="transcode", production_id=production.id)
        session.add(job)
        session.flush()
        job_id = job.id
    with pytest.raises(InputRefused):
        run_transcode(services, job_id)
    with services.sessions() as session:
        row = session.get(Production, production.id)
        job_row = session.get(Job, job_id)
        assert row is not None and job_row is not None
        assert (row.status, row.current_version_id) == ("ready", playing.id)
        assert job_row.state == "failed" and job_row.error
    assert services.store.list(playing.prefix) == before
    assert services.store.list(f"productions/{production.id}/j{job_id}/") == []


class FlakyStore(LocalStore):
    """A local store whose writes fail after a number of objects: the media store going away."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def put_file(self, key: str, path: Path) -> None:
        if key.startswith("productions/"):
            self.budget -= 1
            if self.budget < 0:
                raise StorageError("the store went away")
        super().put_file(key, path)


def test_a_store_failure_mid_publish_leaves_no_half_version_and_is_tried_again(
    services: Services, media: Media
) -> None:
    assert isinstance(services.store, LocalStore)
    store = services.store = FlakyStore(services.store.root, budget=3)
    production_id, job_id = submit_file(services, media("wav_96k_mono"))
    with pytest.raises(StorageError):
        run_transcode(services, job_id)
    with services.sessions() as session:
        production = session.get(Production, production_id)
        job = session.get(Job, job_id)
        assert production is not None and job is not None
        assert (production.status, production.current_version_id) == ("processing", None)
        assert (job.state, job.attempts, job.worker, job.lease_until) == ("queued", 1, None, None)
        assert job.error and "store" in job.error and "again" in job.error
    assert store.list(f"productions/{production_id}/") == []
    assert production.original_key and store.exists(production.original_key)

    store.budget = 1000  # the store is back
    run_transcode(services, job_id)
    with services.sessions() as session:
        production = session.get(Production, production_id)
        job = session.get(Job, job_id)
        assert production is not None and job is not None
        assert (production.status, job.state, job.attempts, job.error) == ("ready", "done", 2, None)
    assert version_of(services, production).prefix == f"productions/{production_id}/j{job_id}/"


def test_missing_job_or_production_returns_quietly(services: Services) -> None:
    run_transcode(services, 424242)


@pytest.mark.postgres
def test_ingest_on_postgresql(postgres_url: str, tmp_path: Path, media: Media) -> None:
    opened = open_services(make_settings(tmp_path / "data", postgres_url))
    try:
        production = ingest(opened, media("m4a_itunes_covr"))
        assert (production.status, production.kind) == ("ready", "audio")
        assert version_of(opened, production).cover_key
    finally:
        opened.close()


@pytest.mark.s3
def test_s3_backend_publishes_to_seaweedfs_with_headers(
    tmp_path: Path, media: Media, s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    settings = make_settings(
        tmp_path / "data",
        f"sqlite:///{tmp_path / 'db.sqlite'}",
        CITE_LIVE_STORAGE_BACKEND="s3",
        CITE_LIVE_S3_ENDPOINT_URL=s3_server.endpoint_url,
        CITE_LIVE_S3_BUCKET=s3_server.bucket,
        CITE_LIVE_S3_PREFIX="site-a",
    )
    opened = open_services(settings)
    try:
        production = ingest(opened, media("video_no_audio"))
        version = version_of(opened, production)
        keys = opened.store.list(version.prefix)
        assert any(k.endswith(".m4s") for k in keys) and version.master_key in keys
        client = s3_server.client()
        head = client.head_object(Bucket=s3_server.bucket, Key=f"site-a/{version.master_key}")
        assert head["ContentType"] == "application/vnd.apple.mpegurl"
        segment = next(k for k in keys if k.endswith(".m4s"))
        head = client.head_object(Bucket=s3_server.bucket, Key=f"site-a/{segment}")
        assert "immutable" in head["CacheControl"]
        url = opened.store.public_url(version.master_key or "", "http://ignored")
        assert url.startswith(s3_server.endpoint_url)
        # The player reads it straight from the object store, as a public bucket serves it.
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200 and response.text.startswith("#EXTM3U")
        assert abs(ffprobe_duration(url) - ffprobe_duration(str(media("video_no_audio")))) < 1
    finally:
        opened.close()


def test_ffprobe_reads_the_master_over_http_from_a_running_server(
    live_server: LiveServer, media: Media
) -> None:
    production = ingest(live_server.services, media("portrait_hevc_mov_rotated"))
    api = httpx.get(f"{live_server.url}/api/v1/productions/{production.id}", timeout=10).json()
    assert api["status"] == "ready"
    assert api["hls_url"].startswith(live_server.url)
    hls_check.check_hls_url(api["hls_url"])
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-protocol_whitelist",
            "file,http,tcp",
            "-show_streams",
            "-of",
            "json",
            api["hls_url"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    streams = json.loads(probe.stdout)["streams"]
    video = [s for s in streams if s["codec_type"] == "video"]
    assert video and all(s["height"] > s["width"] for s in video), "portrait stays portrait"


def test_the_first_files_language_becomes_the_productions(
    services: Services, media: Media, tmp_path: Path
) -> None:
    tagged = tmp_path / "lied.m4a"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-i", str(media("m4a_itunes_covr")), "-map", "0:a"),
            *("-c", "copy", "-metadata:s:a:0", "language=ger", str(tagged)),
        ],
        check=True,
    )
    production = ingest(services, tagged, artists=["Chœur Diois"])
    assert (production.status, production.kind) == ("ready", "audio")
    # ISO 639-2 in the file, BCP 47 on the production (its form shows it, its API says it).
    assert production.language == "de"
    untagged = ingest(services, media("m4a_itunes_covr"), artists=["Chœur Diois"])
    assert untagged.language == "fr"
