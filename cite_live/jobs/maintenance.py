"""Maintenance: the periodic tasks of a process, run in order by one thread.

Each task is a function of its owner module, listed in ``TASKS`` with how often it runs; the
scheduler knows nothing of what they do. It runs in `cite-live serve` and in every
`cite-live worker` (the tasks that need the web process's tus folder only there).

- ``jobs``: jobs whose worker vanished, messages the broker lost (``sweeper``);
- ``temp files``: the temp folders of this machine's attempts whose lease is gone, the retry
  running here or elsewhere (``sweeper.sweep_temp``);
- ``uploads``: uploads whose last step was interrupted are finished, expired partial uploads
  are removed (``uploads``);
- ``private media``: the store's list of private media is brought up to date with the database,
  at each pass (a change made by another process, or by hand) and as soon as a change of
  visibility in this process marks it out of date (``access.MediaAccess``): the request that
  made the change never waits on the store;
- ``play salts``: the salts of the days before today are deleted (``plays``), even on a day
  nobody plays anything, so that no visitor hash of an earlier day can be linked to anyone;
- ``statistics``: SQLite's query planner statistics (``db.refresh_statistics``), every
  ``STATISTICS_SECONDS``, so that the plans keep up with a growing catalogue;
- ``expired sign-ins``: sessions past ``auth.session_days`` and spent or expired new-password
  links are forgotten, every ``EXPIRED_SECONDS`` (a session is otherwise cleared away only when
  its account signs in again).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from cite_live import accounts, devices, plays, uploads
from cite_live.db import refresh_statistics
from cite_live.jobs import sweeper
from cite_live.services import Services

log = logging.getLogger("cite_live.maintenance")

# How often the salts of earlier days are looked for: a salt outlives its day by at most this.
PLAY_SALT_SECONDS = 600.0
# How often the query planner's statistics are brought up to date as the catalogue grows.
STATISTICS_SECONDS = 3600.0
# How often sessions and new-password links that open nothing any more are forgotten.
EXPIRED_SECONDS = 3600.0
# The shortest wait between two passes, should a task ask to run all the time.
MIN_PAUSE = 0.01

Wake = Callable[[], None]


@dataclass(frozen=True)
class Task:
    """A periodic task: ``run`` every ``every(services)`` seconds, the first time at once (or
    after one interval, without ``at_start``). ``wakes``, if given, subscribes a callback that
    makes it run at the next moment, and returns what unsubscribes it."""

    name: str
    run: Callable[[Services], object]
    every: Callable[[Services], float]
    web_only: bool = False
    at_start: bool = True
    wakes: Callable[[Services, Wake], Callable[[], None]] | None = None


def _sweep_seconds(services: Services) -> float:
    return services.settings.jobs.sweep_seconds


def _statistics_seconds(services: Services) -> float:
    return STATISTICS_SECONDS


def _expired_seconds(services: Services) -> float:
    return EXPIRED_SECONDS


def forget_expired(services: Services) -> None:
    """Delete the sessions and new-password links that open nothing any more."""
    with services.sessions.begin() as session:
        ended = devices.sweep(session, timedelta(days=services.settings.auth.session_days))
        spent = accounts.sweep_resets(session)
    if ended or spent:
        log.info("forgot %d expired sessions and %d spent new-password links", ended, spent)


def _tidy_uploads(services: Services) -> None:
    uploads.finish_pending(services)
    uploads.sweep_expired(services)


TASKS: tuple[Task, ...] = (
    Task("jobs", sweeper.sweep, _sweep_seconds),
    Task("temp files", sweeper.sweep_temp, _sweep_seconds),
    Task("uploads", _tidy_uploads, _sweep_seconds, web_only=True),
    Task("private media list", lambda s: s.access.sync(), _sweep_seconds, web_only=True),
    # open_services has just done it.
    Task("play salts", plays.forget_earlier_salts, lambda s: PLAY_SALT_SECONDS),
    Task("statistics", lambda s: refresh_statistics(s.engine), _statistics_seconds, at_start=False),
    Task(
        "private media",
        lambda s: s.access.push(),
        _sweep_seconds,
        wakes=lambda s, wake: s.access.when_dirty(wake),
    ),
    Task("expired sign-ins", forget_expired, _expired_seconds, web_only=True),
)


def tasks(*, web: bool) -> list[Task]:
    """The tasks of a process: all of them in the web process, else those not ``web_only``."""
    return [task for task in TASKS if web or not task.web_only]


class Maintenance:
    """Runs its tasks in a thread, each when it is due or woken, until stopped."""

    def __init__(self, services: Services, tasks_: Sequence[Task] | None = None) -> None:
        self.services = services
        self.tasks = list(tasks_ if tasks_ is not None else tasks(web=False))
        self._stop = threading.Event()
        # Set by stop() and by a task's wake-up.
        self._wake = threading.Event()
        self._woken: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="maintenance", daemon=True)
        self._unsubscribe: list[Callable[[], None]] = []

    def start(self) -> Maintenance:
        for task in self.tasks:
            if task.wakes is not None:
                self._unsubscribe.append(task.wakes(self.services, self._waker(task.name)))
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()
        while self._unsubscribe:
            self._unsubscribe.pop()()

    def _waker(self, name: str) -> Wake:
        def wake() -> None:
            with self._lock:
                self._woken.add(name)
            self._wake.set()

        return wake

    def _run(self) -> None:
        now = time.monotonic()
        due = {
            task.name: now if task.at_start else now + task.every(self.services)
            for task in self.tasks
        }
        while not self._stop.is_set():
            # Cleared first: a wake-up from here on ends the wait below.
            self._wake.clear()
            with self._lock:
                woken, self._woken = self._woken, set()
            for task in self.tasks:
                if self._stop.is_set():
                    return
                if task.name not in woken and time.monotonic() < due[task.name]:
                    continue
                try:
                    task.run(self.services)
                except Exception:
                    # The database, the store or the broker may be back by the next pass.
                    log.exception("the maintenance task %r failed", task.name)
                due[task.name] = time.monotonic() + task.every(self.services)
            pause = min(due.values(), default=time.monotonic() + 3600.0) - time.monotonic()
            self._wake.wait(max(MIN_PAUSE, pause))
