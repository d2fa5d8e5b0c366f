"""Databases for tests: a fresh SQLite file, or a fresh PostgreSQL database per test run."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
# The Redis of the crash tests and of the shared sign-in limit.
REDIS_URL = os.environ.get("CITE_LIVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def postgres_admin_url() -> str | None:
    """The server to make test databases on, or None (skip) when none answers outside CI."""
    url = os.environ.get("CITE_LIVE_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect():
            return url
    except Exception as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI and did not answer at {url}: {exc}")
        return None
    finally:
        engine.dispose()


@contextmanager
def postgres_database(admin_url: str) -> Iterator[str]:
    """A new, empty database on the server of ``admin_url``, in the ``Europe/Paris`` time zone,
    dropped afterwards."""
    name = f"cite_live_test_{secrets.token_hex(4)}"
    admin = create_engine(
        admin_url.replace("postgresql://", "postgresql+psycopg://", 1),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
        # Not UTC, as on a server set up in France: the app must read UTC times whatever the
        # session's zone (tests/test_time_zones.py).
        connection.execute(text(f"ALTER DATABASE \"{name}\" SET TimeZone TO 'Europe/Paris'"))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sqlite_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'cite-live.db'}"


def set_connections(postgres_url: str, allowed: bool) -> None:
    """Let no one (or everyone again) connect to the database, ending its sessions."""
    url = make_url(postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    name = url.database
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(
                text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
            )
            if not allowed:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                )
    finally:
        admin.dispose()
