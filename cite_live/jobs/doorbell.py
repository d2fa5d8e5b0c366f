"""The doorbell: Dramatiq's broker, the transcode actor and the worker threads.

A Dramatiq message only says "job N may be ready"; the jobs table decides (see ``table``). So
a message may be lost or doubled without harm: a duplicate finds its job claimed and returns,
and the sweeper (``sweeper``) sends again what was lost. Dramatiq's own retries, time
limit and other middleware are off: the table counts attempts, and the transcoder has its own
time limits.

Embedded (the default): Dramatiq's in-process StubBroker, with worker threads inside
`cite-live serve`; it forgets its messages on restart, so start-up sends every queued job again.
Scaled out: Redis or RabbitMQ, with `cite-live worker` processes wherever there is CPU, each
with their maintenance (see ``maintenance``); the web process then only sends messages (and
runs its maintenance too).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from contextlib import suppress
from pathlib import Path
from types import FrameType

import dramatiq
from dramatiq.brokers.stub import StubBroker
from prometheus_client import start_http_server

from cite_live.broadcast import split_namespace
from cite_live.jobs import ingest, sweeper, table
from cite_live.jobs.leases import holder_name
from cite_live.jobs.maintenance import Maintenance, tasks
from cite_live.models import utcnow
from cite_live.services import Services, open_services
from cite_live.settings import JobSettings, Settings
from cite_live.storage import StorageError
from transcoder import TranscodeError

log = logging.getLogger("cite_live.jobs")

ACTOR_NAME = "transcode"
QUEUE_NAME = "transcode"
# How often idle worker threads look at the broker, and so how long stopping them takes.
IDLE_MS = 500


class JobsError(Exception):
    """The job broker cannot be set up; the message says why in one sentence."""


def make_broker(settings: JobSettings) -> dramatiq.Broker:
    """A broker for ``settings``, with none of Dramatiq's middleware (see the module doc)."""
    if settings.broker == "embedded":
        return StubBroker(middleware=[])
    if not settings.url:
        raise JobsError(
            f"jobs.broker is {settings.broker}, so jobs.url must give the address of its server."
        )
    if settings.broker == "redis":
        from dramatiq.brokers.redis import RedisBroker

        url, namespace = split_namespace(settings.url)
        # dramatiq types its other brokers, not this one.
        return RedisBroker(url=url, namespace=namespace, middleware=[])  # type: ignore[no-untyped-call]
    try:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker
    except ImportError:
        raise JobsError(
            "The rabbitmq broker needs the Python package pika: install it or use redis."
        ) from None
    return RabbitmqBroker(url=settings.url, middleware=[])


class JobQueue:
    """The broker and transcode actor of one process; ``start`` adds workers and maintenance."""

    def __init__(self, services: Services, broker: dramatiq.Broker | None = None) -> None:
        self.services = services
        self.settings = services.settings.jobs
        self.broker = broker or make_broker(self.settings)
        self.actor = dramatiq.Actor(
            self._perform,
            broker=self.broker,
            actor_name=ACTOR_NAME,
            queue_name=QUEUE_NAME,
            priority=0,
            options={"max_retries": 0},
        )
        self._worker: dramatiq.Worker | None = None
        self._maintenance: Maintenance | None = None
        self._lock = threading.Lock()
        # Holders (see leases.holder_name) of the jobs our worker threads are running.
        self._running: set[str] = set()

    @property
    def embedded(self) -> bool:
        return self.settings.broker == "embedded"

    def enqueue(self, job_id: int) -> None:
        self.actor.send(job_id)

    def start(self, *, workers: bool = True, sweep_uploads: bool = False) -> JobQueue:
        """Start the worker threads (unless ``workers`` is False) and the maintenance tasks (those
        of the web process too with ``sweep_uploads``)."""
        # What killed processes left in the temp dir, before any job starts; what running jobs
        # hold stays. (The maintenance sweeps again at every pass.)
        sweeper.sweep_temp(self.services)
        if self.embedded:
            # The in-process broker remembers nothing from before this start.
            table.resend(self.services, now=utcnow(), cutoff=None)
        if workers:
            threads = max(1, self.settings.threads)
            self._worker = dramatiq.Worker(
                self.broker, worker_threads=threads, worker_timeout=IDLE_MS
            )
            # One message per thread: a message waiting behind a long transcode here would be
            # out of reach of idle workers elsewhere.
            self._worker.queue_prefetch = threads
            self._worker.start()
        self._maintenance = Maintenance(self.services, tasks(web=sweep_uploads)).start()
        return self

    def close(self, grace: float = 5.0) -> None:
        """Stop the maintenance and the workers, giving running jobs ``grace`` seconds to finish.

        Jobs still running after that are abandoned cleanly: put back in the queue without
        counting the attempt, and the ffmpeg this process runs is stopped (it is stopping).
        """
        if self._maintenance is not None:
            self._maintenance.stop()
            self._maintenance = None
        if self._worker is not None:
            self._worker.stop(timeout=int(grace * 1000))
            self._worker = None
            with self._lock:
                abandoned = set(self._running)
            if abandoned:
                self._release(abandoned)
                _stop_child_processes()
        if self.services.queue is self:
            self.services.queue = None
        client = getattr(self.broker, "client", None)
        if client is not None:
            client.connection_pool.disconnect()
        self.broker.close()

    def _release(self, holders: set[str]) -> None:
        released = table.give_back(self.services, holders)
        log.info("gave back %d unfinished job(s) to the queue", released)

    def _perform(self, job_id: int) -> None:
        holder = holder_name()
        with self._lock:
            self._running.add(holder)
        try:
            ingest.run_job(self.services, job_id)
        except (TranscodeError, StorageError):
            pass  # in the job row, and logged, already
        except Exception as exc:
            log.error("job %d: %s", job_id, exc)
        finally:
            with self._lock:
                self._running.discard(holder)


def open_queue(
    services: Services,
    *,
    workers: bool,
    sweep_uploads: bool = False,
    broker: dramatiq.Broker | None = None,
) -> JobQueue:
    """Attach a started JobQueue to ``services`` (``services.queue``) and return it."""
    queue = JobQueue(services, broker)
    services.queue = queue
    try:
        return queue.start(workers=workers, sweep_uploads=sweep_uploads)
    except BaseException:
        queue.close()
        raise


def _stop_child_processes() -> None:
    """Kill the ffmpeg of abandoned jobs: it ignores SIGPIPE, so it would run on after us."""
    me = os.getpid()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, tail = stat.read_text().rpartition(")")
            fields = tail.split()
            pid, ppid, group = int(stat.parent.name), int(fields[1]), int(fields[2])
        except (OSError, IndexError, ValueError):
            continue
        # The transcoder starts each ffmpeg as the leader of a process group of its own.
        if ppid == me and group == pid and head.endswith(("(ffmpeg", "(ffprobe")):
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)


# --- `cite-live worker` --------------------------------------------------------------------------


def run_worker(settings: Settings, *, metrics: tuple[str, int] | None = None) -> int:
    """Run workers and their maintenance for the configured broker until SIGTERM or SIGINT;
    with ``metrics`` (host, port), serve this process's metrics there (a worker has no site)."""
    if settings.jobs.broker == "embedded":
        raise JobsError(
            "The embedded broker runs inside `cite-live serve`; set jobs.broker to redis "
            "(or rabbitmq) and jobs.url to run separate workers."
        )
    broker = make_broker(settings.jobs)  # refusals before any work
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    services = open_services(settings)
    exporter = None
    try:
        if metrics is not None:
            try:
                exporter, _thread = start_http_server(
                    metrics[1], addr=metrics[0], registry=services.metrics.registry
                )
            except OSError as exc:
                raise JobsError(
                    f"The metrics cannot be served at {metrics[0]} port {metrics[1]}: "
                    f"{exc.strerror or exc}."
                ) from None
            log.info("metrics at http://%s:%d/metrics", *exporter.server_address[:2])
        queue = open_queue(services, workers=True, broker=broker)
        log.info(
            "worker %s: %d thread(s) on %s",
            holder_name(),
            settings.jobs.threads,
            settings.jobs.broker,
        )
        try:
            stop.wait()
            log.info("worker stopping")
        finally:
            queue.close()
    finally:
        if exporter is not None:
            exporter.shutdown()
            exporter.server_close()
        services.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
