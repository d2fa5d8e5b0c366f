"""The ladder: which renditions a source gets, as pure functions."""

from __future__ import annotations

from fractions import Fraction

import pytest

from transcoder.ladder import audio_ladder, display_size, even_floor, output_fps, video_ladder
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
