"""What a request says, read before any of it reaches the database.

Every number, id and piece of text a handler takes from a path, a query string, a form or a
header goes through these functions. A value that is not what it should be is refused with a
400 and one sentence naming it; in a path, where it names nothing, the caller answers 404. It is
never handed to ``int()`` or to the database driver to fail on with a 500.

Whole numbers are ASCII digits only: "²" (``str.isdigit`` says yes), "٣" and "1_000" (``int``
reads them), "+1", " 7" and "-1" are not numbers here, and none is larger than what every
database's integer holds. Text loses its control characters: PostgreSQL refuses NUL outright,
and no field of ours means any of the others.
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException

from cite_live import i18n
from cite_live.i18n import N_

# The largest value of a 32-bit INTEGER column, in SQLite and PostgreSQL alike.
MAX_INT = 2**31 - 1
# Slugs and the other names a path carries are columns of at most 200 characters.
MAX_NAME = 200
BAD_NUMBER = N_("The parameter %(name)s must be a whole number from %(low)s to %(high)s.")
OUT_OF_RANGE = N_("The parameter %(name)s is out of range: it must be from %(low)s to %(high)s.")
# The digits of MAX_INT: a number spelled in more (but for leading zeros) is larger.
_MAX_DIGITS = len(str(MAX_INT))

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# A production's public id (models.new_public_id), at most as long as its column.
_PUBLIC_ID = re.compile(r"[0-9A-Za-z_-]{1,16}", re.ASCII)
# C0 and C1 control characters and DEL; tab, line feed and carriage return are text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")


def digits(value: str, limit: int = 10) -> int | None:
    """The number ``value`` spells in at most ``limit`` ASCII digits, or None when it is not
    one (a header that is no number, say, which the caller then ignores)."""
    return int(value) if len(value) <= limit and _DIGITS.fullmatch(value) else None


def whole_number(
    value: str | None, name: str, *, low: int = 1, high: int = MAX_INT, lang: str = "en"
) -> int | None:
    """``value`` as a whole number from ``low`` to ``high``; None when it is absent or empty.

    Anything else is a 400 whose sentence names ``name`` and says why, in ``lang``: not a
    whole number ("x", "-1", "1.5"), or one out of range ("0", "100001"), bounds given.
    """
    if value is None or value == "":
        return None
    if not _DIGITS.fullmatch(value):
        reason = BAD_NUMBER
    else:
        significant = value.lstrip("0")
        # Never int() of thousands of digits (Python refuses them, slowly): they are too many.
        number = int(value) if len(significant) <= _MAX_DIGITS else None
        if number is not None and low <= number <= high:
            return number
        reason = OUT_OF_RANGE
    message = i18n.gettext(reason, lang) % {"name": name, "low": low, "high": high}
    raise HTTPException(400, message)


def row_id(value: str) -> int | None:
    """The row an integer id of a path or a form names, or None when it can name none."""
    number = digits(value)
    return number if number is not None and 1 <= number <= MAX_INT else None


def public_id(value: str) -> str | None:
    """A production's public id as a path or a form carries it, or None when it cannot be one."""
    return value if _PUBLIC_ID.fullmatch(value) else None


def path_name(value: str, limit: int = MAX_NAME) -> str | None:
    """A slug (or another name) taken from a path, or None when it cannot name anything: too
    long, or holding spaces or control characters, which no slug of ours has."""
    if not value or len(value) > limit or _CONTROL_OR_SPACE.search(value):
        return None
    return value


def text(value: object) -> str:
    """A form field or a query parameter as text, without control characters (lines and tabs
    are kept); "" for anything that is not text (an uploaded file)."""
    return _CONTROL.sub("", value) if isinstance(value, str) else ""
