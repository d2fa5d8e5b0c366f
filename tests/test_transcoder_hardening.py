"""Smuggled playlists and concat lists are refused by ffprobe/ffmpeg themselves, not only by
the first-bytes check in front of them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from transcoder.commands import probe_argv, video_argv
from transcoder.ladder import VideoRung
from transcoder.settings import TranscoderSettings
from transcoder.signatures import refusal_for

Media = Callable[[str], Path]
SETTINGS = TranscoderSettings()


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(("name", "demuxer"), [("playlist_as_mp4", "hls"), ("ffconcat", "concat")])
def test_without_hardening_ffprobe_would_follow_the_list(
    media: Media, name: str, demuxer: str
) -> None:
    # The control: proves these fixtures are dangerous, so the next test means something.
    result = run(["ffprobe", "-v", "error", "-show_format", str(media(name))])
    assert f"[{demuxer} @" in result.stderr


@pytest.mark.parametrize("name", ["playlist_as_mp4", "ffconcat"])
def test_hardened_ffprobe_refuses_the_list_format(media: Media, name: str) -> None:
    result = run(probe_argv(SETTINGS, media(name)))
    assert result.returncode != 0
    assert "not on whitelist" in result.stderr
    assert "passwd" not in result.stderr and "target.ts" not in result.stderr


@pytest.mark.parametrize("name", ["playlist_as_mp4", "ffconcat"])
def test_hardened_ffmpeg_refuses_the_list_format(media: Media, name: str, tmp_path: Path) -> None:
    rung = VideoRung("v120", 160, 120, Fraction(25), 23, 300_000)
    (tmp_path / "v120").mkdir()
    argv = video_argv(
        SETTINGS, media(name), tmp_path, video_index=0, audio_index=None, rungs=[rung]
    )
    result = run(argv)
    assert result.returncode != 0
    assert "not on whitelist" in result.stderr
    assert not any((tmp_path / "v120").iterdir())


def test_image_demuxers_are_refused_by_ffprobe(media: Media) -> None:
    result = run(probe_argv(SETTINGS, media("still_image")))
    assert result.returncode != 0 and "not on whitelist" in result.stderr


@pytest.mark.parametrize(
    ("head", "word"),
    [
        (b"", "empty"),
        (b"\xef\xbb\xbf#EXTM3U\n#EXTINF:1,\nhttp://x/a.ts\n", "playlist"),
        (b"  \n#EXT-X-VERSION:3\n", "playlist"),
        (b"ffconcat version 1.0\nfile a.mp4\n", "list of other files"),
        (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "still image"),
        (b"\xff\xd8\xff\xe0\0\x10JFIF", "still image"),
        (b"GIF89a\x01\0", "still image"),
        (b"RIFF\x10\0\0\0WEBPVP8 ", "still image"),
        (b"\0\0\0\x18ftypheic\0\0\0\0", "still image"),
        (b"PK\x03\x04\x14\0", "archive"),
        (b"\x1f\x8b\x08\0", "archive"),
        (b"%PDF-1.7\n", "document"),
        (b"\x7fELF\x02\x01", "program"),
        (b"Bonjour, ceci est un texte \xc3\xa9crit \xc3", "text"),
    ],
)
def test_first_bytes_give_a_clear_sentence(head: bytes, word: str) -> None:
    sentence = refusal_for(head)
    assert sentence is not None and word in sentence and sentence.endswith(".")


@pytest.mark.parametrize(
    "head",
    [
        b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41",
        b"ID3\x04\0\0\0\0\x10\x00" + bytes(range(256)),
        b"fLaC\0\0\0\x22",
        b"OggS\0\x02" + b"\0" * 20,
        b"RIFF\x24\0\0\0WAVEfmt ",
        b"\x1aE\xdf\xa3\x9fB\x86\x81\x01",
        b"\0\0\x01\xba\x44\0\x04",
    ],
)
def test_media_signatures_are_let_through(head: bytes) -> None:
    assert refusal_for(head) is None
