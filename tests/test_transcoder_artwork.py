"""Posters, covers, waveform, storyboard, loudness and tag text, on data made in the test."""

from __future__ import annotations

import io
import json
import logging
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from transcoder.artwork import (
    choose_poster,
    cover_from_bytes,
    placeholder_cover,
    poster_from_frames,
)
from transcoder.loudness import integrated_loudness
from transcoder.storyboard import build_storyboard, plan_storyboard, storyboard_vtt
from transcoder.tags import clean_text, parse_track
from transcoder.waveform import waveform_peaks

LOG = logging.getLogger("test.artwork")


def frame(value: int, noise: int = 0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.full((36, 64, 3), value, dtype=np.int16)
    if noise:
        base += rng.integers(-noise, noise, size=base.shape, dtype=np.int16)
    return np.clip(base, 0, 255).astype(np.uint8)


def jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def test_poster_skips_black_and_flat_frames() -> None:
    frames = np.stack([frame(0), frame(3, 2), frame(128), frame(120, 60, 1), frame(125, 60, 2)])
    chosen = choose_poster(frames)
    assert chosen in (3, 4)


def test_poster_falls_back_to_the_brightest_when_all_are_dark() -> None:
    frames = np.stack([frame(0), frame(10), frame(5)])
    assert choose_poster(frames) == 1
    assert choose_poster(np.zeros((0, 36, 64, 3), dtype=np.uint8)) is None


def test_poster_is_written_from_raw_frames(tmp_path: Path) -> None:
    raw = tmp_path / "frames.rgb"
    raw.write_bytes(np.stack([frame(0), frame(120, 60, 3)]).tobytes())
    out = tmp_path / "poster.jpg"
    assert poster_from_frames(raw, 64, 36, out)
    with Image.open(out) as image:
        assert image.format == "JPEG" and image.size == (64, 36)
        assert np.asarray(image.convert("L")).mean() > 80
    assert not poster_from_frames(tmp_path / "none.rgb", 64, 36, tmp_path / "x.jpg")


def test_cover_is_re_encoded_bounded_and_stripped(tmp_path: Path) -> None:
    image = Image.new("RGB", (3000, 2000), (200, 40, 40))
    exif = Image.Exif()
    exif[0x010E] = "secret description"
    data = jpeg(image, exif=exif) + b"<?php trailing payload ?>"
    out = tmp_path / "cover.jpg"
    assert cover_from_bytes(data, out, 1400, LOG)
    written = out.read_bytes()
    assert b"trailing payload" not in written and b"secret description" not in written
    with Image.open(out) as result:
        assert result.format == "JPEG" and result.size == (1400, 933)


def test_cover_that_is_not_an_image_or_too_large_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "cover.jpg"
    assert not cover_from_bytes(b"not an image at all", out, 1400, LOG)
    huge = io.BytesIO()
    Image.new("1", (10000, 10000)).save(huge, "PNG")
    assert not cover_from_bytes(huge.getvalue(), out, 1400, LOG)
    assert not out.exists()


def test_placeholder_is_a_stable_gradient_per_title(tmp_path: Path) -> None:
    first, again, other = tmp_path / "a.jpg", tmp_path / "b.jpg", tmp_path / "c.jpg"
    placeholder_cover("Répétition générale", first)
    placeholder_cover("Répétition générale", again)
    placeholder_cover("Autre titre", other)
    assert first.read_bytes() == again.read_bytes() != other.read_bytes()
    with Image.open(first) as image:
        pixels = np.asarray(image, dtype=np.int16)
    assert image.format == "JPEG" and image.size == (800, 800)
    assert np.abs(pixels[0, 0] - pixels[-1, -1]).sum() > 20  # a gradient, not a flat fill


def test_waveform_pairs_follow_audiowaveform_rules(tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(rate * 3) / rate
    signal = (np.sin(2 * np.pi * 440 * t) * 16000).astype("<i2")
    signal[rate : rate + 4800] = 0  # 100 ms of silence after one second
    pcm = tmp_path / "wave.pcm"
    pcm.write_bytes(signal.tobytes())
    peaks = waveform_peaks(pcm, rate, 1500)
    assert {k: peaks[k] for k in ("version", "channels", "sample_rate", "bits")} == {
        "version": 2,
        "channels": 1,
        "sample_rate": rate,
        "bits": 8,
    }
    assert peaks["samples_per_pixel"] == 96 and peaks["length"] == 1500
    data = peaks["data"]
    assert len(data) == 3000
    assert max(data) == 16000 >> 8 and min(data) == -16000 >> 8
    silent = 1 * rate // 96 + 10
    assert data[2 * silent : 2 * silent + 2] == [0, 0]
    json.dumps(peaks)


def test_waveform_of_nothing_is_empty(tmp_path: Path) -> None:
    peaks = waveform_peaks(tmp_path / "missing.pcm", 48000, 1500)
    assert peaks["length"] == 0 and peaks["data"] == []


def test_storyboard_plan_spaces_at_most_100_thumbnails() -> None:
    short = plan_storyboard(14, 1920, 1080, thumb_width=160, max_thumbs=100, min_interval=1)
    assert short.interval == 1 and (short.width, short.height) == (160, 90)
    long = plan_storyboard(3600, 1080, 1920, thumb_width=160, max_thumbs=100, min_interval=1)
    assert long.interval == 36 and (long.width, long.height) == (160, 284)
    assert long.rate == Fraction(1, 36)


def test_storyboard_sprite_and_vtt_agree(tmp_path: Path) -> None:
    plan = plan_storyboard(25, 320, 180, thumb_width=160, max_thumbs=100, min_interval=1)
    raw = tmp_path / "thumbs.rgb"
    frames = [np.full((90, 160, 3), 10 * i, dtype=np.uint8) for i in range(25)]
    raw.write_bytes(np.stack(frames).tobytes())
    sprite, vtt = tmp_path / "storyboard.jpg", tmp_path / "storyboard.vtt"
    assert build_storyboard(
        raw, plan, duration=24.5, columns=10, max_thumbs=100, sprite_path=sprite, vtt_path=vtt
    )
    with Image.open(sprite) as image:
        assert image.size == (1600, 270)
        grey = np.asarray(image.convert("L"))
        assert grey[45, 160 * 4 + 80] > 30  # tile 4 is not black
    text = vtt.read_text()
    cues = re.findall(r"(\S+) --> (\S+)\nstoryboard\.jpg#xywh=(\d+),(\d+),160,90", text)
    assert len(cues) == 25
    assert cues[0] == ("00:00:00.000", "00:00:01.000", "0", "0")
    assert cues[12] == ("00:00:12.000", "00:00:13.000", "320", "90")
    assert cues[-1][1] == "00:00:24.500"


def test_storyboard_vtt_formats_hours() -> None:
    plan = plan_storyboard(7200, 160, 90, thumb_width=160, max_thumbs=100, min_interval=1)
    text = storyboard_vtt(100, 10, plan, 7200)
    assert "01:58:48.000 --> 02:00:00.000" in text and text.count("-->") == 100


def test_loudness_takes_the_last_summary_and_ignores_silence() -> None:
    log = (
        "[Parsed_ebur128_0] Summary:\n\n  Integrated loudness:\n    I:         -70.0 LUFS\n"
        "...\n[Parsed_ebur128_0] Summary:\n\n  Integrated loudness:\n    I:         -16.4 LUFS\n"
        "    Threshold: -26.5 LUFS\n"
    )
    assert integrated_loudness(log) == -16.4
    assert integrated_loudness(log.replace("-16.4", "-70.0")) is None
    assert integrated_loudness("no summary here") is None


def test_tag_text_is_one_bounded_line_without_controls() -> None:
    assert clean_text("  Hello\x00\x1b[31m\nworld\u202e  ") == "Hello[31m world"
    assert clean_text('<script>alert("x")</script>') == '<script>alert("x")</script>'
    assert clean_text("\x00\x01 ") is None
    long = clean_text("é" * 100_000, 300)
    assert long is not None and len(long) == 300 and long.endswith("…")
    assert clean_text("👩\u200d🎤 Léa") == "👩\u200d🎤 Léa"


def test_track_numbers_are_read_from_every_tag_style() -> None:
    assert parse_track("03/12") == 3
    assert parse_track(["7"]) == 7
    assert parse_track([(5, 10)]) == 5
    assert parse_track("side A") is None
    assert parse_track("0") is None
