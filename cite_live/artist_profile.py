"""An artist's profile as the accounts that speak for it edit it: who may, the form, its checks
and how a valid form is written back.

As with the production form (cite_live.production_form), a form is plain strings exactly as
typed, so that a refused form comes back with the artist's own words in it;
:meth:`ProfileForm.check` turns it into :class:`Changes` or one sentence per field to correct.
The photo is checked and stored by cite_live.covers; :func:`apply` points the profile at it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from starlette.datastructures import FormData

from cite_live import params
from cite_live.auth import CurrentUser
from cite_live.i18n import N_
from cite_live.models import Artist
from cite_live.presenter import discipline_names, safe_link

MAX_BIO = 10_000
MAX_LINKS = 10
MAX_LINK_LABEL = 100
MAX_DISCIPLINES = 10
MAX_DISCIPLINE = 60
MAX_COMMUNE = 120
# Characters no web address holds (RFC 3986): one that does is a mistyped line, or a trap.
_NOT_IN_A_URL = re.compile(r'[\s<>"{}|\\^`]')

BIO_TOO_LONG = N_("The biography is too long: 10,000 characters at most.")
BIO_EN_TOO_LONG = N_("The English biography is too long: 10,000 characters at most.")
TOO_MANY_LINKS = N_("Give at most 10 links.")
BAD_LINK = N_(
    "Line %(number)s of the links (“%(line)s”) is not a web address starting with http:// or "
    "https://."
)
LINK_LABEL_TOO_LONG = N_("Line %(number)s of the links has a name longer than 100 characters.")
TOO_MANY_DISCIPLINES = N_("Give at most 10 disciplines.")
DISCIPLINE_TOO_LONG = N_("A discipline is too long: 60 characters at most.")
COMMUNE_TOO_LONG = N_("The name of the town is too long: 120 characters at most.")


def may_edit(user: CurrentUser | None, artist_id: int) -> bool:
    """Whether ``user`` may edit the profile ``artist_id``: the accounts that speak for it and
    the admins."""
    if user is None:
        return False
    return user.is_admin or artist_id in user.artist_ids


@dataclass(frozen=True)
class FieldError:
    """A sentence to show beside a field, with the values it names."""

    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Changes:
    """A checked form, in the types of the model."""

    bio: str
    bio_en: str | None
    links: list[dict[str, str]]
    disciplines: list[str]
    commune: str | None
    remove_photo: bool


def _text_block(text: str) -> str:
    """A biography as kept: Windows line ends made plain, no space around it."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def parse_links(text: str) -> tuple[list[dict[str, str]], FieldError | None]:
    """Links from one per line: an address, optionally after a name ("Bandcamp https://…");
    blank lines are skipped. Or the error naming the first line that is not one."""
    lines = _text_block(text).split("\n") if text.strip() else []
    if sum(1 for line in lines if line.strip()) > MAX_LINKS:
        return [], FieldError(TOO_MANY_LINKS)
    links: list[dict[str, str]] = []
    for number, line in enumerate(lines, start=1):
        words = line.split()
        if not words:
            continue
        address, label = words[-1], " ".join(words[:-1])
        # A quote or a bracket glued to the address makes it no address at all.
        if safe_link(address) is None or _NOT_IN_A_URL.search(address):
            return [], FieldError(BAD_LINK, {"number": str(number), "line": line.strip()[:80]})
        if len(label) > MAX_LINK_LABEL:
            return [], FieldError(LINK_LABEL_TOO_LONG, {"number": str(number)})
        links.append({"label": label, "url": address})
    return links, None


def parse_disciplines(text: str) -> tuple[list[str], FieldError | None]:
    """Disciplines separated by commas, each once whatever its case, in the order typed."""
    found: dict[str, str] = {}
    for part in text.split(","):
        name = _one_line(part)
        if not name:
            continue
        if len(name) > MAX_DISCIPLINE:
            return [], FieldError(DISCIPLINE_TOO_LONG)
        found.setdefault(name.casefold(), name)
    if len(found) > MAX_DISCIPLINES:
        return [], FieldError(TOO_MANY_DISCIPLINES)
    return list(found.values()), None


@dataclass
class ProfileForm:
    """The profile's fields as the form shows them, or as they were typed."""

    bio: str = ""
    bio_en: str = ""
    links: str = ""
    disciplines: str = ""
    commune: str = ""
    remove_photo: bool = False

    @classmethod
    def of(cls, artist: Artist) -> ProfileForm:
        lines = []
        for entry in artist.links or []:
            # Links stored before the form existed may be plain addresses.
            url = entry.get("url") if isinstance(entry, dict) else entry
            label = entry.get("label") if isinstance(entry, dict) else ""
            if isinstance(url, str):
                lines.append(f"{label} {url}".strip() if isinstance(label, str) else url)
        return cls(
            bio=artist.bio or "",
            bio_en=artist.bio_en or "",
            links="\n".join(lines),
            disciplines=", ".join(discipline_names(artist.disciplines)),
            commune=artist.commune or "",
        )

    @classmethod
    def read(cls, fields: FormData) -> ProfileForm:
        return cls(
            bio=params.text(fields.get("bio")),
            bio_en=params.text(fields.get("bio_en")),
            links=params.text(fields.get("links")),
            disciplines=params.text(fields.get("disciplines")),
            commune=params.text(fields.get("commune")),
            remove_photo=bool(fields.get("remove_photo")),
        )

    def check(self) -> tuple[Changes | None, dict[str, FieldError]]:
        errors: dict[str, FieldError] = {}
        bio, bio_en = _text_block(self.bio), _text_block(self.bio_en)
        if len(bio) > MAX_BIO:
            errors["bio"] = FieldError(BIO_TOO_LONG)
        if len(bio_en) > MAX_BIO:
            errors["bio_en"] = FieldError(BIO_EN_TOO_LONG)
        links, problem = parse_links(self.links)
        if problem:
            errors["links"] = problem
        disciplines, problem = parse_disciplines(self.disciplines)
        if problem:
            errors["disciplines"] = problem
        commune = _one_line(self.commune)
        if len(commune) > MAX_COMMUNE:
            errors["commune"] = FieldError(COMMUNE_TOO_LONG)
        if errors:
            return None, errors
        changes = Changes(
            bio=bio,
            bio_en=bio_en or None,
            links=links,
            disciplines=disciplines,
            commune=commune or None,
            remove_photo=self.remove_photo,
        )
        return changes, {}


@dataclass(frozen=True)
class StoredPhoto:
    """A photo already in the store (cite_live.covers.put_photo), for the profile to show."""

    key: str
    square_key: str
    width: int
    height: int


def apply(artist: Artist, changes: Changes, photo: StoredPhoto | None) -> list[str]:
    """Write ``changes`` (and ``photo``, when one was sent) to ``artist``; returns the keys of
    the photo it no longer shows, to remove from the store once this is committed."""
    artist.bio = changes.bio
    artist.bio_en = changes.bio_en
    artist.links = changes.links
    artist.disciplines = changes.disciplines
    artist.commune = changes.commune
    old = [key for key in (artist.photo_key, artist.photo_square_key) if key]
    if photo is not None:
        set_photo(artist, photo)
        return old
    if changes.remove_photo:
        set_photo(artist, None)
        return old
    return []


def set_photo(artist: Artist, photo: StoredPhoto | None) -> None:
    artist.photo_key = photo.key if photo else None
    artist.photo_square_key = photo.square_key if photo else None
    artist.photo_width = photo.width if photo else None
    artist.photo_height = photo.height if photo else None
