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


# --- fragments: where each key frame lies, for I-frame playlists ---------------------------------

# Sample flags (ISO/IEC 14496-12, 8.8.3.1): sample_is_non_sync_sample.
_NON_SYNC = 0x0001_0000
# tfhd flags.
_BASE_DATA_OFFSET = 0x01
_SAMPLE_DESCRIPTION_INDEX = 0x02
_DEFAULT_DURATION = 0x08
_DEFAULT_SIZE = 0x10
_DEFAULT_FLAGS = 0x20
# trun flags.
_DATA_OFFSET = 0x001
_FIRST_SAMPLE_FLAGS = 0x004
_SAMPLE_DURATION = 0x100
_SAMPLE_SIZE = 0x200
_SAMPLE_FLAGS = 0x400


@dataclass(frozen=True)
class Track:
    """What an init segment says that fragments leave out: time scale and sample defaults."""

    timescale: int
    default_sample_flags: int = 0
    default_sample_size: int = 0


@dataclass(frozen=True)
class KeyFrame:
    """A fragment that opens on a sync sample: the bytes from its ``moof`` through that sample.

    ``offset`` and ``length`` are within the segment file; ``decode_time`` is in the track's
    time scale (``tfdt``). Those bytes, after the init segment, decode to one picture.
    """

    offset: int
    length: int
    decode_time: int


def track(init_segment: Path) -> Track | None:
    """The time scale (``mdhd``) and sample defaults (``trex``) of an init segment's track."""
    data = init_segment.read_bytes()
    mdhd = _find(data, [b"moov", b"trak", b"mdia", b"mdhd"], 0, len(data))
    if mdhd is None or mdhd[1] - mdhd[0] < 24:
        return None
    version = data[mdhd[0]]
    timescale = struct.unpack_from(">I", data, mdhd[0] + (20 if version == 1 else 12))[0]
    if timescale <= 0:
        return None
    trex = _find(data, [b"moov", b"mvex", b"trex"], 0, len(data))
    if trex is None or trex[1] - trex[0] < 24:
        return Track(timescale)
    # trex: version/flags, track_ID, description index, duration, size, flags.
    size, flags = struct.unpack_from(">II", data, trex[0] + 16)
    return Track(timescale, default_sample_flags=flags, default_sample_size=size)


def _first_sample(
    data: bytes, moof: int, traf: tuple[int, int], defaults: Track
) -> tuple[int, int, int, int] | None:
    """(decode time, flags, byte offset, size) of a track fragment's first sample."""
    base = moof
    flags_default, size_default = defaults.default_sample_flags, defaults.default_sample_size
    decode_time: int | None = None
    first: tuple[int, int, int] | None = None  # flags, offset, size
    for kind, payload, end in iter_boxes(data, *traf):
        if kind == b"tfhd" and end - payload >= 8:
            tf_flags = int.from_bytes(data[payload + 1 : payload + 4], "big")
            pos = payload + 8
            if tf_flags & _BASE_DATA_OFFSET:
                base = struct.unpack_from(">Q", data, pos)[0]
                pos += 8
            pos += 4 if tf_flags & _SAMPLE_DESCRIPTION_INDEX else 0
            pos += 4 if tf_flags & _DEFAULT_DURATION else 0
            if tf_flags & _DEFAULT_SIZE and pos + 4 <= end:
                size_default = struct.unpack_from(">I", data, pos)[0]
                pos += 4
            if tf_flags & _DEFAULT_FLAGS and pos + 4 <= end:
                flags_default = struct.unpack_from(">I", data, pos)[0]
        elif kind == b"tfdt" and end - payload >= 8:
            wide = data[payload] == 1 and end - payload >= 12
            decode_time = struct.unpack_from(">Q" if wide else ">I", data, payload + 4)[0]
        elif kind == b"trun" and first is None and end - payload >= 8:
            run_flags = int.from_bytes(data[payload + 1 : payload + 4], "big")
            count = struct.unpack_from(">I", data, payload + 4)[0]
            pos = payload + 8
            offset = 0
            if run_flags & _DATA_OFFSET:
                offset = struct.unpack_from(">i", data, pos)[0]
                pos += 4
            sample_flags = flags_default
            if run_flags & _FIRST_SAMPLE_FLAGS:
                sample_flags = struct.unpack_from(">I", data, pos)[0]
                pos += 4
            if count == 0 or pos > end:
                return None
            pos += 4 if run_flags & _SAMPLE_DURATION else 0
            size = size_default
            if run_flags & _SAMPLE_SIZE:
                size = struct.unpack_from(">I", data, pos)[0]
                pos += 4
            if run_flags & _SAMPLE_FLAGS and not run_flags & _FIRST_SAMPLE_FLAGS:
                sample_flags = struct.unpack_from(">I", data, pos)[0]
            first = (sample_flags, base + offset, size)
    if decode_time is None or first is None:
        return None
    return decode_time, *first


def key_frames(segment: Path, defaults: Track) -> list[KeyFrame]:
    """The fragments of a media segment that open on a sync sample, in file order.

    A fragment whose layout cannot be read, or whose first sample lies outside its ``mdat``,
    is left out.
    """
    data = segment.read_bytes()
    found: list[KeyFrame] = []
    top = list(iter_boxes(data))
    for index, (kind, payload, end) in enumerate(top):
        if kind != b"moof":
            continue
        moof = payload - 8
        traf = _find(data, [b"traf"], payload, end)
        following = top[index + 1] if index + 1 < len(top) else None
        if traf is None or following is None or following[0] != b"mdat":
            continue
        try:
            first = _first_sample(data, moof, traf, defaults)
        except struct.error:  # a field past the end of the file
            first = None
        if first is None:
            continue
        decode_time, flags, offset, size = first
        mdat_start, mdat_end = following[1], following[2]
        if flags & _NON_SYNC or size <= 0 or offset < mdat_start or offset + size > mdat_end:
            continue
        found.append(KeyFrame(moof, offset + size - moof, decode_time))
    return found
