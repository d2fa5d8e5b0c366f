"""Resumable uploads: their records, the partial files they fill, quota, completion and expiry.

The tus protocol lives in :mod:`cite_live.web.tus`; this module knows no HTTP. An upload goes
``receiving`` → ``complete`` (all bytes are here: its production exists) → ``stored`` (the file is
in the store, and its one transcode job is queued); or ``receiving`` → ``terminated`` (cancelled
by its owner, or expired). A new production's file is its original; a replacement's file stays
with its job until the job publishes it (see :mod:`cite_live.jobs.ingest`). Each step is a
conditional UPDATE, so that of two requests (a retried final PATCH, a sweeper in another
process) exactly one takes it.

Where the bytes wait depends on the store. A store that assembles parts (S3) receives them as
they come, as the parts of a multipart upload at the production's original key (reserved when
the upload starts): every part but the last weighs at least 5 MiB, and bytes short of a part
wait in the bucket beside it (``key.part``, as tusd's S3 store does). Any web process may then
take any request: the row says the offset, the parts and who may write. Otherwise (a local
store) partial files live in ``settings.uploads_dir``, one per upload, named by its id; whoever
writes, moves or removes one holds its lock (see :mod:`cite_live.partials`), which works for the
processes of one machine or a shared data dir.

Writing parts, completing, storing and expiring an upload sent in parts, and storing any upload,
are done by whoever holds the lease in its row (``writer`` until ``writer_until``), taken by
one conditional UPDATE: a sweeper in another process never decides about an upload that a
request is storing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cite_live.auth import CurrentUser, can_manage
from cite_live.catalogue import active_job, create_production
from cite_live.db import rowcount
from cite_live.i18n import N_
from cite_live.jobs import ingest, table
from cite_live.models import Credit, Job, Production, Upload, User, aware, new_public_id, utcnow
from cite_live.partials import IDLE_SECONDS, RENEW_SECONDS, PartialFile, UploadBusy
from cite_live.services import Services
from cite_live.settings import Settings
from cite_live.storage import (
    MIN_PART,
    StorageError,
    original_key,
    production_of_original,
)
from cite_live.vocabulary import VISIBILITIES

log = logging.getLogger("cite_live.uploads")

# Terminated uploads answer 410 for a week (a client retrying learns what happened), then go.
KEEP_TERMINATED = timedelta(days=7)
# A row lease outlasts a PATCH's silence (IDLE_SECONDS, then it ends) and a renewal's period.
LEASE = timedelta(seconds=IDLE_SECONDS + 3 * RENEW_SECONDS)
# A long PATCH of an upload sent in parts sends a part every PART_CHECKPOINT bytes: what a
# process that dies mid-request loses, and a 50 GB upload in about 3,200 parts.
PART_CHECKPOINT = 16 * 1024 * 1024
# S3 takes at most 10,000 parts: parts are never smaller than the length over this.
MAX_PARTS = 9000
# S3's highest part number: the numbers past MAX_PARTS are for writers that took an upload
# over from one whose lease ran out (see _reserve_part).
MAX_PART_NUMBER = 10000

EMPTY = N_("This file is empty.")
TOO_LARGE = N_("This file is larger than the %(size)s an upload may be.")
OVER_QUOTA = N_("This upload would exceed your %(size)s storage quota.")
NOT_YOURS = N_("There is no production with this id whose recording you may replace.")
STILL_PROCESSING = N_(
    "This production is still being processed; replace its recording once that is done."
)
LOST = N_("The uploaded file was lost before it could be stored; please upload it again.")


class UploadRefused(Exception):
    """A request about an upload that cannot be done: an HTTP status and a plain sentence
    (a message id, translated where it is shown, with its ``params``)."""

    def __init__(self, status: int, message: str, **params: Any) -> None:
        super().__init__(message % params if params else message)
        self.status = status
        self.message = message
        self.params = params


@dataclass(frozen=True)
class UploadView:
    """What a request needs to know of an upload, read while its session was open."""

    id: str
    user_id: int
    length: int
    offset: int
    state: str
    meta: dict[str, str]
    expires_at: datetime
    production_id: str | None
    # Set when its bytes go to the store as parts (see the module's docstring).
    key: str | None = None

    @property
    def expired(self) -> bool:
        return self.state == "receiving" and self.expires_at <= utcnow()

    @property
    def finished(self) -> bool:
        return self.state in ("complete", "stored")


def _view(upload: Upload) -> UploadView:
    return UploadView(
        id=upload.id,
        user_id=upload.user_id,
        length=upload.length or 0,
        offset=upload.offset,
        state=upload.state,
        meta={str(k): str(v) for k, v in (upload.meta or {}).items()},
        expires_at=aware(upload.expires_at),
        production_id=upload.production_id,
        key=upload.key,
    )


def data_path(settings: Settings, upload_id: str) -> Path:
    return settings.uploads_dir / upload_id


def expiry(settings: Settings) -> datetime:
    return utcnow() + timedelta(hours=settings.uploads.expire_hours)


def get(services: Services, upload_id: str) -> UploadView | None:
    with services.sessions() as session:
        upload = session.get(Upload, upload_id)
        return _view(upload) if upload is not None else None


# --- the partial file ----------------------------------------------------------------------------


def claim(services: Services, upload_id: str) -> tuple[UploadView | None, PartialFile | None]:
    """Lock the partial file of a receiving upload for writing and reconcile its offset.

    Returns the upload as it is once locked, with its file; or the upload (or None) and no
    file when it is not receiving any more. UploadBusy when another request holds the file.
    """
    path = data_path(services.settings, upload_id)
    try:
        partial = PartialFile.open(path)
    except FileNotFoundError:
        view = get(services, upload_id)
        if view is None or view.state != "receiving":
            return view, None
        # The row says receiving but the file is gone (lost with a disk): start it again.
        log.warning("the partial file of upload %s is missing; it restarts from 0", upload_id)
        partial = PartialFile.open(path, create=True)
    try:
        # Read again under the lock: a request that held it may have completed the upload.
        view = get(services, upload_id)
        if view is None or view.state != "receiving" or view.expired:
            partial.close()
            return view, None
        offset = reconcile(services, view, partial)
        return dataclasses.replace(view, offset=offset), partial
    except BaseException:
        partial.close()
        raise


def reconcile(services: Services, view: UploadView, partial: PartialFile) -> int:
    """Bring the file and the recorded offset into agreement; return the offset.

    The rule: offset = min(recorded offset, file size), and the file is cut to it.
    - The recorded offset only ever moves forward after an fsync that covers it, so every
      byte below it reached the disk before anyone was told about it.
    - Bytes past it come from a request that never recorded them: a server killed mid-PATCH,
      or a checksummed chunk not yet verified. After a power cut such bytes may be zeros on
      some filesystems, and an unverified chunk may be wrong, so they are dropped; the client
      sends them again (at most one checkpoint, see cite_live.partials).
    - A file shorter than the recorded offset lost bytes the disk had acknowledged (restored
      from a backup, say): the file is the truth, and the offset goes back to its size.
    """
    size = partial.size()
    if size > view.offset:
        partial.truncate(view.offset)
        return view.offset
    if size < view.offset:
        log.warning("upload %s: file has %d bytes, %d were recorded", view.id, size, view.offset)
        record_offset(services, view.id, size)
    return size


def record_offset(services: Services, upload_id: str, offset: int) -> datetime:
    """Write the durable offset (call only after an fsync covering it); extends the expiry."""
    expires = expiry(services.settings)
    with services.sessions.begin() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.state == "receiving")
            .values(offset=offset, expires_at=expires, updated_at=utcnow())
        )
    return expires


# --- the row lease -------------------------------------------------------------------------------


class LeaseLost(UploadBusy):
    """The request's lease on the upload ran out and someone else took it: it must stop."""


def take_lease(services: Services, upload_id: str, state: str = "receiving") -> str | None:
    """Take the upload's lease if it is in ``state`` and nobody holds one (or one ran out);
    return its token, or None when someone holds it."""
    token = secrets.token_hex(16)
    now = utcnow()
    with services.sessions.begin() as session:
        taken = session.execute(
            update(Upload)
            .where(
                Upload.id == upload_id,
                Upload.state == state,
                Upload.writer.is_(None) | (Upload.writer_until < now),
            )
            .values(writer=token, writer_until=now + LEASE)
        )
        return token if rowcount(taken) == 1 else None


def renew_lease(services: Services, upload_id: str, token: str) -> None:
    """Move the lease's end forward; LeaseLost if it is not ours any more."""
    with services.sessions.begin() as session:
        renewed = session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.writer == token)
            .values(writer_until=utcnow() + LEASE)
        )
        if rowcount(renewed) != 1:
            raise LeaseLost(upload_id)


def release_lease(services: Services, upload_id: str, token: str) -> None:
    with services.sessions.begin() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.writer == token)
            .values(writer=None, writer_until=None)
        )


@contextlib.contextmanager
def holding(services: Services, upload_id: str, token: str) -> Iterator[None]:
    """Keep the lease renewed while the block runs (a 2 GB file on its way into a store takes
    longer than a lease), then release it."""
    done = threading.Event()

    def keep() -> None:
        while not done.wait(RENEW_SECONDS):
            try:
                renew_lease(services, upload_id, token)
            except Exception:
                log.warning("could not renew the lease of upload %s", upload_id, exc_info=True)

    thread = threading.Thread(target=keep, name=f"lease-{upload_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        release_lease(services, upload_id, token)


# --- receiving a body ----------------------------------------------------------------------------


@dataclass
class Receiver:
    """Where one PATCH's body goes: a locked file whose byte 0 is the upload's byte ``origin``,
    how the durable offset is recorded (given in the file's terms), how the request keeps its
    right to write (``renew``, or None), and what to do once the request is over."""

    view: UploadView
    partial: PartialFile
    origin: int
    record: Callable[[int], datetime]
    renew: Callable[[], None] | None
    close: Callable[[], None]
    # Bytes between two records of a long PATCH (None: the partial file's own).
    checkpoint: int | None = None


def receive(services: Services, upload_id: str) -> tuple[UploadView | None, Receiver | None]:
    """Claim a receiving upload for one request's body; like :func:`claim` otherwise (the
    upload and no receiver when it is not receiving, UploadBusy when someone writes)."""
    view = get(services, upload_id)
    if view is not None and view.key is not None and services.store.assembles_parts:
        return _receive_parts(services, view)
    view, partial = claim(services, upload_id)
    if view is None or partial is None:
        return view, None
    record = functools.partial(record_offset, services, upload_id)
    return view, Receiver(view, partial, 0, record, None, partial.close)


def smallest_part(length: int) -> int:
    """The size under which bytes wait as a tail instead of making a part (S3's minimum, or
    more for an upload so long that small chunks would make more parts than S3 takes)."""
    return max(MIN_PART, -(-length // MAX_PARTS))


def tail_key(key: str) -> str:
    """Where the bytes of an upload sent in parts wait until they make a part."""
    return f"{key}.part"


def _receive_parts(
    services: Services, view: UploadView
) -> tuple[UploadView | None, Receiver | None]:
    if view.state != "receiving" or view.expired:
        return view, None
    token = take_lease(services, view.id)
    if token is None:
        raise UploadBusy(view.id)
    try:
        writer = PartsWriter.begin(services, view.id, token)
    except BaseException:
        release_lease(services, view.id, token)
        raise
    if writer is None:
        release_lease(services, view.id, token)
        return get(services, view.id), None
    return writer.view, writer.receiver()


class PartsWriter:
    """The bytes of one PATCH on their way into the parts of an upload, under its lease.

    The body is spooled to a local file (where its checksum is checked, as for a partial file)
    after the upload's waiting tail; at each checkpoint the spool becomes the next part once it
    weighs MIN_PART (or ends the upload), else it goes back to the bucket as the new tail. The
    offset in the row moves only once the store has acknowledged what it counts."""

    def __init__(
        self, services: Services, upload: Upload, token: str, spool: PartialFile, tail: int
    ) -> None:
        assert upload.key is not None and upload.parts_id is not None
        self.services = services
        self.view = _view(upload)
        self.token = token
        self.key, self.parts_id = upload.key, upload.parts_id
        self.parts: list[dict[str, Any]] = list(upload.parts or [])
        self.spool = spool
        # The upload's offset at the spool's byte 0: what the parts hold.
        self.origin = self.spool_from = upload.offset - tail
        self.tail = tail

    @classmethod
    def begin(cls, services: Services, upload_id: str, token: str) -> PartsWriter | None:
        store = services.store
        with services.sessions() as session:
            upload = session.get(Upload, upload_id)
            if upload is None or upload.state != "receiving" or upload.key is None:
                return None
            session.expunge(upload)
        if upload.parts_id is None:
            upload.parts_id = store.start_parts(upload.key)
            _update_parts(services, upload_id, token, parts_id=upload.parts_id)
        settings = services.settings
        settings.uploads_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = settings.uploads_dir / f"{upload_id}.{token}.spool"
        held = sum(int(part["size"]) for part in upload.parts or [])
        tail = upload.offset - held
        if tail > 0:
            try:
                store.download(tail_key(upload.key), path)
            except StorageError:
                log.warning("upload %s: its waiting %d bytes are gone", upload_id, tail)
        spool = PartialFile.open(path, create=True)
        try:
            size = spool.size()
            if size > tail:
                # A writer stopped after sending a longer tail, before recording it.
                spool.truncate(tail)
            elif size < tail:
                # The tail was lost: those bytes come again.
                spool.truncate(0)
                _update_parts(services, upload_id, token, offset=held)
                upload.offset, tail = held, 0
            return cls(services, upload, token, spool, tail)
        except BaseException:
            spool.close()
            path.unlink(missing_ok=True)
            raise

    def receiver(self) -> Receiver:
        renew = functools.partial(renew_lease, self.services, self.view.id, self.token)
        checkpoint = max(PART_CHECKPOINT, smallest_part(self.view.length))
        return Receiver(
            self.view, self.spool, self.origin, self.record, renew, self.close, checkpoint
        )

    def record(self, written: int) -> datetime:
        """Record the upload as holding ``written`` bytes of the spool (synced)."""
        store = self.services.store
        offset = self.origin + written
        size = offset - self.spool_from
        if offset == self.view.length or size >= smallest_part(self.view.length):
            number = _reserve_part(self.services, self.view.id, self.token)
            etag = store.put_part(self.key, self.parts_id, number, self.spool.path)
            self.parts.append({"number": number, "etag": etag, "size": size})
            tail = 0
        else:
            renew_lease(self.services, self.view.id, self.token)
            # A late writer may overwrite the tail too: the next writer checks its size
            # against the row before using it (PartsWriter.begin), and the bytes at a given
            # offset are the same file's whoever sent them.
            store.put_file(tail_key(self.key), self.spool.path)
            tail = size
        expires = _update_parts(
            self.services, self.view.id, self.token, offset=offset, parts=self.parts
        )
        if tail == 0:
            self.spool.truncate(0)
            self.spool_from = offset
            if self.tail:
                store.delete(tail_key(self.key))
        self.tail = tail
        return expires

    def close(self) -> None:
        self.spool.close()
        self.spool.path.unlink(missing_ok=True)
        release_lease(self.services, self.view.id, self.token)


def _reserve_part(services: Services, upload_id: str, token: str) -> int:
    """The next part number, never given before (numbers need not follow one another: the
    parts recorded are the ones assembled); renews the lease. LeaseLost if it is not ours."""
    with services.sessions.begin() as session:
        number = session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.writer == token, Upload.state == "receiving")
            .values(
                part_reserved=func.coalesce(Upload.part_reserved, 0) + 1,
                writer_until=utcnow() + LEASE,
            )
            .returning(Upload.part_reserved)
        ).scalar_one_or_none()
    if number is None:
        raise LeaseLost(upload_id)
    if number > MAX_PART_NUMBER:
        raise StorageError(f"upload {upload_id} has used every part number the store takes")
    return int(number)


def _update_parts(services: Services, upload_id: str, token: str, **values: Any) -> datetime:
    """Write what the lease holder learnt (offset, parts, parts_id) and extend the expiry;
    LeaseLost if the lease is not ours any more."""
    expires = expiry(services.settings)
    with services.sessions.begin() as session:
        done = session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.writer == token, Upload.state == "receiving")
            .values(
                **values,
                expires_at=expires,
                writer_until=utcnow() + LEASE,
                updated_at=utcnow(),
            )
        )
        if rowcount(done) != 1:
            raise LeaseLost(upload_id)
    return expires


def _drop_parts(services: Services, upload_id: str) -> None:
    """Remove what the store holds of an upload that will not be completed (its parts and
    its tail); what the store refuses now, a later sweep removes."""
    with services.sessions() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or upload.key is None:
            return
        key, parts_id = upload.key, upload.parts_id
    try:
        if parts_id is not None:
            services.store.abort_parts(key, parts_id)
        services.store.delete(tail_key(key))
    except StorageError:
        log.warning("could not drop the parts of upload %s yet", upload_id, exc_info=True)
        return
    with services.sessions.begin() as session:
        session.execute(
            update(Upload).where(Upload.id == upload_id).values(parts_id=None, parts=None)
        )


# --- creation ------------------------------------------------------------------------------------


def quota_of(settings: Settings, account: User) -> int:
    return account.quota_bytes if account.quota_bytes is not None else settings.uploads.quota_bytes


def bytes_used(session: Session, user_id: int) -> int:
    """What the store holds for the account, and what it is sending: the originals of its
    productions, the replacements their jobs hold, and its unfinished uploads."""
    return usage(session, [user_id]).get(user_id, 0)


def usage(session: Session, user_ids: Sequence[int] | None = None) -> dict[int, int]:
    """:func:`bytes_used` of each account of ``user_ids`` (every account when None) that
    uses anything, in three grouped queries."""
    owner = Production.owner_id
    queries = [
        select(owner, func.sum(Production.original_bytes))
        .where(owner.is_not(None), Production.original_key.is_not(None))
        .group_by(owner),
        select(owner, func.sum(Job.original_bytes))
        .join(Production, Job.production_id == Production.id)
        .where(owner.is_not(None), Job.original_key.is_not(None))
        .group_by(owner),
        # Complete uploads count until stored: their size moves to what holds them as they are.
        select(Upload.user_id, func.sum(Upload.length))
        .where(
            ((Upload.state == "receiving") & (Upload.expires_at > utcnow()))
            | (Upload.state == "complete")
        )
        .group_by(Upload.user_id),
    ]
    used: dict[int, int] = {}
    for query in queries:
        if user_ids is not None:
            column = query.selected_columns[0]
            query = query.where(column.in_(list(user_ids)))
        for user_id, total in session.execute(query):
            if user_id is not None:
                used[user_id] = used.get(user_id, 0) + int(total or 0)
    return used


def held_for(session: Session, production: Production) -> int:
    """The bytes a production holds in the store that a new recording of it sets free: its
    original once the new one is published, failed replacements once it is stored."""
    held = (production.original_bytes or 0) if production.original_key else 0
    failed = [job for job in table.held_originals(session, production.id) if job.state == "failed"]
    return held + sum(job.original_bytes or 0 for job in failed)


def create(
    services: Services, user: CurrentUser, length: int, meta: Mapping[str, str]
) -> UploadView:
    """A new upload of ``length`` bytes with its empty partial file, after the limits."""
    settings = services.settings
    if length == 0:
        raise UploadRefused(400, EMPTY)
    if length > settings.limits.max_bytes:
        raise UploadRefused(413, TOO_LARGE, size=settings.limits.max_bytes)
    settings.uploads_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    upload_id = secrets.token_hex(16)
    path = data_path(settings, upload_id)
    created = False
    try:
        with services.sessions.begin() as session:
            # Locked (on PostgreSQL) so that two uploads started at once count each other.
            account = session.get(User, user.id, with_for_update=True)
            if account is None:
                raise UploadRefused(401, "Sign in, or send an API token, to do this.")
            replaced = _replaced_production(session, user, meta.get("production"))
            used = bytes_used(session, user.id)
            if replaced is not None:
                # The recording it replaces leaves the store once this one is in.
                used -= held_for(session, replaced)
            quota = quota_of(settings, account)
            if used + length > quota:
                raise UploadRefused(413, OVER_QUOTA, size=quota)
            key = None
            if services.store.assembles_parts:
                # Its bytes go straight to where its original will be.
                key = _key_for(upload_id, meta.get("filename", ""), replaced)
            else:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                os.close(os.open(path, flags, 0o600))
                created = True
            upload = Upload(
                id=upload_id,
                user_id=user.id,
                length=length,
                offset=0,
                filename=meta.get("filename", ""),
                meta=dict(meta),
                state="receiving",
                production_id=replaced.id if replaced is not None else None,
                expires_at=expiry(settings),
                key=key,
            )
            session.add(upload)
            session.flush()
            return _view(upload)
    except BaseException:
        if created:
            path.unlink(missing_ok=True)
        raise


def _key_for(upload_id: str, filename: str, replaced: Production | None) -> str:
    """The key an upload's original will have: a replacement's (see _replacement_key), or that
    of the production it will make, whose id is reserved here."""
    name = filename or "upload"
    if replaced is not None:
        return original_key(replaced.id, f"{upload_id[:8]}-{name}")
    return original_key(new_public_id(), name)


def _replaced_production(
    session: Session, user: CurrentUser, production_id: str | None
) -> Production | None:
    if not production_id:
        return None
    production = session.get(Production, production_id)
    if production is None or not can_manage(user, production):
        raise UploadRefused(404, NOT_YOURS)
    if active_job(session, production.id) is not None:
        raise UploadRefused(409, STILL_PROCESSING)
    return production


# --- completion ----------------------------------------------------------------------------------


def complete(services: Services, upload_id: str) -> bool:
    """Mark the upload complete and make (or point at) its production, in one transaction.

    True for the one request that did it; False when the upload was not receiving (already
    complete: a retried final PATCH) or not full yet.
    """
    with services.sessions.begin() as session:
        taken = session.execute(
            update(Upload)
            .where(
                Upload.id == upload_id,
                Upload.state == "receiving",
                Upload.offset == Upload.length,
            )
            .values(state="complete", completed_at=utcnow(), updated_at=utcnow())
        )
        if rowcount(taken) != 1:
            return False
        upload = session.get(Upload, upload_id)
        assert upload is not None
        # A replacement leaves its production as it is: its job takes the file once stored.
        if upload.production_id is None or session.get(Production, upload.production_id) is None:
            upload.production_id = _new_production(session, upload).id
    return True


def _display_name(upload: Upload) -> str:
    return upload.filename or "upload"


def _new_production(session: Session, upload: Upload) -> Production:
    meta = upload.meta or {}
    filetype = str(meta.get("filetype", ""))
    # A draft, seen by its uploader alone until they publish it; then it takes the visibility
    # they asked for (metadata `visibility`, public by default) or chose since.
    visibility = str(meta.get("visibility", "public"))
    production = create_production(
        session,
        title=str(meta.get("title", "")) or None,
        filename=_display_name(upload),
        kind="audio" if filetype.startswith("audio/") else "video",
        publish_as=visibility if visibility in VISIBILITIES else "public",
        # The id its original's key was given when the upload started (sent in parts).
        production_id=production_of_original(upload.key)
        if upload.key and not meta.get("production")
        else None,
    )
    production.owner_id = upload.user_id
    # Ticked on the upload's card: once published, it plays while it processes.
    production.publish_early = meta.get("publish_early") == "1"
    # Its size counts (see bytes_used) as the upload's until stored, then as the original's.
    production.original_key = upload.key or original_key(production.id, _display_name(upload))
    account = session.get(User, upload.user_id)
    if account is not None and account.artists:
        first = min(account.artists, key=lambda artist: artist.id)
        production.credits.append(Credit(artist_id=first.id, role="performer", position=0))
    return production


def _replaces(upload: Upload, production: Production | None) -> bool:
    """Whether the upload is a new recording of ``production`` (rather than what made it)."""
    return production is not None and (upload.meta or {}).get("production") == production.id


def _replacement_key(upload: Upload, production: Production) -> str:
    # A name of its own, so that the original it replaces (same file name, perhaps) stays
    # whole beside it until the new one is published.
    return upload.key or original_key(production.id, f"{upload.id[:8]}-{_display_name(upload)}")


def store_original(services: Services, upload_id: str) -> int | None:
    """Put a complete upload's bytes into the store as its production's original, then queue
    the production's transcode; return the job id. Safe to call again at any point: a crash
    anywhere leaves the upload ``complete`` and a later call finishes it (see finish_pending).
    None when there was nothing to do here (done already, or being done by another process:
    whoever holds the upload's lease decides, so that nobody calls it lost meanwhile).
    """
    with services.sessions() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or upload.state != "complete":
            return None
        production = session.get(Production, upload.production_id) if upload.production_id else None
        if production is not None and _replaces(upload, production):
            key: str | None = _replacement_key(upload, production)
        else:
            key = production.original_key if production is not None else None
        in_parts = upload.key is not None and services.store.assembles_parts
    token = take_lease(services, upload_id, "complete")
    if token is None:
        return None
    with holding(services, upload_id, token):
        if key is None:
            # Its production was deleted before the file got into the store.
            if _terminate_row(services, upload_id, "complete"):
                _drop_parts(services, upload_id)
                data_path(services.settings, upload_id).unlink(missing_ok=True)
            return None
        put = _finish_parts if in_parts else _move
        if not put(services, upload_id, key):
            return None
        return _queue(services, upload_id, key)


def _move(services: Services, upload_id: str, key: str) -> bool:
    """The partial file into the store (under the upload's lease); whether it is there."""
    path = data_path(services.settings, upload_id)
    try:
        partial = PartialFile.open(path)
    except UploadBusy:
        return False
    except FileNotFoundError:
        if services.store.exists(key):
            return True
        _lost(services, upload_id)
        return False
    try:
        services.store.put_file_move(key, path)
    except StorageError:
        log.warning("could not store upload %s yet; it will be retried", upload_id, exc_info=True)
        return False
    finally:
        partial.close()
    return True


def _finish_parts(services: Services, upload_id: str, key: str) -> bool:
    """Have the store assemble the parts at ``key`` (under the upload's lease): nothing is
    copied here. Whether the original is there."""
    store = services.store
    with services.sessions() as session:
        upload = session.get(Upload, upload_id)
        if upload is None:
            return False
        parts_id, parts = upload.parts_id, list(upload.parts or [])
    try:
        if parts_id is None:
            raise StorageError(f"upload {upload_id} has no parts")
        store.finish_parts(key, parts_id, [(int(p["number"]), str(p["etag"])) for p in parts])
    except StorageError:
        # Done before (and the process stopped before queueing), or the store is away.
        if store.exists(key):
            return True
        if parts_id is not None and store.parts_pending(key, parts_id):
            log.warning("could not assemble upload %s yet; retried later", upload_id, exc_info=True)
            return False
        _lost(services, upload_id)
        return False
    with contextlib.suppress(StorageError):
        store.delete(tail_key(key))
    return True


def _queue(services: Services, upload_id: str, key: str) -> int | None:
    with services.sessions.begin() as session:
        taken = session.execute(
            update(Upload)
            .where(Upload.id == upload_id, Upload.state == "complete")
            .values(state="stored", updated_at=utcnow())
        )
        if rowcount(taken) != 1:
            return None
        upload = session.get(Upload, upload_id)
        production = session.get(Production, upload.production_id) if upload else None
        released: list[str] = []
        if upload is None or production is None:
            job_id = None
        else:
            # The job is made only now that its original is in the store: a queued job can
            # always run, whoever (a sweeper re-sending messages) picks it up.
            original = None
            if _replaces(upload, production):
                size = upload.length or 0
                original = table.Original(key, _display_name(upload), size)
                # Replacements that failed before are set aside for this newer one.
                released = table.release_failed_originals(session, production.id)
            else:
                production.original_bytes = upload.length
            job = table.queue_transcode(session, production, upload_id=upload.id, original=original)
            job_id = job.id
    if job_id is None:
        services.store.delete(key)
        return None
    ingest.remove_from_store(services, released)
    table.enqueue(services, job_id)
    return job_id


def _lost(services: Services, upload_id: str) -> None:
    log.error("upload %s is complete but its file is gone", upload_id)
    with services.sessions.begin() as session:
        upload = session.get(Upload, upload_id)
        if upload is None or upload.state != "complete":
            return
        upload.state = "terminated"
        production = session.get(Production, upload.production_id) if upload.production_id else None
        # A replacement lost leaves its production as it was.
        if production is None or _replaces(upload, production):
            return
        if production.current_version_id is None:
            production.status, production.error = "failed", LOST
            production.original_key = production.original_bytes = None


def finish_pending(services: Services) -> int:
    """Finish what a crash (or a store outage) left behind: uploads whose every byte was
    recorded but which were not completed, and complete uploads whose original is not in the
    store yet. A maintenance task calls this; returns how many originals were stored."""
    with services.sessions() as session:
        full = list(
            session.scalars(
                select(Upload.id).where(Upload.state == "receiving", Upload.offset == Upload.length)
            )
        )
    for upload_id in full:
        view = get(services, upload_id)
        if view is not None and view.key is not None:
            # Sent in parts: the row is the whole truth, and its lease says who may act.
            token = take_lease(services, upload_id)
            if token is not None:
                try:
                    complete(services, upload_id)
                finally:
                    release_lease(services, upload_id, token)
            continue
        try:
            _, partial = claim(services, upload_id)
        except UploadBusy:
            continue
        if partial is not None:
            try:
                complete(services, upload_id)
            finally:
                partial.close()
    with services.sessions() as session:
        pending = list(session.scalars(select(Upload.id).where(Upload.state == "complete")))
    stored = 0
    for upload_id in pending:
        try:
            stored += store_original(services, upload_id) is not None
        except StorageError:
            log.warning("could not store upload %s yet; retried later", upload_id, exc_info=True)
    return stored


# --- termination and expiry ----------------------------------------------------------------------


def terminate(services: Services, upload_id: str, *, expired_by: datetime | None = None) -> bool:
    """Cancel a receiving upload (only if it expired by ``expired_by``, when given) and remove
    its file (or its parts); False if it was not receiving. UploadBusy while a request
    writes to it."""
    view = get(services, upload_id)
    if view is not None and view.key is not None:
        token = take_lease(services, upload_id)
        if token is None:
            raise UploadBusy(upload_id)
        try:
            if not _terminate_row(services, upload_id, "receiving", expired_by=expired_by):
                return False
        finally:
            release_lease(services, upload_id, token)
        _drop_parts(services, upload_id)
        return True
    path = data_path(services.settings, upload_id)
    try:
        partial: PartialFile | None = PartialFile.open(path)
    except FileNotFoundError:
        partial = None
    try:
        if not _terminate_row(services, upload_id, "receiving", expired_by=expired_by):
            return False
        path.unlink(missing_ok=True)
        return True
    finally:
        if partial is not None:
            partial.close()


def _terminate_row(
    services: Services, upload_id: str, state: str, *, expired_by: datetime | None = None
) -> bool:
    where = [Upload.id == upload_id, Upload.state == state]
    if expired_by is not None:
        where.append(Upload.expires_at < expired_by)
    with services.sessions.begin() as session:
        taken = session.execute(
            update(Upload).where(*where).values(state="terminated", updated_at=utcnow())
        )
        return rowcount(taken) == 1


def sweep_expired(services: Services) -> int:
    """Remove expired unfinished uploads and their files; return how many went.

    Also forgets terminated uploads after a week and removes stray files that no upload owns.
    An upload being written to right now is left for the next sweep (its PATCH extends it).
    """
    now = utcnow()
    with services.sessions() as session:
        expired = list(
            session.scalars(
                select(Upload.id).where(Upload.state == "receiving", Upload.expires_at < now)
            )
        )
    removed = 0
    for upload_id in expired:
        try:
            if terminate(services, upload_id, expired_by=now):
                removed += 1
        except UploadBusy:
            continue
    with services.sessions.begin() as session:
        for upload in session.scalars(
            select(Upload).where(
                Upload.state == "terminated",
                Upload.updated_at < now - KEEP_TERMINATED,
                # Kept while its parts are still to be dropped (below).
                Upload.parts_id.is_(None),
            )
        ):
            session.delete(upload)
        undropped = list(
            session.scalars(
                select(Upload.id).where(Upload.state == "terminated", Upload.parts_id.is_not(None))
            )
        )
    for upload_id in undropped:
        _drop_parts(services, upload_id)
    _remove_strays(services)
    return removed


def _remove_strays(services: Services) -> None:
    """Files of the uploads folder that belong to no unfinished upload, once old enough that no
    upload being created right now can own them."""
    folder = services.settings.uploads_dir
    if not folder.is_dir():
        return
    cutoff = time.time() - services.settings.uploads.expire_hours * 3600
    with services.sessions() as session:
        live = set(
            session.scalars(select(Upload.id).where(Upload.state.in_(("receiving", "complete"))))
        )
    for entry in os.scandir(folder):
        try:
            if entry.name not in live and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
        except FileNotFoundError:
            continue
