"""ffprobe/ffmpeg command lines, checked as data without running anything."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from transcoder.commands import (
    DEMUXERS,
    FrameGrab,
    aac_end,
    audio_argv,
    download_argv,
    probe_argv,
    video_argv,
)
from transcoder.ladder import AudioRung, video_ladder
from transcoder.settings import TranscoderSettings

SETTINGS = TranscoderSettings()
SOURCE = Path("/media/in/concert.mp4")
OUT = Path("/media/out")
FORBIDDEN_DEMUXERS = {"hls", "applehttp", "concat", "image2", "lavfi", "tee", "dash", "sdp"}


def ladder_argv(**overrides: object) -> list[str]:
    rungs = video_ladder(1920, 1080, Fraction(30), SETTINGS.video_steps)
    grabs = [
        FrameGrab(Path("/scratch/poster.rgb"), 1280, 720, Fraction(10, 14)),
        FrameGrab(Path("/scratch/board.rgb"), 160, 90, Fraction(1)),
    ]
    arguments: dict[str, object] = {
        "video_index": 0,
        "audio_index": 1,
        "rungs": rungs,
        "grabs": grabs,
    }
    arguments.update(overrides)
    return video_argv(SETTINGS, SOURCE, OUT, **arguments)  # type: ignore[arg-type]


def one_audio_argv(**overrides: object) -> list[str]:
    arguments: dict[str, object] = {"audio_index": 0, "rung": AudioRung("a128", 128_000)}
    arguments.update(overrides)
    return audio_argv(SETTINGS, SOURCE, OUT, **arguments)  # type: ignore[arg-type]


DOWNLOAD = Path("/media/out/download.m4a")


def one_download_argv(**overrides: object) -> list[str]:
    arguments: dict[str, object] = {"title": "Nuit Électro", "artists": ["Élodie Fauré", "Zoé"]}
    arguments.update(overrides)
    return download_argv(SETTINGS, SOURCE, DOWNLOAD, **arguments)  # type: ignore[arg-type]


def every_argv() -> list[list[str]]:
    return [
        probe_argv(SETTINGS, SOURCE),
        ladder_argv(),
        ladder_argv(audio_index=None, grabs=[], deinterlace=True),
        one_audio_argv(),
        one_audio_argv(loudness=True, pcm=Path("/scratch/wave.pcm")),
        one_download_argv(),
    ]


def value_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def values_after(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, part in enumerate(argv) if part == flag]


def outputs(argv: list[str]) -> list[int]:
    """Indexes of output URLs: every file: argument that is not the input."""
    return [
        i
        for i, part in enumerate(argv)
        if part.startswith("file:")
        and argv[i - 1] != "-i"
        and argv[i - 1] != "-hls_segment_filename"
    ]


@pytest.mark.parametrize("argv", every_argv())
def test_every_command_restricts_protocols_and_demuxers_before_its_input(argv: list[str]) -> None:
    inputs = [i for i, part in enumerate(argv) if part == "-i"]
    if argv[0] == SETTINGS.ffprobe:
        inputs = [len(argv) - 1]
    assert len(inputs) == 1
    before_input = argv[: inputs[0]]
    assert value_after(before_input, "-protocol_whitelist") == "file"
    demuxers = set(value_after(before_input, "-format_whitelist").split(","))
    assert demuxers == set(DEMUXERS)
    assert {"mov", "matroska", "mp3", "flac", "ogg", "wav", "aiff", "mpegts"} <= demuxers
    assert not demuxers & FORBIDDEN_DEMUXERS
    assert not any(name.endswith("_pipe") for name in demuxers)


@pytest.mark.parametrize("argv", every_argv())
def test_no_command_allows_network_or_unsafe_concat(argv: list[str]) -> None:
    joined = " ".join(argv).lower()
    assert "http" not in joined
    assert "-safe" not in argv
    assert "tcp" not in joined and "udp" not in joined


@pytest.mark.parametrize("argv", every_argv())
def test_input_is_a_file_url_of_an_absolute_path(argv: list[str]) -> None:
    source = argv[-1] if argv[0] == SETTINGS.ffprobe else value_after(argv, "-i")
    assert source == "file:" + str(SOURCE)


@pytest.mark.parametrize("argv", every_argv()[1:])
def test_every_output_is_a_file_url_with_the_file_protocol_only(argv: list[str]) -> None:
    found = outputs(argv)
    assert found
    # Each output carries its own -protocol_whitelist file; the input's is the first one.
    assert values_after(argv, "-protocol_whitelist") == ["file"] * (len(found) + 1)
    assert all(argv[i].startswith("file:/") for i in found)


# The default ladder of a 1080p source: 1080p, 720p, 480p, 360p, 240p.
RUNGS = 5


def test_whole_ladder_is_one_process_with_one_decode_and_a_split() -> None:
    argv = ladder_argv()
    assert argv.count("-i") == 1
    graph = value_after(argv, "-filter_complex")
    # 5 rungs + poster candidates + storyboard from one split of one decode.
    assert "split=7" in graph
    assert graph.count("[0:0]") == 1
    for size in ("1920:1080", "1280:720", "854:480", "640:360", "426:240"):
        assert f"scale={size}" in graph
    assert graph.count("setsar=1") == 7
    assert "fps=fps=30/1" in graph


def test_each_rung_is_an_fmp4_vod_hls_output_in_its_own_folder() -> None:
    argv = ladder_argv()
    playlists = [argv[i] for i in outputs(argv) if argv[i].endswith("index.m3u8")]
    assert playlists == [
        f"file:{OUT}/{name}/index.m3u8"
        for name in ("v1080", "v720", "v480", "v360", "v240", "audio")
    ]
    assert values_after(argv, "-f").count("hls") == 6
    assert set(values_after(argv, "-hls_segment_type")) == {"fmp4"}
    # EVENT while ffmpeg writes (so finished segments can be published at once); the
    # transcoder rewrites every playlist as VOD at the end (test_transcoder_e2e).
    assert set(values_after(argv, "-hls_playlist_type")) == {"event"}
    assert set(values_after(argv, "-hls_time")) == {"6"}
    assert set(values_after(argv, "-hls_fmp4_init_filename")) == {"init.mp4"}
    assert values_after(argv, "-hls_segment_filename")[0] == f"file:{OUT}/v1080/seg_%05d.m4s"
    assert set(values_after(argv, "-start_number")) == {"1"}


def test_keyframes_are_forced_by_time_with_scene_cuts_off_on_every_rung() -> None:
    argv = ladder_argv()
    assert values_after(argv, "-force_key_frames") == ["expr:gte(t,n_forced*2)"] * RUNGS
    assert values_after(argv, "-sc_threshold") == ["0"] * RUNGS
    assert values_after(argv, "-x264-params") == ["scenecut=0:open-gop=0"] * RUNGS
    # The GOP limit sits beyond the forced interval so x264 adds no keyframe of its own.
    assert all(int(g) > 60 for g in values_after(argv, "-g"))


def test_rungs_are_x264_high_profile_capped_vbr() -> None:
    argv = ladder_argv()
    assert values_after(argv, "-c:v")[:RUNGS] == ["libx264"] * RUNGS
    assert values_after(argv, "-preset") == ["veryfast"] * RUNGS
    assert values_after(argv, "-profile:v") == ["high"] * RUNGS
    assert values_after(argv, "-pix_fmt")[:RUNGS] == ["yuv420p"] * RUNGS
    maxrates = [int(v) for v in values_after(argv, "-maxrate")]
    bufsizes = [int(v) for v in values_after(argv, "-bufsize")]
    assert maxrates == sorted(maxrates, reverse=True) and len(maxrates) == RUNGS
    assert bufsizes == [2 * m for m in maxrates]
    assert len(values_after(argv, "-crf")) == RUNGS


def test_shared_audio_is_aac_stereo_48k_measured_for_loudness() -> None:
    argv = ladder_argv()
    graph = value_after(argv, "-filter_complex")
    assert "[0:1]aresample=48000" in graph and "ebur128" in graph
    assert "channel_layouts=stereo" in graph
    assert values_after(argv, "-c:a") == ["aac"]
    assert values_after(argv, "-ac") == ["2"] and values_after(argv, "-ar") == ["48000"]


def test_video_without_audio_has_no_audio_output() -> None:
    argv = ladder_argv(audio_index=None, grabs=[])
    assert "-c:a" not in argv
    assert not any("audio/index.m3u8" in part for part in argv)


def test_deinterlacing_only_when_asked() -> None:
    assert "yadif" not in value_after(ladder_argv(), "-filter_complex")
    assert "yadif" in value_after(ladder_argv(deinterlace=True), "-filter_complex")


def test_progress_goes_to_stdout_as_key_values() -> None:
    for argv in every_argv()[1:]:
        assert value_after(argv, "-progress") == "pipe:1"
        assert "-nostats" in argv and "-nostdin" in argv


def test_source_tags_are_never_copied_to_outputs() -> None:
    argv = ladder_argv()
    assert values_after(argv, "-map_metadata") == ["-1"] * len(outputs(argv))


def test_audio_rung_has_no_video_and_can_carry_pcm_for_the_waveform() -> None:
    argv = one_audio_argv(loudness=True, pcm=Path("/scratch/wave.pcm"))
    assert argv.count("-i") == 1
    assert "-c:v" not in argv
    graph = value_after(argv, "-filter_complex")
    assert "ebur128" in graph and "asplit=2" in graph and "channel_layouts=mono" in graph
    assert values_after(argv, "-b:a") == ["128000"]
    assert "file:/scratch/wave.pcm" in argv
    assert value_after(argv, "-hls_segment_filename") == f"file:{OUT}/a128/seg_%05d.m4s"


def test_mid_side_search_is_kept_only_for_low_audio_rungs() -> None:
    assert values_after(one_audio_argv(), "-aac_ms") == ["0"]
    assert "-aac_ms" not in one_audio_argv(rung=AudioRung("a64", 64_000))
    assert values_after(ladder_argv(), "-aac_coder") == ["fast"]


def test_a_hostile_file_name_stays_a_file_name() -> None:
    argv = probe_argv(SETTINGS, Path("/media/in/-i http:/evil"))
    assert argv[-1] == "file:/media/in/-i http:/evil"


def test_download_copies_the_aac_frames_instead_of_encoding_again() -> None:
    argv = one_download_argv()
    assert value_after(argv, "-c:a") == "copy"
    assert "-filter_complex" not in argv and "-b:a" not in argv and "-c:v" not in argv
    assert value_after(argv, "-map") == "0:a:0"
    assert "-vn" in argv and "-sn" in argv and "-dn" in argv


def test_download_is_a_faststart_m4a() -> None:
    argv = one_download_argv()
    assert value_after(argv, "-f") == "ipod"
    assert value_after(argv, "-movflags") == "+faststart"
    assert argv[-1] == f"file:{DOWNLOAD}"


def test_download_carries_only_the_title_and_artists_given() -> None:
    argv = one_download_argv()
    assert value_after(argv, "-map_metadata") == "-1"
    assert values_after(argv, "-metadata") == ["title=Nuit Électro", "artist=Élodie Fauré, Zoé"]
    untagged = one_download_argv(title=None, artists=[])
    assert "-metadata" not in untagged


def test_download_tags_are_bounded_and_stay_one_argument() -> None:
    hostile = "-i http:/evil " + "x" * 5000
    argv = one_download_argv(title=hostile, artists=[hostile])
    title, artist = values_after(argv, "-metadata")
    assert title == ("title=" + hostile)[: len("title=") + 300]
    assert len(artist) == len("artist=") + 300
    assert value_after(argv, "-i") == f"file:{SOURCE}"


def test_the_shared_audio_stops_on_an_aac_frame_before_the_picture_ends() -> None:
    # 13 s of picture: 609 whole AAC frames fit; the encoder's priming frame is one of them.
    assert aac_end(13.0) == pytest.approx(608 * 1024 / 48000)
    assert aac_end(13.0) < 13.0 - 1024 / 48000
    assert aac_end(0.01) is None and aac_end(0) is None
    graph = value_after(ladder_argv(audio_end=12.970667), "-filter_complex")
    assert "aresample=48000[" in graph or "aresample=48000," in graph
    assert "atrim=end=12.970667" in graph
    assert "atrim" not in value_after(ladder_argv(), "-filter_complex")
