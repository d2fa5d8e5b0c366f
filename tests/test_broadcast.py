"""Two web processes of one installation (one PostgreSQL database, one Redis namespace): what
one of them changes, the other one shows at once, whatever it kept of it.

Each "process" here is a Services and an app of its own, as `cite-live serve` opens them.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from sqlalchemy import select
from starlette.testclient import TestClient

from cite_live import access
from cite_live.broadcast import Broadcast
from cite_live.jobs.ingest import delete_production
from cite_live.models import Production
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.web.app import create_app
from tests.account_fixtures import PASSWORD, login, make_user
from tests.app_fixtures import make_settings
from tests.dbs import REDIS_URL, sqlite_url
from tests.test_api import publish_fake
from tests.test_auth import post_login

# Long enough that a page kept by one process outlives the test unless it is told.
CACHE_SECONDS = 60.0
# How soon the other process shows a change.
WITHIN = 1.0


@dataclass
class Process:
    services: Services
    client: TestClient


@contextmanager
def open_process(settings: Settings) -> Iterator[Process]:
    services = open_services(settings)
    app = create_app(replace(settings, page_cache_seconds=CACHE_SECONDS), services)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Process(services, client)
    finally:
        services.close()


@pytest.fixture
def shared_settings(tmp_path: Path, postgres_url: str, redis_namespace: str) -> Settings:
    """One installation: one database, one data dir, one Redis namespace."""
    return make_settings(
        tmp_path / "data",
        postgres_url,
        CITE_LIVE_JOBS_BROKER="redis",
        CITE_LIVE_JOBS_URL=f"{REDIS_URL}?namespace={redis_namespace}",
    )


@pytest.fixture
def first(shared_settings: Settings) -> Iterator[Process]:
    with open_process(shared_settings) as process:
        yield process


@pytest.fixture
def second(shared_settings: Settings) -> Iterator[Process]:
    with open_process(shared_settings) as process:
        yield process


def soon(get: Callable[[], httpx.Response], status: int) -> httpx.Response:
    """The first answer with ``status``, asking again for at most WITHIN seconds."""
    deadline = time.monotonic() + WITHIN
    while (answer := get()).status_code != status:
        assert time.monotonic() < deadline, f"still {answer.status_code} after {WITHIN} s"
        time.sleep(0.02)
    return answer


def slug_of(services: Services, production_id: str) -> str:
    with services.sessions() as session:
        return session.scalars(select(Production.slug).where(Production.id == production_id)).one()


def cached_on(process: Process, path: str) -> None:
    process.client.get(path)
    assert process.client.get(path).headers["x-cache"] == "hit"


def set_visibility(services: Services, production_id: str, visibility: str) -> None:
    with services.sessions.begin() as session:
        production = session.get(Production, production_id)
        assert production is not None
        production.visibility = visibility


@pytest.mark.postgres
@pytest.mark.parametrize("change", ["private", "unlisted", "deleted"])
def test_a_production_taken_away_on_one_process_is_gone_from_the_others_cache(
    first: Process, second: Process, change: str
) -> None:
    production_id = publish_fake(first.services, "Quatuor Zéphyr")
    page = f"/productions/{slug_of(first.services, production_id)}"
    api = f"/api/v1/productions/{production_id}"
    assert "Quatuor Zéphyr" in second.client.get("/").text
    for path in (page, api, "/"):
        cached_on(second, path)
    if change == "deleted":
        delete_production(first.services, production_id)
    else:
        set_visibility(first.services, production_id, change)
    assert soon(lambda: second.client.get(page), 404).status_code == 404
    if change != "unlisted":
        soon(lambda: second.client.get(api), 404)
    home = second.client.get("/")
    assert home.status_code == 200 and "Quatuor Zéphyr" not in home.text


@pytest.mark.postgres
def test_a_version_published_by_a_worker_shows_on_the_web_processes(
    shared_settings: Settings, second: Process
) -> None:
    """A worker (or a command) listens to nobody, but tells what it commits."""
    cached_on(second, "/")
    worker = open_services(shared_settings)
    try:
        publish_fake(worker, "Quatuor Zéphyr")
    finally:
        worker.close()
    deadline = time.monotonic() + WITHIN
    while "Quatuor Zéphyr" not in second.client.get("/").text:
        assert time.monotonic() < deadline, "the new production is not on the home page"
        time.sleep(0.02)


@pytest.mark.postgres
def test_an_admin_unpublishing_on_one_process_takes_the_page_off_the_others(
    first: Process, second: Process
) -> None:
    make_user(first.services, "admin@example.org", "admin")
    production_id = publish_fake(first.services, "Concert")
    page = f"/productions/{slug_of(first.services, production_id)}"
    cached_on(second, page)
    csrf = login(first.client, "admin@example.org")
    unpublished = first.client.post(
        f"/admin/productions/{production_id}/unpublish",
        data={"csrf_token": csrf},
        follow_redirects=False,
    )
    assert unpublished.status_code == 303
    soon(lambda: second.client.get(page), 404)


@pytest.mark.postgres
def test_media_made_private_on_one_process_is_refused_by_the_others(
    first: Process, second: Process, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the other process read of the visibility would otherwise be trusted for a minute.
    monkeypatch.setattr(access, "VISIBILITY_TTL", 60.0)
    production_id = publish_fake(first.services, "Concert")
    segment = f"/media/productions/{production_id}/j1/a128/seg_00001.m4s"
    assert second.client.get(segment).status_code == 200
    set_visibility(first.services, production_id, "private")
    soon(lambda: second.client.get(segment), 404)
    # And back: made public again, it plays again there.
    set_visibility(first.services, production_id, "public")
    soon(lambda: second.client.get(segment), 200)


@pytest.mark.postgres
def test_failed_sign_ins_on_two_processes_add_up(first: Process, second: Process) -> None:
    make_user(first.services, "nora@example.org")
    attempts = first.services.settings.auth.login_attempts
    for n in range(attempts):
        process = (first, second)[n % 2]
        assert post_login(process.client, "nora@example.org", f"guess {n}").status_code == 400
    for process in (first, second):
        assert post_login(process.client, "nora@example.org", PASSWORD).status_code == 429


def test_a_redis_named_by_jobs_url_is_shared_whatever_the_broker(
    tmp_path: Path, redis_namespace: str
) -> None:
    """An installation whose jobs run in its web processes (embedded) but that names a Redis
    shares its sign-in counts through it all the same."""
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_JOBS_URL=f"{REDIS_URL}?namespace={redis_namespace}",
    )
    assert settings.jobs.broker == "embedded"
    with ExitStack() as stack:
        first, second = (stack.enter_context(open_process(settings)) for _ in range(2))
        make_user(first.services, "nora@example.org")
        for n in range(settings.auth.login_attempts):
            process = (first, second)[n % 2]
            post_login(process.client, "nora@example.org", f"guess {n}")
        assert post_login(second.client, "nora@example.org", PASSWORD).status_code == 429
    with redis.Redis.from_url(REDIS_URL) as client:
        assert list(client.scan_iter(f"{redis_namespace}:*"))


@pytest.mark.postgres
def test_a_process_cut_off_from_redis_drops_what_it_kept_once_it_hears_again(
    first: Process, second: Process
) -> None:
    """Messages sent while a listener is cut off are lost: back, it takes everything as
    changed."""
    production_id = publish_fake(first.services, "Quatuor Zéphyr")
    page = f"/productions/{slug_of(first.services, production_id)}"
    cached_on(second, page)
    with redis.Redis.from_url(REDIS_URL) as client:
        name = f"cite-live-broadcast-{second.services.broadcast.origin}"
        ids = [c["id"] for c in client.client_list() if c["name"] == name and c["sub"] != "0"]
        assert len(ids) == 1
        # Cut off: what the first process says now is lost for the second one.
        assert client.client_kill_filter(_id=ids[0]) == 1
    set_visibility(first.services, production_id, "private")
    deadline = time.monotonic() + 10
    while second.client.get(page).status_code != 404:
        assert time.monotonic() < deadline, "the page of a change missed while cut off stays"
        time.sleep(0.05)
    assert second.services.broadcast.listening.wait(5)


def test_with_redis_down_pages_are_served_and_changes_made_here_show(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_JOBS_BROKER="redis",
        # Nothing listens on port 1.
        CITE_LIVE_JOBS_URL="redis://127.0.0.1:1/0",
    )
    with open_process(settings) as process:
        production_id = publish_fake(process.services, "Quatuor Zéphyr")
        page = f"/productions/{slug_of(process.services, production_id)}"
        cached_on(process, page)
        assert not process.services.broadcast.listening.is_set()
        # The commit's message cannot be sent; the commit stands, and this process drops the
        # page it kept.
        set_visibility(process.services, production_id, "private")
        assert process.client.get(page).status_code == 404
        home = process.client.get("/")
        assert home.status_code == 200 and "Quatuor Zéphyr" not in home.text


class Cuttable:
    """A TCP relay to Redis on a free loopback port, which can cut its connections: a publisher
    losing Redis while the listeners keep it."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.cut = threading.Event()
        self.open: list[socket.socket] = []
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                inbound, _ = self.server.accept()
            except OSError:
                return
            if self.cut.is_set():
                inbound.close()
                continue
            outbound = socket.create_connection(self.target)
            self.open += [inbound, outbound]
            self.sockets += [inbound, outbound]
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def sever(self) -> None:
        self.cut.set()
        for end in self.open:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self.open.clear()

    def close(self) -> None:
        self.sever()
        self.server.close()
        for end in self.sockets:
            end.close()


def test_a_change_that_could_not_be_told_is_told_as_everything_changed(
    redis_namespace: str,
) -> None:
    relay = Cuttable(urlsplit(REDIS_URL).port or 6379)
    sender = Broadcast(f"redis://127.0.0.1:{relay.port}/0", redis_namespace)
    listener = Broadcast(REDIS_URL, redis_namespace)
    heard: list[str] = []
    listener.on("visibility", lambda ids: heard.append(" ".join(ids)))
    listener.on_resync(lambda: heard.append("everything"))
    try:
        listener.listen(wait=5)
        sender.send("visibility", "a")
        relay.sever()
        sender.send("visibility", "b")  # lost: the listener never hears of b
        relay.cut.clear()
        deadline = time.monotonic() + 5
        while heard != ["everything", "a", "everything"]:
            assert time.monotonic() < deadline, heard
            sender.send("visibility", "c")  # says "everything" the first time it goes through
            time.sleep(0.1)
    finally:
        sender.close()
        listener.close()
        relay.close()
