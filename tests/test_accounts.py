"""Accounts, passwords, API tokens and invitations; `cite-live user add` and `token create`."""

from __future__ import annotations

import hashlib
import html
import io
import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import zxcvbn.feedback
from alembic import command
from babel.messages.extract import extract_from_file
from sqlalchemy import event, func, inspect, select, text
from starlette.testclient import TestClient

from cite_live import accounts, devices, i18n
from cite_live.accounts import AccountError
from cite_live.catalogue import artist_by_name
from cite_live.cli import main
from cite_live.db import alembic_config, make_engine, migrate
from cite_live.jobs.maintenance import TASKS, forget_expired
from cite_live.mail import SmtpMailer, SmtpServer
from cite_live.models import ApiToken, Artist, Invitation, PasswordReset, User, UserSession
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from cite_live.throttle import RESETS_PER_EMAIL
from cite_live.web.app import create_app
from tests.account_fixtures import PASSWORD, form_token, login, make_user, session_cookie
from tests.app_fixtures import free_port, make_settings, new_client
from tests.mailbox import Mailbox, link_in, text_of


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


# --- a forgotten password ------------------------------------------------------------------------


def ask_for_reset(client: TestClient, email: str, **headers: str) -> Any:
    token = form_token(client, "/login/forgot")
    return client.post(
        "/login/forgot",
        data={"csrf_token": token, "email": email},
        headers=headers,
        follow_redirects=False,
    )


def choose(client: TestClient, path: str, password: str, confirm: str | None = None) -> Any:
    token = form_token(client, path)
    return client.post(
        path,
        data={"csrf_token": token, "password": password, "confirm_password": confirm or password},
        follow_redirects=False,
    )


NEW_PASSWORD = "une valise de cuivre bleu"


def test_a_forgotten_password_gets_the_same_answer_whatever_the_address(
    services: Services, client: TestClient, mail_services: Mailbox
) -> None:
    make_user(services, "nora@example.org")
    make_user(services, "gone@example.org", disabled=True)
    invite(services, "ines@example.org")
    login_page = client.get("/login").text
    assert 'href="/login/forgot">Mot de passe oublié ?</a>' in login_page
    answers = [
        ask_for_reset(client, email)
        for email in (
            "nora@example.org",
            "nobody@example.org",
            "gone@example.org",
            "Ines@Example.org",
        )
    ]
    assert {(a.status_code, a.headers["location"]) for a in answers} == {
        (303, "/login/forgot?done=reset_sent")
    }
    assert len({a.content for a in answers}) == 1
    assert len({tuple(sorted(a.headers.keys())) for a in answers}) == 1
    page = client.get("/login/forgot?done=reset_sent")
    assert "Si un compte existe pour cette adresse, un message y est en route" in page.text
    # Only the enabled accounts got a message: the account and the one still invited.
    messages = mail_services.wait(2)
    services.outbox.drain()
    assert len(mail_services.messages) == 2
    assert sorted(m["To"] for m in messages) == ["ines@example.org", "nora@example.org"]
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PasswordReset)) == 2
    [nora] = [m for m in messages if m["To"] == "nora@example.org"]
    assert nora["Subject"] == "Choisissez un nouveau mot de passe pour Cité Live"
    assert link_in(nora).startswith("http://testserver/login/reset/")
    # Not an email address at all: said so, and what was typed is kept.
    refused = ask_for_reset(client, "<b>nora</b>")
    assert refused.status_code == 400
    assert "Ce n’est pas une adresse e-mail." in refused.text
    assert 'value="&lt;b&gt;nora&lt;/b&gt;"' in refused.text


class HeldMailer:
    """A mail server that takes each message only once released (a slow one)."""

    delivers = True

    def __init__(self) -> None:
        self.release = threading.Event()
        self.sent: list[str] = []

    def send(self, message: Any) -> None:
        assert self.release.wait(timeout=60)
        self.sent.append(str(message["To"]))


def test_the_answer_and_the_next_request_never_wait_for_the_message(
    services: Services, client: TestClient
) -> None:
    """Neither the answer nor what follows on the connection may wait for the mail server: how
    long they take would tell which addresses have an account."""
    held = HeldMailer()
    services.mailer = held
    make_user(services, "nora@example.org")
    try:
        assert ask_for_reset(client, "nora@example.org").status_code == 303
        assert client.get("/login/forgot?done=reset_sent").status_code == 200
        assert held.sent == []
    finally:
        held.release.set()
    services.outbox.drain()
    assert held.sent == ["nora@example.org"]


def test_the_message_is_in_the_language_of_the_request(
    services: Services, client: TestClient, mail_services: Mailbox
) -> None:
    make_user(services, "nora@example.org")
    ask_for_reset(client, "nora@example.org", **{"Accept-Language": "en"})
    [message] = mail_services.wait(1)
    assert message["Subject"] == "Choose a new password for Cité Live"
    assert message["Content-Language"] == "en"
    assert "Someone, probably you, asked" in text_of(message)


def test_a_reset_link_sets_the_password_signs_in_here_and_out_everywhere_else(
    services: Services,
    client: TestClient,
    other_client: TestClient,
    mail_services: Mailbox,
) -> None:
    make_user(services, "nora@example.org", artists=["Nora Ilić"])
    login(other_client, "nora@example.org")
    with services.sessions.begin() as session:
        user = session.scalars(select(User).where(User.email == "nora@example.org")).one()
        pending_invitation = accounts.create_invitation(session, user)
    ask_for_reset(client, "nora@example.org")
    path = link_in(mail_services.wait(1)[0]).removeprefix("http://testserver")
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "private, no-store"
    assert "nora@example.org" in page.text
    mismatch = choose(client, path, NEW_PASSWORD, NEW_PASSWORD + "!")
    assert mismatch.status_code == 400
    assert "Les deux mots de passe ne sont pas identiques." in mismatch.text
    weak = choose(client, path, "nora ilic nora")
    assert weak.status_code == 400
    assert "Ce mot de passe est trop facile à deviner." in html.unescape(weak.text)
    done = choose(client, path, NEW_PASSWORD)
    assert (done.status_code, done.headers["location"]) == (303, "/studio?done=password_chosen")
    assert "Votre nouveau mot de passe est enregistré" in client.get(done.headers["location"]).text
    assert client.get("/account", follow_redirects=False).status_code == 200
    # Every other device is signed out; the old password is gone, the new one works.
    assert other_client.get("/account", follow_redirects=False).status_code == 303
    other_client.cookies.clear()
    with pytest.raises(AssertionError):
        login(other_client, "nora@example.org")
    login(other_client, "nora@example.org", NEW_PASSWORD)
    # Spent: the link says so in one sentence, with a way to ask again; so does the
    # invitation still pending before.
    again = client.get(path)
    assert again.status_code == 404
    assert again.headers["referrer-policy"] == "same-origin"
    assert (
        "Ce lien pour choisir un nouveau mot de passe a expiré ou a déjà servi ; "
        "demandez-en un autre."
    ) in again.text
    assert 'href="/login/forgot">Demander un nouveau lien</a>' in again.text
    assert client.get(f"/invite/{pending_invitation}").status_code == 404


def test_reset_links_expire_work_once_and_cannot_be_made_up(
    services: Services, client: TestClient
) -> None:
    user_id = make_user(services, "nora@example.org")
    before = user_named(services, "nora@example.org").password_hash
    with services.sessions.begin() as session:
        first = accounts.request_reset(session, "nora@example.org")
        second = accounts.request_reset(session, "NORA@example.org ")
        assert accounts.request_reset(session, "nobody@example.org") is None
    assert first is not None and second is not None
    # Only the newest link works.
    assert client.get(f"/login/reset/{first[1]}").status_code == 404
    assert client.get(f"/login/reset/{second[1]}").status_code == 200
    # An invitation link is no reset link, and the other way round.
    assert client.get(f"/invite/{second[1]}").status_code == 404
    for made_up in ("made-up", "x" * 300, second[1][:-1], "%00", "..%2F..%2Fadmin"):
        assert client.get(f"/login/reset/{made_up}").status_code == 404, made_up
    # A POST to a made-up link changes nothing.
    forged = client.post(
        "/login/reset/made-up",
        data={
            "csrf_token": form_token(client, "/login/forgot"),
            "password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert forged.status_code == 404
    with services.sessions.begin() as session:
        for reset in session.scalars(select(PasswordReset)):
            reset.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert client.get(f"/login/reset/{second[1]}").status_code == 404
    # A disabled account's link stops working, and no new one is made for it.
    with services.sessions.begin() as session:
        third = accounts.request_reset(session, "nora@example.org")
        assert third is not None
        user = session.get(User, user_id)
        assert user is not None
        user.disabled = True
    assert client.get(f"/login/reset/{third[1]}").status_code == 404
    with services.sessions.begin() as session:
        assert accounts.request_reset(session, "nora@example.org") is None
    assert user_named(services, "nora@example.org").password_hash == before


def test_a_reset_link_used_twice_at_once_is_spent_by_one(
    any_database_url: str, tmp_path: Path
) -> None:
    """The same link sent twice at the same moment (two tabs, a double click): both read it
    pending before either writes; only one sets the password."""
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        make_user(services, "nora@example.org")
        with services.sessions.begin() as session:
            found = accounts.request_reset(session, "nora@example.org")
            assert found is not None
            secret = found[1]
        first_hash = accounts.hash_password(services.settings, "first passphrase of the two")
        second_hash = accounts.hash_password(services.settings, "second passphrase of the two")
        with services.sessions.begin() as second:
            read = accounts.pending_reset(second, secret)
            assert read is not None and read.used_at is None
            with services.sessions.begin() as first:
                accounts.accept_reset(first, secret, first_hash)
            with pytest.raises(AccountError, match="has expired or has already been used"):
                accounts.accept_reset(second, secret, second_hash)
        assert user_named(services, "nora@example.org").password_hash == first_hash
    finally:
        services.close()


def test_two_new_passwords_sent_at_once_through_one_link_sign_in_one_device(
    services: Services, mail_services: Mailbox
) -> None:
    make_user(services, "nora@example.org")
    with new_client(services) as asker:
        ask_for_reset(asker, "nora@example.org")
    path = link_in(mail_services.wait(1)[0]).removeprefix("http://testserver")
    with new_client(services) as one, new_client(services) as two:
        tokens = [form_token(one, path), form_token(two, path)]
        barrier = threading.Barrier(2)

        def send(client: TestClient, token: str, password: str) -> int:
            barrier.wait()
            data = {"csrf_token": token, "password": password, "confirm_password": password}
            return client.post(path, data=data, follow_redirects=False).status_code

        with ThreadPoolExecutor(2) as pool:
            statuses = sorted(
                pool.map(
                    send,
                    (one, two),
                    tokens,
                    ("first passphrase of the two", "second passphrase of the two"),
                )
            )
        assert statuses == [303, 404]
        signed = [c.get("/account", follow_redirects=False).status_code == 200 for c in (one, two)]
        assert sorted(signed) == [False, True]
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(UserSession)) == 1


def test_requests_for_a_new_password_are_limited_whatever_the_address(
    services: Services, client: TestClient, mail_services: Mailbox
) -> None:
    make_user(services, "nora@example.org")
    for email in ("nora@example.org", "nobody@example.org"):
        for _ in range(RESETS_PER_EMAIL):
            assert ask_for_reset(client, email).status_code == 303
        refused = ask_for_reset(client, email)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert "Trop de demandes de nouveau mot de passe" in refused.text
    assert len(mail_services.wait(RESETS_PER_EMAIL)) == RESETS_PER_EMAIL
    # One address asking for many accounts is limited too (auth.login_attempts).
    left = services.settings.auth.login_attempts - 2 * RESETS_PER_EMAIL
    for n in range(left):
        assert ask_for_reset(client, f"someone-{n}@example.org").status_code == 303
    assert ask_for_reset(client, "someone-else@example.org").status_code == 429
    services.outbox.drain()
    assert len(mail_services.messages) == RESETS_PER_EMAIL


def test_a_failing_mail_server_loses_nothing_and_tells_nothing(
    services: Services,
    client: TestClient,
    caplog: pytest.LogCaptureFixture,
    admin_account: str,
) -> None:
    services.mailer = SmtpMailer(SmtpServer("127.0.0.1", free_port(), "none"))
    make_user(services, "nora@example.org")
    with caplog.at_level(logging.WARNING, logger="cite_live.mail"):
        known = ask_for_reset(client, "nora@example.org")
        unknown = ask_for_reset(client, "nobody@example.org")
        services.outbox.drain()
    assert (known.status_code, known.headers["location"], known.content) == (
        unknown.status_code,
        unknown.headers["location"],
        unknown.content,
    )
    assert "could not send 'Choisissez un nouveau mot de passe pour Cité Live'" in caplog.text
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PasswordReset)) == 1
    # An admin's invitation: the account is kept and the page says to send the link.
    csrf = login(client, admin_account)
    page = client.post(
        "/admin/invitations",
        data={"csrf_token": csrf, "email": "zoe@example.org", "role": "artist"},
    )
    assert page.status_code == 200
    assert 'data-mailed="failed"' in page.text
    assert "Le message n’a pas pu être envoyé" in page.text
    assert user_named(services, "zoe@example.org").password_hash is None
    assert "data-invitation-link>http://testserver/invite/" in page.text


def test_an_admins_invitation_is_mailed_in_the_language_chosen(
    services: Services, client: TestClient, other_client: TestClient, mail_services: Mailbox
) -> None:
    make_user(services, "admin@example.org", "admin")
    csrf = login(client, "admin@example.org")
    form = client.get("/admin").text
    assert '<select id="invite-lang" name="lang">' in form
    assert '<option value="fr" lang="fr" selected>Français</option>' in form
    page = client.post(
        "/admin/invitations",
        data={"csrf_token": csrf, "email": "zoe@example.org", "role": "artist", "lang": "en"},
    )
    assert page.status_code == 200
    assert 'data-mailed="sent"' in page.text
    assert "L’invitation a été envoyée par e-mail à zoe@example.org." in page.text
    shown = re.search(r"data-invitation-link>([^<]+)<", page.text)
    assert shown is not None
    [message] = mail_services.wait(1)
    assert (message["To"], message["Subject"]) == (
        "zoe@example.org",
        "Your invitation to Cité Live",
    )
    assert link_in(message) == shown.group(1)
    assert "it works once, for 7 days" in text_of(message)
    assert other_client.get(shown.group(1).removeprefix("http://testserver")).status_code == 200
    # A language we do not have: French, the site's own.
    client.post(
        "/admin/invitations",
        data={"csrf_token": csrf, "email": "yann@example.org", "role": "artist", "lang": "xx"},
    )
    assert mail_services.wait(2)[1]["Subject"] == "Votre invitation sur Cité Live"


def test_without_a_mail_server_the_message_goes_to_the_log_and_the_admin_is_told(
    services: Services, client: TestClient, admin_account: str, caplog: pytest.LogCaptureFixture
) -> None:
    csrf = login(client, admin_account)
    with caplog.at_level(logging.INFO, logger="cite_live.mail"):
        page = client.post(
            "/admin/invitations",
            data={"csrf_token": csrf, "email": "zoe@example.org", "role": "artist"},
        )
    assert 'data-mailed="logged"' in page.text
    assert "site.url n’est pas défini" in page.text
    shown = re.search(r"data-invitation-link>([^<]+)<", page.text)
    assert shown is not None
    assert f"Choisir mon mot de passe :\n{shown.group(1)}\n" in caplog.text


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


def test_user_add_mails_the_invitation_and_prints_its_link(
    cli_env: Settings,
    services: Services,
    client: TestClient,
    mailbox: Mailbox,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CITE_LIVE_MAIL_SMTP_URL", mailbox.url)
    assert main(["user", "add", "ines@example.org", "--role", "artist", "--lang", "en"]) == 0
    captured = capsys.readouterr()
    link = captured.out.strip()
    [message] = mailbox.wait(1)
    assert (message["To"], message["Subject"]) == (
        "ines@example.org",
        "Your invitation to Cité Live",
    )
    assert message["From"] == "Cité Live <no-reply@live.example>"
    assert link_in(message) == link
    assert captured.err == "cite-live: the invitation was sent to ines@example.org.\n"
    # A mail server that is not there: the account and its printed link are kept.
    monkeypatch.setenv("CITE_LIVE_MAIL_SMTP_URL", f"smtp://127.0.0.1:{free_port()}?timeout=2")
    assert main(["user", "add", "yann@example.org", "--role", "artist"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("https://live.example/invite/")
    assert "the invitation could not be sent to yann@example.org" in captured.err
    assert client.get(captured.out.strip().removeprefix("https://live.example")).status_code == 200


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
            devices.start(session, user_id, "Firefox/128.0", timedelta(days=1))
            accounts.accept_invitation(session, secret, new_hash)
            # Whoever was signed in is signed out; the caller starts this device's session.
            assert session.scalar(select(func.count()).select_from(UserSession)) == 0
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


def test_the_sessions_migration_keeps_every_account_and_what_refers_to_it(
    any_database_url: str,
) -> None:
    """0008 drops users.auth_epoch in place: copying the table, as SQLite's batch mode does,
    would delete by cascade every token, invitation and artist link of every account."""
    engine = make_engine(any_database_url)
    config = alembic_config(engine)
    try:
        command.upgrade(config, "0005_secret_addresses")
        now = datetime.now(UTC)
        with engine.begin() as connection:
            # The users table as 0005 left it, with its epoch, which no model knows now.
            connection.execute(
                text(
                    "INSERT INTO users (id, email, role, auth_epoch, disabled, created_at) "
                    "VALUES (1, 'nora@example.org', 'artist', 3, false, :now)"
                ),
                {"now": now},
            )
        with engine.begin() as connection:
            connection.execute(
                ApiToken.__table__.insert().values(
                    user_id=1, name="", token_hash="h" * 64, prefix="clw_x", created_at=now
                )
            )
            connection.execute(
                Invitation.__table__.insert().values(
                    user_id=1, token_hash="i" * 64, created_at=now, expires_at=now
                )
            )
        migrate(engine)
        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("users")}
            assert "auth_epoch" not in columns
            assert connection.scalar(select(func.count()).select_from(ApiToken)) == 1
            assert connection.scalar(select(func.count()).select_from(Invitation)) == 1
        command.downgrade(config, "0005_secret_addresses")
        with engine.connect() as connection:
            columns = {c["name"] for c in inspect(connection).get_columns("users")}
            assert "auth_epoch" in columns
            assert connection.scalar(select(func.count()).select_from(ApiToken)) == 1
            assert "user_sessions" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()


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


def test_maintenance_forgets_expired_sessions_and_spent_links(services: Services) -> None:
    """What opens nothing any more is deleted, by the periodic task, for every account at once;
    live sessions and a pending link stay and still work."""
    assert any(task.run is forget_expired for task in TASKS)
    nora = make_user(services, "nora@example.org")
    ines = make_user(services, "ines@example.org")
    lifetime = timedelta(days=services.settings.auth.session_days)
    with services.sessions.begin() as session:
        _, live = devices.start(session, nora, "Firefox", lifetime)
        old_id, _ = devices.start(session, ines, "Chrome", lifetime)
        session.get_one(UserSession, old_id).created_at = datetime.now(UTC) - lifetime
        _, spent = accounts.request_reset(session, "nora@example.org") or (None, "")
        _, pending = accounts.request_reset(session, "nora@example.org") or (None, "")
        _, late = accounts.request_reset(session, "ines@example.org") or (None, "")
        expired = session.scalars(select(PasswordReset).where(PasswordReset.user_id == ines)).one()
        expired.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    assert spent and pending and late

    forget_expired(services)

    with services.sessions() as session:
        assert session.scalars(select(UserSession.user_id)).all() == [nora]
        assert devices.find(session, live, lifetime) is not None
        # The first link was spent by the second; the late one expired.
        assert len(session.scalars(select(PasswordReset)).all()) == 1
        assert accounts.pending_reset(session, pending) is not None
