"""Accounts, passwords, API tokens and invitations; `cite-live user add` and `token create`."""

from __future__ import annotations

import hashlib
import html
import io
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zxcvbn.feedback
from babel.messages.extract import extract_from_file
from sqlalchemy import event, select
from starlette.testclient import TestClient

from cite_live import accounts, i18n
from cite_live.accounts import AccountError
from cite_live.catalogue import artist_by_name
from cite_live.cli import main
from cite_live.models import ApiToken, Artist, Invitation, User
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.web.app import create_app
from tests.account_fixtures import PASSWORD, form_token, make_user, session_cookie
from tests.app_fixtures import make_settings


@pytest.fixture
def cli_env(settings: Settings, services: Services, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The environment `cite-live` reads, pointing at the test's database and data dir."""
    monkeypatch.setenv("CITE_LIVE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CITE_LIVE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("CITE_LIVE_SITE_URL", "https://live.example")
    monkeypatch.setenv("CITE_LIVE_AUTH_ARGON2_MEMORY_KIB", "1024")
    monkeypatch.setenv("CITE_LIVE_AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.delenv("CITE_LIVE_CONFIG", raising=False)
    return settings


def user_named(services: Services, email: str) -> User:
    with services.sessions() as session:
        user = session.scalars(select(User).where(User.email == email)).one()
        session.expunge(user)
        return user


# --- passwords -----------------------------------------------------------------------------------


def test_passwords_are_argon2id_with_the_configured_cost(services: Services) -> None:
    make_user(services, "nora@example.org")
    stored = user_named(services, "nora@example.org").password_hash
    assert stored is not None
    assert stored.startswith("$argon2id$v=19$m=1024,t=1,")
    assert accounts.verify_password(services.settings, stored, PASSWORD)
    assert not accounts.verify_password(services.settings, stored, PASSWORD.upper())
    assert not accounts.verify_password(services.settings, "not a hash", PASSWORD)
    assert not accounts.verify_password(services.settings, None, PASSWORD)


def test_a_weaker_hash_is_replaced_on_login(services: Services, tmp_path: Path) -> None:
    make_user(services, "nora@example.org")
    stronger = replace(
        services.settings,
        auth=replace(services.settings.auth, argon2_memory_kib=2048, argon2_time_cost=2),
    )
    app = create_app(stronger, replace(services, settings=stronger))
    with TestClient(app) as client:
        token = form_token(client)
        response = client.post(
            "/login",
            data={"email": "nora@example.org", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
    assert response.status_code == 303
    user = user_named(services, "nora@example.org")
    assert user.password_hash is not None
    assert user.password_hash.startswith("$argon2id$v=19$m=2048,t=2,")
    assert user.last_login_at is not None


WEAK = [" " * 10, "a" * 10, "password123"]


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 10"),
        ("nora@example.org", "email address"),
        ("NORA@example.org ", "email address"),
        ("x" * 1025, "at most 1024"),
        *((weak, "too easy to guess") for weak in WEAK),
    ],
)
def test_weak_passwords_are_refused(services: Services, password: str, reason: str) -> None:
    with services.sessions.begin() as session, pytest.raises(AccountError) as refused:
        accounts.create_user(
            session, "nora@example.org", "artist", password=password, settings=services.settings
        )
    assert reason in refused.value.message


@pytest.mark.parametrize("password", WEAK)
def test_a_password_the_estimator_scores_weak_is_refused_with_its_reasons(password: str) -> None:
    refused = accounts.password_problem(password, "nora@example.org")
    assert refused is not None
    assert refused.message == "This password is too easy to guess."
    assert refused.hints and set(refused.hints) <= set(accounts.STRENGTH_FEEDBACK)
    french = refused.explain("fr")
    assert french.startswith("Ce mot de passe est trop facile à deviner. ")
    assert all(i18n.gettext(hint, "fr") in french for hint in refused.hints)


@pytest.mark.parametrize(
    ("email", "artist", "password"),
    [
        ("zephyrine.quatuor@example.org", None, "zephyrine.quatuor"),
        ("ondes@example.org", "Les Ondes Martenot", "lesondesmartenot"),
        ("nora@example.org", "Nora Ilić", "nora ilic nora"),
    ],
)
def test_an_accounts_own_words_count_against_its_password(
    services: Services, email: str, artist: str | None, password: str
) -> None:
    # Strong enough for anyone else.
    assert accounts.password_problem(password, "someone@example.org") is None
    with services.sessions.begin() as session, pytest.raises(AccountError) as refused:
        ids = [artist_by_name(session, artist).id] if artist else []
        accounts.create_user(
            session, email, "artist", password=password, artist_ids=ids, settings=services.settings
        )
    assert refused.value.message == "This password is too easy to guess."


def test_a_passphrase_is_accepted() -> None:
    for password in (PASSWORD, "a much longer passphrase", "tuba crêpe nocturne"):
        assert accounts.password_problem(password, "nora@example.org") is None


def test_every_reason_the_estimator_gives_is_marked_for_translation() -> None:
    said = {message for _, message, _, _ in extract_from_file("python", zxcvbn.feedback.__file__)}
    assert said == set(accounts.STRENGTH_FEEDBACK)
    for message in said:
        assert i18n.gettext(message, "en") == message
        assert i18n.gettext(message, "fr") != message


def test_accounts_are_unique_by_lower_cased_email_and_need_a_known_role(
    services: Services,
) -> None:
    make_user(services, "Nora@Example.org")
    assert user_named(services, "nora@example.org").email == "nora@example.org"
    with services.sessions.begin() as session:
        for email, role in [
            ("NORA@example.org", "artist"),
            ("not an address", "artist"),
            ("ines@example.org", "superuser"),
        ]:
            with pytest.raises(AccountError):
                accounts.create_user(session, email, role)


def test_an_artist_account_speaks_for_its_profiles(services: Services) -> None:
    user_id = make_user(services, "duo@example.org", artists=["Nora Ilić", "Les Ondes"])
    with services.sessions() as session:
        user = session.get(User, user_id)
        assert user is not None
        assert sorted(a.name for a in user.artists) == ["Les Ondes", "Nora Ilić"]
    with services.sessions.begin() as session, pytest.raises(AccountError):
        accounts.create_user(session, "ghost@example.org", "artist", artist_ids=[999])


# --- API tokens ----------------------------------------------------------------------------------


def test_only_the_hash_of_a_token_is_kept_with_its_prefix(services: Services) -> None:
    user_id = make_user(services, "nora@example.org")
    with services.sessions.begin() as session:
        user = session.get(User, user_id)
        assert user is not None
        token = accounts.create_token(session, user, "laptop")
    assert token.startswith("clw_") and len(token) > 40
    with services.sessions() as session:
        row = session.scalars(select(ApiToken)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert row.prefix == token[:12]
        assert row.name == "laptop"
        assert token not in (row.token_hash, row.prefix)


def test_last_use_is_written_at_most_once_a_minute(services: Services) -> None:
    user_id = make_user(services, "nora@example.org")
    with services.sessions.begin() as session:
        user = session.get(User, user_id)
        assert user is not None
        token = accounts.create_token(session, user)
    with services.sessions.begin() as session:
        assert accounts.user_for_token(session, token) is not None
    with services.sessions() as session:
        first = session.scalars(select(ApiToken.last_used_at)).one()
    assert first is not None
    with services.sessions.begin() as session:
        accounts.user_for_token(session, token)
    with services.sessions() as session:
        assert session.scalars(select(ApiToken.last_used_at)).one() == first
    with services.sessions.begin() as session:
        row = session.scalars(select(ApiToken)).one()
        row.last_used_at = datetime.now(UTC) - timedelta(minutes=2)
    with services.sessions.begin() as session:
        accounts.user_for_token(session, token)
    with services.sessions() as session:
        later = session.scalars(select(ApiToken.last_used_at)).one()
    assert later is not None and later.replace(tzinfo=None) > first.replace(tzinfo=None)


def test_a_token_used_by_many_requests_at_once_is_written_once(
    any_database_url: str, tmp_path: Path
) -> None:
    """Four requests read the token's last use before any of them writes it back: one write."""
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        user_id = make_user(services, "nora@example.org")
        with services.sessions.begin() as session:
            user = session.get(User, user_id)
            assert user is not None
            token = accounts.create_token(session, user)
        readers = threading.Barrier(4, timeout=10)
        writes: list[int] = []

        def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            words = statement.split()
            if words[:1] == ["SELECT"] and "api_tokens" in statement:
                readers.wait()  # every request has read before any writes
            elif words[:2] == ["UPDATE", "api_tokens"]:
                writes.append(cursor.rowcount)

        def use() -> bool:
            with services.sessions.begin() as session:
                return accounts.user_for_token(session, token) is not None

        event.listen(services.engine, "after_cursor_execute", after)
        try:
            with ThreadPoolExecutor(4) as pool:
                assert all(pool.map(lambda _: use(), range(4)))
        finally:
            event.remove(services.engine, "after_cursor_execute", after)
        assert sum(writes) == 1, f"rows written: {writes}"
    finally:
        services.close()


def test_revoked_tokens_and_disabled_accounts_are_refused(services: Services) -> None:
    user_id = make_user(services, "nora@example.org")
    with services.sessions.begin() as session:
        user = session.get(User, user_id)
        assert user is not None
        kept, revoked = accounts.create_token(session, user), accounts.create_token(session, user)
    with services.sessions.begin() as session:
        revoked_id = session.scalars(
            select(ApiToken.id).where(ApiToken.prefix == revoked[:12])
        ).one()
        assert not accounts.revoke_token(session, user_id + 1, revoked_id)
        assert accounts.revoke_token(session, user_id, revoked_id)
        assert [t.prefix for t in accounts.tokens_of(session, user_id)] == [kept[:12]]
    with services.sessions.begin() as session:
        assert accounts.user_for_token(session, revoked) is None
        assert accounts.user_for_token(session, "clw_" + "x" * 43) is None
        found = accounts.user_for_token(session, kept)
        assert found is not None
        found.disabled = True
    with services.sessions.begin() as session:
        assert accounts.user_for_token(session, kept) is None


# --- invitations ---------------------------------------------------------------------------------


def invite(services: Services, email: str) -> str:
    with services.sessions.begin() as session:
        user = accounts.create_user(session, email, "artist")
        return accounts.create_invitation(session, user)


def test_an_invitation_sets_the_password_signs_in_and_is_spent(
    client: TestClient, services: Services
) -> None:
    secret = invite(services, "ines@example.org")
    page = client.get(f"/invite/{secret}")
    assert page.status_code == 200
    assert "ines@example.org" in page.text
    assert page.headers["referrer-policy"] == "same-origin"
    token = form_token(client, f"/invite/{secret}")
    mismatch = client.post(
        f"/invite/{secret}",
        data={"csrf_token": token, "password": PASSWORD, "confirm_password": PASSWORD + "!"},
    )
    assert mismatch.status_code == 400
    assert "Les deux mots de passe ne sont pas identiques." in mismatch.text
    short = client.post(
        f"/invite/{secret}",
        data={"csrf_token": token, "password": "short", "confirm_password": "short"},
    )
    assert short.status_code == 400
    before = session_cookie(client)
    accepted = client.post(
        f"/invite/{secret}",
        data={"csrf_token": token, "password": PASSWORD, "confirm_password": PASSWORD},
        follow_redirects=False,
    )
    assert (accepted.status_code, accepted.headers["location"]) == (303, "/studio")
    assert session_cookie(client) != before
    assert client.get("/account", follow_redirects=False).status_code == 200
    # Spent: the link now says so.
    again = client.get(f"/invite/{secret}")
    assert again.status_code == 404
    assert "Ce lien d’invitation a expiré ou a déjà servi." in again.text


@pytest.mark.parametrize("password", WEAK)
def test_an_invitation_refuses_a_weak_password_and_says_why(
    client: TestClient, services: Services, password: str
) -> None:
    secret = invite(services, "ines@example.org")
    token = form_token(client, f"/invite/{secret}")
    refused = client.post(
        f"/invite/{secret}",
        data={"csrf_token": token, "password": password, "confirm_password": password},
    )
    assert refused.status_code == 400
    assert "Ce mot de passe est trop facile à deviner. " in html.unescape(refused.text)
    assert user_named(services, "ines@example.org").password_hash is None
    accepted = client.post(
        f"/invite/{secret}",
        data={"csrf_token": token, "password": PASSWORD, "confirm_password": PASSWORD},
        follow_redirects=False,
    )
    assert accepted.status_code == 303


def test_expired_replaced_or_unknown_invitations_are_refused(
    client: TestClient, services: Services
) -> None:
    first = invite(services, "ines@example.org")
    with services.sessions.begin() as session:
        user = session.scalars(select(User)).one()
        second = accounts.create_invitation(session, user)
    assert client.get(f"/invite/{first}").status_code == 404
    assert client.get(f"/invite/{second}").status_code == 200
    with services.sessions.begin() as session:
        for invitation in session.scalars(select(Invitation)):
            invitation.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert client.get(f"/invite/{second}").status_code == 404
    assert client.get("/invite/made-up").status_code == 404


# --- the command line ----------------------------------------------------------------------------


def test_user_add_prints_an_invitation_link_that_works(
    cli_env: Settings,
    services: Services,
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["user", "add", "Ines@Example.org", "--role", "artist", "--artist", "Les Ondes"])
    out = capsys.readouterr().out.strip()
    assert code == 0
    assert out.startswith("https://live.example/invite/")
    with services.sessions() as session:
        user = session.scalars(select(User)).one()
        assert (user.email, user.role, user.password_hash) == ("ines@example.org", "artist", None)
        assert [a.name for a in user.artists] == ["Les Ondes"]
    assert client.get(out.removeprefix("https://live.example")).status_code == 200


def test_user_add_with_a_password_from_stdin_then_a_token_for_the_api(
    cli_env: Settings,
    services: Services,
    client: TestClient,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["user", "add", "admin@example.org", "--role", "admin", "--password-stdin"]) == 0
    capsys.readouterr()
    assert main(["token", "create", "admin@example.org", "--name", "backup script"]) == 0
    captured = capsys.readouterr()
    token = captured.out
    assert token.endswith("\n") and token.count("\n") == 1
    token = token.strip()
    assert token.startswith("clw_")
    response = client.get("/api/v1/productions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    account = client.get("/account", headers={"Authorization": f"Bearer {token}"})
    assert "admin@example.org" in account.text and "backup script" in account.text
    form = form_token(client)
    login = client.post(
        "/login",
        data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": form},
        follow_redirects=False,
    )
    assert login.status_code == 303


@pytest.mark.parametrize(
    ("argv", "stdin", "sentence"),
    [
        (["user", "add", "nora@example.org", "--role", "artist"], "", "already exists"),
        (["user", "add", "x@example.org", "--role", "artist", "--password-stdin"], "short\n", "10"),
        *(
            (
                ["user", "add", "x@example.org", "--role", "artist", "--password-stdin"],
                f"{weak}\n",
                "This password is too easy to guess. ",
            )
            for weak in WEAK
        ),
        (
            ["user", "add", "x@example.org", "--role", "artist", "--password-stdin"],
            "",
            "No password",
        ),
        (["user", "add", "not-an-address", "--role", "admin"], "", "not an email address"),
        (["token", "create", "nobody@example.org"], "", "There is no account for"),
    ],
)
def test_refused_commands_exit_1_with_one_sentence(
    cli_env: Settings,
    services: Services,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: str,
    sentence: str,
) -> None:
    make_user(services, "nora@example.org")
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cite-live: ") and sentence in lines[0]


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_accounts_tokens_and_invitations_on_each_database(
    any_database_url: str, tmp_path: Path
) -> None:
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        user_id = make_user(services, "Nora@Example.org", artists=["Nora Ilić"])
        with services.sessions.begin() as session:
            user = session.get(User, user_id)
            assert user is not None
            token = accounts.create_token(session, user)
            secret = accounts.create_invitation(session, user)
            with pytest.raises(AccountError):
                accounts.create_user(session, "NORA@example.org", "artist")
        new_hash = accounts.new_password_hash(
            services.settings, "a brand new passphrase", "nora@example.org"
        )
        with services.sessions.begin() as session:
            found = accounts.user_for_token(session, token)
            assert found is not None and found.id == user_id
            assert accounts.pending_invitation(session, secret) is not None
            accepted = accounts.accept_invitation(session, secret, new_hash)
            assert accepted.auth_epoch == 1
        with services.sessions() as session:
            assert accounts.pending_invitation(session, secret) is None
            assert session.scalars(select(Artist.name)).all() == ["Nora Ilić"]
            stored = accounts.stored_password(session, "nora@example.org")
        assert stored is not None and stored.user_id == user_id
        kept = accounts.check_password(services.settings, stored, "a brand new passphrase")
        assert kept == new_hash
        with services.sessions.begin() as session:
            signed_in = accounts.record_login(session, stored, kept)
            assert signed_in is not None and signed_in.last_login_at is not None
    finally:
        services.close()


def test_control_characters_never_reach_the_database(any_database_url: str, tmp_path: Path) -> None:
    """PostgreSQL refuses NUL in text: such input is refused or cleaned before a query."""
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        user_id = make_user(services, "nora@example.org")
        with services.sessions.begin() as session:
            assert accounts.find_user(session, "nora\x00@example.org") is None
            assert accounts.stored_password(session, "nora@example.org\x00") is None
            with pytest.raises(AccountError):
                accounts.create_user(session, "ines\x00@example.org", "artist")
            user = session.get(User, user_id)
            assert user is not None
            accounts.create_token(session, user, "lap\x00top\x1b \t phone")
            assert accounts.pending_invitation(session, "x\x00y") is None
        with services.sessions() as session:
            assert session.scalars(select(ApiToken.name)).one() == "laptop phone"
    finally:
        services.close()


def test_an_invitation_accepted_twice_at_once_is_spent_by_one(
    any_database_url: str, tmp_path: Path
) -> None:
    """The same link sent twice at the same moment (two tabs, a forwarded link): both read it
    pending before either writes; only one may set the password and sign in."""
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        user_id = make_user(services, "ines@example.org")
        with services.sessions.begin() as session:
            user = session.get(User, user_id)
            assert user is not None
            secret = accounts.create_invitation(session, user)
        first_hash = accounts.hash_password(services.settings, "first passphrase of the two")
        second_hash = accounts.hash_password(services.settings, "second passphrase of the two")
        with services.sessions.begin() as second:
            # The second acceptance has read the invitation, still pending...
            read = accounts.pending_invitation(second, secret)
            assert read is not None and read.used_at is None
            # ...when the first one is accepted and committed.
            with services.sessions.begin() as first:
                accounts.accept_invitation(first, secret, first_hash)
            with pytest.raises(AccountError):
                accounts.accept_invitation(second, secret, second_hash)
        with services.sessions() as session:
            user = session.get(User, user_id)
            assert user is not None and user.password_hash == first_hash
    finally:
        services.close()
