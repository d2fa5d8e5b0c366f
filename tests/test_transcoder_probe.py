"""Probing real files: what kind of production, what size on screen, which credits."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import media as m
from transcoder import InputRefused, Limits, Transcoder, TranscoderSettings
from transcoder.probe import parse_probe

Media = Callable[[str], Path]


@pytest.fixture(scope="module")
def transcoder() -> Transcoder:
    return Transcoder(logger=logging.getLogger("test.transcoder"))


def test_1080p_mp4_is_a_video_with_stereo_audio(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("video_1080p_h264_aac"))
    assert info.kind == "video"
    assert (info.width, info.height) == (1920, 1080)
    assert info.fps == pytest.approx(30)
    assert info.video_codec == "h264" and info.audio_codec == "aac"
    assert info.has_audio and info.channels == 2 and info.sample_rate == 48000
    assert info.duration == pytest.approx(14, abs=0.1)
    assert (info.video_streams, info.audio_streams) == (1, 1)
    assert info.size == media("video_1080p_h264_aac").stat().st_size
    assert info.tags.title == m.TITLE


def test_rotated_phone_video_is_portrait_on_screen(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("portrait_hevc_mov_rotated"))
    assert info.kind == "video" and info.video_codec == "hevc"
    assert (info.coded_width, info.coded_height) == (640, 360)
    assert info.rotation in (90, 270)
    assert (info.width, info.height) == (360, 640)


def test_anamorphic_mpeg2_is_16_9_on_screen(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("anamorphic_mpeg2"))
    assert (info.coded_width, info.coded_height) == (720, 576)
    assert (info.width, info.height) == (1024, 576)
    assert info.fps == pytest.approx(25)


def test_surround_mkv_reports_six_channels(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("vp9_opus51_mkv"))
    assert info.kind == "video" and info.video_codec == "vp9" and info.audio_codec == "opus"
    assert info.channels == 6


def test_video_without_audio(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("video_no_audio"))
    assert info.kind == "video" and not info.has_audio and info.audio_index is None
    assert info.channels is None


def test_odd_dimensions_are_reported_as_they_are(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("odd_dimensions"))
    assert (info.width, info.height) == (853, 479)


@pytest.mark.parametrize(
    ("name", "mime"),
    [
        ("flac_24bit_picture", "image/png"),
        ("mp3_id3v24_apic", "image/jpeg"),
        ("m4a_itunes_covr", "image/jpeg"),
    ],
)
def test_cover_art_makes_an_audio_production_not_a_one_frame_video(
    media: Media, transcoder: Transcoder, name: str, mime: str
) -> None:
    info = transcoder.probe(media(name))
    assert info.kind == "audio"
    assert info.video_streams == 0 and info.width is None
    assert info.has_cover
    assert info.tags.cover is not None and info.tags.cover_mime == mime
    assert info.tags.cover[:2] in (b"\xff\xd8", b"\x89P")


@pytest.mark.parametrize(
    "name", ["flac_24bit_picture", "mp3_id3v24_apic", "m4a_itunes_covr", "ogg_vorbis", "opus"]
)
def test_tags_are_read_from_each_audio_format(
    media: Media, transcoder: Transcoder, name: str
) -> None:
    tags = transcoder.probe(media(name)).tags
    assert tags.title == m.TITLE
    assert tags.artists == m.ARTISTS
    assert tags.album == m.ALBUM
    assert tags.date == m.DATE
    assert tags.genre == m.GENRE
    assert tags.track == int(m.TRACK)


def test_high_rate_mono_wav_is_audio(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("wav_96k_mono"))
    assert info.kind == "audio"
    assert (info.channels, info.sample_rate, info.audio_codec) == (1, 96000, "pcm_s24le")
    assert info.tags.cover is None and not info.has_cover


def test_hostile_tags_are_kept_as_bounded_text(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("hostile_tags_mp3"))
    tags = info.tags
    # Kept verbatim as text: escaping is the web layer's job, not ours.
    assert tags.title == m.HOSTILE_TITLE
    assert tags.artists == [m.HOSTILE_ARTIST]
    assert tags.album is not None
    assert 100 <= len(tags.album) <= 300
    assert tags.album.startswith("Very long album name")


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("empty", "empty"),
        ("text_as_mp3", "text"),
        ("truncated_mp4", "incomplete"),
        ("truncated_mp4_no_moov", "incomplete"),
        ("playlist_as_mp4", "playlist"),
        ("ffconcat", "list of other files"),
        ("still_image", "still image"),
        ("zip", "archive"),
        ("huge_frame_8192", "larger than"),
        ("long_declared_mp4", "longer than"),
    ],
)
def test_hostile_input_is_refused_with_one_plain_sentence(
    media: Media, transcoder: Transcoder, name: str, words: str
) -> None:
    with pytest.raises(InputRefused) as caught:
        transcoder.probe(media(name))
    message = caught.value.message
    assert words in message
    assert message == str(caught.value)
    assert message[0].isupper() and message.endswith(".")
    assert message.count(". ") == 0 and "\n" not in message
    assert "ffmpeg" not in message.lower() and "/" not in message


def test_limits_come_from_the_settings_passed_in(media: Media) -> None:
    strict = Transcoder(TranscoderSettings(limits=Limits(max_duration=5.0)))
    with pytest.raises(InputRefused, match=r"longer than the 5 minutes|longer than"):
        strict.probe(media("video_1080p_h264_aac"))
    small = Transcoder(TranscoderSettings(limits=Limits(max_bytes=1000)))
    with pytest.raises(InputRefused, match="larger than"):
        small.probe(media("opus"))
    few = Transcoder(TranscoderSettings(limits=Limits(max_width=640, max_height=480)))
    with pytest.raises(InputRefused, match="640×480"):
        few.probe(media("video_1080p_h264_aac"))
    assert few.probe(media("video_no_audio")).width == 320


def test_missing_file_is_refused(tmp_path: Path, transcoder: Transcoder) -> None:
    with pytest.raises(InputRefused, match="could not be found"):
        transcoder.probe(tmp_path / "nothing.mp4")


# --- the picture's bitrate ---------------------------------------------------------------------


def probe_data(
    video_rate: object = None, audio_rate: object = None, file_rate: object = None
) -> dict[str, Any]:
    video: dict[str, Any] = {
        "index": 0,
        "codec_type": "video",
        "codec_name": "h264",
        "width": 1920,
        "height": 1080,
        "avg_frame_rate": "30/1",
    }
    audio: dict[str, Any] = {"index": 1, "codec_type": "audio", "codec_name": "aac", "channels": 2}
    if video_rate is not None:
        video["bit_rate"] = video_rate
    if audio_rate is not None:
        audio["bit_rate"] = audio_rate
    fmt: dict[str, Any] = {"format_name": "mov,mp4", "duration": "20.0"}
    if file_rate is not None:
        fmt["bit_rate"] = file_rate
    return {"streams": [video, audio], "format": fmt}


# 20 s at 4 Mb/s: the file's own average, which no stream can exceed.
SIZE = 20 * 4_000_000 // 8


def test_the_video_streams_own_bitrate_is_the_pictures() -> None:
    info = parse_probe(probe_data("3800000", "128000", "3950000"), SIZE)
    assert info.video_bitrate == 3_800_000


def test_without_it_the_files_bitrate_less_the_sounds_is_used() -> None:
    info = parse_probe(probe_data("N/A", "128000", "3950000"), SIZE)
    assert info.video_bitrate == 3_950_000 - 128_000
    # Sound of unknown rate counts as none: the cap is looser, never tighter.
    assert parse_probe(probe_data(None, None, "3950000"), SIZE).video_bitrate == 3_950_000


@pytest.mark.parametrize(
    ("video_rate", "file_rate"),
    [
        (None, None),
        ("N/A", "N/A"),
        ("0", None),
        ("-3800000", None),
        (None, "-1"),
        ("12", None),
        ("1e400", None),
        ("nan", "nan"),
        ("99999999999999", None),
        ("9000000", None),
        (None, "9000000"),
        ([1], {"a": 1}),
    ],
    ids=[
        "missing",
        "n-a",
        "zero",
        "negative",
        "negative-file",
        "too-small",
        "infinite",
        "nan",
        "absurd",
        "above-the-file",
        "file-above-its-size",
        "not-numbers",
    ],
)
def test_bitrates_a_recording_cannot_have_are_not_believed(
    video_rate: object, file_rate: object
) -> None:
    info = parse_probe(probe_data(video_rate, "128000", file_rate), SIZE)
    assert info.kind == "video" and info.video_bitrate is None


def test_audio_has_no_video_bitrate() -> None:
    data = probe_data("3800000", "128000", "3950000")
    data["streams"] = data["streams"][1:]
    assert parse_probe(data, SIZE).video_bitrate is None


def test_a_real_capture_reports_its_pictures_bitrate(media: Media, transcoder: Transcoder) -> None:
    info = transcoder.probe(media("stage_capture_1080p"))
    assert (info.width, info.height) == (1920, 1080)
    assert info.video_bitrate is not None
    assert info.video_bitrate == pytest.approx(m.STAGE_CAPTURE_BITRATE, rel=0.15)
    # Matroska gives no stream bitrates: the file's is the estimate.
    surround = transcoder.probe(media("vp9_opus51_mkv"))
    assert surround.video_bitrate is not None
    assert 300_000 <= surround.video_bitrate <= surround.size * 8 / surround.duration
