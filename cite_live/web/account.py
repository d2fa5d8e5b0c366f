"""The account pages: sign in and out, the account page (password, API tokens), invitations.

No database or argon2 work runs on the event loop: every handler runs in a worker thread, the
pages with a form having it read on the loop first, Starlette's form parser being async (see
:mod:`cite_live.web.context`).

Checking or hashing a password (argon2, about 100 ms of CPU) holds no database connection: what
it needs is read first, the connection given back, and what it changes written in a new
session. A check is counted against the sign-in limit before it is made, and each one takes one
of the process's few password slots (cite_live.throttle); none free, the answer is 503 at once.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from starlette.datastructures import FormData
from starlette.responses import Response

from cite_live import accounts
from cite_live.accounts import AccountError
from cite_live.auth import CurrentUser, current_user_of, reissue, sign_in, sign_out
from cite_live.i18n import N_
from cite_live.models import User
from cite_live.services import Services
from cite_live.throttle import (
    AttemptLimiter,
    Busy,
    PasswordSlots,
    ThrottleError,
    address_key,
    email_key,
    limiter_for,
)
from cite_live.web.context import ACCOUNT_CACHE, Context, form_page, page

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
# Seconds to wait after a refusal for lack of a free password slot, or of the shared counts.
BUSY_RETRY = 2
UNAVAILABLE_RETRY = 30


class Refusal(AccountError):
    """A password check or hash that cannot be made now: 429 (too many attempts) or 503."""

    def __init__(self, status: int, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass
class Guard:
    """The sign-in limit and the password slots of an app."""

    limiter: AttemptLimiter
    slots: PasswordSlots


_making_guard = threading.Lock()


def _guard(ctx: Context) -> Guard:
    state = ctx.request.app.state
    with _making_guard:
        guard = getattr(state, "password_guard", None)
        if not isinstance(guard, Guard):
            guard = Guard(limiter_for(ctx.settings), PasswordSlots())
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


def _check_login(ctx: Context, email: str, password: str) -> tuple[CurrentUser, int] | None:
    """The signed-in user and epoch, None for a wrong password; Refusal when it must wait."""
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
        found = current_user_of(session, user), user.auth_epoch
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
    context: dict[str, Any] = {"next": next_path, "email": "", "error": None, "nav": "login"}
    if form is None:
        if ctx.user is not None:
            return ctx.see_other(next_path)
        return ctx.render("login.html", context, cache=ACCOUNT_CACHE)

    email = form.get("email", "").strip().lower()
    next_path = _next_after_login(ctx, form.get("next") or ctx.query.get("next"))
    context.update(email=email, next=next_path)
    try:
        found = _check_login(ctx, email, form.get("password", ""))
    except Refusal as refusal:
        return _refused(ctx, "login.html", context, refusal)
    if found is None:
        return _refused(ctx, "login.html", context, AccountError(WRONG_LOGIN))
    sign_in(ctx.request, *found)
    return ctx.see_other(next_path)


def end_sessions(services: Services, user_id: int) -> None:
    """End every session of the account, on every device (its cookies stop matching)."""
    with services.sessions.begin() as session:
        user = session.get(User, user_id)
        if user is not None:
            user.auth_epoch += 1


@page
def logout(ctx: Context) -> Response:
    """Sign out. The epoch moves on, so this ends the account's sessions on every device: a copy
    of the cookie taken before is refused afterwards."""
    user = ctx.user
    if user is not None and not user.via_token:
        end_sessions(ctx.services, user.id)
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
INVITATION_GONE = N_("This invitation link has expired or has already been used.")
# Token ids are 64-bit integers: at most 18 digits always fit.
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
    return {
        "nav": "account",
        "email": user.email,
        "role": user.role,
        "tokens": tokens,
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


def _change_password(ctx: Context, user: CurrentUser, form: dict[str, str]) -> int:
    """The account's epoch after its new password; AccountError saying why not."""
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
        accounts.set_password_hash(row, new_hash)
        return row.auth_epoch


def _revoke_token(services: Services, user: CurrentUser, raw_id: str) -> str:
    """The untranslated outcome of revoking token ``raw_id``; AccountError when it cannot be."""
    if not _TOKEN_ID.fullmatch(raw_id):
        raise AccountError(BAD_TOKEN_ID)
    with services.sessions.begin() as session:
        if not accounts.revoke_token(session, user.id, int(raw_id)):
            raise AccountError(NO_SUCH_TOKEN)
    return TOKEN_REVOKED


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
            # This device stays signed in, with a cookie of the new epoch.
            reissue(ctx.request, _change_password(ctx, user, form))
            message = PASSWORD_CHANGED
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


def _invited(services: Services, secret: str) -> tuple[str, list[str]] | None:
    """The email and artist names of the account a pending invitation is for."""
    with services.sessions() as session:
        invitation = accounts.pending_invitation(session, secret)
        if invitation is None:
            return None
        return invitation.user.email, accounts.artist_names(invitation.user)


def _accept(ctx: Context, secret: str, form: dict[str, str]) -> tuple[CurrentUser, int]:
    """The new session's user and epoch; AccountError saying why not."""
    services = ctx.services
    password = form.get("password", "")
    if password != form.get("confirm_password", ""):
        raise AccountError(PASSWORDS_DIFFER)
    invited = _invited(services, secret)
    if invited is None:
        raise AccountError(INVITATION_GONE)
    problem = accounts.password_problem(password, *invited)
    if problem is not None:
        raise problem
    settings = services.settings
    new_hash = _in_slot(_guard(ctx), (), accounts.hash_password, settings, password)
    with services.sessions.begin() as session:
        user = accounts.accept_invitation(session, secret, new_hash)
        return current_user_of(session, user), user.auth_epoch


@form_page(max_fields=MAX_FIELDS)
def invitation(ctx: Context, sent: FormData) -> Response:
    """Choose a password from an invitation link, and be signed in."""
    form = _typed(ctx, sent)
    services = ctx.services
    secret = ctx.path_param("token")
    invited = _invited(services, secret)
    if invited is None:
        raise ctx.not_found(INVITATION_GONE)
    context: dict[str, Any] = {"nav": "login", "email": invited[0], "secret": secret, "error": None}
    if form is None:
        response = ctx.render("invite.html", context, cache=ACCOUNT_CACHE)
    else:
        try:
            found = _accept(ctx, secret, form)
        except AccountError as problem:
            response = _refused(ctx, "invite.html", context, problem)
        else:
            sign_in(ctx.request, *found)
            return ctx.see_other(ctx.urls.studio())
    # The link is a secret: never send it to another site as a Referer. Not "no-referrer":
    # under it, browsers send the form's own POST with "Origin: null", refused as forged.
    response.headers["Referrer-Policy"] = "same-origin"
    return response
