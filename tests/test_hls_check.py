"""The HLS checker passes a good tree and catches each kind of broken one."""

from __future__ import annotations

import math
import shutil
import struct
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.hls_check import (
    HLSReport,
    check_hls,
    check_hls_tree,
    check_hls_url,
    check_keyframe_alignment,
    inspect_hls,
    parse_attributes,
)
from tests.media import ffmpeg

SECONDS = 6
FPS = 25


def _bits_per_second(files: list[Path], seconds: float) -> float:
    return sum(8 * f.stat().st_size for f in files) / seconds


def write_master(
    root: Path, rungs: dict[str, str], audio: str | None = "audio", key_segments: int | None = None
) -> None:
    """A master playlist with every attribute RFC 8216 wants, sized from the files themselves
    (peak = largest video segment rate + largest audio segment rate, plus 10%), and an I-frame
    playlist per rung (``write_iframes``)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    audio_peak = audio_average = 0.0
    if audio:
        lines.append(
            '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aud",NAME="Stéréo",LANGUAGE="fr",DEFAULT=YES,AUTOSELECT=YES,'
            f'CHANNELS="2",URI="{audio}/index.m3u8"'
        )
        audio_peak, audio_average = _rates(root / audio)
    for name, resolution in rungs.items():
        peak, average = _rates(root / name)
        codecs = "avc1.42c015,mp4a.40.2" if audio else "avc1.42c015"
        group = ',AUDIO="aud"' if audio else ""
        lines += [
            f"#EXT-X-STREAM-INF:BANDWIDTH={math.ceil(1.1 * (peak + audio_peak))},"
            f"AVERAGE-BANDWIDTH={math.ceil(average + audio_average)},"
            f'CODECS="{codecs}",RESOLUTION={resolution},FRAME-RATE={FPS:.3f}{group}',
            f"{name}/index.m3u8",
        ]
    for name, resolution in rungs.items():
        peak = write_iframes(root / name, key_segments)
        lines.append(
            f"#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={math.ceil(1.1 * peak)},"
            f'CODECS="avc1.42c015",RESOLUTION={resolution},URI="{name}/iframe.m3u8"'
        )
    (root / "master.m3u8").write_text("\n".join(lines) + "\n")


def write_iframes(folder: Path, key_segments: int | None = None) -> float:
    """``iframe.m3u8``: each segment whole as one I-frame entry (each opens on a key frame);
    only the first ``key_segments`` when given, the last running to the end. Its peak rate."""
    text = (folder / "index.m3u8").read_text().splitlines()
    entries = [
        (float(line.split(":")[1].rstrip(",")), text[i + 1])
        for i, line in enumerate(text)
        if line.startswith("#EXTINF")
    ]
    total = sum(duration for duration, _ in entries)
    if key_segments is not None:
        kept = entries[:key_segments]
        entries = [*kept[:-1], (total - sum(d for d, _ in kept[:-1]), kept[-1][1])]
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:" + str(round(total))]
    lines += ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-I-FRAMES-ONLY"]
    lines += [line for line in text if line.startswith("#EXT-X-MAP:")]
    peak = 0.0
    for duration, name in entries:
        size = (folder / name).stat().st_size
        lines += [f"#EXTINF:{duration:.6f},", f"#EXT-X-BYTERANGE:{size}@0", name]
        peak = max(peak, size * 8 / duration)
    (folder / "iframe.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST", ""]))
    return peak


def _rates(folder: Path) -> tuple[float, float]:
    """(largest per-segment rate, average rate) from the media playlist and segment sizes."""
    text = (folder / "index.m3u8").read_text().splitlines()
    pairs = [
        (float(line.split(":")[1].rstrip(",")), folder / text[i + 1])
        for i, line in enumerate(text)
        if line.startswith("#EXTINF")
    ]
    peak = max(_bits_per_second([path], duration) for duration, path in pairs)
    total = sum(duration for duration, _ in pairs)
    return peak, _bits_per_second([path for _, path in pairs], total)


def hls_ladder(root: Path, gops: tuple[float, float] = (2, 2)) -> Path:
    """Two H.264 rungs and an AAC rendition in fMP4, cut every 2 s by ffmpeg's own HLS muxer.

    `gops` sets each rung's keyframe interval; unequal ones make rungs cut at different times.
    """
    root.mkdir(parents=True, exist_ok=True)
    common = [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p",
        "-sc_threshold",
        "0",
    ]
    hls = [
        "-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
    ]  # fmt: skip
    sources = [
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration={SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:beep_factor=4:duration={SECONDS}",
    ]  # fmt: skip
    for name, size, gop in (("high", "320:180", gops[0]), ("low", "160:90", gops[1])):
        (root / name).mkdir()
        ffmpeg(
            *sources, "-map", "0:v", "-vf", f"scale={size}", *common,
            "-force_key_frames", f"expr:gte(t,n_forced*{gop})", "-b:v", "300k", *hls,
            "-hls_segment_filename", str(root / name / "seg_%03d.m4s"),
            str(root / name / "index.m3u8"),
        )  # fmt: skip
    (root / "audio").mkdir()
    ffmpeg(
        *sources, "-map", "1:a", "-c:a", "aac", "-b:a", "64k", "-ac", "2", *hls,
        "-hls_segment_filename", str(root / "audio" / "seg_%03d.m4s"),
        str(root / "audio" / "index.m3u8"),
    )  # fmt: skip
    write_master(root, {"high": "320x180", "low": "160x90"})
    return root


@pytest.fixture(scope="module")
def good_hls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hls_ladder(tmp_path_factory.mktemp("hls") / "good")


@pytest.fixture
def hls_copy(good_hls: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good_hls, tmp_path / "hls"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def problems_of(root: Path, **options: Any) -> str:
    report = inspect_hls(root, **options)
    assert not report.ok, "the checker should have found a problem"
    with pytest.raises(AssertionError) as raised:
        check_hls(root, **options)
    assert str(raised.value).count("\n- ") == len(report.problems)
    return "\n".join(report.problems)


# --- a good tree ---------------------------------------------------------------------------------


def test_good_ladder_passes_with_measurements(good_hls: Path) -> None:
    report = check_hls(good_hls, expected_duration=SECONDS)
    assert isinstance(report, HLSReport) and report.ok
    high, low = (v.uri for v in report.master.variants)
    assert set(report.peak_bitrates) == {high, low}
    assert 0 < report.average_bitrates[low] <= report.peak_bitrates[low]
    assert report.peak_bitrates[high] > report.peak_bitrates[low]
    starts = {uri: [s.start for s in report.segment_starts[uri]] for uri in (high, low)}
    assert len(starts[high]) == 3 and starts[high] == starts[low]
    assert all(s.keyframe for s in report.segment_starts[high])
    assert report.segment_starts[low][0].size == (160, 90)
    assert math.isclose(report.media[high].total_duration, SECONDS, abs_tol=0.1)


@pytest.fixture
def http_base(good_hls: Path) -> Iterator[str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the stdlib names it format
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(good_hls)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_split_checks_pass_on_a_good_ladder(good_hls: Path) -> None:
    assert check_hls_tree(good_hls).segment_starts == {}
    report = check_keyframe_alignment(good_hls)
    assert len(report.segment_starts) == 2 and report.peak_bitrates == {}


def test_good_ladder_passes_over_http(http_base: str) -> None:
    report = check_hls_url(http_base + "master.m3u8")
    assert report.master.uri == http_base + "master.m3u8"
    assert len(report.media) == 3


def test_http_404_is_reported(http_base: str) -> None:
    report = inspect_hls(http_base + "nothing/master.m3u8")
    assert "cannot be read" in report.problems[0]


# --- broken trees --------------------------------------------------------------------------------

Mutation = Callable[[Path], None]

MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "missing ENDLIST": (
        lambda root: edit(root / "high/index.m3u8", "#EXT-X-ENDLIST", ""),
        "high/index.m3u8: EXT-X-ENDLIST is missing",
    ),
    "TARGETDURATION too small": (
        lambda root: edit(
            root / "low/index.m3u8", "#EXT-X-TARGETDURATION:2", "#EXT-X-TARGETDURATION:1"
        ),
        "EXT-X-TARGETDURATION 1 is less than EXTINF 2.000",
    ),
    "not VOD": (
        lambda root: edit(
            root / "low/index.m3u8", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-PLAYLIST-TYPE:EVENT"
        ),
        "EXT-X-PLAYLIST-TYPE must be VOD",
    ),
    "version too low for EXT-X-MAP": (
        lambda root: edit(root / "audio/index.m3u8", "#EXT-X-VERSION:7", "#EXT-X-VERSION:5"),
        "EXT-X-VERSION 5 is too low",
    ),
    "not #EXTM3U first": (
        lambda root: edit(root / "high/index.m3u8", "#EXTM3U\n", "# generated\n#EXTM3U\n"),
        "first line must be #EXTM3U",
    ),
    "segment missing": (
        lambda root: (root / "low/seg_001.m4s").unlink(),
        "low/seg_001.m4s does not exist",
    ),
    "init segment missing": (
        lambda root: next((root / "audio").glob("init*.mp4")).unlink(),
        "audio/init",
    ),
    "missing CODECS": (
        lambda root: edit(root / "master.m3u8", 'CODECS="avc1.42c015,mp4a.40.2",', ""),
        "variant high/index.m3u8 has no CODECS",
    ),
    "missing RESOLUTION": (
        lambda root: edit(root / "master.m3u8", "RESOLUTION=160x90,", ""),
        "variant low/index.m3u8 is video but has no valid RESOLUTION",
    ),
    "missing FRAME-RATE": (
        lambda root: edit(root / "master.m3u8", ",FRAME-RATE=25.000", ""),
        "is video but has no valid FRAME-RATE",
    ),
    "AVERAGE-BANDWIDTH above BANDWIDTH": (
        lambda root: edit(root / "master.m3u8", "AVERAGE-BANDWIDTH=", "AVERAGE-BANDWIDTH=9"),
        "AVERAGE-BANDWIDTH",
    ),
    "BANDWIDTH understated": (
        lambda root: edit(root / "master.m3u8", "INF:BANDWIDTH=", "INF:BANDWIDTH=1000,X-WAS="),
        "exceeds BANDWIDTH 1000 by",
    ),
    "no INDEPENDENT-SEGMENTS": (
        lambda root: edit(root / "master.m3u8", "#EXT-X-INDEPENDENT-SEGMENTS\n", ""),
        "EXT-X-INDEPENDENT-SEGMENTS is missing",
    ),
    "audio group missing": (
        lambda root: edit(root / "master.m3u8", 'GROUP-ID="aud"', 'GROUP-ID="other"'),
        "AUDIO group 'aud' has no EXT-X-MEDIA",
    ),
    "audio codec undeclared": (
        lambda root: edit(root / "master.m3u8", "avc1.42c015,mp4a.40.2", "avc1.42c015"),
        "uses an AUDIO group but CODECS names no audio codec",
    ),
    "audio rendition without LANGUAGE": (
        lambda root: edit(root / "master.m3u8", 'LANGUAGE="fr",', ""),
        "EXT-X-MEDIA Stéréo has no LANGUAGE",
    ),
    "LANGUAGE not a BCP 47 tag": (
        lambda root: edit(root / "master.m3u8", 'LANGUAGE="fr"', 'LANGUAGE="Français"'),
        "LANGUAGE 'Français' is not a BCP 47 tag",
    ),
    "video variant without an I-frame playlist": (
        lambda root: edit(root / "master.m3u8", "#EXT-X-I-FRAME-STREAM-INF", "#X-DROPPED"),
        "variant high/index.m3u8 has no I-frame playlist of its resolution and video codec",
    ),
    "I-frame playlist not marked I-frames only": (
        lambda root: edit(root / "low/iframe.m3u8", "#EXT-X-I-FRAMES-ONLY\n", ""),
        "low/iframe.m3u8: EXT-X-I-FRAMES-ONLY is missing",
    ),
    "I-frame stream naming an audio codec": (
        lambda root: edit(
            root / "master.m3u8", 'CODECS="avc1.42c015",RES', 'CODECS="avc1.42c015,mp4a.40.2",RES'
        ),
        "I-frame stream high/iframe.m3u8: CODECS names an audio codec",
    ),
    "I-frame stream without RESOLUTION": (
        lambda root: edit(root / "master.m3u8", "RESOLUTION=160x90,URI=", "URI="),
        "I-frame stream low/iframe.m3u8 has no valid RESOLUTION",
    ),
    "I-frame entry without a byte range": (
        lambda root: edit(root / "high/iframe.m3u8", "#EXT-X-BYTERANGE:", "#X-DROPPED:"),
        "high/iframe.m3u8: entry 0 has no EXT-X-BYTERANGE",
    ),
    "I-frame byte range past the end of its file": (
        lambda root: edit(root / "high/iframe.m3u8", "@0\n", "@900000\n"),
        "high/iframe.m3u8: entry 0: byte range",
    ),
    "I-frame BANDWIDTH understated": (
        lambda root: edit(
            root / "master.m3u8",
            "I-FRAME-STREAM-INF:BANDWIDTH=",
            "I-FRAME-STREAM-INF:BANDWIDTH=1,X-WAS=",
        ),
        "over BANDWIDTH 1",
    ),
    "media playlist missing": (
        lambda root: (root / "low/index.m3u8").unlink(),
        "low/index.m3u8: referenced by master.m3u8 but cannot be read",
    ),
    "EXTINF not matching the media": (
        lambda root: edit(root / "high/index.m3u8", "#EXTINF:2.000000,", "#EXTINF:1.400000,"),
        "but the EXTINF durations before it add up to 1.400s",
    ),
}


@pytest.mark.parametrize("case", list(MUTATIONS))
def test_broken_tree_is_caught(hls_copy: Path, case: str) -> None:
    mutate, expected = MUTATIONS[case]
    mutate(hls_copy)
    # Frame-level probing only for the case that needs it: the rest is text and sizes.
    keyframes = case == "EXTINF not matching the media"
    assert expected in problems_of(hls_copy, keyframes=keyframes)


def test_total_duration_is_compared_with_the_expected_one(good_hls: Path) -> None:
    assert "expected 9.000s" in problems_of(good_hls, expected_duration=9, keyframes=False)


def test_rungs_cut_at_different_times_are_not_aligned(tmp_path: Path) -> None:
    root = hls_ladder(tmp_path / "misaligned", gops=(2, 3))
    found = problems_of(root)
    assert "keyframes are not aligned" in found
    assert "does not start with a key frame" not in found  # each rung is fine on its own


def fragmented_without_keyframes(root: Path) -> Path:
    """One rung whose 1 s fragments are cut between keyframes (GOP of 10 s), split by hand into
    an init segment and media segments: what a segmenter ignoring keyframes would publish."""
    root.mkdir(parents=True)
    whole = root / "whole.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={FPS}:duration=4",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "250",
        "-movflags", "+empty_moov+default_base_moof+skip_trailer", "-frag_duration", "1000000",
        str(whole),
    )  # fmt: skip
    data = whole.read_bytes()
    boxes, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        boxes.append((data[offset + 4 : offset + 8], data[offset : offset + size]))
        offset += size
    rung = root / "v"
    rung.mkdir()
    (rung / "init.mp4").write_bytes(
        b"".join(box for kind, box in boxes if kind in (b"ftyp", b"moov"))
    )
    fragments = [box for kind, box in boxes if kind in (b"moof", b"mdat")]
    playlist = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:1",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    playlist.append('#EXT-X-MAP:URI="init.mp4"')
    for index in range(0, len(fragments), 2):
        name = f"seg_{index // 2}.m4s"
        (rung / name).write_bytes(fragments[index] + fragments[index + 1])
        playlist += ["#EXTINF:1.000,", name]
    (rung / "index.m3u8").write_text("\n".join([*playlist, "#EXT-X-ENDLIST", ""]))
    whole.unlink()
    write_master(root, {"v": "320x180"}, audio=None, key_segments=1)
    return root


def test_segment_not_starting_on_a_keyframe_is_caught(tmp_path: Path) -> None:
    root = fragmented_without_keyframes(tmp_path / "gop")
    report = inspect_hls(root)
    starts = report.segment_starts[report.master.variants[0].uri]
    assert [s.keyframe for s in starts] == [True, False, False, False]
    assert report.problems == [
        f"master.m3u8: v/seg_{i}.m4s: segment {i} of v/index.m3u8 does not start with a key "
        f"frame (first video frame at {starts[i].start:.3f}s)"
        for i in (1, 2, 3)
    ]
    with pytest.raises(AssertionError, match=r"segment 1 of v/index.m3u8 does not start"):
        check_keyframe_alignment(root)
    check_hls_tree(root)  # the playlists themselves are fine


def test_an_i_frame_entry_that_is_no_key_frame_is_caught(tmp_path: Path) -> None:
    root = fragmented_without_keyframes(tmp_path / "gop")
    write_master(root, {"v": "320x180"}, audio=None)  # every segment claimed as an I-frame
    problems = inspect_hls(root).problems
    assert [p for p in problems if "iframe" in p] == [
        f"v/iframe.m3u8: entry {i}: does not decode to a key frame" for i in (1, 2, 3)
    ]


# --- parsing -------------------------------------------------------------------------------------


def test_attribute_lists() -> None:
    assert parse_attributes(
        'BANDWIDTH=1280000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720'
    ) == {
        "BANDWIDTH": "1280000",
        "CODECS": "avc1.4d401f,mp4a.40.2",
        "RESOLUTION": "1280x720",
    }
    assert parse_attributes("") == {}
    for bad in ('CODECS="avc1', "BANDWIDTH=1,BANDWIDTH=2", "bandwidth=1", "A=1,,B=2"):
        with pytest.raises(ValueError):
            parse_attributes(bad)
