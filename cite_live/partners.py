"""Partner sites, and where a production's player may be framed.

A production's ``embed_policy`` says which sites may frame its player (``/embed/{id}``):
``anywhere``; ``partners``, the sites the admins list here, each by the origins it is served
from ("https://festival.example", "http://127.0.0.1:8080"); or ``site``, this site alone.

The browser enforces it: the embed's ``Content-Security-Policy: frame-ancestors`` names the
allowed origins. A frame the browser refuses shows its broken-frame icon, so the embed also
decides from the request who frames it, and answers a framer it can tell is not allowed with a
card saying the recording is not available there (:func:`framer_refused`). What it reads:

- ``Sec-Fetch-Dest: iframe`` (or ``frame``): the request is for a frame, not a visit;
- the ``Referer``'s origin: browsers send it to another site by default
  (``strict-origin-when-cross-origin``), and the snippet and the oEmbed iframe ask for it with
  ``referrerpolicy``.

A forged Referer gains nothing: the card is a courtesy, the CSP is what stops the frame. A frame
request without a Referer (a partner page with ``referrerpolicy="no-referrer"`` on the iframe)
cannot be told apart: it gets the player under the same CSP, so a listed partner that hides its
address still plays, and anyone else gets the browser's refusal, of their own making.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from cite_live import params
from cite_live.i18n import N_
from cite_live.models import Partner, Production

MAX_NAME = 200
MAX_ORIGINS = 20
MAX_ORIGIN = 200
# The request destinations of a frame (Fetch Metadata); "document" is a visit.
FRAME_DESTINATIONS = frozenset({"iframe", "frame"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# A DNS name as it is written in an origin (after IDNA): labels of letters, digits and hyphens.
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.ASCII)

NAME_MISSING = N_("Give the partner site a name.")
NAME_TOO_LONG = N_("The name is too long: 200 characters at most.")
ORIGINS_MISSING = N_("Give at least one address of the partner site.")
TOO_MANY_ORIGINS = N_("Give at most 20 addresses.")
BAD_ORIGIN = N_(
    "“%(origin)s” is not the address of a site: write it as https://festival.example, "
    "with no path, and a port only when it is not the usual one."
)
TAKEN_ORIGIN = N_("“%(origin)s” is already an address of the partner site “%(partner)s”.")
NO_PARTNER = N_("There is no such partner site.")


class PartnerError(Exception):
    """A partner that cannot be saved; ``message`` (marked with ``N_``) says why, with
    ``values`` for its placeholders; ``field`` is the form's field to correct."""

    def __init__(self, message: str, field: str = "origins", **values: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.values = values


def _host(text: str) -> str | None:
    """The host of an origin, lower-case, an IDN in its ASCII form; None when it is none."""
    if text.startswith("[") and text.endswith("]"):
        try:
            return f"[{ipaddress.IPv6Address(text[1:-1]).compressed}]"
        except ValueError:
            return None
    try:
        host = text.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return None
    return ".".join(labels)


def normalize_origin(text: str) -> str:
    """``text`` as an origin, "scheme://host[:port]": http or https, lower-case, the usual
    port left out; a path ("/"), user name, query or fragment is refused (PartnerError)."""
    typed = text.strip()
    refused = PartnerError(BAD_ORIGIN, origin=typed[:80])
    if not typed or len(typed) > MAX_ORIGIN or any(c.isspace() or c in "\\\"'<>" for c in typed):
        raise refused
    try:
        parts = urlsplit(typed)
        port = parts.port
    except ValueError:
        raise refused from None
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if (
        scheme not in DEFAULT_PORTS
        or not netloc
        or "@" in netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or typed.endswith(("?", "#"))
    ):
        raise refused
    host_text = netloc.rsplit(":", 1)[0] if port is not None or netloc.endswith(":") else netloc
    host = _host(host_text)
    if host is None or port == 0:
        raise refused
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_origins(text: str) -> list[str]:
    """The origins typed one per line (or separated by spaces or commas), normalised, each
    once, in the order typed."""
    typed = [word for word in re.split(r"[\s,]+", text) if word]
    if not typed:
        raise PartnerError(ORIGINS_MISSING)
    if len(typed) > MAX_ORIGINS:
        raise PartnerError(TOO_MANY_ORIGINS)
    origins: list[str] = []
    for word in typed:
        origin = normalize_origin(word)
        if origin not in origins:
            origins.append(origin)
    return origins


@dataclass(frozen=True)
class PartnerForm:
    """The admin's form, as typed: a refused one comes back with these words in it."""

    name: str = ""
    origins: str = ""

    def check(self, session: Session, partner_id: int | None = None) -> tuple[str, list[str]]:
        """The name and the origins to save, or PartnerError. An origin may belong to one
        partner only: two rows for one site would make removing it a puzzle."""
        name = " ".join(params.text(self.name).split())
        if not name:
            raise PartnerError(NAME_MISSING, "name")
        if len(name) > MAX_NAME:
            raise PartnerError(NAME_TOO_LONG, "name")
        origins = parse_origins(params.text(self.origins))
        for other in session.scalars(select(Partner).where(Partner.id != (partner_id or 0))):
            for origin in origins:
                if origin in other.origins:
                    raise PartnerError(TAKEN_ORIGIN, origin=origin, partner=other.name)
        return name, origins


def list_partners(session: Session) -> list[Partner]:
    return list(session.scalars(select(Partner).order_by(Partner.name, Partner.id)))


def save_partner(session: Session, form: PartnerForm, partner: Partner | None = None) -> Partner:
    """Add a partner (``partner`` None) or change one, from a checked form."""
    name, origins = form.check(session, partner.id if partner is not None else None)
    if partner is None:
        partner = Partner(name=name, origins=origins)
        session.add(partner)
    else:
        partner.name, partner.origins = name, origins
    session.flush()
    return partner


def partner_origins(session: Session) -> list[str]:
    """Every partner's origins, each once, sorted."""
    origins = {origin for partner in session.scalars(select(Partner)) for origin in partner.origins}
    return sorted(origins)


def site_origin(site_url: str) -> str:
    """The origin of this site's public address."""
    parts = urlsplit(site_url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(production: Production, site_url: str) -> list[str] | None:
    """The origins that may frame ``production``'s player: None for any; this site's own, and
    the partners' for ``partners``. Read in the session ``production`` belongs to."""
    if production.embed_policy == "anywhere":
        return None
    own = [site_origin(site_url)]
    if production.embed_policy != "partners":
        return own
    session = object_session(production)
    others = partner_origins(session) if session is not None else []
    return own + [origin for origin in others if origin not in own]


def frame_ancestors(allowed: list[str] | None) -> str:
    """The CSP ``frame-ancestors`` sources of ``allowed`` (:func:`allowed_origins`). This site is
    named as 'self' too, so that it still frames its player behind a proxy that changes the
    address it is reached at."""
    if allowed is None:
        return "*"
    return " ".join(["'self'", *allowed])


def referer_origin(referer: str | None) -> str | None:
    """The origin of a Referer header, or None when there is none to read."""
    if not referer or len(referer) > 4000:
        return None
    try:
        parts = urlsplit(referer.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    host = _host(parts.hostname) if not parts.hostname.count(":") else f"[{parts.hostname}]"
    if host is None:
        return None
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def framer_refused(
    allowed: list[str] | None, fetch_dest: str | None, referer: str | None, here: str
) -> bool:
    """Whether the request is a frame of a site that may not frame the player (see the
    module): only when the request says it is a frame and its Referer names another origin
    than ``here`` (the origin it was asked at) and the allowed ones."""
    if allowed is None or (fetch_dest or "").lower() not in FRAME_DESTINATIONS:
        return False
    framer = referer_origin(referer)
    if framer is None:
        return False
    return framer != here and framer not in allowed
