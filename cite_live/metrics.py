"""The numbers an operator graphs and alerts on, in Prometheus' text format.

Two kinds, told apart by where they are true:

- **the installation's**, read from the jobs table when a scraper asks (:class:`JobsCollector`):
  jobs by type and state, how long the oldest queued job has waited, failures so far. Every
  process answers the same, whichever one the scraper reaches, and nothing is lost when a process
  restarts: the table is the truth;
- **a process's own**, counted where they happen (:class:`Metrics`): requests by route and status
  and their durations (web), job attempts and their durations, failures, jobs a sweeper took
  back from a vanished worker (whichever process ran it), upload bytes received. Each process
  counts its own from its start, as Prometheus expects of a target: `cite-live serve` is one
  process (uvicorn with one worker), and shows them at ``/metrics``; a `cite-live worker` has no
  web server, and shows them with ``--metrics-port``. Prometheus sums over targets.

Each process has its own registry, in its services, never the module-global one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cite_live.models import Job, utcnow
from cite_live.vocabulary import JOB_STATES

log = logging.getLogger("cite_live.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# The methods the site answers; any other a client invents is counted as "other", so that
# nobody can add label values (and series) at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# A transcode takes from seconds (a short song) to an hour (a long concert, in one pass).
JOB_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200)
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """A process's registry and the counters its code increments."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "cite_live_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "cite_live_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template.",
            ("route",),
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "cite_live_job_duration_seconds",
            "Attempts of jobs run by this process, by type and how they ended.",
            ("type", "outcome"),
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.job_failures = Counter(
            "cite_live_job_failures",
            "Jobs this process marked failed, by type.",
            ("type",),
            registry=self.registry,
        )
        self.lease_requeues = Counter(
            "cite_live_job_lease_requeues",
            "Running jobs whose lease ran out (their worker vanished) that this process's "
            "sweeper put back in the queue, or failed when their attempts were spent.",
            ("outcome",),
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "cite_live_upload_bytes",
            "Bytes of tus uploads received by this process.",
            registry=self.registry,
        )

    def watch_jobs(self, sessions: sessionmaker[Session]) -> None:
        """Answer the installation's job figures from the table at each scrape."""
        self.registry.register(JobsCollector(sessions))

    def count_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method if method in METHODS else "other", str(status)).inc()
        self.request_seconds.labels(route).observe(seconds)

    def exposition(self) -> bytes:
        """Everything in the registry, in the text format (collectors query as they go)."""
        return generate_latest(self.registry)


class JobsCollector(Collector):
    """The jobs table at scrape time: queue depth, oldest queued job's age, jobs by state."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> Iterable[Metric]:
        # Describing without querying: registering must not need the database.
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        try:
            with self.sessions() as session:
                counts = session.execute(
                    select(Job.type, Job.state, func.count()).group_by(Job.type, Job.state)
                ).all()
                oldest = session.scalar(
                    select(func.min(Job.created_at)).where(Job.state == "queued")
                )
        except Exception:
            # A scrape while the database is down still gets this process's own counters
            # (readyz says what is down).
            log.warning("could not read the jobs table for the metrics", exc_info=True)
            return
        by_state, depth, age = self._families()
        depth.add_metric([], sum(n for _type, state, n in counts if state == "queued"))
        for job_type, state, n in counts:
            by_state.add_metric([job_type, state], n)
        age.add_metric([], _age(oldest))
        yield by_state
        yield depth
        yield age

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "cite_live_jobs",
                f"Jobs in the table, by type and state ({', '.join(JOB_STATES)}); failed jobs "
                "stay until their production is deleted or retried.",
                labels=("type", "state"),
            ),
            GaugeMetricFamily(
                "cite_live_job_queue_depth", "Jobs waiting for a worker (state queued)."
            ),
            GaugeMetricFamily(
                "cite_live_job_oldest_queued_seconds",
                "How long the oldest queued job has waited since it was made (0: none waits).",
            ),
        )


def _age(created: datetime | None) -> float:
    if created is None:
        return 0.0
    if created.tzinfo is None:  # SQLite keeps no time zone; we write UTC
        created = created.replace(tzinfo=UTC)
    return max(0.0, (utcnow() - created).total_seconds())
