"""Storyboard: a sprite of evenly spaced thumbnails and the WebVTT that maps time to tiles."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from PIL import Image

from .artwork import read_frames, save_jpeg
from .ladder import even_round

SPRITE = "storyboard.jpg"
JPEG_QUALITY = 75


@dataclass(frozen=True)
class StoryboardPlan:
    """How often to grab a thumbnail, and its size."""

    interval: Fraction
    width: int
    height: int

    @property
    def rate(self) -> Fraction:
        """Thumbnails per second of media."""
        return 1 / self.interval


def plan_storyboard(
    duration: float,
    display_width: int,
    display_height: int,
    *,
    thumb_width: int,
    max_thumbs: int,
    min_interval: float,
) -> StoryboardPlan:
    """One thumbnail every ``min_interval`` seconds or less often, never more than ``max_thumbs``.

    The interval is rounded up to the millisecond so the cue times are exact.
    """
    seconds = max(min_interval, duration / max_thumbs)
    interval = Fraction(math.ceil(seconds * 1000), 1000)
    width = min(thumb_width, display_width)
    height = even_round(width * display_height / display_width)
    return StoryboardPlan(interval, even_round(width), height)


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}.{millis:03d}"


def storyboard_vtt(
    count: int, columns: int, plan: StoryboardPlan, duration: float, sprite: str = SPRITE
) -> str:
    """WebVTT whose cue N covers thumbnail N's interval and points at its tile in the sprite."""
    lines = ["WEBVTT", ""]
    for index in range(count):
        start = float(index * plan.interval)
        if start >= duration:
            break
        end = duration if index == count - 1 else min(duration, float((index + 1) * plan.interval))
        x, y = (index % columns) * plan.width, (index // columns) * plan.height
        lines += [
            f"{_timestamp(start)} --> {_timestamp(end)}",
            f"{sprite}#xywh={x},{y},{plan.width},{plan.height}",
            "",
        ]
    return "\n".join(lines)


def build_storyboard(
    raw: Path,
    plan: StoryboardPlan,
    *,
    duration: float,
    columns: int,
    max_thumbs: int,
    sprite_path: Path,
    vtt_path: Path,
) -> bool:
    """Tile the raw frames into ``sprite_path`` and write ``vtt_path``; False without frames."""
    frames = read_frames(raw, plan.width, plan.height)
    count = min(
        len(frames), max_thumbs, max(1, math.ceil(Fraction(duration) / plan.interval - 1e-9))
    )
    if count == 0:
        return False
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    sprite = Image.new("RGB", (columns * plan.width, rows * plan.height))
    for index in range(count):
        tile = Image.fromarray(frames[index], "RGB")
        sprite.paste(tile, ((index % columns) * plan.width, (index // columns) * plan.height))
    save_jpeg(sprite, sprite_path, JPEG_QUALITY)
    vtt_path.write_text(
        storyboard_vtt(count, columns, plan, duration, sprite_path.name), encoding="utf-8"
    )
    return True
