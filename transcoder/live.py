"""Renditions while they are being written: finished segments as facts, and EVENT playlists.

A production becomes playable long before its transcode ends: as soon as every rendition has
its init segment and a first media segment, the owner can publish them (see ``LiveOutput``).
ffmpeg's HLS muxer, told to write an EVENT playlist, lists a segment only once the segment
file is closed, so what its playlist lists is finished and may be copied away at once.

Everything here works from ``SegmentFacts`` (name, duration, size, key frames), not from the
bytes: whoever writes the playlists (this process, or the one assembling the chunks other
workers encoded) needs the facts of each segment, never the segment itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import boxes
from .commands import MEDIA_PLAYLIST
from .playlist import (
    HLS_VERSION,
    Measure,
    Rendition,
    master_playlist,
    parse_media_playlist,
    round_half_up,
)


@dataclass(frozen=True)
class SegmentFacts:
    """One finished media segment of a rendition: what its playlists and master need.

    ``key_frames`` are its fragments that open on a sync sample, as ``(offset, length,
    decode_time)`` (see ``boxes.KeyFrame``): the I-frame playlist's entries. Audio has none.
    """

    uri: str
    duration: float
    size: int
    key_frames: tuple[tuple[int, int, int], ...] = ()

    def to_json(self) -> list[Any]:
        """A JSON array, for a database row."""
        return [self.uri, self.duration, self.size, [list(frame) for frame in self.key_frames]]

    @classmethod
    def from_json(cls, value: Sequence[Any]) -> SegmentFacts:
        """The inverse of ``to_json``."""
        uri, duration, size, frames = value
        return cls(str(uri), float(duration), int(size), tuple(tuple(f) for f in frames))


def facts_of(folder: Path, uri: str, duration: float, track: boxes.Track | None) -> SegmentFacts:
    """The facts of the finished segment ``folder/uri`` (key frames read when ``track``)."""
    path = folder / uri
    frames: tuple[tuple[int, int, int], ...] = ()
    if track is not None:
        frames = tuple(
            (frame.offset, frame.length, frame.decode_time)
            for frame in boxes.key_frames(path, track)
        )
    return SegmentFacts(uri, duration, path.stat().st_size, frames)


def measure(segments: Sequence[SegmentFacts]) -> Measure:
    """Peak segment and average bit rates of a rendition made of ``segments``."""
    duration = sum(segment.duration for segment in segments)
    peak = max(
        (segment.size * 8 / segment.duration for segment in segments if segment.duration > 0),
        default=0.0,
    )
    average = sum(segment.size for segment in segments) * 8 / duration if duration > 0 else 0.0
    return Measure(math.ceil(peak), math.ceil(average), duration)


def media_playlist(
    segments: Sequence[SegmentFacts],
    *,
    map_uri: str,
    ended: bool,
    target_duration: int = 1,
    first_sequence: int = 1,
) -> str:
    """A media playlist of ``segments``: VOD with ENDLIST once ``ended``, else an EVENT
    playlist that will grow (players reload it and play on from where they are)."""
    target = max([target_duration, 1] + [round_half_up(s.duration) for s in segments])
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{first_sequence}",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if ended else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{map_uri}"',
    ]
    for segment in segments:
        lines += [f"#EXTINF:{segment.duration:.6f},", segment.uri]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Planned:
    """A rendition the transcode will write, as the master announces it before it is measured.

    ``estimate`` is its BANDWIDTH until measured: the most its encoder may spend over one
    segment (for a capped video rung, the cap plus what its VBV buffer allows on top).
    """

    name: str
    kind: str
    bitrate: int
    estimate: int
    width: int | None = None
    height: int | None = None
    fps: float | None = None


def peak_estimate(maxrate: int, bufsize: int, segment_seconds: float) -> int:
    """The highest bit rate a segment of a rung capped at ``maxrate`` can have: over a segment,
    an encoder keeping to its VBV spends at most the cap for the segment plus one buffer; a few
    percent on top pays for the container."""
    return math.ceil((maxrate * segment_seconds + bufsize) / segment_seconds * 1.05)


def preview_master(
    planned: Sequence[Planned], codecs: Mapping[str, str], language: str | None
) -> str:
    """The master playlist of a transcode still running: every rendition, with estimated
    bandwidths and the codecs read from the init segments written so far (``codecs``)."""
    audio_plan = next((p for p in planned if p.kind == "audio" and len(planned) > 1), None)
    audio = None
    if audio_plan is not None and any(p.kind == "video" for p in planned):
        audio = _rendition(audio_plan, codecs[audio_plan.name], None)
    variants = [
        _rendition(plan, codecs[plan.name], audio)
        for plan in planned
        if audio is None or plan.name != audio.name
    ]
    return master_playlist(variants, audio, language)


def _rendition(plan: Planned, codec: str, audio: Rendition | None) -> Rendition:
    extra = audio.bandwidth if audio is not None else 0
    return Rendition(
        name=plan.name,
        kind="video" if plan.kind == "video" else "audio",
        width=plan.width,
        height=plan.height,
        fps=plan.fps,
        bitrate=plan.bitrate,
        codecs=codec + (f",{audio.codecs}" if audio is not None else ""),
        bandwidth=plan.estimate + extra,
        average_bandwidth=plan.bitrate + (audio.bitrate if audio is not None else 0),
        playlist=f"{plan.name}/{MEDIA_PLAYLIST}",
    )


@dataclass
class _Watched:
    folder: Path
    video: bool
    track: boxes.Track | None = None
    codec: str | None = None
    init: str | None = None
    segments: list[SegmentFacts] = field(default_factory=list)


@dataclass
class LiveOutput:
    """What became publishable since the last look: new files (relative to the output
    folder, init segments first) and, once every rendition has begun, the playlists to write
    after them (media playlists first, the master last)."""

    files: list[str]
    playlists: dict[str, str]


class Watcher:
    """Follows the renditions a running ffmpeg writes under ``out_dir``, one folder each.

    ``poll`` is cheap (one small playlist read per rendition) and is called from the progress
    callback; it reports each finished segment once, in order.
    """

    def __init__(
        self,
        out_dir: Path,
        planned: Sequence[Planned],
        *,
        language: str | None = None,
        segment_seconds: int = 6,
    ) -> None:
        self.out_dir = out_dir
        self.planned = list(planned)
        self.language = language
        self.segment_seconds = segment_seconds
        self.watched = {
            plan.name: _Watched(out_dir / plan.name, plan.kind == "video") for plan in planned
        }
        self.started = False

    def poll(self) -> LiveOutput | None:
        """New finished segments since the last call, with the playlists that list them."""
        files: list[str] = []
        for name, watched in self.watched.items():
            files += self._look(name, watched)
        ready = all(w.segments and w.codec for w in self.watched.values())
        if not files or not ready:
            return None
        playlists = {
            f"{name}/{MEDIA_PLAYLIST}": media_playlist(
                w.segments,
                map_uri=w.init or "",
                ended=False,
                target_duration=self.segment_seconds,
            )
            for name, w in self.watched.items()
        }
        if not self.started:
            # Files reported before every rendition had begun are sent with the first batch.
            files = self._all_files()
            self.started = True
        codecs = {name: w.codec or "" for name, w in self.watched.items()}
        playlists["master.m3u8"] = preview_master(self.planned, codecs, self.language)
        return LiveOutput(files, playlists)

    def _all_files(self) -> list[str]:
        inits = [f"{name}/{w.init}" for name, w in self.watched.items() if w.init]
        segments = [f"{name}/{s.uri}" for name, w in self.watched.items() for s in w.segments]
        return inits + segments

    def _look(self, name: str, watched: _Watched) -> list[str]:
        try:
            text = (watched.folder / MEDIA_PLAYLIST).read_text(encoding="utf-8")
            listed = parse_media_playlist(text)
        except (OSError, ValueError):
            return []  # not written yet, or being replaced this instant
        files: list[str] = []
        if watched.init is None and listed.map_uri:
            init = watched.folder / listed.map_uri
            entry = boxes.sample_entry(init)
            if entry is None:
                return []
            watched.init, watched.codec = listed.map_uri, entry.codec
            watched.track = boxes.track(init) if watched.video else None
            files.append(f"{name}/{listed.map_uri}")
        for segment in listed.segments[len(watched.segments) :]:
            facts = facts_of(watched.folder, segment.uri, segment.duration, watched.track)
            watched.segments.append(facts)
            files.append(f"{name}/{segment.uri}")
        return files


LiveCallback = Callable[[LiveOutput], None]
