"""The shared resources of a process (engine, sessions, object store), made once and passed down."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cite_live import search
from cite_live.db import make_engine, make_sessionmaker, migrate
from cite_live.settings import Settings, StorageSettings
from cite_live.storage import LocalStore, ObjectStore, S3Store
from transcoder import Limits, Transcoder, TranscoderSettings

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
        )
    return LocalStore(storage.local_root)


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore

    def transcoder(self, progress: Callable[[float], None] | None = None) -> Transcoder:
        limits = self.settings.limits
        self.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
        transcoder_settings = TranscoderSettings(
            limits=Limits(
                max_bytes=limits.max_bytes,
                max_duration=limits.max_duration,
                max_pixels=limits.max_pixels,
                timeout_factor=limits.timeout_factor,
            ),
            tmp_dir=self.settings.tmp_dir,
        )
        return Transcoder(transcoder_settings, logger=log.getChild("transcoder"), progress=progress)

    def close(self) -> None:
        self.engine.dispose()


def open_services(settings: Settings, *, run_migrations: bool = True) -> Services:
    """Connect to the database (migrating it) and the object store named by ``settings``."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    search.install()
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    if run_migrations:
        migrate(engine)
        # Rows written before search existed (or by hand) are indexed once, here.
        with sessions.begin() as session:
            if search.needs_reindex(session):
                search.reindex(session)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        store=make_store(settings.storage),
    )
