"""`cite-live worker` processes on a real Redis: killed with SIGKILL in the middle of a transcode,
a job that kills its worker on every attempt, start and stop. Also how the embedded workers of
`cite-live serve` give a running job back when they stop.

The slowest tests of the jobs (each about 20 s): real processes, real ffmpeg, leases of 3 s.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cite_live.jobs import doorbell, ingest, scratch, sweeper, table
from cite_live.jobs.maintenance import Maintenance, tasks
from cite_live.models import Job
from cite_live.services import Services, open_services
from cite_live.settings import load_settings
from tests import hls_check
from tests.app_fixtures import free_port, make_settings
from tests.dbs import REDIS_URL, sqlite_url
from tests.media import ffmpeg
from tests.test_jobs import job_row, production_row, register, version_folders, versions
from tests.test_seed import first_answer, start_serve, stop_serve

Media = Callable[[str], Path]


@pytest.fixture(scope="module")
def long_capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_long_capture(tmp_path_factory.mktemp("capture") / "long-480p.mp4")


def make_long_capture(path: Path, *, seconds: int = 20, size: str = "854x480") -> Path:
    """20 s of 480p video: some seconds of transcoding, so a worker can be caught in the middle."""
    ffmpeg(
        *["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds}"],
        *["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}:sample_rate=48000"],
        *["-c:v", "libx264", "-preset", "ultrafast", "-crf", "30", "-g", "60"],
        *["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k", "-shortest", str(path)],
    )
    return path


def child_groups(pid: int) -> list[int]:
    """Live ffmpeg children of ``pid``; the transcoder makes each the leader of its own group."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            head, _, tail = stat.read_text().rpartition(")")
            state, parent, group = tail.split()[:3]
            child = int(stat.parent.name)
            ours = int(parent) == pid and int(group) == child
            if ours and head.endswith("(ffmpeg") and state != "Z":
                found.append(child)
    return found


def crash(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a worker (the leader of its process group) and the ffmpeg it runs, as when its
    machine goes down."""
    os.killpg(process.pid, signal.SIGSTOP)  # frozen, it cannot start another ffmpeg
    groups = child_groups(process.pid)
    os.killpg(process.pid, signal.SIGKILL)
    for group in groups:
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait(timeout=10)


@dataclass
class Site:
    """One installation on a SQLite file and a Redis namespace, and its worker processes."""

    env: dict[str, str]
    services: Services
    logs: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        """A `cite-live worker` with ``args``, ``env`` changing the site's environment."""
        log = self.logs / f"worker-{len(self.workers) + 1}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "cite_live", "worker", *args],
                env={**self.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.workers.append(process)
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        return (self.logs / f"worker-{self.workers.index(process) + 1}.log").read_text()

    def all_logs(self) -> str:
        return "\n".join(f"--- {p.args}\n{self.log_of(p)}" for p in self.workers)

    def crash(self, process: subprocess.Popen[bytes]) -> None:
        crash(process)

    def wait(self, job_id: int, done: Callable[[Job], bool], what: str) -> Job:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for process in self.workers:
                assert process.returncode is not None or process.poll() is None, self.all_logs()
            job = job_row(self.services, job_id)
            if done(job):
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} never {what}:\n{self.all_logs()}")

    def stop_all(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@pytest.fixture
def site(tmp_path: Path, redis_namespace: str) -> Iterator[Site]:
    with open_site(tmp_path, redis_namespace) as opened:
        yield opened


@contextmanager
def open_site(tmp_path: Path, redis_namespace: str, **extra: str) -> Iterator[Site]:
    """An installation whose workers run on Redis with 3 s leases; ``extra`` adds settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITE_LIVE_")}
    env.update(
        {
            "CITE_LIVE_DATA_DIR": str(tmp_path / "data"),
            "CITE_LIVE_DATABASE_URL": sqlite_url(tmp_path),
            "CITE_LIVE_JOBS_BROKER": "redis",
            "CITE_LIVE_JOBS_URL": f"{REDIS_URL}?namespace={redis_namespace}",
            # Web and worker processes: one key for all (cite-live serve refuses otherwise).
            "CITE_LIVE_AUTH_SECRET_KEY": "shared-by-every-process-" + redis_namespace,
            "CITE_LIVE_JOBS_THREADS": "1",
            "CITE_LIVE_JOBS_LEASE_SECONDS": "3",
            "CITE_LIVE_JOBS_SWEEP_SECONDS": "1",
            "CITE_LIVE_JOBS_MAX_ATTEMPTS": "3",
            **extra,
        }
    )
    services = open_services(load_settings(env))
    # This process only sends: the recoveries under test are the workers' own.
    queue = doorbell.JobQueue(services)
    services.queue = queue
    logs = tmp_path / "logs"
    logs.mkdir()
    site = Site(env, services, logs)
    try:
        yield site
    finally:
        site.stop_all()
        queue.close()
        services.close()


def test_a_worker_killed_mid_transcode_is_replaced_and_one_version_is_published(
    site: Site, long_capture: Path
) -> None:
    production_id, job_id = register(site.services, long_capture)
    site.start_worker()
    table.enqueue(site.services, job_id)
    job = site.wait(job_id, lambda j: j.state == "running" and j.progress > 0, "made progress")
    assert job.attempts == 1
    site.crash(site.workers[0])

    second = site.start_worker()
    job = site.wait(job_id, lambda j: j.state in ("done", "failed"), "finished")
    assert (job.state, job.attempts, job.error) == ("done", 2, None), site.all_logs()
    assert len(versions(site.services, production_id)) == 1
    assert version_folders(site.services, production_id) == {f"j{job_id}"}
    production = production_row(site.services, production_id)
    assert production.status == "ready"
    store = site.services.store
    hls_check.check_hls_tree(store.path_for(f"productions/{production_id}/j{job_id}"))  # type: ignore[attr-defined]
    # The second attempt cleared the temp files the killed one left on this machine.
    assert not list(site.services.settings.tmp_dir.glob(f"j{job_id}-*"))
    log = site.log_of(second)
    assert f"job {job_id}: attempt 2 of 3 started" in log and f"job {job_id}: done" in log


def test_start_up_sweeps_the_temp_files_of_a_killed_worker(
    site: Site, long_capture: Path, media: Media
) -> None:
    production_id, job_id = register(site.services, long_capture)
    site.start_worker()
    table.enqueue(site.services, job_id)
    site.wait(job_id, lambda j: j.state == "running" and j.progress > 0, "made progress")
    site.crash(site.workers[0])
    tmp = site.services.settings.tmp_dir
    frames = [path.relative_to(tmp) for path in tmp.rglob("*.rgb")]
    assert {path.name for path in frames} == {"poster.rgb", "storyboard.rgb"}
    # Every temp file of the job is in its own folder.
    assert all(path.parts[0].startswith(f"j{job_id}-") for path in frames), frames
    # Deleted meanwhile: no attempt of this job will run again to clean up after it.
    ingest.delete_production(site.services, production_id)

    # A job of another live process (this one) works in its folder while a worker starts.
    with scratch.folder(tmp, prefix="j999999-") as running:
        (running / "poster.rgb").write_bytes(b"frames")
        _other_production, other = register(site.services, media("opus"))
        site.start_worker()
        table.enqueue(site.services, other)
        assert site.wait(other, lambda j: j.state in ("done", "failed"), "finished").state == "done"
        assert "removed 1 temp folder(s) no running job owns" in site.log_of(site.workers[-1])
        assert [path.relative_to(tmp) for path in tmp.rglob("*.rgb")] == [
            Path(running.name, "poster.rgb")
        ]
    assert [path for path in tmp.iterdir() if not path.name.startswith(".")] == []


def test_a_killed_attempts_temp_files_go_once_its_lease_is_gone_wherever_the_retry_ran(
    tmp_path: Path, redis_namespace: str, long_capture: Path
) -> None:
    # Two machines: one store and one database, a data dir (and temp dir) each.
    with open_site(tmp_path, redis_namespace, CITE_LIVE_LOCAL_PATH=str(tmp_path / "store")) as site:
        _production_id, job_id = register(site.services, long_capture)
        site.start_worker()
        table.enqueue(site.services, job_id)
        site.wait(job_id, lambda j: j.state == "running" and j.progress > 0, "made progress")
        site.crash(site.workers[0])
        here = site.services.settings.tmp_dir
        [left] = here.glob(f"j{job_id}-*")
        assert any(left.rglob("*.rgb"))

        # No process holds it, but its lease has not run out yet: kept.
        lease_until = job_row(site.services, job_id).lease_until
        assert lease_until is not None
        lease_until = lease_until.replace(tzinfo=lease_until.tzinfo or UTC)
        assert sweeper.sweep_temp(site.services, now=lease_until - timedelta(seconds=1)) == []
        assert left.is_dir()

        # The retry runs on the other machine, whose sweeper takes the job back.
        port = free_port()
        other = tmp_path / "machine-b"
        second = site.start_worker("--metrics-port", str(port), CITE_LIVE_DATA_DIR=str(other))
        job = site.wait(job_id, lambda j: j.state in ("done", "failed"), "finished")
        assert (job.state, job.attempts) == ("done", 2), site.all_logs()
        assert list((other / "tmp").glob(f"j{job_id}-*")) == []
        # Nothing on this machine ran since: the killed attempt's files are still here...
        assert left.is_dir()
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text

        # ...until a sweeper of this machine passes (any process's maintenance).
        maintenance = Maintenance(site.services, tasks(web=False)).start()
        try:
            deadline = time.monotonic() + 60
            while left.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            maintenance.stop()
        assert not left.exists()
        assert [p.name for p in here.iterdir() if not p.name.startswith(".")] == []

    # The worker's own figures: the attempt it ran, the job its sweeper took back.
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    done = (("outcome", "done"), ("type", "transcode"))
    assert found[("cite_live_job_duration_seconds_count", done)] == 1
    assert found[("cite_live_job_lease_requeues_total", (("outcome", "requeued"),))] == 1
    assert "metrics at http://127.0.0.1:" in site.log_of(second)


def test_a_job_that_kills_its_worker_every_time_fails_and_the_workers_go_on(
    site: Site, long_capture: Path, media: Media
) -> None:
    poison_production, poison = register(site.services, long_capture)
    _other_production, other = register(site.services, media("opus"))
    table.enqueue(site.services, poison)
    table.enqueue(site.services, other)
    worker = site.start_worker()
    for attempt in (1, 2, 3):
        site.wait(
            poison,
            lambda j, n=attempt: j.state == "running" and j.attempts == n,  # type: ignore[misc]
            f"ran {attempt}×",
        )
        site.crash(worker)
        worker = site.start_worker()

    job = site.wait(poison, lambda j: j.state == "failed", "failed")
    assert (job.attempts, job.error) == (3, sweeper.STOPPED)
    production = production_row(site.services, poison_production)
    assert (production.status, production.error) == ("failed", sweeper.STOPPED)
    assert site.services.store.list(f"productions/{poison_production}/") == []
    assert site.wait(other, lambda j: j.state in ("done", "failed"), "finished").state == "done"

    # The last worker still serves whatever comes next, then stops when asked.
    _late_production, late = register(site.services, media("ogg_vorbis"))
    table.enqueue(site.services, late)
    assert site.wait(late, lambda j: j.state in ("done", "failed"), "finished").state == "done"
    os.killpg(worker.pid, signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
    assert "worker stopping" in site.log_of(worker)


def test_the_worker_command_refuses_the_embedded_broker_in_one_sentence(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITE_LIVE_")}
    env["CITE_LIVE_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "cite_live", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cite-live serve" in lines[0] and "redis" in lines[0]


def test_a_worker_whose_metrics_port_is_taken_says_so_in_one_sentence(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITE_LIVE_")}
    env.update(
        CITE_LIVE_DATA_DIR=str(tmp_path),
        CITE_LIVE_JOBS_BROKER="redis",
        CITE_LIVE_JOBS_URL=REDIS_URL,
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "cite_live", "worker", "--metrics-port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cite-live: The metrics cannot be served at 127.0.0.1 port"), last


def test_stopping_the_embedded_workers_gives_a_running_job_back(
    tmp_path: Path, long_capture: Path
) -> None:
    before = set(threading.enumerate())
    services = open_services(make_settings(tmp_path / "data", sqlite_url(tmp_path)))
    try:
        queue = doorbell.open_queue(services, workers=True)
        production_id, job_id = register(services, long_capture)
        table.enqueue(services, job_id)
        deadline = time.monotonic() + 60
        while not (job := job_row(services, job_id)).progress > 0:
            assert job.state in ("queued", "running") and time.monotonic() < deadline
            time.sleep(0.05)
        queue.close(grace=0.2)
        job = job_row(services, job_id)
        # Not a crash of the file's making: the attempt does not count.
        assert (job.state, job.attempts, job.worker, job.enqueued_at) == ("queued", 0, None, None)
        while child_groups(os.getpid()):  # killed, then reaped by the abandoned thread
            assert time.monotonic() < deadline, "its ffmpeg was stopped"
            time.sleep(0.05)
        # The abandoned thread notices and ends without touching the job.
        while set(threading.enumerate()) - before:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert job_row(services, job_id).state == "queued"
        assert production_row(services, production_id).status == "processing"
    finally:
        services.close()


def test_serve_runs_the_jobs_that_were_queued_before_it_started(
    tmp_path: Path, media: Media
) -> None:
    data_dir = tmp_path / "data"
    services = open_services(make_settings(data_dir, sqlite_url(data_dir)))
    try:
        # Queued while no server ran: the embedded broker's memory of it is gone.
        production_id, job_id = register(services, media("opus"))
        log = tmp_path / "serve.log"
        process, url = start_serve(data_dir, log)
        try:
            first_answer(url, process, log)
            deadline = time.monotonic() + 60
            while (job := job_row(services, job_id)).state not in ("done", "failed"):
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            stop_serve(process)
        assert (job.state, job.attempts) == ("done", 1), log.read_text()
        assert production_row(services, production_id).status == "ready"
        assert process.returncode == 0, log.read_text()
    finally:
        services.close()
