"""Who is asking: the signed-in account of a request, and the checks handlers make with it.

:class:`AuthMiddleware` puts a :class:`CurrentUser`, or None, into ``request.state.user`` from a
signed session cookie or an ``Authorization: Bearer`` API token; handlers only read it through the
functions below. The cookie holds a CSRF token and, once signed in, the secret naming the
device's row in ``user_sessions`` (:mod:`cite_live.devices`): reading it is one indexed lookup,
and deleting the row (signing out this device, or every device) makes any copy of the cookie
anonymous.

Every unsafe request (POST, PUT, PATCH, DELETE) that carries a session, and every one outside the
API, must come from this site (``Origin``/``Referer``) and carry the session's CSRF token, in the
``X-CSRF-Token`` header or a ``csrf_token`` form field (see :mod:`cite_live.csrf`). Requests
with a Bearer token are exempt: a browser never adds one by itself. The middleware is plain ASGI
so that request bodies it does not need (tus uploads) stream through untouched; the account
behind a cookie or a token is looked up in a worker thread, never on the event loop.

Every 401 says how to authenticate (RFC 9110): ``WWW-Authenticate: Bearer realm="cite-live"``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request, cookie_parser
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cite_live import devices, i18n
from cite_live.accounts import user_for_token
from cite_live.csrf import check_forgery
from cite_live.i18n import N_
from cite_live.models import Production, User, user_artists
from cite_live.web.errors import answers_in_json, error_page, json_error
from cite_live.web.urls import API_PREFIX, PATHS, UPLOADS_PREFIX, Urls

if TYPE_CHECKING:
    from cite_live.services import Services


@dataclass(frozen=True)
class CurrentUser:
    id: int
    email: str
    role: str
    # The artist profiles this account speaks for.
    artist_ids: frozenset[int]
    # Signed in with an API Bearer token rather than a session cookie (no CSRF applies).
    via_token: bool = False
    # This device's row in user_sessions (None with a token).
    session_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def current_user(request: Request) -> CurrentUser | None:
    user = getattr(request.state, "user", None)
    return user if isinstance(user, CurrentUser) else None


def require_user(request: Request) -> CurrentUser:
    """The signed-in account; otherwise 401 for the API, a redirect to the login page for pages."""
    user = current_user(request)
    if user is not None:
        return user
    if answers_in_json(request.url.path):
        raise HTTPException(401, "Sign in, or send an API token, to do this.", CHALLENGE)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise HTTPException(303, headers={"Location": Urls().login(next=target)})


def require_admin(request: Request) -> CurrentUser:
    user = require_user(request)
    if not user.is_admin:
        message = N_("Only an administrator may do this.")
        if not answers_in_json(request.url.path):
            message = i18n.gettext(message, getattr(request.state, "lang", None))
        raise HTTPException(403, message)
    return user


def can_manage(user: CurrentUser | None, production: Production) -> bool:
    """Edit, replace, delete, see while private: its owner and the admins."""
    if user is None:
        return False
    return user.is_admin or (production.owner_id is not None and production.owner_id == user.id)


def can_view(user: CurrentUser | None, production: Production, *, by_address: bool) -> bool:
    """Open its page, API object, player and media. A ready production: anyone when public;
    when unlisted, whoever named it by its address (``by_address``: its page's slug, which holds
    a secret), never by its id, which is no secret. Private, processing or failed: only its
    managers; to anyone else it does not exist."""
    if production.status == "ready":
        if production.visibility == "public":
            return True
        if production.visibility == "unlisted" and by_address:
            return True
    return can_manage(user, production)


# --- sessions ------------------------------------------------------------------------------------

COOKIE = "cite_session"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STATE = "auth_session"

BAD_TOKEN = N_("This API token is not valid, or it has been revoked.")
# What a 401 asks for (RFC 9110 §11.6.1): a Bearer token, here.
REALM = 'Bearer realm="cite-live"'
CHALLENGE = {"WWW-Authenticate": REALM}


@dataclass
class SessionState:
    """The session cookie of a request as the handlers leave it; written back on the response."""

    # The secret naming this device's user_sessions row; None: not signed in.
    secret: str | None = None
    csrf: str | None = None
    # Re-sign and send the cookie.
    changed: bool = False
    # Send a deleting cookie (a stale or signed-out session) unless it changed since.
    clear: bool = False


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="session")


def _session(request: Request) -> SessionState:
    state: dict[str, Any] = request.scope.setdefault("state", {})  # shared with the middleware
    session = state.get(_STATE)
    if not isinstance(session, SessionState):
        session = state[_STATE] = SessionState()
    return session


def csrf_token(request: Request) -> str:
    """This session's CSRF token, made (and the cookie sent) on first use: every form shows it."""
    session = _session(request)
    if session.csrf is None:
        session.csrf = secrets.token_urlsafe(32)
        session.changed = True
    return session.csrf


def session_lifetime(services: Services) -> timedelta:
    """How long a sign-in lasts: ``auth.session_days``."""
    return timedelta(days=services.settings.auth.session_days)


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")


def sign_in(request: Request, user: CurrentUser, secret: str) -> None:
    """This device is now ``user``'s session named by ``secret`` (from
    :func:`cite_live.devices.start`): a new cookie and a new CSRF token, never the old ones."""
    session = _session(request)
    session.secret, session.csrf = secret, secrets.token_urlsafe(32)
    session.changed, session.clear = True, False
    request.state.user = user


def sign_out(request: Request) -> None:
    """Forget the session on this device (the caller deletes its row, so that a copy of the
    cookie is refused too)."""
    session = _session(request)
    session.secret, session.csrf = None, None
    session.changed, session.clear = False, True
    request.state.user = None


class AuthMiddleware:
    """Who is asking (session cookie or Bearer token) and whether an unsafe request is forged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        services: Services = scope["app"].state.services
        headers = Headers(scope=scope)
        state = scope.setdefault("state", {})
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            user = await run_in_threadpool(self._token_user, services, credentials.strip())
            state["user"] = user
            if user is None:
                challenge = {"WWW-Authenticate": f'{REALM}, error="invalid_token"'}
                await _refuse(scope, receive, send, 401, BAD_TOKEN, challenge)
                return
            await self.app(scope, receive, send)
            return

        session = self._read_cookie(services, headers)
        state[_STATE] = session
        state["user"] = (
            await run_in_threadpool(self._session_user, services, session.secret)
            if session.secret
            else None
        )
        if session.secret and state["user"] is None:
            state[_STATE] = session = SessionState(clear=True)
        send = self._sending_cookie(scope, send, services)
        # A play's beacon (navigator.sendBeacon) carries the session cookie but cannot carry a
        # CSRF token; it changes nothing of the account, and its handler checks its Origin.
        if (
            scope["method"] in UNSAFE_METHODS
            and (state["user"] is not None or not scope["path"].startswith(API_PREFIX))
            and scope["path"] != PATHS["api_plays"]
        ):
            refusal, receive = await check_forgery(
                scope, receive, session.csrf, services.settings.site_url
            )
            if refusal is not None:
                await _refuse(scope, receive, send, *refusal)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _token_user(services: Services, token: str) -> CurrentUser | None:
        with services.sessions.begin() as session:
            user = user_for_token(session, token)
            return None if user is None else current_user_of(session, user, via_token=True)

    @staticmethod
    def _read_cookie(services: Services, headers: Headers) -> SessionState:
        raw = cookie_parser(headers.get("cookie", "")).get(COOKIE)
        if raw is None:
            return SessionState()
        max_age = int(services.settings.auth.session_days * 86400)
        try:
            data = _serializer(services.secret_key).loads(raw, max_age=max_age)
            secret, csrf = data.get("s"), data["c"]
        except (BadSignature, KeyError, TypeError, AttributeError):
            return SessionState(clear=True)
        if not isinstance(secret, str | None) or not isinstance(csrf, str | None):
            return SessionState(clear=True)
        return SessionState(secret, csrf)

    @staticmethod
    def _session_user(services: Services, secret: str) -> CurrentUser | None:
        with services.sessions.begin() as session:
            found = devices.find(session, secret, session_lifetime(services))
            if found is None:
                return None
            row, user = found
            return current_user_of(session, user, session_id=row.id)

    @staticmethod
    def _sending_cookie(scope: Scope, send: Send, services: Services) -> Send:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                session = scope["state"].get(_STATE)
                if isinstance(session, SessionState) and (session.changed or session.clear):
                    headers = MutableHeaders(scope=message)
                    headers.append("set-cookie", _cookie(session, scope, services))
                    # A shared cache must never hand one person's cookie to another.
                    headers["cache-control"] = "private, no-store"
                elif scope["state"].get("user") is not None:
                    MutableHeaders(scope=message).setdefault("cache-control", "private")
            await send(message)

        return sending


def current_user_of(
    session: Session, user: User, *, via_token: bool = False, session_id: int | None = None
) -> CurrentUser:
    """What handlers see of ``user`` (signed in on the device of ``session_id``)."""
    artist_ids = session.scalars(
        select(user_artists.c.artist_id).where(user_artists.c.user_id == user.id)
    )
    return CurrentUser(user.id, user.email, user.role, frozenset(artist_ids), via_token, session_id)


def _cookie(session: SessionState, scope: Scope, services: Services) -> str:
    secure = services.settings.site_url.startswith("https:") or scope.get("scheme") == "https"
    response = Response()
    if not session.changed:
        response.delete_cookie(COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
    else:
        payload = (
            {"c": session.csrf}
            if session.secret is None
            else {"s": session.secret, "c": session.csrf}
        )
        value = _serializer(services.secret_key).dumps(payload)
        # A signed-in session lasts ``session_days``; an anonymous one (a form's CSRF token only)
        # ends with the browser.
        max_age = int(services.settings.auth.session_days * 86400) if session.secret else None
        response.set_cookie(
            COOKIE, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax"
        )
    return response.headers["set-cookie"]


async def _refuse(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer like the app's error handler does: JSON under the API, the error page elsewhere."""
    request = Request(scope, receive)
    response: Response
    if answers_in_json(scope["path"]):
        # The API speaks English, as its other errors do.
        response = json_error(status, message, headers)
        if scope["path"].startswith(UPLOADS_PREFIX):
            # tus wants its version on every answer of its endpoints, refusals included.
            response.headers["Tus-Resumable"] = "1.0.0"
    else:
        detail = i18n.gettext(message, getattr(request.state, "lang", None))
        response = error_page(request, status, detail, headers)
    await response(scope, receive, send)
