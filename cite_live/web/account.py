"""The account pages: sign in and out, the account page (password, API tokens, devices),
invitations, and a forgotten password (a link by mail, then a new password).

No database or argon2 work runs on the event loop: every handler runs in a worker thread, the
pages with a form having it read on the loop first, Starlette's form parser being async (see
:mod:`cite_live.web.context`).

Checking or hashing a password (argon2, about 100 ms of CPU) holds no database connection: what
it needs is read first, the connection given back, and what it changes written in a new
session. A check is counted against the sign-in limit before it is made, and each one takes one
of the process's few password slots (cite_live.throttle); none free, the answer is 503 at once.

Asking for a new password gets the same answer whatever the address, known, unknown or
disabled: the page only counts the request (per address and per email, like sign-ins) and
answers; looking the account up, making the link and sending the message are handed to the
outbox (cite_live.mail.Outbox), so that no timing tells anything either. A mail server that
fails is logged.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import Response

from cite_live import accounts, devices, mail
from cite_live.accounts import AccountError
from cite_live.auth import (
    CurrentUser,
    current_user_of,
    session_lifetime,
    sign_in,
    sign_out,
    user_agent,
)
from cite_live.i18n import N_
from cite_live.models import Invitation, PasswordReset, User
from cite_live.services import Services
from cite_live.throttle import (
    RESETS_PER_EMAIL,
    AttemptLimiter,
    Busy,
    PasswordSlots,
    ThrottleError,
    address_key,
    email_key,
    storage_for,
)
from cite_live.web.context import ACCOUNT_CACHE, Context, form_page, notices, page

log = logging.getLogger("cite_live.web.account")
P = ParamSpec("P")
T = TypeVar("T")

MAX_FIELD = 2000
# The account forms have a handful of fields each.
MAX_FIELDS = 20
WRONG_LOGIN = N_("The email address or the password is wrong.")
TOO_MANY_ATTEMPTS = N_("Too many failed sign-in attempts: please wait a few minutes and try again.")
BUSY = N_("Too many people are signing in at this moment: please try again in a few seconds.")
UNAVAILABLE = N_("Signing in is not possible for a moment: please try again shortly.")
TOO_MANY_RESETS = N_(
    "Too many requests for a new password: please wait a few minutes and try again."
)
RESETS_UNAVAILABLE = N_(
    "Asking for a new password is not possible for a moment: please try again shortly."
)
# Seconds to wait after a refusal for lack of a free password slot, or of the shared counts.
BUSY_RETRY = 2
UNAVAILABLE_RETRY = 30

notices(
    reset_sent=N_(
        "If an account exists for this address, a message is on its way to it with a link to "
        "choose a new password. The link works for an hour."
    ),
    password_chosen=N_("Your new password is saved, and you are signed in."),
    signed_out_everywhere=N_("You are signed out on every device."),
)


class Refusal(AccountError):
    """A password check or hash that cannot be made now: 429 (too many attempts) or 503."""

    def __init__(self, status: int, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass
class Guard:
    """The sign-in limit, the password slots and the limits on new-password requests of an
    app."""

    limiter: AttemptLimiter
    slots: PasswordSlots
    # Every request for a new password counts (per address, and per email, more strictly):
    # each one may send a message.
    resets_by_address: AttemptLimiter
    resets_by_email: AttemptLimiter


_making_guard = threading.Lock()


def _guard(ctx: Context) -> Guard:
    state = ctx.request.app.state
    with _making_guard:
        guard = getattr(state, "password_guard", None)
        if not isinstance(guard, Guard):
            settings = ctx.settings
            storage = storage_for(settings)
            attempts = settings.auth.login_attempts
            guard = Guard(
                AttemptLimiter(storage, attempts),
                PasswordSlots(),
                AttemptLimiter(storage, attempts, namespace="reset-address"),
                AttemptLimiter(storage, RESETS_PER_EMAIL, namespace="reset-email"),
            )
            state.password_guard = guard
        return guard


def _count(guard: Guard, keys: Sequence[str]) -> None:
    """Count an attempt at a password against ``keys`` before it is checked."""
    try:
        wait = guard.limiter.attempt(keys)
    except ThrottleError as exc:
        # Without the shared counts, unlimited guesses: refuse until they are back.
        log.warning("sign-in counts unreachable: %s", exc)
        raise Refusal(503, UNAVAILABLE, UNAVAILABLE_RETRY) from None
    if wait is not None:
        raise Refusal(429, TOO_MANY_ATTEMPTS, wait)


def _uncount(guard: Guard, give_back: Sequence[str] = (), forget: Sequence[str] = ()) -> None:
    """Give back an attempt that succeeded or was never checked; a lost connection to the
    counts only means it stays counted."""
    try:
        guard.limiter.give_back(give_back)
        for key in forget:
            guard.limiter.forget(key)
    except ThrottleError as exc:
        log.warning("sign-in counts unreachable: %s", exc)


def _in_slot(
    guard: Guard, counted: Sequence[str], work: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``work(*args)`` in one of the process's password slots; when none is free, a 503 at once
    (and the attempt counted for it given back)."""
    try:
        with guard.slots.hold():
            return work(*args, **kwargs)
    except Busy:
        _uncount(guard, give_back=counted)
        raise Refusal(503, BUSY, BUSY_RETRY) from None


def _refused(
    ctx: Context, template: str, context: dict[str, Any], problem: AccountError
) -> Response:
    """The form again, saying why: 400, or a Refusal's status with when to retry."""
    context["error"] = problem.explain(ctx.lang)
    if isinstance(problem, Refusal):
        headers = {"Retry-After": str(problem.retry_after)}
        return ctx.render(
            template, context, status=problem.status, headers=headers, cache=ACCOUNT_CACHE
        )
    return ctx.render(template, context, status=400, cache=ACCOUNT_CACHE)


def _typed(ctx: Context, form: FormData) -> dict[str, str] | None:
    """What a POST's form says, each text field cut at MAX_FIELD; None for a GET."""
    if ctx.request.method != "POST":
        return None
    return {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}


# --- sign in and out -----------------------------------------------------------------------------


def _start_here(ctx: Context, session: Session, user: User) -> tuple[CurrentUser, str]:
    """A new session of ``user`` on this device (ending the one it had, if any): what handlers
    will see of the account, and the secret for :func:`cite_live.auth.sign_in`."""
    before = ctx.user
    if before is not None and before.session_id is not None:
        devices.end(session, before.id, before.session_id)
    session_id, secret = devices.start(
        session, user.id, user_agent(ctx.request), session_lifetime(ctx.services)
    )
    return current_user_of(session, user, session_id=session_id), secret


def _check_login(ctx: Context, email: str, password: str) -> tuple[CurrentUser, str] | None:
    """The signed-in user and its session's secret, None for a wrong password; Refusal when it
    must wait."""
    services, guard = ctx.services, _guard(ctx)
    client = ctx.request.client
    address = client.host if client else "unknown"
    keys = (address_key(address), email_key(email))
    _count(guard, keys)
    with services.sessions() as session:
        stored = accounts.stored_password(session, email)
    kept = _in_slot(guard, keys, accounts.check_password, services.settings, stored, password)
    if kept is None or stored is None:
        return None
    with services.sessions.begin() as session:
        user = accounts.record_login(session, stored, kept)
        if user is None:
            return None
        found = _start_here(ctx, session, user)
    # This attempt is given back to the address (its earlier failures stay counted), and the
    # account's failures are forgotten: its owner has just proved who they are.
    _uncount(guard, give_back=keys[:1], forget=keys[1:])
    return found


def _next_after_login(ctx: Context, target: str | None) -> str:
    return ctx.safe_next(target) if target else ctx.urls.studio()


@form_page(max_fields=MAX_FIELDS)
def login(ctx: Context, sent: FormData) -> Response:
    form = _typed(ctx, sent)
    # Without a page to go back to, an account lands in its studio.
    next_path = _next_after_login(ctx, ctx.query.get("next"))
    context: dict[str, Any] = {
        "next": next_path,
        "email": "",
        "error": None,
        "nav": "login",
        "done": ctx.notice(),
    }
    if form is None:
        if ctx.user is not None:
            return ctx.see_other(next_path)
        return ctx.render("login.html", context, cache=ACCOUNT_CACHE)

    email = form.get("email", "").strip().lower()
    next_path = _next_after_login(ctx, form.get("next") or ctx.query.get("next"))
    context.update(email=email, next=next_path, done=None)
    try:
        found = _check_login(ctx, email, form.get("password", ""))
    except Refusal as refusal:
        return _refused(ctx, "login.html", context, refusal)
    if found is None:
        return _refused(ctx, "login.html", context, AccountError(WRONG_LOGIN))
    sign_in(ctx.request, *found)
    return ctx.see_other(next_path)


@page
def logout(ctx: Context) -> Response:
    """Sign this device out: its session ends, so a copy of its cookie taken before is refused
    afterwards. The account's other devices stay signed in."""
    user = ctx.user
    if user is not None and user.session_id is not None:
        with ctx.services.sessions.begin() as session:
            devices.end(session, user.id, user.session_id)
    sign_out(ctx.request)
    return ctx.see_other(ctx.urls.home())


# --- the account page ----------------------------------------------------------------------------

WRONG_PASSWORD = N_("The current password is wrong.")
PASSWORDS_DIFFER = N_("The two passwords are not the same.")
PASSWORD_CHANGED = N_("Your password has been changed; your other devices are signed out.")
TOKEN_REVOKED = N_("The token has been revoked.")
NO_SUCH_TOKEN = N_("This token does not exist or has already been revoked.")
BAD_TOKEN_ID = N_("This token number is not valid.")
UNKNOWN_ACTION = N_("This form cannot be handled.")
# A stolen token must not outlive its revocation by minting another, nor take the account.
TOKEN_CANNOT = N_("An API token cannot change the password or the tokens: sign in to do it.")
INVITATION_GONE = accounts.INVITATION_GONE
DEVICE_SIGNED_OUT = N_("That device is signed out.")
NO_SUCH_DEVICE = N_("This device is not signed in, or it has already been signed out.")
# Row ids are 64-bit integers: at most 18 digits always fit.
_TOKEN_ID = re.compile(r"[0-9]{1,18}")


def _account_context(services: Services, user: CurrentUser) -> dict[str, Any]:
    with services.sessions() as session:
        tokens = [
            {
                "id": token.id,
                "name": token.name,
                "prefix": token.prefix,
                "created_at": token.created_at,
                "last_used_at": token.last_used_at,
            }
            for token in accounts.tokens_of(session, user.id)
        ]
        signed_in = [
            {
                "id": row.id,
                "device": row.device,
                "created_at": row.created_at,
                "last_seen_at": row.last_seen_at,
                "here": row.id == user.session_id,
            }
            for row in devices.of_user(session, user.id, session_lifetime(services))
        ]
    # This device first, then the others, the most recently seen first.
    signed_in.sort(key=lambda device: not device["here"])
    return {
        "nav": "account",
        "email": user.email,
        "role": user.role,
        "tokens": tokens,
        "devices": signed_in,
        "new_token": None,
        "message": None,
        "error": None,
    }


def _check_then_hash(
    settings: accounts.Cost, stored: accounts.StoredPassword, current: str, new: str
) -> str | None:
    if accounts.check_password(settings, stored, current) is None:
        return None
    return accounts.hash_password(settings, new)


def _change_password(ctx: Context, user: CurrentUser, form: dict[str, str]) -> None:
    """Keep the account's new password, signing out its other devices; AccountError saying
    why not."""
    services, settings = ctx.services, ctx.settings
    new = form.get("new_password", "")
    if new != form.get("confirm_password", ""):
        raise AccountError(PASSWORDS_DIFFER)
    with services.sessions() as session:
        row = session.get(User, user.id)
        assert row is not None
        stored = accounts.StoredPassword(row.id, row.password_hash)
        names = accounts.artist_names(row)
    problem = accounts.password_problem(new, user.email, names)
    if problem is not None:
        raise problem
    # Guesses of the current password share the sign-in's count for this account.
    guard, keys = _guard(ctx), (email_key(user.email),)
    _count(guard, keys)
    current = form.get("current_password", "")
    new_hash = _in_slot(guard, keys, _check_then_hash, settings, stored, current, new)
    if new_hash is None:
        raise AccountError(WRONG_PASSWORD)
    _uncount(guard, forget=keys)
    with services.sessions.begin() as session:
        row = session.get(User, user.id)
        # Changed from another device meanwhile: the password given is no longer the current one.
        if row is None or row.password_hash != stored.password_hash:
            raise AccountError(WRONG_PASSWORD)
        accounts.set_password_hash(session, row, new_hash, keep=user.session_id)


def _revoke_token(services: Services, user: CurrentUser, raw_id: str) -> str:
    """The untranslated outcome of revoking token ``raw_id``; AccountError when it cannot be."""
    if not _TOKEN_ID.fullmatch(raw_id):
        raise AccountError(BAD_TOKEN_ID)
    with services.sessions.begin() as session:
        if not accounts.revoke_token(session, user.id, int(raw_id)):
            raise AccountError(NO_SUCH_TOKEN)
    return TOKEN_REVOKED


def _end_device(services: Services, user: CurrentUser, raw_id: str) -> str:
    """The untranslated outcome of signing out the device of session ``raw_id``."""
    if not _TOKEN_ID.fullmatch(raw_id):
        raise AccountError(NO_SUCH_DEVICE)
    with services.sessions.begin() as session:
        if not devices.end(session, user.id, int(raw_id)):
            raise AccountError(NO_SUCH_DEVICE)
    return DEVICE_SIGNED_OUT


@form_page(max_fields=MAX_FIELDS)
def account(ctx: Context, sent: FormData) -> Response:
    form = _typed(ctx, sent)
    user = ctx.require_user()
    services = ctx.services
    if form is None:
        return ctx.render("account.html", _account_context(services, user), cache=ACCOUNT_CACHE)
    if user.via_token:
        raise ctx.refusal(403, TOKEN_CANNOT)

    action = form.get("action", "")
    new_token: str | None = None
    message: str | None = None
    problem: AccountError | None = None
    try:
        if action == "password":
            # This device stays signed in, its cookie unchanged.
            _change_password(ctx, user, form)
            message = PASSWORD_CHANGED
        elif action == "end_session":
            message = _end_device(services, user, form.get("session_id", ""))
            if form.get("session_id") == str(user.session_id):
                # This very device: as its Sign out button does.
                sign_out(ctx.request)
                return ctx.see_other(ctx.urls.home())
        elif action == "end_all":
            with services.sessions.begin() as session:
                devices.end_all(session, user.id)
            sign_out(ctx.request)
            return ctx.see_other(ctx.urls.login(), "signed_out_everywhere")
        elif action == "create_token":
            with services.sessions.begin() as session:
                account_row = session.get(User, user.id)
                assert account_row is not None
                new_token = accounts.create_token(session, account_row, form.get("name", ""))
        elif action == "revoke_token":
            message = _revoke_token(services, user, form.get("token_id", ""))
        else:
            raise AccountError(UNKNOWN_ACTION)
    except AccountError as refused:
        problem = refused
    context = _account_context(services, user)
    context.update(new_token=new_token, message=ctx.gettext(message) if message else None)
    if problem is not None:
        return _refused(ctx, "account.html", context, problem)
    return ctx.render("account.html", context, cache=ACCOUNT_CACHE)


# --- invitations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordLink:
    """A secret link that lets whoever holds it choose the password of one account: an
    invitation, or a reset asked for from the sign-in page."""

    pending: Callable[[Session, str], Invitation | PasswordReset | None]
    accept: Callable[[Session, str, str], User]
    gone: str


INVITATION_LINK = PasswordLink(
    accounts.pending_invitation, accounts.accept_invitation, INVITATION_GONE
)
RESET_LINK = PasswordLink(accounts.pending_reset, accounts.accept_reset, accounts.RESET_GONE)


def _holder(services: Services, link: PasswordLink, secret: str) -> tuple[str, list[str]] | None:
    """The email and artist names of the account a pending link is for."""
    with services.sessions() as session:
        found = link.pending(session, secret)
        if found is None:
            return None
        return found.user.email, accounts.artist_names(found.user)


def _choose_password(
    ctx: Context, link: PasswordLink, secret: str, form: dict[str, str]
) -> tuple[CurrentUser, str]:
    """Keep the password chosen through ``link``: the new session's user and secret, or
    AccountError saying why not (``link.gone`` when it was spent meanwhile)."""
    services = ctx.services
    password = form.get("password", "")
    if password != form.get("confirm_password", ""):
        raise AccountError(PASSWORDS_DIFFER)
    holder = _holder(services, link, secret)
    if holder is None:
        raise AccountError(link.gone)
    problem = accounts.password_problem(password, *holder)
    if problem is not None:
        raise problem
    new_hash = _in_slot(_guard(ctx), (), accounts.hash_password, services.settings, password)
    with services.sessions.begin() as session:
        user = link.accept(session, secret, new_hash)
        return _start_here(ctx, session, user)


def _keep_secret(response: Response) -> Response:
    """A page whose address is a secret link never sends it to another site as a Referer. Not
    "no-referrer": under it, browsers send the form's own POST with "Origin: null", refused as
    forged."""
    response.headers["Referrer-Policy"] = "same-origin"
    return response


@form_page(max_fields=MAX_FIELDS)
def invitation(ctx: Context, sent: FormData) -> Response:
    """Choose a password from an invitation link, and be signed in."""
    form = _typed(ctx, sent)
    services = ctx.services
    secret = ctx.path_param("token")
    invited = _holder(services, INVITATION_LINK, secret)
    if invited is None:
        raise ctx.not_found(INVITATION_GONE)
    context: dict[str, Any] = {"nav": "login", "email": invited[0], "secret": secret, "error": None}
    if form is None:
        response = ctx.render("invite.html", context, cache=ACCOUNT_CACHE)
    else:
        try:
            found = _choose_password(ctx, INVITATION_LINK, secret, form)
        except AccountError as problem:
            response = _refused(ctx, "invite.html", context, problem)
        else:
            sign_in(ctx.request, *found)
            return ctx.see_other(ctx.urls.studio())
    return _keep_secret(response)


# --- a forgotten password ------------------------------------------------------------------------


def _count_reset(ctx: Context, email: str) -> None:
    """Count a request for a new password against this address and the email it names;
    Refusal when either has asked too often (whatever the email: the answer says nothing of
    its account)."""
    guard = _guard(ctx)
    client = ctx.request.client
    by_address = (address_key(client.host if client else "unknown"),)
    try:
        wait = guard.resets_by_address.attempt(by_address)
        if wait is None:
            wait = guard.resets_by_email.attempt((email_key(email),))
            if wait is not None:
                guard.resets_by_address.give_back(by_address)
    except ThrottleError as exc:
        # Without the shared counts, unlimited messages: refuse until they are back.
        log.warning("new-password counts unreachable: %s", exc)
        raise Refusal(503, RESETS_UNAVAILABLE, UNAVAILABLE_RETRY) from None
    if wait is not None:
        raise Refusal(429, TOO_MANY_RESETS, wait)


def _send_reset(services: Services, email: str, site: str, lang: str) -> None:
    """In the outbox: the link for the account of ``email``, if it has one and is enabled, in
    a message to it."""
    with services.sessions.begin() as session:
        found = accounts.request_reset(session, email)
        if found is None:
            log.info("a new password was asked for an address without an enabled account")
            return
        user, secret = found
        address = user.email
    letter = accounts.reset_letter(address, accounts.reset_url(site, secret), lang)
    mail.send_letter(services.mailer, services.settings, letter)


@form_page(max_fields=MAX_FIELDS)
def password_forgot(ctx: Context, sent: FormData) -> Response:
    """Ask for a link to choose a new password: always the same answer."""
    form = _typed(ctx, sent)
    context: dict[str, Any] = {"nav": "login", "email": "", "error": None, "done": ctx.notice()}
    if form is None:
        return ctx.render("forgot.html", context, cache=ACCOUNT_CACHE)
    context.update(email=form.get("email", "").strip(), done=None)
    try:
        email = accounts.normalize_email(context["email"])
        _count_reset(ctx, email)
    except AccountError as problem:
        return _refused(ctx, "forgot.html", context, problem)
    ctx.services.outbox.submit(_send_reset, ctx.services, email, ctx.site, ctx.lang)
    return ctx.see_other(ctx.urls.password_forgot(), "reset_sent")


@form_page(max_fields=MAX_FIELDS)
def password_reset(ctx: Context, sent: FormData) -> Response:
    """Choose a new password from the link of a message: every other device is signed out,
    this one signed in. A link used, expired or made up says so, and how to ask again."""
    form = _typed(ctx, sent)
    secret = ctx.path_param("token")
    resetting = _holder(ctx.services, RESET_LINK, secret)
    gone = {"nav": "login", "gone": ctx.gettext(accounts.RESET_GONE)}
    if resetting is None:
        response = ctx.render("reset.html", gone, status=404, cache=ACCOUNT_CACHE)
    else:
        context: dict[str, Any] = {
            "nav": "login",
            "gone": None,
            "email": resetting[0],
            "secret": secret,
            "error": None,
        }
        if form is None:
            response = ctx.render("reset.html", context, cache=ACCOUNT_CACHE)
        else:
            try:
                found = _choose_password(ctx, RESET_LINK, secret, form)
            except AccountError as problem:
                if problem.message == accounts.RESET_GONE:
                    # Spent meanwhile, by this very form sent twice or from another tab.
                    response = ctx.render("reset.html", gone, status=404, cache=ACCOUNT_CACHE)
                else:
                    response = _refused(ctx, "reset.html", context, problem)
            else:
                sign_in(ctx.request, *found)
                return ctx.see_other(ctx.urls.studio(), "password_chosen")
    return _keep_secret(response)
