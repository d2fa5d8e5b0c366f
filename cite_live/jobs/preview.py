"""Playable while processing: a running transcode's finished segments, published as they come.

As soon as every rendition has its first segment, the job's version prefix holds a master
playlist listing every rung and EVENT media playlists that grow with each segment, and the
production gets a version in state ``preview`` pointing at it (who may play it is the site's
business: ``catalogue.may_play_preview``). The final publish (``ingest._flip``)
rewrites the same playlists as VOD and turns that same row into the published version, so a
player that joined early plays on to the end without changing address.

Order keeps what players see whole: segments and init segments first, then the media playlists
that list them, then the master. Growing playlists are stored ``no-cache`` where objects carry
their own headers (S3), so a CDN asks again rather than serving a stale list.

Every write is made while the job is still ours: the row is added only if this holder still
runs the job, and the caller's lease check stops the transcode when it is lost.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cite_live.jobs.leases import LeaseLost
from cite_live.models import Job, MediaVersion
from cite_live.services import Services
from cite_live.storage import LIVE_PLAYLIST, media_key
from transcoder.live import LiveOutput

log = logging.getLogger("cite_live.preview")

# A version whose playlists still grow: what plays while processing.
PREVIEW = "preview"


def version_name(job_id: int) -> str:
    """The name of a job's media version, preview or published."""
    return f"j{job_id}"


def forget(session: Session, job_id: int) -> None:
    """Remove, in the caller's transaction, the preview row of job ``job_id`` (its objects go
    with its prefix): an attempt that stops leaves nothing that looks playable."""
    job = session.get(Job, job_id)
    if job is None or job.production_id is None:
        return
    session.execute(
        delete(MediaVersion).where(
            MediaVersion.production_id == job.production_id,
            MediaVersion.name == version_name(job_id),
            MediaVersion.state == PREVIEW,
        )
    )


class Preview:
    """Publishes what a running transcode in ``out_dir`` reports, under ``prefix``."""

    def __init__(
        self,
        services: Services,
        job_id: int,
        holder: str,
        prefix: str,
        out_dir: Path,
        *,
        duration: float | None = None,
    ) -> None:
        self.services = services
        self.job_id = job_id
        self.holder = holder
        self.prefix = prefix
        self.out_dir = out_dir
        self.duration = duration
        # Relative paths of the files (not playlists) already in the store.
        self.uploaded: set[str] = set()
        self.announced = False

    def __call__(self, output: LiveOutput) -> None:
        store = self.services.store
        for relative in output.files:
            store.put_file(media_key(self.prefix, relative), self.out_dir / relative)
            self.uploaded.add(relative)
        master = [path for path in output.playlists if "/" not in path]
        media = [path for path in output.playlists if "/" in path]
        for relative in [*sorted(media), *master]:
            data = output.playlists[relative].encode("utf-8")
            store.put_bytes(media_key(self.prefix, relative), data, cache_control=LIVE_PLAYLIST)
        if not self.announced and master:
            self._announce(master[0])

    def _announce(self, master: str) -> None:
        with self.services.sessions.begin() as session:
            job = session.get(Job, self.job_id)
            if job is None or job.state != "running" or job.worker != self.holder:
                raise LeaseLost(self.job_id)
            if job.production_id is None:
                return
            name = version_name(self.job_id)
            existing = session.scalars(
                select(MediaVersion).where(
                    MediaVersion.production_id == job.production_id,
                    MediaVersion.name == name,
                )
            ).first()
            if existing is None:
                session.add(
                    MediaVersion(
                        production_id=job.production_id,
                        name=name,
                        state=PREVIEW,
                        prefix=self.prefix,
                        master_key=media_key(self.prefix, master),
                        duration=self.duration,
                    )
                )
        self.announced = True
        log.info("job %d: playable while processing", self.job_id)

    def leftovers(self, final: list[str]) -> list[str]:
        """Keys published while running that the final output no longer lists (the parts of
        a short tail joined at the end)."""
        kept = set(final)
        return [media_key(self.prefix, path) for path in sorted(self.uploaded - kept)]
