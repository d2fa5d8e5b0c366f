"""The built front-end (scripts/build), how /static serves it, and compressed text answers.

The suite's session start runs scripts/build (tests/conftest.py): web/static/dist/ is this
tree's build. One test builds a copy of the sources of its own to see a new script bundled
without anyone listing it, a dynamic import made a lazy chunk, and the stamp at work.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from cite_live.services import Services, open_services
from cite_live.web.app import create_app
from cite_live.web.compression import CompressionMiddleware
from cite_live.web.static import IMMUTABLE, REVALIDATED, accepted_codings
from cite_live.web.urls import MANIFEST, Urls, manifest
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url
from tests.test_api import publish_fake

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "web/static"
urls = Urls()
# No brotli package in the virtualenv: node's zlib (which made the files) reads them back.
UNBROTLI = (
    "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))"
)


def unbrotli(data: bytes) -> bytes:
    return subprocess.run(
        ["node", "-e", UNBROTLI], input=data, capture_output=True, check=True
    ).stdout


def built(name: str) -> str:
    """The /static path of the built file of ``name``; the build must have one."""
    path = urls.static(name)
    assert path.startswith("/static/dist/"), (name, path)
    return path


def raw(client: TestClient, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the body exactly as sent (not decoded)."""
    with client.stream("GET", path, headers=headers) as response:
        return response.status_code, dict(response.headers), b"".join(response.iter_raw())


# --- the build ---------------------------------------------------------------------------------


def test_every_script_and_stylesheet_has_a_fingerprinted_minified_build() -> None:
    entries = manifest()
    sources = [f"js/{p.name}" for p in (STATIC / "js").glob("*.js")]
    sources += [f"css/{p.name}" for p in (STATIC / "css").glob("*.css")]
    assert sources and set(sources) <= set(entries)
    for source in sources:
        file = STATIC / entries[source]["file"]
        assert file.is_file(), source
        # Named for its content: another content, another name.
        assert re.search(r"-[A-Z0-9]{8}\.(js|css)$", file.name), file.name
        assert urls.static(source) == "/static/" + entries[source]["file"]
    # Minified: the sources' comments and indentation are gone.
    player = (STATIC / entries["css/player.css"]["file"]).read_text()
    assert "\n  " not in player and "/*" not in player.split("*/")[-1]
    # The favicon templates link is fingerprinted too.
    assert re.fullmatch(r"/static/dist/files/favicon-[0-9a-f]{10}\.svg", urls.static("favicon.svg"))


def test_each_text_file_has_brotli_and_gzip_variants_of_the_same_bytes() -> None:
    for entry in manifest().values():
        file = STATIC / entry["file"]
        data = file.read_bytes()
        assert unbrotli(file.with_name(file.name + ".br").read_bytes()) == data
        assert gzip.decompress(file.with_name(file.name + ".gz").read_bytes()) == data


def test_player_preloads_are_its_static_chunks_and_exist() -> None:
    preloads = urls.static_preloads("js/player.js")
    assert preloads, "the player imports chunks"
    for chunk in preloads:
        assert chunk.startswith("/static/dist/chunks/") and (STATIC / chunk[8:]).is_file()
    # Without a build (a name the manifest lacks), no preload and the source path.
    assert urls.static_preloads("js/nothing.js") == []
    assert urls.static("js/nothing.js") == "/static/js/nothing.js"


def test_the_built_player_holds_no_import_of_an_unbundled_file() -> None:
    code = (STATIC / manifest()["js/player.js"]["file"]).read_text()
    for chunk in urls.static_preloads("js/player.js"):
        code += (STATIC / chunk[8:]).read_text()
    assert "../vendor/" not in code and "/static/js/" not in code


def test_the_build_finds_new_scripts_makes_lazy_chunks_and_is_quick_when_unchanged(
    tmp_path: Path,
) -> None:
    """A copy of the tree's front-end with one script more, which imports one module at once
    and another only when called: bundled without being listed, its dynamic import a chunk of
    its own that no page preloads."""
    tree = tmp_path / "tree"
    (tree / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts/build", tree / "scripts/build")
    os.symlink(ROOT / "node_modules", tree / "node_modules")
    js = tree / "web/static/js"
    js.mkdir(parents=True)
    (tree / "web/static/css").mkdir()
    (tree / "web/static/css/a.css").write_text("body {\n  color: #000000;\n}\n")
    (tree / "web/static/icon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tree / "web/templates").mkdir()
    (tree / "web/templates/a.html").write_text('<link href="{{ urls.static("icon.svg") }}">')
    (js / "zz_eager.js").write_text('export const eager = "EAGER-MARK";\n')
    # Out of js/'s top level, as an npm file in ../vendor/ is: a module, not an entry.
    (js / "lib").mkdir()
    (js / "lib/zz_later.js").write_text('export const later = () => "LATER-MARK";\n')
    (js / "zz_new.js").write_text(
        'import { eager } from "./zz_eager.js";\n'
        "document.body.dataset.eager = eager;\n"
        'document.addEventListener("click", async () => {\n'
        '  const { later } = await import("./lib/zz_later.js");\n'
        "  document.body.dataset.later = later();\n"
        "});\n"
    )

    def build() -> dict[str, dict[str, object]]:
        subprocess.run([tree / "scripts/build"], check=True, capture_output=True)
        data: dict[str, dict[str, object]] = json.loads(
            (tree / "web/static" / MANIFEST).read_text()
        )
        return data

    first = build()
    entry = first["js/zz_new.js"]
    dist = tree / "web/static"
    code = (dist / str(entry["file"])).read_text()
    assert "import(" in code and "LATER-MARK" not in code
    chunk_text = "".join(
        (dist / str(c)).read_text()
        for c in entry["imports"]  # type: ignore[attr-defined]
    )
    assert "EAGER-MARK" in code + chunk_text and "LATER-MARK" not in chunk_text
    lazies = [p for p in (dist / "dist/chunks").glob("*.js") if "LATER-MARK" in p.read_text()]
    assert len(lazies) == 1
    assert f"dist/chunks/{lazies[0].name}" not in entry["imports"]  # type: ignore[operator]

    # Unchanged: nothing is built again (the folder is the same one, untouched).
    stamp = (dist / "dist/.stamp").stat().st_mtime_ns
    assert build() == first
    assert (dist / "dist/.stamp").stat().st_mtime_ns == stamp
    # Changed: built again, and the previous build's files are kept for running servers.
    (js / "zz_eager.js").write_text('export const eager = "EAGER-MARK-2";\n')
    second = build()
    assert second["js/zz_new.js"]["file"] != entry["file"]
    assert (dist / str(entry["file"])).is_file()
    assert not list((tree / "web/static").glob(".dist-*"))
    # One generation only: a third build lets the first one's files go.
    (js / "zz_eager.js").write_text('export const eager = "EAGER-MARK-3";\n')
    third = build()
    assert (dist / str(second["js/zz_new.js"]["file"])).is_file()
    assert not (dist / str(entry["file"])).exists()
    assert third["css/a.css"]["file"] == first["css/a.css"]["file"]
    assert (dist / str(second["css/a.css"]["file"])).read_text().strip() == "body{color:#000}"
    assert re.fullmatch(r"dist/files/icon-[0-9a-f]{10}\.svg", str(second["icon.svg"]["file"]))


# --- /static -----------------------------------------------------------------------------------


def test_fingerprinted_files_are_immutable_and_sent_as_brotli_or_gzip(
    client: TestClient,
) -> None:
    path = built("js/player.js")
    plain = (STATIC / path.removeprefix("/static/")).read_bytes()
    status, headers, body = raw(client, path, **{"accept-encoding": "gzip, deflate, br"})
    assert status == 200
    assert headers["cache-control"] == IMMUTABLE
    assert headers["content-encoding"] == "br" and headers["vary"] == "Accept-Encoding"
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert unbrotli(body) == plain and int(headers["content-length"]) == len(body)
    br_tag = headers["etag"]

    status, headers, body = raw(client, path, **{"accept-encoding": "gzip"})
    assert headers["content-encoding"] == "gzip" and gzip.decompress(body) == plain
    gzip_tag = headers["etag"]
    status, headers, body = raw(client, path, **{"accept-encoding": "identity"})
    assert "content-encoding" not in headers and body == plain
    assert headers["vary"] == "Accept-Encoding" and headers["cache-control"] == IMMUTABLE
    assert len({br_tag, gzip_tag, headers["etag"]}) == 3


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("br;q=0, gzip", "gzip"),
        ("gzip;q=1.0, br;q=0.5", "gzip"),
        ("gzip;q=0.5, br;q=0.8", "br"),
        ("br;q=0.7, gzip;q=0.7", "br"),
        ("*", "br"),
        ("*;q=0, gzip", "gzip"),
        ("*;q=0", None),
        ("identity;q=0, gzip", "gzip"),
        ("identity", None),
        ("", None),
        ("BR", "br"),
        ("br;q=nan, gzip;q=2", None),
        ("deflate", None),
    ],
)
def test_accept_encoding_q_values_choose_the_variant(
    client: TestClient, accept: str, expected: str | None
) -> None:
    _, headers, _ = raw(client, built("css/site.css"), **{"accept-encoding": accept})
    assert headers.get("content-encoding") == expected


def test_q_values_are_read_as_the_rfc_says() -> None:
    assert accepted_codings("gzip;q=0.5, br ; q=0 ,*;q=0.1") == {"gzip": 0.5, "br": 0.0, "*": 0.1}
    assert accepted_codings("gzip;q=-1, br;q=1e9, x;q=abc") == {"gzip": 0, "br": 0, "x": 0}


def test_304_on_the_variants_own_etag_and_head_without_body(client: TestClient) -> None:
    path = built("css/site.css")
    br = {"accept-encoding": "br"}
    first = client.get(path, headers=br)
    again = client.get(path, headers={**br, "if-none-match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["cache-control"] == IMMUTABLE
    # The plain file's tag names another representation: the brotli one is sent.
    plain = client.get(path, headers={"accept-encoding": "identity"}).headers["etag"]
    other = client.get(path, headers={**br, "if-none-match": plain})
    assert other.status_code == 200 and other.headers["content-encoding"] == "br"

    head = client.head(path, headers=br)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-encoding"] == "br"
    assert head.headers["content-length"] == first.headers["content-length"]


def test_a_range_gets_the_originals_bytes(client: TestClient) -> None:
    path = built("css/site.css")
    plain = (STATIC / path.removeprefix("/static/")).read_bytes()
    status, headers, body = raw(client, path, **{"accept-encoding": "br", "range": "bytes=0-9"})
    assert status == 206 and "content-encoding" not in headers and body == plain[:10]


def test_sources_and_vendor_files_keep_a_short_revalidated_lifetime(client: TestClient) -> None:
    for path in ("/static/js/player.js", "/static/vendor/hls.js/hls.min.mjs"):
        response = client.get(path, headers={"accept-encoding": "identity"})
        assert response.status_code == 200, path
        assert response.headers["cache-control"] == REVALIDATED
        assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    # The compression middleware gzips them on the fly, with a tag of the gzip body's own.
    plain = client.get("/static/js/player.js", headers={"accept-encoding": "identity"})
    zipped = client.get("/static/js/player.js", headers={"accept-encoding": "gzip"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.content == plain.content
    assert zipped.headers["etag"] != plain.headers["etag"]


@pytest.mark.parametrize(
    "path",
    [
        "/static/dist/manifest.json",
        "/static/dist/.stamp",
        "/static/.build-lock",
        "/static/.dist-old/manifest.json",
        "/static/dist%2Fmanifest.json",
        "/static/js%2fplayer.js",
        "/static/js/..%2f..%2fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/js/player.js%00",
        "/static/js/player.js.gz",
        "/static/",
        "/static/js",
        "/static/js/",
        "/static/nothing-here.js",
    ],
)
def test_hostile_or_missing_paths_are_404(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_a_variant_asked_for_by_its_own_name_is_404(client: TestClient) -> None:
    path = built("js/player.js")
    assert (STATIC / (path.removeprefix("/static/") + ".br")).is_file()
    assert client.get(path + ".br").status_code == 404
    assert client.get(path + ".gz").status_code == 404


def test_static_takes_only_get_and_head(client: TestClient) -> None:
    path = built("js/player.js")
    response = client.options(path)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
    # An unsafe method is refused before it gets here (cite_live.auth: no forgery token).
    assert client.post(path).status_code == 403


# --- compressed answers ------------------------------------------------------------------------


def test_pages_and_json_are_gzipped_for_clients_that_accept_it(
    client: TestClient, services: Services
) -> None:
    for index in range(3):
        publish_fake(services, f"Concert {index}", tags=("Jazz", "Électro"))
    for path in ("/", urls.api_productions(), urls.site_feed(), "/artists"):
        plain = client.get(path, headers={"accept-encoding": "identity"})
        status, headers, body = raw(client, path, **{"accept-encoding": "gzip"})
        assert status == 200 and plain.status_code == 200, path
        assert headers["content-encoding"] == "gzip", path
        assert "accept-encoding" in headers["vary"].lower()
        assert "accept-encoding" in plain.headers["vary"].lower()
        assert "content-encoding" not in plain.headers
        assert len(body) < len(plain.content) / 2, path
        assert int(headers["content-length"]) == len(body)
        unzipped = gzip.decompress(body)
        if path == urls.api_productions():
            assert json.loads(unzipped) == plain.json()
        # HEAD: the headers a GET gets, no body.
        head = client.head(path, headers={"accept-encoding": "gzip"})
        assert head.headers.get("content-encoding") == "gzip" and head.content == b""


def test_small_answers_and_refused_gzip_are_left_plain(client: TestClient) -> None:
    small = client.get(urls.api_production("nothing-here"), headers={"accept-encoding": "gzip"})
    assert small.status_code == 404 and len(small.content) < 500
    assert "content-encoding" not in small.headers
    refused = client.get("/", headers={"accept-encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers
    assert "accept-encoding" in refused.headers["vary"].lower()


def test_the_page_cache_serves_gzip_and_plain_from_one_entry(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_PAGE_CACHE_SECONDS="60"
    )
    services = open_services(settings)
    publish_fake(services, "En cache")
    app = create_app(settings, services)
    with TestClient(app, base_url="http://testserver") as c:
        first = c.get("/", headers={"accept-encoding": "gzip"})
        plain = c.get("/", headers={"accept-encoding": "identity"})
        again = c.get("/", headers={"accept-encoding": "gzip"})
    assert first.headers["content-encoding"] == "gzip" and first.headers["x-cache"] == "miss"
    assert "content-encoding" not in plain.headers and plain.headers["x-cache"] == "hit"
    assert again.headers["content-encoding"] == "gzip" and again.headers["x-cache"] == "hit"
    assert first.text == plain.text == again.text
    services.close()


def test_playlists_are_gzipped_with_their_own_etag_but_not_segments_nor_ranges(
    client: TestClient, services: Services
) -> None:
    production_id = publish_fake(services, "Playlist")
    prefix = f"productions/{production_id}/j1/"
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-PLAYLIST-TYPE:VOD"]
    lines += [f"#EXTINF:4.000,\nseg_{n:05d}.m4s" for n in range(60)]
    playlist = ("\n".join(lines) + "\n#EXT-X-ENDLIST\n").encode()
    services.store.put_bytes(prefix + "a128/index.m3u8", playlist)
    path = urls.media(prefix + "a128/index.m3u8")

    plain = client.get(path, headers={"accept-encoding": "identity"})
    status, headers, body = raw(client, path, **{"accept-encoding": "gzip"})
    assert status == 200 and gzip.decompress(body) == playlist == plain.content
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == plain.headers["content-type"]
    assert headers["etag"] == plain.headers["etag"][:-1] + '-gzip"'
    # Each tag revalidates its own body.
    zipped_again = client.get(
        path, headers={"accept-encoding": "gzip", "if-none-match": headers["etag"]}
    )
    assert zipped_again.status_code == 304 and zipped_again.headers["etag"] == headers["etag"]
    plain_again = client.get(
        path, headers={"accept-encoding": "identity", "if-none-match": plain.headers["etag"]}
    )
    assert plain_again.status_code == 304 and plain_again.headers["etag"] == plain.headers["etag"]
    # A range counts the plain bytes.
    status, headers, body = raw(client, path, **{"accept-encoding": "gzip", "range": "bytes=0-6"})
    assert status == 206 and body == b"#EXTM3U" and "content-encoding" not in headers

    segment = urls.media(prefix + "a128/seg_00001.m4s")
    status, headers, body = raw(client, segment, **{"accept-encoding": "gzip, br"})
    assert status == 200 and "content-encoding" not in headers and len(body) == 1000


def test_streamed_text_is_compressed_as_it_goes_and_already_encoded_is_not() -> None:
    expected = b"".join((f"line {n} " * 200).encode() for n in range(3))

    async def chunks() -> AsyncIterator[bytes]:
        for n in range(3):
            yield (f"line {n} " * 200).encode()

    async def stream(request: Request) -> Response:
        return StreamingResponse(chunks(), media_type="text/plain", headers={"ETag": '"s1"'})

    async def encoded(request: Request) -> Response:
        body = zlib.compress(expected)
        return Response(body, media_type="text/plain", headers={"Content-Encoding": "deflate"})

    app = Starlette(routes=[Route("/stream", stream), Route("/encoded", encoded)])
    client = TestClient(CompressionMiddleware(app))
    status, headers, body = raw(client, "/stream", **{"accept-encoding": "gzip"})
    assert status == 200 and headers["content-encoding"] == "gzip"
    assert "content-length" not in headers and gzip.decompress(body) == expected
    assert headers["etag"] == '"s1-gzip"'
    status, headers, body = raw(client, "/encoded", **{"accept-encoding": "gzip"})
    assert headers["content-encoding"] == "deflate" and zlib.decompress(body) == expected


def test_bodies_compressed_again_come_from_memory_and_never_mix() -> None:
    bodies = {f"/{n}": (f"page {n} " * 300).encode() for n in range(5)}

    async def page(request: Request) -> Response:
        return Response(bodies[request.url.path], media_type="text/html")

    middleware = CompressionMiddleware(
        Starlette(routes=[Route(path, page) for path in bodies]), minimum=500
    )
    client = TestClient(middleware)
    for _ in range(2):
        for path, body in bodies.items():
            _, headers, sent = raw(client, path, **{"accept-encoding": "gzip"})
            assert headers["content-encoding"] == "gzip" and gzip.decompress(sent) == body
    assert len(middleware.remembered) == len(bodies)
