"""Segmented transcoding: chunks encoded apart, as separate workers would, then assembled,
compared with one pass of the same source and settings, with real ffmpeg."""

from __future__ import annotations

import itertools
import json
import logging
import math
import shutil
import statistics
import subprocess
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from cite_live.demo.media import build_once, ffmpeg, lavfi, tones
from tests.hls_check import check_hls
from transcoder import (
    MediaInfo,
    TranscodeFailed,
    Transcoder,
    TranscoderSettings,
    boxes,
    commands,
    segmented,
)
from transcoder.chunks import Chunk, chunked, plan_chunks, segment_time, span_of
from transcoder.live import SegmentFacts
from transcoder.playlist import parse_media_playlist
from transcoder.segmented import ChunkOutput, SharedOutput

# Two rungs keep the fixture cheap; three chunks of 12 s and a last one holding a short tail.
STEPS = TranscoderSettings().video_steps
SETTINGS = TranscoderSettings(chunk_seconds=12, video_steps=(STEPS[2], STEPS[4]))
SECONDS = 36.5  # the last chunk ends with a 0.5 s tail, joined to the segment before it
RUNGS = ["v480", "v240"]


@dataclass
class Segmented:
    source: Path
    info: MediaInfo
    single: Path
    parts: list[Path]
    shared_dir: Path
    merged: Path
    plan: list[Chunk]
    chunks: list[ChunkOutput]
    shared: SharedOutput
    reports: list[list[dict[str, list[SegmentFacts]]]]
    missing_inits: list[str]
    result: Any


def _source(directory: Path, seconds: float, rate: str, size: str, sound: bool) -> Path:
    out = directory / "source.mp4"
    # A moving pattern with grain: any frame out of place at a join shows in the PSNR.
    picture = f"testsrc2=size={size}:rate={rate}:duration={seconds},noise=alls=3:allf=t"
    audio = [*tones(seconds), "-c:a", "aac", "-b:a", "96k"] if sound else []
    ffmpeg(
        *lavfi(picture),
        *audio,
        *[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "2",
            "-g",
            "45",
            "-crf",
            "26",
            "-pix_fmt",
            "yuv420p",
        ],
        "-movflags",
        "+faststart",
        str(out),
    )
    return out


def _merge(into: Path, parts: list[Path], shared: Path) -> None:
    """Gather what the workers wrote into one folder, as the store would hold it."""
    for rung in RUNGS:
        (into / rung).mkdir(parents=True)
        shutil.copy(parts[0] / rung / "init.mp4", into / rung / "init.mp4")
        for part in parts:
            for segment in (part / rung).glob("seg_*.m4s"):
                shutil.copy(segment, into / rung / segment.name)
    shutil.copytree(shared, into, dirs_exist_ok=True)


def _encode(
    transcoder: Transcoder, source: Path, info: MediaInfo, base: Path
) -> tuple[list[Path], list[ChunkOutput], list[list[dict[str, list[SegmentFacts]]]], list[str]]:
    parts: list[Path] = []
    chunks: list[ChunkOutput] = []
    reports: list[list[dict[str, list[SegmentFacts]]]] = []
    missing: list[str] = []
    for chunk in plan_chunks(info, transcoder.settings):
        folder = base / f"chunk{chunk.index}"
        calls: list[dict[str, list[SegmentFacts]]] = []

        def seen(
            new: dict[str, list[SegmentFacts]],
            folder: Path = folder,
            calls: list[dict[str, list[SegmentFacts]]] = calls,
        ) -> None:
            missing.extend(str(r) for r in new if not (folder / r / "init.mp4").is_file())
            calls.append(new)

        # Each chunk through JSON, as a worker hands it to the database.
        plain = json.loads(json.dumps(chunk.to_json()))
        output = transcoder.encode_chunk(source, info, Chunk.from_json(plain), folder, seen)
        parts.append(folder)
        chunks.append(ChunkOutput.from_json(json.loads(json.dumps(output.to_json()))))
        reports.append(calls)
    return parts, chunks, reports, missing


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Segmented:
    base = tmp_path_factory.mktemp("segmented")
    source = build_once(
        "segmented-source",
        base,
        lambda d: _source(d, SECONDS, "30", "854x480", sound=True),
    )
    transcoder = Transcoder(SETTINGS, logger=logging.getLogger("test.segmented"))
    info = transcoder.probe(source)
    transcoder.transcode(source, base / "single", info, language="fr")
    parts, chunks, reports, missing = _encode(transcoder, source, info, base)
    shared = transcoder.encode_shared(source, info, base / "shared")
    shared = SharedOutput.from_json(json.loads(json.dumps(shared.to_json())))
    merged = base / "merged"
    _merge(merged, parts, base / "shared")
    result = transcoder.assemble(info, chunks, shared, merged, language="fr")
    plan = plan_chunks(info, SETTINGS)
    return Segmented(
        source,
        info,
        base / "single",
        parts,
        base / "shared",
        merged,
        plan,
        chunks,
        shared,
        reports,
        missing,
        result,
    )


def _playlist(folder: Path) -> list[tuple[str, float]]:
    media = parse_media_playlist((folder / "index.m3u8").read_text("utf-8"))
    return [(segment.uri, segment.duration) for segment in media.segments]


def _frames(path: Path, *args: str) -> list[dict[str, Any]]:
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-of", "json", *args]
    output = subprocess.run([*command, str(path)], capture_output=True, text=True, check=True)
    found: list[dict[str, Any]] = json.loads(output.stdout).get("frames") or json.loads(
        output.stdout
    ).get("packets")
    return found


def _whole(folder: Path, target: Path) -> Path:
    """init + every segment of the rendition in ``folder``, as one fragmented MP4."""
    with target.open("wb") as out:
        out.write((folder / "init.mp4").read_bytes())
        for uri, _ in _playlist(folder):
            out.write((folder / uri).read_bytes())
    return target


# --- planning -----------------------------------------------------------------------------------


def _info(duration: float, rate: Fraction | None = Fraction(30)) -> MediaInfo:
    return MediaInfo(
        kind="video",
        format_name="mov,mp4",
        duration=duration,
        size=1,
        width=1920,
        height=1080,
        frame_rate=rate,
        video_index=0,
    )


@pytest.mark.parametrize(
    "rate", [Fraction(25), Fraction(30), Fraction(30000, 1001), Fraction(60), Fraction(24000, 1001)]
)
def test_chunks_start_on_the_first_frame_of_each_chunk_and_cover_every_frame(
    rate: Fraction,
) -> None:
    settings = TranscoderSettings()
    plan = plan_chunks(_info(600.0, rate), settings)
    assert len(plan) == 10
    for number, chunk in enumerate(plan):
        assert chunk.index == number
        assert chunk.first_frame == math.ceil(number * 60 * rate)
        assert chunk.start == Fraction(chunk.first_frame) / rate
        assert number * 60 <= chunk.start < number * 60 + 1 / rate
        assert chunk.first_segment == number * 10 + 1
    for chunk, following in itertools.pairwise(plan):
        assert chunk.frames == following.first_frame - chunk.first_frame
    assert plan[-1].frames is None
    assert sum(chunk.frames or 0 for chunk in plan) == plan[-1].first_frame


def test_a_video_just_over_a_chunk_boundary_keeps_its_tail_in_the_last_chunk() -> None:
    settings = TranscoderSettings()
    assert [c.start for c in plan_chunks(_info(120.02), settings)] == [0, 60]
    assert [c.start for c in plan_chunks(_info(125.99), settings)] == [0, 60]
    assert [c.start for c in plan_chunks(_info(126.0), settings)] == [0, 60, 120]


@pytest.mark.parametrize("duration", [0.0, -5.0, math.nan, math.inf])
def test_no_plan_for_a_duration_that_is_not_a_positive_number(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        plan_chunks(_info(duration), TranscoderSettings())
    assert not chunked(_info(duration), TranscoderSettings())


def test_only_videos_longer_than_two_chunks_are_chunked() -> None:
    settings = TranscoderSettings()
    assert not chunked(_info(120.0), settings)
    assert chunked(_info(120.5), settings)
    assert not chunked(replace(_info(3600.0), kind="audio"), settings)
    # Ten-minute chunks of 6 s segments at 30000/1001: no hls_time cuts them all where one
    # pass cuts, so such a video is transcoded in one pass.
    long_chunks = TranscoderSettings(chunk_seconds=600)
    assert not chunked(_info(3600.0, Fraction(30000, 1001)), long_chunks)
    assert chunked(_info(3600.0, Fraction(30)), long_chunks)


def test_chunk_json_keeps_the_start_exact() -> None:
    chunk = plan_chunks(_info(600.0, Fraction(30000, 1001)), TranscoderSettings())[1]
    again = Chunk.from_json(json.loads(json.dumps(chunk.to_json())))
    assert again == chunk
    assert again.start == Fraction(1799 * 1001, 30000)


@pytest.mark.parametrize(
    "overrides",
    [{"chunk_seconds": 45}, {"chunk_seconds": 0}, {"segment_seconds": 5}],
)
def test_settings_refuse_chunks_that_cannot_join_on_segments(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="seconds"):
        TranscoderSettings(**overrides)


def _cuts(
    first: int,
    frames: int,
    rate: Fraction,
    settings: TranscoderSettings,
    hls: Fraction,
    start_key: int,
) -> list[int]:
    """Frames where the HLS muxer starts a segment, as it decides (hlsenc.c): at a key frame
    at least ``n * hls_time`` after the first packet, ``n`` the segments cut so far."""
    key = settings.keyframe_seconds
    keys, forced = [], start_key
    for frame in range(first, first + frames):
        if Fraction(frame) / rate >= forced * key:
            keys.append(frame)
            forced += 1
    cuts, number = [first], 1
    for frame in keys[1:]:
        if Fraction(frame - first) / rate >= number * hls:
            cuts.append(frame)
            number += 1
    return cuts


@pytest.mark.parametrize("rate", [Fraction(30000, 1001), Fraction(24000, 1001), Fraction(25)])
def test_chunks_are_cut_into_segments_where_one_pass_cuts(rate: Fraction) -> None:
    settings = TranscoderSettings()
    plan = plan_chunks(_info(1200.0, rate), settings)
    total = math.ceil(1200 * rate)
    one_pass = _cuts(0, total, rate, settings, Fraction(settings.segment_seconds), 0)
    chunked_cuts: list[int] = []
    for chunk in plan:
        frames = chunk.frames if chunk.frames is not None else total - chunk.first_frame
        hls = segment_time(chunk, rate, settings)
        key = (chunk.first_segment - 1) * settings.segment_seconds // settings.keyframe_seconds
        chunked_cuts += _cuts(chunk.first_frame, frames, rate, settings, hls, key)
    assert chunked_cuts == one_pass


# --- command lines ------------------------------------------------------------------------------


def test_a_chunk_command_seeks_offsets_and_numbers_its_segments_like_one_pass() -> None:
    rate = Fraction(30000, 1001)
    chunk = plan_chunks(_info(600.0, rate), SETTINGS)[3]
    # 12 s chunks: the fourth starts on frame ceil(36 * 29.97) = 1079, at 36.0026 s.
    assert (chunk.first_frame, chunk.frames) == (1079, 360)
    rungs = segmented.ladder_of(_info(600.0, rate), SETTINGS)
    span = span_of(chunk, rate, SETTINGS)
    argv = commands.chunk_argv(
        SETTINGS, Path("/in/film.mp4"), Path("/out"), video_index=0, rungs=rungs, span=span
    )
    text = " ".join(argv)
    assert argv[argv.index("-ss") + 1] == commands._seconds(chunk.start - 1)
    assert argv.index("-ss") < argv.index("-i")
    assert argv[argv.index("-i") + 1] == "file:/in/film.mp4"
    assert argv.index("-format_whitelist") < argv.index("-i")
    assert text.count("-output_ts_offset 36.002633 ") == len(rungs)
    assert text.count("-start_number 7 ") == len(rungs)
    assert text.count("-frames:v 360 ") == len(rungs)
    assert text.count("movflags=+frag_discont") == len(rungs)
    assert text.count("-avoid_negative_ts disabled") == len(rungs)
    assert "expr:gte(t+36.002633,(18+n_forced)*2-0.000010)" in text
    assert "fps=fps=30000/1001:start_time=0" in text
    assert "-protocol_whitelist file" in text and "-an" in argv


def test_the_last_chunk_runs_to_the_end_and_the_first_does_not_seek() -> None:
    info = _info(600.0)
    rungs = segmented.ladder_of(info, SETTINGS)
    plan = plan_chunks(info, SETTINGS)
    first = commands.chunk_argv(
        SETTINGS, Path("/in/a.mp4"), Path("/o"), video_index=0, rungs=rungs,
        span=span_of(plan[0], Fraction(30), SETTINGS),
    )  # fmt: skip
    last = commands.chunk_argv(
        SETTINGS, Path("/in/a.mp4"), Path("/o"), video_index=0, rungs=rungs,
        span=span_of(plan[-1], Fraction(30), SETTINGS),
    )  # fmt: skip
    assert "-ss" not in first and "-frames:v" in first
    assert "-frames:v" not in last


def test_shared_command_decodes_key_frames_only() -> None:
    grab = commands.FrameGrab(Path("/scratch/p.rgb"), 160, 90, Fraction(1))
    argv = commands.shared_argv(
        SETTINGS, Path("/in/a.mp4"), Path("/o"), video_index=0, audio_index=1, grabs=[grab, grab]
    )
    assert argv[argv.index("-skip_frame") + 1] == "nokey"
    assert argv.index("-skip_frame") < argv.index("-i")
    assert argv[argv.index("-i") + 1] == "file:/in/a.mp4"
    assert argv.index("-format_whitelist") < argv.index("-i")
    assert argv.index("-protocol_whitelist") < argv.index("-i")
    assert "ebur128" in " ".join(argv) and "libx264" not in argv


# --- against one pass ---------------------------------------------------------------------------


def test_the_plan_has_three_chunks_the_last_with_the_tail(run: Segmented) -> None:
    assert [chunk.start for chunk in run.plan] == [0, 12, 24]
    assert [chunk.first_segment for chunk in run.plan] == [1, 3, 5]
    assert run.chunks[-1].rungs["v480"].segments[-1].uri == "seg_00006-end.m4s"


def test_segments_and_durations_are_those_of_one_pass(run: Segmented) -> None:
    for rung in RUNGS:
        single = [(uri, round(duration, 3)) for uri, duration in _playlist(run.single / rung)]
        merged = [(uri, round(duration, 3)) for uri, duration in _playlist(run.merged / rung)]
        assert merged == single


def test_each_segment_opens_on_a_key_frame_at_one_pass_decode_time_in_every_rung(
    run: Segmented,
) -> None:
    times: dict[str, list[int]] = {}
    for rung in RUNGS:
        track = boxes.track(run.single / rung / "init.mp4")
        assert track is not None
        times[rung] = []
        for uri, _ in _playlist(run.single / rung):
            single = boxes.key_frames(run.single / rung / uri, track)
            merged = boxes.key_frames(run.merged / rung / uri, track)
            assert [k.decode_time for k in merged] == [k.decode_time for k in single]
            # The first fragment of the segment opens on the key frame.
            assert merged and merged[0].offset == _first_moof(run.merged / rung / uri)
            times[rung].append(merged[0].decode_time)
    assert times["v480"] == times["v240"]


def _first_moof(path: Path) -> int:
    data = path.read_bytes()
    return next(payload - 8 for kind, payload, _ in boxes.iter_boxes(data) if kind == b"moof")


def test_segments_open_on_an_idr_frame(run: Segmented, tmp_path: Path) -> None:
    for rung in RUNGS:
        for uri, _ in _playlist(run.merged / rung):
            joined = tmp_path / f"{rung}-{uri}.mp4"
            joined.write_bytes(
                (run.merged / rung / "init.mp4").read_bytes()
                + (run.merged / rung / uri).read_bytes()
            )
            frames = _frames(joined, "-show_entries", "frame=pict_type,key_frame", "-show_frames")
            assert frames[0]["pict_type"] == "I" and frames[0]["key_frame"] == 1, (rung, uri)


def test_every_chunk_writes_the_same_init_segment(run: Segmented) -> None:
    for rung in RUNGS:
        inits = {(part / rung / "init.mp4").read_bytes() for part in run.parts}
        assert len(inits) == 1


def test_decoded_chunks_give_every_frame_of_one_pass_once(run: Segmented, tmp_path: Path) -> None:
    for rung in RUNGS:
        single = _frames(
            _whole(run.single / rung, tmp_path / f"{rung}-single.mp4"),
            "-show_entries", "frame=pts", "-show_frames",
        )  # fmt: skip
        merged = _frames(
            _whole(run.merged / rung, tmp_path / f"{rung}-merged.mp4"),
            "-show_entries", "frame=pts", "-show_frames",
        )  # fmt: skip
        assert len(merged) == len(single) == round(SECONDS * 30)
        pts = [int(frame["pts"]) for frame in merged]
        assert len(set(pts)) == len(pts)
        assert {b - a for a, b in itertools.pairwise(pts)} == {512}  # 15360 / 30


def _psnr(decoded: Path, source: Path, stats: Path, drop: int | None = None) -> list[float]:
    """Per-frame PSNR of ``decoded`` against the source scaled to its size; ``drop`` leaves
    that frame out of ``decoded``, as a chunk starting one frame late would."""
    picture = "[0:v]"
    if drop is not None:
        picture = f"[0:v]select='not(eq(n\\,{drop}))',setpts=N/30/TB[cut];[cut]"
    graph = f"[1:v]scale=854:480,setsar=1[ref];{picture}[ref]psnr=stats_file={stats.name}"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(decoded), "-i", str(source), "-lavfi", graph,
         "-f", "null", "-"],
        cwd=stats.parent, check=True, capture_output=True,
    )  # fmt: skip
    values = []
    for line in stats.read_text().splitlines():
        fields = dict(part.split(":", 1) for part in line.split())
        values.append(min(float(fields["psnr_avg"]), 99.0))
    return values


SEAM = range(-3, 3)


def seam_free(chunked: list[float], single: list[float], joins: list[int]) -> bool:
    """Whether the frames around each join are as close to the source as frames of one pass
    are anywhere: above its 5th percentile, less a decibel (an encoder's frames vary that
    much; a frame repeated or shifted at a join drops far below)."""
    floor = statistics.quantiles(single, n=20)[0] - 1.0
    return all(chunked[join + step] >= floor for join in joins for step in SEAM)


def test_no_seam_at_any_join(run: Segmented, tmp_path: Path) -> None:
    joins = [chunk.first_frame for chunk in run.plan[1:]]
    whole = _whole(run.merged / "v480", tmp_path / "merged.mp4")
    one = _whole(run.single / "v480", tmp_path / "single.mp4")
    chunked = _psnr(whole, run.source, tmp_path / "chunked.log")
    single = _psnr(one, run.source, tmp_path / "single.log")
    assert len(chunked) == len(single) == round(SECONDS * 30)
    assert seam_free(chunked, single, joins)
    # What the check is for: a chunk one frame late shows at once.
    late = _psnr(whole, run.source, tmp_path / "late.log", drop=joins[1])
    assert not seam_free(late, single, joins)


def test_sound_lasts_as_long_as_the_picture(run: Segmented) -> None:
    assert run.shared.audio is not None
    sound = sum(segment.duration for segment in run.shared.audio.segments)
    picture = sum(duration for _, duration in _playlist(run.merged / "v480"))
    assert abs(sound - picture) <= 1 / 30
    single_sound = sum(duration for _, duration in _playlist(run.single / "audio"))
    assert sound == pytest.approx(single_sound, abs=0.001)


def test_shared_work_measures_loudness_and_makes_poster_and_storyboard(run: Segmented) -> None:
    assert run.shared.loudness_lufs is not None and -40 < run.shared.loudness_lufs < 0
    assert run.result.loudness_lufs == run.shared.loudness_lufs
    for name in ("poster.jpg", "storyboard.jpg", "storyboard.vtt"):
        assert (run.merged / name).is_file()
    assert run.result.poster == "poster.jpg" and run.result.storyboard_vtt == "storyboard.vtt"
    cues = (run.merged / "storyboard.vtt").read_text().count("-->")
    assert cues == math.ceil(SECONDS)


def test_the_assembled_video_passes_the_independent_hls_checker(run: Segmented) -> None:
    check_hls(run.merged, expected_duration=run.info.duration)


def test_the_assembled_master_plays_to_the_end(run: Segmented) -> None:
    completed = subprocess.run(
        ["ffmpeg", "-v", "error", "-allowed_extensions", "ALL", "-i",
         str(run.merged / "master.m3u8"), "-map", "0:v:0", "-map", "0:a:0", "-f", "null", "-",
         "-progress", "pipe:1", "-nostats"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert completed.stderr == ""
    times = [line for line in completed.stdout.splitlines() if line.startswith("out_time_us=")]
    assert int(times[-1].split("=")[1]) / 1e6 == pytest.approx(SECONDS, abs=0.1)


def test_playlists_and_master_match_one_pass(run: Segmented) -> None:
    assert sorted(run.result.files) == sorted(
        ["master.m3u8", "audio/index.m3u8"]
        + [f"{rung}/{name}" for rung in RUNGS for name in ("index.m3u8", "iframe.m3u8")]
    )
    for rung in RUNGS:
        single = (run.single / rung / "iframe.m3u8").read_text().splitlines()
        merged = (run.merged / rung / "iframe.m3u8").read_text().splitlines()
        timing = [line for line in single if line.startswith(("#EXTINF", "seg_"))]
        assert [line for line in merged if line.startswith(("#EXTINF", "seg_"))] == timing
    single_master = (run.single / "master.m3u8").read_text()
    merged_master = (run.merged / "master.m3u8").read_text()

    def shape(text: str) -> list[str]:
        return [
            ",".join(p for p in line.split(",") if "BANDWIDTH" not in p)
            for line in text.splitlines()
        ]

    assert shape(merged_master) == shape(single_master)
    assert 'LANGUAGE="fr"' in merged_master
    assert run.result.duration == pytest.approx(SECONDS, abs=0.05)


def test_new_segments_are_reported_once_each_after_the_init_segments(run: Segmented) -> None:
    assert run.missing_inits == []
    for calls, output in zip(run.reports, run.chunks, strict=True):
        assert len(calls) >= 2  # as they come, not all at the end
        for rung in RUNGS:
            reported = [s.uri for call in calls for s in call.get(rung, [])]
            assert len(reported) == len(set(reported))
            assert {s.uri for s in output.rungs[rung].segments} <= set(reported)


def test_assemble_refuses_chunks_missing_out_of_order_or_not_following(
    run: Segmented, tmp_path: Path
) -> None:
    transcoder = Transcoder(SETTINGS)
    first, second, third = run.chunks
    cases = [
        [first, third],
        [first, third, second],
        [first, second],
    ]
    gap = ChunkOutput.from_json(second.to_json())
    gap.rungs["v240"].segments.pop(0)
    cases.append([first, gap, third])
    other = ChunkOutput.from_json(second.to_json())
    other.rungs["v480"].init_sha256 = "0" * 64
    cases.append([first, other, third])
    narrower = ChunkOutput.from_json(second.to_json())
    del narrower.rungs["v240"]
    cases.append([first, narrower, third])
    for chunks in cases:
        with pytest.raises(TranscodeFailed):
            transcoder.assemble(run.info, chunks, run.shared, tmp_path)


def test_outputs_survive_json(run: Segmented) -> None:
    for output in run.chunks:
        assert ChunkOutput.from_json(json.loads(json.dumps(output.to_json()))) == output
    assert SharedOutput.from_json(json.loads(json.dumps(run.shared.to_json()))) == run.shared


# --- 30000/1001 ---------------------------------------------------------------------------------


def test_ntsc_rate_chunks_are_frame_exact(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = tmp_path_factory.mktemp("ntsc")
    source = _source(base, 40.0, "30000/1001", "426x240", sound=False)
    # 2 s segments: six cuts a chunk, where a minute of 30000/1001 is no whole number of frames.
    settings = TranscoderSettings(chunk_seconds=12, segment_seconds=2, video_steps=(STEPS[4],))
    transcoder = Transcoder(settings)
    info = transcoder.probe(source)
    transcoder.transcode(source, base / "single", info)
    parts, chunks, _, _ = _encode(transcoder, source, info, base)
    assert len(chunks) == 4
    merged = base / "merged"
    (merged / "v240").mkdir(parents=True)
    shutil.copy(parts[0] / "v240" / "init.mp4", merged / "v240")
    for part in parts:
        for segment in (part / "v240").glob("seg_*.m4s"):
            shutil.copy(segment, merged / "v240")
    shared = transcoder.encode_shared(source, info, base / "shared")
    assert shared.audio is None
    transcoder.assemble(info, chunks, shared, merged)
    single = [(uri, round(d, 3)) for uri, d in _playlist(base / "single" / "v240")]
    assert [(uri, round(d, 3)) for uri, d in _playlist(merged / "v240")] == single
    track = boxes.track(base / "single" / "v240" / "init.mp4")
    assert track is not None and track.timescale == 30000
    for uri, _ in _playlist(base / "single" / "v240"):
        ours = boxes.key_frames(merged / "v240" / uri, track)
        assert [k.decode_time for k in ours] == [
            k.decode_time for k in boxes.key_frames(base / "single" / "v240" / uri, track)
        ]
    frames = _frames(
        _whole(merged / "v240", base / "merged.mp4"), "-show_entries", "frame=pts", "-show_frames"
    )
    pts = [int(frame["pts"]) for frame in frames]
    one_pass = _frames(
        _whole(base / "single" / "v240", base / "single.mp4"),
        "-show_entries", "frame=pts", "-show_frames",
    )  # fmt: skip
    assert len(pts) == len(one_pass) == math.ceil(40 * Fraction(30000, 1001))
    assert {b - a for a, b in itertools.pairwise(pts)} == {1001}
