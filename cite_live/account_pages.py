"""The account pages: sign in and out, the account page (password, API tokens), invitations.

Checking or hashing a password costs about 100 ms of CPU: it runs in a worker thread, with its
database work, so that the event loop keeps serving other visitors meanwhile.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from cite_live import accounts, i18n
from cite_live.auth import (
    CurrentUser,
    current_user,
    current_user_of,
    reissue,
    require_user,
    safe_next,
    sign_in,
    sign_out,
)
from cite_live.i18n import N_
from cite_live.models import User
from cite_live.services import Services

WINDOW_SECONDS = 15 * 60
MAX_FIELD = 2000
WRONG_LOGIN = N_("The email address or the password is wrong.")
TOO_MANY_ATTEMPTS = N_("Too many failed sign-in attempts: please wait a few minutes and try again.")


class LoginLimiter:
    """Failed sign-ins per client address and per email over the last 15 minutes.

    Kept in this process: with several web processes, each counts its own."""

    def __init__(self, attempts: int, window: float = WINDOW_SECONDS, max_keys: int = 100_000):
        self.attempts = attempts
        self.window = window
        self.max_keys = max_keys
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self.failures[key]
        return times

    def retry_after(self, keys: tuple[str, ...], now: float | None = None) -> int | None:
        """Seconds to wait before another attempt may be made, or None if one may be made now."""
        now = time.monotonic() if now is None else now
        waits = [
            times[0] + self.window - now
            for times in (self._recent(key, now) for key in keys)
            if len(times) >= self.attempts
        ]
        return max(1, int(max(waits)) + 1) if waits else None

    def fail(self, keys: tuple[str, ...], now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if len(self.failures) >= self.max_keys:
            self._prune(now)
        for key in keys:
            times = self.failures.setdefault(key, deque())
            times.append(now)
            while len(times) > self.attempts:
                times.popleft()

    def forget(self, key: str) -> None:
        self.failures.pop(key, None)

    def _prune(self, now: float) -> None:
        for key in list(self.failures):
            self._recent(key, now)
        # Still full (an attack from very many addresses): forget the oldest half.
        if len(self.failures) >= self.max_keys:
            for key in sorted(self.failures, key=lambda k: self.failures[k][-1])[
                : self.max_keys // 2
            ]:
                del self.failures[key]


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _limiter(request: Request) -> LoginLimiter:
    limiter = getattr(request.app.state, "login_limiter", None)
    if not isinstance(limiter, LoginLimiter):
        limiter = LoginLimiter(_services(request).settings.auth.login_attempts)
        request.app.state.login_limiter = limiter
    return limiter


def _lang(request: Request) -> str:
    lang = getattr(request.state, "lang", i18n.DEFAULT_LANGUAGE)
    return lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE


def _render(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    templates = request.app.state.templates
    response: Response = templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=headers
    )
    # Forms carry a CSRF token; such a page is never stored by a cache.
    response.headers["Cache-Control"] = "private, no-store"
    return response


async def _form(request: Request) -> dict[str, str]:
    form = await request.form(max_files=0, max_fields=20)
    return {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}


# --- sign in and out -----------------------------------------------------------------------------


def _check_login(services: Services, email: str, password: str) -> tuple[CurrentUser, int] | None:
    with services.sessions.begin() as session:
        user = accounts.authenticate(session, services.settings, email, password)
        if user is None:
            return None
        return current_user_of(session, user), user.auth_epoch


async def login(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))
    context: dict[str, Any] = {"next": next_path, "email": "", "error": None, "nav": "login"}
    if request.method == "GET":
        if current_user(request) is not None:
            return RedirectResponse(next_path, status_code=303)
        return _render(request, "login.html", context)

    form = await _form(request)
    email = form.get("email", "").strip().lower()
    next_path = safe_next(form.get("next") or request.query_params.get("next"))
    context.update(email=email, next=next_path)
    address = request.client.host if request.client else "unknown"
    keys = (f"address:{address}", f"email:{email}")
    limiter = _limiter(request)
    wait = limiter.retry_after(keys)
    if wait is not None:
        context["error"] = i18n.gettext(TOO_MANY_ATTEMPTS, _lang(request))
        return _render(request, "login.html", context, 429, {"Retry-After": str(wait)})
    found = await run_in_threadpool(
        _check_login, _services(request), email, form.get("password", "")
    )
    if found is None:
        limiter.fail(keys)
        context["error"] = i18n.gettext(WRONG_LOGIN, _lang(request))
        return _render(request, "login.html", context, 400)
    limiter.forget(keys[1])
    user, epoch = found
    sign_in(request, user, epoch)
    return RedirectResponse(next_path, status_code=303)


def end_sessions(services: Services, user_id: int) -> None:
    """End every session of the account, on every device (its cookies stop matching)."""
    with services.sessions.begin() as session:
        user = session.get(User, user_id)
        if user is not None:
            user.auth_epoch += 1


async def logout(request: Request) -> Response:
    """Sign out. The epoch moves on, so this ends the account's sessions on every device: a copy
    of the cookie taken before is refused afterwards."""
    user = current_user(request)
    if user is not None and not user.via_token:
        end_sessions(_services(request), user.id)
    sign_out(request)
    return RedirectResponse("/", status_code=303)


# --- the account page ----------------------------------------------------------------------------

WRONG_PASSWORD = N_("The current password is wrong.")
PASSWORDS_DIFFER = N_("The two passwords are not the same.")
PASSWORD_CHANGED = N_("Your password has been changed; your other devices are signed out.")
TOKEN_REVOKED = N_("The token has been revoked.")
NO_SUCH_TOKEN = N_("This token does not exist or has already been revoked.")
UNKNOWN_ACTION = N_("This form cannot be handled.")
INVITATION_GONE = N_("This invitation link has expired or has already been used.")


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


def _change_password(
    services: Services, user_id: int, current: str, new: str
) -> tuple[str | None, int]:
    """(an untranslated error or None, the account's epoch afterwards)."""
    with services.sessions.begin() as session:
        user = session.get(User, user_id)
        assert user is not None
        if not accounts.verify_password(services.settings, user.password_hash, current):
            return WRONG_PASSWORD, user.auth_epoch
        try:
            accounts.set_password(services.settings, user, new)
        except accounts.AccountError as exc:
            return exc.message, user.auth_epoch
        return None, user.auth_epoch


async def account(request: Request) -> Response:
    user = require_user(request)
    services = _services(request)
    lang = _lang(request)
    if request.method == "GET":
        return _render(request, "account.html", _account_context(services, user))

    form = await _form(request)
    action = form.get("action", "")
    new_token: str | None = None
    message: str | None = None
    error: str | None = None
    status = 200
    if action == "password":
        if form.get("new_password", "") != form.get("confirm_password", ""):
            error = PASSWORDS_DIFFER
        else:
            error, epoch = await run_in_threadpool(
                _change_password,
                services,
                user.id,
                form.get("current_password", ""),
                form.get("new_password", ""),
            )
            if error is None:
                message = PASSWORD_CHANGED
                # This device stays signed in, with a cookie of the new epoch.
                reissue(request, epoch)
    elif action == "create_token":
        with services.sessions.begin() as session:
            account_row = session.get(User, user.id)
            assert account_row is not None
            new_token = accounts.create_token(session, account_row, form.get("name", ""))
    elif action == "revoke_token":
        token_id = form.get("token_id", "")
        with services.sessions.begin() as session:
            revoked = token_id.isdigit() and accounts.revoke_token(session, user.id, int(token_id))
        message, error = (TOKEN_REVOKED, None) if revoked else (None, NO_SUCH_TOKEN)
    else:
        error = UNKNOWN_ACTION
    if error is not None:
        status = 400
    context = _account_context(services, user)
    context.update(
        new_token=new_token,
        message=i18n.gettext(message, lang) if message else None,
        error=i18n.gettext(error, lang) if error else None,
    )
    return _render(request, "account.html", context, status)


# --- invitations ---------------------------------------------------------------------------------


def _invited_email(services: Services, secret: str) -> str | None:
    with services.sessions() as session:
        invitation = accounts.pending_invitation(session, secret)
        return None if invitation is None else invitation.user.email


def _accept(services: Services, secret: str, password: str) -> tuple[CurrentUser, int] | str:
    """The new session's user and epoch, or an untranslated error."""
    with services.sessions.begin() as session:
        try:
            user = accounts.accept_invitation(session, services.settings, secret, password)
        except accounts.AccountError as exc:
            return exc.message
        return current_user_of(session, user), user.auth_epoch


async def invitation(request: Request) -> Response:
    """Choose a password from an invitation link, and be signed in."""
    services = _services(request)
    lang = _lang(request)
    secret = request.path_params["token"]
    email = _invited_email(services, secret)
    if email is None:
        raise HTTPException(404, i18n.gettext(INVITATION_GONE, lang))
    context: dict[str, Any] = {"nav": "login", "email": email, "secret": secret, "error": None}
    if request.method == "POST":
        form = await _form(request)
        password = form.get("password", "")
        if password != form.get("confirm_password", ""):
            result: tuple[CurrentUser, int] | str = PASSWORDS_DIFFER
        else:
            result = await run_in_threadpool(_accept, services, secret, password)
        if not isinstance(result, str):
            sign_in(request, *result)
            return RedirectResponse("/studio", status_code=303)
        context["error"] = i18n.gettext(result, lang)
        response = _render(request, "invite.html", context, 400)
    else:
        response = _render(request, "invite.html", context)
    # The link is a secret: never send it to another site as a Referer.
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
