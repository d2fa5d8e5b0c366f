"""Background jobs in one process: the embedded Dramatiq worker, claims, retries, the sweeper."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select

from cite_live import uploads
from cite_live.catalogue import create_production
from cite_live.jobs import doorbell, ingest, maintenance, sweeper, table
from cite_live.models import Job, MediaVersion, Production, utcnow
from cite_live.services import Services, open_services
from cite_live.settings import JobSettings
from cite_live.storage import LocalStore, StorageError, original_key
from tests.account_fixtures import make_user
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
from transcoder import InputRefused

Media = Callable[[str], Path]


def register(services: Services, path: Path) -> tuple[str, int]:
    """A production whose original is stored and whose job is queued, as an upload leaves it."""
    with services.sessions.begin() as session:
        production = create_production(session, title=None, filename=path.name)
        production.original_key = original_key(production.id, path.name)
        services.store.put_file(production.original_key, path)
        job = table.queue_transcode(session, production)
        return production.id, job.id


def job_row(services: Services, job_id: int) -> Job:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def production_row(services: Services, production_id: str) -> Production:
    with services.sessions() as session:
        production = session.get(Production, production_id)
        assert production is not None
        return production


def wait_for_job(services: Services, job_id: int, states: tuple[str, ...]) -> Job:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = job_row(services, job_id)
        if job.state in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} is still {job_row(services, job_id).state}")


def versions(services: Services, production_id: str) -> list[MediaVersion]:
    with services.sessions() as session:
        query = select(MediaVersion).where(MediaVersion.production_id == production_id)
        return list(session.scalars(query))


def version_folders(services: Services, production_id: str) -> set[str]:
    root = f"productions/{production_id}/"
    return {key[len(root) :].split("/", 1)[0] for key in services.store.list(root)}


@pytest.fixture
def jobs_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite; PostgreSQL too for a test parametrized (indirectly) with "postgresql"."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        yield request.getfixturevalue("postgres_url")


@pytest.fixture
def queued_services(tmp_path: Path, jobs_database_url: str) -> Iterator[Services]:
    """Services with an embedded queue: two worker threads and a quick sweeper."""
    settings = make_settings(
        tmp_path / "data",
        jobs_database_url,
        CITE_LIVE_JOBS_THREADS="2",
        CITE_LIVE_JOBS_SWEEP_SECONDS="0.2",
    )
    before = set(threading.enumerate())
    services = open_services(settings)
    queue = doorbell.open_queue(services, workers=True)
    try:
        yield services
    finally:
        queue.close()
        services.close()
    assert services.queue is None
    assert set(threading.enumerate()) <= before, "every worker thread has stopped"


def test_a_queued_job_runs_on_the_embedded_worker_and_the_production_becomes_ready(
    queued_services: Services, media: Media
) -> None:
    production_id, job_id = register(queued_services, media("opus"))
    table.enqueue(queued_services, job_id)
    job = wait_for_job(queued_services, job_id, ("done", "failed"))
    assert (job.state, job.attempts, job.progress, job.error) == ("done", 1, 1.0, None)
    assert job.enqueued_at is not None and job.worker and job.lease_until is None
    production = production_row(queued_services, production_id)
    assert (production.status, production.kind) == ("ready", "audio")
    assert [v.id for v in versions(queued_services, production_id)] == [
        production.current_version_id
    ]


@pytest.mark.parametrize(
    "jobs_database_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
def test_duplicate_messages_for_one_job_publish_exactly_one_version(
    queued_services: Services, media: Media
) -> None:
    production_id, job_id = register(queued_services, media("ogg_vorbis"))
    queue = queued_services.queue
    assert queue is not None
    # Two worker threads receive the same job at once, and a late copy comes after it is done.
    table.enqueue(queued_services, job_id)
    queue.enqueue(job_id)
    queue.enqueue(job_id)
    wait_for_job(queued_services, job_id, ("done", "failed"))
    queue.enqueue(job_id)
    assert isinstance(queue, doorbell.JobQueue) and isinstance(queue.broker, StubBroker)
    queue.broker.join(doorbell.QUEUE_NAME, timeout=60_000)
    job = job_row(queued_services, job_id)
    assert (job.state, job.attempts) == ("done", 1)
    assert len(versions(queued_services, production_id)) == 1
    assert version_folders(queued_services, production_id) == {f"j{job_id}"}


def test_a_refused_file_fails_at_once_and_is_never_retried(
    queued_services: Services, media: Media
) -> None:
    production_id, job_id = register(queued_services, media("playlist_as_mp4"))
    table.enqueue(queued_services, job_id)
    job = wait_for_job(queued_services, job_id, ("done", "failed"))
    assert (job.state, job.attempts) == ("failed", 1)
    assert job.error and job.error.endswith(".") and "\n" not in job.error
    production = production_row(queued_services, production_id)
    assert (production.status, production.error) == ("failed", job.error)
    assert production.original_key is None, "a refused file is not kept"
    swept = sweeper.sweep(queued_services, now=utcnow() + timedelta(hours=1))
    assert job_id not in swept.requeued + swept.resent
    assert job_row(queued_services, job_id).state == "failed"
    # Counted in the metrics of the process that ran it.
    registry = queued_services.metrics.registry
    transcode = {"type": "transcode"}
    assert registry.get_sample_value("cite_live_job_failures_total", transcode) == 1
    failed = {**transcode, "outcome": "failed"}
    assert registry.get_sample_value("cite_live_job_duration_seconds_count", failed) == 1


class FlakyStore(LocalStore):
    """A local store whose first ``failures`` writes of media fail: the store going away."""

    def __init__(self, root: Path, failures: int) -> None:
        super().__init__(root)
        self.failures = failures

    def put_file(self, key: str, path: Path) -> None:
        if key.startswith("productions/") and self.failures > 0:
            self.failures -= 1
            raise StorageError("the store went away")
        super().put_file(key, path)


def test_a_store_outage_is_retried_by_the_sweeper_and_the_job_completes(
    queued_services: Services, media: Media
) -> None:
    assert isinstance(queued_services.store, LocalStore)
    queued_services.store = FlakyStore(queued_services.store.root, failures=1)
    production_id, job_id = register(queued_services, media("wav_96k_mono"))
    table.enqueue(queued_services, job_id)
    job = wait_for_job(queued_services, job_id, ("done", "failed"))
    assert (job.state, job.attempts, job.error) == ("done", 2, None)
    assert production_row(queued_services, production_id).status == "ready"
    assert version_folders(queued_services, production_id) == {f"j{job_id}"}


def test_a_store_that_never_answers_fails_the_job_after_its_attempts(
    tmp_path: Path, media: Media
) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_JOBS_MAX_ATTEMPTS="2"
    )
    services = open_services(settings)
    try:
        assert isinstance(services.store, LocalStore)
        services.store = FlakyStore(services.store.root, failures=1000)
        production_id, job_id = register(services, media("wav_96k_mono"))
        for _ in range(2):
            with pytest.raises(StorageError):
                ingest.run_transcode(services, job_id)
        ingest.run_transcode(services, job_id)  # no attempt left: nothing happens
        job = job_row(services, job_id)
        assert (job.state, job.attempts, job.error) == ("failed", 2, ingest.STORE_FAILED)
        production = production_row(services, production_id)
        assert (production.status, production.error) == ("failed", ingest.STORE_FAILED)
        assert production.original_key and services.store.exists(production.original_key)
        assert services.store.list(f"productions/{production_id}/") == []
    finally:
        services.close()


def test_a_job_whose_original_is_gone_fails_at_once_with_a_plain_reason(
    services: Services, media: Media
) -> None:
    production_id, job_id = register(services, media("opus"))
    key = production_row(services, production_id).original_key
    assert key
    services.store.delete(key)
    with pytest.raises(StorageError):
        ingest.run_transcode(services, job_id)
    job = job_row(services, job_id)
    assert (job.state, job.attempts, job.error) == ("failed", 1, ingest.ORIGINAL_MISSING)


def test_a_job_reserved_by_its_submitter_is_left_to_it(services: Services, media: Media) -> None:
    # `cite-live ingest` and the demo seed run their own jobs: nobody else may claim them.
    production_id, job_id = ingest.submit_file(services, media("opus"))
    assert not table.claim(services, job_id, "another-host:1:1")
    services.queue = FakeQueue()
    assert sweeper.sweep(services).resent == []
    ingest.run_transcode(services, job_id)
    assert production_row(services, production_id).status == "ready"
    assert job_row(services, job_id).attempts == 1


# --- the sweeper, with fake times ----------------------------------------------------------------


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[int] = []

    def enqueue(self, job_id: int) -> None:
        self.sent.append(job_id)


def add_job(services: Services, production_id: str, **values: object) -> int:
    with services.sessions.begin() as session:
        job = Job(type="transcode", production_id=production_id, **values)
        session.add(job)
        session.flush()
        return job.id


def new_production(services: Services, title: str) -> str:
    with services.sessions.begin() as session:
        return create_production(session, title=title, filename=f"{title}.mp4").id


def test_the_sweeper_recovers_vanished_workers_and_lost_messages(
    any_database_url: str, tmp_path: Path
) -> None:
    services = open_services(
        make_settings(tmp_path / "data", any_database_url, CITE_LIVE_JOBS_LEASE_SECONDS="60")
    )
    try:
        _check_sweeps(services)
    finally:
        services.close()


def _check_sweeps(services: Services) -> None:
    queue = FakeQueue()
    services.queue = queue
    now = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    past, future = now - timedelta(seconds=1), now + timedelta(seconds=30)
    running = {"state": "running", "worker": "gone:1:1", "max_attempts": 3}
    p = {name: new_production(services, name) for name in ("crashed", "poison", "alive", "misc")}
    crashed = add_job(services, p["crashed"], attempts=1, lease_until=past, **running)
    poison = add_job(services, p["poison"], attempts=3, lease_until=past, **running)
    alive = add_job(services, p["alive"], attempts=1, lease_until=future, **running)
    never_sent = add_job(services, p["misc"], state="queued")
    just_sent = add_job(services, p["misc"], state="queued", enqueued_at=now - timedelta(seconds=5))
    long_ago = add_job(services, p["misc"], state="queued", enqueued_at=now - timedelta(hours=1))
    reserved = add_job(services, p["misc"], state="queued", worker="cli:2:2", lease_until=future)
    lapsed = add_job(services, p["misc"], state="queued", worker="cli:3:3", lease_until=past)
    add_job(services, p["misc"], state="done", attempts=1)
    leftover = f"productions/{p['poison']}/j{poison}/seg_00001.m4s"
    services.store.put_bytes(leftover, b"half a run")

    swept = sweeper.sweep(services, now=now)
    assert swept.requeued == [crashed]
    assert swept.failed == [poison]
    assert swept.resent == [crashed, never_sent, long_ago, lapsed]
    assert queue.sent == swept.resent

    back = job_row(services, crashed)
    assert (back.state, back.attempts, back.worker, back.error) == (
        "queued",
        1,
        None,
        sweeper.STOPPED_RETRY,
    )
    failed = job_row(services, poison)
    assert (failed.state, failed.error) == ("failed", sweeper.STOPPED)
    assert production_row(services, p["poison"]).status == "failed"
    assert production_row(services, p["crashed"]).status == "processing"
    assert not services.store.exists(leftover)
    assert job_row(services, alive).state == "running"
    assert job_row(services, reserved).enqueued_at is None
    assert job_row(services, lapsed).worker is None

    registry = services.metrics.registry
    for outcome in ("requeued", "failed"):
        labels = {"outcome": outcome}
        assert registry.get_sample_value("cite_live_job_lease_requeues_total", labels) == 1
    # A second sweeper at the same moment finds nothing left to do.
    assert sweeper.sweep(services, now=now) == sweeper.Swept()
    # Later, the live worker has gone quiet too, and lost messages are sent again.
    later = now + timedelta(minutes=10)
    again = sweeper.sweep(services, now=later)
    assert again.requeued == [alive]
    assert again.resent == [crashed, alive, never_sent, just_sent, long_ago, reserved, lapsed]


def test_a_failing_job_keeps_the_version_that_plays(services: Services) -> None:
    production_id = new_production(services, "playing")
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        version = MediaVersion(
            production_id=production_id, name="j0", state="published", prefix="productions/x/j0/"
        )
        session.add(version)
        session.flush()
        production.current_version_id, production.status = version.id, "ready"
    past = utcnow() - timedelta(seconds=1)
    job_id = add_job(
        services, production_id, state="running", attempts=3, max_attempts=3, lease_until=past
    )
    assert sweeper.sweep(services).failed == [job_id]
    production = production_row(services, production_id)
    # Left as it was: the job tells its owner why (see production_status).
    assert (production.status, production.error) == ("ready", None)
    assert job_row(services, job_id).error == sweeper.STOPPED


# --- replacing the recording of a production -----------------------------------------------------


class CountingStore(LocalStore):
    """A local store that remembers which keys were deleted, and how often."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.deleted: list[str] = []

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        super().delete(key)


def counting(services: Services) -> CountingStore:
    assert isinstance(services.store, LocalStore)
    store = CountingStore(services.store.root)
    services.store = store
    return store


def replace_with(services: Services, production_id: str, path: Path) -> tuple[str, int]:
    """A replacement stored and queued as uploads.store_original leaves it: (its key, job)."""
    key = original_key(production_id, f"new-{path.name}")
    services.store.put_file(key, path)
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        size = path.stat().st_size
        job = table.queue_transcode(
            session, production, original=table.Original(key, path.name, size)
        )
        return key, job.id


def playing(services: Services, media: Media) -> Production:
    production_id, job_id = register(services, media("opus"))
    ingest.run_transcode(services, job_id)
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None and production.status == "ready"
        production.original_bytes = media("opus").stat().st_size
        return production


def test_a_published_replacement_takes_the_place_of_the_original_once(
    services: Services, media: Media
) -> None:
    before = playing(services, media)
    store = counting(services)
    key, job_id = replace_with(services, before.id, media("ogg_vorbis"))
    # The duplicate of a message, or the retry of an attempt that died, runs it again.
    ingest.run_transcode(services, job_id)
    ingest.run_transcode(services, job_id)
    after = production_row(services, before.id)
    assert (after.status, after.original_key, after.original_filename) == (
        "ready",
        key,
        media("ogg_vorbis").name,
    )
    assert after.original_bytes == media("ogg_vorbis").stat().st_size
    assert [v.id for v in versions(services, before.id)] == [after.current_version_id]
    assert version_folders(services, before.id) == {f"j{job_id}"}
    assert services.store.list(f"originals/{before.id}/") == [key]
    assert store.deleted == [before.original_key]
    job = job_row(services, job_id)
    assert (job.state, job.original_key, job.original_bytes) == ("done", key, None)


def test_a_replacement_whose_worker_died_publishes_one_version(
    services: Services, media: Media
) -> None:
    before = playing(services, media)
    store = counting(services)
    key, job_id = replace_with(services, before.id, media("ogg_vorbis"))
    # Its first attempt was claimed by a worker that was killed; its lease ran out.
    assert table.claim(services, job_id, "gone:1:1")
    later = utcnow() + timedelta(hours=1)
    assert sweeper.sweep(services, now=later).requeued == [job_id]
    # Nothing of the production changed meanwhile.
    assert production_row(services, before.id).original_key == before.original_key
    ingest.run_transcode(services, job_id)
    ingest.run_transcode(services, job_id)
    after = production_row(services, before.id)
    assert (after.original_key, job_row(services, job_id).attempts) == (key, 2)
    assert len(versions(services, before.id)) == 1
    assert store.deleted == [before.original_key]


def test_a_failed_replacement_keeps_its_file_for_a_retry_unless_it_was_refused(
    services: Services, media: Media
) -> None:
    before = playing(services, media)
    user_id = make_user(services, "owner@example.org")
    with services.sessions.begin() as session:
        production = session.get(Production, before.id)
        assert production is not None
        production.owner_id = user_id
    size = before.original_bytes or 0
    refused_key, refused = replace_with(services, before.id, media("text_as_mp3"))
    with services.sessions() as session:
        held = size + media("text_as_mp3").stat().st_size
        assert uploads.bytes_used(session, user_id) == held
    with pytest.raises(InputRefused):
        ingest.run_transcode(services, refused)
    assert not services.store.exists(refused_key)
    assert ingest.retry(services, before.id) is None, "a refused file is gone"
    with services.sessions() as session:
        assert uploads.bytes_used(session, user_id) == size

    # The store failed it: the file stays with the failed job, and a retry takes it over.
    kept_key, kept = replace_with(services, before.id, media("ogg_vorbis"))
    with services.sessions.begin() as session:
        job = session.get(Job, kept)
        assert job is not None
        job.state, job.error = "failed", ingest.STORE_FAILED
    again = ingest.retry(services, before.id)
    assert again is not None
    assert (job_row(services, kept).original_bytes, job_row(services, again).original_key) == (
        None,
        kept_key,
    )
    with services.sessions() as session:
        assert uploads.bytes_used(session, user_id) == size + media("ogg_vorbis").stat().st_size
    production = production_row(services, before.id)
    assert (production.status, production.error) == ("ready", None)
    ingest.run_transcode(services, again)
    assert production_row(services, before.id).original_key == kept_key
    assert services.store.list(f"originals/{before.id}/") == [kept_key]


def test_deleting_a_production_removes_the_replacement_its_job_holds(
    services: Services, media: Media
) -> None:
    before = playing(services, media)
    key, _ = replace_with(services, before.id, media("ogg_vorbis"))
    assert ingest.delete_production(services, before.id)
    assert services.store.list(f"originals/{before.id}/") == []
    assert not services.store.exists(key)


# --- enqueue, retry, brokers ---------------------------------------------------------------------


def test_without_a_broker_a_job_stays_queued_for_a_sweeper(services: Services) -> None:
    job_id = add_job(services, new_production(services, "later"), state="queued")
    table.enqueue(services, job_id)
    job = job_row(services, job_id)
    assert (job.state, job.enqueued_at) == ("queued", None)
    assert sweeper.sweep(services).resent == []


def test_retry_queues_a_new_job_only_for_a_failed_production_with_its_original(
    services: Services,
) -> None:
    failed = new_production(services, "failed")
    with services.sessions.begin() as session:
        production = session.get(Production, failed)
        assert production is not None
        production.status, production.error = "failed", ingest.STORE_FAILED
        production.original_key = original_key(failed, "take.wav")
    services.store.put_bytes(original_key(failed, "take.wav"), b"RIFF")
    old = add_job(services, failed, state="failed", attempts=3, error=ingest.STORE_FAILED)

    new = ingest.retry(services, failed)
    assert new is not None and new != old
    assert job_row(services, new).state == "queued"
    production = production_row(services, failed)
    assert (production.status, production.error) == ("processing", None)
    assert ingest.retry(services, failed) is None, "one at a time"

    ready = new_production(services, "ready")
    assert ingest.retry(services, ready) is None
    assert ingest.retry(services, "no-such-thing") is None
    without_original = new_production(services, "refused")
    with services.sessions.begin() as session:
        production = session.get(Production, without_original)
        assert production is not None
        production.status = "failed"
    assert ingest.retry(services, without_original) is None


def test_brokers_are_built_from_settings_or_refused_in_one_sentence(tmp_path: Path) -> None:
    def jobs_settings(**env: str) -> JobSettings:
        return make_settings(tmp_path, sqlite_url(tmp_path), **env).jobs

    assert type(doorbell.make_broker(jobs_settings())).__name__ == "StubBroker"
    with pytest.raises(doorbell.JobsError, match=r"^jobs\.broker is redis, so jobs\.url must give"):
        doorbell.make_broker(jobs_settings(CITE_LIVE_JOBS_BROKER="redis"))
    try:
        import pika  # noqa: F401
    except ImportError:
        with pytest.raises(doorbell.JobsError, match="pika"):
            doorbell.make_broker(
                jobs_settings(CITE_LIVE_JOBS_BROKER="rabbitmq", CITE_LIVE_JOBS_URL="amqp://x")
            )
    assert doorbell.split_namespace("redis://h:6379/2?namespace=site-b&ssl_cert_reqs=none") == (
        "redis://h:6379/2?ssl_cert_reqs=none",
        "site-b",
    )
    assert doorbell.split_namespace("redis://h:6379/0") == ("redis://h:6379/0", "cite-live")


def test_the_sweeper_brings_the_planner_statistics_up_to_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``STATISTICS_SECONDS`` (an hour; here at each pass) the sweeper runs ANALYZE, so
    that SQLite's plans follow a catalogue that grew since the site started."""
    monkeypatch.setattr(maintenance, "STATISTICS_SECONDS", 0.0)
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_JOBS_SWEEP_SECONDS="0.05"
    )
    services = open_services(settings)

    def productions_analysed() -> set[str]:
        with services.engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'productions'"
            ).all()
        return {str(row[0]).split()[0] for row in rows}

    try:
        # Analysed at start-up, when there was nothing: no figures for productions yet.
        assert productions_analysed() <= {"0"}
        for title in ("Un", "Deux", "Trois"):
            new_production(services, title)
        running = maintenance.Maintenance(services).start()
        try:
            deadline = time.monotonic() + 10
            while productions_analysed() != {"3"} and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            running.stop()
        assert productions_analysed() == {"3"}
    finally:
        services.close()
