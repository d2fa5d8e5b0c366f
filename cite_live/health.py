"""Readiness: whether this process can do its work, as a load balancer or an orchestrator asks.

Three checks: the database answers ``SELECT 1``, the store answers (the local folder exists and
takes writes; S3: the bucket answers HEAD), the broker answers (Redis: PING; RabbitMQ: its port
takes a connection; the embedded broker lives in this process).

Each check runs in a thread of its own and is waited for at most ``CHECK_SECONDS``: a database
behind a dead link makes a connection wait for minutes, and a probe must answer in time. A check
still running from an earlier probe is not started again but waited for once more, so probes
arriving every few seconds never pile up threads behind a host that does not answer.

What failed is said in one word (``failed``, ``timeout``); the reason goes to the log only,
since anyone who reaches the site may ask and an error names hosts, users and buckets.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from cite_live.broadcast import split_namespace
from cite_live.services import Services

log = logging.getLogger("cite_live.health")

CHECK_SECONDS = 2.0
OK = "ok"
FAILED = "failed"
TIMEOUT = "timeout"
RABBITMQ_PORT = 5672


class Readiness:
    """The checks of one process's services, each never running twice at once."""

    def __init__(self, services: Services, timeout: float = CHECK_SECONDS) -> None:
        self.services = services
        self.timeout = timeout
        self._lock = threading.Lock()
        self._running: dict[str, Future[None]] = {}
        self._redis: Any = None

    def checks(self) -> dict[str, Callable[[], None]]:
        return {"database": self._database, "store": self._store, "broker": self._broker}

    async def run(self) -> dict[str, str]:
        """Each check's outcome: ``ok``, ``failed`` or ``timeout``. Waited for on the event
        loop, not in a worker thread: probes arriving while a host does not answer hold no
        thread that requests need."""
        waits = {
            name: asyncio.wrap_future(self._start(name, check))
            for name, check in self.checks().items()
        }
        await asyncio.wait(waits.values(), timeout=self.timeout)
        outcomes = {}
        for name, wait in waits.items():
            if not wait.done():
                # Only this wait: the check itself runs on (see _start).
                wait.cancel()
                log.warning("readiness: the %s did not answer within %g s", name, self.timeout)
                outcomes[name] = TIMEOUT
            elif (exc := wait.exception()) is not None:
                log.warning("readiness: the %s failed: %s", name, exc)
                outcomes[name] = FAILED
            else:
                outcomes[name] = OK
        return outcomes

    def _start(self, name: str, check: Callable[[], None]) -> Future[None]:
        with self._lock:
            running = self._running.get(name)
            if running is not None and not running.done():
                return running
            future: Future[None] = Future()
            # Running from now on: a probe that stops waiting cannot cancel it.
            future.set_running_or_notify_cancel()
            self._running[name] = future

        def run() -> None:
            try:
                check()
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(None)

        threading.Thread(target=run, name=f"ready-{name}", daemon=True).start()
        return future

    def _database(self) -> None:
        with self.services.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def _store(self) -> None:
        self.services.store.check(self.timeout)

    def _broker(self) -> None:
        jobs = self.services.settings.jobs
        if jobs.broker == "redis":
            if self._redis is None:
                import redis

                url, _namespace = split_namespace(jobs.url)
                self._redis = redis.Redis.from_url(
                    url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
                )
            self._redis.ping()
        elif jobs.broker == "rabbitmq":
            address = urlsplit(jobs.url)
            port = address.port or RABBITMQ_PORT
            with socket.create_connection((address.hostname or "", port), self.timeout):
                pass

    def close(self) -> None:
        if self._redis is not None:
            self._redis.close()
