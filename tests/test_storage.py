"""ObjectStore: one behaviour suite, run on the local folder and on a real S3 server."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cite_live import storage
from cite_live.storage import (
    IMMUTABLE,
    MIN_PART,
    PLAYLIST,
    PRIVATE,
    InvalidKeyError,
    LocalStore,
    ObjectStore,
    S3Store,
    StorageError,
    cache_control_for,
    content_type_for,
    media_key,
    original_key,
    safe_filename,
    validate_key,
    version_prefix,
)
from tests.s3server import S3Server

PREFIX = version_prefix("p1", "v1")


def stored_headers(store: ObjectStore, key: str) -> tuple[str, str]:
    """(Content-Type, Cache-Control) as the store will serve them."""
    if isinstance(store, S3Store):
        head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + key)
        return head["ContentType"], head["CacheControl"]
    # The local store serves headers computed from the key at request time.
    assert isinstance(store, LocalStore) and store.exists(key)
    return content_type_for(key), cache_control_for(key)


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    # Each test gets its own prefix in the shared bucket, and credentials from the environment.
    s3 = S3Store(
        server.bucket,
        prefix=f"t/{os.urandom(6).hex()}",
        endpoint_url=server.endpoint_url,
        region=server.region,
    )
    yield s3
    for top in ("productions/", "originals/"):
        s3.delete_prefix(top)


def test_put_file_and_download_roundtrip(store: ObjectStore, tmp_path: Path) -> None:
    source = tmp_path / "segment.m4s"
    source.write_bytes(os.urandom(300_000))
    key = media_key(PREFIX, "720p/seg_00001.m4s")
    store.put_file(key, source)
    assert store.exists(key)
    target = tmp_path / "out" / "deep" / "copy.m4s"
    store.download(key, target)
    assert target.read_bytes() == source.read_bytes()


def test_put_bytes_overwrites(store: ObjectStore, tmp_path: Path) -> None:
    key = media_key(PREFIX, "master.m3u8")
    store.put_bytes(key, b"#EXTM3U\nold\n")
    store.put_bytes(key, b"#EXTM3U\nnew\n")
    store.download(key, tmp_path / "m.m3u8")
    assert (tmp_path / "m.m3u8").read_bytes() == b"#EXTM3U\nnew\n"


@pytest.mark.parametrize(
    ("name", "content_type", "cache_control"),
    [
        ("master.m3u8", "application/vnd.apple.mpegurl", PLAYLIST),
        ("720p/init.mp4", "video/mp4", IMMUTABLE),
        ("720p/seg_00001.m4s", "video/iso.segment", IMMUTABLE),
        ("v720/init.mp4", "video/mp4", IMMUTABLE),
        # Sound without picture (the shared audio of a video, an audio rung): RFC 4337.
        ("audio/init.mp4", "audio/mp4", IMMUTABLE),
        ("audio/seg_00001.m4s", "audio/mp4", IMMUTABLE),
        ("a128/init.mp4", "audio/mp4", IMMUTABLE),
        ("a128/seg_00001.m4s", "audio/mp4", IMMUTABLE),
        ("poster.jpg", "image/jpeg", IMMUTABLE),
        ("peaks.json", "application/json", IMMUTABLE),
    ],
)
def test_content_type_and_cache_control_are_stored(
    store: ObjectStore, tmp_path: Path, name: str, content_type: str, cache_control: str
) -> None:
    key = media_key(PREFIX, name)
    source = tmp_path / "file"
    source.write_bytes(b"x" * 10)
    store.put_file(key, source)
    assert stored_headers(store, key) == (content_type, cache_control)
    folder, _, file = name.rpartition("/")
    other = media_key(PREFIX, "/".join(filter(None, [folder, "bytes-" + file])))
    store.put_bytes(other, b"y")
    assert stored_headers(store, other) == (content_type, cache_control)


def test_list_is_a_sorted_string_prefix(store: ObjectStore) -> None:
    keys = [
        "productions/p1/v1/master.m3u8",
        "productions/p1/v1/720p/seg_1.m4s",
        "productions/p1/v2/master.m3u8",
        "productions/p10/v1/master.m3u8",
    ]
    for key in keys:
        store.put_bytes(key, b"x")
    assert store.list("productions/p1/v1/") == sorted(keys[:2])
    assert store.list("productions/p1/") == sorted(keys[:3])
    assert store.list("productions/p1") == sorted(keys)
    assert store.list("productions/nothing/") == []


def test_delete_prefix_removes_only_that_prefix(store: ObjectStore) -> None:
    keep = "productions/p1/v2/master.m3u8"
    store.put_bytes(keep, b"x")
    for i in range(5):
        store.put_bytes(media_key(PREFIX, f"360p/seg_{i}.m4s"), b"x")
    store.put_bytes(media_key(PREFIX, "master.m3u8"), b"x")
    assert store.delete_prefix(PREFIX) == 6
    assert store.list("productions/") == [keep]
    assert store.delete_prefix(PREFIX) == 0
    with pytest.raises(InvalidKeyError):
        store.delete_prefix("")


def test_local_delete_prefix_removes_empty_folders(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes(media_key(PREFIX, "720p/a.m4s"), b"x")
    store.put_bytes("productions/p1/v2/master.m3u8", b"x")
    store.delete_prefix(PREFIX)
    assert not (tmp_path / "productions/p1/v1").exists()
    assert (tmp_path / "productions/p1/v2/master.m3u8").is_file()
    store.delete("productions/p1/v2/master.m3u8")
    assert not (tmp_path / "productions").exists()
    assert tmp_path.is_dir()


def test_delete_is_idempotent(store: ObjectStore) -> None:
    key = media_key(PREFIX, "poster.jpg")
    store.put_bytes(key, b"x")
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)


def test_available_locally_yields_a_readable_copy_and_cleans_up(
    store: ObjectStore, tmp_path: Path
) -> None:
    key = original_key("p1", "Concert à Romans.MOV")
    store.put_bytes(key, b"capture")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    with store.available_locally(key, scratch) as local:
        assert local.read_bytes() == b"capture"
    if isinstance(store, LocalStore):
        assert local == store.path_for(key) and local.exists()  # the file itself, untouched
    else:
        assert not local.exists()
    assert list(scratch.iterdir()) == []


def test_available_locally_cleans_up_when_the_caller_fails(
    store: ObjectStore, tmp_path: Path
) -> None:
    key = original_key("p1", "take.wav")
    store.put_bytes(key, b"capture")
    with pytest.raises(RuntimeError), store.available_locally(key, tmp_path) as local:
        raise RuntimeError("transcode failed")
    assert store.exists(key)
    if not isinstance(store, LocalStore):
        assert not local.exists()
        assert list(tmp_path.iterdir()) == []


def test_missing_object_is_a_storage_error(store: ObjectStore, tmp_path: Path) -> None:
    key = media_key(PREFIX, "missing.m4s")
    assert not store.exists(key)
    with pytest.raises(StorageError):
        store.download(key, tmp_path / "x")
    with pytest.raises(StorageError), store.available_locally(key, tmp_path):
        pass
    with pytest.raises(StorageError):
        store.put_file(key, tmp_path / "no-such-local-file")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../secret",
        "a/../../b",
        "a/./b",
        "a//b",
        "a\\b",
        "a/\x00b",
        "a/\nb",
        "..",
        "productions/p1/..",
    ],
)
def test_keys_that_could_escape_are_refused(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKeyError):
        store.put_bytes(key, b"x")
    with pytest.raises(StorageError):  # InvalidKeyError is a StorageError for callers
        store.exists(key)


def test_local_store_refuses_symlinks_leading_out(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    root = tmp_path / "store"
    root.mkdir()
    (root / "link").symlink_to(outside)
    store = LocalStore(root)
    with pytest.raises(InvalidKeyError):
        store.path_for("link/secret")
    with pytest.raises(InvalidKeyError):
        store.open_file("link/secret")


def plant_links(store: LocalStore, production: str, other: str) -> list[str]:
    """Links planted in ``production``'s published folder, each leading to something that must
    never be served under its key; returns those keys."""
    root = store.root.resolve()
    store.put_bytes(f"originals/{production}/capture.wav", b"RIFF the raw capture")
    store.put_bytes(f"productions/{other}/v1/a128/seg_00001.m4s", b"another production")
    folder = root / "productions" / production / "v1"
    folder.mkdir(parents=True, exist_ok=True)
    targets = {
        "relative.m4s": f"../../../originals/{production}/capture.wav",
        "absolute.m4s": str(root / "originals" / production / "capture.wav"),
        "passwd.m4s": "/etc/passwd",
        "other.m4s": f"../../{other}/v1/a128/seg_00001.m4s",
        "folder": f"../../../originals/{production}",
        "other-folder": f"../../{other}/v1",
        "loop.m4s": "loop.m4s",
    }
    for name, target in targets.items():
        (folder / name).symlink_to(target)
    keys = [f"productions/{production}/v1/{name}" for name in targets if "folder" not in name]
    return [
        *keys,
        f"productions/{production}/v1/folder/capture.wav",
        f"productions/{production}/v1/other-folder/a128/seg_00001.m4s",
    ]


def test_local_store_never_follows_a_link_planted_inside_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    for key in plant_links(store, "p1", "p2"):
        with pytest.raises(StorageError):
            store.open_file(key)
        with pytest.raises(InvalidKeyError):
            store.path_for(key)
    # What the store wrote itself is still served, whether the store's own root is a link or not.
    linked_root = tmp_path / "linked"
    linked_root.symlink_to(store.root)
    for each in (store, LocalStore(linked_root)):
        fd = each.open_file("productions/p2/v1/a128/seg_00001.m4s")
        os.close(fd)


def test_local_store_opens_its_own_files_for_reading(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.put_bytes("productions/p/v/a.json", b"{}")
    fd = store.open_file("productions/p/v/a.json")
    try:
        assert os.read(fd, 10) == b"{}"
    finally:
        os.close(fd)
    with pytest.raises(StorageError):
        store.open_file("productions/p/v/missing.json")
    with pytest.raises(InvalidKeyError):
        store.open_file("productions/../a.json")


def test_local_writes_leave_no_partial_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.put_bytes("productions/p/v/a.json", b"{}")
    with pytest.raises(StorageError):
        store.put_file("productions/p/v/b.json", tmp_path / "missing")
    assert sorted(p.name for p in (tmp_path / "productions/p/v").iterdir()) == ["a.json"]
    assert store.list("") == ["productions/p/v/a.json"]


# --- keys and headers, pure ----------------------------------------------------------------------


def test_key_builders() -> None:
    assert original_key("42", "../../Concert à Romans (live).MOV") == (
        "originals/42/Concert-a-Romans-live.mov"
    )
    assert original_key("42", "C:\\Users\\léa\\take 1.wav") == "originals/42/take-1.wav"
    assert original_key("42", "....") == "originals/42/original"
    assert version_prefix("42", "v3") == "productions/42/v3/"
    assert media_key("productions/42/v3/", "720p/init.mp4") == "productions/42/v3/720p/init.mp4"
    assert media_key("productions/42/v3", "master.m3u8") == "productions/42/v3/master.m3u8"
    for bad in ("", "..", "a/b"):
        with pytest.raises(InvalidKeyError):
            version_prefix(bad, "v1")
        with pytest.raises(InvalidKeyError):
            original_key(bad, "x.mp4")
    with pytest.raises(InvalidKeyError):
        media_key(PREFIX, "../other/master.m3u8")
    assert safe_filename("émission.FLAC") == "emission.flac"
    assert validate_key("a/b.m4s") == "a/b.m4s"


def test_content_types_and_cache_control() -> None:
    expected = {
        "x.m3u8": "application/vnd.apple.mpegurl",
        "x.m4s": "video/iso.segment",
        "x.mp4": "video/mp4",
        "x.m4a": "audio/mp4",
        "x.jpg": "image/jpeg",
        "x.png": "image/png",
        "x.webp": "image/webp",
        "x.vtt": "text/vtt",
        "x.json": "application/json",
        "X.JPG": "image/jpeg",
        "x.bin": "application/octet-stream",
        "noext": "application/octet-stream",
    }
    for key, content_type in expected.items():
        assert content_type_for(key) == content_type, key
    # Only a rendition folder's own name makes its segments audio: not a look-alike.
    assert content_type_for("p/v/audio-x/init.mp4") == "video/mp4"
    assert content_type_for("p/v/a128x/seg_1.m4s") == "video/iso.segment"
    assert content_type_for("p/v/va128/seg_1.m4s") == "video/iso.segment"
    assert content_type_for("p/v/a128/index.m3u8") == "application/vnd.apple.mpegurl"
    assert cache_control_for("productions/1/v1/720p/seg_1.m4s") == IMMUTABLE
    assert cache_control_for("productions/1/v1/poster.jpg") == IMMUTABLE
    assert cache_control_for("productions/1/v1/master.m3u8") == PLAYLIST
    assert "immutable" not in cache_control_for("originals/1/take.wav")


# --- public URLs ---------------------------------------------------------------------------------


def test_public_url_local() -> None:
    store = LocalStore(Path("unused"))
    assert store.public_url("productions/1/v1/master.m3u8", "http://127.0.0.1:8000/") == (
        "http://127.0.0.1:8000/media/productions/1/v1/master.m3u8"
    )
    assert store.public_url("productions/1/v1/a b.jpg", "https://x.org") == (
        "https://x.org/media/productions/1/v1/a%20b.jpg"
    )


class _Meta:
    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url


class _Client:
    """Only what public_url reads: URL shapes need no server."""

    def __init__(self, endpoint_url: str) -> None:
        self.meta = _Meta(endpoint_url)


def s3_url(endpoint: str, key: str = "productions/1/v1/master.m3u8", **options: Any) -> str:
    store = S3Store("media", client=_Client(endpoint), **options)
    return store.public_url(key, "http://site.example")


def test_public_url_s3_shapes() -> None:
    assert s3_url("http://127.0.0.1:8333") == (
        "http://127.0.0.1:8333/media/productions/1/v1/master.m3u8"
    )
    assert s3_url("http://127.0.0.1:8333", prefix="/cite/") == (
        "http://127.0.0.1:8333/media/cite/productions/1/v1/master.m3u8"
    )
    assert s3_url("https://s3.eu-west-3.amazonaws.com", addressing_style="virtual") == (
        "https://media.s3.eu-west-3.amazonaws.com/productions/1/v1/master.m3u8"
    )
    assert s3_url(
        "https://s3.example", public_base_url="https://cdn.example/live/", prefix="x"
    ) == ("https://cdn.example/live/productions/1/v1/master.m3u8")
    with pytest.raises(ValueError, match="addressing_style"):
        S3Store("media", client=_Client("http://x"), addressing_style="sideways")


# --- S3 specifics --------------------------------------------------------------------------------


@pytest.mark.s3
def test_s3_missing_bucket_is_a_storage_error(s3_server: S3Server, tmp_path: Path) -> None:
    store = S3Store("no-such-bucket", endpoint_url=s3_server.endpoint_url, region=s3_server.region)
    with pytest.raises(StorageError, match="no-such-bucket"):
        store.put_bytes("a/b.json", b"{}")
    with pytest.raises(StorageError):
        store.list("a/")
    with pytest.raises(StorageError):
        store.download("a/b.json", tmp_path / "b.json")


def test_the_readiness_check_passes_on_a_store_that_answers(store: ObjectStore) -> None:
    store.check(2.0)


@pytest.mark.s3
def test_the_readiness_check_of_s3_fails_on_a_missing_bucket(s3_server: S3Server) -> None:
    store = S3Store("no-such-bucket", endpoint_url=s3_server.endpoint_url, region=s3_server.region)
    with pytest.raises(StorageError, match="no-such-bucket"):
        store.check(2.0)


def test_the_readiness_check_of_a_local_store_fails_where_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(StorageError, match="cannot be made"):
        LocalStore(tmp_path / "file" / "media").check(2.0)
    LocalStore(tmp_path / "fresh").check(2.0)
    assert (tmp_path / "fresh").is_dir()


@pytest.mark.s3
def test_s3_delete_prefix_deletes_in_batches(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DeleteObjects takes 1000 keys at most; a smaller batch proves the batching without
    # uploading a thousand objects.
    monkeypatch.setattr(storage, "_BATCH", 4)
    store = S3Store(
        s3_server.bucket,
        prefix=f"many/{os.urandom(4).hex()}",
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
    )
    for i in range(10):
        store.put_bytes(f"productions/p/v/{i:05}.m4s", b"")
    assert len(store.list("productions/p/v/")) == 10
    assert store.delete_prefix("productions/p/v/") == 10
    assert store.list("productions/") == []


@pytest.mark.s3
def test_s3_big_file_is_uploaded_in_parts(s3_server: S3Server, tmp_path: Path) -> None:
    store = S3Store(
        s3_server.bucket,
        prefix=f"big/{os.urandom(4).hex()}",
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
    )
    source = tmp_path / "capture.mov"
    source.write_bytes(os.urandom(9 * 1024 * 1024))  # above boto3's 8 MB multipart threshold
    key = original_key("p1", source.name)
    store.put_file(key, source)
    head = store.client.head_object(Bucket=store.bucket, Key=store.prefix + key)
    assert head["ETag"].strip('"').endswith("-2"), (
        "a multipart upload has an ETag of '<md5>-<parts>'"
    )
    assert head["ContentLength"] == source.stat().st_size
    with store.available_locally(key, tmp_path) as local:
        assert local.read_bytes() == source.read_bytes()
    store.delete(key)


def test_parts_make_one_object_in_order_and_an_aborted_one_leaves_nothing(
    store: ObjectStore, tmp_path: Path
) -> None:
    key = original_key("p2", "concert.mp4")
    if not store.assembles_parts:
        # The local store keeps partial files instead (cite_live.uploads).
        with pytest.raises(StorageError):
            store.start_parts(key)
        return
    first, last = os.urandom(MIN_PART), os.urandom(1000)
    parts_id = store.start_parts(key)
    etags = []
    for number, data in ((1, first), (2, last)):
        part = tmp_path / f"part{number}"
        part.write_bytes(data)
        etags.append((number, store.put_part(key, parts_id, number, part)))
    assert store.parts_pending(key, parts_id)
    store.finish_parts(key, parts_id, etags)
    assert not store.parts_pending(key, parts_id)
    assert store.read_bytes(key) == first + last
    # An original is private, whichever way it got into the store.
    assert stored_headers(store, key) == ("video/mp4", PRIVATE)

    dropped = store.start_parts(original_key("p3", "take.mp4"))
    store.abort_parts(original_key("p3", "take.mp4"), dropped)
    # Aborting again (a sweep after a crash) is not an error.
    store.abort_parts(original_key("p3", "take.mp4"), dropped)
    assert not store.parts_pending(original_key("p3", "take.mp4"), dropped)
    assert store.list("originals/p3/") == []
    store.delete(key)


@pytest.mark.s3
def test_s3_object_is_served_over_plain_http_with_its_content_type(s3_server: S3Server) -> None:
    store = S3Store(
        s3_server.bucket,
        prefix="public",
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
    )
    key = media_key(PREFIX, "master.m3u8")
    store.put_bytes(key, b"#EXTM3U\n")
    url = store.public_url(key, "http://unused")
    assert url == f"{s3_server.endpoint_url}/{s3_server.bucket}/public/{key}"
    response = httpx.get(url)
    if response.status_code == 403:
        pytest.skip("this S3 server refuses anonymous reads")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apple.mpegurl"
    assert response.headers["cache-control"] == PLAYLIST
    assert response.content == b"#EXTM3U\n"
    store.delete_prefix("productions/")


# --- what a store can do, and the key layout ------------------------------------------------------


def test_a_store_tells_its_size_without_reading_it(store: ObjectStore) -> None:
    key = PREFIX + "a128/seg_00001.m4s"
    store.put_bytes(key, b"x" * 1234)
    assert store.size(key) == 1234
    with pytest.raises(StorageError):
        store.size(PREFIX + "missing.m4s")
    with pytest.raises(InvalidKeyError):
        store.size("productions/../a.json")


def test_a_store_says_how_players_reach_its_media(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Signing needs credentials, not a server: this test does not depend on another's.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "signing-only")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "signing-only")
    local = LocalStore(tmp_path / "store")
    assert local.serves_own_bytes and local.moves_cheaply
    assert local.media_origins() == []
    with pytest.raises(StorageError):
        local.presigned_url(PREFIX + "master.m3u8", 60)

    s3 = S3Store("concerts", endpoint_url="http://127.0.0.1:9", region="eu-west-3")
    assert not s3.serves_own_bytes and not s3.moves_cheaply
    assert set(s3.media_origins()) == {"http://127.0.0.1:9/concerts/"}
    signed = s3.presigned_url(PREFIX + "master.m3u8", 60)
    assert signed.startswith("http://127.0.0.1:9/concerts/" + PREFIX + "master.m3u8?")
    with pytest.raises(StorageError):
        s3.open_file(PREFIX + "master.m3u8")


def test_keys_are_parsed_by_the_module_that_builds_them() -> None:
    assert storage.production_of_key(media_key(PREFIX, "720p/seg_1.m4s")) == "p1"
    assert storage.production_of_key(storage.production_prefix("p2") + "v3/x") == "p2"
    assert storage.production_of_key("productions/p1") is None
    assert storage.production_of_key("productions//v1/x") is None
    assert storage.production_of_key(original_key("p1", "take.wav")) is None
    assert storage.is_original(original_key("p1", "take.wav"))
    assert not storage.is_original(PREFIX + "master.m3u8")
    assert not storage.is_original("originalsx/p1/take.wav")


def test_no_module_but_storage_asks_which_kind_of_store_it_has() -> None:
    """The rest of the site asks a store what it can do: an ``isinstance`` on a store, or a
    store's client reached into, would let the local/S3 difference leak again."""
    package = Path(storage.__file__).parent
    kinds = {"LocalStore", "S3Store"}
    leaks = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "storage.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "isinstance"
                and len(node.args) == 2
                and kinds & {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
            ):
                leaks.append(f"{path.name}:{node.lineno} isinstance")
            if isinstance(node, ast.Attribute) and node.attr == "client":
                text = ast.unparse(node)
                if "store" in text:
                    leaks.append(f"{path.name}:{node.lineno} {text}")
    assert leaks == []


@pytest.mark.s3
def test_signed_links_point_where_browsers_reach_the_bucket(s3_server: S3Server) -> None:
    """The site may talk to S3 on a private address: its signed links are made for the
    address browsers use, and work there (a signature covers the host it was made for)."""
    private = s3_server.endpoint_url
    public = private.replace("127.0.0.1", "localhost")
    store = S3Store(
        s3_server.bucket,
        prefix=f"browser/{os.urandom(4).hex()}",
        endpoint_url=private,
        browser_endpoint_url=public,
        region=s3_server.region,
    )
    key = PREFIX + "a128/seg_00001.m4s"
    store.put_bytes(key, b"private bytes")
    signed = store.presigned_url(key, 60)
    assert signed.startswith(public + "/") and private not in signed
    assert httpx.get(signed).content == b"private bytes"
    assert store.public_url(key, "").startswith(public + "/")
    assert all(origin.startswith(public) for origin in store.media_origins())
    # The same link sent to the private address is refused: the signature names its host.
    assert httpx.get(signed.replace(public, private)).status_code == 403
