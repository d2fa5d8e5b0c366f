"""Real transcodes, checked from the outside: ffprobe on the output, files on disk, playlists."""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import m3u8
import numpy as np
import pytest
import webvtt
from PIL import Image

from tests.hls_check import check_hls
from tests.media import ARTISTS, TITLE
from transcoder import Transcoder, TranscodeResult
from transcoder.ladder import AudioRung
from transcoder.pipeline import download_rung

Media = Callable[[str], Path]


@dataclass
class Run:
    source: Path
    out: Path
    result: TranscodeResult
    progress: list[float]
    source_duration: float


def ffprobe(path: Path, *args: str) -> dict[str, Any]:
    command = ["ffprobe", "-v", "error", "-print_format", "json", *args, str(path)]
    output = subprocess.run(command, capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(output.stdout)
    return data


def media_playlist(path: Path) -> tuple[dict[str, str], list[tuple[float, str]]]:
    tags: dict[str, str] = {}
    segments: list[tuple[float, str]] = []
    duration = None
    for line in path.read_text().splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line.startswith("#"):
            key, _, value = line.partition(":")
            tags[key] = value
        elif line:
            assert duration is not None
            segments.append((duration, line))
            duration = None
    return tags, segments


def master_entries(path: Path) -> tuple[list[str], list[tuple[dict[str, str], str]]]:
    lines = path.read_text().splitlines()
    media = [line for line in lines if line.startswith("#EXT-X-MEDIA:")]
    variants = []
    for number, line in enumerate(lines):
        if line.startswith("#EXT-X-STREAM-INF:"):
            pairs = re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', line.split(":", 1)[1])
            variants.append(({k: v.strip('"') for k, v in pairs}, lines[number + 1]))
    return media, variants


def joined(folder: Path, segment: str, tmp: Path) -> Path:
    """init + one segment: a complete fragmented MP4 ffprobe can read on its own."""
    out = tmp / f"{folder.name}-{segment}.mp4"
    out.write_bytes((folder / "init.mp4").read_bytes() + (folder / segment).read_bytes())
    return out


def whole(folder: Path, tmp: Path) -> Path:
    _, segments = media_playlist(folder / "index.m3u8")
    out = tmp / f"{folder.name}-whole.mp4"
    out.write_bytes(
        (folder / "init.mp4").read_bytes()
        + b"".join((folder / uri).read_bytes() for _, uri in segments)
    )
    return out


def transcode(media: Media, name: str, out: Path) -> Run:
    progress: list[float] = []
    transcoder = Transcoder(logger=logging.getLogger("test.e2e"), progress=progress.append)
    source = media(name)
    info = transcoder.probe(source)
    # Productions are French unless their artist says otherwise (Production.language).
    result = transcoder.transcode(source, out, info, language="fr")
    return Run(source, out, result, progress, info.duration)


@pytest.fixture(scope="module")
def hd(media: Media, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return transcode(media, "video_1080p_h264_aac", tmp_path_factory.mktemp("hd"))


@pytest.fixture(scope="module")
def portrait(media: Media, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return transcode(media, "portrait_hevc_mov_rotated", tmp_path_factory.mktemp("portrait"))


@pytest.fixture(scope="module")
def silent(media: Media, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return transcode(media, "video_no_audio", tmp_path_factory.mktemp("silent"))


@pytest.fixture(scope="module")
def flac(media: Media, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return transcode(media, "flac_24bit_picture", tmp_path_factory.mktemp("flac"))


@pytest.fixture(scope="module")
def surround(media: Media, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return transcode(media, "vp9_opus51_mkv", tmp_path_factory.mktemp("surround"))


VIDEO_RUNS = ["hd", "portrait", "silent", "surround"]


@pytest.fixture(params=VIDEO_RUNS)
def video(request: pytest.FixtureRequest) -> Run:
    run: Run = request.getfixturevalue(request.param)
    return run


def video_rungs(run: Run) -> list[Path]:
    return [run.out / r.name for r in run.result.renditions if r.kind == "video"]


@pytest.mark.parametrize("name", [*VIDEO_RUNS, "flac"])
def test_output_passes_the_independent_hls_checker(
    name: str, request: pytest.FixtureRequest
) -> None:
    run: Run = request.getfixturevalue(name)
    check_hls(run.out, expected_duration=run.source_duration)


# --- video -------------------------------------------------------------------------------------


def test_1080p_source_gets_four_rungs_and_one_shared_audio(hd: Run) -> None:
    # At 2 Mb/s, 720p would cost what 1080p does (the source's bitrate): it adds nothing.
    assert [r.name for r in hd.result.renditions] == [
        "v1080",
        "v480",
        "v360",
        "v240",
        "audio",
    ]
    assert hd.result.kind == "video" and hd.result.master == "master.m3u8"
    for rendition in hd.result.renditions:
        assert rendition.playlist in hd.result.files
    assert {"master.m3u8", "poster.jpg", "storyboard.jpg", "storyboard.vtt"} <= set(hd.result.files)
    on_disk = {p.relative_to(hd.out).as_posix() for p in hd.out.rglob("*") if p.is_file()}
    assert set(hd.result.files) == on_disk


def test_rungs_have_their_planned_size_in_square_pixels_and_no_audio(
    video: Run, tmp_path: Path
) -> None:
    for rendition in video.result.renditions:
        if rendition.kind != "video":
            continue
        info = ffprobe(whole(video.out / rendition.name, tmp_path), "-show_streams")
        assert [s["codec_type"] for s in info["streams"]] == ["video"]
        stream = info["streams"][0]
        assert stream["codec_name"] == "h264" and stream["profile"] == "High"
        assert stream["pix_fmt"] == "yuv420p"
        assert (stream["width"], stream["height"]) == (rendition.width, rendition.height)
        assert stream.get("sample_aspect_ratio", "1:1") in ("1:1", "0:1")
        assert not any("rotation" in d for d in stream.get("side_data_list", []))


def test_every_segment_of_every_rung_starts_on_a_keyframe_at_the_same_time(
    video: Run, tmp_path: Path
) -> None:
    starts: dict[str, list[float]] = {}
    for folder in video_rungs(video):
        _, segments = media_playlist(folder / "index.m3u8")
        starts[folder.name] = []
        for _, uri in segments:
            probe = ffprobe(
                joined(folder, uri, tmp_path),
                "-select_streams",
                "v",
                "-show_entries",
                "packet=pts_time,dts_time,flags",
                "-show_packets",
            )
            packets = probe["packets"]
            assert packets, f"{folder.name}/{uri} has no video"
            first = min(packets, key=lambda p: float(p["dts_time"]))
            assert "K" in first["flags"], f"{folder.name}/{uri} does not start on a keyframe"
            starts[folder.name].append(round(float(first["pts_time"]), 3))
    reference = next(iter(starts.values()))
    assert len(reference) >= 1
    for name, times in starts.items():
        assert times == reference, f"{name} segments start at {times}, not {reference}"


def test_keyframes_fall_every_two_seconds(hd: Run, tmp_path: Path) -> None:
    probe = ffprobe(
        whole(hd.out / "v360", tmp_path),
        "-select_streams",
        "v",
        "-show_entries",
        "packet=pts_time,flags",
        "-show_packets",
    )
    keys = sorted(float(p["pts_time"]) for p in probe["packets"] if "K" in p["flags"])
    gaps = np.diff(keys)
    assert len(keys) == 7  # 14 s at one keyframe every 2 s
    assert np.allclose(gaps, 2.0, atol=0.05)


def test_durations_match_the_source_within_a_second(video: Run, tmp_path: Path) -> None:
    assert video.result.duration == pytest.approx(video.source_duration, abs=1.0)
    for rendition in video.result.renditions:
        folder = video.out / rendition.name
        _, segments = media_playlist(folder / "index.m3u8")
        assert sum(d for d, _ in segments) == pytest.approx(video.source_duration, abs=1.0)
        measured = float(ffprobe(whole(folder, tmp_path), "-show_format")["format"]["duration"])
        assert measured == pytest.approx(video.source_duration, abs=1.0)


def test_media_playlists_are_complete_vod(video: Run) -> None:
    for rendition in video.result.renditions:
        path = video.out / rendition.playlist
        tags, segments = media_playlist(path)
        assert tags["#EXT-X-PLAYLIST-TYPE"] == "VOD"
        assert "#EXT-X-ENDLIST" in tags
        assert int(tags["#EXT-X-VERSION"]) >= 6
        assert tags["#EXT-X-MAP"] == 'URI="init.mp4"'
        target = int(tags["#EXT-X-TARGETDURATION"])
        assert all(int(d + 0.5) <= target for d, _ in segments)
        assert [uri for _, uri in segments] == [
            f"seg_{n:05d}.m4s" for n in range(1, len(segments) + 1)
        ]
        assert all(d <= 6.5 for d, _ in segments[:-1])


def test_master_announces_measured_bandwidth_codecs_resolution_and_audio(
    video: Run, tmp_path: Path
) -> None:
    media, variants = master_entries(video.out / "master.m3u8")
    text = (video.out / "master.m3u8").read_text()
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:7\n")
    assert "#EXT-X-INDEPENDENT-SEGMENTS" in text
    has_audio = any(r.name == "audio" for r in video.result.renditions)
    if has_audio:
        assert len(media) == 1
        assert 'TYPE=AUDIO,GROUP-ID="audio"' in media[0] and 'URI="audio/index.m3u8"' in media[0]
    else:
        assert media == []
    audio_peak = 0
    if has_audio:
        audio_peak = peak_bitrate(video.out / "audio")
    heights = [int(attrs["RESOLUTION"].split("x")[1]) for attrs, _ in variants]
    widths = [int(attrs["RESOLUTION"].split("x")[0]) for attrs, _ in variants]
    assert heights == sorted(heights, reverse=True) and widths == sorted(widths, reverse=True)
    assert len(variants) == len(video_rungs(video))
    for attrs, uri in variants:
        folder = video.out / uri.split("/")[0]
        stream = ffprobe(whole(folder, tmp_path), "-show_streams")["streams"][0]
        assert attrs["RESOLUTION"] == f"{stream['width']}x{stream['height']}"
        assert re.fullmatch(r"\d+\.\d{3}", attrs["FRAME-RATE"])
        assert float(attrs["FRAME-RATE"]) == pytest.approx(
            eval_rate(stream["avg_frame_rate"]) or float(attrs["FRAME-RATE"]), abs=0.01
        )
        level = f"{int(stream['level']):02x}"
        expected = f"avc1.6400{level}" + (",mp4a.40.2" if has_audio else "")
        assert attrs["CODECS"] == expected
        assert (attrs.get("AUDIO") == "audio") == has_audio
        # BANDWIDTH is a peak: no segment of the variant may need more.
        assert int(attrs["BANDWIDTH"]) >= peak_bitrate(folder) + audio_peak
        assert 0 < int(attrs["AVERAGE-BANDWIDTH"]) <= int(attrs["BANDWIDTH"])


def eval_rate(rate: str) -> float | None:
    num, _, den = rate.partition("/")
    return float(num) / float(den) if den and float(den) else None


def peak_bitrate(folder: Path) -> int:
    _, segments = media_playlist(folder / "index.m3u8")
    return int(max((folder / uri).stat().st_size * 8 / d for d, uri in segments))


def test_shared_audio_is_aac_lc_stereo_48k(hd: Run, tmp_path: Path) -> None:
    stream = ffprobe(whole(hd.out / "audio", tmp_path), "-show_streams")["streams"]
    assert [(s["codec_type"], s["codec_name"], s["profile"]) for s in stream] == [
        ("audio", "aac", "LC")
    ]
    assert stream[0]["channels"] == 2 and stream[0]["sample_rate"] == "48000"


def test_surround_is_downmixed_to_stereo(surround: Run, tmp_path: Path) -> None:
    stream = ffprobe(whole(surround.out / "audio", tmp_path), "-show_streams")["streams"][0]
    assert stream["channels"] == 2


def test_portrait_source_gives_portrait_rungs(portrait: Run) -> None:
    sizes = [(r.width, r.height) for r in portrait.result.renditions if r.kind == "video"]
    assert sizes == [(360, 640), (240, 426)]


def test_files_lists_what_this_run_wrote_not_what_was_there(media: Media, tmp_path: Path) -> None:
    stale = tmp_path / "v240" / "seg_00099.m4s"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    run = transcode(media, "video_no_audio", tmp_path)
    assert "v240/seg_00099.m4s" not in run.result.files
    assert "v240/seg_00001.m4s" in run.result.files and "v240/init.mp4" in run.result.files


def grey_frame(path: Path, *options: str) -> np.ndarray:
    command = ["ffmpeg", "-nostdin", "-v", "error", *options, "-ss", "1", "-i", str(path)]
    command += ["-frames:v", "1", "-vf", "scale=36:64", "-pix_fmt", "gray", "-f", "rawvideo", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(64, 36).astype(np.float64)


def test_portrait_picture_is_turned_upright_not_squeezed(portrait: Run, tmp_path: Path) -> None:
    output = grey_frame(whole(portrait.out / "v360", tmp_path))
    upright = grey_frame(portrait.source)
    squeezed = grey_frame(portrait.source, "-noautorotate")
    assert np.abs(output - upright).mean() < 12
    assert np.abs(output - squeezed).mean() > 2 * np.abs(output - upright).mean()


def test_video_without_audio_has_no_audio_rendition(silent: Run) -> None:
    assert [r.kind for r in silent.result.renditions] == ["video"]
    assert not (silent.out / "audio").exists()
    assert silent.result.loudness_lufs is None


def test_poster_is_a_representative_frame_not_the_black_opening(hd: Run) -> None:
    assert hd.result.poster == "poster.jpg"
    with Image.open(hd.out / "poster.jpg") as image:
        assert image.format == "JPEG"
        assert image.size == (1280, 720)
        luma = np.asarray(image.convert("L"), dtype=np.float64)
    assert luma.mean() > 40 and luma.std() > 10


def test_storyboard_cues_point_inside_the_sprite(hd: Run) -> None:
    with Image.open(hd.out / "storyboard.jpg") as image:
        assert image.format == "JPEG"
        sprite_w, sprite_h = image.size
    vtt = (hd.out / "storyboard.vtt").read_text()
    assert vtt.startswith("WEBVTT\n")
    cues = re.findall(
        r"(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n"
        r"storyboard\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)",
        vtt,
    )
    assert 10 <= len(cues) <= 100
    previous_end = "00:00:00.000"
    for start, end, x, y, w, h in cues:
        assert start == previous_end and end > start
        previous_end = end
        assert int(w) == 160 and int(h) == 90
        assert int(x) + int(w) <= sprite_w and int(y) + int(h) <= sprite_h
    assert previous_end.startswith("00:00:14")
    # webvtt-py reads the same cues (a reader of players' tooling).
    captions = webvtt.from_string(vtt).captions
    assert [(c.start, c.end) for c in captions] == [(start, end) for start, end, *_ in cues]
    assert all(c.text.startswith("storyboard.jpg#xywh=") for c in captions)


def test_loudness_is_measured_in_the_same_run(hd: Run) -> None:
    assert hd.result.loudness_lufs is not None
    assert -40 < hd.result.loudness_lufs < 0


def test_progress_rises_from_zero_to_one(hd: Run, flac: Run) -> None:
    for run in (hd, flac):
        assert run.progress[0] == 0.0 and run.progress[-1] == 1.0
        assert run.progress == sorted(run.progress)
        assert len(run.progress) >= 3


# --- audio -------------------------------------------------------------------------------------


def test_flac_becomes_audio_rungs_without_any_video(flac: Run) -> None:
    assert flac.result.kind == "audio"
    assert [r.name for r in flac.result.renditions] == ["a192", "a128", "a64"]
    for rendition in flac.result.renditions:
        folder = flac.out / rendition.name
        streams = ffprobe(whole(folder, flac.out.parent), "-show_streams")["streams"]
        assert [(s["codec_type"], s["codec_name"], s["profile"]) for s in streams] == [
            ("audio", "aac", "LC")
        ]
        assert streams[0]["channels"] == 2 and streams[0]["sample_rate"] == "48000"
    assert not any(name.startswith("v") for name in flac.result.files)
    assert flac.result.poster is None and flac.result.storyboard_image is None


def test_audio_master_lists_audio_variants_only(flac: Run) -> None:
    media, variants = master_entries(flac.out / "master.m3u8")
    assert media == []
    assert [uri for _, uri in variants] == ["a192/index.m3u8", "a128/index.m3u8", "a64/index.m3u8"]
    for attrs, uri in variants:
        assert attrs["CODECS"] == "mp4a.40.2"
        assert "RESOLUTION" not in attrs and "AUDIO" not in attrs
        assert int(attrs["BANDWIDTH"]) >= peak_bitrate(flac.out / uri.split("/")[0])
    assert flac.result.duration == pytest.approx(flac.source_duration, abs=1.0)


def test_audio_cover_is_re_encoded_jpeg(flac: Run) -> None:
    assert flac.result.cover == "cover.jpg"
    data = (flac.out / "cover.jpg").read_bytes()
    assert data[:3] == b"\xff\xd8\xff"
    with Image.open(flac.out / "cover.jpg") as image:
        assert image.format == "JPEG" and image.size == (480, 480)
        # The fixture's cover has a light disc in the middle and a dark frame.
        assert np.asarray(image.convert("L"))[240, 240] > 200


def test_waveform_is_audiowaveform_json(flac: Run) -> None:
    peaks = json.loads((flac.out / "waveform.json").read_text())
    assert peaks["version"] == 2 and peaks["channels"] == 1 and peaks["bits"] == 8
    assert peaks["sample_rate"] == 48000
    assert 1000 <= peaks["length"] <= 2000
    assert len(peaks["data"]) == 2 * peaks["length"]
    assert peaks["samples_per_pixel"] * peaks["length"] >= 8 * 48000 * 0.99
    lows, highs = peaks["data"][0::2], peaks["data"][1::2]
    assert all(-128 <= low <= high <= 127 for low, high in zip(lows, highs, strict=True))
    # Tones at 0.3 of full scale: peaks near ±38 in 8 bits once the channels are mixed.
    assert 20 < max(highs) < 60 and -60 < min(lows) < -20


def test_audio_loudness_is_plausible(flac: Run) -> None:
    assert flac.result.loudness_lufs is not None
    assert -30 < flac.result.loudness_lufs < -5


# --- the downloadable file ---------------------------------------------------------------------


def top_level_boxes(path: Path) -> list[str]:
    data, offset, names = path.read_bytes(), 0, []
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        names.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        assert size >= 8, "a box has a size"
        offset += size
    return names


def packet_hashes(path: Path) -> list[str]:
    """Size and MD5 of every audio packet, read without decoding."""
    command = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy"]
    out = subprocess.run(
        [*command, "-f", "framemd5", "-"], capture_output=True, text=True, check=True
    ).stdout
    return [",".join(line.split(",")[-2:]) for line in out.splitlines() if line[:1].isdigit()]


def test_audio_download_is_a_faststart_m4a_tagged_with_title_and_artists(flac: Run) -> None:
    assert flac.result.download == "download.m4a"
    assert "download.m4a" in flac.result.files
    path = flac.out / "download.m4a"
    boxes = top_level_boxes(path)
    assert boxes[0] == "ftyp"
    assert boxes.index("moov") < boxes.index("mdat"), "the index comes first (faststart)"
    probed = ffprobe(path, "-show_format", "-show_streams")
    tags = probed["format"]["tags"]
    assert tags["major_brand"].strip() == "M4A"
    assert tags["title"] == TITLE
    assert tags["artist"] == ", ".join(ARTISTS)
    assert [(s["codec_type"], s["codec_name"], s["profile"]) for s in probed["streams"]] == [
        ("audio", "aac", "LC")
    ]
    assert float(probed["format"]["duration"]) == pytest.approx(flac.source_duration, abs=0.2)


def test_audio_download_is_the_128k_rung_copied_not_encoded_again(
    flac: Run, tmp_path: Path
) -> None:
    rung = packet_hashes(whole(flac.out / "a128", tmp_path))
    assert len(rung) > 100
    assert packet_hashes(flac.out / "download.m4a") == rung


def test_video_has_no_download(hd: Run) -> None:
    assert hd.result.download is None
    assert not (hd.out / "download.m4a").exists()


def test_download_rung_is_the_best_at_or_under_128k() -> None:
    def rungs(*kbps: int) -> list[AudioRung]:
        return [AudioRung(f"a{k}", k * 1000) for k in kbps]

    assert download_rung(rungs(192, 128, 64)).name == "a128"
    assert download_rung(rungs(96, 64)).name == "a96"
    assert download_rung(rungs(64)).name == "a64"
    # A ladder configured above 128k still gets a file: its smallest rung.
    assert download_rung(rungs(320, 256)).name == "a256"


def test_audio_rendition_speaks_the_files_language_else_the_productions(
    hd: Run, media: Media, tmp_path: Path
) -> None:
    """Apple's HLS authoring specification: LANGUAGE on every non-video rendition."""
    renditions, _ = master_entries(hd.out / "master.m3u8")
    assert len(renditions) == 1 and 'LANGUAGE="fr"' in renditions[0]
    tagged = tmp_path / "tagged.mkv"
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-i", str(media("vp9_opus51_mkv")), "-map", "0"),
            *("-c", "copy", "-metadata:s:a:0", "language=ger", str(tagged)),
        ],
        check=True,
    )
    transcoder = Transcoder(logger=logging.getLogger("test.e2e"))
    info = transcoder.probe(tagged)
    assert info.audio_language == "de"
    transcoder.transcode(tagged, tmp_path / "out", info, language="fr")
    renditions, _ = master_entries(tmp_path / "out" / "master.m3u8")
    assert len(renditions) == 1 and 'LANGUAGE="de"' in renditions[0]


def framemd5(*args: str, check: bool = True) -> list[str]:
    """ffmpeg's decoded pictures of the video, as checksums, in order."""
    command = ["ffmpeg", "-v", "error", *args, "-map", "0:v:0", "-f", "framemd5", "-"]
    output = subprocess.run(command, capture_output=True, text=True, check=check).stdout
    return [line.rsplit(",", 1)[1].strip() for line in output.splitlines() if line[:1] != "#"]


def test_every_video_rung_has_an_i_frame_playlist_of_its_key_frames(
    hd: Run, tmp_path: Path
) -> None:
    """RFC 8216 4.3.3.6 and Apple's HLS authoring specification (trick play): each entry,
    after the init segment, decodes alone to the rendition's key frame at that time."""
    _, variants = master_entries(hd.out / "master.m3u8")
    lines = (hd.out / "master.m3u8").read_text().splitlines()
    iframe_lines = [line for line in lines if line.startswith("#EXT-X-I-FRAME-STREAM-INF:")]
    assert len(iframe_lines) == len(variants) == 4
    for (attrs, uri), line in zip(variants, iframe_lines, strict=True):
        rung = uri.split("/")[0]
        assert f'URI="{rung}/iframe.m3u8"' in line
        assert f"RESOLUTION={attrs['RESOLUTION']}," in line
        assert f'CODECS="{attrs["CODECS"].split(",")[0]}"' in line and "mp4a" not in line
        assert f"{rung}/iframe.m3u8" in hd.result.files
    folder = hd.out / "v240"
    text = (folder / "iframe.m3u8").read_text()
    assert "#EXT-X-I-FRAMES-ONLY" in text and '#EXT-X-MAP:URI="init.mp4"' in text
    entries = re.findall(r"#EXTINF:([\d.]+),\n#EXT-X-BYTERANGE:(\d+)@(\d+)\n(\S+)", text)
    _, segments = media_playlist(folder / "index.m3u8")
    # One key frame opens each segment, and so each fragment: one entry per segment.
    assert [uri for *_, uri in entries] == [uri for _, uri in segments]
    assert sum(float(d) for d, *_ in entries) == pytest.approx(sum(d for d, _ in segments))
    # The rendition's key frames, every 2 s: those opening a segment are the I-frames.
    keys = framemd5("-skip_frame", "nokey", "-i", str(whole(folder, tmp_path)))
    starts = [round(sum(d for d, _ in segments[:n]) / 2) for n in range(len(segments))]
    for index, (_, length, offset, uri) in enumerate(entries):
        data = (folder / uri).read_bytes()[int(offset) : int(offset) + int(length)]
        assert len(data) == int(length) and data[4:8] == b"moof"
        alone = tmp_path / f"iframe-{index}.mp4"
        alone.write_bytes((folder / "init.mp4").read_bytes() + data)
        assert framemd5("-i", str(alone), "-frames:v", "1") == [keys[starts[index]]]
    # ffmpeg's HLS demuxer reads the playlist and shows its first picture; it has no I-frame
    # mode, so it reads the fragment's other samples past the range and stops there.
    playlist = folder / "iframe.m3u8"
    assert framemd5("-skip_frame", "nokey", "-i", str(playlist), check=False)[:1] == keys[:1]


def test_audio_productions_have_no_i_frame_playlist(flac: Run) -> None:
    assert "I-FRAME" not in (flac.out / "master.m3u8").read_text()
    assert not any(name.endswith("iframe.m3u8") for name in flac.result.files)


@pytest.mark.parametrize("name", ["hd", "portrait", "surround"])
def test_the_sound_ends_with_the_picture(name: str, request: pytest.FixtureRequest) -> None:
    """The shared audio lasted 21-37 ms past the video (AAC priming and padding): now it ends
    on an AAC frame (21.3 ms) at or before the picture's end, in its playlist and its media."""
    run: Run = request.getfixturevalue(name)
    _, audio_segments = media_playlist(run.out / "audio" / "index.m3u8")
    audio_total = sum(duration for duration, _ in audio_segments)
    for rung in video_rungs(run):
        _, segments = media_playlist(rung / "index.m3u8")
        video_total = sum(duration for duration, _ in segments)
        assert video_total - 2 * 1024 / 48000 <= audio_total <= video_total + 0.0005, rung.name
    joined_audio = whole(run.out / "audio", run.out.parent)
    stream = ffprobe(joined_audio, "-show_entries", "stream=duration")["streams"][0]
    assert float(stream["duration"]) <= audio_total + 0.0005


@pytest.mark.parametrize("name", [*VIDEO_RUNS, "flac"])
def test_every_playlist_parses_strictly_with_the_m3u8_package(
    name: str, request: pytest.FixtureRequest
) -> None:
    """The `m3u8` package (the parser of many HLS tools), strict: a line it does not know is an
    error. The master, every media playlist and every I-frame playlist."""
    run: Run = request.getfixturevalue(name)
    master = m3u8.M3U8((run.out / "master.m3u8").read_text(), strict=True)
    assert master.is_variant
    video = [r for r in run.result.renditions if r.kind == "video"]
    # A variant per video rung; an audio production's rungs are its variants.
    audio = [r for r in run.result.renditions if r.kind == "audio"]
    assert len(master.playlists) == (len(video) or len(audio))
    # One I-frame playlist per video rung (Apple's authoring specification, 6.16).
    assert len(master.iframe_playlists) == len(video)
    for media in master.media:
        assert media.type == "AUDIO" and media.language, "LANGUAGE on non-video renditions"
    uris = [p.uri for p in master.playlists] + [m.uri for m in master.media if m.uri]
    for uri in uris:
        playlist = m3u8.M3U8((run.out / uri).read_text(), strict=True)
        assert playlist.is_endlist and playlist.playlist_type == "vod", uri
        assert playlist.segments and playlist.segment_map, uri
        assert playlist.segment_map[0].uri == "init.mp4", uri
        assert all(s.duration <= playlist.target_duration + 0.5 for s in playlist.segments)
    for iframe in master.iframe_playlists:
        playlist = m3u8.M3U8((run.out / iframe.uri).read_text(), strict=True)
        assert playlist.is_i_frames_only and playlist.is_endlist, iframe.uri
        assert playlist.segments and all(s.byterange for s in playlist.segments), iframe.uri
        assert iframe.iframe_stream_info.bandwidth > 0 and iframe.iframe_stream_info.resolution
