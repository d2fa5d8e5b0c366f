"""What the processes of one installation tell each other: the catalogue changed, a production's
visibility changed.

Several web processes (and workers, and commands) share one database, and each web process
keeps some of what it read for a while: the page cache (cite_live.pagecache), the public media
route's visibilities (cite_live.access). A commit makes the copies of its own process obsolete
at once; the other processes learn it from a message that the committing process publishes on
a Redis channel of the installation's namespace right after the commit, and drop theirs as soon
as it arrives (a millisecond or so later). A production made private, unlisted or deleted on
one web process answers 404 on every other one from then on, not minutes later.

The Redis is the one ``jobs.url`` names (:func:`redis_of`); without one, nothing is sent or
heard: a single web process has nobody to tell.

Pub/sub delivers to those listening at the moment and keeps nothing, so a listener that was
cut off may have missed messages: when it is subscribed again, it tells its process to treat
everything as changed (:meth:`Broadcast.on_resync`). While Redis cannot be reached, publishing
fails quietly (logged), the listener retries every few seconds, and each process is as without
Redis: changes made elsewhere show once a page's ``site.page_cache_seconds`` are over (its
refresh then brings the new page, or drops it) and within ``access.VISIBILITY_TTL`` for media.
No request fails for it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from cite_live.settings import Settings

log = logging.getLogger("cite_live.broadcast")

# Prefix of every Redis key; `?namespace=` on jobs.url lets installations share one server.
DEFAULT_NAMESPACE = "cite-live"
CHANNEL = "changes"
# The topic of "everything may have changed": said for messages that could not be sent.
RESYNC = "resync"
REDIS_SCHEMES = ("redis", "rediss", "unix")
# A commit waits for its message at most this long (a Redis that stopped answering).
TIMEOUT = 0.5
# How often the listener pings Redis, and how long without any answer makes it reconnect: a
# connection whose other end vanished without closing it would otherwise stay silent forever.
HEARTBEAT = 2.0
SILENCE = 3 * HEARTBEAT
# Seconds between attempts to reach Redis again, growing to the last one.
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0)

Handler = Callable[[list[str]], None]


def redis_of(settings: Settings) -> tuple[str, str] | None:
    """(address, namespace) of the installation's Redis: ``jobs.url`` when the broker is Redis,
    or when it names a Redis whatever the broker (an installation whose jobs run inside its web
    processes may still share its state); None without one."""
    jobs = settings.jobs
    if not jobs.url or jobs.broker == "rabbitmq":
        return None
    if jobs.broker == "redis" or urlsplit(jobs.url).scheme in REDIS_SCHEMES:
        return split_namespace(jobs.url)
    return None


def split_namespace(url: str) -> tuple[str, str]:
    """``redis://host/0?namespace=x`` → (``redis://host/0``, ``x``); the default namespace else."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    namespace = next((v for k, v in query if k == "namespace" and v), DEFAULT_NAMESPACE)
    rest = urlencode([(k, v) for k, v in query if k != "namespace"])
    return urlunsplit(parts._replace(query=rest)), namespace


class Broadcast:
    """Messages between the processes of an installation, on ``{namespace}:changes``.

    A message is the sender's origin, a topic and words (production ids): ``send("visibility",
    id)``. Handlers run on the listener's thread and must be quick; a process never hears its
    own messages (it acted on them before sending)."""

    def __init__(self, url: str | None = None, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.url = url
        self.channel = f"{namespace}:{CHANNEL}"
        self.origin = secrets.token_hex(8)
        self.listening = threading.Event()
        self._handlers: dict[str, list[Handler]] = {}
        self._resyncs: list[Callable[[], None]] = []
        self._client: redis.Redis | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # A message could not be sent; no other is tried before _retry_at.
        self._owed = False
        self._retry_at = 0.0

    @classmethod
    def for_settings(cls, settings: Settings) -> Broadcast:
        found = redis_of(settings)
        return cls() if found is None else cls(*found)

    def on(self, topic: str, handler: Handler) -> None:
        """Call ``handler(words)`` for each message on ``topic`` from another process."""
        self._handlers.setdefault(topic, []).append(handler)

    def on_resync(self, handler: Callable[[], None]) -> None:
        """Call ``handler()`` each time the listener is subscribed (again): messages sent while
        it was not may be lost, so everything may have changed."""
        self._resyncs.append(handler)

    def send(self, topic: str, *words: str) -> None:
        """Tell the other processes; never raises (a commit has happened whatever Redis says).

        A message that could not be sent is owed: the next one sent says "everything may have
        changed" instead (:data:`RESYNC`), and so does the listener's thread as soon as Redis
        answers again, so that processes that stayed subscribed meanwhile miss nothing."""
        if self.url is None:
            return
        if self._owed:
            if time.monotonic() < self._retry_at:
                # While Redis is down, commits do not each wait TIMEOUT for it.
                return
            topic, words = RESYNC, ()
        try:
            self._publisher().publish(self.channel, " ".join((self.origin, topic, *words)))
        except redis.RedisError as exc:
            if not self._owed:
                # Once per outage: while it lasts, every commit would say it again.
                log.warning("could not tell the other processes of a change (%s): %s", topic, exc)
            self._owed = True
            self._retry_at = time.monotonic() + RETRY_DELAYS[0]
        else:
            if self._owed:
                log.info("telling the other processes of changes again")
            self._owed = False

    def flush(self) -> None:
        """Send what is owed, if anything."""
        if self._owed:
            self.send(RESYNC)

    def listen(self, wait: float = 1.0) -> None:
        """Start hearing the other processes (idempotent), waiting up to ``wait`` seconds for
        the subscription so that a web process starts up hearing them."""
        if self.url is None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._listen, name="cite-live-broadcast", daemon=True
                )
                self._thread.start()
        self.listening.wait(wait)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=HEARTBEAT + TIMEOUT + 1)
            self._thread = None
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _connect(self) -> redis.Redis:
        assert self.url is not None
        # No retries with back-off inside redis-py: a commit would wait seconds for them.
        return redis.Redis.from_url(
            self.url,
            socket_connect_timeout=TIMEOUT,
            socket_timeout=TIMEOUT,
            retry=Retry(NoBackoff(), 0),
            # Which process a connection is, in Redis's CLIENT LIST.
            client_name=f"cite-live-broadcast-{self.origin}",
        )

    def _publisher(self) -> redis.Redis:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _listen(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self._hear()
                failures = 0
            except (redis.RedisError, OSError) as exc:
                if self.listening.is_set():
                    failures = 0
                if failures == 0:
                    log.warning("not hearing the other processes' changes: %s", exc)
                failures += 1
            self.listening.clear()
            self._stop.wait(RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1] if failures else 0)

    def _hear(self) -> None:
        """One subscription, until it breaks or :meth:`close`."""
        client = self._connect()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            heard = pinged = time.monotonic()
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=HEARTBEAT / 4)
                now = time.monotonic()
                if message is not None:
                    heard = now
                    self._take(message)
                elif now - heard > SILENCE:
                    raise redis.ConnectionError(f"no answer from Redis for {SILENCE:.0f} s")
                if now - pinged > HEARTBEAT:
                    pubsub.ping()
                    pinged = now
                    self.flush()
        finally:
            pubsub.close()
            client.close()

    def _resync(self) -> None:
        for resync in self._resyncs:
            try:
                resync()
            except Exception:
                log.exception("could not take everything as changed")

    def _take(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        if kind == "subscribe":
            self._resync()
            self.listening.set()
            return
        data = message.get("data")
        if kind != "message" or not isinstance(data, bytes):
            return  # a pong
        origin, _, rest = data.decode("utf-8", "replace").partition(" ")
        if origin == self.origin:
            return
        topic, *words = rest.split() or [""]
        if topic == RESYNC:
            self._resync()
            return
        for handler in self._handlers.get(topic, ()):
            try:
                handler(words)
            except Exception:
                log.exception("could not act on the change %s", topic)
