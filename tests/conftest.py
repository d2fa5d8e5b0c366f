"""Session fixtures shared by the whole suite: generated test media and a real S3 server."""

from __future__ import annotations

import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media import FIXTURES, make
from tests.s3server import S3Server

pytest_plugins = ["tests.app_fixtures", "tests.account_fixtures", "tests.mailbox"]
ROOT = Path(__file__).resolve().parent.parent


def pytest_sessionstart(session: pytest.Session) -> None:
    """Never test a stale build: scripts/build makes web/static/dist/ again when its sources
    changed (a quick stamp check otherwise), once at a time across xdist workers."""
    with (ROOT / "web/static/.build-lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([ROOT / "scripts" / "build"], check=True)


class MediaFactory:
    """`media("name")` → path of a generated file, built on first use and shared afterwards.

    The files are shared by every test of the session: read them, never modify them (copy to
    `tmp_path` first)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __call__(self, name: str) -> Path:
        return make(name, self.directory)

    @property
    def names(self) -> list[str]:
        return sorted(FIXTURES)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> MediaFactory:
    base = tmp_path_factory.getbasetemp()
    # Under pytest-xdist each worker has its own basetemp; their common parent lets workers
    # share what one of them built (make() locks per fixture).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    return MediaFactory(base / "media")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS server for the session, with the standard AWS variables pointing at it."""
    server = S3Server.start(tmp_path_factory.mktemp("seaweedfs"))
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in server.env().items():
                patch.setenv(name, value)
            yield server
    finally:
        server.stop()
