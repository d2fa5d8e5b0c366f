"""Language tags: what a file's stream says (ISO 639-2, ``fre``), as HLS wants it (BCP 47, ``fr``).

RFC 8216 (section 4.3.4.1) wants an RFC 5646 tag in ``LANGUAGE``; RFC 5646 (section 2.2.1)
wants the two-letter ISO 639-1 code where there is one, so the common three-letter codes are
mapped to theirs. Anything that is not a well-formed tag is no language at all.
"""

from __future__ import annotations

import re

# Language subtag, then up to a few script, region or variant subtags (RFC 5646, section 2.1).
_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8}){0,4}")
# ISO 639-2 codes without meaning: undetermined, multiple, none, uncoded.
_NOT_A_LANGUAGE = {"und", "mul", "zxx", "mis", "qaa"}
# ISO 639-2 (bibliographic and terminological codes) to ISO 639-1, for the languages a capture
# of this town's scene is likely to carry.
_TWO_LETTER = {
    "ara": "ar",
    "bre": "br",
    "cat": "ca",
    "chi": "zh",
    "zho": "zh",
    "cos": "co",
    "deu": "de",
    "ger": "de",
    "dut": "nl",
    "nld": "nl",
    "eng": "en",
    "fra": "fr",
    "fre": "fr",
    "ita": "it",
    "jpn": "ja",
    "kor": "ko",
    "oci": "oc",
    "pol": "pl",
    "por": "pt",
    "rus": "ru",
    "spa": "es",
    "tur": "tr",
    "ukr": "uk",
    "vie": "vi",
    "wol": "wo",
    "bam": "bm",
    "lin": "ln",
    "swa": "sw",
    "heb": "he",
    "hin": "hi",
    "gre": "el",
    "ell": "el",
    "rum": "ro",
    "ron": "ro",
    "baq": "eu",
    "eus": "eu",
}


def bcp47(value: object) -> str | None:
    """``value`` as a BCP 47 language tag (``fre`` → ``fr``, ``pt_BR`` → ``pt-BR``), or None."""
    if not isinstance(value, str):
        return None
    text = value.strip().replace("_", "-")
    if len(text) > 35 or not _TAG.fullmatch(text):
        return None
    language, *rest = text.split("-")
    language = language.lower()
    if language in _NOT_A_LANGUAGE:
        return None
    language = _TWO_LETTER.get(language, language)
    subtags = [part.upper() if len(part) == 2 and part.isalpha() else part for part in rest]
    return "-".join([language, *subtags])
