"""Playlists and init segments: parsing, patching, measuring, and the master text."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from transcoder.boxes import Track, key_frames, sample_entry, truncated_mp4
from transcoder.errors import TranscodeFailed
from transcoder.language import bcp47
from transcoder.playlist import (
    IFrameStream,
    Rendition,
    finish_media_playlist,
    master_playlist,
    parse_media_playlist,
    render_media_playlist,
    with_language,
)

FFMPEG_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:1
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXTINF:6.000000,
seg_00001.m4s
#EXTINF:6.600000,
seg_00002.m4s
#EXTINF:0.020000,
seg_00003.m4s
#EXT-X-ENDLIST
"""


def rendition(name: str, bandwidth: int, kind: str = "video") -> Rendition:
    video = kind == "video"
    return Rendition(
        name=name,
        kind=(video and "video") or "audio",
        width=1280 if video else None,
        height=720 if video else None,
        fps=29.97 if video else None,
        bitrate=bandwidth,
        codecs="avc1.64001f,mp4a.40.2" if video else "mp4a.40.2",
        bandwidth=bandwidth,
        average_bandwidth=bandwidth * 9 // 10,
        playlist=f"{name}/index.m3u8",
    )


def write_rung(folder: Path, sizes: list[int], text: str = FFMPEG_PLAYLIST) -> Path:
    folder.mkdir()
    (folder / "index.m3u8").write_text(text)
    (folder / "init.mp4").write_bytes(b"\0" * 700)
    for number, size in enumerate(sizes, start=1):
        (folder / f"seg_{number:05d}.m4s").write_bytes(b"\1" * size)
    return folder / "index.m3u8"


def test_parse_reads_map_sequence_and_segments() -> None:
    playlist = parse_media_playlist(FFMPEG_PLAYLIST)
    assert playlist.map_uri == "init.mp4" and playlist.media_sequence == 1
    assert [s.uri for s in playlist.segments] == [f"seg_0000{n}.m4s" for n in (1, 2, 3)]
    assert playlist.duration == pytest.approx(12.62)


def test_target_duration_is_raised_to_cover_every_rounded_segment() -> None:
    text = render_media_playlist(parse_media_playlist(FFMPEG_PLAYLIST))
    assert "#EXT-X-TARGETDURATION:7\n" in text  # 6.6 rounds to 7
    for line in ("#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST", "#EXT-X-VERSION:7"):
        assert line in text.splitlines()
    assert text.index('#EXT-X-MAP:URI="init.mp4"') < text.index("#EXTINF")


def test_missing_vod_markers_are_added() -> None:
    bare = '#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI="init.mp4"\n#EXTINF:6.0,\na.m4s\n'
    text = render_media_playlist(parse_media_playlist(bare))
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")


def test_finish_merges_a_tiny_tail_and_measures_peak_and_average(tmp_path: Path) -> None:
    index = write_rung(tmp_path / "v720", [600_000, 750_000, 2_000])
    playlist, measure = finish_media_playlist(index)
    # The joined segment has a name of its own: its two parts may already be published, and a
    # published segment never changes under its name.
    assert [s.uri for s in playlist.segments] == ["seg_00001.m4s", "seg_00002-end.m4s"]
    assert not (tmp_path / "v720" / "seg_00003.m4s").exists()
    assert not (tmp_path / "v720" / "seg_00002.m4s").exists()
    assert (tmp_path / "v720" / "seg_00002-end.m4s").stat().st_size == 752_000
    assert playlist.segments[-1].duration == pytest.approx(6.62)
    assert measure.peak == pytest.approx(752_000 * 8 / 6.62, abs=1)
    assert measure.average == pytest.approx(1_352_000 * 8 / 12.62, abs=1)
    assert measure.duration == pytest.approx(12.62)
    assert "seg_00003" not in index.read_text()


def test_finish_refuses_a_playlist_whose_segment_is_missing(tmp_path: Path) -> None:
    index = write_rung(tmp_path / "v720", [600_000, 750_000])
    with pytest.raises(TranscodeFailed):
        finish_media_playlist(index)


def test_finish_refuses_a_segment_outside_its_folder(tmp_path: Path) -> None:
    text = FFMPEG_PLAYLIST.replace("seg_00002.m4s", "../elsewhere.m4s")
    index = write_rung(tmp_path / "v720", [600_000, 750_000, 2_000], text)
    (tmp_path / "elsewhere.m4s").write_bytes(b"x" * 10)
    with pytest.raises(TranscodeFailed):
        finish_media_playlist(index)


def test_master_lists_variants_highest_first_with_every_attribute() -> None:
    audio = rendition("audio", 130_000, "audio")
    text = master_playlist(
        [rendition("v360", 500_000), rendition("v720", 2_000_000)], audio, language="fr"
    )
    lines = text.splitlines()
    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    assert lines[3] == (
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",LANGUAGE="fr",DEFAULT=YES,'
        'AUTOSELECT=YES,CHANNELS="2",URI="audio/index.m3u8"'
    )
    assert lines[4] == (
        "#EXT-X-STREAM-INF:BANDWIDTH=2000000,AVERAGE-BANDWIDTH=1800000,"
        'CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=29.970,AUDIO="audio"'
    )
    assert lines[5] == "v720/index.m3u8" and lines[7] == "v360/index.m3u8"


def test_master_lists_each_video_rungs_i_frame_playlist_after_the_variants() -> None:
    low, high = rendition("v360", 500_000), rendition("v720", 2_000_000)
    high.iframes = IFrameStream("v720/iframe.m3u8", "avc1.64001f", 90_000, 30_000)
    text = master_playlist([low, high], rendition("audio", 130_000, "audio"), language="fr")
    lines = text.splitlines()
    assert lines[-1] == (
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,AVERAGE-BANDWIDTH=30000,CODECS="avc1.64001f",'
        'RESOLUTION=1280x720,URI="v720/iframe.m3u8"'
    )
    assert text.count("I-FRAME") == 1 and lines[-2] == "v360/index.m3u8"


def test_key_frames_of_hostile_fragments_are_none_not_an_error(tmp_path: Path) -> None:
    defaults = Track(timescale=90_000)
    moof = b"\0\0\0\x10moof" + b"\0\0\0\x08traf"
    cases = {
        "empty": b"",
        "garbage": bytes(range(256)) * 4,
        "moof without mdat": moof,
        "moof with an empty traf, then mdat": moof + b"\0\0\0\x08mdat",
        "box claiming 4 GB": b"\xff\xff\xff\xffmoof" + b"\0" * 64,
        "trun cut short at the end of the file": b"\0\0\0\x08mdat"
        + b"\0\0\0\x24moof\0\0\0\x1ctraf\0\0\0\x14trun\0\0\x0f\x01\0\0\0\x05"
        + b"\0\0\0\x08mdat",
    }
    for name, data in cases.items():
        path = tmp_path / "segment.m4s"
        path.write_bytes(data)
        assert key_frames(path, defaults) == [], name


def test_an_unknown_language_is_left_out_rather_than_guessed() -> None:
    audio = rendition("audio", 130_000, "audio")
    text = master_playlist([rendition("v720", 2_000_000)], audio)
    assert "LANGUAGE" not in text and "#EXT-X-MEDIA:TYPE=AUDIO" in text


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("fre", "fr"),
        ("fra", "fr"),
        ("eng", "en"),
        ("ger", "de"),
        ("fr", "fr"),
        ("FR", "fr"),
        ("pt_br", "pt-BR"),
        ("en-GB", "en-GB"),
        ("oci", "oc"),
        # A three-letter code without a two-letter one stays as it is (RFC 5646, 2.2.1).
        ("gsw", "gsw"),
        (" it ", "it"),
        ("und", None),
        ("mul", None),
        ("", None),
        ("f", None),
        ("français", None),
        ('fr",URI="x', None),
        ("fr\n#EXT-X-ENDLIST", None),
        ("x" * 40, None),
        (None, None),
        (42, None),
    ],
)
def test_language_tags_become_bcp47_or_nothing(tag: object, expected: str | None) -> None:
    assert bcp47(tag) == expected


def test_audio_master_has_no_resolution_group_or_frame_rate() -> None:
    text = master_playlist(
        [rendition("a128", 130_000, "audio"), rendition("a192", 200_000, "audio")]
    )
    assert "EXT-X-MEDIA" not in text and "RESOLUTION" not in text and "AUDIO=" not in text
    assert "FRAME-RATE" not in text
    assert text.index("a192/index.m3u8") < text.index("a128/index.m3u8")


def test_codecs_are_read_from_init_segments(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
        "testsrc2=size=320x240:rate=25:duration=1", "-f", "lavfi", "-i", "sine=duration=1",
        "-map", "0:v", "-c:v", "libx264", "-profile:v", "main", "-level", "3.0",
        "-pix_fmt", "yuv420p", "-f", "hls", "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "v.mp4", str(out / "v.m3u8"),
        "-map", "1:a", "-c:a", "aac", "-f", "hls", "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "a.mp4", "-hls_segment_filename", str(out / "a%d.m4s"),
        str(out / "a.m3u8"),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    video = sample_entry(out / "v.mp4")
    assert video is not None and video.codec == "avc1.4d401e"
    assert (video.width, video.height) == (320, 240)
    audio = sample_entry(out / "a.mp4")
    assert audio is not None and audio.codec == "mp4a.40.2"


def test_mp4_that_ends_before_its_boxes_is_called_truncated(tmp_path: Path) -> None:
    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    whole = box(b"ftyp", b"isom\0\0\0\0") + box(b"moov", b"\0" * 40) + box(b"mdat", b"\1" * 500)
    path = tmp_path / "a.mp4"
    path.write_bytes(whole)
    assert truncated_mp4(path, len(whole)) is False
    path.write_bytes(whole[:300])
    assert truncated_mp4(path, 300) is True
    path.write_bytes(b"ID3\3\0\0\0\0\0\0" + b"\0" * 100)
    assert truncated_mp4(path, 110) is None


def test_with_language_sets_the_audio_renditions_language_and_nothing_else() -> None:
    audio = rendition("audio", 128_000, kind="audio")
    video = rendition("v360", 500_000)
    french = master_playlist([video], audio, "fr")
    english = with_language(french, "en")
    assert english == french.replace('LANGUAGE="fr"', 'LANGUAGE="en"')
    # Added where master_playlist writes it, when the master had none.
    assert with_language(master_playlist([video], audio), "de") == master_playlist(
        [video], audio, "de"
    )
    # An audio production's master has no rendition to say it on: unchanged.
    variants = master_playlist([rendition("a128", 128_000, kind="audio")])
    assert with_language(variants, "en") == variants
