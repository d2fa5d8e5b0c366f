"""Sign-in, sessions, CSRF, the Origin check and API tokens, driven through the app in-process."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from cite_live.account_pages import LoginLimiter
from cite_live.app import create_app
from cite_live.auth import COOKIE, AuthMiddleware, safe_next
from cite_live.models import ApiToken, User
from cite_live.services import Services, open_services
from cite_live.templating import make_templates
from tests.account_fixtures import (
    PASSWORD,
    csrf_token,
    form_token,
    login,
    make_user,
    session_cookie,
    token_for,
)
from tests.app_fixtures import make_settings, new_client
from tests.dbs import sqlite_url

EVIL_TARGETS = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "https:evil.example",
    "%2F%2Fevil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "/ok\x00",
    "/\tevil",
    "javascript:alert(1)",
    "",
    "evil.example",
]


def signed_in(client: TestClient) -> bool:
    """Whether the client's session reaches the account page (anonymous visitors are sent away)."""
    response = client.get("/account", follow_redirects=False)
    if response.status_code == 303:
        assert response.headers["location"].startswith("/login?next=")
        return False
    assert response.status_code == 200
    return True


def post_login(client: TestClient, email: str, password: str, **extra: str) -> Any:
    data = {"email": email, "password": password, "csrf_token": form_token(client), **extra}
    return client.post("/login", data=data, follow_redirects=False)


def guarded_app(services: Services, handler: Any) -> Starlette:
    """A bare app behind AuthMiddleware with one POST route, ``/form``."""
    app = Starlette(
        routes=[Route("/form", handler, methods=["POST"])],
        middleware=[Middleware(AuthMiddleware)],
    )
    app.state.services = services
    app.state.templates = make_templates(services.settings)
    return app


def login_elsewhere(services: Services, client: TestClient, email: str) -> str:
    """Sign in on the real app and hand the session cookie to ``client``; its CSRF token."""
    with new_client(services) as site:
        token = login(site, email)
        cookie = session_cookie(site)
    assert cookie is not None
    client.cookies.set(COOKIE, cookie)
    return token


# --- signing in and out --------------------------------------------------------------------------


def test_login_signs_in_and_logout_signs_out(client: TestClient, artist_account: str) -> None:
    assert not signed_in(client)
    token = login(client, artist_account)
    assert signed_in(client)
    home = client.get("/")
    assert "/account" in home.text and 'action="/logout"' in home.text
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert session_cookie(client) is None
    assert not signed_in(client)


def test_login_goes_to_next_and_is_case_blind_for_the_email(
    client: TestClient, artist_account: str
) -> None:
    response = post_login(client, artist_account.upper(), PASSWORD, next="/artists?page=2")
    assert (response.status_code, response.headers["location"]) == (303, "/artists?page=2")


def test_a_wrong_password_or_unknown_email_is_refused_with_one_sentence(
    client: TestClient, artist_account: str
) -> None:
    for email, password in [(artist_account, PASSWORD + "!"), ("nobody@example.org", PASSWORD)]:
        response = post_login(client, email, password)
        assert response.status_code == 400
        assert "L’adresse e-mail ou le mot de passe est incorrect." in response.text
    assert not signed_in(client)


def test_a_disabled_account_cannot_sign_in_and_its_session_ends(
    client: TestClient, services: Services, artist_account: str
) -> None:
    login(client, artist_account)
    with services.sessions.begin() as session:
        user = session.scalars(select(User).where(User.email == artist_account)).one()
        user.disabled = True
    assert not signed_in(client)
    assert post_login(client, artist_account, PASSWORD).status_code == 400


def test_repeated_failures_are_limited_with_retry_after(
    client: TestClient, services: Services, artist_account: str
) -> None:
    for _ in range(services.settings.auth.login_attempts):
        assert post_login(client, artist_account, "wrong password!").status_code == 400
    refused = post_login(client, artist_account, PASSWORD)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Trop de tentatives de connexion échouées" in refused.text
    assert not signed_in(client)


def test_the_limiter_counts_per_address_and_per_email_over_fifteen_minutes() -> None:
    limiter = LoginLimiter(attempts=3)
    for n in range(3):
        assert limiter.retry_after(("address:a", "email:x"), now=100.0 + n) is None
        limiter.fail(("address:a", "email:x"), now=100.0 + n)
    # Another address for the same email, and the same address for another email.
    assert limiter.retry_after(("address:b", "email:x"), now=110.0) == 891
    assert limiter.retry_after(("address:a", "email:y"), now=110.0) == 891
    assert limiter.retry_after(("address:b", "email:y"), now=110.0) is None
    # Fifteen minutes after the first failure, one attempt is allowed again.
    assert limiter.retry_after(("address:a", "email:x"), now=100.0 + 900.5) is None


def test_the_limiter_forgets_old_keys_when_full() -> None:
    limiter = LoginLimiter(attempts=2, max_keys=10)
    for n in range(30):
        limiter.fail((f"address:{n}",), now=float(n))
    assert len(limiter.failures) <= 10
    assert "address:29" in limiter.failures


# --- sessions ------------------------------------------------------------------------------------


def test_anonymous_pages_set_no_cookie_and_forms_set_a_safe_one(client: TestClient) -> None:
    for path in ("/", "/artists", "/search?q=x"):
        assert "set-cookie" not in client.get(path).headers
    page = client.get("/login")
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie and "Max-Age" not in cookie
    assert "no-store" in page.headers["cache-control"]


def test_the_session_cookie_is_secure_when_the_site_is_https(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_URL="https://live.example"
    )
    services = open_services(settings)
    try:
        make_user(services, "nora@example.org")
        with new_client(services) as plain:
            assert "Secure" in plain.get("/login").headers["set-cookie"]
        app = create_app(services.settings, services)
        with TestClient(app, base_url="https://testserver") as client:
            token = form_token(client)
            response = client.post(
                "/login",
                data={"email": "nora@example.org", "password": PASSWORD, "csrf_token": token},
                headers={"Origin": "https://live.example"},
                follow_redirects=False,
            )
            cookie = response.headers["set-cookie"]
            assert "Secure" in cookie
            assert f"Max-Age={int(settings.auth.session_days * 86400)}" in cookie
    finally:
        services.close()


def test_login_rotates_the_session_and_the_old_cookie_stays_anonymous(
    client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    before_token = form_token(client)
    before = session_cookie(client)
    assert before is not None
    login(client, artist_account)
    after = session_cookie(client)
    assert after is not None and after != before
    assert csrf_token(client) != before_token
    other_client.cookies.set(COOKIE, before)
    assert not signed_in(other_client)


def test_a_cookie_replayed_after_logout_is_anonymous(
    client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    token = login(client, artist_account)
    captured = session_cookie(client)
    assert captured is not None
    client.post("/logout", data={"csrf_token": token})
    other_client.cookies.set(COOKIE, captured)
    response = other_client.get("/account", follow_redirects=False)
    assert response.status_code == 303
    # The stale cookie is also cleared.
    assert f'{COOKIE}=""' in response.headers["set-cookie"]


def test_logout_ends_the_sessions_of_every_device(
    client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    token = login(client, artist_account)
    login(other_client, artist_account)
    client.post("/logout", data={"csrf_token": token})
    assert not signed_in(other_client)


def test_a_password_change_ends_other_sessions_but_keeps_this_one(
    client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    token = login(client, artist_account)
    login(other_client, artist_account)
    response = client.post(
        "/account",
        data={
            "csrf_token": token,
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "a much longer passphrase",
            "confirm_password": "a much longer passphrase",
        },
    )
    assert response.status_code == 200
    assert "Votre mot de passe a été changé" in response.text
    assert signed_in(client)
    assert not signed_in(other_client)
    # Forms already open on this device keep working.
    assert csrf_token(client) == token
    again = client.post("/account", data={"csrf_token": token, "action": "create_token"})
    assert again.status_code == 200
    assert post_login(other_client, artist_account, PASSWORD).status_code == 400
    assert post_login(other_client, artist_account, "a much longer passphrase").status_code == 303


@pytest.mark.parametrize(
    ("current", "new", "confirm", "message"),
    [
        ("not the password", "a much longer passphrase", "a much longer passphrase", "actuel"),
        (PASSWORD, "short", "short", "au moins 10 caractères"),
        (PASSWORD, "nora@example.org", "nora@example.org", "adresse e-mail"),
        (PASSWORD, "a much longer passphrase", "another passphrase", "pas identiques"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    client: TestClient, artist_account: str, current: str, new: str, confirm: str, message: str
) -> None:
    token = login(client, artist_account)
    response = client.post(
        "/account",
        data={
            "csrf_token": token,
            "action": "password",
            "current_password": current,
            "new_password": new,
            "confirm_password": confirm,
        },
    )
    assert response.status_code == 400
    assert message in response.text
    assert signed_in(client)


# --- CSRF and the Origin check -------------------------------------------------------------------


def test_a_form_without_or_with_a_wrong_token_is_refused(
    client: TestClient, artist_account: str
) -> None:
    login(client, artist_account)
    for data in ({"action": "create_token"}, {"action": "create_token", "csrf_token": "forged"}):
        response = client.post("/account", data=data)
        assert response.status_code == 403
        assert "Ce formulaire a expiré : rechargez la page et réessayez." in response.text
    # The anonymous login form needs its token too.
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    response = client.post("/login", data={"email": artist_account, "password": PASSWORD})
    assert response.status_code == 403


def test_a_request_from_another_site_is_refused(client: TestClient, artist_account: str) -> None:
    token = login(client, artist_account)
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Referer": "https://evil.example/page"},
        {"Origin": "http://testserver.evil.example"},
    ):
        response = client.post(
            "/account", data={"csrf_token": token, "action": "create_token"}, headers=headers
        )
        assert response.status_code == 403, headers
        assert "Cette requête vient d’un autre site." in response.text
    for headers in ({"Origin": "http://testserver"}, {"Referer": "http://testserver/account"}):
        response = client.post(
            "/account", data={"csrf_token": token, "action": "create_token"}, headers=headers
        )
        assert response.status_code == 200, headers


def test_the_site_url_is_this_site_too(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_URL="https://live.example"
    )
    services = open_services(settings)
    try:
        make_user(services, "nora@example.org")
        # Over HTTPS, as the session cookie is Secure when site.url is.
        app = create_app(settings, services)
        with TestClient(app, base_url="https://testserver") as client:
            token = login(client, "nora@example.org")
            response = client.post(
                "/account",
                data={"csrf_token": token, "action": "create_token"},
                headers={"Origin": "https://live.example"},
            )
            assert response.status_code == 200
    finally:
        services.close()


def test_the_header_token_is_accepted_and_the_api_answers_refusals_in_json(
    client: TestClient, artist_account: str
) -> None:
    token = login(client, artist_account)
    response = client.post(
        "/account",
        data={"action": "create_token", "name": "by header"},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert "data-new-token" in response.text
    refused = client.post("/api/v1/productions", headers={"X-CSRF-Token": "forged"})
    assert refused.status_code == 403
    # The API answers in English, as everywhere else.
    assert refused.json() == {
        "error": "This form has expired: reload the page and try again.",
        "status": 403,
    }


def test_multipart_forms_carry_the_token_and_are_replayed_whole(
    services: Services, artist_account: str
) -> None:
    received: list[tuple[str, int]] = []

    async def upload_cover(request: Request) -> PlainTextResponse:
        form = await request.form()
        cover = form["cover"]
        assert not isinstance(cover, str)
        received.append((str(form["title"]), len(await cover.read())))
        await form.close()
        return PlainTextResponse("ok")

    image = b"\x89PNG" + bytes(3_000_000)
    with TestClient(guarded_app(services, upload_cover)) as client:
        token = login_elsewhere(services, client, artist_account)
        response = client.post(
            "/form",
            data={"title": "Pochette", "csrf_token": token},
            files={"cover": ("cover.png", image, "image/png")},
        )
        assert response.status_code == 200
        assert received == [("Pochette", len(image))]
        refused = client.post(
            "/form", data={"title": "x"}, files={"cover": ("cover.png", image, "image/png")}
        )
        assert refused.status_code == 403
        assert received == [("Pochette", len(image))]


def test_oversized_forms_get_413(client: TestClient, artist_account: str) -> None:
    token = login(client, artist_account)
    response = client.post(
        "/account",
        content=b"csrf_token=" + token.encode() + b"&pad=" + b"x" * (1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert "trop volumineux" in response.text


def test_anonymous_api_requests_are_left_to_the_handler(client: TestClient) -> None:
    # No session and no token: nothing to forge; the route answers as it does for anyone.
    response = client.post("/api/v1/artists")
    assert response.status_code == 405


def test_bodies_that_are_not_forms_stream_through_untouched(services: Services) -> None:
    """A tus PATCH reaches the app chunk by chunk, before the client has sent the rest."""
    seen: list[int] = []
    produced: list[int] = []

    async def patch(request: Request) -> PlainTextResponse:
        async for chunk in request.stream():
            if chunk:
                # How many chunks the client had produced when this one arrived.
                seen.append(len(produced))
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/upload", patch, methods=["PATCH"])])
    app.state.services = services
    app.state.templates = None
    middleware = AuthMiddleware(app)
    make_user(services, "ines@example.org")
    with new_client(services) as signed:
        csrf = login(signed, "ines@example.org")
        cookie = session_cookie(signed)
    assert cookie is not None

    async def run() -> list[Message]:
        chunks = [b"a" * 1000, b"b" * 1000, b"c" * 1000]

        async def receive() -> Message:
            produced.append(1)
            body = chunks[len(produced) - 1]
            return {"type": "http.request", "body": body, "more_body": len(produced) < 3}

        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "PATCH",
            "scheme": "http",
            "path": "/upload",
            "raw_path": b"/upload",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"content-type", b"application/offset+octet-stream"),
                (b"x-csrf-token", csrf.encode()),
                (b"cookie", f"{COOKIE}={cookie}".encode()),
            ],
            "client": ("127.0.0.1", 1234),
            "server": ("testserver", 80),
            "app": app,
        }
        await middleware(scope, receive, send)
        return sent

    sent = asyncio.run(run())
    assert sent[0]["status"] == 200
    assert seen == [1, 2, 3]


# --- API tokens ----------------------------------------------------------------------------------


def test_a_bearer_token_signs_in_on_every_route_without_csrf(
    client: TestClient, services: Services, artist_account: str
) -> None:
    token = token_for(services, artist_account)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/account", headers=headers).status_code == 200
    # Exempt from CSRF and from the Origin check: a browser never sends it by itself.
    response = client.post(
        "/account",
        data={"action": "create_token", "name": "script"},
        headers={**headers, "Origin": "https://elsewhere.example"},
    )
    assert response.status_code == 200
    assert client.get("/api/v1/productions", headers=headers).status_code == 200
    assert "set-cookie" not in client.get("/account", headers=headers).headers


def test_a_revoked_or_unknown_token_gets_401(
    client: TestClient, services: Services, artist_account: str
) -> None:
    token = token_for(services, artist_account)
    with services.sessions.begin() as session:
        row = session.scalars(select(ApiToken)).one()
        row.revoked_at = datetime.now(UTC)
    for bad in (token, "clw_unknown", "garbage"):
        response = client.get("/api/v1/productions", headers={"Authorization": f"Bearer {bad}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"] == "This API token is not valid, or it has been revoked."
    page = client.get("/", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 401
    assert "<html" in page.text


def test_tokens_of_a_disabled_account_stop_working(
    client: TestClient, services: Services, artist_account: str
) -> None:
    token = token_for(services, artist_account)
    with services.sessions.begin() as session:
        session.scalars(select(User)).one().disabled = True
    response = client.get("/account", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_tokens_are_created_shown_once_and_revoked_from_the_account_page(
    client: TestClient, services: Services, artist_account: str
) -> None:
    csrf = login(client, artist_account)
    page = client.post(
        "/account", data={"csrf_token": csrf, "action": "create_token", "name": "laptop"}
    )
    shown = page.text.split("data-new-token>")[1].split("<")[0]
    assert shown.startswith("clw_")
    assert client.get("/account", headers={"Authorization": f"Bearer {shown}"}).status_code == 200
    again = client.get("/account")
    assert shown not in again.text and "laptop" in again.text
    with services.sessions() as session:
        token_id = session.scalars(select(ApiToken.id)).one()
    response = client.post(
        "/account", data={"csrf_token": csrf, "action": "revoke_token", "token_id": str(token_id)}
    )
    assert response.status_code == 200
    assert client.get("/account", headers={"Authorization": f"Bearer {shown}"}).status_code == 401
    # Someone else's token, or one already revoked, cannot be revoked.
    response = client.post(
        "/account", data={"csrf_token": csrf, "action": "revoke_token", "token_id": str(token_id)}
    )
    assert response.status_code == 400


# --- where to go after signing in ----------------------------------------------------------------


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize(
    "target", ["/", "/studio", "/productions/concert?x=1", "/search?q=caf%C3%A9"]
)
def test_next_keeps_our_own_paths(target: str) -> None:
    assert safe_next(target) == target


@pytest.mark.parametrize("target", EVIL_TARGETS[:6])
def test_login_redirects_foreign_next_to_the_home_page(
    client: TestClient, artist_account: str, target: str
) -> None:
    response = post_login(client, artist_account, PASSWORD, next=target)
    assert (response.status_code, response.headers["location"]) == (303, "/")


def test_next_from_the_query_string_is_kept_through_the_form(
    client: TestClient, artist_account: str
) -> None:
    page = client.get("/login?next=/studio")
    assert 'name="next" value="/studio"' in page.text
    page = client.get("/login?next=//evil.example")
    assert 'name="next" value="/"' in page.text


# --- caches --------------------------------------------------------------------------------------


def test_the_page_cache_never_serves_or_keeps_a_signed_in_page(
    services: Services, artist_account: str
) -> None:
    settings = replace(services.settings, page_cache_seconds=30)
    with TestClient(create_app(settings, services)) as anonymous:
        assert anonymous.get("/").headers["x-cache"] == "miss"
        assert anonymous.get("/").headers["x-cache"] == "hit"
        # A form's page sets a cookie: never kept for the next visitor.
        assert anonymous.get("/login").headers.get("x-cache") == "miss"
        anonymous.cookies.clear()
        assert anonymous.get("/login").headers.get("x-cache") == "miss"
    with TestClient(create_app(settings, services)) as member:
        login(member, artist_account)
        page = member.get("/")
        assert "x-cache" not in page.headers
        assert "private" in page.headers["cache-control"]
        assert 'action="/logout"' in page.text
