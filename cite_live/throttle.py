"""Sign-in attempts, counted before a password is checked, the checks run at once, and the
requests for a new password (each may send a message), counted too.

Checking a password is argon2: about 100 ms of CPU and tens of MiB at the production settings.
An attempt is counted before it is checked, by one atomic increment per key (the client's
address, the account's email), so attempts made at the same moment cannot pass the limit
together; an attempt that fails keeps its count, one that succeeds or is never checked gives it
back, so that only failures add up (a room of artists behind one address signs in freely).

When ``jobs.url`` names a Redis (``jobs.broker: redis``, or a Redis URL with any other broker
than RabbitMQ: cite_live.broadcast.redis_of) the counts live in it, under its namespace, and
every web process shares them; otherwise they live in this process, which must then be the
only web process (`cite-live serve` says so at start-up when its database is PostgreSQL).
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from cite_live.broadcast import redis_of
from cite_live.settings import Settings

WINDOW_SECONDS = 15 * 60
# Requests for a new password one email address may make per window (its owner needs one;
# more only fill their mailbox).
RESETS_PER_EMAIL = 3


class ThrottleError(Exception):
    """The shared counts cannot be reached (Redis is down): sign-ins wait rather than go
    unlimited."""


class AttemptLimiter:
    """At most ``attempts`` failed (or still running) attempts per key over a window."""

    def __init__(
        self,
        storage: Storage,
        attempts: int,
        window: int = WINDOW_SECONDS,
        namespace: str = "sign-in",
    ) -> None:
        self.storage = storage
        self.window = window
        # Limiters sharing a storage keep apart counts by their namespace.
        self.item = RateLimitItemPerSecond(attempts, window, namespace=namespace)
        self.limiter = FixedWindowRateLimiter(storage)

    def attempt(self, keys: Sequence[str]) -> int | None:
        """Count one attempt against every key: None when it may be checked, else the seconds
        to wait (and nothing stays counted)."""
        counted: list[str] = []
        try:
            for key in keys:
                counted.append(key)
                if not self.limiter.hit(self.item, key):
                    self._give_back(counted)
                    reset = self.limiter.get_window_stats(self.item, key).reset_time
                    return max(1, math.ceil(reset - time.time()))
        except StorageError as exc:
            raise ThrottleError(str(exc)) from exc
        return None

    def give_back(self, keys: Sequence[str]) -> None:
        """Uncount an attempt that succeeded or was never checked."""
        try:
            self._give_back(keys)
        except StorageError as exc:
            raise ThrottleError(str(exc)) from exc

    def _give_back(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.storage.incr(self.item.key_for(key), self.window, amount=-1)

    def forget(self, key: str) -> None:
        """Start ``key`` afresh (an account whose owner just proved who they are)."""
        try:
            self.limiter.clear(self.item, key)
        except StorageError as exc:
            raise ThrottleError(str(exc)) from exc


def address_key(address: str) -> str:
    return f"address:{address}"


def email_key(email: str) -> str:
    # Addresses are not written to a shared Redis in clear.
    return "email:" + hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()


def storage_for(settings: Settings) -> Storage:
    """Where the counts live: the installation's Redis when there is one, else this process."""
    found = redis_of(settings)
    if found is not None:
        url, namespace = found
        return RedisStorage(url, key_prefix=f"{namespace}:limits", wrap_exceptions=True)
    return MemoryStorage(wrap_exceptions=True)


def _cores() -> int:
    """The CPU cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class Busy(Exception):
    """Every password slot of this process is taken."""


class PasswordSlots:
    """At most ``size`` argon2 hashes or checks at once in this process. One more is refused at
    once: queued, it would hold a worker thread (and before, a database connection) that other
    visitors' requests need, and answer late anyway."""

    def __init__(self, size: int | None = None) -> None:
        self.size = size or _cores()
        self._free = threading.BoundedSemaphore(self.size)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """A slot for the block; :class:`Busy` when there is none free."""
        if not self._free.acquire(blocking=False):
            raise Busy
        try:
            yield
        finally:
            self._free.release()
