"""The studio's edit form of a production: what it shows, how it reads what was typed, and how
a valid form is written back.

A form is plain strings, exactly as typed, so that a refused form comes back with the artist's
own words in it; :meth:`ProductionForm.check` turns it into :class:`Changes` (typed values) or
one sentence per field that needs a correction.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from cite_live import i18n, params
from cite_live.catalogue import (
    may_allow_download,
    retitle,
    set_credits,
    set_tags,
    slugify,
    unique_slug,
)
from cite_live.i18n import N_
from cite_live.models import Chapter, Production, Venue
from cite_live.vocabulary import (
    CREDIT_ROLE_LABELS,
    EMBED_POLICIES,
    LICENCES,
    SESSION_TYPES,
    VISIBILITIES,
)
from transcoder.language import bcp47

MAX_TITLE = 300
MAX_DESCRIPTION = 20_000
MAX_NAME = 200
MAX_CREDITS = 50
MAX_TAGS = 30
MAX_SETLIST_LINES = 300
# Rows offered empty below the credits already there (more appear after each save).
BLANK_CREDIT_ROWS = 3
EARLIEST_RECORDING = date(1900, 1, 1)

# "1:23 Title", "01:02:03 Title", "1:23.5 – Title": a clock, an optional dash, then the title.
_SETLIST_LINE = re.compile(
    r"(?:(\d{1,3}):)?(\d{1,3}):(\d{2}(?:[.,]\d{1,3})?)(?:\s*[-–—]\s*|\s+)(\S.*)", re.ASCII
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)

TITLE_MISSING = N_("Give the production a title.")
TITLE_TOO_LONG = N_("The title is too long: 300 characters at most.")
DESCRIPTION_TOO_LONG = N_("The description is too long: 20,000 characters at most.")
BAD_ROLE = N_("Choose a role from the list for each artist.")
NAME_TOO_LONG = N_("An artist's name is too long: 200 characters at most.")
TOO_MANY_CREDITS = N_("Credit at most 50 artists.")
BAD_VENUE = N_("Choose a venue from the list, or type the name of a new one.")
BAD_DATE = N_("The recording date must be a real date, such as 2025-03-14.")
FUTURE_DATE = N_("The recording date cannot be in the future.")
BAD_SESSION_TYPE = N_("Choose a type from the list.")
BAD_LICENCE = N_("Choose a licence from the list.")
BAD_LANGUAGE = N_("Choose the language from the list.")
TOO_MANY_TAGS = N_("Give at most 30 tags.")
BAD_VISIBILITY = N_("Choose who may see this production.")
BAD_EMBED_POLICY = N_("Choose where its player may be embedded.")
DOWNLOAD_NEEDS_LICENCE = N_(
    "Listeners may save the file only under a licence that lets them share it: choose a "
    "Creative Commons licence or CC0, or untick this box."
)
SETLIST_TOO_LONG = N_("The setlist is too long: 300 lines at most.")
SETLIST_BAD_LINE = N_(
    "Line %(number)s of the setlist (“%(line)s”) does not start with a time such as 1:23 "
    "or 1:02:03 followed by a title."
)
SETLIST_BAD_TIME = N_("Line %(number)s of the setlist (“%(line)s”) has an impossible time.")
SETLIST_AFTER_END = N_(
    "Line %(number)s of the setlist (“%(line)s”) starts after the end of the recording "
    "(%(duration)s)."
)
# Always said of more than SETLIST_ERRORS_SHOWN lines: no singular needed.
SETLIST_MORE_LINES = N_(
    "%(num)s lines of the setlist need a correction; the first %(shown)s are above."
)
# A pasted text that is not a setlist at all would otherwise bury the form under 300 sentences.
SETLIST_ERRORS_SHOWN = 10


@dataclass(frozen=True)
class FieldError:
    """A sentence to show beside a field, with the values it names; ``more`` are the further
    sentences about the same field (each bad line of a setlist, not only the first)."""

    message: str
    values: dict[str, str] = field(default_factory=dict)
    more: tuple[FieldError, ...] = ()

    def sentences(self, lang: str) -> list[str]:
        """Every sentence of this error, in ``lang``."""
        return [_sentence(error, lang) for error in (self, *self.more)]


def _sentence(error: FieldError, lang: str) -> str:
    text = i18n.gettext(error.message, lang)
    return text % error.values if error.values else text


@dataclass
class Changes:
    """A checked form, in the types of the model."""

    title: str
    title_en: str | None
    description: str
    description_en: str | None
    credits: list[tuple[str, str]]
    venue_id: int | None
    venue_name: str | None
    recorded_on: date | None
    session_type: str | None
    licence: str | None
    tags: list[str]
    chapters: list[tuple[str, float]]
    visibility: str
    # None: left as it is (a form that does not hold the field).
    embed_policy: str | None = None
    allow_download: bool = False
    # BCP 47; None: left as it is.
    language: str | None = None
    publish_early: bool = False


def clock(seconds: float) -> str:
    """A setlist time as the form shows it: "1:23", "1:02:03", "1:23.5" (never rounded away)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
    fraction = round(seconds - whole, 3)
    if fraction > 0:
        text += f"{fraction:.3f}".rstrip("0")[1:]
    return text


def _clean(text: str) -> str:
    return " ".join(text.split())


def parse_setlist(
    text: str, duration: float | None
) -> tuple[list[tuple[str, float]], FieldError | None]:
    """Chapters from one "time title" per line (blank lines skipped), in time order; or the
    error naming every line that is not one (the first ten, then how many there are)."""
    chapters: list[tuple[str, float]] = []
    problems: list[FieldError] = []
    lines = text.replace("\r\n", "\n").split("\n")
    if sum(1 for line in lines if line.strip()) > MAX_SETLIST_LINES:
        return [], FieldError(SETLIST_TOO_LONG)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        chapter, problem = _setlist_line(number, line, duration)
        if problem is not None:
            problems.append(problem)
        elif chapter is not None:
            chapters.append(chapter)
    if problems:
        shown = problems[:SETLIST_ERRORS_SHOWN]
        if len(problems) > SETLIST_ERRORS_SHOWN:
            counted = {"num": str(len(problems)), "shown": str(SETLIST_ERRORS_SHOWN)}
            shown.append(FieldError(SETLIST_MORE_LINES, counted))
        return [], FieldError(shown[0].message, shown[0].values, more=tuple(shown[1:]))
    chapters.sort(key=lambda chapter: chapter[1])
    return chapters, None


def _setlist_line(
    number: int, line: str, duration: float | None
) -> tuple[tuple[str, float] | None, FieldError | None]:
    """One non-blank line of a setlist: its chapter, or what is wrong with it."""
    shown = {"number": str(number), "line": line[:80]}
    match = _SETLIST_LINE.fullmatch(line)
    if match is None:
        return None, FieldError(SETLIST_BAD_LINE, shown)
    hours, minutes, secs, title = match.groups()
    seconds = float(secs.replace(",", "."))
    if seconds >= 60 or (hours is not None and int(minutes) >= 60):
        return None, FieldError(SETLIST_BAD_TIME, shown)
    start = int(hours or 0) * 3600 + int(minutes) * 60 + seconds
    if duration is not None and start >= duration:
        return None, FieldError(SETLIST_AFTER_END, {**shown, "duration": clock(int(duration))})
    return (_clean(title)[:MAX_TITLE], start), None


@dataclass
class ProductionForm:
    """The edit form as strings; ``credits`` are (name, role) rows, blank ones included."""

    title: str = ""
    title_en: str = ""
    description: str = ""
    description_en: str = ""
    credits: list[tuple[str, str]] = field(default_factory=list)
    venue_id: str = ""
    venue_new: str = ""
    recorded_on: str = ""
    session_type: str = ""
    licence: str = ""
    language: str = ""
    tags: str = ""
    setlist: str = ""
    visibility: str = "public"
    # Empty when the form did not send it: the production keeps its own.
    embed_policy: str = ""
    # Ticked: listeners may save its file from its page (under a licence that permits it).
    allow_download: bool = False
    # Ticked: everyone who may see it plays it while it is still processing, as soon as its
    # preview plays (cite_live.catalogue.may_play_preview); else its managers alone do.
    publish_early: bool = False
    # The cover's file is not text: it is read beside the form (cite_live.covers.read), and a
    # refused form cannot give it back. Only the choice to drop the chosen cover is kept.
    remove_cover: bool = False

    @classmethod
    def of(cls, production: Production) -> ProductionForm:
        return cls(
            title=production.title,
            title_en=production.title_en or "",
            description=production.description or "",
            description_en=production.description_en or "",
            credits=[(c.artist.name, c.role) for c in production.credits],
            venue_id=str(production.venue_id) if production.venue_id else "",
            recorded_on=production.recorded_on.isoformat() if production.recorded_on else "",
            session_type=production.session_type or "",
            licence=production.licence or "",
            language=production.language,
            tags=", ".join(tag.name for tag in production.tags),
            setlist="\n".join(f"{clock(c.start)} {c.title}" for c in production.chapters),
            # A draft's field is the visibility it will have once published.
            visibility=production.publish_as or production.visibility,
            embed_policy=production.embed_policy,
            allow_download=production.allow_download,
            publish_early=production.publish_early,
        )

    @classmethod
    def read(cls, form: FormData) -> ProductionForm:
        """What was typed, without the control characters no field of ours holds (a NUL would
        not even reach PostgreSQL)."""

        def text(name: str) -> str:
            return params.text(form.get(name)).strip()

        names = [params.text(v) for v in form.getlist("credit_name")]
        roles = [params.text(v) for v in form.getlist("credit_role")]
        roles += [""] * (len(names) - len(roles))
        return cls(
            title=text("title"),
            title_en=text("title_en"),
            description=text("description"),
            description_en=text("description_en"),
            credits=[(_clean(n), r.strip()) for n, r in zip(names, roles, strict=False)],
            # An id is read as it came: a control character in it makes it no id at all.
            venue_id=raw.strip() if isinstance(raw := form.get("venue_id"), str) else "",
            venue_new=_clean(text("venue_new")),
            recorded_on=text("recorded_on"),
            session_type=text("session_type"),
            licence=text("licence"),
            language=text("language"),
            tags=text("tags"),
            setlist=text("setlist"),
            visibility=text("visibility"),
            embed_policy=text("embed_policy"),
            remove_cover=bool(text("remove_cover")),
            allow_download=bool(text("allow_download")),
            publish_early=bool(text("publish_early")),
        )

    def rows(self) -> list[tuple[str, str]]:
        """The credit rows to draw: those typed, then a few blank ones to add more."""
        filled = [row for row in self.credits if row[0]]
        return filled + [("", "performer")] * BLANK_CREDIT_ROWS

    def tag_names(self) -> list[str]:
        return [_clean(name) for name in self.tags.split(",") if _clean(name)]

    def check(  # noqa: C901 - one flat check per field of the form, read top to bottom
        self, session: Session, duration: float | None, today: date
    ) -> tuple[Changes | None, dict[str, FieldError]]:
        errors: dict[str, FieldError] = {}
        if not self.title:
            errors["title"] = FieldError(TITLE_MISSING)
        elif len(self.title) > MAX_TITLE:
            errors["title"] = FieldError(TITLE_TOO_LONG)
        if len(self.title_en) > MAX_TITLE:
            errors["title_en"] = FieldError(TITLE_TOO_LONG)
        for name in ("description", "description_en"):
            if len(getattr(self, name)) > MAX_DESCRIPTION:
                errors[name] = FieldError(DESCRIPTION_TOO_LONG)
        credits = [(name, role) for name, role in self.credits if name]
        if len(credits) > MAX_CREDITS:
            errors["credits"] = FieldError(TOO_MANY_CREDITS)
        elif any(role not in CREDIT_ROLE_LABELS for _, role in credits):
            errors["credits"] = FieldError(BAD_ROLE)
        elif any(len(name) > MAX_NAME for name, _ in credits):
            errors["credits"] = FieldError(NAME_TOO_LONG)
        venue_id, venue_known = self._venue(session)
        if not venue_known or len(self.venue_new) > MAX_NAME:
            errors["venue"] = FieldError(BAD_VENUE)
        recorded_on: date | None = None
        if self.recorded_on:
            try:
                if not _DATE.fullmatch(self.recorded_on):
                    raise ValueError(self.recorded_on)
                recorded_on = date.fromisoformat(self.recorded_on)
            except ValueError:
                errors["recorded_on"] = FieldError(BAD_DATE)
            else:
                if recorded_on > today:
                    errors["recorded_on"] = FieldError(FUTURE_DATE)
                elif recorded_on < EARLIEST_RECORDING:
                    errors["recorded_on"] = FieldError(BAD_DATE)
        if self.session_type and self.session_type not in SESSION_TYPES:
            errors["session_type"] = FieldError(BAD_SESSION_TYPE)
        if self.licence and self.licence not in LICENCES:
            errors["licence"] = FieldError(BAD_LICENCE)
        # One of the list, or the one a file's tag gave it (which the list then shows too): a
        # well-formed BCP 47 tag of 35 characters at most (transcoder.language).
        language = bcp47(self.language) if self.language else None
        if self.language and language is None:
            errors["language"] = FieldError(BAD_LANGUAGE)
        tags = self.tag_names()
        if len(tags) > MAX_TAGS:
            errors["tags"] = FieldError(TOO_MANY_TAGS)
        chapters, setlist_error = parse_setlist(self.setlist, duration)
        if setlist_error is not None:
            errors["setlist"] = setlist_error
        if self.visibility not in VISIBILITIES:
            errors["visibility"] = FieldError(BAD_VISIBILITY)
        if self.embed_policy and self.embed_policy not in EMBED_POLICIES:
            errors["embed_policy"] = FieldError(BAD_EMBED_POLICY)
        if self.allow_download and not may_allow_download(self.licence):
            # "All rights reserved", or no licence said: nobody was given the right to a copy.
            errors["allow_download"] = FieldError(DOWNLOAD_NEEDS_LICENCE)
        if errors:
            return None, errors
        return (
            Changes(
                title=self.title,
                title_en=self.title_en or None,
                description=self.description,
                description_en=self.description_en or None,
                credits=credits,
                venue_id=venue_id,
                venue_name=self.venue_new or None,
                recorded_on=recorded_on,
                session_type=self.session_type or None,
                licence=self.licence or None,
                tags=tags,
                chapters=chapters,
                visibility=self.visibility,
                embed_policy=self.embed_policy or None,
                allow_download=self.allow_download,
                language=language,
                publish_early=self.publish_early,
            ),
            {},
        )

    def _venue(self, session: Session) -> tuple[int | None, bool]:
        """The chosen venue's id (None for none, or when a new one is typed), and whether the
        choice names a venue that exists."""
        if self.venue_new or not self.venue_id:
            return None, True
        venue_id = params.row_id(self.venue_id)
        found = session.get(Venue, venue_id) if venue_id is not None else None
        return (found.id, True) if found is not None else (None, False)


def venue_by_name(session: Session, name: str) -> Venue:
    """The venue whose slug matches ``name``, created when there is none."""
    venue = session.scalars(select(Venue).where(Venue.slug == slugify(name))).first()
    if venue is None:
        venue = Venue(name=name, slug=unique_slug(session, Venue, name), description="")
        session.add(venue)
        session.flush()
    return venue


def apply(session: Session, production: Production, changes: Changes) -> None:
    """Write ``changes`` to ``production``; the search text follows (search.py's listener), and
    its address follows the title (cite_live.catalogue's)."""
    retitle(production, changes.title)
    production.title_en = changes.title_en
    production.description = changes.description
    production.description_en = changes.description_en
    set_credits(session, production, changes.credits)
    if changes.venue_name:
        production.venue = venue_by_name(session, changes.venue_name)
    else:
        production.venue = session.get(Venue, changes.venue_id) if changes.venue_id else None
    production.recorded_on = changes.recorded_on
    production.session_type = changes.session_type
    production.licence = changes.licence
    set_tags(session, production, changes.tags)
    _set_chapters(session, production, changes.chapters)
    if changes.embed_policy is not None:
        production.embed_policy = changes.embed_policy
    production.allow_download = changes.allow_download
    production.publish_early = changes.publish_early
    if changes.language is not None:
        production.language = changes.language
    if production.publish_as is not None:
        # A draft stays private until it is published; then it takes this one.
        production.publish_as = changes.visibility
    else:
        production.visibility = changes.visibility


def _set_chapters(
    session: Session, production: Production, chapters: Sequence[tuple[str, float]]
) -> None:
    current = [(c.title, c.start) for c in production.chapters]
    if current == list(chapters):
        return
    production.chapters.clear()
    session.flush()
    for title, start in chapters:
        production.chapters.append(Chapter(title=title, start=start))
