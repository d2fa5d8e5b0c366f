"""From a capture to a published media version: queue it, claim it, transcode it, flip it live.

Publishing is atomic for viewers: a run writes under its job's own version prefix — segments
first, then media playlists, then the master — and only then does one transaction point the
production at it. A failed run removes what it wrote and never touches a version that already plays.

A replacement (a new recording uploaded for an existing production) changes nothing of its
production until it is published: its original is kept on its job, apart from the original of
the version that plays, and the publishing transaction switches it in; only then is the old
original removed. A refused replacement takes its own original with it and leaves the rest.

The jobs table, not the broker, decides who runs what. A worker runs a job only once it has
claimed it with a conditional UPDATE (queued → running, one more attempt, a lease); a heartbeat
renews the lease while ffmpeg works, and every later write is conditional on still holding it. So
a duplicate message, a second sweeper or a worker that lost its lease can never publish twice. A
failure the file causes (refused, or the transcoder gave up on it) is final; an outage (the store,
anything unexpected) puts the job back in the queue until its attempts are spent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from cite_live.catalogue import (
    active_job,
    announce_language,
    create_production,
    retitle,
    set_credits,
    stored_prefixes,
)
from cite_live.i18n import N_
from cite_live.jobs import preview, scratch, segmented, table
from cite_live.jobs.leases import Lease, LeaseLost, holder_name
from cite_live.models import Job, MediaVersion, Production, utcnow
from cite_live.services import Services
from cite_live.storage import StorageError, media_key, original_key, version_prefix
from transcoder import InputRefused, MediaInfo, TranscodeError, TranscodeResult
from transcoder.live import LiveOutput

log = logging.getLogger("cite_live.ingest")

Progress = Callable[[float], None]
# Sentences for the artist, kept in the jobs table and translated where they are shown.
STORE_UNREACHABLE = N_("The media store could not be reached; the file will be processed again.")
STORE_FAILED = N_("The media store could not be reached, so this file was not processed.")
UNEXPECTED_RETRY = N_(
    "An unexpected error interrupted the processing of this file; it will be processed again."
)
UNEXPECTED = N_("An unexpected error stopped the processing of this file.")
ORIGINAL_MISSING = N_("The original file is no longer in the media store; upload it again.")


def publish_order(paths: Iterable[str]) -> list[str]:
    """Segments and artwork first, then media playlists, then the master playlist last."""

    def rank(path: str) -> int:
        if path.endswith(".m3u8"):
            return 2 if "/" not in path else 1
        return 0

    return sorted(paths, key=lambda p: (rank(p), p))


def submit_file(
    services: Services, path: Path, *, title: str | None = None, artists: Sequence[str] = ()
) -> tuple[str, int]:
    """Register ``path`` as a new production, store its original and create its job.

    The job is reserved for the calling thread, which runs it next with ``run_transcode``: a
    server's sweeper leaves it alone while the reservation lasts (renewed during the upload).
    """
    holder = holder_name()
    with services.sessions.begin() as session:
        production = create_production(session, title=title, filename=path.name, artists=artists)
        production.original_key = original_key(production.id, path.name)
        production.original_bytes = path.stat().st_size
        job = table.queue_transcode(
            session, production, reserved_for=holder, settings=services.settings
        )
        production_id, job_id, key = production.id, job.id, production.original_key
    try:
        with Lease(services, job_id, holder):
            services.store.put_file(key, path)
    except StorageError:
        delete_production(services, production_id)
        raise
    return production_id, job_id


def run_job(services: Services, job_id: int) -> None:
    """Run the job ``job_id`` a worker was handed: a transcode, or a chunk of one."""
    with services.sessions() as session:
        kind = session.scalars(select(Job.type).where(Job.id == job_id)).first()
    if kind == segmented.CHUNK:
        segmented.run_chunk(services, job_id)
    elif kind is not None:
        run_transcode(services, job_id)


def run_transcode(services: Services, job_id: int, progress: Progress | None = None) -> None:
    """Claim the job ``job_id`` and run it; return quietly when it is gone or taken.

    A file the transcoder refuses or gives up on fails the job at once; the store being
    unreachable or anything unexpected puts it back in the queue while attempts remain. Either
    way the production keeps any version that already plays, and the error is raised again.
    """
    holder = holder_name()
    if not table.claim(services, job_id, holder):
        log.debug("job %d is not queued or is held by another worker", job_id)
        return
    with services.sessions() as session:
        job = session.get(Job, job_id)
        production = (
            session.get(Production, job.production_id) if job and job.production_id else None
        )
        if job is None:
            return
        attempt, attempts = job.attempts, job.max_attempts
        source_key = job.original_key or (production.original_key if production else None)
        prefix = version_prefix(production.id, f"j{job_id}") if production else None
        language = production.language if production else None
    if source_key is None or prefix is None:
        fail(services, job_id, ORIGINAL_MISSING, holder=holder, prefix=prefix)
        return
    log.info("job %d: attempt %d of %d started by %s", job_id, attempt, attempts, holder)
    started = time.monotonic()
    lease = Lease(services, job_id, holder)
    # How the attempt ended, for the metrics: done, lease_lost, failed, error (retried while
    # attempts remain) or interrupted.
    outcome = "interrupted"
    try:
        _attempt_transcode(services, job_id, holder, lease, source_key, prefix, language, progress)
        outcome = "done"
    except LeaseLost:
        outcome = "lease_lost"
        log.warning("job %d: lease lost; another worker runs it now", job_id)
    except (InputRefused, TranscodeError):
        outcome = "failed"
        raise
    except Exception:
        outcome = "error"
        raise
    finally:
        services.metrics.job_seconds.labels("transcode", outcome).observe(
            time.monotonic() - started
        )
    if outcome == "done":
        log.info("job %d: done in %.1f s", job_id, time.monotonic() - started)


def _attempt_transcode(
    services: Services,
    job_id: int,
    holder: str,
    lease: Lease,
    source_key: str,
    prefix: str,
    language: str | None,
    progress: Progress | None,
) -> None:
    """One attempt, the job claimed by ``holder``: transcode, publish, flip; on error, fail
    the job or put it back in the queue, and raise."""
    try:
        with lease, scratch.for_job(services.settings.tmp_dir, job_id, holder) as work:
            report = table.progress_reporter(services, job_id, holder, progress)
            with services.store.available_locally(source_key, work) as source:
                out_dir = work / "hls"
                out_dir.mkdir()
                live = preview.Preview(services, job_id, holder, prefix, out_dir)
                transcoder = services.transcoder(report, tmp_dir=work, live=_checked(lease, live))
                info = transcoder.probe(source)
                live.duration = info.duration
                chunked = segmented.applies(services, info, transcoder)
                # A crashed earlier attempt of this same job may have left objects and a
                # preview; the segments of chunks done before are kept (see ``segmented``).
                _clear_attempt(services, job_id, None if chunked else prefix)
                if chunked:
                    result, leftovers = segmented.Segmented(
                        services, job_id, holder, lease, source, info, work, prefix, language,
                        live, report,
                    ).run()  # fmt: skip
                else:
                    result = transcoder.transcode(source, out_dir, info, language=language)
                    leftovers = live.leftovers(result.files)
            lease.check()
            for relative in publish_order(result.files):
                # Already published: what the preview sent is final (bar the playlists, which
                # are rewritten as VOD), and a segmented transcode publishes its own.
                if relative in live.uploaded or chunked:
                    continue
                services.store.put_file(media_key(prefix, relative), out_dir / relative)
        # Done means done: nothing of the attempt is left on disk once the job says so.
        retired = _flip(services, job_id, holder, prefix, info, result)
        retired += leftovers
    except InputRefused as exc:
        fail(services, job_id, exc.message, holder=holder, prefix=prefix, refused=True)
        raise
    except TranscodeError as exc:
        fail(services, job_id, exc.message, holder=holder, prefix=prefix)
        raise
    except StorageError:
        if _is_missing(services, source_key):
            fail(services, job_id, ORIGINAL_MISSING, holder=holder, prefix=prefix)
        else:
            _retry_or_fail(services, lease, prefix, STORE_UNREACHABLE, STORE_FAILED)
        raise
    except Exception:
        _retry_or_fail(services, lease, prefix, UNEXPECTED_RETRY, UNEXPECTED)
        raise
    except BaseException:
        # Interrupted by its operator (Ctrl-C on `cite-live ingest`): over, not to be retried.
        fail(services, job_id, UNEXPECTED, holder=holder, prefix=prefix)
        raise
    # Retired versions, and the original the new one replaced: nothing plays them any more.
    remove_from_store(services, retired)


def _clear_attempt(services: Services, job_id: int, prefix: str | None) -> None:
    with services.sessions.begin() as session:
        preview.forget(session, job_id)
    if prefix is not None:
        services.store.delete_prefix(prefix)


def _checked(lease: Lease, publish: preview.Preview) -> Callable[[LiveOutput], None]:
    """Publish what the transcode reports, only while the lease is still ours."""

    def live(output: LiveOutput) -> None:
        lease.check()
        publish(output)

    return live


def _flip(
    services: Services,
    job_id: int,
    holder: str,
    prefix: str,
    info: MediaInfo,
    result: TranscodeResult,
) -> list[str]:
    """Point the production at the new version (and a replacement's original) in one
    transaction; return the prefixes and keys it retired, to remove from the store."""

    def key(relative: str | None) -> str | None:
        return media_key(prefix, relative) if relative else None

    with services.sessions.begin() as session:
        if not table.complete(session, job_id, holder):
            raise LeaseLost(job_id)
        job = session.get(Job, job_id)
        production = session.get(Production, job.production_id) if job else None
        if job is None or production is None:
            # Deleted while we worked: what we wrote belongs to nobody.
            services.store.delete_prefix(prefix)
            return []
        versions = list(
            session.scalars(select(MediaVersion).where(MediaVersion.production_id == production.id))
        )
        previous = [v for v in versions if v.prefix != prefix]
        # The preview that played while processing becomes the version: same row, same prefix.
        version = next(
            (v for v in versions if v.prefix == prefix),
            MediaVersion(production_id=production.id, name=preview.version_name(job.id)),
        )
        version.state = "published"
        version.prefix = prefix
        version.master_key = key(result.master)
        version.poster_key = key(result.poster)
        version.cover_key = key(result.cover)
        version.waveform_key = key(result.waveform)
        version.storyboard_image_key = key(result.storyboard_image)
        version.storyboard_vtt_key = key(result.storyboard_vtt)
        version.download_key = key(result.download)
        version.ladder = [asdict(r) for r in result.renditions]
        version.loudness_lufs = result.loudness_lufs
        version.duration = result.duration
        session.add(version)
        session.flush()
        production.current_version_id = version.id
        production.kind = result.kind
        production.duration = result.duration
        production.status = "ready"
        production.error = None
        if production.publish_as is None:
            # A draft is published when its artist says so (cite_live.catalogue.publish).
            production.published_at = production.published_at or utcnow()
        if production.title_is_placeholder and info.tags.title:
            retitle(production, info.tags.title)
        if not production.credits and info.tags.artists:
            set_credits(session, production, [(name, "performer") for name in info.tags.artists])
        if not previous and info.audio_language:
            # The first file says what the production is sung or spoken in (its form may say
            # otherwise later); a replacement's master says what the production already does.
            production.language = info.audio_language
        elif version.master_key and result.kind == "video":
            announce_language(services.store, version.master_key, production.language)
        retired = [v.prefix for v in previous]
        for old in previous:
            session.delete(old)
        if job.original_key is not None and job.original_bytes is not None:
            # The replacement's original becomes the production's, counted there from now on.
            if production.original_key and production.original_key != job.original_key:
                retired.append(production.original_key)
            production.original_key = job.original_key
            production.original_filename = job.original_filename
            production.original_bytes = job.original_bytes
            table.let_go_of_original(job)
        retired += table.release_failed_originals(session, production.id)
    return retired


def _is_missing(services: Services, key: str) -> bool:
    """True when the store answers and the object is not there (not when it does not answer)."""
    try:
        return not services.store.exists(key)
    except StorageError:
        return False


def _retry_or_fail(services: Services, lease: Lease, prefix: str, retry: str, final: str) -> None:
    """Back to the queue (the next sweep sends it again) while attempts remain, else failed."""
    job_id, holder = lease.job_id, lease.holder
    # Still ours (renewed just now): no other attempt can be writing there yet.
    if lease.renew():
        with services.sessions.begin() as session:
            preview.forget(session, job_id)
        try:
            # The segments of chunks done are kept for the next attempt.
            if not segmented.has_chunks(services, job_id):
                services.store.delete_prefix(prefix)
        except StorageError:
            log.warning("could not clean %s; the next attempt will", prefix, exc_info=True)
    requeued = table.requeue(services, job_id, retry, holder=holder)
    if requeued:
        log.warning("job %d: will be tried again: %s", job_id, retry, exc_info=True)
        return
    fail(services, job_id, final, holder=holder, prefix=prefix)


def fail(
    services: Services,
    job_id: int,
    message: str,
    *,
    holder: str | None = None,
    expired_by: datetime | None = None,
    prefix: str | None = None,
    refused: bool = False,
) -> bool:
    """Fail the running job of ``holder`` (or one whose lease ran out by ``expired_by`` with its
    attempts spent, see ``table.fail``) and its production if nothing of it plays, then remove
    what its attempts wrote under ``prefix`` (by default its version prefix), and the file
    itself when it was refused. False when the job was not in that state."""
    doomed_original = None
    with services.sessions.begin() as session:
        job = table.fail(session, job_id, message, holder=holder, expired_by=expired_by)
        if job is None:
            return False
        services.metrics.job_failures.labels(job.type).inc()
        preview.forget(session, job_id)
        segmented.stop(session, job_id)
        production = session.get(Production, job.production_id) if job.production_id else None
        # A refused file can never become media: keep its reason, not its bytes.
        if job.original_key is not None:
            if refused:
                doomed_original = table.let_go_of_original(job)
        elif refused and production is not None and production.current_version_id is None:
            doomed_original = production.original_key
            production.original_key = production.original_bytes = None
        if production is not None:
            fail_production(production, message)
            prefix = prefix or version_prefix(production.id, f"j{job_id}")
    log.info("job %d: failed: %s", job_id, message)
    remove_from_store(services, [key for key in (prefix, doomed_original) if key is not None])
    return True


def fail_production(production: Production, message: str) -> None:
    """Show why its latest job failed, on a production with nothing to play. One that plays is
    left exactly as it was: the failed job tells its owner why (see production_status)."""
    if production.current_version_id is None:
        production.status, production.error = "failed", message


def retry(services: Services, production_id: str) -> int | None:
    """Queue a new transcode of a production whose last job failed; return the job's id.

    None when it cannot be retried: gone, busy, not failed, or its original is no longer in
    the store. A failed replacement is retried with its own original, which the new job takes
    over. The caller sends the job with ``table.enqueue``.
    """
    with services.sessions() as session:
        production = session.get(Production, production_id)
        if production is None or active_job(session, production_id) is not None:
            return None
        latest = session.scalars(
            select(Job).where(Job.production_id == production_id).order_by(Job.id.desc())
        ).first()
        if production.status != "failed" and (latest is None or latest.state != "failed"):
            return None
        replacement = (
            latest is not None and latest.state == "failed" and latest.original_key is not None
        )
        if latest is not None and replacement:
            if latest.original_bytes is None:
                return None  # refused, and removed
            key: str | None = latest.original_key
        else:
            key = production.original_key
        latest_id = latest.id if latest is not None else None
    if key is None:
        return None
    try:
        if not services.store.exists(key):
            return None
    except StorageError:
        return None
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        if production is None or active_job(session, production_id) is not None:
            return None
        original = None
        if replacement:
            failed = session.get(Job, latest_id)
            if failed is None or failed.original_key != key or failed.original_bytes is None:
                return None
            original = table.Original(key, failed.original_filename or "", failed.original_bytes)
            table.let_go_of_original(failed)
        job = table.queue_transcode(session, production, original=original)
        if production.current_version_id is None:
            production.status = "processing"
            production.error = None
        return job.id


def delete_production(services: Services, production_id: str) -> bool:
    """Remove a production, its records and every object it has in the store."""
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        if production is None:
            return False
        keys = stored_prefixes(production)
        held = table.held_originals(session, production_id)
        keys += [job.original_key for job in held if job.original_key is not None]
        session.delete(production)
    remove_from_store(services, keys)
    return True


def remove_from_store(services: Services, keys: Iterable[str]) -> None:
    """Delete each key, or each prefix (ending in "/"), going on past failures: they are logged,
    and what stays behind belongs to nobody."""
    for key in keys:
        try:
            if key.endswith("/"):
                services.store.delete_prefix(key)
            else:
                services.store.delete(key)
        except StorageError:
            log.warning("could not remove %s from the store", key, exc_info=True)
