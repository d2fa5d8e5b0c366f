"""The podcasts' own artwork: the picture podcast directories show for the show.

Apple Podcasts takes a square JPEG or PNG of 1400 to 3000 pixels a side, in RGB. The site's
podcasts show ``podcast.artwork`` when it is set (checked when the settings are loaded), else a
picture made here; either is served as an RGB JPEG from one address (``/podcast.jpg``), made
once per process: the same settings give the same bytes on every web process.
"""

from __future__ import annotations

import functools
import io
import warnings
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

# Apple Podcasts' limits on a show's and an episode's artwork (Podcasts Connect, "Artwork
# requirements"): square, 1400 × 1400 to 3000 × 3000 pixels.
MIN_SIDE = 1400
MAX_SIDE = 3000
# The picture made when none is configured: the largest Apple takes, as it advises.
DEFAULT_SIDE = MAX_SIDE
FORMATS = ("JPEG", "PNG")
QUALITY = 90
# The name in capitals; without its accent where the font lacks the letter (Pillow's own).
NAME = "CITÉ LIVE"
PLAIN_NAME = "CITE LIVE"
# The site's colours: a deep blue to a warm red, from one corner to the other.
START = (22, 38, 84)
END = (196, 60, 48)


def fits(size: tuple[int, int] | None) -> bool:
    """Whether a picture of ``size`` is artwork Apple takes: square, 1400 to 3000 a side."""
    return size is not None and size[0] == size[1] and MIN_SIDE <= size[0] <= MAX_SIDE


def refusal(path: Path) -> str | None:
    """Why the file at ``path`` cannot be the podcasts' artwork (a sentence's end), or None.
    Only its header is read."""
    try:
        with Image.open(path, formats=FORMATS) as image:
            size = image.size
    except FileNotFoundError:
        return f"names {path}, which does not exist"
    except (UnidentifiedImageError, OSError, ValueError):
        return f"must be a JPEG or PNG image, and {path} is not one"
    if not fits(size):
        return (
            f"must be square, {MIN_SIDE} to {MAX_SIDE} pixels a side; {path} is {size[0]}×{size[1]}"
        )
    return None


@functools.cache
def artwork(path: Path | None) -> bytes:
    """The artwork as an RGB JPEG: the file at ``path`` re-encoded (transparency laid on white,
    colour profiles and metadata left behind), or the picture made here when ``path`` is None."""
    if path is None:
        return _jpeg(_made(DEFAULT_SIDE))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path, formats=FORMATS) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
    if upright.mode in ("RGBA", "LA") or (upright.mode == "P" and "transparency" in upright.info):
        rgba = upright.convert("RGBA")
        picture = Image.new("RGB", rgba.size, (255, 255, 255))
        picture.paste(rgba, mask=rgba.getchannel("A"))
    else:
        picture = upright.convert("RGB")
    return _jpeg(picture)


def _made(side: int) -> Image.Image:
    """A diagonal gradient in the site's colours with its name, ``side`` pixels square."""
    ramp = Image.linear_gradient("L").rotate(45, expand=True, resample=Image.Resampling.BICUBIC)
    # The rotated ramp's middle square runs from one corner's colour to the other's.
    inset = ramp.width // 4
    ramp = ramp.crop((inset, inset, ramp.width - inset, ramp.height - inset))
    gradient = ramp.resize((side, side), Image.Resampling.BICUBIC)
    picture = ImageOps.colorize(gradient, START, END)
    draw = ImageDraw.Draw(picture)
    font = _font(side // 8)
    if font is not None:
        name = NAME if _has_glyph(font, "É") else PLAIN_NAME
        draw.text((side / 2, side / 2), name, fill=(255, 255, 255), font=font, anchor="mm")
    # A band under the name: the picture stays recognisable where no font can be drawn.
    band = side // 60
    draw.rectangle(
        (side // 4, side * 5 // 8, side * 3 // 4, side * 5 // 8 + band), fill=(255, 255, 255)
    )
    return picture


def _font(size: int) -> ImageFont.FreeTypeFont | None:
    """Pillow's own scalable font at ``size`` pixels; None where Pillow has none (before 10.1,
    or without FreeType)."""
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return None
    return font if isinstance(font, ImageFont.FreeTypeFont) else None


def _has_glyph(font: ImageFont.FreeTypeFont, letter: str) -> bool:
    """Whether ``font`` draws ``letter`` as itself, not as the box of a missing glyph."""
    missing = "\u0378"  # unassigned: drawn as the missing glyph by every font
    return bytes(font.getmask(letter)) != bytes(font.getmask(missing))


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()
