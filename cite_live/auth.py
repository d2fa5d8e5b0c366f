"""Who is asking: the signed-in account of a request, and the checks handlers make with it.

The authentication middleware (sessions, Bearer tokens, CSRF) puts a :class:`CurrentUser`, or
None, into ``request.state.user``; handlers only read it through the functions below.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request

from cite_live.models import Production


@dataclass(frozen=True)
class CurrentUser:
    id: int
    email: str
    role: str
    # The artist profiles this account speaks for.
    artist_ids: frozenset[int]
    # Signed in with an API Bearer token rather than a session cookie (no CSRF applies).
    via_token: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def current_user(request: Request) -> CurrentUser | None:
    user = getattr(request.state, "user", None)
    return user if isinstance(user, CurrentUser) else None


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/media/"))


def require_user(request: Request) -> CurrentUser:
    """The signed-in account; otherwise 401 for the API, a redirect to the login page for pages."""
    user = current_user(request)
    if user is not None:
        return user
    if _wants_json(request):
        raise HTTPException(401, "Sign in, or send an API token, to do this.")
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    raise HTTPException(303, headers={"Location": "/login?" + urlencode({"next": target})})


def require_admin(request: Request) -> CurrentUser:
    user = require_user(request)
    if not user.is_admin:
        raise HTTPException(403, "Only an administrator may do this.")
    return user


def can_manage(user: CurrentUser | None, production: Production) -> bool:
    """Edit, replace, delete, see while private: its owner and the admins."""
    if user is None:
        return False
    return user.is_admin or (production.owner_id is not None and production.owner_id == user.id)


def can_view(user: CurrentUser | None, production: Production) -> bool:
    """Open its page, API object and media: anyone unless private; then only its managers."""
    return production.visibility != "private" or can_manage(user, production)
