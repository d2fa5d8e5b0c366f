"""Bits well spent, on a real transcode: no rung spends more than the source's picture did."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from transcoder import Transcoder, TranscodeResult
from transcoder.ladder import SOURCE_MARGIN

Media = Callable[[str], Path]


@dataclass
class Capture:
    out: Path
    result: TranscodeResult
    source_bitrate: int


def stream_bitrate(path: Path) -> int:
    """The video stream's bitrate as ffprobe reads it, independently of the transcoder."""
    command = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries"]
    command += ["stream=bit_rate", "-of", "json", str(path)]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return int(json.loads(output)["streams"][0]["bit_rate"])


def measured_bitrate(folder: Path) -> float:
    """What a player downloads for the rung: its segments' bits over their durations."""
    bits, seconds = 0, 0.0
    duration = None
    for line in (folder / "index.m3u8").read_text().splitlines():
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            assert duration is not None
            bits += (folder / line).stat().st_size * 8
            seconds += duration
    return bits / seconds


@pytest.fixture(scope="module")
def capture(media: Media, tmp_path_factory: pytest.TempPathFactory) -> Capture:
    source = media("stage_capture_1080p")
    out = tmp_path_factory.mktemp("stage")
    result = Transcoder(logger=logging.getLogger("test.bits")).transcode(source, out)
    return Capture(out, result, stream_bitrate(source))


def test_no_rung_spends_more_than_the_source_did(capture: Capture) -> None:
    # A grainy capture at a camera's rate: at its quality target, x264 would give the 1080p
    # rung more bits than the camera did (a 3.8 Mb/s capture once got a 4.4 Mb/s 1080p rung).
    ceiling = capture.source_bitrate * float(SOURCE_MARGIN)
    spent = {
        rendition.name: measured_bitrate(capture.out / rendition.name)
        for rendition in capture.result.renditions
        if rendition.kind == "video"
    }
    assert spent and all(bits <= ceiling for bits in spent.values()), (ceiling, spent)


def test_the_top_rung_keeps_the_sources_resolution_and_the_floor_stays(capture: Capture) -> None:
    videos = [r for r in capture.result.renditions if r.kind == "video"]
    assert (videos[0].width, videos[0].height) == (1920, 1080)
    assert (videos[-1].width, videos[-1].height) == (426, 240)
    announced = [r.bitrate for r in videos]
    assert announced == sorted(announced, reverse=True)
    assert all(rate <= capture.source_bitrate * SOURCE_MARGIN for rate in announced)
