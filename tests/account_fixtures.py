"""Accounts for tests of any module: make one, sign a client in, get an API token.

Registered in tests/conftest.py. ``login`` works with a Starlette ``TestClient`` or an
``httpx.Client`` whose base URL is the app; it returns the CSRF token of the new session, for
requests that send ``X-CSRF-Token`` (tus, JavaScript) or a ``csrf_token`` form field.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import httpx
import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select

from cite_live import accounts
from cite_live.auth import COOKIE
from cite_live.catalogue import artist_by_name
from cite_live.models import Artist, User
from cite_live.services import Services

PASSWORD = "correct horse battery"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(
    services: Services,
    email: str,
    role: str = "artist",
    *,
    password: str | None = PASSWORD,
    artists: Sequence[str | int] = (),
    disabled: bool = False,
) -> int:
    """A new account; ``artists`` are names (made when missing) or ids of artist profiles."""
    with services.sessions.begin() as session:
        ids = [a if isinstance(a, int) else artist_by_name(session, a).id for a in artists]
        user = accounts.create_user(
            session, email, role, password=password, artist_ids=ids, settings=services.settings
        )
        user.disabled = disabled
        return user.id


def artist_id(services: Services, name: str) -> int:
    with services.sessions() as session:
        artist = session.scalars(select(Artist).where(Artist.name == name)).one()
        return artist.id


def token_for(services: Services, email: str, name: str = "tests") -> str:
    """A new API token of the account ``email`` (for ``Authorization: Bearer …``)."""
    with services.sessions.begin() as session:
        user = session.scalars(select(User).where(User.email == email.lower())).one()
        return accounts.create_token(session, user, name)


def session_cookie(client: httpx.Client) -> str | None:
    return client.cookies.get(COOKIE)


def csrf_token(client: httpx.Client) -> str:
    """The CSRF token of the client's current session (read from its cookie, without the key)."""
    raw = session_cookie(client)
    if raw is None:
        raise AssertionError("the client has no session cookie")
    _, payload = URLSafeTimedSerializer("any key", salt="session").loads_unsafe(raw)
    assert isinstance(payload, dict)
    return str(payload["c"])


def form_token(client: httpx.Client, path: str = "/login") -> str:
    """The hidden ``csrf_token`` of the form on ``path`` (which sets the session cookie)."""
    page = client.get(path)
    found = _CSRF_FIELD.search(page.text)
    if found is None:
        raise AssertionError(f"no CSRF field on {path} (status {page.status_code})")
    return found.group(1)


def login(client: httpx.Client, email: str, password: str = PASSWORD) -> str:
    """Sign ``client`` in through the login form; returns the new session's CSRF token."""
    token = form_token(client)
    response = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    if response.status_code != 303:
        raise AssertionError(f"login as {email} failed with {response.status_code}")
    return csrf_token(client)


@pytest.fixture
def artist_account(services: Services) -> str:
    """The email of an artist account (password ``PASSWORD``) linked to the profile "Nora Ilić"."""
    make_user(services, "nora@example.org", artists=["Nora Ilić"])
    return "nora@example.org"


@pytest.fixture
def admin_account(services: Services) -> str:
    """The email of an admin account (password ``PASSWORD``)."""
    make_user(services, "admin@example.org", "admin")
    return "admin@example.org"
