"""The mail senders (cite_live.mail) against a real SMTP server (aiosmtpd on 127.0.0.1): what a
message holds, how the server is reached (plain, STARTTLS, TLS, with a password), and how each
failure is told; the log sender, the embedded default."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from cite_live import accounts
from cite_live.mail import (
    Letter,
    LogMailer,
    MailError,
    SmtpMailer,
    SmtpServer,
    compose,
    mailer_for,
    parse_smtp_url,
    send_letter,
)
from cite_live.settings import Settings, SettingsError, load_settings
from tests.app_fixtures import free_port
from tests.mailbox import Mailbox, accept, html_of, link_in, start_mailbox, text_of

LINK = "https://live.example/login/reset/abc-DEF_123"


def letter(**changes: object) -> Letter:
    made = Letter(
        to="ines@example.org",
        lang="fr",
        subject="Choisissez un mot de passe",
        before=("Bonjour.", "Un compte vous attend."),
        action="Choisir mon mot de passe",
        link=LINK,
        after=("Sinon, ignorez ce message.",),
    )
    return replace(made, **changes)  # type: ignore[arg-type]


def send_to(mailbox: Mailbox, message_letter: Letter, settings: Settings) -> None:
    mailer = SmtpMailer(parse_smtp_url(mailbox.url))
    mailer.send(compose(message_letter, settings.mail_sender, settings.web_dir))


def test_a_message_reaches_the_server_with_its_headers_and_both_parts(
    mailbox: Mailbox, settings: Settings
) -> None:
    send_to(mailbox, letter(subject="Choisissez un mot de passe — Cité Live"), settings)
    [message] = mailbox.wait(1)
    [received] = mailbox.received
    assert received.mail_from == "no-reply@localhost"
    assert received.recipients == ["ines@example.org"]
    assert message["From"] == "Cité Live <no-reply@localhost>"
    assert message["To"] == "ines@example.org"
    assert message["Subject"] == "Choisissez un mot de passe — Cité Live"
    assert message["Content-Language"] == "fr"
    assert message["Auto-Submitted"] == "auto-generated"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Message-ID"].endswith("@localhost>")
    assert message.get_content_type() == "multipart/alternative"
    text, html = text_of(message), html_of(message)
    assert text.startswith("Bonjour.\n\nUn compte vous attend.\n\nChoisir mon mot de passe :\n")
    assert link_in(message) == LINK
    assert "Sinon, ignorez ce message." in text
    assert '<html lang="fr">' in html
    assert html.count(f'href="{LINK}"') == 2
    assert ">Choisir mon mot de passe</a>" in html
    assert "Si le bouton ne fonctionne pas" in html


def test_an_address_that_is_not_ascii_reaches_a_server_that_takes_it(
    mailbox: Mailbox, settings: Settings
) -> None:
    send_to(mailbox, letter(to="élise@exemple.fr"), settings)
    [received] = mailbox.received
    assert received.recipients == ["élise@exemple.fr"]
    assert received.message["To"] == "élise@exemple.fr"


def test_the_html_part_escapes_what_it_is_given(mailbox: Mailbox, settings: Settings) -> None:
    send_to(
        mailbox,
        letter(before=("<script>alert(1)</script>",), link=LINK + '"><b>', lang="en"),
        settings,
    )
    [message] = mailbox.wait(1)
    html = html_of(message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '"><b>' not in html
    assert "If the button does not work" in html
    assert text_of(message).startswith("<script>")


def test_the_site_messages_are_in_the_recipients_language() -> None:
    french = accounts.reset_letter("ines@example.org", LINK, "fr")
    english = accounts.reset_letter("ines@example.org", LINK, "en")
    assert french.subject == "Choisissez un nouveau mot de passe pour Cité Live"
    assert english.subject == "Choose a new password for Cité Live"
    assert (french.lang, english.lang) == ("fr", "en")
    assert any("ines@example.org" in paragraph for paragraph in english.before)
    invitation = accounts.invitation_letter("ines@example.org", LINK, "en")
    assert invitation.subject == "Your invitation to Cité Live"
    assert "7 days" in " ".join(invitation.before)
    assert "7 jours" in " ".join(accounts.invitation_letter("a@b.org", LINK, "fr").before)
    assert accounts.reset_letter("a@b.org", LINK, "de").lang == "fr"


def test_a_user_and_password_from_the_url_sign_in() -> None:
    box, controller = start_mailbox(authenticator=accept("live@example.org", "p@ss:w/rd"))
    try:
        server = parse_smtp_url(f"smtp://live%40example.org:p%40ss%3Aw%2Frd@127.0.0.1:{box.port}")
        SmtpMailer(server).send(compose(letter(), "live@example.org", Path("web")))
        assert [r.login for r in box.received] == ["live@example.org"]
        wrong = replace(server, password="nope")
        with pytest.raises(MailError, match="refused the user name and password"):
            SmtpMailer(wrong).send(compose(letter(), "live@example.org", Path("web")))
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    command = ["openssl", "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    command += ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*command, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True
    )
    return cert, key


@pytest.fixture
def trusted(certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """The server side of the certificate, which the client is made to trust (as a system
    authority would be)."""
    cert, key = certificate
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_starttls_and_tls_from_the_start_carry_the_message_and_the_password(
    trusted: ssl.SSLContext, mode: str
) -> None:
    box, controller = start_mailbox(
        authenticator=accept("live", "secret"),
        **({"starttls": trusted} if mode == "starttls" else {"tls": trusted}),
    )
    try:
        url = (
            f"smtp://live:secret@127.0.0.1:{box.port}?starttls=yes"
            if mode == "starttls"
            else f"smtps://live:secret@127.0.0.1:{box.port}"
        )
        SmtpMailer(parse_smtp_url(url)).send(compose(letter(), "live@example.org", Path("web")))
        assert [r.login for r in box.received] == ["live"]
    finally:
        controller.stop()


def test_tls_refuses_a_certificate_no_authority_signed(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box, controller = start_mailbox(tls=context)
    try:
        mailer = SmtpMailer(parse_smtp_url(f"smtps://127.0.0.1:{box.port}"))
        with pytest.raises(MailError, match=r"could not be reached: .*CERTIFICATE_VERIFY_FAILED"):
            mailer.send(compose(letter(), "live@example.org", Path("web")))
        assert box.received == []
    finally:
        controller.stop()


def test_starttls_asked_of_a_server_without_it_sends_nothing(mailbox: Mailbox) -> None:
    mailer = SmtpMailer(parse_smtp_url(mailbox.url + "?starttls=yes"))
    with pytest.raises(MailError, match="does not offer STARTTLS, so nothing was sent"):
        mailer.send(compose(letter(), "live@example.org", Path("web")))
    assert mailbox.received == []


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port whose connections are accepted by the system but never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield int(listener.getsockname()[1])


def test_a_server_that_does_not_answer_fails_after_the_timeout(silent_server: int) -> None:
    server = parse_smtp_url(f"smtp://127.0.0.1:{silent_server}?timeout=0.2")
    with pytest.raises(MailError, match=r"did not answer within 0\.2 seconds"):
        SmtpMailer(server).send(compose(letter(), "live@example.org", Path("web")))


def test_a_server_that_is_not_there_fails_with_a_sentence() -> None:
    server = SmtpServer("127.0.0.1", free_port(), "none")
    with pytest.raises(MailError, match=r"could not be reached: .*refused"):
        SmtpMailer(server).send(compose(letter(), "live@example.org", Path("web")))


def test_a_failed_sending_is_logged_and_told_to_the_caller(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = SmtpMailer(SmtpServer("127.0.0.1", free_port(), "none"))
    with caplog.at_level(logging.WARNING, logger="cite_live.mail"):
        assert send_letter(mailer, settings, letter()) is False
    assert "could not send 'Choisissez un mot de passe' to ines@example.org" in caplog.text


def test_the_log_sender_writes_the_whole_message_link_included(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    mailer = mailer_for(settings)
    assert isinstance(mailer, LogMailer) and not mailer.delivers
    with caplog.at_level(logging.INFO, logger="cite_live.mail"):
        assert send_letter(mailer, settings, letter()) is True
    [record] = caplog.records
    assert record.name == "cite_live.mail"
    text = record.getMessage()
    assert "mail.smtp_url is not set" in text
    assert "To: ines@example.org" in text and "Subject: Choisissez un mot de passe" in text
    assert f"Choisir mon mot de passe :\n{LINK}\n" in text
    assert "Sinon, ignorez ce message." in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://127.0.0.1", SmtpServer("127.0.0.1", 25, "none")),
        ("smtp://mail.example.org:587", SmtpServer("mail.example.org", 587, "starttls")),
        ("smtp://mail.example.org:587?starttls=no", SmtpServer("mail.example.org", 587, "none")),
        (
            "smtp://mail.example.org:2525?starttls=yes",
            SmtpServer("mail.example.org", 2525, "starttls"),
        ),
        (
            "smtps://u:p%2Fw@mail.example.org",
            SmtpServer("mail.example.org", 465, "tls", "u", "p/w"),
        ),
        (
            "smtp://u:pw@localhost:1025?timeout=2.5",
            SmtpServer("localhost", 1025, "none", "u", "pw", 2.5),
        ),
        ("smtp://[::1]:25", SmtpServer("::1", 25, "none")),
    ],
)
def test_smtp_urls_name_the_server_its_security_and_its_sign_in(
    url: str, expected: SmtpServer
) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://mail.example.org", "must be smtp://HOST"),
        ("smtp://", "must be smtp://HOST"),
        ("smtp://mail.example.org:99999", "must be smtp://HOST"),
        ("smtp://mail.example.org/inbox", "must be smtp://HOST"),
        ("smtp://u:hunter2@mail.example.org", "would send its password in clear"),
        ("smtps://mail.example.org?starttls=yes", "takes no starttls option"),
        ("smtp://mail.example.org?starttls=maybe", "must have starttls=yes or starttls=no"),
        ("smtp://mail.example.org?timeout=0", "must have a timeout above 0"),
        ("smtp://mail.example.org?timeout=nan", "must have a timeout above 0"),
        ("smtp://mail.example.org?timeout=1&timeout=2", "once each"),
        ("smtp://mail.example.org?verify=no", "takes only the options"),
    ],
)
def test_a_bad_smtp_url_is_refused_without_repeating_it(url: str, message: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"CITE_LIVE_MAIL_SMTP_URL": url})
    said = str(refused.value)
    assert said.startswith("CITE_LIVE_MAIL_SMTP_URL: mail.smtp_url ")
    assert message in said
    assert "hunter2" not in said and "mail.example.org" not in said


def test_the_sender_is_mail_from_else_no_reply_at_the_sites_host() -> None:
    assert load_settings({}).mail_sender == "Cité Live <no-reply@localhost>"
    site = load_settings({"CITE_LIVE_SITE_URL": "https://live.example.org"})
    assert site.mail_sender == "Cité Live <no-reply@live.example.org>"
    chosen = load_settings({"CITE_LIVE_MAIL_FROM": "Cité Live <live@example.org>"})
    assert chosen.mail_sender == "Cité Live <live@example.org>"
    for bad in ("nobody", "a@example.org, b@example.org", "x\r\nBcc: a@example.org"):
        with pytest.raises(SettingsError, match=r"mail.from must be an email address"):
            load_settings({"CITE_LIVE_MAIL_FROM": bad})


def test_a_configured_server_is_used_and_its_password_never_printed() -> None:
    settings = load_settings(
        {"CITE_LIVE_MAIL_SMTP_URL": "smtps://live:hunter2@mail.example.org?timeout=5"}
    )
    mailer = mailer_for(settings)
    assert isinstance(mailer, SmtpMailer) and mailer.delivers
    assert mailer.server == SmtpServer("mail.example.org", 465, "tls", "live", "hunter2", 5.0)
    assert "hunter2" not in repr(mailer.server)
