"""The database engine, sessions and migrations (Alembic, batch mode on SQLite)."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# The PostgreSQL advisory lock that says "migrations are running": any 64-bit number, the same
# in every process and every version ("CITELIVE" in ASCII).
MIGRATION_LOCK = 0x434954454C495645

log = logging.getLogger("cite_live.db")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE matched."""
    return int(cast(CursorResult[Any], result).rowcount)


def changed(result: Result[Any]) -> bool:
    """Whether a conditional UPDATE matched its row: that is how one of several racers wins."""
    return rowcount(result) > 0


# What migration 0018 builds by hand for search, and SQLAlchemy's models cannot describe:
# SQLite's FTS5 tables (with their shadow tables) and PostgreSQL's GIN trigram indexes.
SEARCH_INDEXES = frozenset(
    name
    for table in ("productions", "artists")
    for name in (
        f"ix_{table}_search_trgm",
        *(f"{table}_search{suffix}" for suffix in ("", "_data", "_idx", "_docsize", "_config")),
    )
)


def in_models(_object: Any, name: str | None, _type: str, reflected: bool, compare_to: Any) -> bool:
    """Whether Alembic compares a database object with the models (``include_object``): all
    but the search indexes."""
    return not (reflected and compare_to is None and name in SEARCH_INDEXES)


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest migration, one process at a time.

    ``serve`` and ``worker`` migrate as they start, so several processes started together (a
    first start, a rolling upgrade) would otherwise run the same migration at once and all but
    one fail half-way (PostgreSQL: two ``CREATE TYPE`` of the same name). The one holding the
    lock migrates; the others wait for it, then find nothing left to do.
    """
    with migration_lock(engine):
        command.upgrade(alembic_config(engine), "head")


@contextmanager
def migration_lock(engine: Engine) -> Iterator[None]:
    """Hold the database's migration lock: a PostgreSQL advisory lock (released by the server
    if this process dies), or for SQLite an exclusive lock on a file beside the database."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            taken = connection.exec_driver_sql("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK,))
            if not taken.scalar():
                log.info("another process is migrating the database; waiting for it")
                connection.exec_driver_sql("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            # The lock belongs to the connection, not to a transaction: end this one so that
            # it holds nothing else while the migrations run on their own connection.
            connection.commit()
            try:
                yield
            finally:
                connection.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
                connection.commit()
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    descriptor = os.open(f"{database}.migrating", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def refresh_statistics(engine: Engine) -> None:
    """Give SQLite's query planner the table statistics PostgreSQL's autovacuum keeps for its
    own. Without them SQLite guesses, and for "the artists' other sessions" on a production
    page it walked the whole productions table in date order (8 ms for an artist with one
    credit) instead of looking up the artist's credits (0.01 ms): BENCHMARKS.md.

    Every row is read (9 ms for 10,000 productions): statistics from a sample
    (``PRAGMA analysis_limit``) misjudged the long tail of credits, a few artists on hundreds
    of sessions, and sent the artist page's counts through the whole table instead."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA analysis_limit=0")
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
