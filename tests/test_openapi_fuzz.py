"""Schemathesis against the OpenAPI document: every operation, hostile values included, answers
no 500, only the statuses, content types and bodies the document declares, and refuses a
request exactly when the document calls it invalid.

A real server holds a small catalogue (SQLite, and PostgreSQL when one answers); every
operation is run anonymously and with an API token, from a fixed seed and with a bounded number
of examples, so that a run is repeatable and short. A failure prints the ``curl`` command that
reproduces it: turn it into a plain test beside the others before fixing it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from sqlalchemy import func, select, update

from cite_live.models import Base, Production
from cite_live.services import Services, open_services
from cite_live.web.openapi import document
from tests.account_fixtures import make_user, token_for
from tests.app_fixtures import make_settings, serving
from tests.dbs import postgres_admin_url, postgres_database, sqlite_url
from tests.test_api import describe_artist, publish_fake

# The site's public address: oEmbed answers for its pages whatever host the request named.
SITE = "http://cite.example"
OWNER = "artiste@example.org"

# Values drawn often, beside the generated ones: what broke or could break a parser or a query
# (NUL, digits that are not ASCII, huge numbers), and names that exist, so that the answers
# about real rows are checked too.
HOSTILE = [
    *["\x00", "a\x00b", "²", "١٢", "-1", "0", "1e3", "99999999999999999999", " ", "%00"],
    *["<b>", "' OR 1=1 --", "../..", "a/b", "\u202e", "x" * 300],
    *["elodie-faure", "noe-chabert", "nuit-electro", "jazz", "cite-de-la-musique", "piano"],
]
NUMBERS = [0, -1, 1_000_000, 1_000_001, 2**31, 2**63, 10**30]
PAGES = [
    *[f"{SITE}/productions/{slug}" for slug in ("nuit-electro", "clip", "lien/", "secret", "rate")],
    *[f"{SITE}/productions/clip?t={t}" for t in ("1:30", "-5", "1e400", "99999999999")],
    *[f"{SITE}/productions/{slug}" for slug in ("%00", "x%2500", "%ED%A0%80", "a/b")],
    "http://attacker.example/productions/nuit-electro",
    "javascript:alert(1)",
]
SESSIONS = ["forged", "eyJ1IjoxLCJlIjowLCJjIjoieCJ9.Zm9v.YmFy", "." * 3]

# As a schemathesis.toml would say it. The seed and `deterministic` make every run the same.
# The coverage phase (each parameter at and just past its bounds) and the fuzzing phase
# (max-examples per operation, valid and invalid requests) run with these checks: no 5xx, only
# documented statuses, content types and bodies, and the API refuses a request exactly when the
# document says it is invalid.
FUZZ: dict[str, Any] = {
    "seed": 9,
    "generation": {
        "max-examples": 25,
        "deterministic": True,
        "database": "none",
        "dictionaries": {
            "string": {"dictionary": "hostile", "probability": 0.3},
            "integer": {"dictionary": "numbers", "probability": 0.3},
        },
    },
    "dictionaries": {
        "hostile": {"values": HOSTILE},
        "numbers": {"values": NUMBERS},
        "pages": {"values": PAGES},
        "sessions": {"values": SESSIONS},
    },
    "parameters": {
        "path.slug": {"dictionary": "hostile", "probability": 0.5},
        "path.production_id": {"dictionary": "hostile", "probability": 0.5},
        "path.collection_id": {"dictionary": "hostile", "probability": 0.5},
        "query.url": {"dictionary": "pages", "probability": 0.6},
        # A cookie never holds a NUL or a space: forged sessions instead.
        "cookie.cite_session": {"dictionary": "sessions", "probability": 0.5},
    },
    "checks": {
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
        "positive_data_acceptance": {"enabled": True},
        "negative_data_rejection": {"enabled": True},
    },
    "operations": [
        {
            # oEmbed 1.0 asks for a 501 when a format is not offered (xml), and the document
            # declares it.
            "include-path": "/oembed",
            "checks": {"not_a_server_error": {"expected-statuses": ["2xx", "3xx", "4xx", "501"]}},
        }
    ],
}

# The document the server answers at /api/v1/openapi.json, but for its server's address (a test
# below compares them): pytest needs the operations before any server runs.
schema = schemathesis.openapi.from_dict(document(SITE), config=schemathesis.Config.from_dict(FUZZ))


@dataclass(frozen=True)
class Catalogue:
    url: str
    token: str


def seed_catalogue(services: Services) -> str:
    """Artists, a venue, tags, audio and video, productions of every status and visibility (the
    last three the token owner's); the owner's token."""
    owner = make_user(services, OWNER, artists=["Élodie Fauré"])
    ids = [
        publish_fake(
            services,
            "Nuit Électro",
            artists=["Élodie Fauré", ("Noé Chabert", "composer")],
            venue=("Cité de la Musique", "cite-de-la-musique", "Romans-sur-Isère"),
            chapters=[("Ouverture", 0.0), ("Final", 30.5)],
            download=True,
            title_en="Electro Night",
        ),
        publish_fake(services, "Clip", kind="video", tags=["Vidéo"], picture=(320, 180)),
        publish_fake(services, "Raté", status="failed"),
        publish_fake(services, "Lien", visibility="unlisted"),
        publish_fake(services, "Secret", visibility="private"),
    ]
    describe_artist(services, "elodie-faure", commune="Romans-sur-Isère", disciplines=["piano"])
    with services.sessions.begin() as session:
        mine = Production.id.in_(ids[2:])
        session.execute(update(Production).where(mine).values(owner_id=owner))
    return token_for(services, OWNER)


def row_counts(services: Services) -> dict[str, int]:
    with services.sessions() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def catalogue(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Catalogue]:
    """One server and catalogue for every operation and example: requests only read it."""
    base = tmp_path_factory.mktemp("fuzz")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            database_url = sqlite_url(base)
        else:
            admin = postgres_admin_url()
            if admin is None:
                pytest.skip("no PostgreSQL server answers (set CITE_LIVE_TEST_POSTGRES_URL)")
            database_url = stack.enter_context(postgres_database(admin))
        settings = make_settings(base / "data", database_url, CITE_LIVE_SITE_URL=SITE)
        services = open_services(settings)
        stack.callback(services.close)
        token = seed_catalogue(services)
        rows = row_counts(services)
        with serving(services) as url:
            yield Catalogue(url, token)
        assert row_counts(services) == rows, "the run added or removed rows"


@pytest.fixture(scope="module", params=["anonymous", "token"])
def identity(request: pytest.FixtureRequest, catalogue: Catalogue) -> dict[str, str]:
    if request.param == "token":
        return {"Authorization": f"Bearer {catalogue.token}"}
    return {}


def test_the_fuzzed_document_is_the_one_served(catalogue: Catalogue) -> None:
    served = httpx.get(f"{catalogue.url}/api/v1/openapi.json").json()
    fuzzed = document(SITE)
    assert {**served, "servers": None} == {**fuzzed, "servers": None}


@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: schemathesis.Case, catalogue: Catalogue, identity: dict[str, str]
) -> None:
    case.call_and_validate(base_url=catalogue.url, headers=identity)
