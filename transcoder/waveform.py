"""Waveform peaks in the JSON format of BBC's audiowaveform, from mono 16-bit PCM."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

# Samples per read: a few MB at a time, whatever the recording's length.
CHUNK_PIXELS = 4096


def _pairs(chunk: np.ndarray[Any, np.dtype[np.int16]], per_pixel: int) -> list[int]:
    if chunk.size == 0:
        return []
    pixels = math.ceil(chunk.size / per_pixel)
    padded = np.pad(chunk, (0, pixels * per_pixel - chunk.size), mode="edge")
    blocks = padded.reshape(pixels, per_pixel)
    # 16 to 8 bits as audiowaveform does it: an arithmetic shift by 8.
    lows = blocks.min(axis=1).astype(np.int32) >> 8
    highs = blocks.max(axis=1).astype(np.int32) >> 8
    pairs = np.empty(pixels * 2, dtype=np.int32)
    pairs[0::2], pairs[1::2] = lows, highs
    return [int(value) for value in pairs]


def waveform_peaks(pcm: Path, sample_rate: int, target_pairs: int) -> dict[str, Any]:
    """Peaks of a mono s16le file: about ``target_pairs`` (min, max) pairs, 8-bit values.

    The dict is audiowaveform's version 2 JSON: version, channels, sample_rate,
    samples_per_pixel, bits, length and data (min and max interleaved).
    """
    samples = pcm.stat().st_size // 2 if pcm.is_file() else 0
    per_pixel = max(1, math.ceil(samples / max(1, target_pairs)))
    data: list[int] = []
    if samples:
        with pcm.open("rb") as handle:
            for block in iter(lambda: handle.read(per_pixel * CHUNK_PIXELS * 2), b""):
                data.extend(
                    _pairs(np.frombuffer(block[: len(block) // 2 * 2], dtype="<i2"), per_pixel)
                )
    return {
        "version": 2,
        "channels": 1,
        "sample_rate": sample_rate,
        "samples_per_pixel": per_pixel,
        "bits": 8,
        "length": len(data) // 2,
        "data": data,
    }


def write_waveform(pcm: Path, out: Path, sample_rate: int, target_pairs: int) -> None:
    """Compute the peaks of ``pcm`` and write them to ``out`` as compact JSON."""
    peaks = waveform_peaks(pcm, sample_rate, target_pairs)
    out.write_text(json.dumps(peaks, separators=(",", ":")), encoding="utf-8")
