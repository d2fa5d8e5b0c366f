"""Leases on jobs: who runs a job and until when, renewed by a heartbeat while the work goes on.

A lease is the pair (``worker``, ``lease_until``) of a job row. Its holder renews it every third
of ``jobs.lease_seconds``; when renewals stop (the process was killed, the machine died) the
lease runs out and a sweeper gives the job to another worker. Every write a holder makes is
conditional on still holding its lease, so a holder that was given up on never overwrites the
work of the one that replaced it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, cast

from sqlalchemy import CursorResult, Result, update

from cite_live.models import Job, utcnow
from cite_live.services import Services
from cite_live.settings import Settings

log = logging.getLogger("cite_live.leases")


def holder_name() -> str:
    """This thread, as an operator finds it: host, process id and thread id (``ps -L``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


def lease_until(settings: Settings, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=settings.jobs.lease_seconds)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE matched."""
    return int(cast(CursorResult[Any], result).rowcount)


def changed(result: Result[Any]) -> bool:
    """Whether a conditional UPDATE matched its row: that is how one of several racers wins."""
    return rowcount(result) > 0


class LeaseLost(Exception):
    """The job was given to another worker (or deleted) while this one worked on it."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"job {job_id} is no longer held by this worker")
        self.job_id = job_id


class Lease:
    """Holds the lease of a job for the duration of a ``with`` block, renewing it in a thread."""

    def __init__(self, services: Services, job_id: int, holder: str) -> None:
        self.services = services
        self.job_id = job_id
        self.holder = holder
        self.interval = services.settings.jobs.lease_seconds / 3
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-j{job_id}", daemon=True)

    def renew(self) -> bool:
        """Extend the lease; False (and the lease counts as lost) when it is no longer ours."""
        now = utcnow()
        with self.services.sessions.begin() as session:
            held = changed(
                session.execute(
                    update(Job)
                    .where(
                        Job.id == self.job_id,
                        Job.worker == self.holder,
                        Job.state.in_(("queued", "running")),
                    )
                    .values(lease_until=lease_until(self.services.settings, now), heartbeat_at=now)
                )
            )
        if not held:
            self._lost.set()
        return held

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def check(self) -> None:
        """Raise LeaseLost when a renewal found the job in other hands."""
        if self._lost.is_set():
            raise LeaseLost(self.job_id)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.renew():
                    return
            except Exception:
                # The database may come back before the lease runs out: keep trying.
                log.warning("could not renew the lease of job %d", self.job_id, exc_info=True)

    def __enter__(self) -> Lease:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()


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
