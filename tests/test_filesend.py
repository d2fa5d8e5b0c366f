"""Sending files: ranges and validators as pure functions, then the local store's media route on
a real uvicorn server — large files in chunks, a client hanging up, odd files in the store."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from cite_live import filesend
from cite_live.filesend import CHUNK, FileInfo, not_modified, parse_range, range_applies
from cite_live.storage import LocalStore
from tests.app_fixtures import LiveServer

INFO = FileInfo(size=1000, mtime=1_700_000_000.25)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),
        ("bytes=990-5000", (990, 999)),
        ("bytes= 3-4", (3, 4)),
        ("BYTES=3-4", (3, 4)),
        # Not a single range this server serves: the whole file goes out instead.
        ("bytes=5-2", None),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=abc", None),
        ("bytes=-", None),
        ("bytes=1-x", None),
        ("bytes=+1-2", None),
        # Digits only in ASCII: ISO-8859-1's superscripts (a header's b"\xb2" reads "²") and
        # other scripts' digits are no numbers here.
        ("bytes=\u00b2-", None),
        ("bytes=0-\u00b3", None),
        ("bytes=-\u00b9", None),
        ("bytes=\u0663-", None),
    ],
)
def test_ranges_are_parsed_and_clipped(header: str, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_ranges_past_the_end_are_unsatisfiable(header: str) -> None:
    with pytest.raises(ValueError):
        parse_range(header, 1000)


def test_if_none_match_compares_weakly_and_wins_over_if_modified_since() -> None:
    later = formatdate(INFO.mtime + 60, usegmt=True)
    earlier = formatdate(INFO.mtime - 60, usegmt=True)
    assert not_modified({"if-none-match": INFO.etag}, INFO)
    assert not_modified({"if-none-match": f'"other", W/{INFO.etag}'}, INFO)
    assert not_modified({"if-none-match": "*"}, INFO)
    assert not not_modified({"if-none-match": '"other"', "if-modified-since": later}, INFO)
    assert not_modified({"if-modified-since": later}, INFO)
    assert not_modified({"if-modified-since": INFO.last_modified}, INFO)
    assert not not_modified({"if-modified-since": earlier}, INFO)
    assert not not_modified({"if-modified-since": "yesterday"}, INFO)
    assert not not_modified({}, INFO)


def test_if_range_keeps_the_range_only_for_the_same_file() -> None:
    assert range_applies({}, INFO)
    assert range_applies({"if-range": INFO.etag}, INFO)
    assert range_applies({"if-range": INFO.last_modified}, INFO)
    assert not range_applies({"if-range": '"stale"'}, INFO)
    # A weak validator never matches an If-Range (strong comparison).
    assert not range_applies({"if-range": f"W/{INFO.etag}"}, INFO)
    assert not range_applies({"if-range": formatdate(INFO.mtime + 1, usegmt=True)}, INFO)


# --- the media route on a real server --------------------------------------------------------


@pytest.fixture
def store(live_server: LiveServer) -> LocalStore:
    store = live_server.services.store
    assert isinstance(store, LocalStore)
    return store


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=10) as client:
        yield client


def test_a_file_larger_than_a_chunk_arrives_whole_and_by_range(
    store: LocalStore, http: httpx.Client
) -> None:
    body = os.urandom(2 * CHUNK + 12_345)
    store.put_bytes("files/large.bin", body)
    whole = http.get("/media/files/large.bin")
    assert whole.status_code == 200
    assert whole.headers["content-length"] == str(len(body))
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.content == body
    # A range across two chunk boundaries.
    start, end = CHUNK - 10, 2 * CHUNK + 10
    part = http.get("/media/files/large.bin", headers={"Range": f"bytes={start}-{end}"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes {start}-{end}/{len(body)}"
    assert part.content == body[start : end + 1]


def test_head_conditionals_and_unsatisfiable_ranges(store: LocalStore, http: httpx.Client) -> None:
    body = bytes(range(256)) * 40
    store.put_bytes("files/small.bin", body)
    url = "/media/files/small.bin"
    head = http.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(body))
    assert head.content == b""
    etag, modified = head.headers["etag"], head.headers["last-modified"]

    assert http.get(url, headers={"If-None-Match": etag}).status_code == 304
    assert http.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert http.get(url, headers={"If-None-Match": '"nope"'}).content == body

    refused = http.get(url, headers={"Range": f"bytes={len(body)}-"})
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{len(body)}"
    suffix = http.get(url, headers={"Range": "bytes=-16"})
    assert (suffix.status_code, suffix.content) == (206, body[-16:])
    several = http.get(url, headers={"Range": "bytes=0-1,4-5"})
    assert (several.status_code, several.content) == (200, body)
    # The client's copy changed since: the whole new file, not a piece of it.
    stale = http.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert (stale.status_code, stale.content) == (200, body)
    fresh = http.get(url, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (fresh.status_code, fresh.content) == (206, body[:10])


def test_a_client_hanging_up_stops_the_reading(
    store: LocalStore, live_server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    chunks = 16
    path = store.root / "files" / "long.bin"
    path.parent.mkdir(parents=True)
    with path.open("wb") as handle:  # sparse: 16 chunks of zeros, written in no time
        handle.truncate(chunks * CHUNK)
    reads: list[int] = []
    real_read = filesend._read

    def counted(fd: int, length: int, offset: int) -> bytes:
        reads.append(offset)
        return real_read(fd, length, offset)

    monkeypatch.setattr(filesend, "_read", counted)
    host, port = live_server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as client:
        client.sendall(b"GET /media/files/long.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
    # The server stops reading once it notices; without the watch on the connection it would
    # read all 16 chunks into a connection that is gone.
    settled, deadline = -1, time.monotonic() + 10
    while len(reads) != settled and time.monotonic() < deadline:
        settled = len(reads)
        time.sleep(0.5)
    assert 0 < len(reads) < chunks // 2, reads
    with httpx.Client(base_url=live_server.url) as http:
        assert http.get("/media/files/long.bin", headers={"Range": "bytes=0-0"}).content == b"\0"


def test_odd_files_in_the_store_are_missing_media(
    store: LocalStore, http: httpx.Client, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (store.root / "files").mkdir(parents=True)
    (store.root / "files" / "link").symlink_to(outside)
    # A FIFO would hang a plain open() until someone writes into it.
    os.mkfifo(store.root / "files" / "pipe.m4s")
    for key in ("files/link/secret.txt", "files/pipe.m4s", "files"):
        response = http.get(f"/media/{key}")
        assert response.status_code == 404, key
        assert response.json() == {"error": "There is no media at this address.", "status": 404}


def test_other_methods_are_refused_with_allow(store: LocalStore, http: httpx.Client) -> None:
    store.put_bytes("files/small.bin", b"x")
    response = http.post("/media/files/small.bin")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    private = http.delete("/media/private/token/files/small.bin")
    assert private.status_code == 405
    assert private.headers["allow"] == "GET, HEAD"
