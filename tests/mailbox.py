"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1, keeping every message it receives.

Registered in tests/conftest.py: ``mailbox`` is a server for one test; ``mail_services`` the
test's services sending through it (``services.mailer``).
"""

from __future__ import annotations

import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from cite_live.mail import SmtpMailer, parse_smtp_url
from cite_live.services import Services
from tests.app_fixtures import free_port

# How long a test waits for a message sent after an answer (a reset's mail) before failing.
DELIVERY_WAIT = 30.0
_LINK = re.compile(r"https?://\S+")


@dataclass
class Received:
    message: EmailMessage
    mail_from: str
    recipients: list[str]
    # The user name the client signed in with, if it did.
    login: str | None


@dataclass
class Mailbox:
    host: str
    port: int
    received: list[Received] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[EmailMessage]:
        with self.arrived:
            return [r.message for r in self.received]

    def wait(self, count: int) -> list[EmailMessage]:
        """The first ``count`` messages, waiting for those not arrived yet."""
        deadline = time.monotonic() + DELIVERY_WAIT
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} messages expected, {len(self.received)} came")
                self.arrived.wait(left)
            return [r.message for r in self.received[:count]]


class _Keeper:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        login = session.auth_data
        user = login.login.decode() if isinstance(login, LoginPassword) else None
        with self.mailbox.arrived:
            self.mailbox.received.append(
                Received(
                    message, str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], user
                )
            )
            self.mailbox.arrived.notify_all()
        return "250 Message accepted for delivery"


def accept(login: str, password: str) -> Callable[..., AuthResult]:
    """An authenticator accepting only ``login`` with ``password``."""

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        good = isinstance(data, LoginPassword) and (data.login, data.password) == (
            login.encode(),
            password.encode(),
        )
        return AuthResult(success=good, handled=False, auth_data=data if good else None)

    return check


def start_mailbox(
    *,
    starttls: ssl.SSLContext | None = None,
    tls: ssl.SSLContext | None = None,
    authenticator: Callable[..., AuthResult] | None = None,
) -> tuple[Mailbox, Controller]:
    """An aiosmtpd server on a free port of 127.0.0.1: plain, with STARTTLS required
    (``starttls``), or TLS from the first byte (``tls``); with sign-in when ``authenticator``."""
    port = free_port()
    mailbox = Mailbox("127.0.0.1", port)
    options: dict[str, Any] = {}
    if starttls is not None:
        options.update(tls_context=starttls, require_starttls=True)
    if authenticator is not None:
        options.update(authenticator=authenticator, auth_require_tls=starttls is not None)
    controller = Controller(
        _Keeper(mailbox),
        hostname="127.0.0.1",
        port=port,
        # aiosmtpd would otherwise ask the resolver for this machine's name.
        server_hostname="localhost",
        ssl_context=tls,
        **options,
    )
    controller.start()
    return mailbox, controller


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box, controller = start_mailbox()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def mail_services(services: Services, mailbox: Mailbox) -> Mailbox:
    """The test's services sending their messages to ``mailbox``; the mailbox."""
    services.mailer = SmtpMailer(parse_smtp_url(mailbox.url))
    return mailbox


def text_of(message: EmailMessage) -> str:
    """The plain text part, with the line ends of a file (SMTP carries CRLF)."""
    part = message.get_body(("plain",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content()).replace("\r\n", "\n")


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def link_in(message: EmailMessage) -> str:
    """The one link of the message's plain text."""
    links = _LINK.findall(text_of(message))
    assert len(links) == 1, links
    return str(links[0])
