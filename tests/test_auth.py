"""Sign-in, sessions, CSRF, the Origin check and API tokens, driven through the app in-process."""

from __future__ import annotations

import asyncio
import html
import threading
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from argon2 import PasswordHasher
from itsdangerous import URLSafeTimedSerializer
from limits.storage import MemoryStorage
from sqlalchemy import event, func, select
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message

from cite_live import accounts, devices
from cite_live.auth import COOKIE, AuthMiddleware
from cite_live.models import ApiToken, User, UserSession, aware
from cite_live.services import Services, open_services
from cite_live.throttle import AttemptLimiter
from cite_live.web.app import create_app
from cite_live.web.context import safe_next
from cite_live.web.templating import make_templates
from tests.account_fixtures import (
    PASSWORD,
    csrf_token,
    form_token,
    login,
    make_user,
    session_cookie,
    token_for,
)
from tests.app_fixtures import LiveServer, make_settings, new_client, serving
from tests.dbs import REDIS_URL, sqlite_url

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


def test_successful_sign_ins_do_not_count_against_the_limit(
    client: TestClient, services: Services, artist_account: str
) -> None:
    # A room of artists on the Cité's wifi share one address: only failures count.
    for _ in range(services.settings.auth.login_attempts + 2):
        assert post_login(client, artist_account, PASSWORD).status_code == 303
        client.cookies.clear()
    assert post_login(client, artist_account, "wrong password!").status_code == 400


def test_attempts_are_counted_before_they_are_checked_per_address_and_per_email() -> None:
    limiter = AttemptLimiter(MemoryStorage(), attempts=3)
    for _ in range(3):
        assert limiter.attempt(("address:a", "email:x")) is None
    # Another address for the same email, and the same address for another email.
    wait = limiter.attempt(("address:b", "email:x"))
    assert wait is not None and 0 < wait <= 900
    assert limiter.attempt(("address:a", "email:y")) is not None
    # A refused attempt counts nowhere: address b still has its three.
    for _ in range(3):
        assert limiter.attempt(("address:b", "email:y")) is None
    assert limiter.attempt(("address:b", "email:z")) is not None
    # An attempt that succeeded, or that was never checked, is given back.
    limiter.give_back(("address:b", "email:y"))
    assert limiter.attempt(("address:b", "email:z")) is None
    limiter.forget("email:x")
    assert limiter.attempt(("address:c", "email:x")) is None


def test_a_password_check_with_every_slot_taken_is_refused_at_once_and_not_counted(
    client: TestClient, services: Services, artist_account: str
) -> None:
    limit = services.settings.auth.login_attempts
    with services.sessions.begin() as session:
        invited = accounts.create_user(session, "ines@example.org", "artist")
        secret = accounts.create_invitation(session, invited)
    assert post_login(client, artist_account, "wrong password!").status_code == 400
    slots = client.app.state.password_guard.slots
    with ExitStack() as taken:
        for _ in range(slots.size):
            taken.enter_context(slots.hold())
        for password in (PASSWORD, "wrong password!"):
            refused = post_login(client, artist_account, password)
            assert refused.status_code == 503
            assert int(refused.headers["retry-after"]) > 0
            assert "Trop de personnes se connectent en ce moment" in refused.text
        form = {"password": PASSWORD, "confirm_password": PASSWORD}
        form["csrf_token"] = form_token(client, f"/invite/{secret}")
        refused = client.post(f"/invite/{secret}", data=form)
        assert refused.status_code == 503 and int(refused.headers["retry-after"]) > 0
    # The invitation still waits for its password, and the refused attempts counted nothing.
    assert client.post(f"/invite/{secret}", data=form, follow_redirects=False).status_code == 303
    client.cookies.clear()
    for _ in range(limit - 1):
        assert post_login(client, artist_account, "wrong password!").status_code == 400
    assert post_login(client, artist_account, PASSWORD).status_code == 429


@pytest.fixture
def redis_jobs_url(redis_namespace: str) -> str:
    """``jobs.url`` of a Redis namespace of the test's own, emptied afterwards."""
    return f"{REDIS_URL}?namespace={redis_namespace}"


def test_web_processes_sharing_redis_share_the_limit(tmp_path: Path, redis_jobs_url: str) -> None:
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_JOBS_BROKER="redis",
        CITE_LIVE_JOBS_URL=redis_jobs_url,
    )
    # Two installations' worth of services and apps: what two web processes hold.
    first, second = open_services(settings), open_services(settings)
    try:
        make_user(first, "nora@example.org")
        with new_client(first) as one, new_client(second) as two:
            for n in range(settings.auth.login_attempts):
                client = (one, two)[n % 2]
                assert post_login(client, "nora@example.org", f"guess {n}").status_code == 400
            for client in (one, two):
                refused = post_login(client, "nora@example.org", PASSWORD)
                assert refused.status_code == 429
    finally:
        first.close()
        second.close()
    namespace = redis_jobs_url.rpartition("namespace=")[2]
    with redis.Redis.from_url(REDIS_URL) as client:
        assert list(client.scan_iter(f"{namespace}:*"))


def test_concurrent_wrong_passwords_on_two_servers_sharing_redis_are_checked_at_most_the_limit(
    tmp_path: Path, redis_jobs_url: str
) -> None:
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_JOBS_BROKER="redis",
        CITE_LIVE_JOBS_URL=redis_jobs_url,
    )
    first, second = open_services(settings), open_services(settings)
    burst = [("127.0.3.1", f"visitor{n}@example.org", "wrong password!") for n in range(40)]
    try:
        with serving(first) as one, serving(second) as two:
            answers = at_once([one, two], burst)
    finally:
        first.close()
        second.close()
    assert_refusals_say_when_to_retry(answers)
    assert 1 <= sum(r.status_code == 400 for r in answers) <= settings.auth.login_attempts


def test_signing_in_or_asking_a_new_password_while_redis_is_down_waits(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_JOBS_BROKER="redis",
        # Nothing listens on port 1.
        CITE_LIVE_JOBS_URL="redis://127.0.0.1:1/0",
    )
    services = open_services(settings)
    try:
        make_user(services, "nora@example.org")
        with new_client(services) as client:
            response = post_login(client, "nora@example.org", PASSWORD)
            # Nor is a new password asked for: each request may send a message.
            asked = client.post(
                "/login/forgot",
                data={"email": "nora@example.org", "csrf_token": form_token(client)},
            )
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert "La connexion est momentanément impossible" in response.text
        assert asked.status_code == 503
        assert int(asked.headers["retry-after"]) > 0
        assert "Demander un nouveau mot de passe est momentanément impossible" in asked.text
    finally:
        services.close()


def live_client(url: str, address: str = "127.0.0.1") -> httpx.Client:
    """A client of the live server whose requests come from ``address`` (any of 127.0.0.0/8)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=url, transport=transport, timeout=120, follow_redirects=False)


def at_once(
    urls: Sequence[str], attempts: list[tuple[str, str, str]], also: str | None = None
) -> Any:
    """Post each (address, email, password) to /login from a client of its own, all released
    together, the n-th to the server ``urls[n % len(urls)]``; with ``also``, one more client GETs
    that path of the first server among them. The answers, in order (the GET's last)."""
    clients = [
        live_client(urls[n % len(urls)], address) for n, (address, _, _) in enumerate(attempts)
    ]
    reader = live_client(urls[0])
    try:
        tokens = [form_token(c) for c in clients]
        start = threading.Barrier(len(attempts) + (also is not None))

        def post(n: int) -> httpx.Response:
            _, email, password = attempts[n]
            data = {"email": email, "password": password, "csrf_token": tokens[n]}
            start.wait(timeout=60)
            return clients[n].post("/login", data=data)

        def read() -> httpx.Response:
            assert also is not None
            start.wait(timeout=60)
            return reader.get(also)

        with ThreadPoolExecutor(len(attempts) + 1) as pool:
            futures = [pool.submit(post, n) for n in range(len(attempts))]
            if also is not None:
                futures.append(pool.submit(read))
            return [f.result() for f in futures]
    finally:
        for c in [*clients, reader]:
            c.close()


def assert_refusals_say_when_to_retry(responses: list[httpx.Response]) -> None:
    for response in responses:
        assert response.status_code in (400, 429, 503), response.text
        if response.status_code != 400:
            assert int(response.headers["retry-after"]) > 0


def test_concurrent_wrong_passwords_from_one_address_are_checked_at_most_the_limit(
    live_server: LiveServer,
) -> None:
    """The reproduction: 40 at once from one address were all checked (the limit is 10)."""
    limit = live_server.services.settings.auth.login_attempts
    burst = [("127.0.0.7", f"visitor{n}@example.org", "wrong password!") for n in range(40)]
    answers = at_once([live_server.url], burst)
    assert_refusals_say_when_to_retry(answers)
    checked = sum(r.status_code == 400 for r in answers)
    assert checked <= limit
    # Whatever the burst left of the limit is checked one by one, then nothing more.
    with live_client(live_server.url, "127.0.0.7") as client:
        while post_login(client, "late@example.org", "wrong password!").status_code == 400:
            checked += 1
            assert checked <= limit
        refused = post_login(client, "late@example.org", "wrong password!")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert checked == limit


def test_concurrent_wrong_passwords_for_one_account_are_checked_at_most_the_limit(
    live_server: LiveServer,
) -> None:
    limit = live_server.services.settings.auth.login_attempts
    make_user(live_server.services, "nora@example.org")
    burst = [(f"127.0.1.{n}", "nora@example.org", "wrong password!") for n in range(1, 31)]
    answers = at_once([live_server.url], burst)
    assert_refusals_say_when_to_retry(answers)
    assert 1 <= sum(r.status_code == 400 for r in answers) <= limit


@pytest.fixture
def costly_services(tmp_path: Path) -> Iterator[Services]:
    """Services whose argon2 costs what a deployment's does, in the order of magnitude."""
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_AUTH_ARGON2_MEMORY_KIB="19456",
        CITE_LIVE_AUTH_ARGON2_TIME_COST="2",
    )
    services = open_services(settings)
    yield services
    services.close()


def test_a_burst_of_sign_ins_gets_quick_refusals_and_the_api_keeps_answering(
    costly_services: Services,
) -> None:
    """The reproduction: 100 sign-ins at once exhausted the database pool (500s) and an API
    read waited behind them. Here from 25 addresses, so that the limit stops none of them."""
    burst = [
        (f"127.0.2.{n % 25 + 1}", f"visitor{n}@example.org", "wrong password!") for n in range(100)
    ]
    with serving(costly_services) as url:
        answers = at_once([url], burst, also="/api/v1/productions")
    read = answers.pop()
    assert read.status_code == 200 and read.json()["items"] == []
    assert_refusals_say_when_to_retry(answers)
    assert any(r.status_code == 400 for r in answers)


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch, services: Services) -> list[tuple[int, bool]]:
    """For each argon2 hash or check: (database connections checked out, on the event loop)."""
    calls: list[tuple[int, bool]] = []
    for name in ("hash", "verify"):
        real = getattr(PasswordHasher, name)

        def spy(self: PasswordHasher, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            calls.append((services.engine.pool.checkedout(), on_event_loop()))
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(PasswordHasher, name, spy)
    return calls


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_no_database_connection_waits_while_argon2_runs(
    client: TestClient, services: Services, artist_account: str, argon2_calls: list[Any]
) -> None:
    assert post_login(client, artist_account, PASSWORD + "!").status_code == 400
    assert post_login(client, "nobody@example.org", PASSWORD).status_code == 400
    token = login(client, artist_account)
    change = {
        "csrf_token": token,
        "action": "password",
        "current_password": PASSWORD,
        "new_password": "a much longer passphrase",
        "confirm_password": "a much longer passphrase",
    }
    assert client.post("/account", data=change).status_code == 200
    with services.sessions.begin() as session:
        invited = accounts.create_user(session, "ines@example.org", "artist")
        secret = accounts.create_invitation(session, invited)
    client.cookies.clear()
    form = {"password": PASSWORD, "confirm_password": PASSWORD}
    form["csrf_token"] = form_token(client, f"/invite/{secret}")
    accepted = client.post(f"/invite/{secret}", data=form, follow_redirects=False)
    assert accepted.status_code == 303
    with services.sessions.begin() as session:
        found = accounts.request_reset(session, "ines@example.org")
        assert found is not None
    form["csrf_token"] = form_token(client, f"/login/reset/{found[1]}")
    reset = client.post(f"/login/reset/{found[1]}", data=form, follow_redirects=False)
    assert reset.status_code == 303
    # A check per sign-in and for the current password, a hash per new password.
    assert len(argon2_calls) >= 7
    assert argon2_calls == [(0, False)] * len(argon2_calls)


def test_the_account_pages_never_use_the_database_on_the_event_loop(
    client: TestClient, services: Services, artist_account: str
) -> None:
    on_loop: list[str] = []
    # Queries made by these pages' own code (the auth middleware runs before them), and by
    # what they leave to run after the answer (a new-password message).
    modules = {"account", "accounts", "devices"}

    def checkout(*_: Any) -> None:
        if on_event_loop():
            files = [(Path(f.filename), f.name) for f in traceback.extract_stack()]
            ours = [f"{path.name}:{name}" for path, name in files if path.stem in modules]
            if ours:
                on_loop.append(" < ".join(ours))

    event.listen(services.engine, "checkout", checkout)
    assert post_login(client, artist_account, PASSWORD + "!").status_code == 400
    token = login(client, artist_account)
    assert client.get("/login", follow_redirects=False).status_code == 303
    assert client.get("/account").status_code == 200
    for data in (
        {"action": "create_token", "name": "laptop"},
        {"action": "revoke_token", "token_id": "1"},
        {"action": "password", "current_password": "x", "new_password": "y"},
        {"action": "nothing"},
    ):
        assert client.post("/account", data={"csrf_token": token, **data}).status_code < 500
    with services.sessions.begin() as session:
        invited = accounts.create_user(session, "ines@example.org", "artist")
        secret = accounts.create_invitation(session, invited)
    assert client.get(f"/invite/{secret}").status_code == 200
    form = {"csrf_token": token, "password": PASSWORD, "confirm_password": PASSWORD}
    assert client.post(f"/invite/{secret}", data=form, follow_redirects=False).status_code == 303
    token = csrf_token(client)
    for data in ({"action": "end_session", "session_id": "1"}, {"action": "end_all"}):
        assert client.post("/account", data={"csrf_token": token, **data}).status_code < 500
    assert client.get("/login/forgot").status_code == 200
    asked = {"csrf_token": csrf_token(client), "email": "ines@example.org"}
    assert client.post("/login/forgot", data=asked).status_code == 200
    services.outbox.drain()
    with services.sessions.begin() as session:
        found = accounts.request_reset(session, "ines@example.org")
        assert found is not None
    assert client.get(f"/login/reset/{found[1]}").status_code == 200
    form = {"csrf_token": csrf_token(client), "password": "a new passphrase for ines"}
    form["confirm_password"] = form["password"]
    reset = client.post(f"/login/reset/{found[1]}", data=form, follow_redirects=False)
    assert reset.status_code == 303
    assert client.post("/logout", data={"csrf_token": csrf_token(client)}).status_code == 200
    assert on_loop == []


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


def test_signing_out_ends_this_device_only_and_its_cookie_for_good(
    services: Services, client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    token = login(client, artist_account)
    login(other_client, artist_account)
    captured = session_cookie(client)
    assert captured is not None
    client.post("/logout", data={"csrf_token": token})
    assert not signed_in(client)
    assert signed_in(other_client)
    # A copy of the signed-out cookie, taken before, is anonymous (and cleared) anywhere.
    with new_client(services) as thief:
        thief.cookies.set(COOKIE, captured)
        response = thief.get("/account", follow_redirects=False)
        assert response.status_code == 303
        assert f'{COOKIE}=""' in response.headers["set-cookie"]
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(UserSession)) == 1


def test_signing_out_of_all_devices_ends_every_session(
    services: Services, client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    token = login(client, artist_account)
    login(other_client, artist_account)
    captured = session_cookie(other_client)
    response = client.post(
        "/account", data={"csrf_token": token, "action": "end_all"}, follow_redirects=False
    )
    assert (response.status_code, response.headers["location"]) == (
        303,
        "/login?done=signed_out_everywhere",
    )
    assert f'{COOKIE}=""' in response.headers["set-cookie"]
    assert "Tous vos appareils sont déconnectés." in client.get(response.headers["location"]).text
    assert not signed_in(client)
    assert not signed_in(other_client)
    with new_client(services) as thief:
        thief.cookies.set(COOKIE, str(captured))
        assert not signed_in(thief)
    # API tokens are not sessions: they keep working until revoked.
    api = token_for(services, artist_account)
    # Nor can a token sign devices out.
    by_token = client.post("/account", data={"action": "end_all"}, headers=bearer(api))
    assert by_token.status_code == 403
    assert client.get("/api/v1/me/productions", headers=bearer(api)).status_code == 200


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


LAPTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_the_account_page_lists_the_devices_and_signs_one_out(
    services: Services, client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    client.headers["User-Agent"] = LAPTOP
    other_client.headers["User-Agent"] = PHONE
    login(client, artist_account)
    # Signing in again on a device replaces its session rather than adding one.
    token = login(client, artist_account)
    login(other_client, artist_account)
    make_user(services, "ines@example.org")
    with new_client(services) as stranger:
        login(stranger, "ines@example.org")
    with services.sessions() as session:
        phone_id = session.scalars(
            select(UserSession.id).where(UserSession.device == "Safari · iPhone")
        ).one()
        ines_id = session.scalars(
            select(UserSession.id).join(User).where(User.email == "ines@example.org")
        ).one()
    page = client.get("/account").text
    assert page.count("<tr data-this-device>") == 1
    assert 'Firefox · Linux <span class="badge">Cet appareil</span>' in page
    assert "Safari · iPhone</td>" in page
    assert page.count('name="session_id"') == 2
    # Another account's session, a made-up number, a malformed one: refused, nothing ends.
    for raw in (str(ines_id), "999999", "-1", "1e3", "9" * 40, ""):
        refused = client.post(
            "/account", data={"csrf_token": token, "action": "end_session", "session_id": raw}
        )
        assert refused.status_code == 400, raw
        assert "Cet appareil n’est pas connecté, ou il a déjà été déconnecté." in refused.text
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(UserSession)) == 3
    ended = client.post(
        "/account",
        data={"csrf_token": token, "action": "end_session", "session_id": str(phone_id)},
    )
    assert ended.status_code == 200
    assert "Cet appareil est déconnecté." in ended.text
    assert "Safari · iPhone" not in ended.text
    assert not signed_in(other_client)
    assert signed_in(client)
    # This device's own row signs it out, as its Sign out button does.
    with services.sessions() as session:
        here = session.scalars(
            select(UserSession.id).where(UserSession.device == "Firefox · Linux")
        ).one()
    out = client.post(
        "/account",
        data={"csrf_token": token, "action": "end_session", "session_id": str(here)},
        follow_redirects=False,
    )
    assert (out.status_code, out.headers["location"]) == (303, "/")
    assert not signed_in(client)


@pytest.mark.parametrize(
    ("agent", "shown"),
    [
        (LAPTOP, "Firefox · Linux"),
        (PHONE, "Safari · iPhone"),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
            "Edge · Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36",
            "Chrome · Android",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            "Safari · macOS",
        ),
        ("curl/8.5.0", ""),
        ("<script>" * 500, ""),
    ],
)
def test_a_device_is_named_by_its_browser_and_system(agent: str, shown: str) -> None:
    assert devices.device_name(agent) == shown


def test_a_session_is_read_with_one_lookup_and_written_back_only_now_and_then(
    services: Services, client: TestClient, artist_account: str
) -> None:
    login(client, artist_account)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0].upper())

    app = Starlette(
        routes=[Route("/who", lambda request: PlainTextResponse(str(request.state.user.id)))],
        middleware=[Middleware(AuthMiddleware)],
    )
    app.state.services = services
    event.listen(services.engine, "before_cursor_execute", seen)
    try:
        with TestClient(app, cookies=client.cookies) as bare:
            for _ in range(3):
                assert bare.get("/who").status_code == 200
            # The session and its account in one lookup, the account's artists in another;
            # nothing written.
            assert statements == ["SELECT", "SELECT"] * 3
            statements.clear()
            with services.sessions.begin() as session:
                row = session.scalars(select(UserSession)).one()
                row.last_seen_at = datetime.now(UTC) - devices.SEEN_PRECISION - timedelta(1)
            statements.clear()
            for _ in range(3):
                assert bare.get("/who").status_code == 200
            assert statements.count("UPDATE") == 1
    finally:
        event.remove(services.engine, "before_cursor_execute", seen)
    with services.sessions() as session:
        seen_at = session.scalars(select(UserSession.last_seen_at)).one()
    assert datetime.now(UTC) - aware(seen_at) < devices.SEEN_PRECISION


def test_a_session_ends_after_its_lifetime_and_forged_or_old_cookies_are_anonymous(
    services: Services, client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    login(client, artist_account)
    user_id = user_id_of(services, artist_account)
    signer = URLSafeTimedSerializer(services.secret_key, salt="session")
    # Signed with the site's key, but naming no session: a made-up secret, the form cookies
    # had before sessions were kept, a secret of the wrong type.
    for payload in (
        {"s": "made-up-secret", "c": "x"},
        {"u": user_id, "e": 0, "c": "x"},
        {"s": ["a"], "c": "x"},
        {"s": "x" * 5000, "c": "x"},
        ["not", "a", "dict"],
    ):
        other_client.cookies.set(COOKIE, signer.dumps(payload))
        assert not signed_in(other_client), payload
    with services.sessions.begin() as session:
        row = session.scalars(select(UserSession)).one()
        row.created_at = datetime.now(UTC) - timedelta(days=services.settings.auth.session_days)
    assert not signed_in(client)
    # Cleared away when the account next signs in.
    login(client, artist_account)
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(UserSession)) == 1


def test_an_account_disabled_then_enabled_again_is_not_signed_back_in(
    services: Services, client: TestClient, other_client: TestClient, artist_account: str
) -> None:
    login(other_client, artist_account)
    make_user(services, "admin@example.org", "admin")
    token = login(client, "admin@example.org")
    nora = user_id_of(services, artist_account)
    for disabled in ({"disabled": "1"}, {}):
        response = client.post(
            f"/admin/users/{nora}",
            data={"csrf_token": token, "role": "artist", **disabled},
            follow_redirects=False,
        )
        assert response.status_code == 303
    assert not signed_in(other_client)


def user_id_of(services: Services, email: str) -> int:
    with services.sessions() as session:
        return session.scalars(select(User.id).where(User.email == email)).one()


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
        (PASSWORD, " " * 10, " " * 10, "Les répétitions comme « aaa » sont faciles à deviner."),
        (PASSWORD, "a" * 10, "a" * 10, "Les répétitions comme « aaa » sont faciles à deviner."),
        (PASSWORD, "password123", "password123", "C’est un mot de passe très courant."),
        # The account's own words count against it (its email address, its artists' names).
        (PASSWORD, "nora ilic nora", "nora ilic nora", "trop facile à deviner"),
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
    assert message in html.unescape(response.text)
    assert signed_in(client)
    client.cookies.clear()
    assert post_login(client, artist_account, PASSWORD).status_code == 303


def test_a_weak_new_password_is_explained_in_english_too(
    client: TestClient, artist_account: str
) -> None:
    token = login(client, artist_account)
    response = client.post(
        "/account",
        data={
            "csrf_token": token,
            "action": "password",
            "current_password": PASSWORD,
            "new_password": "password123",
            "confirm_password": "password123",
        },
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 400
    assert (
        "This password is too easy to guess. This is a very common password. "
        "Add another word or two. Uncommon words are better."
    ) in html.unescape(response.text)


def test_guesses_of_the_current_password_count_against_the_sign_in_limit(
    client: TestClient, services: Services, artist_account: str
) -> None:
    token = login(client, artist_account)
    change = {
        "csrf_token": token,
        "action": "password",
        "new_password": "a much longer passphrase",
        "confirm_password": "a much longer passphrase",
    }
    for n in range(services.settings.auth.login_attempts):
        wrong = client.post("/account", data={**change, "current_password": f"guess {n}"})
        assert wrong.status_code == 400
    refused = client.post("/account", data={**change, "current_password": PASSWORD})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert "Trop de tentatives" in refused.text
    # The account's sign-in shares the count: guesses are not doubled by using both forms.
    client.cookies.clear()
    assert post_login(client, artist_account, PASSWORD).status_code == 429


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
    # Exempt from CSRF and from the Origin check: a browser never sends it by itself. (A
    # production that does not exist: the refusal is the handler's 404, not a forgery's 403.)
    response = client.post(
        "/studio/productions/nothing/retry",
        headers={**headers, "Origin": "https://elsewhere.example"},
    )
    assert response.status_code == 404
    assert client.get("/api/v1/productions", headers=headers).status_code == 200
    assert "set-cookie" not in client.get("/account", headers=headers).headers


@pytest.mark.parametrize(
    "form",
    [
        {"action": "create_token", "name": "another way in"},
        {"action": "revoke_token", "token_id": "1"},
        {"action": "password", "current_password": "x", "new_password": "y"},
    ],
)
def test_an_api_token_cannot_change_the_password_or_the_tokens(
    client: TestClient, services: Services, artist_account: str, form: dict[str, str]
) -> None:
    token = token_for(services, artist_account)
    response = client.post("/account", data=form, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    assert "sign in to do it" in response.text or "connectez-vous" in response.text
    with services.sessions() as session:
        tokens = session.scalars(select(ApiToken)).all()
    assert [t.revoked_at for t in tokens] == [None]
    still = client.get("/api/v1/productions", headers={"Authorization": f"Bearer {token}"})
    assert still.status_code == 200


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


@pytest.mark.parametrize(
    "token_id", ["99999999999999999999", "²", "-1", "1.0", "", " 1", "0x1", "1" * 5000]
)
def test_a_malformed_token_number_is_refused_with_one_sentence(
    client: TestClient, services: Services, artist_account: str, token_id: str
) -> None:
    """The reproduction: a 20-digit number (OverflowError) or "²" (ValueError) answered 500."""
    bearer = token_for(services, artist_account)
    csrf = login(client, artist_account)
    response = client.post(
        "/account", data={"csrf_token": csrf, "action": "revoke_token", "token_id": token_id}
    )
    assert response.status_code == 400
    assert "Ce numéro de jeton n’est pas valide." in response.text
    assert client.get("/account", headers={"Authorization": f"Bearer {bearer}"}).status_code == 200


def test_another_accounts_token_is_not_revoked(
    client: TestClient, services: Services, artist_account: str
) -> None:
    make_user(services, "ines@example.org")
    theirs = token_for(services, "ines@example.org")
    with services.sessions() as session:
        token_id = session.scalars(select(ApiToken.id)).one()
    csrf = login(client, artist_account)
    response = client.post(
        "/account", data={"csrf_token": csrf, "action": "revoke_token", "token_id": str(token_id)}
    )
    assert response.status_code == 400
    assert "Ce jeton n’existe pas ou a déjà été révoqué." in response.text
    assert client.get("/account", headers={"Authorization": f"Bearer {theirs}"}).status_code == 200


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
