"""Accounts: users, their passwords, API tokens and invitations.

Domain functions take the caller's SQLAlchemy session and never commit. Hashing a password costs
about 100 ms of CPU at the production settings: web handlers call the functions that hash or
verify from a worker thread (``starlette.concurrency.run_in_threadpool``), never on the event loop.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cite_live.i18n import N_
from cite_live.models import ROLES, ApiToken, Artist, Invitation, User
from cite_live.settings import KEYS, AuthSettings, Settings

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_EMAIL = 320
TOKEN_PREFIX = "clw_"
# What an account holder sees of a token to tell several apart (prefix + 8 random characters).
TOKEN_SHOWN = 12
INVITATION_DAYS = 7
# A token used many times a second is written back at most this often.
LAST_USED_PRECISION = timedelta(minutes=1)


class AccountError(Exception):
    """A request about an account that cannot be done; ``message`` is one plain sentence."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- passwords -----------------------------------------------------------------------------------


def _default(name: str) -> int:
    return int(next(k.default for k in KEYS if k.section == "auth" and k.name == name))


@functools.cache
def _hasher(memory_kib: int, time_cost: int) -> PasswordHasher:
    return PasswordHasher(memory_cost=memory_kib, time_cost=time_cost)


Cost = Settings | AuthSettings | None


def password_hasher(settings: Cost) -> PasswordHasher:
    """The hasher of these settings, made once per process (the production cost without any)."""
    auth = settings.auth if isinstance(settings, Settings) else settings
    if auth is None:
        return _hasher(_default("argon2_memory_kib"), _default("argon2_time_cost"))
    return _hasher(auth.argon2_memory_kib, auth.argon2_time_cost)


def hash_password(settings: Cost, password: str) -> str:
    return password_hasher(settings).hash(password)


def verify_password(settings: Cost, password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an account without a password matches nothing."""
    hasher = password_hasher(settings)
    if not password_hash:
        # Spend the same time as a real check, so that answers do not tell which accounts exist.
        with contextlib.suppress(VerificationError):
            hasher.verify(_dummy_hash(hasher), password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy_hash(hasher: PasswordHasher) -> str:
    return _dummy_hashes(hasher.memory_cost, hasher.time_cost)


@functools.cache
def _dummy_hashes(memory_kib: int, time_cost: int) -> str:
    return _hasher(memory_kib, time_cost).hash(secrets.token_urlsafe(16))


def password_problem(password: str, email: str) -> str | None:
    """Why ``password`` cannot be chosen (an untranslated sentence), or None."""
    if len(password) < MIN_PASSWORD:
        return N_("The password must be at least 10 characters long.")
    if len(password) > MAX_PASSWORD:
        return N_("The password must be at most 1024 characters long.")
    if password.strip().lower() == email.strip().lower():
        return N_("The password must not be your email address.")
    return None


def set_password(settings: Cost, user: User, password: str) -> None:
    """Choose a new password; every existing session of ``user`` ends (the epoch moves on)."""
    problem = password_problem(password, user.email)
    if problem:
        raise AccountError(problem)
    user.password_hash = hash_password(settings, password)
    user.auth_epoch = (user.auth_epoch or 0) + 1


def authenticate(session: Session, settings: Cost, email: str, password: str) -> User | None:
    """The enabled account ``email`` if ``password`` is its password, else None.

    A hash made with weaker settings than today's is replaced on the way in."""
    user = find_user(session, email)
    if user is None or user.disabled:
        verify_password(settings, None, password)
        return None
    if not verify_password(settings, user.password_hash, password):
        return None
    assert user.password_hash is not None
    if password_hasher(settings).check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(settings, password)
    user.last_login_at = datetime.now(UTC)
    return user


# --- users ---------------------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The stored form of an address: trimmed and lower-cased; AccountError when not one."""
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or len(email) > MAX_EMAIL or " " in email:
        raise AccountError(N_("This is not an email address."))
    return email


def find_user(session: Session, email: str) -> User | None:
    try:
        address = normalize_email(email)
    except AccountError:
        return None
    return session.scalars(select(User).where(User.email == address)).first()


def create_user(
    session: Session,
    email: str,
    role: str,
    *,
    password: str | None = None,
    artist_ids: Iterable[int] = (),
    settings: Cost = None,
) -> User:
    """A new account; without a password, it waits for an invitation to be accepted.

    ``settings`` give the hashing cost (the production cost when omitted)."""
    address = normalize_email(email)
    if role not in ROLES:
        raise AccountError(N_("The role must be admin or artist."))
    if find_user(session, address) is not None:
        raise AccountError(N_("An account with this email address already exists."))
    user = User(email=address, role=role, auth_epoch=0, disabled=False)
    if password is not None:
        problem = password_problem(password, address)
        if problem:
            raise AccountError(problem)
        user.password_hash = hash_password(settings, password)
    ids = sorted(set(artist_ids))
    if ids:
        user.artists = list(session.scalars(select(Artist).where(Artist.id.in_(ids))))
        if len(user.artists) != len(ids):
            raise AccountError(N_("One of these artist profiles does not exist."))
    session.add(user)
    session.flush()
    return user


# --- API tokens ----------------------------------------------------------------------------------


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, user: User, name: str = "") -> str:
    """A new Bearer token for ``user``: the plain token, shown once (only its hash is kept)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            user_id=user.id,
            name=" ".join(name.split())[:100],
            token_hash=_digest(token),
            prefix=token[:TOKEN_SHOWN],
        )
    )
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The enabled account of a token that is not revoked, noting when it was last used."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == _digest(token))
    ).first()
    if row is None:
        return None
    api_token, user = row
    if api_token.revoked_at is not None or user.disabled:
        return None
    now = datetime.now(UTC)
    last = _aware(api_token.last_used_at)
    if last is None or now - last >= LAST_USED_PRECISION:
        # Conditional: of the requests that read the same old value at once, one writes.
        stale = ApiToken.last_used_at.is_(None) | (
            ApiToken.last_used_at <= now - LAST_USED_PRECISION
        )
        session.execute(
            update(ApiToken)
            .where(ApiToken.id == api_token.id, stale)
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
    return user


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    """The tokens an account can still use, newest first."""
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
            .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        )
    )


def revoke_token(session: Session, user_id: int, token_id: int) -> bool:
    """Revoke one of ``user_id``'s tokens; False when it has no such live token."""
    api_token = session.get(ApiToken, token_id)
    if api_token is None or api_token.user_id != user_id or api_token.revoked_at is not None:
        return False
    api_token.revoked_at = datetime.now(UTC)
    return True


# --- invitations ---------------------------------------------------------------------------------


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite gives back naive datetimes; every moment stored here is UTC.
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def create_invitation(session: Session, user: User) -> str:
    """A one-time secret for ``user`` to choose a password at ``/invite/{secret}`` (7 days).

    Earlier invitations of the same account stop working: only the newest link is valid."""
    now = datetime.now(UTC)
    for earlier in session.scalars(
        select(Invitation).where(Invitation.user_id == user.id, Invitation.used_at.is_(None))
    ):
        earlier.used_at = now
    secret = secrets.token_urlsafe(32)
    session.add(
        Invitation(
            user_id=user.id,
            token_hash=_digest(secret),
            expires_at=now + timedelta(days=INVITATION_DAYS),
        )
    )
    session.flush()
    return secret


def invitation_url(site_url: str, secret: str) -> str:
    return f"{site_url.rstrip('/')}/invite/{secret}"


def pending_invitation(session: Session, secret: str) -> Invitation | None:
    """The unused, unexpired invitation of ``secret`` whose account is enabled, or None."""
    if not secret or len(secret) > 200:
        return None
    invitation = session.scalars(
        select(Invitation).where(Invitation.token_hash == _digest(secret))
    ).first()
    if invitation is None or invitation.used_at is not None:
        return None
    expires = _aware(invitation.expires_at)
    if expires is None or expires <= datetime.now(UTC) or invitation.user.disabled:
        return None
    return invitation


def accept_invitation(session: Session, settings: Cost, secret: str, password: str) -> User:
    """Set the invited account's password and spend the invitation."""
    invitation = pending_invitation(session, secret)
    if invitation is None:
        raise AccountError(N_("This invitation link has expired or has already been used."))
    user = invitation.user
    set_password(settings, user, password)
    now = datetime.now(UTC)
    invitation.used_at = now
    user.last_login_at = now
    return user
