"""The ladder: which renditions a source gets, as pure functions."""

from __future__ import annotations

import itertools
from dataclasses import replace
from fractions import Fraction

import pytest

from transcoder.ladder import (
    MIN_RUNG_STEP,
    SOURCE_MARGIN,
    STARVED_BPP,
    VBV_INITIAL_FILL,
    VideoRung,
    audio_ladder,
    bits_per_pixel,
    display_size,
    even_floor,
    fit_to_source,
    output_fps,
    source_ceiling,
    video_ladder,
)
from transcoder.settings import TranscoderSettings

STEPS = TranscoderSettings().video_steps
AUDIO = TranscoderSettings().audio_bitrates


def sizes(width: int, height: int, fps: Fraction = Fraction(30)) -> list[tuple[int, int]]:
    return [(r.width, r.height) for r in video_ladder(width, height, fps, STEPS)]


def test_1080p_source_gets_the_five_standard_rungs_highest_first() -> None:
    assert sizes(1920, 1080) == [(1920, 1080), (1280, 720), (854, 480), (640, 360), (426, 240)]
    assert [r.name for r in video_ladder(1920, 1080, Fraction(30), STEPS)] == [
        "v1080",
        "v720",
        "v480",
        "v360",
        "v240",
    ]


def test_a_360p_source_gets_two_bit_rates() -> None:
    # The lowest standard rung below it: a slow phone starts there (streams.js).
    rungs = video_ladder(640, 360, Fraction(25), STEPS)
    assert [(r.name, r.width, r.height) for r in rungs] == [("v360", 640, 360), ("v240", 426, 240)]
    assert rungs[0].maxrate > rungs[1].maxrate


@pytest.mark.parametrize(
    ("width", "height"),
    [(1920, 1080), (1280, 720), (1024, 576), (853, 479), (640, 360), (3840, 2160), (720, 1280)],
)
def test_never_upscales(width: int, height: int) -> None:
    for rung_w, rung_h in sizes(width, height):
        assert rung_w <= width and rung_h <= height


def test_4k_source_is_capped_at_1080() -> None:
    assert sizes(3840, 2160)[0] == (1920, 1080)


def test_portrait_keeps_portrait_with_the_short_side_as_rung() -> None:
    assert sizes(1080, 1920) == [(1080, 1920), (720, 1280), (480, 854), (360, 640), (240, 426)]
    assert sizes(360, 640) == [(360, 640), (240, 426)]


@pytest.mark.parametrize(
    ("width", "height"), [(853, 479), (1917, 1079), (1000, 563), (333, 201), (2560, 1097)]
)
def test_every_rung_has_even_dimensions(width: int, height: int) -> None:
    for rung_w, rung_h in sizes(width, height):
        assert rung_w % 2 == 0 and rung_h % 2 == 0


@pytest.mark.parametrize(("width", "height"), [(1920, 1080), (2560, 1097), (1080, 1350)])
def test_display_aspect_is_kept_within_rounding(width: int, height: int) -> None:
    for rung_w, rung_h in sizes(width, height):
        # Rounding each side to an even number moves the aspect by at most one pixel in two.
        assert abs(rung_w / rung_h - width / height) <= 2 / min(rung_w, rung_h)


def test_anamorphic_pal_is_widened_to_16_9_square_pixels() -> None:
    width, height = display_size(720, 576, Fraction(64, 45), 0)
    assert (width, height) == (1024, 576)
    ladder = sizes(width, height)
    assert ladder[0] == (1024, 576)
    for rung_w, rung_h in ladder:
        assert abs(rung_w / rung_h - 16 / 9) < 0.01


def test_rotation_by_a_quarter_turn_swaps_the_display_size() -> None:
    assert display_size(640, 360, None, 90) == (360, 640)
    assert display_size(640, 360, Fraction(1), 270) == (360, 640)
    assert display_size(640, 360, None, 180) == (640, 360)


def test_source_below_360_gets_one_rung_at_its_own_even_size() -> None:
    ladder = video_ladder(319, 181, Fraction(25), STEPS)
    assert [(r.width, r.height) for r in ladder] == [(318, 180)]
    assert ladder[0].maxrate > 0


def test_source_between_steps_also_gets_a_rung_at_its_own_size() -> None:
    assert sizes(1024, 576)[:2] == [(1024, 576), (854, 480)]
    # Barely above a step: that step is enough.
    assert sizes(960, 540)[0] == (854, 480)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (Fraction(30), Fraction(30)),
        (Fraction(30000, 1001), Fraction(30000, 1001)),
        (Fraction(60), Fraction(60)),
        (Fraction(120), Fraction(60)),
        (Fraction(100), Fraction(50)),
        (Fraction(240), Fraction(60)),
        (None, Fraction(30)),
    ],
)
def test_frame_rate_is_capped_at_60_by_whole_divisors(
    source: Fraction | None, expected: Fraction
) -> None:
    assert output_fps(source, 60) == expected


def test_high_frame_rate_rungs_get_more_bits() -> None:
    at_30 = video_ladder(1920, 1080, Fraction(30), STEPS)[0].maxrate
    at_60 = video_ladder(1920, 1080, Fraction(60), STEPS)[0].maxrate
    assert at_60 > at_30


def test_even_floor_never_rounds_up() -> None:
    assert [even_floor(v) for v in (0, 1, 2, 3, 479, 480.9)] == [2, 2, 2, 2, 478, 480]


def test_lossless_stereo_audio_gets_every_rung() -> None:
    rungs = audio_ladder(AUDIO, codec="flac", bitrate=None, channels=2, sample_rate=48000)
    assert [r.name for r in rungs] == ["a192", "a128", "a64"]


def test_lossy_audio_gets_no_rung_far_above_its_own_bitrate() -> None:
    rungs = audio_ladder(AUDIO, codec="mp3", bitrate=128_000, channels=2, sample_rate=44100)
    assert [r.bitrate for r in rungs] == [128_000, 64_000]
    low = audio_ladder(AUDIO, codec="mp3", bitrate=32_000, channels=1, sample_rate=22050)
    assert [r.bitrate for r in low] == [64_000]
    vorbis = audio_ladder(AUDIO, codec="vorbis", bitrate=96_000, channels=2, sample_rate=44100)
    assert [r.bitrate for r in vorbis] == [128_000, 64_000]


def test_mono_audio_stops_at_128k() -> None:
    rungs = audio_ladder(AUDIO, codec="pcm_s24le", bitrate=2_304_000, channels=1, sample_rate=96000)
    assert [r.bitrate for r in rungs] == [128_000, 64_000]


# --- bits well spent: no rung above the source's own bitrate ---------------------------------


def ladder(
    width: int,
    height: int,
    bitrate: int | None,
    fps: Fraction = Fraction(30),
    duration: float | None = None,
) -> list[VideoRung]:
    return video_ladder(width, height, fps, STEPS, bitrate, duration)


def named(rungs: list[VideoRung]) -> list[tuple[str, int]]:
    return [(r.name, r.maxrate) for r in rungs]


def test_no_rung_is_capped_above_the_source_with_its_margin() -> None:
    # A 1080p capture at 3.8 Mb/s once got a 1080p rung at 4.4 Mb/s.
    rungs = ladder(1920, 1080, 3_800_000)
    assert named(rungs) == [
        ("v1080", 4_180_000),
        ("v720", 3_000_000),
        ("v480", 1_500_000),
        ("v360", 800_000),
        ("v240", 400_000),
    ]
    for rung in rungs:
        assert rung.maxrate <= 3_800_000 * SOURCE_MARGIN
        assert rung.bufsize == 2 * rung.maxrate


def test_a_rich_source_keeps_the_ladder_as_designed() -> None:
    assert ladder(1920, 1080, 20_000_000, duration=60) == ladder(1920, 1080, None)


@pytest.mark.parametrize(
    "bitrate",
    [None, 0, -1, -3_800_000, 10**30, 10**400],
    ids=["none", "zero", "minus-one", "negative", "huge", "beyond-floats"],
)
def test_unknown_or_nonsense_bitrates_change_nothing(bitrate: int | None) -> None:
    assert ladder(1920, 1080, bitrate, duration=30) == ladder(1920, 1080, None)
    assert ladder(1080, 1920, bitrate) == ladder(1080, 1920, None)


def test_a_short_recording_gets_a_cap_its_initial_vbv_buffer_cannot_overspend() -> None:
    # x264 may spend its initial buffer on top of the rate: over T seconds a rung holds at most
    # maxrate * T + fill * bufsize bits, and that must stay within the source's with margin.
    for seconds in (2.0, 4.0, 14.0, 60.0, 3600.0):
        for bitrate in (300_000, 1_000_000, 2_000_000, 3_800_000, 6_000_000):
            for rung in ladder(1920, 1080, bitrate, duration=seconds):
                most = rung.maxrate * seconds + float(VBV_INITIAL_FILL) * rung.bufsize
                assert most <= bitrate * SOURCE_MARGIN * seconds or rung.maxrate == 64_000
    assert source_ceiling(3_800_000, 10.0) == pytest.approx(3_800_000 * 1.1 * 10 / 11.8, abs=1)
    assert source_ceiling(3_800_000, 6 * 3600.0) == pytest.approx(4_180_000, rel=0.001)


def test_a_rung_no_dearer_than_the_one_above_adds_nothing_and_goes() -> None:
    # 2 Mb/s: 1080p and 720p would both be capped at 2.2 Mb/s, one choice for a player; the
    # top keeps the source's resolution and 720p, hardly cheaper, goes.
    assert named(ladder(1920, 1080, 2_000_000)) == [
        ("v1080", 2_200_000),
        ("v480", 1_500_000),
        ("v360", 800_000),
        ("v240", 400_000),
    ]
    # 3.2 Mb/s: 720p at 3 Mb/s is within a fifth of the top's 3.52 Mb/s.
    assert [r.name for r in ladder(1920, 1080, 3_200_000)] == ["v1080", "v480", "v360", "v240"]
    # 3.8 Mb/s: 4.18 against 3 Mb/s is a step of its own.
    assert [r.name for r in ladder(1920, 1080, 3_800_000)][:2] == ["v1080", "v720"]


def test_kept_rungs_are_a_real_step_apart_except_the_lowest() -> None:
    for bitrate in range(100_000, 8_000_001, 50_000):
        rungs = ladder(1920, 1080, bitrate)
        for upper, lower in itertools.pairwise(rungs[:-1]):
            assert upper.maxrate >= lower.maxrate * MIN_RUNG_STEP, (bitrate, named(rungs))
        assert rungs[-1].name == "v240"
        assert all(r.maxrate <= max(64_000, bitrate * float(SOURCE_MARGIN)) for r in rungs)


def test_a_starved_top_rung_gives_way_to_the_picture_its_bits_can_feed() -> None:
    # 1 Mb/s over 1080p is 0.018 bits per pixel: blocks. 720p shows what those bits can show.
    rungs = ladder(1920, 1080, 1_000_000)
    assert named(rungs) == [("v720", 1_100_000), ("v360", 800_000), ("v240", 400_000)]
    assert bits_per_pixel(rungs[0]) >= STARVED_BPP
    # 1.5 Mb/s is enough to keep the source's resolution.
    assert ladder(1920, 1080, 1_500_000)[0].name == "v1080"


def test_the_lowest_rung_always_stays_even_starved() -> None:
    assert named(ladder(1920, 1080, 50_000)) == [("v240", 64_000)]
    assert named(ladder(1280, 720, 450_000)) == [("v480", 495_000), ("v240", 400_000)]
    # Both forced: the top at its own size, the floor for weak links.
    assert named(ladder(640, 360, 400_000)) == [("v360", 440_000), ("v240", 400_000)]
    assert [r.name for r in ladder(319, 181, 30_000)] == ["v180"]


def test_portrait_is_capped_like_landscape() -> None:
    rungs = ladder(1080, 1920, 2_000_000)
    assert [(r.width, r.height, r.maxrate) for r in rungs] == [
        (1080, 1920, 2_200_000),
        (480, 854, 1_500_000),
        (360, 640, 800_000),
        (240, 426, 400_000),
    ]


def test_at_60_fps_the_cap_holds_and_pixels_starve_sooner() -> None:
    # The 60 fps allowance (half as much again) is capped like any other.
    assert named(ladder(1920, 1080, 6_000_000, Fraction(60))) == [
        ("v1080", 6_600_000),
        ("v720", 4_500_000),
        ("v480", 2_250_000),
        ("v360", 1_200_000),
        ("v240", 600_000),
    ]
    # The same 2.2 Mb/s feeds 1080p at 30 fps but spreads over twice the pixels at 60.
    assert ladder(1920, 1080, 2_200_000)[0].name == "v1080"
    at_60 = ladder(1920, 1080, 2_200_000, Fraction(60))
    assert named(at_60)[0] == ("v720", 2_420_000)
    assert bits_per_pixel(at_60[0]) >= STARVED_BPP


def test_a_source_between_steps_keeps_its_own_size_capped() -> None:
    rungs = ladder(1024, 576, 900_000)
    assert named(rungs) == [("v576", 990_000), ("v360", 800_000), ("v240", 400_000)]


def test_fit_to_source_keeps_an_empty_or_single_ladder() -> None:
    assert fit_to_source([], 1_000_000) == []
    only = ladder(319, 181, None)
    assert fit_to_source(only, 1) == [replace(only[0], maxrate=64_000)]
