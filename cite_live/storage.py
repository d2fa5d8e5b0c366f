"""Where media lives: one `ObjectStore` interface, a local folder and S3.

The database stores relative keys built by the pure functions below (`original_key`,
`version_prefix`, `media_key`), never URLs: `public_url` turns a key into the address a player
uses, so a store can move behind a CDN without touching a row. The key layout is this module's
alone: the same section parses keys (`production_of_key`, `is_original`) for whoever needs to
know what a key belongs to.

The rest of the site asks a store what it can do (`serves_own_bytes`, `moves_cheaply`,
`size`, `presigned_url`, `media_origins`) and never which kind of store it is.

Errors of the outside world (botocore, OSError) are translated once, here, into `StorageError`.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
from boto3.exceptions import Boto3Error
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cite_live.web.urls import Urls
from transcoder import is_audio_only_folder


class StorageError(Exception):
    """The store could not do what was asked (missing object or bucket, I/O, network, refusal)."""


class InvalidKeyError(StorageError, ValueError):
    """A key that could escape its place in the store (traversal, absolute, control characters)."""


# --- the key layout: building and parsing --------------------------------------------------------

_CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".vtt": "text/vtt",
    ".json": "application/json",
}

IMMUTABLE = "public, max-age=31536000, immutable"
PLAYLIST = "public, max-age=60"
# A playlist of a transcode still running grows every few seconds: caches must ask each time.
LIVE_PLAYLIST = "no-cache"
# Originals are the artists' raw uploads: never meant for a shared cache.
PRIVATE = "private, no-store"
DEFAULT_CACHE_CONTROL = "no-cache"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_KEY_LENGTH = 1024  # S3's own limit, in UTF-8 bytes


def validate_key(key: str) -> str:
    """Return `key` if it names an object safely inside a store, else raise InvalidKeyError."""
    if not key:
        raise InvalidKeyError("empty key")
    if len(key.encode("utf-8")) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"key longer than {MAX_KEY_LENGTH} bytes")
    if key.startswith("/"):
        raise InvalidKeyError(f"absolute key: {key!r}")
    if "\\" in key:
        raise InvalidKeyError(f"backslash in key: {key!r}")
    if _CONTROL.search(key):
        raise InvalidKeyError(f"control character in key: {key!r}")
    # Empty and "." segments are refused too: on a filesystem they alias other keys.
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise InvalidKeyError(f"empty, '.' or '..' segment in key: {key!r}")
    return key


def _validate_prefix(prefix: str) -> str:
    """A prefix is a key, or a key followed by '/', or '' (the whole store)."""
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def _segment(value: str, what: str) -> str:
    if "/" in value:
        raise InvalidKeyError(f"{what} may not contain '/': {value!r}")
    return validate_key(value)


def safe_filename(filename: str) -> str:
    """An ASCII file name that keeps the extension: 'Concert à Romans (live).MOV' → 'Concert-a-
    Romans-live.mov'. Directories a browser or client may have sent are dropped."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, extension = name.rpartition(".")
    if not dot:
        stem, extension = name, ""
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    stem = _UNSAFE_FILENAME.sub("-", ascii_stem).strip(".-_")[:100] or "original"
    extension = _UNSAFE_FILENAME.sub("", extension).lower()[:10]
    return f"{stem}.{extension}" if extension else stem


# Artists' raw uploads: ``originals/{production id}/{file name}``.
ORIGINALS = "originals/"
# Published media: ``productions/{production id}/{version}/{file as the transcoder wrote it}``.
PRODUCTIONS = "productions/"


def original_key(production_id: str, filename: str) -> str:
    return validate_key(
        f"{ORIGINALS}{_segment(production_id, 'production id')}/{safe_filename(filename)}"
    )


def production_prefix(production_id: str) -> str:
    """Every key of a production's published media, all versions, starts with this."""
    return f"{PRODUCTIONS}{production_id}/"


def version_prefix(production_id: str, version: str) -> str:
    production = _segment(production_id, "production id")
    return f"{production_prefix(production)}{_segment(version, 'version')}/"


def media_key(prefix: str, relative_path: str) -> str:
    """The key of `relative_path` (as the transcoder wrote it, '/'-separated) under `prefix`."""
    validate_key(relative_path)
    return validate_key(f"{_validate_prefix(prefix).rstrip('/')}/{relative_path}")


# The init and media segments of a rendition with sound and no picture are audio/mp4
# (RFC 4337, section 2: audio/mp4 for files without visual content).
_FRAGMENTED_MP4 = (".mp4", ".m4s")
AUDIO_MP4 = "audio/mp4"


def content_type_for(key: str) -> str:
    folder, name = posixpath.split(key)
    extension = posixpath.splitext(name)[1].lower()
    if extension in _FRAGMENTED_MP4 and is_audio_only_folder(posixpath.basename(folder)):
        return AUDIO_MP4
    return _CONTENT_TYPES.get(extension, "application/octet-stream")


def cache_control_for(key: str) -> str:
    """Published media never changes under its version prefix, so caches may keep it for a
    year; playlists stay short so that a fix to one reaches players within a minute."""
    parts = key.split("/")
    top = f"{parts[0]}/"
    if key.lower().endswith(".m3u8"):
        return PLAYLIST
    if top == PRODUCTIONS and len(parts) >= 4:
        return IMMUTABLE
    if top == ORIGINALS:
        return PRIVATE
    return DEFAULT_CACHE_CONTROL


def production_of_key(key: str) -> str | None:
    """The production a published key belongs to: ``productions/{id}/…`` → id."""
    parts = key.split("/")
    if len(parts) >= 3 and f"{parts[0]}/" == PRODUCTIONS and parts[1]:
        return parts[1]
    return None


def production_of_original(key: str) -> str | None:
    """The production an original belongs to: ``originals/{id}/…`` → id."""
    parts = key.split("/")
    if len(parts) >= 3 and f"{parts[0]}/" == ORIGINALS and parts[1]:
        return parts[1]
    return None


def is_original(key: str) -> bool:
    """True for a key under ``originals/``: an artist's raw upload, never served as media."""
    return key.startswith(ORIGINALS)


# --- the interface -------------------------------------------------------------------------------


class ObjectStore(abc.ABC):
    # What the rest of the site asks of a store, instead of which kind of store it is.
    #: True when the app itself sends the store's bytes (``/media/…``, see cite_live.web.media) and
    #: checks who may read them; False when players fetch them from the store's own addresses
    #: (``public_url``, ``presigned_url``) and the app only hands those out.
    serves_own_bytes: bool = False
    #: True when ``put_file_move`` of a file on the same disk is a rename: instant, so a
    #: request may wait for it.
    moves_cheaply: bool = False
    #: True when an object may be sent as numbered parts that the store assembles itself (an
    #: S3 multipart upload): an upload's bytes then live in the store, not on a web process.
    assembles_parts: bool = False

    @abc.abstractmethod
    def size(self, key: str) -> int:
        """The object's size in bytes, without reading it; StorageError if it is missing."""

    def open_file(self, key: str) -> int:
        """A descriptor open for reading on the object's file, for a store that serves its own
        bytes; the caller closes it. StorageError when it is missing."""
        raise StorageError(f"this store's media is not sent by the site: {key!r}")

    def presigned_url(
        self,
        key: str,
        seconds: float,
        *,
        cache_control: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """A GET URL of `key` that works for `seconds` without the site, for a store that hands
        out its own addresses (a store that serves its own bytes signs its links in the site's
        private route instead, see cite_live.access)."""
        raise StorageError(f"this store signs no links of its own: {key!r}")

    def media_origins(self) -> list[str]:
        """Where players fetch this store's media from, besides the site itself, as sources of
        a Content-Security-Policy."""
        return []

    @abc.abstractmethod
    def put_file(self, key: str, path: Path) -> None:
        """Store the file at `path` under `key` (Content-Type and Cache-Control from the key)."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        """Store ``data`` under ``key``; ``cache_control`` replaces the key's own for a store
        whose objects carry their headers (a playlist that is still growing: ``LIVE_PLAYLIST``).
        """

    def put_file_move(self, key: str, path: Path) -> None:
        """Store the file at `path` under `key`, then remove `path`.

        Safe to call again after a crash: until `path` is gone nothing is lost, and storing the
        same file twice under one key leaves one object."""
        self.put_file(key, path)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not remove {path} once stored as {key!r}: {exc}") from exc

    # Parts (a store that ``assembles_parts``): every part but the last weighs at least
    # MIN_PART; numbers run from 1 to 10000.

    def start_parts(self, key: str) -> str:
        """Begin an object sent in parts; return the store's id of it."""
        raise StorageError(f"this store does not assemble parts: {key!r}")

    def put_part(self, key: str, parts_id: str, number: int, path: Path) -> str:
        """Send the file at ``path`` as part ``number`` (again: it replaces it); its ETag."""
        raise StorageError(f"this store does not assemble parts: {key!r}")

    def finish_parts(self, key: str, parts_id: str, parts: list[tuple[int, str]]) -> None:
        """Make ``key`` of the parts (number, ETag) in order, in the store itself."""
        raise StorageError(f"this store does not assemble parts: {key!r}")

    def abort_parts(self, key: str, parts_id: str) -> None:
        """Drop an object sent in parts, and its parts; one already gone is not an error."""
        raise StorageError(f"this store does not assemble parts: {key!r}")

    def parts_pending(self, key: str, parts_id: str) -> bool:
        """Whether that object sent in parts is still open (neither finished nor dropped)."""
        raise StorageError(f"this store does not assemble parts: {key!r}")

    @abc.abstractmethod
    def download(self, key: str, path: Path) -> None:
        """Write the object to `path`, creating its folder; StorageError if it is missing."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error (as on S3)."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix`; return how many were removed."""

    @abc.abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys starting with `prefix` (a string prefix, as on S3), sorted."""

    @abc.abstractmethod
    def public_url(self, key: str, site_url: str) -> str:
        """The absolute URL a player fetches `key` from; `site_url` is the site's base URL."""

    @abc.abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The whole object (a playlist, say: small); StorageError if it is missing."""

    @abc.abstractmethod
    def set_private_prefixes(self, prefixes: Iterable[str]) -> None:
        """Refuse anonymous reads of every object under `prefixes` at its public URL."""

    @abc.abstractmethod
    def check(self, timeout: float) -> None:
        """Raise StorageError unless the store answers and takes writes, within about
        ``timeout`` seconds (a readiness probe: cheap, and writing nothing)."""

    @contextlib.contextmanager
    def available_locally(self, key: str, tmp_dir: Path | None = None) -> Iterator[Path]:
        """Yield a local copy of the object, removed afterwards whatever happens."""
        with tempfile.TemporaryDirectory(prefix="cite-live-", dir=tmp_dir) as directory:
            path = Path(directory) / posixpath.basename(validate_key(key))
            self.download(key, path)
            yield path


def _checked_delete_prefix(prefix: str) -> str:
    # Deleting "" would empty the whole store: no caller means that.
    if not prefix:
        raise InvalidKeyError("refusing to delete with an empty prefix")
    return _validate_prefix(prefix)


# --- a local folder ------------------------------------------------------------------------------

_PARTIAL = ".partial-"


class LocalStore(ObjectStore):
    """Objects as files under `root`, written atomically (temp file + rename)."""

    serves_own_bytes = True
    moves_cheaply = True

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._real_root: str | None = None

    def check(self, timeout: float) -> None:
        # A fresh installation has written nothing yet: the folder is made as the first write
        # would make it.
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"the media folder cannot be made: {exc.strerror}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageError("the media folder is not writable")

    def open_file(self, key: str) -> int:
        """A descriptor open for reading on the object's file; the caller closes it.

        The file actually opened is checked to be the file of ``key``, as :meth:`path_for`
        checks a path: one readlink of the descriptor instead of a walk of every component,
        which counts when a player fetches segments (BENCHMARKS.md). Opened non-blocking, so
        that a FIFO in the store cannot hang the caller. StorageError when it is missing, and
        InvalidKeyError when a link led elsewhere."""
        validate_key(key)
        try:
            fd = os.open(self.root / key, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError as exc:
            raise StorageError(f"no object {key!r} in the store") from exc
        try:
            try:
                opened = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                # No /proc: the slow check, on the path.
                opened = str(self.path_for(key))
            if self._real_root is None:
                self._real_root = os.path.realpath(self.root)
            if opened != f"{self._real_root.rstrip('/')}/{key}":
                raise InvalidKeyError(f"key leads elsewhere through a link: {key!r}")
        except BaseException:
            os.close(fd)
            raise
        return fd

    def path_for(self, key: str) -> Path:
        """The file of ``key``. The store writes files, never links: a link found on the way
        (to /etc, to an original, to another production's private media) was planted, and is
        never followed, even to somewhere inside the store. Only the root may be a link."""
        validate_key(key)
        root = self.root.resolve()
        path = root / key
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as exc:  # a loop of links
            raise InvalidKeyError(f"key leads nowhere through a link: {key!r}") from exc
        if resolved != path:
            raise InvalidKeyError(f"key leads elsewhere through a link: {key!r}")
        return path

    def _write(self, key: str, write: Callable[[IO[bytes]], object]) -> None:
        path = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before the rename
                dir=path.parent, prefix=_PARTIAL, delete=False
            )
            try:
                with handle:
                    write(handle)
                # NamedTemporaryFile is 0600; published media is read by whoever serves it.
                os.chmod(handle.name, 0o644)
                os.replace(handle.name, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(handle.name)
                raise
        except OSError as exc:
            raise StorageError(f"could not write {key!r}: {exc}") from exc

    def put_file(self, key: str, path: Path) -> None:
        def copy(handle: IO[bytes]) -> None:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle, 1024 * 1024)

        self._write(key, copy)

    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        # The site sends these bytes itself and chooses their headers (cite_live.web.media).
        self._write(key, lambda handle: handle.write(data))

    def put_file_move(self, key: str, path: Path) -> None:
        # A 2 GB upload received on the same filesystem becomes the object by a rename:
        # instant, and atomic (the object is whole or absent). Elsewhere, copy then unlink.
        target = self.path_for(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(path, 0o644)
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise StorageError(f"could not move {path} to {key!r}: {exc}") from exc
            super().put_file_move(key, path)
            return
        # The rename is durable only once the folder that now names the file is synced.
        try:
            folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        except OSError as exc:
            raise StorageError(f"could not sync the folder of {key!r}: {exc}") from exc

    def download(self, key: str, path: Path) -> None:
        source = self.path_for(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, path)
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc}") from exc

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def delete(self, key: str) -> None:
        path = self.path_for(key)
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not delete {key!r}: {exc}") from exc
        self._prune(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(_checked_delete_prefix(prefix))
        for key in keys:
            path = self.path_for(key)
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                raise StorageError(f"could not delete {key!r}: {exc}") from exc
        # Deepest folders first, so that a folder emptied by its children goes too.
        for folder in sorted({self.path_for(k).parent for k in keys}, key=lambda p: -len(p.parts)):
            self._prune(folder)
        return len(keys)

    def _prune(self, folder: Path) -> None:
        """Remove `folder` and its parents while they are empty, stopping at the root."""
        root = self.root.resolve()
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): nothing above can be empty either
                return
            folder = folder.parent

    def list(self, prefix: str) -> list[str]:
        _validate_prefix(prefix)
        root = self.root.resolve()
        # Walk only the folder the prefix points into; the rest is a string-prefix filter.
        folder = root / prefix.rsplit("/", 1)[0] if "/" in prefix else root
        if not folder.is_dir():
            return []
        keys: list[str] = []
        for directory, _dirs, files in os.walk(folder):
            for name in files:
                if name.startswith(_PARTIAL):
                    continue
                key = Path(directory, name).relative_to(root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def public_url(self, key: str, site_url: str) -> str:
        urls = Urls(site_url)
        return urls.absolute(urls.media(validate_key(key)))

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.path_for(key).read_bytes()
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc}") from exc

    def size(self, key: str) -> int:
        try:
            info = self.path_for(key).stat()
        except OSError as exc:
            raise StorageError(f"could not read {key!r}: {exc}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise StorageError(f"no object {key!r}")
        return info.st_size

    def set_private_prefixes(self, prefixes: Iterable[str]) -> None:
        # Nothing to store: the app serves this store's media, and its route looks up the
        # visibility of the production a key belongs to (see cite_live.access).
        return None

    @contextlib.contextmanager
    def available_locally(self, key: str, tmp_dir: Path | None = None) -> Iterator[Path]:
        # The file is already local: hand it out as it is (callers only read it).
        path = self.path_for(key)
        if not path.is_file():
            raise StorageError(f"no object {key!r}")
        yield path


# --- S3 ------------------------------------------------------------------------------------------

_MISSING = {"404", "NoSuchKey", "NotFound"}
_NO_UPLOAD = {"404", "NoSuchUpload"}
# S3's smallest part but the last.
MIN_PART = 5 * 1024 * 1024
_NO_POLICY = {"NoSuchBucketPolicy", "404"}
# The Sid of the bucket-policy statement that keeps private media from anonymous readers.
POLICY_SID = "CiteLivePrivateMedia"
_BATCH = 1000  # DeleteObjects takes at most 1000 keys per call
_ADDRESSING_STYLES: dict[str, Literal["path", "virtual", "auto"]] = {
    "path": "path",
    "virtual": "virtual",
    "auto": "auto",
}


class S3Store(ObjectStore):
    """Objects in an S3 bucket (AWS, SeaweedFS, MinIO, Ceph...) through boto3.

    Credentials come from the standard AWS chain (environment, profile, instance role), never
    from our configuration. `public_base_url`, when set, is the public address (a CDN, say)
    that serves this store's `prefix`: URLs become `public_base_url/key`.
    `browser_endpoint_url`, when set, is the endpoint as browsers reach it (the store itself
    may talk to S3 on a private address): signed links are made for it, since a signature
    covers the host it was made for and no proxy may rewrite it.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: str = "path",
        public_base_url: str | None = None,
        browser_endpoint_url: str | None = None,
        client: Any = None,
    ) -> None:
        style = _ADDRESSING_STYLES.get(addressing_style)
        if style is None:
            raise ValueError(f"addressing_style must be path, virtual or auto: {addressing_style}")
        if not bucket:
            raise ValueError("an S3 store needs a bucket")
        self.bucket = bucket
        self.prefix = _validate_prefix(prefix.strip("/") + "/" if prefix.strip("/") else "")
        self.addressing_style = addressing_style
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        if client is None:
            config = Config(
                s3={"addressing_style": style},
                retries={"max_attempts": 5, "mode": "standard"},
                # Checksums only where S3 requires them: several S3-compatible servers reject
                # the CRC headers recent botocore adds to every upload by default.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                # Presigned URLs of private media: SigV4 everywhere (botocore would otherwise
                # sign some of them with the retired SigV2 scheme).
                signature_version="s3v4",
                connect_timeout=10,
                read_timeout=60,
            )
            client = boto3.client(
                "s3", endpoint_url=endpoint_url, region_name=region, config=config
            )
        self.client = client
        # Signing is done offline: this client never sends a request.
        self.signer = (
            boto3.client(
                "s3",
                endpoint_url=browser_endpoint_url,
                region_name=region,
                config=client.meta.config,
            )
            if browser_endpoint_url
            else client
        )

    def _key(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def check(self, timeout: float) -> None:
        # The store's own client (and its credentials); its retries may outlast ``timeout``,
        # so the caller stops waiting at its deadline (cite_live.health).
        with self._boundary("reach", self.bucket):
            self.client.head_bucket(Bucket=self.bucket)

    def media_origins(self) -> list[str]:
        """The public base URL (a CDN, or the bucket's address) and the bucket's address on the
        endpoint, which presigned links of private media use, in path and, unless addressing is
        ``path``, virtual-host form (botocore falls back from one to the other by itself, e.g.
        for an IP address)."""
        probe = "probe"
        public = self.public_url(probe, "")
        sources = [public[: -len(probe)]]
        endpoint = urlsplit(str(self.signer.meta.endpoint_url))
        prefix = quote(self.prefix)
        base = endpoint.path.rstrip("/")
        sources.append(f"{endpoint.scheme}://{endpoint.netloc}{base}/{quote(self.bucket)}/{prefix}")
        if self.addressing_style != "path":
            sources.append(f"{endpoint.scheme}://{self.bucket}.{endpoint.netloc}/{prefix}")
        return sources

    @contextlib.contextmanager
    def _boundary(self, action: str, key: str) -> Iterator[None]:
        try:
            yield
        except (BotoCoreError, ClientError, Boto3Error, OSError) as exc:
            raise StorageError(
                f"could not {action} {key!r} in bucket {self.bucket!r}: {exc}"
            ) from exc

    def _extra_args(self, key: str) -> dict[str, str]:
        return {"ContentType": content_type_for(key), "CacheControl": cache_control_for(key)}

    def put_file(self, key: str, path: Path) -> None:
        with self._boundary("upload", key):
            # upload_file switches to multipart for big files (a 2 GB concert capture).
            self.client.upload_file(
                str(path), self.bucket, self._key(key), ExtraArgs=self._extra_args(key)
            )

    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        extra = self._extra_args(key)
        if cache_control is not None:
            extra["CacheControl"] = cache_control
        with self._boundary("upload", key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)

    assembles_parts = True

    def start_parts(self, key: str) -> str:
        with self._boundary("start a multipart upload of", key):
            response = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), **self._extra_args(key)
            )
            return str(response["UploadId"])

    def put_part(self, key: str, parts_id: str, number: int, path: Path) -> str:
        with self._boundary(f"send part {number} of", key), path.open("rb") as body:
            response = self.client.upload_part(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=parts_id,
                PartNumber=number,
                Body=body,
                ContentLength=path.stat().st_size,
            )
            return str(response["ETag"])

    def finish_parts(self, key: str, parts_id: str, parts: list[tuple[int, str]]) -> None:
        listed = [{"PartNumber": number, "ETag": etag} for number, etag in parts]
        with self._boundary("complete the multipart upload of", key):
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self._key(key),
                UploadId=parts_id,
                MultipartUpload={"Parts": listed},
            )

    def abort_parts(self, key: str, parts_id: str) -> None:
        with self._boundary("abort the multipart upload of", key):
            try:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._key(key), UploadId=parts_id
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) not in _NO_UPLOAD:
                    raise

    def parts_pending(self, key: str, parts_id: str) -> bool:
        with self._boundary("look up the multipart upload of", key):
            try:
                self.client.list_parts(
                    Bucket=self.bucket, Key=self._key(key), UploadId=parts_id, MaxParts=1
                )
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _NO_UPLOAD:
                    return False
                raise
        return True

    def download(self, key: str, path: Path) -> None:
        with self._boundary("download", key):
            path.parent.mkdir(parents=True, exist_ok=True)
            # download_file writes to a temporary name and renames it when complete.
            self.client.download_file(self.bucket, self._key(key), str(path))

    def exists(self, key: str) -> bool:
        with self._boundary("look up", key):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        with self._boundary("delete", key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def _full_keys(self, prefix: str) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def delete_prefix(self, prefix: str) -> int:
        _checked_delete_prefix(prefix)
        removed = 0
        with self._boundary("delete objects under", prefix):
            batch: list[str] = []
            for full_key in self._full_keys(prefix):
                batch.append(full_key)
                if len(batch) == _BATCH:
                    removed += self._delete_batch(batch)
                    batch = []
            if batch:
                removed += self._delete_batch(batch)
        return removed

    def _delete_batch(self, keys: list[str]) -> int:
        response = self.client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
        )
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise StorageError(
                f"could not delete {len(errors)} object(s), first {first.get('Key')!r}: "
                f"{first.get('Code')} {first.get('Message')}"
            )
        return len(keys)

    def list(self, prefix: str) -> list[str]:
        _validate_prefix(prefix)
        with self._boundary("list objects under", prefix):
            return sorted(full_key[len(self.prefix) :] for full_key in self._full_keys(prefix))

    def public_url(self, key: str, site_url: str) -> str:
        path = quote(validate_key(key))
        if self.public_base_url:
            return f"{self.public_base_url}/{path}"
        # The bucket's address as browsers reach it.
        endpoint = urlsplit(str(self.signer.meta.endpoint_url))
        object_path = quote(self.prefix) + path
        if self.addressing_style == "virtual":
            host = f"{self.bucket}.{endpoint.netloc}"
            return urlunsplit((endpoint.scheme, host, f"/{object_path}", "", ""))
        base = endpoint.path.rstrip("/")
        return urlunsplit(
            (endpoint.scheme, endpoint.netloc, f"{base}/{self.bucket}/{object_path}", "", "")
        )

    # --- private media (see cite_live.access) ---

    def read_bytes(self, key: str) -> bytes:
        with self._boundary("read", key):
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            body: bytes = response["Body"].read()
            return body

    def size(self, key: str) -> int:
        with self._boundary("look up", key):
            # A HEAD request, not a download of a file that may weigh 100 MB.
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return int(head["ContentLength"])

    def presigned_url(
        self,
        key: str,
        seconds: float,
        *,
        cache_control: str | None = None,
        content_disposition: str | None = None,
    ) -> str:
        """A GET URL of `key` that works for `seconds` (at least 1), from the S3 endpoint
        itself: a CDN in front (public_base_url) would not pass the signature on.
        `cache_control` and `content_disposition` replace the object's own headers in the
        response."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self._key(key)}
        if cache_control:
            params["ResponseCacheControl"] = cache_control
        if content_disposition:
            params["ResponseContentDisposition"] = content_disposition
        with self._boundary("sign a link to", key):
            url: str = self.signer.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=max(1, int(seconds))
            )
        return url

    def _policy_sid(self) -> str:
        # Sids are letters and digits; two sites sharing a bucket under different prefixes
        # each keep their own statement.
        if not self.prefix:
            return POLICY_SID
        return POLICY_SID + hashlib.sha256(self.prefix.encode()).hexdigest()[:12]

    def set_private_prefixes(self, prefixes: Iterable[str]) -> None:
        """Keep one Deny statement of the bucket policy listing `prefixes`, and leave every other
        statement (the operator's public-read grant, say) as it is.

        Per-object ACLs were the other standard way; SeaweedFS accepts them but does not apply
        them to anonymous reads, and AWS turns ACLs off on new buckets. The statement denies
        only requests without a signature (no principal account): the site's own credentials,
        and the presigned URLs it hands out, still read these objects. AWS caps a bucket policy
        at 20 KB, about 300 private productions."""
        sid = self._policy_sid()
        resources = sorted(
            {f"arn:aws:s3:::{self.bucket}/{self.prefix}{_validate_prefix(p)}*" for p in prefixes}
        )
        statement = {
            "Sid": sid,
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": resources,
            "Condition": {"Null": {"aws:PrincipalAccount": "true"}},
        }
        with self._boundary("update the policy of bucket", self.bucket):
            document = self._bucket_policy()
            statements = document.get("Statement", [])
            if isinstance(statements, dict):
                statements = [statements]
            ours = [s for s in statements if isinstance(s, dict) and s.get("Sid") == sid]
            others = [s for s in statements if not (isinstance(s, dict) and s.get("Sid") == sid)]
            if resources and ours == [statement]:
                return
            if not resources and not ours:
                return
            kept = [*others, statement] if resources else others
            if kept:
                document = {**document, "Version": "2012-10-17", "Statement": kept}
                self.client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(document))
            else:
                self.client.delete_bucket_policy(Bucket=self.bucket)

    def _bucket_policy(self) -> dict[str, Any]:
        try:
            response = self.client.get_bucket_policy(Bucket=self.bucket)
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) in _NO_POLICY:
                return {}
            raise
        document = json.loads(response["Policy"])
        return document if isinstance(document, dict) else {}
