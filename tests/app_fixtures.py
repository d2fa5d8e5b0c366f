"""Fixtures for the application: settings on a temp data dir, open services, a live server."""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import uvicorn
from starlette.testclient import TestClient

from cite_live.server import server_config
from cite_live.services import Services, open_services
from cite_live.settings import Settings, load_settings
from cite_live.web.app import create_app
from tests.dbs import REDIS_URL, postgres_admin_url, postgres_database, sqlite_url


def make_settings(data_dir: Path, database_url: str, **env: str) -> Settings:
    environ = {
        "CITE_LIVE_DATA_DIR": str(data_dir),
        "CITE_LIVE_DATABASE_URL": database_url,
        # Tests look at pages right after changing records; the cache has tests of its own.
        "CITE_LIVE_SITE_PAGE_CACHE_SECONDS": "0",
        # The in-process client's host, besides the loopback names live servers are reached at.
        "CITE_LIVE_SITE_ALLOWED_HOSTS": "testserver,localhost,127.0.0.1,::1",
        # Password hashing at its production cost would spend seconds per test that logs in.
        "CITE_LIVE_AUTH_ARGON2_MEMORY_KIB": "1024",
        "CITE_LIVE_AUTH_ARGON2_TIME_COST": "1",
        **env,
    }
    return load_settings(environ)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data", sqlite_url(tmp_path))


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    opened = open_services(settings)
    yield opened
    opened.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped after the test."""
    admin = postgres_admin_url()
    if admin is None:
        pytest.skip("no PostgreSQL server answers (set CITE_LIVE_TEST_POSTGRES_URL)")
    with postgres_database(admin) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test using this runs once on SQLite and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        yield request.getfixturevalue("postgres_url")


def new_client(services: Services) -> TestClient:
    """An in-process client of the app; a server error answers 500 as it would in production
    instead of raising into the test."""
    app = create_app(services.settings, services)
    return TestClient(app, base_url="http://testserver", raise_server_exceptions=False)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    """The app's client; modules needing another base URL or raising errors define their own."""
    with new_client(services) as c:
        yield c


@pytest.fixture
def other_client(services: Services) -> Iterator[TestClient]:
    """A second visitor, with cookies of their own."""
    with new_client(services) as c:
        yield c


@dataclass
class LiveServer:
    url: str
    services: Services


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(services: Services) -> Iterator[str]:
    """The app on a real uvicorn server bound to 127.0.0.1 (its URL), configured as
    `cite-live serve` configures it, stopped afterwards."""
    port = free_port()
    config = server_config(
        create_app(services.settings, services),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(services: Services) -> Iterator[LiveServer]:
    """The app on a real uvicorn server bound to 127.0.0.1, stopped after the test."""
    with serving(services) as url:
        yield LiveServer(url, services)


@pytest.fixture
def redis_namespace() -> Iterator[str]:
    """A Redis namespace of its own for the test, emptied afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        client.close()
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI and did not answer at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis server answers at {REDIS_URL}")
    namespace = f"cite-live-test-{secrets.token_hex(4)}"
    try:
        yield namespace
    finally:
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)
        client.close()
