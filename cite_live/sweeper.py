"""The sweeper: recovers jobs whose worker vanished and messages the broker lost.

It runs in `cite-live serve` and in every `cite-live worker`, every ``jobs.sweep_seconds``.
Each of its steps is a conditional UPDATE, so any number of sweepers may run at once: one of
them takes a step, the others find it taken.

1. A running job whose lease ran out lost its worker (killed, out of memory, machine gone). It
   goes back to the queue while attempts remain; after that it fails, with words for the artist.
2. A queued job sent long ago (or never) may have lost its message: it is sent again. The
   in-process broker loses them all on restart, and a duplicate costs one quiet claim.
3. In the web process, where the tus folder is: uploads whose last step was interrupted are
   finished, expired partial uploads are removed, and the store's list of private media is
   brought up to date with the database (a change made by another process, or by hand).

Between passes, its thread also pushes the store's list of private media as soon as a change
of visibility in this process marks it out of date (``access.MediaAccess.push``): the request
that made the change never waits on the store.

Every ``STATISTICS_SECONDS`` it also refreshes SQLite's query planner statistics
(``db.refresh_statistics``), so that the plans keep up with a growing catalogue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, select, update

from cite_live.db import refresh_statistics
from cite_live.i18n import N_
from cite_live.ingest import fail_production
from cite_live.leases import changed
from cite_live.models import Job, Production, utcnow
from cite_live.services import Services
from cite_live.storage import StorageError, version_prefix

log = logging.getLogger("cite_live.sweeper")

# A queued job whose message is older than this many leases is sent again. Long, because a
# message waits in the broker for as long as the workers are busy.
RESEND_AFTER_LEASES = 5
# How often the query planner's statistics are brought up to date as the catalogue grows.
STATISTICS_SECONDS = 3600.0
STOPPED_RETRY = N_("Processing stopped unexpectedly; the file will be processed again.")
STOPPED = N_(
    "Processing stopped unexpectedly several times; this file may be damaged — try another export."
)


@dataclass
class Swept:
    """What one sweep did, by job id."""

    requeued: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)


def sweep(services: Services, *, now: datetime | None = None, uploads: bool = False) -> Swept:
    """One pass of the three steps above (the third only with ``uploads``, in the web process)."""
    now = now or utcnow()
    swept = Swept()
    with services.sessions() as session:
        expired = session.scalars(
            select(Job.id).where(Job.state == "running", Job.lease_until < now).order_by(Job.id)
        ).all()
    for job_id in expired:
        if _requeue_expired(services, job_id, now):
            log.warning("job %d: its worker stopped answering; queued again", job_id)
            swept.requeued.append(job_id)
        elif _fail_expired(services, job_id, now):
            log.warning("job %d: its worker stopped answering too often; failed", job_id)
            swept.failed.append(job_id)
    lease = timedelta(seconds=services.settings.jobs.lease_seconds)
    swept.resent = resend(services, now=now, cutoff=now - RESEND_AFTER_LEASES * lease)
    if uploads:
        # Imported here: uploads sends jobs (cite_live.jobs), which runs this sweeper.
        from cite_live.uploads import finish_pending, sweep_expired

        finish_pending(services)
        sweep_expired(services)
        services.access.sync()
    return swept


def _requeue_expired(services: Services, job_id: int, now: datetime) -> bool:
    with services.sessions.begin() as session:
        return changed(
            session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.state == "running",
                    Job.lease_until < now,
                    Job.attempts < Job.max_attempts,
                )
                .values(
                    state="queued",
                    error=STOPPED_RETRY,
                    worker=None,
                    lease_until=None,
                    enqueued_at=None,
                    progress=0.0,
                )
            )
        )


def _fail_expired(services: Services, job_id: int, now: datetime) -> bool:
    prefix = None
    with services.sessions.begin() as session:
        failed = changed(
            session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.state == "running",
                    Job.lease_until < now,
                    Job.attempts >= Job.max_attempts,
                )
                .values(state="failed", error=STOPPED, lease_until=None)
            )
        )
        if not failed:
            return False
        job = session.get(Job, job_id)
        production = (
            session.get(Production, job.production_id) if job and job.production_id else None
        )
        if production is not None:
            fail_production(production, STOPPED)
            prefix = version_prefix(production.id, f"j{job_id}")
    if prefix is not None:
        # What the dead attempts published before they died: nobody will finish it now.
        try:
            services.store.delete_prefix(prefix)
        except StorageError:
            log.warning("could not clean %s after a failed job", prefix, exc_info=True)
    return True


def resend(services: Services, *, now: datetime, cutoff: datetime | None) -> list[int]:
    """Send again the queued jobs sent before ``cutoff`` or never (every one when None).

    A job reserved by the process that made it (see ``ingest.submit_file``) is left alone
    until its reservation runs out.
    """
    if services.queue is None:
        return []
    unreserved = Job.lease_until.is_(None) | (Job.lease_until < now)
    conditions: list[ColumnElement[bool]] = [Job.state == "queued", unreserved]
    if cutoff is not None:
        conditions.append(Job.enqueued_at.is_(None) | (Job.enqueued_at < cutoff))
    with services.sessions() as session:
        candidates = session.scalars(select(Job.id).where(*conditions).order_by(Job.id)).all()
    resent = []
    for job_id in candidates:
        with services.sessions.begin() as session:
            marked = changed(
                session.execute(
                    update(Job)
                    .where(Job.id == job_id, *conditions)
                    .values(enqueued_at=now, worker=None, lease_until=None)
                )
            )
        if marked:
            send(services, job_id)
            resent.append(job_id)
    return resent


def send(services: Services, job_id: int) -> None:
    """Hand one message to the broker; when it cannot be reached, the next sweep tries again."""
    assert services.queue is not None
    try:
        services.queue.enqueue(job_id)
    except Exception:
        log.warning("could not send job %d; the sweeper will try again", job_id, exc_info=True)
        with services.sessions.begin() as session:
            session.execute(
                update(Job).where(Job.id == job_id, Job.state == "queued").values(enqueued_at=None)
            )


class Sweeper:
    """Runs ``sweep`` at once, then every ``jobs.sweep_seconds``, in a thread until stopped;
    pushes the store's private media whenever they are marked out of date meanwhile."""

    def __init__(self, services: Services, *, uploads: bool = False) -> None:
        self.services = services
        self.uploads = uploads
        self._stop = threading.Event()
        # Set by stop() and by a change of visibility.
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-sweeper", daemon=True)
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> Sweeper:
        self._unsubscribe = self.services.access.when_dirty(self._wake.set)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _run(self) -> None:
        interval = self.services.settings.jobs.sweep_seconds
        analysed = time.monotonic()  # open_services has just done it
        due = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= due:
                try:
                    sweep(self.services, uploads=self.uploads)
                except Exception:
                    # The database or the broker may be back by the next sweep.
                    log.exception("the job sweep failed")
                due = time.monotonic() + interval
            if time.monotonic() - analysed >= STATISTICS_SECONDS:
                analysed = time.monotonic()
                try:
                    refresh_statistics(self.services.engine)
                except Exception:
                    log.exception("refreshing the database statistics failed")
            # Cleared first: a change marked from here on wakes the wait below.
            self._wake.clear()
            try:
                self.services.access.push()
            except Exception:
                log.exception("updating which media the store keeps private failed")
            self._wake.wait(max(0.0, due - time.monotonic()))
