"""Who may fetch a production's media, and the addresses that let them.

Public and unlisted productions play from public addresses: ``/media/{key}`` of the local
store, or the bucket's (or its CDN's) URL. A private production's media is never at an address
someone could guess, and the addresses its owner gets stop working after
``settings.signed_url_seconds``:

- Local store. The public route refuses every key under ``productions/{id}/`` of a private
  production (:meth:`MediaAccess.refuses_public`). The media is served at
  ``/media/private/{token}/{key}``, where the token signs the production id and an expiry with
  the site's secret key. The token is in the *path*, not the query string, on purpose: HLS
  playlists name what they contain by relative URIs ("720p/index.m3u8", "init.mp4",
  "seg_00001.m4s") and players resolve those against the playlist's own URL, so the token
  carries through master → media playlists → init → segments with no rewriting at all, where a
  query string would be lost at the first relative reference.
- S3 (a store that hands out its own addresses). The bucket policy denies anonymous reads under
  each private production's prefix (and under ``originals/``, which is never public), see
  ``S3Store.set_private_prefixes``. Playlists are served by the app at the same private route,
  fetched from the bucket and rewritten per request: playlist URIs stay relative (they come
  back to this route), init segments and media segments become presigned GET URLs that expire
  with the token. Images and the waveform are presigned directly.

A production still processing plays its preview (cite_live.catalogue.preview_version, playlists
that grow) before it is finished. When its artist publishes it early and it is not private, from
public addresses: the public route serves the keys under the preview's prefix (and no other key
of the production), its playlists ``no-cache``, since they change every few seconds. Otherwise
through signed links, for its managers alone (:func:`viewer_link`). A ready production's preview
(a replacement's, still being written) is nobody's: the public route refuses its keys while the
version it replaces plays on.

A token that is forged, expired or shown with a key of another production gets a 404, exactly
like a missing file: never a 403 that would confirm that something private is there. The player
treats 403, 404 and 410 alike: it asks the API for fresh addresses and carries on.

Visibility changes take effect at once: a listener on the process's sessions notices a
production whose visibility changed (or that was created private, or deleted) and, once the
transaction commits, drops the route's cached answer for it and marks the store's private
prefixes out of date (:meth:`MediaAccess.watch`). The sweeper's thread, woken by the mark,
pushes them to the store moments later (:meth:`MediaAccess.push`): never the request that made
the change, which S3 round trips would hold (and the event loop with it, in an async handler).
The other processes of the installation hear of it through Redis (cite_live.broadcast) and
drop their cached answers as soon as the message arrives. Changes they do not hear of (no
Redis, Redis unreachable, raw SQL) reach the public route within ``VISIBILITY_TTL``; the store
hears of changes made elsewhere at the next pass of the web process's sweeper.
"""

from __future__ import annotations

import enum
import logging
import posixpath
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from cite_live.broadcast import Broadcast
from cite_live.catalogue import preview_is_public
from cite_live.models import MediaVersion, Production
from cite_live.storage import (
    ORIGINALS,
    ObjectStore,
    StorageError,
    production_of_key,
    production_prefix,
    validate_key,
)
from cite_live.web.urls import PRIVATE_MEDIA_PREFIX, Urls

if TYPE_CHECKING:
    from cite_live.services import Services

log = logging.getLogger("cite_live.access")

TOKEN_SALT = "media"  # noqa: S105 - a salt naming the signer's purpose, not a secret
# How long the public media route trusts what it read of a production's visibility. Segments
# come by the dozen per listener; one lookup per second per production keeps the database out
# of the way. A change is seen at once by this process, and by the others when their Redis
# message arrives (cite_live.broadcast); without one, after at most this long.
VISIBILITY_TTL = 1.0
# What the other processes are told, with the ids of the productions whose visibility changed.
TOPIC = "visibility"
# Served by the app for private productions on S3, because their content names other objects.
_REWRITTEN = (".m3u8", ".vtt")
_URI_ATTRIBUTE = re.compile(r'URI="([^"]*)"')
_SESSION_KEY = "cite_live.access.touched"

KeyLink = Callable[[str], str]


@dataclass(frozen=True)
class MediaGrant:
    production_id: str
    expires: int

    def seconds_left(self, now: float | None = None) -> int:
        return max(0, int(self.expires - (time.time() if now is None else now)))


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=TOKEN_SALT)


def sign(secret_key: str, production_id: str, expires: int) -> str:
    """A token granting the media of ``production_id`` until ``expires`` (Unix time)."""
    return str(_serializer(secret_key).dumps([production_id, int(expires)]))


def verify(secret_key: str, token: str, *, now: float | None = None) -> MediaGrant | None:
    """The grant of a genuine, unexpired token; None for anything else."""
    if len(token) > 500:
        return None
    try:
        payload = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or not isinstance(payload[0], str)
        or not isinstance(payload[1], int)
    ):
        return None
    grant = MediaGrant(payload[0], payload[1])
    if grant.expires <= (time.time() if now is None else now):
        return None
    return grant


def grant_covers(grant: MediaGrant, key: str) -> bool:
    try:
        validate_key(key)
    except StorageError:
        return False
    return production_of_key(key) == grant.production_id


# --- addresses -----------------------------------------------------------------------------------


def private_cache_control(seconds: float) -> str:
    """Browsers may keep a segment while its link lives; shared caches never."""
    return f"private, max-age={max(0, int(seconds))}"


def media_link(services: Services, production: Production, site_url: str) -> KeyLink:
    """Key → the URL a player fetches it from: public for public and unlisted productions,
    signed (local store) or presigned (S3) for private ones. Call it only for a viewer who may
    see the production (``auth.can_view``)."""
    store = services.store
    site = site_url.rstrip("/")
    if production.visibility != "private":
        return lambda key: store.public_url(key, site)
    seconds = services.settings.signed_url_seconds
    grant = MediaGrant(production.id, int(time.time() + seconds))
    return grant_link(services, grant, site)


def manager_link(services: Services, production: Production, site_url: str) -> KeyLink:
    """:func:`media_link` for the pages of the production's managers (the studio, the admin
    list): signed also while it processes or has failed, which the public route refuses as it
    refuses private media (:meth:`MediaAccess.refuses_public`), so that a cover chosen before
    the recording is ready shows at once. Call it only for a viewer who may manage it."""
    if production.visibility != "private" and production.status == "ready":
        return media_link(services, production, site_url)
    seconds = services.settings.signed_url_seconds
    grant = MediaGrant(production.id, int(time.time() + seconds))
    return grant_link(services, grant, site_url)


def viewer_link(
    services: Services, production: Production, site_url: str, preview: MediaVersion | None
) -> KeyLink:
    """:func:`media_link`, and for the ``preview`` of a processing production (shown to a
    viewer who may play it: catalogue.playable_preview) the addresses its viewers share: public
    when its artist publishes it early and it is not private (:meth:`MediaAccess.refuses_public`
    lets them through), else signed for its managers, as :func:`manager_link` signs them."""
    if preview is None or preview_is_public(production):
        return media_link(services, production, site_url)
    return manager_link(services, production, site_url)


def grant_link(services: Services, grant: MediaGrant, site_url: str) -> KeyLink:
    store = services.store
    token = sign(services.secret_key, grant.production_id, grant.expires)
    urls = Urls(site_url)

    def through_app(key: str) -> str:
        return urls.absolute(urls.private_media(token, validate_key(key)))

    if store.serves_own_bytes:
        return through_app

    def link(key: str) -> str:
        if key.lower().endswith(_REWRITTEN):
            return through_app(key)
        left = max(1, grant.seconds_left())
        return store.presigned_url(key, left, cache_control=private_cache_control(left))

    return link


def _resolve(base_key: str, uri: str) -> str | None:
    """The store key a relative URI of the object ``base_key`` names; None when it names
    something else (an absolute URL, a data: URI) or leaves the store."""
    if not uri or "://" in uri or uri.startswith(("/", "data:")):
        return None
    path, _, _fragment = uri.partition("#")
    path = path.partition("?")[0]
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(base_key), path))
    try:
        return validate_key(resolved)
    except StorageError:
        return None


def rewrite_playlist(text: str, key: str, link: KeyLink) -> str:
    """``text`` of the playlist at ``key`` with each init segment and media segment at ``link``;
    playlists stay relative, so that a player asks this route for them too."""

    def target(uri: str) -> str:
        resolved = _resolve(key, uri)
        if resolved is None or resolved.lower().endswith(".m3u8"):
            return uri
        return link(resolved)

    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            line = _URI_ATTRIBUTE.sub(lambda m: f'URI="{target(m.group(1))}"', line)
        elif stripped:
            line = target(stripped)
        lines.append(line)
    return "\n".join(lines) + "\n"


def rewrite_storyboard(text: str, key: str, link: KeyLink) -> str:
    """A storyboard's WebVTT with each cue's image at ``link`` (its #xywh fragment kept)."""
    lines = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and stripped != "WEBVTT" and "-->" not in stripped:
            path, hash_mark, fragment = stripped.partition("#")
            resolved = _resolve(key, path)
            if resolved is not None:
                line = link(resolved) + hash_mark + fragment
        lines.append(line)
    return "\n".join(lines) + "\n"


# --- the public route's check, and visibility changes --------------------------------------------


class MediaAccess:
    """Per open ``Services`` (``services.access``): what the public media route knows of
    visibilities, and keeping the store's private prefixes in step with the database."""

    def __init__(self, sessions: sessionmaker[Session], store: ObjectStore) -> None:
        self._sessions = sessions
        self._store = store
        self._cache: dict[str, tuple[float, _Rule]] = {}
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        # Set when the store's private prefixes may be behind the database.
        self._dirty = threading.Event()
        self._wakers: list[Callable[[], None]] = []
        self._broadcast: Broadcast | None = None

    def watch(self, broadcast: Broadcast | None = None) -> None:
        """Notice, in every session of ours, productions whose visibility changes (or that are
        made private, or deleted); once their transaction commits, drop what the public route
        trusted of them, update the store, and tell the other processes (``broadcast``), which
        drop what they trusted of them too."""
        event.listen(self._sessions, "after_flush", _after_flush)
        event.listen(self._sessions, "after_commit", self._after_commit)
        if broadcast is not None:
            self._broadcast = broadcast
            broadcast.on(TOPIC, lambda ids: self.forget(set(ids)))
            broadcast.on_resync(self.forget_all)

    def known_verdict(self, key: str, *, now: float | None = None) -> Verdict | None:
        """What the public route does with ``key`` when it needs no database query (the event
        loop may ask); None when it does."""
        production_id = production_of_key(key)
        if production_id is None:
            return Verdict.SERVE
        moment = time.monotonic() if now is None else now
        with self._lock:
            cached = self._cache.get(production_id)
        if cached is not None and cached[0] > moment:
            return cached[1].verdict(key)
        return None

    def verdict(self, key: str, *, now: float | None = None) -> Verdict:
        """What the public route does with ``key``: refuse it (as if it did not exist) when it
        belongs to a production that is private, processing, failed (or gone); serve it as a
        preview's (playlists that change every few seconds) when it lies under the preview of
        a processing production its artist publishes early; else serve it."""
        moment = time.monotonic() if now is None else now
        known = self.known_verdict(key, now=moment)
        if known is not None:
            return known
        production_id = production_of_key(key)
        assert production_id is not None  # known_verdict answers for keys of no production
        with self._sessions() as session:
            row = session.execute(
                select(Production.visibility, Production.status, Production.publish_early).where(
                    Production.id == production_id
                )
            ).first()
            previews: tuple[str, ...] = ()
            if (
                row is not None
                and row.visibility != "private"
                and (row.status == "ready" or (row.status == "processing" and row.publish_early))
            ):
                previews = tuple(
                    session.scalars(
                        select(MediaVersion.prefix).where(
                            MediaVersion.production_id == production_id,
                            MediaVersion.state == "preview",
                        )
                    )
                )
        rule = _rule(row, previews)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[production_id] = (moment + VISIBILITY_TTL, rule)
        return rule.verdict(key)

    def known_refusal(self, key: str, *, now: float | None = None) -> bool | None:
        """:meth:`refuses_public` when it needs no database query; None when it does."""
        known = self.known_verdict(key, now=now)
        return None if known is None else known is Verdict.REFUSE

    def refuses_public(self, key: str, *, now: float | None = None) -> bool:
        """True when the public route must answer for ``key`` as if it did not exist."""
        return self.verdict(key, now=now) is Verdict.REFUSE

    def forget(self, production_ids: set[str]) -> None:
        with self._lock:
            for production_id in production_ids:
                self._cache.pop(production_id, None)

    def forget_all(self) -> None:
        with self._lock:
            self._cache.clear()

    def sync(self) -> bool:
        """Bring the store's private prefixes to what the database says (S3 only); False when
        it failed, which is logged: until a later sync succeeds, private media on S3 stays
        readable by whoever has its key. It waits on the store: call it from a worker thread.

        Each writer reads the database again after writing and writes once more if it changed
        meanwhile: whichever process writes last has then written what the database holds."""
        if self._store.serves_own_bytes:
            # The site's own route checks each request against the database: nothing to push.
            return True
        try:
            with self._sync_lock:
                written: list[str] | None = None
                for _attempt in range(5):
                    wanted = private_prefixes(self._sessions)
                    if wanted == written:
                        return True
                    self._store.set_private_prefixes(wanted)
                    written = wanted
                log.warning("the private productions kept changing while the store was updated")
                return True
        except StorageError:
            log.exception("could not update which media the store keeps private")
            return False

    def mark_dirty(self) -> None:
        """Note that the store's private prefixes may be behind the database, and wake whoever
        pushes them (:meth:`when_dirty`)."""
        self._dirty.set()
        for wake in list(self._wakers):
            wake()

    def when_dirty(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (quickly, without waiting on anything) at each :meth:`mark_dirty`;
        returns what stops it."""
        self._wakers.append(wake)
        return lambda: self._wakers.remove(wake)

    def push(self) -> None:
        """:meth:`sync` if a change is waiting; a failed one waits for the next push."""
        if self._dirty.is_set():
            self._dirty.clear()
            if not self.sync():
                self._dirty.set()

    def _after_commit(self, session: Session) -> None:
        touched: set[str] = session.info.pop(_SESSION_KEY, set())
        if touched:
            self.forget(touched)
            self.mark_dirty()
            if self._broadcast is not None:
                self._broadcast.send(TOPIC, *sorted(touched))


class Verdict(enum.Enum):
    """What the public media route does with a key."""

    REFUSE = "refuse"
    SERVE = "serve"
    # A key of a preview its artist publishes early: served, its playlists never kept long.
    PREVIEW = "preview"


@dataclass(frozen=True)
class _Rule:
    """What the public route knows of one production's keys: all refused, or served but for
    the preview prefixes (``closed``), or only those (``only``)."""

    refused: bool
    previews: tuple[str, ...] = ()
    only_previews: bool = False

    def verdict(self, key: str) -> Verdict:
        if self.refused:
            return Verdict.REFUSE
        under = any(key.startswith(prefix.rstrip("/") + "/") for prefix in self.previews)
        if self.only_previews:
            return Verdict.PREVIEW if under else Verdict.REFUSE
        return Verdict.REFUSE if under else Verdict.SERVE


def _rule(row: Any, previews: tuple[str, ...]) -> _Rule:
    """The public route's rule for a production (``row``: its visibility, status and
    publish_early; None when it is gone) whose versions in preview are at ``previews``.

    Processing and failed productions are their managers' alone, as private ones are (on S3
    their id, which their keys hold, has never been shown to anyone else); but the preview of
    one its artist publishes early is everyone's who may see it (catalogue.may_play_preview).
    A ready production's preview (a replacement's, being written) is nobody's: the version it
    replaces plays on until it is finished."""
    if row is None or row.visibility == "private":
        return _Rule(refused=True)
    if row.status == "ready":
        return _Rule(refused=False, previews=previews)
    if row.status == "processing" and row.publish_early and previews:
        return _Rule(refused=False, previews=previews, only_previews=True)
    return _Rule(refused=True)


def private_prefixes(sessions: sessionmaker[Session]) -> list[str]:
    """Prefixes no anonymous reader may fetch: the originals, and each private production."""
    with sessions() as session:
        ids = session.scalars(
            select(Production.id).where(Production.visibility == "private").order_by(Production.id)
        ).all()
    return [ORIGINALS, *(production_prefix(production_id) for production_id in ids)]


def _after_flush(session: Session, _context: Any) -> None:
    touched: set[str] = session.info.setdefault(_SESSION_KEY, set())
    for obj in session.new:
        if isinstance(obj, Production) and obj.visibility == "private":
            touched.add(obj.id)
    for obj in session.dirty:
        if isinstance(obj, Production) and any(
            # Publishing early opens a preview to the public route at once, in this process.
            inspect(obj).attrs[name].history.has_changes()
            for name in ("visibility", "publish_early")
        ):
            touched.add(obj.id)
    for obj in session.deleted:
        if isinstance(obj, Production):
            touched.add(obj.id)


_TOKEN_IN_PATH = re.compile(f"({re.escape(PRIVATE_MEDIA_PREFIX)})[^/\\s]+")


class RedactMediaTokens(logging.Filter):
    """Keeps media tokens out of access logs (uvicorn logs every path it serves): a log file
    read by more people than the site's owners must not hand out private media."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_PATH.sub(r"\1…", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        if isinstance(record.msg, str) and PRIVATE_MEDIA_PREFIX in record.msg:
            record.msg = _TOKEN_IN_PATH.sub(r"\1…", record.msg)
        return True


def install() -> None:
    """Keep media tokens out of the access log (idempotent). Called by the server that writes
    that log (cite_live.server), not on import: importing a module changes nothing."""
    access_log = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactMediaTokens) for f in access_log.filters):
        access_log.addFilter(RedactMediaTokens())
