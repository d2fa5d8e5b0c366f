"""An HLS checker for tests, written from RFC 8216 and independent of the transcoder.

    report = check_hls(out_dir)                  # a local tree: out_dir/master.m3u8
    report = check_hls("http://127.0.0.1:8000/media/productions/1/v1/")   # or over HTTP

`check_hls` raises AssertionError listing every problem found; `inspect_hls` returns the same
`HLSReport` without raising. What is checked:

- every playlist starts with #EXTM3U; master and media tags are not mixed;
- media playlists: one integer EXT-X-TARGETDURATION that no EXTINF exceeds once rounded,
  EXT-X-VERSION high enough for what is used (6 for EXT-X-MAP, 4 for BYTERANGE, 3 for decimal
  durations), EXT-X-PLAYLIST-TYPE:VOD, EXT-X-ENDLIST, every URI present;
- master: BANDWIDTH and CODECS on every EXT-X-STREAM-INF, RESOLUTION and FRAME-RATE on video
  variants, AVERAGE-BANDWIDTH <= BANDWIDTH, EXT-X-INDEPENDENT-SEGMENTS, referenced EXT-X-MEDIA
  groups present, audio codecs declared when an audio group is used, a BCP 47 LANGUAGE on
  every non-video rendition (Apple's authoring specification);
- I-frame playlists (EXT-X-I-FRAME-STREAM-INF): one for every video variant (Apple's
  authoring specification), BANDWIDTH, video-only CODECS and RESOLUTION, EXT-X-I-FRAMES-ONLY,
  byte ranges inside their files and under BANDWIDTH; with `keyframes`, every entry decodes
  alone (init + range) to a key frame of the stream's size;
- measured bit rates: the peak (RFC 8216 §4.3.4.2 windows of 0.5-1.5 x target duration) and the
  average of each variant, its audio rendition included, against BANDWIDTH and
  AVERAGE-BANDWIDTH, with a tolerance;
- total durations agree across playlists (and with `expected_duration` when given);
- keyframes (ffprobe): each video segment, joined to its init segment, starts with a key frame;
  segment start times match across video variants and follow the EXTINF durations.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import httpx

VIDEO_CODECS = ("avc1", "avc3", "hvc1", "hev1", "vp09", "vp08", "av01", "dvh1", "dvhe", "mp4v")
AUDIO_CODECS = ("mp4a", "ac-3", "ec-3", "opus", "flac", "fLaC", "alac", "mp3")
MASTER_TAGS = (
    "#EXT-X-STREAM-INF",
    "#EXT-X-MEDIA:",
    "#EXT-X-I-FRAME-STREAM-INF",
    "#EXT-X-SESSION-DATA",
    "#EXT-X-SESSION-KEY",
)
MEDIA_TAGS = (
    "#EXTINF",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-MAP",
    "#EXT-X-BYTERANGE",
)
_ATTRIBUTE = re.compile(r'([A-Z0-9-]+)=("[^"\r\n]*"|[^",\s]*)(,|$)')


# --- parsed playlists ----------------------------------------------------------------------------


@dataclass
class Segment:
    uri: str  # absolute (file:// or http(s)://)
    duration: float
    byterange: tuple[int, int] | None = None  # (length, offset)
    init_uri: str | None = None
    init_byterange: tuple[int, int] | None = None


@dataclass
class MediaPlaylist:
    uri: str
    version: int = 1
    target_duration: int | None = None
    playlist_type: str | None = None
    endlist: bool = False
    segments: list[Segment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def total_duration(self) -> float:
        return sum(segment.duration for segment in self.segments)


@dataclass
class Rendition:
    attributes: dict[str, str]
    uri: str | None

    @property
    def type(self) -> str:
        return self.attributes.get("TYPE", "")

    @property
    def group_id(self) -> str:
        return self.attributes.get("GROUP-ID", "")


@dataclass
class Variant:
    attributes: dict[str, str]
    uri: str

    @property
    def bandwidth(self) -> int | None:
        return _int(self.attributes.get("BANDWIDTH"))

    @property
    def average_bandwidth(self) -> int | None:
        return _int(self.attributes.get("AVERAGE-BANDWIDTH"))

    @property
    def codecs(self) -> list[str]:
        value = self.attributes.get("CODECS", "")
        return [codec.strip() for codec in value.split(",") if codec.strip()]

    @property
    def has_video(self) -> bool:
        codecs = self.codecs
        if codecs:
            return any(codec.startswith(VIDEO_CODECS) for codec in codecs)
        return "RESOLUTION" in self.attributes

    @property
    def resolution(self) -> tuple[int, int] | None:
        match = re.fullmatch(r"(\d+)x(\d+)", self.attributes.get("RESOLUTION", ""))
        return (int(match[1]), int(match[2])) if match else None


@dataclass
class MasterPlaylist:
    uri: str
    version: int = 1
    independent_segments: bool = False
    variants: list[Variant] = field(default_factory=list)
    renditions: list[Rendition] = field(default_factory=list)
    # EXT-X-I-FRAME-STREAM-INF: attributes, and the playlist's URI (its URI attribute).
    iframe_streams: list[Variant] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def group(self, kind: str, group_id: str) -> list[Rendition]:
        return [r for r in self.renditions if r.type == kind and r.group_id == group_id]


@dataclass
class SegmentStart:
    uri: str
    start: float  # presentation time of the first video frame, in seconds
    keyframe: bool
    size: tuple[int, int] | None


@dataclass
class HLSReport:
    master: MasterPlaylist
    media: dict[str, MediaPlaylist]
    iframes: dict[str, MediaPlaylist] = field(default_factory=dict)
    peak_bitrates: dict[str, float] = field(default_factory=dict)  # by variant URI, bits/s
    average_bitrates: dict[str, float] = field(default_factory=dict)
    segment_starts: dict[str, list[SegmentStart]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def parse_attributes(text: str) -> dict[str, str]:
    """An RFC 8216 attribute list; quoted strings lose their quotes. ValueError if malformed."""
    attributes: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _ATTRIBUTE.match(text, position)
        if match is None:
            raise ValueError(f"malformed attribute list at {text[position:]!r}")
        name, value = match[1], match[2]
        if name in attributes:
            raise ValueError(f"attribute {name} appears twice")
        attributes[name] = value[1:-1] if value.startswith('"') else value
        position = match.end()
    return attributes


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _byterange(value: str, previous_end: int) -> tuple[int, int]:
    length, _, offset = value.partition("@")
    return int(length), int(offset) if offset else previous_end


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _header_problems(lines: list[str], name: str) -> list[str]:
    if not lines or lines[0] != "#EXTM3U":
        first = lines[0][:40] if lines else "nothing"
        return [f"{name}: first line must be #EXTM3U, found {first!r}"]
    return []


def parse_media_playlist(  # noqa: C901 - one branch per tag of the playlist grammar
    text: str, uri: str, label: str | None = None
) -> MediaPlaylist:
    """Parse a media playlist and collect the problems visible from its text alone.

    `uri` is where it was read from (relative URIs resolve against it); `label` names it in
    messages."""
    name = label or uri
    here = _folder(uri)
    playlist = MediaPlaylist(uri=uri)
    lines = _lines(text)
    problems = playlist.problems
    problems += _header_problems(lines, name)
    targets: list[str] = []
    versions: list[str] = []
    duration: float | None = None
    byterange: tuple[int, int] | None = None
    init: tuple[str, tuple[int, int] | None] | None = None
    uses = {"map": False, "byterange": False, "decimal": False, "iframes": False}
    range_end = 0
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if line.startswith(MASTER_TAGS):
            problems.append(f"{name}: master playlist tag in a media playlist: {line[:40]}")
        elif tag == "#EXT-X-TARGETDURATION":
            targets.append(value)
        elif tag == "#EXT-X-VERSION":
            versions.append(value)
        elif tag == "#EXT-X-PLAYLIST-TYPE":
            playlist.playlist_type = value
        elif tag == "#EXT-X-ENDLIST":
            playlist.endlist = True
        elif tag == "#EXT-X-I-FRAMES-ONLY":
            uses["iframes"] = True
        elif tag == "#EXTINF":
            text_duration = value.split(",", 1)[0]
            try:
                duration = float(text_duration)
            except ValueError:
                problems.append(f"{name}: EXTINF duration is not a number: {line}")
                duration = 0.0
            uses["decimal"] |= not text_duration.isdigit()
        elif tag == "#EXT-X-BYTERANGE":
            uses["byterange"] = True
            byterange = _byterange(value, range_end)
        elif tag == "#EXT-X-MAP":
            uses["map"] = True
            try:
                attributes = parse_attributes(value)
            except ValueError as exc:
                problems.append(f"{name}: EXT-X-MAP: {exc}")
                continue
            if "URI" not in attributes:
                problems.append(f"{name}: EXT-X-MAP without URI")
                continue
            map_range = None
            if "BYTERANGE" in attributes:
                uses["byterange"] = True
                map_range = _byterange(attributes["BYTERANGE"], 0)
            init = (urljoin(uri, attributes["URI"]), map_range)
        elif not line.startswith("#"):
            if duration is None:
                problems.append(f"{name}: URI without a preceding EXTINF: {line}")
                continue
            segment = Segment(urljoin(uri, line), duration, byterange)
            if init is not None:
                segment.init_uri, segment.init_byterange = init
            playlist.segments.append(segment)
            if byterange is not None:
                range_end = byterange[1] + byterange[0]
            duration, byterange = None, None
    if duration is not None:
        problems.append(f"{name}: the last EXTINF has no URI")

    if len(versions) > 1:
        problems.append(f"{name}: EXT-X-VERSION appears {len(versions)} times")
    if versions:
        if versions[0].isdigit():
            playlist.version = int(versions[0])
        else:
            problems.append(f"{name}: EXT-X-VERSION is not an integer: {versions[0]!r}")
    if len(targets) != 1:
        problems.append(f"{name}: EXT-X-TARGETDURATION must appear once, found {len(targets)}")
    elif not targets[0].isdigit():
        problems.append(f"{name}: EXT-X-TARGETDURATION must be an integer, found {targets[0]!r}")
    else:
        playlist.target_duration = int(targets[0])
        for segment in playlist.segments:
            # RFC 8216 §4.3.3.1: each duration, rounded to the nearest integer, <= target.
            rounded = math.floor(segment.duration + 0.5)
            if rounded > playlist.target_duration:
                problems.append(
                    f"{name}: EXT-X-TARGETDURATION {playlist.target_duration} is less than "
                    f"EXTINF {segment.duration:.3f} of {_relative(segment.uri, here)} "
                    f"(rounds to {rounded})"
                )
    needed = max(
        6 if uses["map"] and not uses["iframes"] else 1,
        4 if uses["byterange"] or uses["iframes"] else 1,
        3 if uses["decimal"] else 1,
    )
    if playlist.version < needed:
        problems.append(
            f"{name}: EXT-X-VERSION {playlist.version} is too low for the tags used "
            f"(needs {needed})"
        )
    if playlist.playlist_type != "VOD":
        problems.append(f"{name}: EXT-X-PLAYLIST-TYPE must be VOD, found {playlist.playlist_type}")
    if not playlist.endlist:
        problems.append(f"{name}: EXT-X-ENDLIST is missing")
    if not playlist.segments:
        problems.append(f"{name}: no segments")
    if any(segment.duration <= 0 for segment in playlist.segments):
        problems.append(f"{name}: a segment has a zero or negative EXTINF")
    return playlist


def parse_master_playlist(text: str, uri: str, label: str | None = None) -> MasterPlaylist:
    """Parse a master playlist and collect the problems visible from its text alone."""
    name = label or uri
    master = MasterPlaylist(uri=uri)
    lines = _lines(text)
    problems = master.problems
    problems += _header_problems(lines, name)
    pending: dict[str, str] | None = None
    for line in lines[1:]:
        tag, _, value = line.partition(":")
        if line.startswith(MEDIA_TAGS):
            problems.append(f"{name}: media playlist tag in a master playlist: {line[:40]}")
        elif tag == "#EXT-X-VERSION" and value.isdigit():
            master.version = int(value)
        elif tag == "#EXT-X-INDEPENDENT-SEGMENTS":
            master.independent_segments = True
        elif tag in ("#EXT-X-STREAM-INF", "#EXT-X-MEDIA", "#EXT-X-I-FRAME-STREAM-INF"):
            try:
                attributes = parse_attributes(value)
            except ValueError as exc:
                problems.append(f"{name}: {tag}: {exc}")
                continue
            if tag == "#EXT-X-STREAM-INF":
                if pending is not None:
                    problems.append(f"{name}: EXT-X-STREAM-INF without a URI line")
                pending = attributes
            elif tag == "#EXT-X-MEDIA":
                media_uri = attributes.get("URI")
                master.renditions.append(
                    Rendition(attributes, urljoin(uri, media_uri) if media_uri else None)
                )
            elif "URI" not in attributes:
                problems.append(f"{name}: EXT-X-I-FRAME-STREAM-INF without URI")
            else:
                master.iframe_streams.append(Variant(attributes, urljoin(uri, attributes["URI"])))
        elif not line.startswith("#"):
            if pending is None:
                problems.append(f"{name}: URI without EXT-X-STREAM-INF: {line}")
                continue
            master.variants.append(Variant(pending, urljoin(uri, line)))
            pending = None
    if pending is not None:
        problems.append(f"{name}: the last EXT-X-STREAM-INF has no URI")
    problems += _master_rules(master, name, _folder(uri))
    return master


def _master_rules(  # noqa: C901 - a flat list of independent rules, one branch each
    master: MasterPlaylist, name: str, here: str
) -> list[str]:
    problems: list[str] = []
    if not master.variants:
        problems.append(f"{name}: no EXT-X-STREAM-INF")
    if not master.independent_segments:
        problems.append(f"{name}: EXT-X-INDEPENDENT-SEGMENTS is missing")
    for rendition in master.renditions:
        label = f"{name}: EXT-X-MEDIA {rendition.attributes.get('NAME', '?')}"
        for required in ("TYPE", "GROUP-ID", "NAME"):
            if required not in rendition.attributes:
                problems.append(f"{label} has no {required}")
        # Apple's HLS authoring specification (Alternate Media): LANGUAGE is required on every
        # non-video rendition, and RFC 8216 (4.3.4.1) wants it an RFC 5646 tag.
        language = rendition.attributes.get("LANGUAGE")
        if rendition.type in ("AUDIO", "SUBTITLES", "CLOSED-CAPTIONS") and language is None:
            problems.append(f"{label} has no LANGUAGE")
        elif language is not None and not re.fullmatch(
            r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*", language
        ):
            problems.append(f"{label}: LANGUAGE {language!r} is not a BCP 47 tag")
        if rendition.type == "SUBTITLES" and rendition.uri is None:
            problems.append(f"{label}: SUBTITLES need a URI")
        if rendition.type == "CLOSED-CAPTIONS" and rendition.uri is not None:
            problems.append(f"{label}: CLOSED-CAPTIONS must not have a URI")
    for variant in master.variants:
        label = f"{name}: variant {_relative(variant.uri, here)}"
        attributes = variant.attributes
        bandwidth, average = variant.bandwidth, variant.average_bandwidth
        if bandwidth is None:
            problems.append(f"{label} has no valid BANDWIDTH")
        if "AVERAGE-BANDWIDTH" in attributes:
            if average is None:
                problems.append(f"{label}: AVERAGE-BANDWIDTH is not an integer")
            elif bandwidth is not None and average > bandwidth:
                problems.append(f"{label}: AVERAGE-BANDWIDTH {average} > BANDWIDTH {bandwidth}")
        if not variant.codecs:
            problems.append(f"{label} has no CODECS")
        if variant.has_video:
            if variant.resolution is None:
                problems.append(f"{label} is video but has no valid RESOLUTION")
            if not re.fullmatch(r"\d+(\.\d+)?", attributes.get("FRAME-RATE", "")):
                problems.append(f"{label} is video but has no valid FRAME-RATE")
        for kind in ("AUDIO", "VIDEO", "SUBTITLES", "CLOSED-CAPTIONS"):
            group_id = attributes.get(kind)
            if group_id is None or (kind == "CLOSED-CAPTIONS" and group_id == "NONE"):
                continue
            if not master.group(kind, group_id):
                problems.append(f"{label}: {kind} group {group_id!r} has no EXT-X-MEDIA")
        if (
            "AUDIO" in attributes
            and variant.codecs
            and not any(codec.startswith(AUDIO_CODECS) for codec in variant.codecs)
        ):
            problems.append(f"{label}: uses an AUDIO group but CODECS names no audio codec")
    problems += _iframe_rules(master, name, here)
    return problems


def _iframe_rules(master: MasterPlaylist, name: str, here: str) -> list[str]:
    """RFC 8216 4.3.4.3, and Apple's HLS authoring specification (Trick Play): an I-frame
    playlist for every video variant, with BANDWIDTH, CODECS (video only) and RESOLUTION."""
    problems: list[str] = []
    for stream in master.iframe_streams:
        label = f"{name}: I-frame stream {_relative(stream.uri, here)}"
        if stream.bandwidth is None:
            problems.append(f"{label} has no valid BANDWIDTH")
        average = stream.average_bandwidth
        if average is not None and stream.bandwidth is not None and average > stream.bandwidth:
            problems.append(f"{label}: AVERAGE-BANDWIDTH {average} > BANDWIDTH {stream.bandwidth}")
        if not stream.codecs or not stream.has_video:
            problems.append(f"{label} has no video CODECS")
        if any(codec.startswith(AUDIO_CODECS) for codec in stream.codecs):
            problems.append(f"{label}: CODECS names an audio codec")
        if stream.resolution is None:
            problems.append(f"{label} has no valid RESOLUTION")
        for forbidden in ("AUDIO", "SUBTITLES", "CLOSED-CAPTIONS", "FRAME-RATE"):
            if forbidden in stream.attributes:
                problems.append(f"{label}: {forbidden} is not allowed on an I-frame stream")
    offered = {(s.resolution, tuple(s.codecs)) for s in master.iframe_streams}
    for variant in master.variants:
        if not variant.has_video:
            continue
        video = tuple(c for c in variant.codecs if c.startswith(VIDEO_CODECS))
        if (variant.resolution, video) not in offered:
            problems.append(
                f"{name}: variant {_relative(variant.uri, here)} has no I-frame playlist "
                "of its resolution and video codec"
            )
    return problems


# --- reading a tree, local or over HTTP -----------------------------------------------------------


class Reader:
    """Reads the objects of one HLS tree, confined to the folder of its master playlist."""

    def __init__(self, root: str, client: httpx.Client | None = None) -> None:
        self.root = root
        self.local = root.startswith("file:")
        self._client = client
        self._own_client = False
        # Every segment of a rung is probed joined to the same init segment: read it once.
        self._init_cache: dict[tuple[str, tuple[int, int] | None], bytes] = {}

    def _path(self, uri: str) -> Path:
        if not uri.startswith("file:"):
            raise FileNotFoundError(f"not a local file: {uri}")
        if not uri.startswith(self.root):
            raise FileNotFoundError(f"outside the HLS folder: {uri}")
        return Path(unquote(urlsplit(uri).path))

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(timeout=30, follow_redirects=True)
            self._own_client = True
        return self._client

    def read(self, uri: str, byterange: tuple[int, int] | None = None) -> bytes:
        if self.local:
            data = self._path(uri).read_bytes()
        else:
            response = self.client.get(uri)
            if response.status_code != 200:
                raise FileNotFoundError(f"HTTP {response.status_code} for {uri}")
            data = response.content
        if byterange is not None:
            length, offset = byterange
            data = data[offset : offset + length]
            if len(data) != length:
                raise FileNotFoundError(f"byte range {length}@{offset} beyond the end of {uri}")
        return data

    def read_init(self, uri: str, byterange: tuple[int, int] | None) -> bytes:
        key = (uri, byterange)
        if key not in self._init_cache:
            self._init_cache[key] = self.read(uri, byterange)
        return self._init_cache[key]

    def size(self, uri: str, byterange: tuple[int, int] | None = None) -> int:
        if byterange is not None:
            return byterange[0]
        if self.local:
            path = self._path(uri)
            if not path.is_file():
                raise FileNotFoundError(f"missing: {uri}")
            return path.stat().st_size
        response = self.client.head(uri)
        if response.status_code != 200:
            raise FileNotFoundError(f"HTTP {response.status_code} for {uri}")
        length = response.headers.get("content-length")
        return int(length) if length is not None else len(self.read(uri))

    def short(self, uri: str) -> str:
        return _relative(uri, self.root)

    def close(self) -> None:
        if self._own_client and self._client is not None:
            self._client.close()


def _master_location(location: str | Path, master_name: str) -> str:
    if isinstance(location, Path) or not re.match(r"https?://", location):
        path = Path(location).resolve()
        return (path / master_name if path.is_dir() else path).as_uri()
    return location if location.endswith(".m3u8") else f"{location.rstrip('/')}/{master_name}"


def _folder(uri: str) -> str:
    return uri.rsplit("/", 1)[0] + "/"


def _relative(uri: str, base: str) -> str:
    """`uri` relative to the folder `base` when inside it, for readable messages."""
    return uri[len(base) :] if uri.startswith(base) else uri


# --- measurements --------------------------------------------------------------------------------


def _windows(durations: list[float], target: float) -> Iterator[tuple[int, int, float, float]]:
    """(first, last, start, end) of runs of segments lasting 0.5-1.5 x target (RFC 8216
    §4.3.4.2); the whole playlist when no run qualifies (very short media)."""
    starts = [0.0]
    for duration in durations:
        starts.append(starts[-1] + duration)
    found = False
    for first in range(len(durations)):
        for last in range(first, len(durations)):
            span = starts[last + 1] - starts[first]
            if span > 1.5 * target and last > first:
                break
            if span >= 0.5 * target:
                found = True
                yield first, last, starts[first], starts[last + 1]
    if not found and durations:
        yield 0, len(durations) - 1, 0.0, starts[-1]


def _bits_between(segments: list[tuple[float, float, int]], start: float, end: float) -> float:
    """Bits of (start, duration, bytes) segments falling within [start, end], pro rata."""
    bits = 0.0
    for seg_start, duration, size in segments:
        overlap = min(end, seg_start + duration) - max(start, seg_start)
        if overlap > 0 and duration > 0:
            bits += 8 * size * overlap / duration
    return bits


def _timed_sizes(playlist: MediaPlaylist, reader: Reader) -> list[tuple[float, float, int]]:
    timed, start = [], 0.0
    for segment in playlist.segments:
        try:
            size = reader.size(segment.uri, segment.byterange)
        except (FileNotFoundError, OSError, httpx.HTTPError):
            size = 0  # reported as missing elsewhere
        timed.append((start, segment.duration, size))
        start += segment.duration
    return timed


def _measure_variant(variant: Variant, report: HLSReport, reader: Reader, tolerance: float) -> None:
    name = reader.short(report.master.uri)
    playlist = report.media.get(variant.uri)
    if playlist is None or not playlist.segments:
        return
    own = _timed_sizes(playlist, reader)
    companions: list[list[tuple[float, float, int]]] = [[]]
    group_id = variant.attributes.get("AUDIO")
    if group_id:
        for rendition in report.master.group("AUDIO", group_id):
            # A rendition without URI (or the variant's own playlist) is muxed in: counted.
            if rendition.uri and rendition.uri != variant.uri and rendition.uri in report.media:
                companions.append(_timed_sizes(report.media[rendition.uri], reader))
    target = float(playlist.target_duration or max(s.duration for s in playlist.segments))
    durations = [segment.duration for segment in playlist.segments]
    peak = 0.0
    for _first, _last, start, end in _windows(durations, target):
        own_bits = _bits_between(own, start, end)
        extra = max(_bits_between(c, start, end) for c in companions)
        peak = max(peak, (own_bits + extra) / (end - start))
    total = playlist.total_duration
    average = _bits_between(own, 0, total) + max(_bits_between(c, 0, total) for c in companions)
    average /= total if total > 0 else 1
    report.peak_bitrates[variant.uri] = peak
    report.average_bitrates[variant.uri] = average
    label = f"{name}: variant {reader.short(variant.uri)}"
    if variant.bandwidth and peak > variant.bandwidth * (1 + tolerance):
        report.problems.append(
            f"{label}: measured peak {peak:.0f} bit/s exceeds BANDWIDTH {variant.bandwidth} "
            f"by {100 * (peak / variant.bandwidth - 1):.0f}% (tolerance {tolerance:.0%})"
        )
    declared = variant.average_bandwidth
    if declared and average > declared * (1 + tolerance):
        report.problems.append(
            f"{label}: measured average {average:.0f} bit/s exceeds AVERAGE-BANDWIDTH "
            f"{declared} by {100 * (average / declared - 1):.0f}%"
        )


def probe_segment(data: bytes, suffix: str = ".mp4") -> SegmentStart:
    """First video packet and first decoded frame of one (init + media) segment."""
    with tempfile.TemporaryDirectory(prefix="hls-check-") as directory:
        path = Path(directory) / f"segment{suffix}"
        path.write_bytes(data)
        command = [
            "ffprobe",
            "-v",
            "error",
            "-protocol_whitelist",
            "file",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
            "-show_packets",
            "-show_frames",
            "-show_entries",
            "packet=pts_time,dts_time,flags:frame=pts_time,key_frame,pict_type,width,height",
            "-of",
            "json",
            str(path),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ValueError(f"ffprobe failed: {result.stderr.strip()[-300:]}")
    entries: list[dict[str, Any]] = json.loads(result.stdout).get("packets_and_frames", [])
    packets = [e for e in entries if e.get("type") == "packet"]
    frames = [e for e in entries if e.get("type") == "frame"]
    if not packets:
        raise ValueError("no video packet")
    packet = packets[0]
    start = float(packet.get("pts_time", packet.get("dts_time", "nan")))
    # Trust the decoder, not only the container's sync flag: the first frame must decode on its
    # own as an I picture, at the first packet's time.
    keyframe = "K" in packet.get("flags", "")
    size = None
    if frames:
        frame = frames[0]
        keyframe = keyframe and frame.get("key_frame") == 1 and frame.get("pict_type") == "I"
        keyframe = keyframe and abs(float(frame.get("pts_time", "nan")) - start) < 1e-6
        size = (int(frame["width"]), int(frame["height"]))
    else:
        keyframe = False
    return SegmentStart(uri="", start=start, keyframe=keyframe, size=size)


def _check_keyframes(
    report: HLSReport, reader: Reader, alignment: float, extinf_tolerance: float
) -> None:
    name = reader.short(report.master.uri)
    rungs = [v for v in report.master.variants if v.has_video and v.uri in report.media]
    for variant in rungs:
        playlist = report.media[variant.uri]
        starts: list[SegmentStart] = []
        for index, segment in enumerate(playlist.segments):
            label = f"{name}: {reader.short(segment.uri)}"
            try:
                data = reader.read(segment.uri, segment.byterange)
                if segment.init_uri:
                    data = reader.read_init(segment.init_uri, segment.init_byterange) + data
                suffix = ".mp4" if segment.init_uri else Path(urlsplit(segment.uri).path).suffix
                probed = probe_segment(data, suffix or ".ts")
            except (FileNotFoundError, OSError, httpx.HTTPError):
                continue  # reported as missing elsewhere
            except ValueError as exc:
                report.problems.append(f"{label}: cannot be probed: {exc}")
                continue
            probed.uri = segment.uri
            starts.append(probed)
            if not probed.keyframe:
                report.problems.append(
                    f"{label}: segment {index} of {reader.short(variant.uri)} does not start "
                    f"with a key frame (first video frame at {probed.start:.3f}s)"
                )
        report.segment_starts[variant.uri] = starts
        if len(starts) == len(playlist.segments) and starts:
            elapsed = 0.0
            for probed, segment in zip(starts, playlist.segments, strict=True):
                drift = (probed.start - starts[0].start) - elapsed
                if abs(drift) > extinf_tolerance:
                    report.problems.append(
                        f"{name}: {reader.short(probed.uri)} starts at {probed.start:.3f}s but the "
                        f"EXTINF durations before it add up to {elapsed:.3f}s from the first "
                        "segment"
                    )
                    break
                elapsed += segment.duration
        declared = variant.resolution
        sizes = {s.size for s in starts if s.size is not None}
        if declared and sizes and declared not in sizes:
            report.problems.append(
                f"{name}: variant {reader.short(variant.uri)} declares RESOLUTION "
                f"{declared[0]}x{declared[1]} but its frames are "
                + ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
            )
    _check_alignment(report, reader, name, rungs, alignment)


def _check_alignment(
    report: HLSReport, reader: Reader, name: str, rungs: list[Variant], alignment: float
) -> None:
    measured = [(v.uri, report.segment_starts.get(v.uri, [])) for v in rungs]
    if len(measured) < 2:
        return
    reference_uri, reference = measured[0]
    for uri, starts in measured[1:]:
        if len(starts) != len(reference):
            report.problems.append(
                f"{name}: {reader.short(uri)} has {len(starts)} probed segments, "
                f"{reader.short(reference_uri)} has {len(reference)}: keyframes are not aligned"
            )
            continue
        for index, (mine, theirs) in enumerate(zip(starts, reference, strict=True)):
            if abs(mine.start - theirs.start) > alignment:
                report.problems.append(
                    f"{name}: segment {index} starts at {mine.start:.3f}s in "
                    f"{reader.short(uri)} but at {theirs.start:.3f}s in "
                    f"{reader.short(reference_uri)}: keyframes are not aligned across variants"
                )
                break


# --- entry points --------------------------------------------------------------------------------


def inspect_hls(
    location: str | Path,
    *,
    master_name: str = "master.m3u8",
    expected_duration: float | None = None,
    rules: bool = True,
    keyframes: bool = True,
    duration_tolerance: float = 0.25,
    bitrate_tolerance: float = 0.10,
    alignment_tolerance: float = 0.02,
    extinf_tolerance: float = 0.1,
    client: httpx.Client | None = None,
) -> HLSReport:
    """Check the HLS tree at `location`: a folder, a master playlist path, or an HTTP URL (of
    the master, or of its folder). `rules` covers playlists, objects, durations and bit rates;
    `keyframes` the ffprobe checks of video segments."""
    master_uri = _master_location(location, master_name)
    reader = Reader(_folder(master_uri), client)
    try:
        report = _load(master_uri, reader)
        if not rules:
            report.problems = []
        else:
            _check_durations(report, reader, expected_duration, duration_tolerance)
            for variant in report.master.variants:
                _measure_variant(variant, report, reader, bitrate_tolerance)
        if keyframes:
            _check_keyframes(report, reader, alignment_tolerance, extinf_tolerance)
            _check_iframe_pictures(report, reader)
            if not rules and not report.segment_starts:
                report.problems.append(f"{reader.short(master_uri)}: no video segment to check")
        return report
    finally:
        reader.close()


def _load(master_uri: str, reader: Reader) -> HLSReport:
    """Read and parse the master and every playlist it names; note what is missing."""
    name = reader.short(master_uri)
    try:
        master_text = reader.read(master_uri).decode("utf-8")
    except (OSError, httpx.HTTPError, UnicodeDecodeError) as exc:
        master = MasterPlaylist(uri=master_uri, problems=[f"{name}: cannot be read: {exc}"])
        return HLSReport(master=master, media={}, problems=list(master.problems))
    master = parse_master_playlist(master_text, master_uri, name)
    report = HLSReport(master=master, media={}, problems=list(master.problems))
    media_uris = [v.uri for v in master.variants] + [r.uri for r in master.renditions if r.uri]
    _load_iframes(report, reader)
    for uri in dict.fromkeys(media_uris):
        try:
            text = reader.read(uri).decode("utf-8")
        except (OSError, httpx.HTTPError, UnicodeDecodeError) as exc:
            report.problems.append(
                f"{reader.short(uri)}: referenced by {name} but cannot be read: {exc}"
            )
            continue
        playlist = parse_media_playlist(text, uri, reader.short(uri))
        report.media[uri] = playlist
        report.problems += playlist.problems
        report.problems += _missing_objects(playlist, reader)
    return report


def _load_iframes(report: HLSReport, reader: Reader) -> None:
    """Each I-frame playlist: EXT-X-I-FRAMES-ONLY, a byte range on every entry, inside its file
    (RFC 8216 4.3.3.6), and the rate its entries need under the stream's BANDWIDTH."""
    for stream in report.master.iframe_streams:
        uri, name = stream.uri, reader.short(stream.uri)
        try:
            text = reader.read(uri).decode("utf-8")
        except (OSError, httpx.HTTPError, UnicodeDecodeError) as exc:
            report.problems.append(f"{name}: referenced by the master but cannot be read: {exc}")
            continue
        playlist = parse_media_playlist(text, uri, name)
        report.iframes[uri] = playlist
        report.problems += playlist.problems
        report.problems += _missing_objects(playlist, reader)
        if "#EXT-X-I-FRAMES-ONLY" not in _lines(text):
            report.problems.append(f"{name}: EXT-X-I-FRAMES-ONLY is missing")
        peak = 0.0
        for index, segment in enumerate(playlist.segments):
            if segment.byterange is None:
                report.problems.append(f"{name}: entry {index} has no EXT-X-BYTERANGE")
                continue
            length, offset = segment.byterange
            try:
                size = reader.size(segment.uri)
            except (OSError, httpx.HTTPError):
                continue  # reported as missing
            if offset + length > size:
                report.problems.append(
                    f"{name}: entry {index}: byte range {length}@{offset} ends past the "
                    f"{size} bytes of {reader.short(segment.uri)}"
                )
            if segment.duration > 0:
                peak = max(peak, length * 8 / segment.duration)
        if stream.bandwidth is not None and peak > stream.bandwidth:
            report.problems.append(
                f"{name}: an I-frame needs {peak:.0f} bit/s, over BANDWIDTH {stream.bandwidth}"
            )


def _check_iframe_pictures(report: HLSReport, reader: Reader) -> None:
    """Each I-frame entry, after its init segment, decodes on its own to a key frame of the
    stream's RESOLUTION: what a player scrubbing through it shows."""
    for stream in report.master.iframe_streams:
        playlist = report.iframes.get(stream.uri)
        if playlist is None:
            continue
        for index, segment in enumerate(playlist.segments):
            label = f"{reader.short(stream.uri)}: entry {index}"
            try:
                data = reader.read(segment.uri, segment.byterange)
                if segment.init_uri:
                    data = reader.read_init(segment.init_uri, segment.init_byterange) + data
                probed = probe_segment(data)
            except (FileNotFoundError, OSError, httpx.HTTPError):
                continue  # reported as missing elsewhere
            except ValueError as exc:
                report.problems.append(f"{label}: cannot be decoded: {exc}")
                continue
            if not probed.keyframe:
                report.problems.append(f"{label}: does not decode to a key frame")
            if stream.resolution and probed.size and probed.size != stream.resolution:
                report.problems.append(f"{label}: a picture of {probed.size}, not the RESOLUTION")


def _check_durations(
    report: HLSReport, reader: Reader, expected: float | None, tolerance: float
) -> None:
    playlists = {**report.media, **report.iframes}
    totals = {uri: p.total_duration for uri, p in playlists.items() if p.segments}
    if not totals:
        return
    if max(totals.values()) - min(totals.values()) > tolerance:
        listing = ", ".join(f"{reader.short(u)} {d:.3f}s" for u, d in totals.items())
        report.problems.append(
            f"{reader.short(report.master.uri)}: playlists disagree on the total duration: "
            + listing
        )
    if expected is not None:
        for uri, total in totals.items():
            if abs(total - expected) > tolerance:
                report.problems.append(
                    f"{reader.short(uri)}: EXTINF durations add up to {total:.3f}s, "
                    f"expected {expected:.3f}s"
                )


def _missing_objects(playlist: MediaPlaylist, reader: Reader) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for segment in playlist.segments:
        for uri in (segment.init_uri, segment.uri):
            if uri is None or uri in seen:
                continue
            seen.add(uri)
            try:
                reader.size(uri)
            except (OSError, httpx.HTTPError) as exc:
                problems.append(
                    f"{reader.short(playlist.uri)}: {reader.short(uri)} does not exist ({exc})"
                )
    return problems


def check_hls(location: str | Path, **options: Any) -> HLSReport:
    """`inspect_hls`, raising AssertionError with every problem when there is any."""
    report = inspect_hls(location, **options)
    if report.problems:
        raise AssertionError(
            f"HLS at {location} has {len(report.problems)} problem(s):\n- "
            + "\n- ".join(report.problems)
        )
    return report


def check_hls_tree(root: Path, **options: Any) -> HLSReport:
    """The playlist, object, duration and bit-rate rules on a local tree (no frame probing)."""
    return check_hls(root, keyframes=False, **options)


def check_keyframe_alignment(location: str | Path, **options: Any) -> HLSReport:
    """Only the ffprobe checks: every video segment starts on a key frame, at the same time in
    every rung, where the EXTINF durations say."""
    return check_hls(location, rules=False, keyframes=True, **options)


def check_hls_url(url: str, **options: Any) -> HLSReport:
    """Every check, reading the tree over HTTP from the master playlist's URL."""
    return check_hls(url, **options)
