"""The jobs table, and the only module that writes it: a job's states and who may move it.

    queued ──claim──▶ running ──complete──▶ done
      ▲                 │
      └────requeue──────┤ (attempts remain: an outage, a lost worker, a worker stopping)
                        └──fail──▶ failed

Every move is a conditional UPDATE, so of several racers (duplicate messages, sweepers in
other processes, a worker that lost its lease) exactly one wins; the others find the row moved.
A holder's moves are conditional on still holding the job's lease (see ``leases``).

The table is the truth and the broker only its doorbell: ``enqueue`` records when a job's
message was sent and rings; a message lost or doubled costs nothing, since ``resend`` rings
again for jobs whose message is old, and a duplicate finds its job claimed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.orm import Session

from cite_live.db import changed, rowcount
from cite_live.models import Job, Production, utcnow
from cite_live.services import Services
from cite_live.settings import Settings

log = logging.getLogger("cite_live.jobs")

# What every way back to the queue clears: no holder, no lease, no message sent yet.
_BACK_TO_QUEUE: dict[str, Any] = {
    "state": "queued",
    "worker": None,
    "lease_until": None,
    "enqueued_at": None,
    "progress": 0.0,
}


def lease_until(settings: Settings, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=settings.jobs.lease_seconds)


# --- a new job -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Original:
    """A recording in the store that is not (yet) its production's original: a replacement."""

    key: str
    filename: str
    size: int


def queue_transcode(
    session: Session,
    production: Production,
    *,
    upload_id: str | None = None,
    original: Original | None = None,
    reserved_for: str | None = None,
    settings: Settings | None = None,
) -> Job:
    """Add a queued transcode job for ``production`` to the caller's transaction: of its own
    original, or of the replacement ``original``, which the job holds until it is published.

    With ``reserved_for`` (a holder, and the ``settings`` that say how long), only that holder
    claims it until the reservation runs out. Once the transaction is committed, hand the job
    to the workers with ``enqueue``.
    """
    job = Job(type="transcode", production_id=production.id, upload_id=upload_id, state="queued")
    if original is not None:
        job.original_key = original.key
        job.original_filename = original.filename[:300]
        job.original_bytes = original.size
    if reserved_for is not None and settings is not None:
        job.worker, job.lease_until = reserved_for, lease_until(settings)
    session.add(job)
    session.flush()
    return job


def held_originals(session: Session, production_id: str) -> list[Job]:
    """The jobs of a production that hold a replacement's original in the store."""
    return list(
        session.scalars(
            select(Job).where(
                Job.production_id == production_id,
                Job.original_key.is_not(None),
                Job.original_bytes.is_not(None),
            )
        )
    )


def let_go_of_original(job: Job) -> str | None:
    """The job no longer holds its replacement's original (published, taken over by a newer
    job, or to be removed); return its key, once held."""
    key = job.original_key if job.original_bytes is not None else None
    job.original_bytes = None
    return key


def release_failed_originals(session: Session, production_id: str) -> list[str]:
    """Let go of what failed replacements of a production still hold (a newer recording takes
    their place); return the keys to remove from the store once the transaction is committed."""
    released = []
    for job in held_originals(session, production_id):
        if job.state == "failed" and job.original_key is not None:
            released.append(job.original_key)
            let_go_of_original(job)
    return released


# --- the doorbell --------------------------------------------------------------------------------


def enqueue(services: Services, job_id: int, *, now: datetime | None = None) -> None:
    """Hand the queued job ``job_id`` to the workers; without a broker it waits for a sweeper."""
    if services.queue is None:
        return
    with services.sessions.begin() as session:
        marked = changed(
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
                .values(enqueued_at=now or utcnow())
            )
        )
    if marked:
        send(services, job_id)


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


# --- a holder's moves ----------------------------------------------------------------------------


def claim(services: Services, job_id: int, holder: str) -> bool:
    """Take the queued job ``job_id`` for ``holder``; False if someone else has it or it is over.

    A queued job may be reserved (see ``ingest.submit_file``): only its holder claims it until the
    reservation runs out.
    """
    now = utcnow()
    free = (Job.lease_until.is_(None)) | (Job.lease_until < now) | (Job.worker == holder)
    with services.sessions.begin() as session:
        return changed(
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued", free)
                .values(
                    state="running",
                    attempts=Job.attempts + 1,
                    # The operator's current policy applies from this attempt on.
                    max_attempts=services.settings.jobs.max_attempts,
                    worker=holder,
                    lease_until=lease_until(services.settings, now),
                    heartbeat_at=now,
                    progress=0.0,
                    error=None,
                )
            )
        )


def renew(services: Services, job_id: int, holder: str) -> bool:
    """Extend ``holder``'s lease on the job; False when it is no longer theirs."""
    now = utcnow()
    with services.sessions.begin() as session:
        return changed(
            session.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    Job.worker == holder,
                    Job.state.in_(("queued", "running")),
                )
                .values(lease_until=lease_until(services.settings, now), heartbeat_at=now)
            )
        )


def report_progress(services: Services, job_id: int, holder: str, fraction: float) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == "running", Job.worker == holder)
            .values(progress=max(0.0, min(1.0, fraction)))
        )


def progress_reporter(
    services: Services,
    job_id: int,
    holder: str,
    progress: Callable[[float], None] | None = None,
) -> Callable[[float], None]:
    """A progress callback for ``holder``'s job: passed on to ``progress`` every time, written
    to the job's row at most once a second."""
    last_write = [0.0]

    def report(fraction: float) -> None:
        if progress is not None:
            progress(fraction)
        now = time.monotonic()
        if now - last_write[0] < 1.0:
            return
        last_write[0] = now
        report_progress(services, job_id, holder, fraction)

    return report


def complete(session: Session, job_id: int, holder: str) -> bool:
    """Mark the job done in the caller's transaction (which publishes its version); False
    when ``holder`` lost it meanwhile.

    Marking it first takes its row: a sweeper deciding about it waits, then finds it done.
    """
    done = update(Job).where(Job.id == job_id, Job.state == "running", Job.worker == holder)
    return changed(session.execute(done.values(state="done", progress=1.0, lease_until=None)))


def _running(job_id: int, holder: str | None, expired_by: datetime | None) -> list[Any]:
    """A running job held by ``holder``, or whose lease ran out by ``expired_by``."""
    where: list[Any] = [Job.id == job_id, Job.state == "running"]
    if holder is not None:
        where.append(Job.worker == holder)
    if expired_by is not None:
        where.append(Job.lease_until < expired_by)
    return where


def requeue(
    services: Services,
    job_id: int,
    error: str,
    *,
    holder: str | None = None,
    expired_by: datetime | None = None,
) -> bool:
    """Back to the queue (the next sweep sends it again) while attempts remain: the running
    job of ``holder``, or one whose lease ran out by ``expired_by``. False otherwise."""
    with services.sessions.begin() as session:
        return changed(
            session.execute(
                update(Job)
                .where(*_running(job_id, holder, expired_by), Job.attempts < Job.max_attempts)
                .values(**_BACK_TO_QUEUE, error=error)
            )
        )


def give_back(services: Services, holders: set[str]) -> int:
    """Put the jobs ``holders`` are running back in the queue without counting their attempt
    (their process is stopping); return how many."""
    with services.sessions.begin() as session:
        return rowcount(
            session.execute(
                update(Job)
                .where(Job.state == "running", Job.worker.in_(holders), Job.attempts > 0)
                .values(**_BACK_TO_QUEUE, attempts=Job.attempts - 1)
            )
        )


def fail(
    session: Session,
    job_id: int,
    error: str,
    *,
    holder: str | None = None,
    expired_by: datetime | None = None,
) -> Job | None:
    """Mark failed, in the caller's transaction, the running job of ``holder``, or one whose
    lease ran out by ``expired_by`` with its attempts spent; return it, or None when it was
    not in that state."""
    where = _running(job_id, holder, expired_by)
    if expired_by is not None:
        where.append(Job.attempts >= Job.max_attempts)
    if not changed(
        session.execute(
            update(Job).where(*where).values(state="failed", error=error, lease_until=None)
        )
    ):
        return None
    return session.get(Job, job_id)


# --- the chunks of a segmented transcode ---------------------------------------------------------


def queue_chunks(session: Session, parent_id: int, tasks: list[dict[str, Any]]) -> list[int]:
    """Give the transcode ``parent_id`` one queued chunk job per task, in the caller's
    transaction, keeping the chunks an earlier attempt of it made for the same tasks (what is
    done stays done); return the ids of its chunks that are queued, to hand to the workers.

    Chunks planned differently before (the settings changed between attempts) are replaced.
    """
    existing = list(session.scalars(select(Job).where(Job.parent_id == parent_id)))
    if [job.task for job in sorted(existing, key=lambda job: job.chunk or 0)] != tasks:
        for job in existing:
            session.delete(job)
        session.flush()
        existing = []
        for index, task in enumerate(tasks):
            session.add(Job(type="chunk", parent_id=parent_id, chunk=index, task=task))
        session.flush()
        existing = list(session.scalars(select(Job).where(Job.parent_id == parent_id)))
    for job in existing:
        if job.state == "failed":
            # A new attempt of the transcode gives its failed chunks a new start.
            job.state, job.attempts, job.error, job.output = "queued", 0, None, None
    session.flush()
    return sorted(job.id for job in existing if job.state == "queued")


def chunks_of(session: Session, parent_id: int) -> list[Job]:
    """The chunk jobs of a transcode, in order."""
    return list(session.scalars(select(Job).where(Job.parent_id == parent_id).order_by(Job.chunk)))


def record_output(
    services: Services, job_id: int, holder: str, output: dict[str, Any], *, done: bool = False
) -> bool:
    """Keep what the chunk ``job_id`` has encoded so far (and mark it done with ``done``);
    False when ``holder`` lost it meanwhile."""
    values: dict[str, Any] = {"output": output}
    if done:
        values.update(state="done", progress=1.0, lease_until=None)
    with services.sessions.begin() as session:
        return changed(
            session.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "running", Job.worker == holder)
                .values(**values)
            )
        )


def stop_chunks(session: Session, parent_id: int, error: str) -> None:
    """Fail, in the caller's transaction, the chunks of a transcode that are not done: their
    workers find their lease gone at the next renewal and stop."""
    session.execute(
        update(Job)
        .where(Job.parent_id == parent_id, Job.state.in_(("queued", "running")))
        .values(state="failed", error=error, lease_until=None)
    )
