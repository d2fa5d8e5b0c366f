"""I-frame playlists: each video rung's key frames as byte ranges of its own segments.

Scrubbing and fast-forward on Apple's devices fetch only these (RFC 8216, 4.3.3.6; Apple's
HLS authoring specification asks for one per video variant). Each entry is a fragment's
``moof`` through its first sample, a sync sample: with the init segment it decodes to one
picture. Its duration runs to the next key frame, the last one's to the end of the rendition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from . import boxes
from .playlist import HLS_VERSION, Measure, MediaPlaylist, round_half_up

IFRAME_PLAYLIST = "iframe.m3u8"


@dataclass(frozen=True)
class IFrame:
    """One entry: a byte range of segment ``uri``, shown from ``start`` for ``duration`` s."""

    uri: str
    offset: int
    length: int
    start: float
    duration: float = 0.0


def collect(folder: Path, media: MediaPlaylist) -> list[IFrame]:
    """The key frames of the rendition in ``folder`` whose playlist is ``media``, timed."""
    if media.map_uri is None:
        return []
    track = boxes.track(folder / media.map_uri)
    if track is None:
        return []
    found: list[IFrame] = []
    origin: int | None = None
    for segment in media.segments:
        for frame in boxes.key_frames(folder / segment.uri, track):
            origin = frame.decode_time if origin is None else origin
            start = (frame.decode_time - origin) / track.timescale
            found.append(IFrame(segment.uri, frame.offset, frame.length, start))
    ends = [frame.start for frame in found[1:]] + [media.duration]
    return [
        IFrame(frame.uri, frame.offset, frame.length, frame.start, end - frame.start)
        for frame, end in zip(found, ends, strict=True)
        if end > frame.start
    ]


def render(frames: list[IFrame], map_uri: str) -> str:
    """A VOD I-frame playlist of ``frames`` (EXT-X-I-FRAMES-ONLY, byte ranges, EXT-X-MAP)."""
    target = max([1] + [round_half_up(frame.duration) for frame in frames])
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "#EXT-X-I-FRAMES-ONLY",
        f'#EXT-X-MAP:URI="{map_uri}"',
    ]
    for frame in frames:
        lines += [
            f"#EXTINF:{frame.duration:.6f},",
            f"#EXT-X-BYTERANGE:{frame.length}@{frame.offset}",
            frame.uri,
        ]
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def write_iframe_playlist(folder: Path, media: MediaPlaylist) -> Measure | None:
    """Write ``IFRAME_PLAYLIST`` beside the rendition's playlist; its peak and average bit rates.

    None, and nothing written, when no fragment opens on a key frame.
    """
    frames = collect(folder, media)
    if not frames or media.map_uri is None:
        return None
    (folder / IFRAME_PLAYLIST).write_text(render(frames, media.map_uri), encoding="utf-8")
    peak = max(frame.length * 8 / frame.duration for frame in frames)
    total = sum(frame.duration for frame in frames)
    average = sum(frame.length for frame in frames) * 8 / total
    return Measure(math.ceil(peak), math.ceil(average), total)
