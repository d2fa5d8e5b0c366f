"""From a capture to a published media version: submit it, transcode it, flip it live.

Publishing is atomic for viewers: a run writes under its own version prefix — segments first,
then media playlists, then the master — and only then does one transaction point the production
at it. A failed run removes what it wrote and never touches a version that already plays.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import select

from cite_live.catalogue import create_production, retitle, set_credits, stored_prefixes
from cite_live.models import Job, MediaVersion, Production, utcnow
from cite_live.services import Services
from cite_live.storage import StorageError, media_key, original_key, version_prefix
from transcoder import InputRefused, MediaInfo, TranscodeError, TranscodeResult

log = logging.getLogger("cite_live.ingest")

Progress = Callable[[float], None]
STORE_UNREACHABLE = "The media store could not be reached; the file will be processed again."
UNEXPECTED = "An unexpected error stopped the processing of this file."


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
    """Register ``path`` as a new production, store its original and queue its transcode."""
    with services.sessions.begin() as session:
        production = create_production(session, title=title, filename=path.name, artists=artists)
        production.original_key = original_key(production.id, path.name)
        job = Job(type="transcode", production_id=production.id)
        session.add(job)
        session.flush()
        production_id, job_id, key = production.id, job.id, production.original_key
    try:
        services.store.put_file(key, path)
    except StorageError:
        delete_production(services, production_id)
        raise
    return production_id, job_id


def run_transcode(services: Services, job_id: int, progress: Progress | None = None) -> None:
    """Run the transcode job ``job_id``; returns quietly when its job or production is gone.

    On error the job and, unless an earlier version still plays, its production are marked
    failed with a sentence for the artist, and the error is raised again for the caller.
    """
    with services.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None or job.production_id is None:
            return
        production = session.get(Production, job.production_id)
        if production is None or production.original_key is None:
            job.state, job.error = "failed", "The production no longer exists."
            return
        job.state, job.attempts, job.error = "running", job.attempts + 1, None
        source_key = production.original_key
        prefix = version_prefix(production.id, f"j{job.id}")

    report = _progress_reporter(services, job_id, progress)
    tmp_root = services.settings.tmp_dir
    tmp_root.mkdir(parents=True, exist_ok=True)
    try:
        with services.store.available_locally(source_key, tmp_root) as source:
            transcoder = services.transcoder(report)
            info = transcoder.probe(source)
            with tempfile.TemporaryDirectory(dir=tmp_root, prefix="hls-") as out_dir:
                result = transcoder.transcode(source, Path(out_dir), info)
                # A crashed earlier attempt of this same job may have left objects behind.
                services.store.delete_prefix(prefix)
                for relative in publish_order(result.files):
                    services.store.put_file(media_key(prefix, relative), Path(out_dir) / relative)
    except InputRefused as exc:
        _fail(services, job_id, prefix, exc.message, refused=True)
        raise
    except TranscodeError as exc:
        _fail(services, job_id, prefix, exc.message)
        raise
    except StorageError:
        _fail(services, job_id, prefix, STORE_UNREACHABLE)
        raise
    except BaseException:
        _fail(services, job_id, prefix, UNEXPECTED)
        raise
    for retired in _flip(services, job_id, prefix, info, result):
        try:
            services.store.delete_prefix(retired)
        except StorageError:
            log.warning("could not remove the retired version %s", retired, exc_info=True)


def _progress_reporter(services: Services, job_id: int, progress: Progress | None) -> Progress:
    last_write = [0.0]

    def report(fraction: float) -> None:
        if progress is not None:
            progress(fraction)
        now = time.monotonic()
        if now - last_write[0] < 1.0:
            return
        last_write[0] = now
        with services.sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is not None:
                job.progress = max(0.0, min(1.0, fraction))

    return report


def _flip(
    services: Services, job_id: int, prefix: str, info: MediaInfo, result: TranscodeResult
) -> list[str]:
    """Point the production at the new version in one transaction; return retired prefixes."""

    def key(relative: str | None) -> str | None:
        return media_key(prefix, relative) if relative else None

    with services.sessions.begin() as session:
        job = session.get(Job, job_id)
        production = session.get(Production, job.production_id) if job else None
        if job is None or production is None:
            # Deleted while we worked: what we wrote belongs to nobody.
            services.store.delete_prefix(prefix)
            return []
        previous = [
            v
            for v in session.scalars(
                select(MediaVersion).where(MediaVersion.production_id == production.id)
            )
            if v.prefix != prefix
        ]
        version = MediaVersion(
            production_id=production.id,
            name=f"j{job.id}",
            state="published",
            prefix=prefix,
            master_key=key(result.master),
            poster_key=key(result.poster),
            cover_key=key(result.cover),
            waveform_key=key(result.waveform),
            storyboard_image_key=key(result.storyboard_image),
            storyboard_vtt_key=key(result.storyboard_vtt),
            download_key=key(result.download),
            ladder=[asdict(r) for r in result.renditions],
            loudness_lufs=result.loudness_lufs,
            duration=result.duration,
        )
        session.add(version)
        session.flush()
        production.current_version_id = version.id
        production.kind = result.kind
        production.duration = result.duration
        production.status = "ready"
        production.error = None
        production.published_at = production.published_at or utcnow()
        if production.title_is_placeholder and info.tags.title:
            retitle(session, production, info.tags.title)
        if not production.credits and info.tags.artists:
            set_credits(session, production, [(name, "performer") for name in info.tags.artists])
        retired = [v.prefix for v in previous]
        for old in previous:
            session.delete(old)
        job.state, job.progress, job.lease_until, job.error = "done", 1.0, None, None
    return retired


def _fail(
    services: Services, job_id: int, prefix: str, message: str, *, refused: bool = False
) -> None:
    try:
        services.store.delete_prefix(prefix)
    except StorageError:
        log.warning("could not clean %s after a failed run", prefix, exc_info=True)
    with services.sessions.begin() as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        job.state, job.error, job.lease_until = "failed", message, None
        production = session.get(Production, job.production_id) if job.production_id else None
        if production is None:
            return
        production.error = message
        if production.current_version_id is None:
            production.status = "failed"
        if refused and production.current_version_id is None and production.original_key:
            # A refused file can never become media: keep its reason, not its bytes.
            try:
                services.store.delete(production.original_key)
            except StorageError:
                log.warning("could not remove the refused original", exc_info=True)
            production.original_key = None


def delete_production(services: Services, production_id: str) -> bool:
    """Remove a production, its records and every object it has in the store."""
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        if production is None:
            return False
        keys = stored_prefixes(production)
        session.delete(production)
    for key in keys:
        try:
            if key.endswith("/"):
                services.store.delete_prefix(key)
            else:
                services.store.delete(key)
        except StorageError:
            log.warning("could not remove %s from the store", key, exc_info=True)
    return True
