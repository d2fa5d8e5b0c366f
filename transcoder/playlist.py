"""HLS playlists: media playlists checked and rewritten, the master written from the output.

The master is not ffmpeg's: its BANDWIDTH and AVERAGE-BANDWIDTH are measured from the
segments on disk and its CODECS and RESOLUTION read from each init segment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import TranscodeFailed

MASTER = "master.m3u8"
HLS_VERSION = 7
AUDIO_GROUP = "audio"


@dataclass
class Segment:
    """One media segment: its EXTINF duration and URI relative to its playlist."""

    duration: float
    uri: str


@dataclass
class MediaPlaylist:
    """The parts of a media playlist this library writes and checks."""

    target_duration: int = 0
    media_sequence: int = 0
    map_uri: str | None = None
    segments: list[Segment] = field(default_factory=list)

    @property
    def duration(self) -> float:
        """Total of the segment durations, in seconds."""
        return sum(segment.duration for segment in self.segments)

    @property
    def uris(self) -> list[str]:
        """Segment URIs in playlist order."""
        return [segment.uri for segment in self.segments]


@dataclass
class IFrameStream:
    """A video rendition's I-frame playlist as the master announces it (video codec only)."""

    playlist: str
    codecs: str
    bandwidth: int
    average_bandwidth: int


@dataclass
class Rendition:
    """One rendition as announced in the master playlist.

    ``bandwidth``, ``average_bandwidth`` and ``codecs`` are the values of its master entry:
    for a video variant they include the shared audio rendition. ``bitrate`` is the encoder
    target (the cap of a video rung). ``playlist`` is relative to the output folder, and so is
    the playlist of ``iframes``, a video rendition's key frames.
    """

    name: str
    kind: Literal["audio", "video"]
    width: int | None
    height: int | None
    fps: float | None
    bitrate: int
    codecs: str
    bandwidth: int
    average_bandwidth: int
    playlist: str
    iframes: IFrameStream | None = None


def _attribute(line: str, name: str) -> str | None:
    for part in line.split(":", 1)[-1].split(","):
        key, _, value = part.partition("=")
        if key.strip() == name:
            return value.strip().strip('"')
    return None


def parse_media_playlist(text: str) -> MediaPlaylist:
    """Parse a media playlist written by ffmpeg's HLS muxer (no byte ranges, no discontinuity)."""
    playlist = MediaPlaylist()
    pending: float | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            playlist.target_duration = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            playlist.media_sequence = int(line.split(":", 1)[1])
        elif line.startswith("#EXT-X-MAP:"):
            playlist.map_uri = _attribute(line, "URI")
        elif line.startswith("#EXTINF:"):
            pending = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line and not line.startswith("#"):
            if pending is None:
                raise ValueError(f"segment without EXTINF: {line}")
            playlist.segments.append(Segment(pending, line))
            pending = None
    return playlist


def round_half_up(value: float) -> int:
    """Rounding as RFC 8216 means it for EXTINF against EXT-X-TARGETDURATION."""
    return math.floor(value + 0.5)


def render_media_playlist(playlist: MediaPlaylist) -> str:
    """A VOD media playlist: version 7, ENDLIST, a target duration that covers every segment."""
    target = max(
        [playlist.target_duration, 1] + [round_half_up(s.duration) for s in playlist.segments]
    )
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{playlist.media_sequence}",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    if playlist.map_uri:
        lines.append(f'#EXT-X-MAP:URI="{playlist.map_uri}"')
    for segment in playlist.segments:
        lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Measure:
    """Bitrates measured from a rendition's files: peak segment and whole-stream average."""

    peak: int
    average: int
    duration: float


def _merge_short_tail(playlist: MediaPlaylist, folder: Path, min_tail: float) -> None:
    # The muxer cuts at every multiple of hls_time, so a recording lasting 600.02 s ends with
    # a 0.02 s segment whose few bytes of headers make an absurd peak bitrate. An fMP4 segment
    # may hold several fragments: the tail is appended to the segment before it.
    if len(playlist.segments) < 2 or playlist.segments[-1].duration >= min_tail:
        return
    # The joined segment gets a name of its own: both parts may have been published already
    # (see ``live``), and a published segment never changes under its name.
    tail, previous = playlist.segments[-1], playlist.segments[-2]
    stem, dot, extension = previous.uri.rpartition(".")
    joined = f"{stem}-end{dot}{extension}" if dot else f"{previous.uri}-end"
    with (folder / joined).open("wb") as target:
        target.write((folder / previous.uri).read_bytes())
        target.write((folder / tail.uri).read_bytes())
    (folder / tail.uri).unlink()
    (folder / previous.uri).unlink()
    previous.uri = joined
    previous.duration += tail.duration
    playlist.segments.pop()


def finish_media_playlist(path: Path, min_tail: float = 1.0) -> tuple[MediaPlaylist, Measure]:
    """Check the playlist at ``path`` against its files, rewrite it as VOD, measure bitrates.

    A last segment shorter than ``min_tail`` seconds is merged into the one before it.
    Raises TranscodeFailed when a segment or the init segment is missing or empty.
    """
    try:
        playlist = parse_media_playlist(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TranscodeFailed("The converted stream is incomplete.") from exc
    folder = path.parent
    if not playlist.segments or not playlist.map_uri:
        raise TranscodeFailed("The converted stream is incomplete.")
    for uri in [playlist.map_uri, *(segment.uri for segment in playlist.segments)]:
        file = folder / uri
        # Our muxer writes bare names: anything else is not ours to publish.
        if "/" in uri or "\\" in uri or not file.is_file() or file.stat().st_size == 0:
            raise TranscodeFailed("The converted stream is incomplete.")
    _merge_short_tail(playlist, folder, min_tail)
    peak = 0.0
    total_bytes = 0
    for segment in playlist.segments:
        size = (folder / segment.uri).stat().st_size
        total_bytes += size
        if segment.duration > 0:
            peak = max(peak, size * 8 / segment.duration)
    path.write_text(render_media_playlist(playlist), encoding="utf-8")
    duration = playlist.duration
    average = total_bytes * 8 / duration if duration > 0 else 0.0
    return playlist, Measure(math.ceil(peak), math.ceil(average), duration)


def _frame_rate(fps: float) -> str:
    return f"{fps:.3f}"


def master_playlist(
    variants: Sequence[Rendition], audio: Rendition | None = None, language: str | None = None
) -> str:
    """Master playlist text: the shared audio rendition as EXT-X-MEDIA, variants highest first.

    Attribute values are taken as they are from each Rendition (measured by the caller);
    ``language`` (BCP 47) is the audio rendition's ``LANGUAGE``.
    """
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        # Apple's HLS authoring specification wants LANGUAGE on every non-video rendition.
        spoken = f'LANGUAGE="{language}",' if language else ""
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="Audio",{spoken}DEFAULT=YES,'
            f'AUTOSELECT=YES,CHANNELS="2",URI="{audio.playlist}"'
        )
    # Highest quality first: the encoder target orders the rungs even where a simple
    # signal left a higher rung with fewer measured bits than the one below it.
    for variant in sorted(variants, key=lambda v: (v.bitrate, v.bandwidth), reverse=True):
        attributes = [
            f"BANDWIDTH={variant.bandwidth}",
            f"AVERAGE-BANDWIDTH={variant.average_bandwidth}",
            f'CODECS="{variant.codecs}"',
        ]
        if variant.width and variant.height:
            attributes.append(f"RESOLUTION={variant.width}x{variant.height}")
        if variant.fps:
            attributes.append(f"FRAME-RATE={_frame_rate(variant.fps)}")
        if audio is not None and variant.kind == "video":
            attributes.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), variant.playlist]
    for variant in sorted(variants, key=lambda v: (v.bitrate, v.bandwidth), reverse=True):
        iframes = variant.iframes
        if iframes is None:
            continue
        attributes = [
            f"BANDWIDTH={iframes.bandwidth}",
            f"AVERAGE-BANDWIDTH={iframes.average_bandwidth}",
            f'CODECS="{iframes.codecs}"',
        ]
        if variant.width and variant.height:
            attributes.append(f"RESOLUTION={variant.width}x{variant.height}")
        attributes.append(f'URI="{iframes.playlist}"')
        lines.append("#EXT-X-I-FRAME-STREAM-INF:" + ",".join(attributes))
    return "\n".join(lines) + "\n"


_LANGUAGE_ATTRIBUTE = re.compile(r'LANGUAGE="[^"]*",?')


def with_language(master: str, language: str) -> str:
    """``master`` with its audio renditions announced in ``language`` (BCP 47, checked by the
    caller): the ``LANGUAGE`` of each ``#EXT-X-MEDIA`` of type AUDIO replaced, or added where
    :func:`master_playlist` writes it. Every other line is left as it is."""
    lines = []
    for line in master.split("\n"):
        if line.startswith("#EXT-X-MEDIA:") and "TYPE=AUDIO" in line:
            line = _LANGUAGE_ATTRIBUTE.sub("", line)
            line = line.replace(",DEFAULT=", f',LANGUAGE="{language}",DEFAULT=', 1)
        lines.append(line)
    return "\n".join(lines)
