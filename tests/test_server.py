"""`cite-live serve` as deployed, from outside: hosts, forwarded headers and request heads."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cite_live.server import MAX_HEAD_BYTES, MAX_HEADERS
from tests.test_seed import first_answer, start_serve, stop_serve

# What a client reaching the server directly sends to pass for a proxy it does not have.
FORGED = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "live.example",
    "X-Forwarded-For": "198.51.100.7",
}


@dataclass
class Served:
    url: str
    log: Path

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://").rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def access_line(self, marker: str) -> str:
        """The access log's line of the request whose query holds ``marker``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log.read_text(encoding="utf-8", errors="replace")
            lines = [line for line in text.splitlines() if marker in line]
            if lines:
                return lines[0]
            time.sleep(0.05)
        raise AssertionError(f"no access log line holds {marker}")


@contextmanager
def cite_live_serve(directory: Path, host: str, **env: str) -> Iterator[Served]:
    """`cite-live serve --host HOST` in a process of its own, demo seeding off."""
    log = directory / "serve.log"
    process, url = start_serve(directory / "data", log, host=host, **env)
    try:
        first_answer(url, process, log)
        yield Served(url, log)
    finally:
        stop_serve(process)


@pytest.fixture(scope="module")
def direct(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Reached directly, bound to 127.0.0.2; uvicorn's own variable that would trust every
    forwarded header is set, and must change nothing."""
    directory = tmp_path_factory.mktemp("direct")
    with cite_live_serve(directory, "127.0.0.2", FORWARDED_ALLOW_IPS="*") as served:
        yield served


@pytest.fixture(scope="module")
def behind_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Behind a proxy on this machine, answering as live.example."""
    directory = tmp_path_factory.mktemp("proxied")
    with cite_live_serve(
        directory,
        "127.0.0.1",
        CITE_LIVE_SITE_TRUSTED_PROXIES="127.0.0.1",
        CITE_LIVE_SITE_ALLOWED_HOSTS="live.example",
    ) as served:
        yield served


def self_link(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    start = response.text.index('rel="self"')
    tag = response.text[response.text.rindex("<", 0, start) : response.text.index(">", start)]
    return tag.split('href="', 1)[1].split('"', 1)[0]


# --- hosts and forwarded headers -----------------------------------------------------------------


def test_the_bind_address_is_answered_and_any_other_host_refused(direct: Served) -> None:
    assert self_link(httpx.get(f"{direct.url}/feed.atom")) == f"{direct.url}/feed.atom"
    for host in ("attacker.example", f"127.0.0.3:{direct.port}", f"{direct.host}:1@attacker"):
        response = httpx.get(f"{direct.url}/feed.atom", headers={"Host": host})
        assert response.status_code == 400, host
        assert "site.allowed_hosts" in response.text


def test_forwarded_headers_are_not_believed_by_default(direct: Served) -> None:
    response = httpx.get(f"{direct.url}/feed.atom?probe=direct", headers=FORGED)
    assert self_link(response) == f"{direct.url}/feed.atom"
    # The client address (the login limit's key) is the peer's, not the one it claims.
    line = direct.access_line("probe=direct")
    assert "198.51.100.7" not in line and "127.0.0.1:" in line


def test_a_trusted_proxy_is_believed(behind_proxy: Served) -> None:
    response = httpx.get(f"{behind_proxy.url}/feed.atom?probe=proxied", headers=FORGED)
    assert self_link(response) == "https://live.example/feed.atom"
    assert "198.51.100.7:" in behind_proxy.access_line("probe=proxied")
    forged_host = {**FORGED, "X-Forwarded-Host": "attacker.example"}
    assert httpx.get(f"{behind_proxy.url}/", headers=forged_host).status_code == 400
    # The address it binds is still answered, for the proxy's health checks.
    assert httpx.get(f"{behind_proxy.url}/feed.atom").status_code == 200


# --- request heads -------------------------------------------------------------------------------


def status_of(served: Served, head: bytes, *, pieces: int = 1, body: bytes = b"") -> int:
    """The status answered to ``head`` (+ ``body``) sent over a raw connection, the head in
    ``pieces`` writes."""
    with socket.create_connection((served.host, served.port), timeout=10) as connection:
        step = -(-len(head) // pieces)
        for start in range(0, len(head), step):
            connection.sendall(head[start : start + step])
        connection.sendall(body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def request(*headers: bytes, target: bytes = b"/feed.atom", method: bytes = b"GET") -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: 127.0.0.2\r\n%s\r\n" % (method, target, b"".join(headers))


def test_a_100_kb_header_is_refused(direct: Served) -> None:
    assert status_of(direct, request(b"X-Big: " + b"a" * 100_000 + b"\r\n")) == 431


def test_a_large_head_arriving_in_pieces_is_refused_before_it_ends(direct: Served) -> None:
    # The blank line that would end the head is never sent.
    head = request(b"X-Big: " + b"a" * (MAX_HEAD_BYTES + 8192))[:-4]
    assert status_of(direct, head, pieces=20) == 431


def test_5000_headers_are_refused(direct: Served) -> None:
    assert status_of(direct, request(*(b"X-%d: v\r\n" % i for i in range(5000)))) == 431


def test_one_header_too_many_is_refused(direct: Served) -> None:
    # With Host, MAX_HEADERS fields is the most a request may have.
    fine = request(*(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS - 1)))
    assert status_of(direct, fine) == 200
    assert status_of(direct, request(*(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS)))) == 431


def test_ordinary_requests_pass_and_a_body_is_not_counted_as_head(direct: Served) -> None:
    cookie = b"Cookie: other_site=" + b"c" * 20_000 + b"\r\n"
    assert status_of(direct, request(cookie, b"Accept: */*\r\n")) == 200
    assert status_of(direct, request(cookie), pieces=8) == 200
    # A 200 KB body sent with its head, in one write, is the handler's business.
    body = b"q=" + b"x" * 200_000
    head = request(
        b"Content-Type: application/x-www-form-urlencoded\r\n",
        b"Content-Length: %d\r\n" % len(body),
        target=b"/api/v1/productions",
        method=b"POST",
    )
    assert status_of(direct, head, body=body) not in (400, 431)
