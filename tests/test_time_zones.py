"""Times read from the database are UTC whatever the database session's time zone.

A stock Debian PostgreSQL says ``Etc/UTC``, a French one ``Europe/Paris``: the datetimes
psycopg hands back then carry that zone, and ``format_datetime(..., usegmt=True)`` (tus's
``Upload-Expires``) refuses them. Every PostgreSQL test database runs in ``Europe/Paris``
(tests/dbs.py); these tests check the places that broke and the column type itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from cite_live.models import Upload, UTCDateTime, utcnow
from cite_live.services import Services, open_services
from cite_live.web.app import create_app
from tests.account_fixtures import make_user, token_for
from tests.app_fixtures import make_settings
from tests.test_tus import OWNER, Tus, checksum


@pytest.fixture
def paris(tmp_path: Path, any_database_url: str) -> Iterator[Services]:
    services = open_services(make_settings(tmp_path / "data", any_database_url))
    try:
        yield services
    finally:
        services.close()


@pytest.fixture
def tus(paris: Services) -> Iterator[Tus]:
    make_user(paris, OWNER, artists=["Nora Ilić"])
    with TestClient(create_app(paris.settings, paris), base_url="http://testserver") as client:
        yield Tus(client, token_for(paris, OWNER))


@pytest.mark.postgres
def test_the_test_databases_run_in_paris(postgres_url: str, tmp_path: Path) -> None:
    services = open_services(make_settings(tmp_path / "data", postgres_url))
    try:
        with services.sessions() as session:
            assert session.scalar(text("SHOW TimeZone")) == "Europe/Paris"
    finally:
        services.close()


def test_head_on_a_resumed_upload_answers_its_expiry_in_gmt(tus: Tus) -> None:
    url = tus.new(10)
    assert tus.patch(url, 0, b"a" * 5).status_code == 204
    head = tus.head(url)
    assert head.status_code == 200, head.text
    assert head.headers["Upload-Offset"] == "5"
    expires = parsedate_to_datetime(head.headers["Upload-Expires"])
    assert head.headers["Upload-Expires"].endswith(" GMT")
    assert timedelta(0) < expires - datetime.now(UTC) < timedelta(days=2)


def test_a_bad_checksum_is_460_and_keeps_the_offset(tus: Tus) -> None:
    url = tus.new(20)
    assert tus.patch(url, 0, b"a" * 5).status_code == 204
    # The first request of a process reads the expiry from the row, not from its own clock.
    wrong = tus.patch(url, 5, b"b" * 10, **{"Upload-Checksum": checksum("sha1", b"c" * 10)})
    assert wrong.status_code == 460, wrong.text
    assert wrong.headers["Upload-Offset"] == "5"
    assert tus.head(url).headers["Upload-Offset"] == "5"


def test_a_datetime_column_reads_back_in_utc(paris: Services) -> None:
    tus_user = make_user(paris, "clock@example.org")
    moment = datetime(2026, 7, 14, 22, 30, tzinfo=timezone(timedelta(hours=2)))
    with paris.sessions.begin() as session:
        session.add(
            Upload(
                id="f" * 32,
                user_id=tus_user,
                length=1,
                offset=0,
                state="receiving",
                filename="x",
                meta={},
                expires_at=moment,
            )
        )
    with paris.sessions() as session:
        upload = session.get(Upload, "f" * 32)
        assert upload is not None
        assert upload.expires_at == moment
        assert upload.expires_at.tzinfo is UTC
        assert upload.expires_at.hour == 20


def test_a_naive_datetime_is_refused_rather_than_guessed() -> None:
    column = UTCDateTime()
    with pytest.raises(ValueError, match="time zone"):
        column.process_bind_param(datetime(2026, 1, 1), None)  # type: ignore[arg-type]
    assert column.process_bind_param(utcnow(), None) is not None
