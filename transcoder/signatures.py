"""A look at a file's first bytes, so common wrong uploads get a clear sentence before ffprobe.

ffprobe would refuse most of these too (its demuxer allow-list is the real guard); this only
turns "format not on whitelist" into something an artist understands.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputRefused

SNIFF_BYTES = 4096

_IMAGES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x01\x00",
    b"8BPS",
    b"\xff\x0a",
    b"\x00\x00\x00\x0cJXL ",
    b"qoif",
)
_ARCHIVES = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\x1f\x8b",
    b"BZh",
    b"\xfd7zXZ\x00",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\x28\xb5\x2f\xfd",
    b"MSCF",
)
_DOCUMENTS = (b"%PDF", b"\xd0\xcf\x11\xe0", b"{\\rtf")
_EXECUTABLES = (b"\x7fELF", b"MZ", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe")
# ISO-BMFF brands of still-image containers (HEIF/AVIF) that share MP4's box layout.
_IMAGE_BRANDS = {b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis", b"heim", b"heis"}


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the read window is still text.
        if exc.start < len(head) - 4:
            return False
        text = head[: exc.start].decode("utf-8")
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
    return printable >= 0.95 * max(1, len(text))


def refusal_for(head: bytes) -> str | None:
    """Return the sentence refusing a file that starts with ``head``, or None if it may be media."""
    if not head:
        return "This file is empty."
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"#EXTM3U") or stripped.startswith(b"#EXT-X-"):
        return "This file is a playlist, not a recording."
    if stripped.startswith(b"ffconcat"):
        return "This file is a list of other files, not a recording."
    if stripped.startswith((b"<?xml", b"<MPD", b"<smil", b"[playlist]", b"<asx", b"<ASX")):
        return "This file is a playlist or document, not a recording."
    if head.startswith(_IMAGES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "This file is a still image, not a recording."
    if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS:
        return "This file is a still image, not a recording."
    if head.startswith(_ARCHIVES) or head[257:262] == b"ustar":
        return "This file is an archive, not a recording: upload the recording itself."
    if head.startswith(_DOCUMENTS):
        return "This file is a document, not a recording."
    if head.startswith(_EXECUTABLES):
        return "This file is a program, not a recording."
    if _is_text(head):
        return "This file is text, not a recording."
    return None


def check_signature(path: Path) -> None:
    """Raise InputRefused when ``path`` is plainly not a recording (empty, playlist, image...)."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    reason = refusal_for(head)
    if reason:
        raise InputRefused(reason)
