"""Each generated test medium is what its name claims, as ffprobe and mutagen see it; the
generator they are made with (`cite_live.demo.media`) keeps its inputs to files and its cache
whole."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mutagen
import numpy as np
import pytest
from PIL import Image

from cite_live.demo import media as generator
from tests import media as m

Media = Callable[[str], Path]


def ffprobe(path: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def stream(info: dict[str, Any], kind: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in info["streams"] if s["codec_type"] == kind]
    assert len(found) == 1, f"expected one {kind} stream, got {len(found)}"
    return found[0]


def has_stream(info: dict[str, Any], kind: str) -> bool:
    return any(s["codec_type"] == kind for s in info["streams"])


def decode(path: Path, *args: str) -> bytes:
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), *args, "-"]
    output: bytes = subprocess.run(command, capture_output=True, check=True).stdout
    return output


def luma_at(path: Path, seconds: float) -> float:
    """Mean brightness (0-255) of the frame at `seconds`, from a tiny grey thumbnail."""
    raw = decode(
        path,
        "-ss",
        str(seconds),
        "-frames:v",
        "1",
        "-vf",
        "scale=32:18",
        "-pix_fmt",
        "gray",
        "-f",
        "rawvideo",
    )
    return float(np.frombuffer(raw, np.uint8).mean())


def audio_rms(path: Path) -> float:
    raw = decode(path, "-t", "1", "-ac", "1", "-f", "s16le")
    return float(np.sqrt(np.mean(np.frombuffer(raw, "<i2").astype(np.float64) ** 2)))


def duration(info: dict[str, Any]) -> float:
    return float(info["format"]["duration"])


def top_level_boxes(path: Path) -> list[tuple[bytes, int, int]]:
    """(type, offset, declared size) of the top-level MP4 boxes, even past the end of file."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        if size == 1:
            (size,) = struct.unpack_from(">Q", data, offset + 8)
        boxes.append((kind, offset, size))
        if size < 8:
            break
        offset += size
    return boxes


def test_registry_names_are_the_agreed_ones() -> None:
    agreed = {
        "video_1080p_h264_aac",
        "portrait_hevc_mov_rotated",
        "vp9_opus51_mkv",
        "video_no_audio",
        "odd_dimensions",
        "anamorphic_mpeg2",
        "flac_24bit_picture",
        "mp3_id3v24_apic",
        "m4a_itunes_covr",
        "wav_96k_mono",
        "ogg_vorbis",
        "opus",
        "empty",
        "text_as_mp3",
        "truncated_mp4",
        "playlist_as_mp4",
        "ffconcat",
        "still_image",
        "zip",
        "huge_frame_8192",
        "hostile_tags_mp3",
        "long_declared_mp4",
    }
    assert set(m.FIXTURES) >= agreed
    assert set(m.FIXTURES) >= m.HOSTILE


def test_media_is_built_once_and_cached(media: Media) -> None:
    first = media("still_image")
    mtime = first.stat().st_mtime_ns
    assert media("still_image") == first
    assert first.stat().st_mtime_ns == mtime


def test_unknown_media_name_is_an_error(media: Media) -> None:
    with pytest.raises(KeyError, match="unknown test media"):
        media("no_such_thing")


def test_every_generated_input_is_held_to_the_file_protocol() -> None:
    inputs = [
        generator.tones(1),
        generator.tones(1, rate=96000, channels=1),
        generator.tones(1, channels=6),
        generator.pattern(853, 479, 1),
        generator.lavfi("color=c=black"),
    ]
    for argv in inputs:
        assert argv[:4] == ["-protocol_whitelist", "file", "-f", "lavfi"] and argv[4] == "-i"


def test_a_failing_ffmpeg_raises_with_what_it_said(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"(?s)ffmpeg failed .*No such file or directory"):
        generator.ffmpeg("-i", str(tmp_path / "missing.wav"), str(tmp_path / "out.flac"))


def test_a_failed_build_leaves_nothing_behind_and_the_next_call_builds(tmp_path: Path) -> None:
    def broken(directory: Path) -> Path:
        (directory / "half.mp4").write_bytes(b"half")
        raise RuntimeError("the encoder stopped")

    def whole(directory: Path) -> Path:
        out = directory / "whole.txt"
        out.write_text("whole")
        return out

    with pytest.raises(RuntimeError, match="the encoder stopped"):
        generator.build_once("clip", tmp_path, broken)
    assert not (tmp_path / "clip").exists() and not list(tmp_path.glob(".clip-*"))
    assert generator.build_once("clip", tmp_path, whole) == tmp_path / "clip" / "whole.txt"
    # Built once: a later call finds it and never runs its builder.
    assert generator.build_once("clip", tmp_path, broken).read_text() == "whole"


# --- video ---------------------------------------------------------------------------------------


def test_video_1080p_h264_aac(media: Media) -> None:
    path = media("video_1080p_h264_aac")
    info = ffprobe(path)
    video, audio = stream(info, "video"), stream(info, "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 1920, 1080)
    assert video["pix_fmt"] == "yuv420p"
    assert video["avg_frame_rate"] == "30/1"
    assert (audio["codec_name"], audio["channels"]) == ("aac", 2)
    assert 13.5 < duration(info) < 14.5
    assert info["format"]["tags"]["title"] == m.TITLE
    assert info["format"]["tags"]["artist"] == m.ARTISTS[0]
    assert luma_at(path, 0.5) < 20, "the first second should be black"
    assert luma_at(path, 5.0) > 40, "the content after the first second should not be black"


def test_portrait_hevc_mov_rotated(media: Media) -> None:
    path = media("portrait_hevc_mov_rotated")
    info = ffprobe(path)
    video = stream(info, "video")
    assert info["format"]["format_name"].startswith("mov")
    assert path.suffix == ".mov"
    assert (video["codec_name"], video["width"], video["height"]) == ("hevc", 640, 360)
    matrices = [
        d for d in video.get("side_data_list", []) if d["side_data_type"] == "Display Matrix"
    ]
    assert matrices and abs(int(matrices[0]["rotation"])) == 90
    assert stream(info, "audio")["codec_name"] == "aac"
    assert 3.5 < duration(info) < 4.5


def test_vp9_opus51_mkv(media: Media) -> None:
    info = ffprobe(media("vp9_opus51_mkv"))
    assert info["format"]["format_name"].startswith("matroska")
    assert stream(info, "video")["codec_name"] == "vp9"
    audio = stream(info, "audio")
    assert (audio["codec_name"], audio["channels"], audio["channel_layout"]) == ("opus", 6, "5.1")
    assert 3.5 < duration(info) < 4.5


def test_video_no_audio(media: Media) -> None:
    info = ffprobe(media("video_no_audio"))
    assert stream(info, "video")["codec_name"] == "h264"
    assert not has_stream(info, "audio")


def test_odd_dimensions(media: Media) -> None:
    info = ffprobe(media("odd_dimensions"))
    video = stream(info, "video")
    assert (video["width"], video["height"]) == (853, 479)
    assert has_stream(info, "audio")


def test_anamorphic_mpeg2(media: Media) -> None:
    info = ffprobe(media("anamorphic_mpeg2"))
    video = stream(info, "video")
    assert info["format"]["format_name"] in {"mpeg", "mpegts"}
    assert (video["codec_name"], video["width"], video["height"]) == ("mpeg2video", 720, 576)
    assert video["sample_aspect_ratio"] == "64:45"
    assert video["display_aspect_ratio"] == "16:9"
    assert stream(info, "audio")["codec_name"] in {"mp2", "ac3"}


# --- audio ---------------------------------------------------------------------------------------


def test_flac_24bit_picture(media: Media) -> None:
    path = media("flac_24bit_picture")
    info = ffprobe(path)
    audio = stream(info, "audio")
    assert (audio["codec_name"], audio["bits_per_raw_sample"], audio["channels"]) == (
        "flac",
        "24",
        2,
    )
    assert 7.5 < duration(info) < 8.5
    tags = mutagen.File(path)
    assert tags["ARTIST"] == m.ARTISTS and len(m.ARTISTS) == 2
    for name in ("TITLE", "ALBUM", "DATE", "GENRE", "TRACKNUMBER"):
        assert tags[name], name
    pictures = tags.pictures
    assert pictures and pictures[0].type == 3
    assert Image.open(io.BytesIO(pictures[0].data)).size == (480, 480)
    assert audio_rms(path) > 1000


def test_mp3_id3v24_apic(media: Media) -> None:
    path = media("mp3_id3v24_apic")
    assert stream(ffprobe(path), "audio")["codec_name"] == "mp3"
    tags = mutagen.File(path).tags
    assert tags.version[:2] == (2, 4)
    for frame in ("TIT2", "TPE1", "TALB", "TDRC", "TCON", "TRCK"):
        assert frame in tags, frame
    assert tags.getall("APIC")[0].mime == "image/jpeg"


def test_m4a_itunes_covr(media: Media) -> None:
    path = media("m4a_itunes_covr")
    assert stream(ffprobe(path), "audio")["codec_name"] == "aac"
    tags = mutagen.File(path).tags
    for atom in ("\xa9nam", "\xa9ART", "\xa9alb", "\xa9day", "\xa9gen", "trkn", "covr"):
        assert atom in tags, atom
    assert tags["trkn"] == [(3, 12)]


def test_wav_96k_mono(media: Media) -> None:
    audio = stream(ffprobe(media("wav_96k_mono")), "audio")
    assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == (
        "pcm_s24le",
        "96000",
        1,
    )


@pytest.mark.parametrize(("name", "codec"), [("ogg_vorbis", "vorbis"), ("opus", "opus")])
def test_ogg_files_have_vorbis_comments(media: Media, name: str, codec: str) -> None:
    path = media(name)
    assert stream(ffprobe(path), "audio")["codec_name"] == codec
    tags = mutagen.File(path)
    assert tags["TITLE"] == [m.TITLE]
    assert tags["ARTIST"] == m.ARTISTS


# --- hostile -------------------------------------------------------------------------------------


def test_empty(media: Media) -> None:
    assert media("empty").stat().st_size == 0


def test_text_as_mp3(media: Media) -> None:
    path = media("text_as_mp3")
    assert path.suffix == ".mp3"
    assert "Just some words" in path.read_text(encoding="utf-8")
    assert not path.read_bytes().startswith((b"ID3", b"\xff\xfb"))


def test_truncated_mp4_declares_more_than_it_holds(media: Media) -> None:
    path = media("truncated_mp4")
    boxes = top_level_boxes(path)
    assert [kind for kind, _, _ in boxes][:2] == [b"ftyp", b"moov"]
    _, mdat_at, mdat_size = next(box for box in boxes if box[0] == b"mdat")
    assert mdat_at + mdat_size > path.stat().st_size


def test_truncated_mp4_without_moov(media: Media) -> None:
    path = media("truncated_mp4_no_moov")
    kinds = [kind for kind, _, _ in top_level_boxes(path)]
    assert b"mdat" in kinds and b"moov" not in kinds


@pytest.mark.parametrize("name", ["playlist_as_mp4", "ffconcat"])
def test_smuggled_lists_point_at_local_files(media: Media, name: str) -> None:
    path = media(name)
    text = path.read_text()
    assert path.suffix == ".mp4"
    assert text.startswith("#EXTM3U" if name == "playlist_as_mp4" else "ffconcat version 1.0")
    assert "/etc/passwd" in text
    # The relative reference is real media, so a prober that follows it would be fooled.
    assert "target.ts" in text and (path.parent / "target.ts").stat().st_size > 0


def test_still_image(media: Media) -> None:
    path = media("still_image")
    assert path.suffix == ".mp4"
    with Image.open(path) as image:
        assert image.format == "PNG"


def test_zip(media: Media) -> None:
    path = media("zip")
    assert path.suffix == ".mov" and zipfile.is_zipfile(path)


def test_huge_frame_8192(media: Media) -> None:
    path = media("huge_frame_8192")
    video = stream(ffprobe(path), "video")
    assert (video["width"], video["height"]) == (8192, 8192)
    assert path.stat().st_size < 1_000_000


def test_hostile_tags_mp3(media: Media) -> None:
    path = media("hostile_tags_mp3")
    assert stream(ffprobe(path), "audio")["codec_name"] == "mp3"
    tags = mutagen.File(path).tags
    assert str(tags["TIT2"]) == '<script>alert("x")</script><b>Bold</b>'
    assert "<img" in str(tags["TPE1"])
    assert len(str(tags["TALB"]).encode()) >= 100 * 1000


def test_long_declared_mp4(media: Media) -> None:
    path = media("long_declared_mp4")
    info = ffprobe(path)
    assert path.stat().st_size < 1_000_000
    assert duration(info) >= 9.9 * 3600
    assert mutagen.File(path).info.length >= 9.9 * 3600
    # ...while the samples really there last about two seconds.
    assert all(float(s["duration"]) < 3 for s in info["streams"])
