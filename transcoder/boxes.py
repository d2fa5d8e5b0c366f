"""Just enough ISO-BMFF (MP4) box reading to check integrity and name codecs for HLS."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"mvex", b"udta"}
_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"moof"}


@dataclass(frozen=True)
class SampleEntry:
    """What an init segment says about its one track: RFC 6381 codec string and coded size."""

    codec: str
    width: int | None = None
    height: int | None = None


def iter_boxes(
    data: bytes, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload_start, box_end)`` for each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1 and pos + 16 <= end:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def truncated_mp4(path: Path, file_size: int) -> bool | None:
    """Tell whether an MP4/MOV file ends before its top-level boxes say it should.

    None when the file is not laid out as top-level MP4 boxes. Only box headers are read.
    """
    with path.open("rb") as handle:
        first = handle.read(16)
        if len(first) < 8 or first[4:8] not in _TOP_LEVEL:
            return None
        pos = 0
        while pos + 8 <= file_size:
            handle.seek(pos)
            header = handle.read(16)
            if len(header) < 8:
                return True
            size, _kind = struct.unpack_from(">I4s", header)
            if size == 1:
                if len(header) < 16:
                    return True
                size = struct.unpack_from(">Q", header, 8)[0]
            elif size == 0:
                return False
            if size < 8:
                # A box smaller than its own header: the layout is broken, so is the file.
                return True
            if pos + size > file_size:
                return True
            pos += size
        return False


def _avc_codec(entry: bytes, start: int, end: int) -> str | None:
    # The avcC box sits after the 78-byte VisualSampleEntry header.
    for kind, payload, box_end in iter_boxes(entry, start + 78, end):
        if kind == b"avcC" and box_end - payload >= 4:
            profile, compat, level = entry[payload + 1], entry[payload + 2], entry[payload + 3]
            return f"avc1.{profile:02x}{compat:02x}{level:02x}"
    return None


def _read_descriptor(data: bytes, pos: int) -> tuple[int, int, int]:
    tag = data[pos]
    pos += 1
    length = 0
    for _ in range(4):
        byte = data[pos]
        pos += 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, pos, pos + length


def _mp4a_codec(entry: bytes, start: int, end: int) -> str | None:
    # The esds box sits after the 28-byte AudioSampleEntry header.
    for kind, payload, box_end in iter_boxes(entry, start + 28, end):
        if kind != b"esds":
            continue
        pos = payload + 4  # version and flags
        tag, pos, _ = _read_descriptor(entry, pos)
        if tag != 0x03:
            return None
        flags = entry[pos + 2]
        pos += 3
        if flags & 0x80:
            pos += 2
        if flags & 0x40:
            pos += 1 + entry[pos]
        if flags & 0x20:
            pos += 2
        tag, pos, _ = _read_descriptor(entry, pos)
        if tag != 0x04:
            return None
        object_type = entry[pos]
        pos += 13
        if pos < box_end:
            tag, pos, _ = _read_descriptor(entry, pos)
            if tag == 0x05:
                audio_object_type = entry[pos] >> 3
                return f"mp4a.{object_type:02x}.{audio_object_type}"
        return f"mp4a.{object_type:02x}"
    return None


def _find(data: bytes, path: list[bytes], start: int, end: int) -> tuple[int, int] | None:
    for kind, payload, box_end in iter_boxes(data, start, end):
        if kind == path[0]:
            if len(path) == 1:
                return payload, box_end
            if kind in _CONTAINERS:
                return _find(data, path[1:], payload, box_end)
    return None


def sample_entry(init_segment: Path) -> SampleEntry | None:
    """Read the codec string (``avc1.640028``, ``mp4a.40.2``) and size from an init segment."""
    data = init_segment.read_bytes()
    stsd = _find(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"], 0, len(data))
    if stsd is None:
        return None
    # stsd: version/flags (4) and entry count (4), then the sample entries.
    for kind, payload, box_end in iter_boxes(data, stsd[0] + 8, stsd[1]):
        if kind in (b"avc1", b"avc3"):
            codec = _avc_codec(data, payload, box_end)
            if codec is None:
                return None
            width, height = struct.unpack_from(">HH", data, payload + 24)
            return SampleEntry(codec.replace("avc1", kind.decode()), width, height)
        if kind == b"mp4a":
            codec = _mp4a_codec(data, payload, box_end)
            return SampleEntry(codec) if codec else None
    return None
