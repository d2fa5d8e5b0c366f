"""Segmented transcoding as the workers run it: chunks as jobs of their own, published in
order, a worker killed with SIGKILL in the middle of a chunk costing that chunk only.

Real ffmpeg, real `cite-live worker` processes on a real Redis, leases of 3 s. A 54 s capture
cut into 18 s chunks: three chunks of three segments each.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import m3u8
import pytest

from cite_live.demo.media import ffmpeg
from cite_live.jobs import table
from cite_live.jobs.ingest import run_transcode
from cite_live.models import Job
from cite_live.services import Services, open_services
from cite_live.storage import LocalStore
from tests import hls_check
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
from tests.test_ingest_live import RecordingStore
from tests.test_jobs import job_row, production_row, register, version_folders, versions
from tests.test_worker import Site, open_site

CHUNK_SECONDS = "18"
SECONDS = 54


@pytest.fixture(scope="module")
def concert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """54 s of 480p video with a tone: three chunks of 18 s."""
    path = tmp_path_factory.mktemp("concert") / "concert-480p.mp4"
    ffmpeg(
        *["-f", "lavfi", "-i", f"testsrc2=size=854x480:rate=30:duration={SECONDS}"],
        *["-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}:sample_rate=48000"],
        *["-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-g", "60"],
        *["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest", str(path)],
    )
    return path


def chunks(services: Services, job_id: int) -> list[Job]:
    with services.sessions() as session:
        return table.chunks_of(session, job_id)


def frame_count(store: LocalStore, folder: str) -> int:
    """Frames ffprobe decodes from a published rendition: its init, then its segments."""
    listed = m3u8.M3U8(store.path_for(f"{folder}/index.m3u8").read_text("utf-8"))
    data = b"".join(
        store.path_for(f"{folder}/{uri}").read_bytes()
        for uri in [listed.segment_map[0].uri, *(segment.uri for segment in listed.segments)]
    )
    out = subprocess.run(
        [
            *["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0"],
            *["-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", "-"],
        ],
        input=data,
        capture_output=True,
        timeout=120,
        check=True,
    )
    return int(out.stdout.decode().strip())


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_JOBS_CHUNK_SECONDS=CHUNK_SECONDS
    )
    opened = open_services(settings)
    yield opened
    opened.close()


def test_one_worker_alone_encodes_every_chunk_and_publishes_them_in_order(
    services: Services, concert: Path
) -> None:
    assert isinstance(services.store, LocalStore)
    store = services.store = RecordingStore(services.store.root)
    production_id, job_id = register(services, concert)
    run_transcode(services, job_id)

    parts = chunks(services, job_id)
    assert [(c.chunk, c.state, c.attempts, c.production_id) for c in parts] == [
        (0, "done", 1, None),
        (1, "done", 1, None),
        (2, "done", 1, None),
    ]
    assert job_row(services, job_id).state == "done"
    assert production_row(services, production_id).status == "ready"
    assert [v.state for v in versions(services, production_id)] == ["published"]
    prefix = f"productions/{production_id}/j{job_id}"
    hls_check.check_hls_tree(store.path_for(prefix))
    # The whole rendition decodes, joins included: 54 s at 30 frames a second.
    assert frame_count(store, f"{prefix}/v480") == SECONDS * 30

    # Published while processing, in order: each growing playlist lists the segments from
    # the first on, never fewer than the one before.
    growing = [
        m3u8.M3U8(w.text or "")
        for w in store.writes
        if w.cache_control and w.key == f"{prefix}/v480/index.m3u8"
    ]
    assert growing, "the chunks were published as they came"
    counts = [len(listed.segments) for listed in growing]
    assert counts == sorted(counts) and counts[0] < 9
    for listed in growing:
        assert [s.uri for s in listed.segments] == [
            f"seg_{n:05d}.m4s" for n in range(1, len(listed.segments) + 1)
        ]
        assert listed.playlist_type == "event" and not listed.is_endlist
    final = m3u8.M3U8(store.path_for(f"{prefix}/v480/index.m3u8").read_text("utf-8"))
    assert final.playlist_type == "vod" and final.is_endlist and len(final.segments) == 9


@pytest.fixture
def cluster(tmp_path: Path, redis_namespace: str) -> Iterator[Site]:
    with open_site(tmp_path, redis_namespace, CITE_LIVE_JOBS_CHUNK_SECONDS=CHUNK_SECONDS) as site:
        yield site


def pid_of(holder: str | None) -> int:
    """The process of a lease holder (``host:pid:thread``)."""
    assert holder is not None
    return int(holder.split(":")[1])


def test_a_worker_killed_in_the_middle_of_a_chunk_costs_that_chunk_only(
    cluster: Site, concert: Path
) -> None:
    production_id, job_id = register(cluster.services, concert)
    first, second = cluster.start_worker(), cluster.start_worker()
    table.enqueue(cluster.services, job_id)
    parent = cluster.wait(job_id, lambda j: j.state == "running", "started")
    helper = second if pid_of(parent.worker) == first.pid else first

    def caught(job: Job) -> bool:
        # A chunk the other worker runs, with a segment published and more to come.
        for part in chunks(cluster.services, job_id):
            segments = (part.output or {}).get("segments", {})
            if (
                part.state == "running"
                and pid_of(part.worker) == helper.pid
                and 0 < len(segments.get("v240", [])) < 3
            ):
                return True
        return False

    while True:
        cluster.wait(job_id, caught, "had a chunk half done by the other worker")
        # Frozen first, so that its chunk cannot finish between the look and the kill.
        os.killpg(helper.pid, signal.SIGSTOP)
        running = [
            part
            for part in chunks(cluster.services, job_id)
            if part.state == "running" and pid_of(part.worker) == helper.pid
        ]
        if running:
            break
        os.killpg(helper.pid, signal.SIGCONT)
    victim = running[0]
    cluster.crash(helper)

    done = cluster.wait(job_id, lambda j: j.state in ("done", "failed"), "finished")
    assert (done.state, done.attempts, done.error) == ("done", 1, None), cluster.all_logs()
    attempts = {part.chunk: part.attempts for part in chunks(cluster.services, job_id)}
    assert attempts == {0: 1, 1: 1, 2: 1} | {victim.chunk: 2}, cluster.all_logs()
    assert len(versions(cluster.services, production_id)) == 1
    assert version_folders(cluster.services, production_id) == {f"j{job_id}"}
    store = cluster.services.store
    assert isinstance(store, LocalStore)
    prefix = f"productions/{production_id}/j{job_id}"
    hls_check.check_hls_tree(store.path_for(prefix))
    assert frame_count(store, f"{prefix}/v240") == SECONDS * 30
