"""Accounts: users, their passwords, API tokens, invitations and new-password links, and the
messages that carry these links.

Domain functions take the caller's SQLAlchemy session and never commit. Hashing or checking a
password costs about 100 ms of CPU at the production settings, so the functions that do
(:func:`check_password`, :func:`new_password_hash`) take no session: web handlers read what they
need, give the connection back, hash in a worker thread, then write in a new session.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from slugify import slugify
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from cite_live import devices, i18n
from cite_live.db import changed, rowcount
from cite_live.i18n import N_
from cite_live.mail import Letter
from cite_live.models import ApiToken, Artist, Invitation, PasswordReset, User, aware, user_artists
from cite_live.settings import KEYS, AuthSettings, Settings
from cite_live.vocabulary import ROLES
from cite_live.web.urls import Urls

MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_EMAIL = 320
TOKEN_PREFIX = "clw_"  # noqa: S105 - the public prefix every token shows, not a secret
# What an account holder sees of a token to tell several apart (prefix + 8 random characters).
TOKEN_SHOWN = 12
INVITATION_DAYS = 7
RESET_MINUTES = 60
# A token used many times a second is written back at most this often.
LAST_USED_PRECISION = timedelta(minutes=1)


class AccountError(Exception):
    """A request about an account that cannot be done; ``message`` is one plain sentence,
    ``hints`` more sentences that say how to do better (all untranslated)."""

    def __init__(self, message: str, hints: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hints = hints

    def explain(self, lang: str) -> str:
        """The message and its hints in ``lang``."""
        return " ".join(i18n.gettext(sentence, lang) for sentence in (self.message, *self.hints))


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


# The estimator's "safely unguessable" (about 10^10 guesses): beyond an online attack, and
# beyond an offline one against argon2 at the production cost.
STRONG_SCORE = 3
# How much of a password the estimator looks at (its own limit; its time grows with length).
ESTIMATED_LENGTH = 72
TOO_EASY = N_("This password is too easy to guess.")
# Every sentence the estimator gives as feedback, here for the catalogues to translate
# (tests/test_accounts.py checks this list against the estimator's source).
STRENGTH_FEEDBACK = (
    N_("Use a few words, avoid common phrases."),
    N_("No need for symbols, digits, or uppercase letters."),
    N_("Add another word or two. Uncommon words are better."),
    N_("Straight rows of keys are easy to guess."),
    N_("Short keyboard patterns are easy to guess."),
    N_("Use a longer keyboard pattern with more turns."),
    N_('Repeats like "aaa" are easy to guess.'),
    N_('Repeats like "abcabcabc" are only slightly harder to guess than "abc".'),
    N_("Avoid repeated words and characters."),
    N_('Sequences like "abc" or "6543" are easy to guess.'),
    N_("Avoid sequences."),
    N_("Recent years are easy to guess."),
    N_("Avoid recent years."),
    N_("Avoid years that are associated with you."),
    N_("Dates are often easy to guess."),
    N_("Avoid dates and years that are associated with you."),
    N_("This is a top-10 common password."),
    N_("This is a top-100 common password."),
    N_("This is a very common password."),
    N_("This is similar to a commonly used password."),
    N_("A word by itself is easy to guess."),
    N_("Names and surnames by themselves are easy to guess."),
    N_("Common names and surnames are easy to guess."),
    N_("Capitalization doesn't help very much."),
    N_("All-uppercase is almost as easy to guess as all-lowercase."),
    N_("Reversed words aren't much harder to guess."),
    N_("Predictable substitutions like '@' instead of 'a' don't help very much."),
)
# Words anyone would try against an account of this site.
SITE_WORDS = ("cite live", "citelive", "cite", "cité")
# The estimator keeps the words of the call it is making in a module-level dictionary.
_estimating = threading.Lock()


def personal_words(email: str, names: Iterable[str] = ()) -> list[str]:
    """What an attacker knows of an account: its address and its artists' names, whole, run
    together and word by word, with and without accents."""
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    words = {email, local, domain, *re.split(r"[^\w]+", local), *domain.split("."), *SITE_WORDS}
    for name in names:
        for form in (name.lower(), slugify(name, separator=" ")):
            words.update((form, form.replace(" ", ""), *form.split()))
    return sorted(word for word in words if len(word) >= 3)


def password_problem(password: str, email: str, names: Iterable[str] = ()) -> AccountError | None:
    """Why ``password`` cannot be chosen by the account ``email`` (whose artists are ``names``),
    or None."""
    if len(password) < MIN_PASSWORD:
        return AccountError(N_("The password must be at least 10 characters long."))
    if len(password) > MAX_PASSWORD:
        return AccountError(N_("The password must be at most 1024 characters long."))
    if password.strip().lower() == email.strip().lower():
        return AccountError(N_("The password must not be your email address."))
    with _estimating:
        estimate = zxcvbn(password[:ESTIMATED_LENGTH], user_inputs=personal_words(email, names))
    if estimate["score"] >= STRONG_SCORE:
        return None
    feedback = estimate["feedback"]
    hints = tuple(str(s) for s in (feedback["warning"], *feedback["suggestions"]) if s)
    return AccountError(TOO_EASY, hints)


def new_password_hash(settings: Cost, password: str, email: str, names: Iterable[str] = ()) -> str:
    """The hash to keep for a password the account chooses; AccountError saying why it cannot.
    Costs an argon2 hash: call it with no database session open."""
    problem = password_problem(password, email, names)
    if problem is not None:
        raise problem
    return hash_password(settings, password)


def artist_names(user: User) -> list[str]:
    return [artist.name for artist in user.artists]


def set_password_hash(
    session: Session, user: User, password_hash: str, *, keep: int | None = None
) -> None:
    """Keep a new password (from :func:`new_password_hash`). Every session of ``user`` ends
    but ``keep`` (the device that chose it), and every link to choose a password that is still
    pending, invitation or reset, stops working."""
    user.password_hash = password_hash
    devices.end_all(session, user.id, keep=keep)
    now = datetime.now(UTC)
    for link in (Invitation, PasswordReset):
        session.execute(
            update(link)
            .where(link.user_id == user.id, link.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )


@dataclass(frozen=True)
class StoredPassword:
    """What checking a password needs of an account, read before the check so that no
    database connection waits for argon2."""

    user_id: int
    password_hash: str | None


def stored_password(session: Session, email: str) -> StoredPassword | None:
    """The stored password of the enabled account ``email``, or None."""
    user = find_user(session, email)
    if user is None or user.disabled:
        return None
    return StoredPassword(user.id, user.password_hash)


def check_password(settings: Cost, stored: StoredPassword | None, password: str) -> str | None:
    """None when ``password`` is not the account's; else the hash to keep from now on: the same,
    or a new one when it was made with weaker settings than today's. No session needed."""
    if stored is None:
        verify_password(settings, None, password)
        return None
    if not verify_password(settings, stored.password_hash, password):
        return None
    assert stored.password_hash is not None
    if password_hasher(settings).check_needs_rehash(stored.password_hash):
        return hash_password(settings, password)
    return stored.password_hash


def record_login(session: Session, stored: StoredPassword, password_hash: str) -> User | None:
    """Note a sign-in that :func:`check_password` accepted; None when the account changed since
    it was read (disabled, or its password changed)."""
    user = session.get(User, stored.user_id)
    if user is None or user.disabled or user.password_hash != stored.password_hash:
        return None
    user.password_hash = password_hash
    user.last_login_at = datetime.now(UTC)
    return user


# --- users ---------------------------------------------------------------------------------------


# Never stored, and PostgreSQL refuses NUL in text outright.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalize_email(email: str) -> str:
    """The stored form of an address: trimmed and lower-cased; AccountError when not one."""
    email = email.strip().lower()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(email) > MAX_EMAIL
        or " " in email
        or _CONTROL.search(email)
    ):
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

    ``settings`` give the hashing cost (the production cost when omitted). With a password,
    argon2 runs inside the caller's session: for the command line, not for web handlers."""
    address = normalize_email(email)
    if role not in ROLES:
        raise AccountError(N_("The role must be admin or artist."))
    if find_user(session, address) is not None:
        raise AccountError(N_("An account with this email address already exists."))
    user = User(email=address, role=role, disabled=False)
    ids = sorted(set(artist_ids))
    if ids:
        user.artists = list(session.scalars(select(Artist).where(Artist.id.in_(ids))))
        if len(user.artists) != len(ids):
            raise AccountError(N_("One of these artist profiles does not exist."))
    if password is not None:
        user.password_hash = new_password_hash(settings, password, address, artist_names(user))
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
            name=_CONTROL.sub("", " ".join(name.split()))[:100],
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
    last = aware(api_token.last_used_at) if api_token.last_used_at is not None else None
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


# --- invitations and new-password links ---------------------------------------------------------

# An invitation (an admin's, for a new account) and a reset (the holder's, for a forgotten
# password) are both a secret link of which only the SHA-256 is kept, spent once.
OneTimeLink = TypeVar("OneTimeLink", Invitation, PasswordReset)
INVITATION_GONE = N_("This invitation link has expired or has already been used.")
RESET_GONE = N_(
    "This link to choose a new password has expired or has already been used; ask for another."
)


def sweep_resets(session: Session) -> int:
    """Forget the new-password links that are spent or expired: they open nothing any more, and
    the page a forgotten one leads to says so as for one made up. How many."""
    spent = PasswordReset.used_at.is_not(None) | (PasswordReset.expires_at <= datetime.now(UTC))
    return rowcount(session.execute(delete(PasswordReset).where(spent)))


def _new_link(session: Session, kind: type[OneTimeLink], user: User, lifetime: timedelta) -> str:
    """A one-time secret for ``user``; the earlier pending links of the same kind stop
    working: only the newest is valid."""
    now = datetime.now(UTC)
    session.execute(
        update(kind)
        .where(kind.user_id == user.id, kind.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    secret = secrets.token_urlsafe(32)
    session.add(
        kind(user_id=user.id, token_hash=_digest(secret), created_at=now, expires_at=now + lifetime)
    )
    session.flush()
    return secret


def _pending(session: Session, kind: type[OneTimeLink], secret: str) -> OneTimeLink | None:
    """The unused, unexpired link of ``secret`` whose account is enabled, or None."""
    if not secret or len(secret) > 200:
        return None
    link = session.scalars(select(kind).where(kind.token_hash == _digest(secret))).first()
    if link is None or link.used_at is not None:
        return None
    if aware(link.expires_at) <= datetime.now(UTC) or link.user.disabled:
        return None
    return link


def _spend(session: Session, kind: type[OneTimeLink], secret: str, gone: str) -> User:
    """Spend the pending link of ``secret``: its account; AccountError(``gone``) when it is no
    longer pending."""
    link = _pending(session, kind, secret)
    if link is None:
        raise AccountError(gone)
    now = datetime.now(UTC)
    # Spent by a conditional UPDATE: of two uses of one link at the same moment, which both
    # read it pending, the second finds nothing left to update (it waits for the first's row
    # lock, then sees its commit) and sets no password.
    spent = session.execute(
        update(kind)
        .where(kind.id == link.id, kind.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if not changed(spent):
        raise AccountError(gone)
    link.used_at = now
    return link.user


def create_invitation(session: Session, user: User) -> str:
    """A one-time secret for ``user`` to choose a password at ``/invite/{secret}`` (7 days).

    Earlier invitations of the same account stop working: only the newest link is valid."""
    return _new_link(session, Invitation, user, timedelta(days=INVITATION_DAYS))


def invitation_url(site_url: str, secret: str) -> str:
    urls = Urls(site_url)
    return urls.absolute(urls.invite(secret))


def pending_invitation(session: Session, secret: str) -> Invitation | None:
    """The unused, unexpired invitation of ``secret`` whose account is enabled, or None."""
    return _pending(session, Invitation, secret)


def accept_invitation(session: Session, secret: str, password_hash: str) -> User:
    """Keep the invited account's new password (from :func:`new_password_hash`) and spend the
    invitation; AccountError when it is no longer pending. No session of the account is left:
    the caller starts this device's."""
    user = _spend(session, Invitation, secret, INVITATION_GONE)
    set_password_hash(session, user, password_hash)
    user.last_login_at = datetime.now(UTC)
    return user


def request_reset(session: Session, email: str) -> tuple[User, str] | None:
    """A new-password link for the enabled account of ``email`` (an hour): the account and
    the secret; None when there is no such account. An account still waiting for its
    invitation to be accepted may use one too: it proves the address the same way."""
    user = find_user(session, email)
    if user is None or user.disabled:
        return None
    return user, _new_link(session, PasswordReset, user, timedelta(minutes=RESET_MINUTES))


def reset_url(site_url: str, secret: str) -> str:
    urls = Urls(site_url)
    return urls.absolute(urls.password_reset(secret))


def pending_reset(session: Session, secret: str) -> PasswordReset | None:
    """The unused, unexpired new-password link of ``secret`` whose account is enabled."""
    return _pending(session, PasswordReset, secret)


def accept_reset(session: Session, secret: str, password_hash: str) -> User:
    """Keep the new password chosen through a reset link and spend the link; every session of
    the account ends (the caller starts this device's). AccountError when it is no longer
    pending."""
    user = _spend(session, PasswordReset, secret, RESET_GONE)
    set_password_hash(session, user, password_hash)
    user.last_login_at = datetime.now(UTC)
    return user


# --- the messages that carry the links -----------------------------------------------------------


def invitation_letter(email: str, link: str, lang: str) -> Letter:
    """The message of an invitation, in ``lang``."""
    lang = lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE
    days = INVITATION_DAYS
    return Letter(
        to=email,
        lang=lang,
        subject=i18n.gettext(N_("Your invitation to Cité Live"), lang),
        before=(
            i18n.gettext(
                N_(
                    "An account has been made for you on Cité Live, the site of the recordings "
                    "of the Cité de la Musique: %(email)s."
                ),
                lang,
            )
            % {"email": email},
            i18n.ngettext(
                "Choose your password with this link; it works once, for %(num)s day.",
                "Choose your password with this link; it works once, for %(num)s days.",
                days,
                lang,
            )
            % {"num": days},
        ),
        action=i18n.gettext(N_("Choose my password"), lang),
        link=link,
        after=(i18n.gettext(N_("If you were not expecting this message, ignore it."), lang),),
    )


def reset_letter(email: str, link: str, lang: str) -> Letter:
    """The message holding a new-password link, in ``lang``."""
    lang = lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE
    return Letter(
        to=email,
        lang=lang,
        subject=i18n.gettext(N_("Choose a new password for Cité Live"), lang),
        before=(
            i18n.gettext(
                N_(
                    "Someone, probably you, asked to choose a new password for the account "
                    "%(email)s on Cité Live."
                ),
                lang,
            )
            % {"email": email},
            i18n.gettext(N_("This link works once, within an hour."), lang),
        ),
        action=i18n.gettext(N_("Choose a new password"), lang),
        link=link,
        after=(
            i18n.gettext(
                N_("If you did not ask for it, ignore this message: your password stays as it is."),
                lang,
            ),
        ),
    )


# --- the artist profiles an account speaks for ---------------------------------------------------


def link_artist(session: Session, user_id: int, artist_id: int) -> bool:
    """Let the account ``user_id`` speak for the artist profile ``artist_id``; True when this
    call made the link, False when it was there already.

    One statement that skips an existing link: of two requests making the same link at once,
    the second waits for the first's row, then finds it made, where reading first and inserting
    after would have failed on the duplicate key."""
    dialect = session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    made = session.execute(
        insert(user_artists)
        .values(user_id=user_id, artist_id=artist_id)
        .on_conflict_do_nothing(index_elements=["user_id", "artist_id"])
        # The row it made, if any: the driver's count of an INSERT is not to be relied on.
        .returning(user_artists.c.artist_id)
    )
    return made.first() is not None


def unlink_artist(session: Session, user_id: int, artist_id: int) -> bool:
    """The account no longer speaks for the profile; False when it did not."""
    removed = session.execute(
        delete(user_artists).where(
            user_artists.c.user_id == user_id, user_artists.c.artist_id == artist_id
        )
    )
    return changed(removed)


def set_artists(session: Session, user_id: int, artist_ids: Iterable[int]) -> None:
    """The account speaks for exactly ``artist_ids``: links are added and removed one by one,
    those it keeps are left alone (see :func:`link_artist`)."""
    wanted = set(artist_ids)
    current = set(
        session.scalars(select(user_artists.c.artist_id).where(user_artists.c.user_id == user_id))
    )
    for artist_id in sorted(current - wanted):
        unlink_artist(session, user_id, artist_id)
    for artist_id in sorted(wanted - current):
        link_artist(session, user_id, artist_id)
    # What an account object already loaded in this session shows is read again.
    user = session.get(User, user_id)
    if user is not None:
        session.expire(user, ["artists"])
