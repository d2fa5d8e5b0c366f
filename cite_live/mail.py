"""Mail: the messages the site sends (invitations, new passwords) and the one way they leave.

A :class:`Mailer` sends an :class:`~email.message.EmailMessage`, or raises :class:`MailError`
with one sentence. Two implementations: :class:`SmtpMailer`, Python's own ``smtplib`` talking
to the server named by ``mail.smtp_url``, and its local twin :class:`LogMailer`, the embedded
default, which writes the message, link included, to the ``cite_live.mail`` logger (the
server's log), so that one machine needs no mail server.

``mail.smtp_url`` (see :func:`parse_smtp_url`)::

    smtp://[USER[:PASSWORD]@]HOST[:PORT][?starttls=yes|no][&timeout=SECONDS]
    smtps://[USER[:PASSWORD]@]HOST[:PORT][?timeout=SECONDS]

``smtps`` speaks TLS from the first byte (port 465 by default). ``smtp`` (port 25 by default)
upgrades with STARTTLS when ``starttls=yes``, the default on port 587, the submission port; a
server that does not offer it is then refused rather than sent the message in clear. TLS
certificates are checked against the system's authorities. A user name and password, percent-
encoded in the URL, sign in after TLS; they are never sent in clear to another machine
(refused when the settings are read). A server that does not answer within ``timeout``
seconds (default 20) fails the sending.

What a message says is a :class:`Letter`, written in the recipient's language by the domain
(:mod:`cite_live.accounts`); :func:`compose` makes of it a plain text part and an HTML
alternative (``web/templates/mail.html``). Sending blocks on the network: callers run it in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import email.policy
import functools
import ipaddress
import logging
import smtplib
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import jinja2

from cite_live import i18n
from cite_live.i18n import N_

if TYPE_CHECKING:
    from cite_live.settings import Settings

log = logging.getLogger("cite_live.mail")

DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 300.0
# What the site signs its messages with.
SITE_NAME = "Cité Live"
# The plain text's line before its link (the HTML part has a button instead).
FOLLOW = N_("%(action)s:")
COPY_THE_LINK = N_("If the button does not work, copy this address into your browser:")

Security = Literal["none", "starttls", "tls"]


class MailError(Exception):
    """A message could not be handed to the mail server; the message says why, in English,
    for the server's log (never for the person who asked)."""


# --- where messages go ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpServer:
    """A mail server, as ``mail.smtp_url`` names it."""

    host: str
    port: int
    security: Security
    username: str = ""
    password: str = ""
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:
        # Never the password, wherever a server ends up printed.
        user = f"{self.username}@" if self.username else ""
        return f"SmtpServer({self.security}, {user}{self.host}:{self.port})"


_YES = {"yes": True, "true": True, "1": True, "no": False, "false": False, "0": False}


def parse_smtp_url(url: str) -> SmtpServer:
    """The server ``url`` names; ValueError with the end of a sentence saying what is wrong
    (and never repeating the URL, which may hold a password)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
        host = parts.hostname or ""
    except ValueError:
        raise ValueError("must be smtp://HOST[:PORT] or smtps://HOST[:PORT]") from None
    if parts.scheme not in ("smtp", "smtps") or not host or parts.path not in ("", "/"):
        raise ValueError("must be smtp://HOST[:PORT] or smtps://HOST[:PORT]")
    if parts.fragment:
        raise ValueError("must not have a #fragment")
    query: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in ("starttls", "timeout") or key in query:
            raise ValueError(f"takes only the options starttls and timeout, once each, not {key!r}")
        query[key] = value
    timeout = DEFAULT_TIMEOUT
    if "timeout" in query:
        try:
            timeout = float(query["timeout"])
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ValueError(f"must have a timeout above 0 and at most {MAX_TIMEOUT:g} seconds")
    starttls_flag = query.get("starttls")
    if starttls_flag is not None and starttls_flag.lower() not in _YES:
        raise ValueError("must have starttls=yes or starttls=no")
    security: Security
    if parts.scheme == "smtps":
        if starttls_flag is not None:
            raise ValueError("takes no starttls option: smtps:// is TLS from the start")
        security, default_port = "tls", 465
    else:
        default_port = 25
        wanted = _YES[starttls_flag.lower()] if starttls_flag else (port or default_port) == 587
        security = "starttls" if wanted else "none"
    username, password = unquote(parts.username or ""), unquote(parts.password or "")
    if (username or password) and security == "none" and not _is_loopback(host):
        raise ValueError(
            "would send its password in clear: use smtps://, or smtp:// with ?starttls=yes"
        )
    return SmtpServer(host, port or default_port, security, username, password, timeout)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_sender(value: str) -> str:
    """``value`` as a From header ("Name <address>" or "address"); ValueError otherwise."""
    refusal = ValueError("must be an email address, such as Cité Live <live@example.org>")
    if any(c in value for c in "\r\n"):
        raise refusal
    try:
        header = email.policy.default.header_factory("From", value.strip())
    except (ValueError, IndexError):
        raise refusal from None
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if header.defects or len(addresses) != 1:
        raise refusal
    address = addresses[0]
    if not address.username or "." not in address.domain:
        raise refusal
    return str(address)


class Mailer(Protocol):
    """Where messages go."""

    #: Whether messages reach their recipients (a mail server), or only the server's log.
    delivers: bool

    def send(self, message: EmailMessage) -> None:
        """Hand ``message`` over; MailError when it cannot be."""
        ...


class SmtpMailer:
    """Messages handed to an SMTP server, one connection per message."""

    delivers = True

    def __init__(self, server: SmtpServer, hostname: str = "localhost") -> None:
        self.server = server
        # The name given in EHLO; without it smtplib asks the resolver for this machine's.
        self.hostname = hostname

    def send(self, message: EmailMessage) -> None:
        server = self.server
        try:
            client = self._connect()
            with client:
                if server.security == "starttls":
                    self._starttls(client)
                if server.username or server.password:
                    client.login(server.username, server.password)
                client.send_message(message)
        except smtplib.SMTPNotSupportedError as exc:
            # An address that is not ASCII, to a server without SMTPUTF8.
            raise MailError(f"{server.host}:{server.port} cannot take this message: {exc}") from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(
                f"{server.host}:{server.port} refused the user name and password ({exc.smtp_code})"
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailError(f"{server.host}:{server.port} refused the recipient") from exc
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error
            said = said.decode("utf-8", "replace") if isinstance(said, bytes) else said
            raise MailError(f"{server.host}:{server.port} answered {exc.smtp_code} {said}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            # smtplib reports a server gone quiet as a disconnection caused by the timeout.
            if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
                raise MailError(
                    f"{server.host}:{server.port} did not answer within {server.timeout:g} seconds"
                ) from exc
            raise MailError(f"{server.host}:{server.port} could not be reached: {exc}") from exc

    def _starttls(self, client: smtplib.SMTP) -> None:
        try:
            client.starttls(context=ssl.create_default_context())
        except smtplib.SMTPNotSupportedError as exc:
            server = self.server
            raise MailError(
                f"{server.host}:{server.port} does not offer STARTTLS, so nothing was sent"
            ) from exc

    def _connect(self) -> smtplib.SMTP:
        server = self.server
        if server.security == "tls":
            return smtplib.SMTP_SSL(
                server.host,
                server.port,
                local_hostname=self.hostname,
                timeout=server.timeout,
                context=ssl.create_default_context(),
            )
        return smtplib.SMTP(
            server.host, server.port, local_hostname=self.hostname, timeout=server.timeout
        )


class LogMailer:
    """The embedded default: each message written to the ``cite_live.mail`` logger (its
    headers and its plain text, where the link is), to be passed on by whoever reads the log."""

    delivers = False

    def send(self, message: EmailMessage) -> None:
        text = message.get_body(("plain",))
        body = text.get_content() if isinstance(text, EmailMessage) else ""
        log.info(
            "mail.smtp_url is not set: this message is written here instead of sent.\n"
            "From: %s\nTo: %s\nSubject: %s\n\n%s",
            message["From"],
            message["To"],
            message["Subject"],
            body,
        )


def mailer_for(settings: Settings) -> Mailer:
    """The SMTP server of ``mail.smtp_url``, else the log."""
    if not settings.mail.smtp_url:
        return LogMailer()
    return SmtpMailer(parse_smtp_url(settings.mail.smtp_url), settings.site_host)


# --- what messages say ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Letter:
    """A message in its recipient's language ``lang``: paragraphs, a link to follow (the
    button of the HTML part), then paragraphs after it. Every text is already translated."""

    to: str
    lang: str
    subject: str
    before: tuple[str, ...]
    action: str
    link: str
    after: tuple[str, ...] = ()


@functools.cache
def _environment(templates: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def compose(letter: Letter, sender: str, web_dir: Path) -> EmailMessage:
    """``letter`` from ``sender``: a plain text part and an HTML alternative, both with the
    whole link."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = letter.to
    message["Subject"] = letter.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    # A domain of our own: make_msgid would otherwise ask the resolver for this machine's name.
    message["Message-ID"] = make_msgid(domain=_domain(sender))
    message["Auto-Submitted"] = "auto-generated"
    follow = i18n.gettext(FOLLOW, letter.lang) % {"action": letter.action}
    text = "\n\n".join(
        [*letter.before, f"{follow}\n{letter.link}", *letter.after, f"-- \n{SITE_NAME}"]
    )
    message.set_content(text + "\n")
    html = (
        _environment(web_dir / "templates")
        .get_template("mail.html")
        .render(
            letter=letter, copy_hint=i18n.gettext(COPY_THE_LINK, letter.lang), site_name=SITE_NAME
        )
    )
    message.add_alternative(html, subtype="html")
    # After the parts: setting content clears every Content-* header.
    message["Content-Language"] = letter.lang
    return message


def _domain(sender: str) -> str:
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


class Outbox:
    """Work done off the request that asked for it, in a few threads of its own: for "forgot
    your password?", looking the account up, making its link and sending the message. The
    answer does not wait for it, nor does the next request on the same connection (which
    would, for a task run after the answer), so no timing tells whether a message left."""

    def __init__(self, workers: int = 2) -> None:
        # Threads start on the first task: a process that sends nothing has none.
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="cite-live-outbox")
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def submit(self, work: Callable[..., None], *args: Any) -> None:
        future = self._pool.submit(work, *args)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        error = future.exception()
        if error is not None:
            log.error("a task of the outbox failed", exc_info=error)

    def drain(self, timeout: float | None = None) -> None:
        """Wait for the tasks submitted so far."""
        with self._lock:
            pending = list(self._pending)
        wait(pending, timeout=timeout)

    def close(self) -> None:
        """Finish the tasks submitted (a message on its way is sent), then stop."""
        self._pool.shutdown(wait=True)


def send_letter(mailer: Mailer, settings: Settings, letter: Letter) -> bool:
    """Compose ``letter`` and send it; False (and the reason in the log) when it could not be.
    Blocks on the network: call it in a worker thread."""
    message = compose(letter, settings.mail_sender, settings.web_dir)
    try:
        mailer.send(message)
    except MailError as exc:
        log.warning("could not send %r to %s: %s", letter.subject, letter.to, exc)
        return False
    return True
