"""What the counted plays say: per day, per production and per source, over the last days.

A play's source is classified when it is read, not when it is kept: this site's own pages, a
partner site (its origin is one of a partner's, by the mapping the caller passes in), or another
site. A partner who adds an origin later sees its earlier plays under its name.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cite_live.i18n import N_
from cite_live.models import Play, Production, utcnow
from cite_live.partners import list_partners
from cite_live.presenter import title_of

#: The ranges offered, in days; the first page shows the middle one.
RANGES = (7, 30, 90)
DEFAULT_RANGE = 30
BAD_RANGE = N_("The parameter days must be 7, 30 or 90.")
#: The kinds of source, in the order they are shown.
SOURCE_KINDS = ("site", "partner", "other")


@dataclass(frozen=True)
class SourceCount:
    kind: str  # one of SOURCE_KINDS
    name: str | None  # the partner's name; None for the site and for other sites
    plays: int


@dataclass(frozen=True)
class ProductionCount:
    id: str
    title: str
    plays: int
    by_day: Mapping[date, int]


@dataclass(frozen=True)
class PlayStats:
    start: date
    end: date
    total: int
    days: list[tuple[date, int]]  # every day of the range, oldest first, zeros included
    productions: list[ProductionCount]  # most played first
    sources: list[SourceCount]

    @property
    def busiest_day(self) -> int:
        return max((plays for _, plays in self.days), default=0)


def partner_names(session: Session) -> dict[str, str]:
    """{origin: partner name} of the partner sites (cite_live.partners): their origins are kept
    normalized as plays' are."""
    return {
        origin: partner.name for partner in list_partners(session) for origin in partner.origins
    }


def classify(
    source: str, origin: str | None, partners: Mapping[str, str]
) -> tuple[str, str | None]:
    """(kind, partner name) of a play."""
    if source == "site":
        return "site", None
    if origin is not None and origin in partners:
        return "partner", partners[origin]
    return "other", None


def play_stats(
    session: Session,
    *,
    days: int,
    today: date | None = None,
    partners: Mapping[str, str] | None = None,
    owner_id: int | None = None,
    production_id: str | None = None,
    lang: str = "fr",
) -> PlayStats:
    """The plays of the ``days`` days up to ``today`` (by default, today in UTC): of the
    productions ``owner_id`` uploaded (every production when None), or of ``production_id``
    alone among them. ``partners`` maps a normalized origin (``scheme://host[:port]``) to its
    partner's name; by default, the partner sites the admins list."""
    today = today or utcnow().date()
    partners = partner_names(session) if partners is None else partners
    start = today - timedelta(days=days - 1)
    query = (
        select(Play.production_id, Play.day, Play.source, Play.origin, func.count())
        .join(Production, Production.id == Play.production_id)
        .where(Play.day >= start, Play.day <= today)
        .group_by(Play.production_id, Play.day, Play.source, Play.origin)
    )
    if owner_id is not None:
        query = query.where(Production.owner_id == owner_id)
    if production_id is not None:
        query = query.where(Play.production_id == production_id)
    per_day: Counter[date] = Counter()
    per_production: dict[str, Counter[date]] = defaultdict(Counter)
    per_source: Counter[tuple[str, str | None]] = Counter()
    for pid, day, source, origin, count in session.execute(query):
        per_day[day] += count
        per_production[pid][day] += count
        per_source[classify(source, origin, partners)] += count
    titles = {
        p.id: title_of(p, lang)
        for p in session.scalars(select(Production).where(Production.id.in_(per_production)))
    }
    productions = sorted(
        (
            ProductionCount(pid, titles.get(pid, pid), sum(counts.values()), dict(counts))
            for pid, counts in per_production.items()
        ),
        key=lambda p: (-p.plays, p.title.casefold(), p.id),
    )
    sources = [
        SourceCount(kind, name, plays)
        for (kind, name), plays in sorted(
            per_source.items(),
            key=lambda item: (SOURCE_KINDS.index(item[0][0]), -item[1], item[0][1] or ""),
        )
    ]
    return PlayStats(
        start=start,
        end=today,
        total=sum(per_day.values()),
        days=[(start + timedelta(days=i), per_day[start + timedelta(days=i)]) for i in range(days)],
        productions=productions,
        sources=sources,
    )


def stats_json(stats: PlayStats) -> dict[str, object]:
    """The API's object (``GET /api/v1/me/stats``)."""
    return {
        "from": stats.start.isoformat(),
        "to": stats.end.isoformat(),
        "total": stats.total,
        "by_day": [{"day": day.isoformat(), "plays": plays} for day, plays in stats.days],
        "productions": [
            {
                "id": p.id,
                "title": p.title,
                "plays": p.plays,
                "by_day": [
                    {"day": day.isoformat(), "plays": plays}
                    for day, plays in sorted(p.by_day.items())
                ],
            }
            for p in stats.productions
        ],
        "sources": [{"kind": s.kind, "name": s.name, "plays": s.plays} for s in stats.sources],
    }
