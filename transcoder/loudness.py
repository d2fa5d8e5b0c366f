"""Integrated loudness (EBU R128) read from the summary of ffmpeg's ebur128 filter."""

from __future__ import annotations

import re

_INTEGRATED = re.compile(r"Integrated loudness:\s*I:\s*(-?\d+(?:\.\d+)?|-?inf)\s*LUFS")
# ebur128 reports its absolute gate, -70 LUFS, for silence: no loudness to speak of.
SILENCE = -70.0


def integrated_loudness(log: str) -> float | None:
    """The last integrated loudness in an ffmpeg log, in LUFS; None for silence or absence.

    The last one counts: ffmpeg may configure (and so summarise) a filter graph once before
    the real run.
    """
    found = _INTEGRATED.findall(log)
    if not found:
        return None
    value = float(found[-1])
    return value if value > SILENCE else None
