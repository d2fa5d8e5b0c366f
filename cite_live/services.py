"""The shared resources of a process (engine, sessions, object store), made once and passed down."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cite_live import search
from cite_live.access import MediaAccess
from cite_live.broadcast import Broadcast
from cite_live.db import make_engine, make_sessionmaker, migrate, refresh_statistics
from cite_live.mail import LogMailer, Mailer, Outbox, mailer_for
from cite_live.metrics import Metrics
from cite_live.pagecache import CatalogueChanges
from cite_live.settings import Settings, StorageSettings
from cite_live.storage import LocalStore, ObjectStore, S3Store
from transcoder import Limits, Transcoder, TranscoderSettings
from transcoder.live import LiveCallback

log = logging.getLogger("cite_live")


def make_store(storage: StorageSettings) -> ObjectStore:
    if storage.backend == "s3":
        return S3Store(
            storage.s3_bucket,
            prefix=storage.s3_prefix,
            endpoint_url=storage.s3_endpoint_url,
            region=storage.s3_region,
            addressing_style=storage.s3_addressing_style,
            public_base_url=storage.s3_public_base_url,
            browser_endpoint_url=storage.s3_browser_endpoint_url,
        )
    return LocalStore(storage.local_root)


class Queue(Protocol):
    """Where queued jobs are handed to workers (see cite_live.jobs.doorbell)."""

    def enqueue(self, job_id: int) -> None: ...


def secret_key_for(settings: Settings) -> str:
    """``auth.secret_key``, or the key generated once into the data dir and kept there."""
    if settings.auth.secret_key:
        return settings.auth.secret_key
    path: Path = settings.data_dir / "secret_key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(48)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Written aside, then linked into place: of two processes starting at once, one key wins
    # whole and both read it.
    draft = path.with_name(f".secret_key.{os.getpid()}")
    draft.write_text(key + "\n", encoding="ascii")
    draft.chmod(0o600)
    try:
        os.link(draft, path)
    except FileExistsError:
        key = path.read_text(encoding="ascii").strip()
    finally:
        draft.unlink()
    return key


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    # Signs session cookies and private media links.
    secret_key: str
    # Who may fetch which media: the public route's visibility checks, the store's private list.
    access: MediaAccess
    # None where no broker is attached (e.g. `cite-live ingest`): queued jobs then wait for the
    # sweeper of a running server or worker (cite_live.jobs.sweeper).
    queue: Queue | None = None
    # Bumped by commits that change what pages show; the page cache drops older pages.
    changes: CatalogueChanges = field(default_factory=CatalogueChanges)
    # Where the site's messages go: the SMTP server of mail.smtp_url, else the log.
    mailer: Mailer = field(default_factory=LogMailer)
    # Work left to do after an answer (a new-password message), off the request.
    outbox: Outbox = field(default_factory=Outbox)
    # What this process tells the installation's other processes, and hears from them.
    broadcast: Broadcast = field(default_factory=Broadcast)
    # This process's counters, and the jobs table's figures at scrape time (cite_live.metrics).
    metrics: Metrics = field(default_factory=Metrics)

    def transcoder(
        self,
        progress: Callable[[float], None] | None = None,
        *,
        tmp_dir: Path | None = None,
        live: LiveCallback | None = None,
    ) -> Transcoder:
        """A transcoder whose temp files go to ``tmp_dir`` (a job's own folder), by default the
        data dir's temp dir; ``live`` gets what may be published while it runs."""
        limits = self.settings.limits
        tmp_dir = tmp_dir or self.settings.tmp_dir
        tmp_dir.mkdir(parents=True, exist_ok=True)
        transcoder_settings = TranscoderSettings(
            limits=Limits(
                max_bytes=limits.max_bytes,
                max_duration=limits.max_duration,
                max_pixels=limits.max_pixels,
                timeout_factor=limits.timeout_factor,
            ),
            tmp_dir=tmp_dir,
        )
        if self.settings.jobs.chunk_seconds > 0:
            transcoder_settings = replace(
                transcoder_settings, chunk_seconds=self.settings.jobs.chunk_seconds
            )
        return Transcoder(
            transcoder_settings, logger=log.getChild("transcoder"), progress=progress, live=live
        )

    def close(self) -> None:
        # Messages on their way are sent before the database goes.
        self.outbox.close()
        self.broadcast.close()
        self.engine.dispose()


def open_services(settings: Settings, *, run_migrations: bool = True) -> Services:
    """Connect to the database (migrating it) and the object store named by ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    # Before anything is written, the reindex below included.
    search.install(sessions)
    if run_migrations:
        migrate(engine)
        # Rows written before search existed (or by hand) are indexed once, here.
        with sessions.begin() as session:
            if search.needs_reindex(session):
                search.reindex(session)
        refresh_statistics(engine)
    store = make_store(settings.storage)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=store,
        secret_key=secret_key_for(settings),
        access=MediaAccess(sessions, store),
        mailer=mailer_for(settings),
        broadcast=Broadcast.for_settings(settings),
    )
    # Every process tells the others what it commits; web processes also listen (web.app).
    services.changes.watch(sessions, services.broadcast)
    services.access.watch(services.broadcast)
    services.metrics.watch_jobs(sessions)
    return services
