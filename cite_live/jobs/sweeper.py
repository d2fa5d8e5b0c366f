"""The sweeper: recovers jobs whose worker vanished and messages the broker lost.

A maintenance task (see ``maintenance``) of `cite-live serve` and of every `cite-live worker`,
run every ``jobs.sweep_seconds``. Each of its steps is a conditional UPDATE, so any number of
sweepers may run at once: one of them takes a step, the others find it taken.

1. A running job whose lease ran out lost its worker (killed, out of memory, machine gone). It
   goes back to the queue while attempts remain; after that it fails, with words for the artist.
2. A queued job sent long ago (or never) may have lost its message: it is sent again. The
   in-process broker loses them all on restart, and a duplicate costs one quiet claim.

And, a task of its own (``sweep_temp``), on each machine: the temp folders a killed attempt left
there. Its retry may run on another machine, which cannot reach them; so every process sweeps
its own data dir's, and removes the folders of attempts whose lease is gone (ran out, or taken
by the retry) or whose job is over or deleted, that no running process holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from cite_live.i18n import N_
from cite_live.jobs import ingest, scratch, table
from cite_live.models import Job, utcnow
from cite_live.services import Services

log = logging.getLogger("cite_live.sweeper")

# A queued job whose message is older than this many leases is sent again. Long, because a
# message waits in the broker for as long as the workers are busy.
RESEND_AFTER_LEASES = 5
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


def sweep(services: Services, *, now: datetime | None = None) -> Swept:
    """One pass of the two steps above."""
    now = now or utcnow()
    swept = Swept()
    metrics = services.metrics.lease_requeues
    with services.sessions() as session:
        expired = session.scalars(
            select(Job.id).where(Job.state == "running", Job.lease_until < now).order_by(Job.id)
        ).all()
    for job_id in expired:
        if table.requeue(services, job_id, STOPPED_RETRY, expired_by=now):
            log.warning("job %d: its worker stopped answering; queued again", job_id)
            swept.requeued.append(job_id)
            metrics.labels("requeued").inc()
        elif ingest.fail(services, job_id, STOPPED, expired_by=now):
            log.warning("job %d: its worker stopped answering too often; failed", job_id)
            swept.failed.append(job_id)
            metrics.labels("failed").inc()
    lease = timedelta(seconds=services.settings.jobs.lease_seconds)
    swept.resent = table.resend(services, now=now, cutoff=now - RESEND_AFTER_LEASES * lease)
    return swept


def sweep_temp(services: Services, *, now: datetime | None = None) -> list[str]:
    """Remove this machine's temp folders that no process holds and no live lease keeps;
    return their names."""
    now = now or utcnow()
    with services.sessions() as session:
        leased = {
            (job_id, holder)
            for job_id, holder in session.execute(
                select(Job.id, Job.worker).where(
                    Job.state.in_(("queued", "running")),
                    Job.worker.is_not(None),
                    Job.lease_until >= now,
                )
            )
        }
    jobs = {job_id for job_id, _holder in leased}

    def keep(name: str, owner: str) -> bool:
        job_id = scratch.job_of(name)
        # A folder made before owners were written is kept while any attempt of its job runs.
        return job_id is not None and ((job_id, owner) in leased if owner else job_id in jobs)

    removed = scratch.sweep(services.settings.tmp_dir, keep=keep)
    if removed:
        log.info("removed %d temp folder(s) no running job owns: %s", len(removed), removed)
    return removed
