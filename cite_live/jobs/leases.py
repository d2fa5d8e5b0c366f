"""Leases on jobs: who runs a job and until when, renewed by a heartbeat while the work goes on.

A lease is the pair (``worker``, ``lease_until``) of a job row. Its holder renews it every third
of ``jobs.lease_seconds``; when renewals stop (the process was killed, the machine died) the
lease runs out and a sweeper gives the job to another worker. Every write a holder makes is
conditional on still holding its lease (see ``table``), so a holder that was given up on never
overwrites the work of the one that replaced it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from types import TracebackType

from cite_live.jobs import table
from cite_live.services import Services

log = logging.getLogger("cite_live.leases")


def holder_name() -> str:
    """This thread, as an operator finds it: host, process id and thread id (``ps -L``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_native_id()}"


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
        held = table.renew(self.services, self.job_id, self.holder)
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
