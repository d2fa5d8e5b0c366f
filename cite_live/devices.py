"""The devices signed in to an account: one ``user_sessions`` row each.

A session cookie holds a random secret; the row keeps its SHA-256, when the device signed in,
when it was last seen and what browser it is. Signing a device out deletes its row, so a copy of
its cookie taken before is refused afterwards; ending every session of an account (sign out of
all devices, a new password, an account disabled) deletes them all.

Reading the session of a request is one lookup by a unique index, joined to its account; the
time it was last seen is written back at most every :data:`SEEN_PRECISION`, not on every
request. Domain functions take the caller's SQLAlchemy session and never commit.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cite_live.db import changed, rowcount
from cite_live.models import User, UserSession, aware

# A device seen again within this time is not written back.
SEEN_PRECISION = timedelta(minutes=5)
MAX_SECRET = 200
# How much of a User-Agent header is looked at.
_AGENT_READ = 512
# (what the header holds, the name shown), first match wins: Edge and Opera say "Chrome" too,
# and every Chrome says "Safari".
_BROWSERS = (
    ("Edg", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)
_SYSTEMS = (
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("Windows", "Windows"),
    ("CrOS", "ChromeOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def device_name(user_agent: str) -> str:
    """What a person recognises of a User-Agent header: "Firefox · Linux"; "" when neither
    the browser nor the system is known."""
    agent = user_agent[:_AGENT_READ]
    browser = next((name for mark, name in _BROWSERS if mark in agent), "")
    system = next((name for mark, name in _SYSTEMS if mark in agent), "")
    return " · ".join(part for part in (browser, system) if part)


def start(session: Session, user_id: int, user_agent: str, lifetime: timedelta) -> tuple[int, str]:
    """A new session of ``user_id``: its row id and the secret for the cookie (shown once).
    The account's sessions older than ``lifetime`` are cleared away on the way."""
    now = datetime.now(UTC)
    session.execute(
        delete(UserSession).where(
            UserSession.user_id == user_id, UserSession.created_at <= now - lifetime
        )
    )
    secret = secrets.token_urlsafe(32)
    row = UserSession(
        user_id=user_id,
        token_hash=_digest(secret),
        created_at=now,
        last_seen_at=now,
        device=device_name(user_agent),
    )
    session.add(row)
    session.flush()
    return row.id, secret


def find(session: Session, secret: str, lifetime: timedelta) -> tuple[UserSession, User] | None:
    """The live session of ``secret`` and its enabled account, noting that it was seen."""
    if not secret or len(secret) > MAX_SECRET:
        return None
    found = session.execute(
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == _digest(secret))
    ).first()
    if found is None:
        return None
    row, user = found
    now = datetime.now(UTC)
    if user.disabled or aware(row.created_at) <= now - lifetime:
        return None
    if now - aware(row.last_seen_at) >= SEEN_PRECISION:
        # Conditional: of the requests that read the same old value at once, one writes.
        session.execute(
            update(UserSession)
            .where(UserSession.id == row.id, UserSession.last_seen_at <= now - SEEN_PRECISION)
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
    return row, user


def of_user(session: Session, user_id: int, lifetime: timedelta) -> list[UserSession]:
    """The live sessions of ``user_id``, the most recently seen first."""
    oldest = datetime.now(UTC) - lifetime
    return list(
        session.scalars(
            select(UserSession)
            .where(UserSession.user_id == user_id, UserSession.created_at > oldest)
            .order_by(UserSession.last_seen_at.desc(), UserSession.id.desc())
        )
    )


def end(session: Session, user_id: int, session_id: int) -> bool:
    """Sign out one device of ``user_id``; False when it has no such session."""
    ended = session.execute(
        delete(UserSession).where(UserSession.id == session_id, UserSession.user_id == user_id)
    )
    return changed(ended)


def end_all(session: Session, user_id: int, keep: int | None = None) -> None:
    """Sign out every device of ``user_id``, but the session ``keep`` (this device's)."""
    statement = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(UserSession.id != keep)
    session.execute(statement)


def sweep(session: Session, lifetime: timedelta) -> int:
    """Forget the sessions of every account older than ``lifetime``, which no cookie opens any
    more: how many."""
    oldest = datetime.now(UTC) - lifetime
    return rowcount(session.execute(delete(UserSession).where(UserSession.created_at <= oldest)))
