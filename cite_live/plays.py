"""Plays, counted honestly: one per playback session that was really heard, without cookies and
without storing anyone's address.

The player sends one beacon per playback session once 30 s (or half of a shorter recording)
have been heard (web/static/js/plays.js). Here a beacon is checked and kept:

- visitors are told apart within one day by a hash of (address, user agent, production) mixed
  with that day's random salt (``play_salts``); the salt is deleted once its day is over, after
  which nobody — not even this database's owner — can tell whose hash a row holds;
- the same beacon twice (a replay, the page sending it again) is one play: the row's ``dedupe``
  key, the hash of the production and the playback id, is unique;
- known crawlers (the maintained list of the ``crawler-user-agents`` package) count for nothing.

What a beacon says cannot be proven: anyone may send one by hand, with any origin. The counts are
what browsers reported, bounded per address by the caller's rate limit (cite_live.web.plays).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import crawleruseragents
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cite_live import partners
from cite_live.models import Play, PlaySalt, Production, utcnow
from cite_live.services import Services

SOURCES = ("site", "embed")
FIELDS = frozenset({"production", "playback", "source", "origin"})
#: A play counts once this much has been heard, or half of a shorter recording.
THRESHOLD_SECONDS = 30.0
#: The largest beacon read, in bytes: the four fields below fit in a few hundred.
MAX_BEACON_BYTES = 1024
MAX_ORIGIN_LENGTH = 300
#: Only the start of a user agent is matched: crawlers name themselves early, and a 10 KB header
#: must not cost 10 KB of regex.
MAX_USER_AGENT_LENGTH = 512

_PLAYBACK = re.compile(r"[A-Za-z0-9_-]{16,64}")
_ADDRESS = re.compile(r"[A-Za-z0-9_-]{1,220}")


class BadBeacon(ValueError):
    """A beacon that is not what the player sends: one sentence saying why."""


@dataclass(frozen=True)
class Beacon:
    """What the player sends, checked."""

    production: str
    playback: str
    source: str
    origin: str | None


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` as partner sites' origins are kept (lower case, without the
    scheme's default port: cite_live.partners.normalize_origin), so that a play finds its
    partner; None for anything else, and for what no browser reports (spaces around it, a host
    not in its ASCII form)."""
    if not value.isascii() or value != value.strip():
        return None
    try:
        return partners.normalize_origin(value)
    except partners.PartnerError:
        return None


def parse_beacon(data: Any, own_origin: str | None) -> Beacon:
    """The beacon in ``data`` (the decoded JSON body), or :class:`BadBeacon`. An embed on this
    site's own pages is a play of the site."""
    if not isinstance(data, dict) or not set(data) <= {
        "production",
        "playback",
        "source",
        "origin",
    }:
        raise BadBeacon("The body must be an object of production, playback, source and origin.")
    production, playback = data.get("production"), data.get("playback")
    source, origin = data.get("source"), data.get("origin")
    if not isinstance(production, str) or not _ADDRESS.fullmatch(production):
        raise BadBeacon("production must be the production's identifier or address.")
    if not isinstance(playback, str) or not _PLAYBACK.fullmatch(playback):
        raise BadBeacon("playback must be 16 to 64 letters, digits, - or _.")
    if source not in SOURCES:
        raise BadBeacon("source must be site or embed.")
    if origin is not None and (not isinstance(origin, str) or len(origin) > MAX_ORIGIN_LENGTH):
        raise BadBeacon("origin must be a scheme://host[:port] address, or null.")
    normalized = normalize_origin(origin) if origin else None
    if origin and normalized is None:
        raise BadBeacon("origin must be a scheme://host[:port] address, or null.")
    if source == "site" and normalized not in (None, own_origin):
        raise BadBeacon("A play of this site has no origin.")
    if source == "site" or normalized == own_origin:
        return Beacon(production, playback, "site", None)
    return Beacon(production, playback, "embed", normalized)


# --- crawlers ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _crawler_patterns() -> tuple[re.Pattern[str], ...]:
    """The list's patterns, compiled once, in chunks: Python's engine tries each branch of an
    alternation at every position, and one alternation of all 1,500 costs 0.7 ms on a browser's
    user agent, against about 0.13 ms for chunks of 25 (the package's own measure)."""
    patterns = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    return tuple(re.compile("|".join(patterns[i : i + 25])) for i in range(0, len(patterns), 25))


@lru_cache(maxsize=4096)
def is_crawler(user_agent: str) -> bool:
    """Whether ``user_agent`` is a known crawler's (or empty: no listener's browser sends none).
    Visitors bring few distinct user agents: each is matched once, then remembered."""
    head = user_agent[:MAX_USER_AGENT_LENGTH]
    if not head.strip():
        return True
    return any(pattern.search(head) for pattern in _crawler_patterns())


# --- salts and hashes ----------------------------------------------------------------------------


def _sha256(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def salt_of(session: Session, day: date) -> str:
    """The salt of ``day``, made when the day's first play comes; the salts of the days before
    are deleted then (and with them any way back from a hash to a visitor)."""
    salt = session.get(PlaySalt, day)
    if salt is not None:
        return salt.salt
    try:
        with session.begin_nested():
            session.add(PlaySalt(day=day, salt=secrets.token_hex(32)))
    except IntegrityError:
        pass  # another request made it at the same moment: theirs is the day's
    forget_old_salts(session, day)
    found = session.get(PlaySalt, day, populate_existing=True)
    assert found is not None
    return found.salt


def visitor_hash(salt: str, address: str, user_agent: str, production_id: str) -> str:
    return _sha256(salt, address, user_agent, production_id)


def dedupe_key(production_id: str, playback: str) -> str:
    # The playback id is random and drawn by the page: its hash links to no one, and stays the
    # same across midnight, so that a beacon replayed the next day is still one play.
    return _sha256(production_id, playback)


# --- counting ------------------------------------------------------------------------------------


def countable(production: Production, *, by_address: bool) -> bool:
    """Plays count for what anyone may hear: a ready production, public, or unlisted when named
    by its secret address. A draft, a private production, one processing or failed: never,
    whoever plays it (its owner previewing it included)."""
    if production.status != "ready" or production.publish_as is not None:
        return False
    if production.visibility == "public":
        return True
    return production.visibility == "unlisted" and by_address


def record_play(
    session: Session,
    production_id: str,
    beacon: Beacon,
    *,
    address: str,
    user_agent: str,
    now: datetime | None = None,
) -> bool:
    """Count ``beacon`` for ``production_id`` (already checked countable); False when the same
    beacon was counted before. Commits."""
    moment = now or utcnow()
    day = moment.date()
    salt = salt_of(session, day)
    session.commit()
    play = Play(
        production_id=production_id,
        day=day,
        visitor=visitor_hash(salt, address, user_agent[:MAX_USER_AGENT_LENGTH], production_id),
        dedupe=dedupe_key(production_id, beacon.playback),
        source=beacon.source,
        origin=beacon.origin,
        created_at=moment,
    )
    session.add(play)
    try:
        session.commit()
    except IntegrityError:
        # The unique key refused it: the same beacon, counted already (or at this very moment
        # by another request, which PostgreSQL made this one wait for).
        session.rollback()
        return False
    return True


def forget_old_salts(session: Session, today: date) -> int:
    """Delete the salts of the days before ``today`` (how many)."""
    result = session.execute(delete(PlaySalt).where(PlaySalt.day < today))
    return int(getattr(result, "rowcount", 0) or 0)


def forget_earlier_salts(services: Services, now: datetime | None = None) -> int:
    """The maintenance task: the salts of the days before today (UTC) deleted (how many)."""
    with services.sessions.begin() as session:
        return forget_old_salts(session, (now or utcnow()).date())
