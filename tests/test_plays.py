"""Plays: the player's beacon counted once, without cookies or addresses, crawlers and hidden
productions left out; an artist's statistics, and the admins' per partner site."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from cite_live import play_stats, plays
from cite_live.jobs import maintenance
from cite_live.models import Partner, Play, PlaySalt, Production, User
from cite_live.services import Services, open_services
from cite_live.web import api
from tests.account_fixtures import login, make_user, token_for
from tests.app_fixtures import make_settings, new_client
from tests.dbs import sqlite_url
from tests.test_api import publish_fake

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PARTNER = "https://festival.example"


def beacon(production: str, playback: str = "a" * 32, **fields: object) -> dict[str, object]:
    return {"production": production, "playback": playback, "source": "site", **fields}


def post(client: TestClient, body: object, **headers: str) -> int:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(
        "/api/v1/plays", content=content, headers={"User-Agent": BROWSER, **headers}
    )
    return response.status_code


def count(services: Services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Play)) or 0


def rows(services: Services) -> list[Play]:
    with services.sessions() as session:
        return list(session.scalars(select(Play).order_by(Play.id)))


def make_user_id(session: Session, email: str) -> int:
    user_id = session.scalar(select(User.id).where(User.email == email))
    assert isinstance(user_id, int)
    return user_id


# --- the beacon ----------------------------------------------------------------------------------


def test_a_beacon_counts_one_play_and_the_same_beacon_again_none(
    client: TestClient, services: Services
) -> None:
    pid = publish_fake(services, "Nuit")
    assert post(client, beacon(pid)) == 204
    assert post(client, beacon(pid)) == 204
    assert count(services) == 1
    assert post(client, beacon(pid, playback="b" * 32)) == 204
    assert count(services) == 2
    (first, second) = rows(services)
    assert (first.source, first.origin) == ("site", None)
    # Nothing in a row is the address or the user agent, nor the playback id in clear.
    for row in (first, second):
        assert "testclient" not in row.visitor and "a" * 32 not in row.dedupe
        assert len(row.visitor) == len(row.dedupe) == 64
    # The same listener (address, browser, production) has the same hash within the day.
    assert first.visitor == second.visitor


def test_an_embed_reports_the_embedding_origin_normalized(
    client: TestClient, services: Services
) -> None:
    pid = publish_fake(services, "Nuit")
    body = beacon(pid, source="embed", origin="HTTPS://Festival.Example:443")
    assert post(client, body) == 204
    assert post(client, beacon(pid, "c" * 32, source="embed", origin="http://blog.example:8080"))
    assert post(client, beacon(pid, "d" * 32, source="embed", origin=None)) == 204
    # An embed on this site's own pages is a play of the site.
    assert post(client, beacon(pid, "e" * 32, source="embed", origin="http://testserver")) == 204
    found = [(r.source, r.origin) for r in rows(services)]
    assert found == [
        ("embed", PARTNER),
        ("embed", "http://blog.example:8080"),
        ("embed", None),
        ("site", None),
    ]


@pytest.mark.parametrize(
    "origin",
    [
        "<script>alert(1)</script>",
        'https://a.example"><img src=x>',
        "javascript:alert(1)",
        "https://a.example/path",
        "https://a.example?x=1",
        "https://user:pw@a.example",
        "https://a.example:99999",
        "ftp://a.example",
        "https://" + "a" * 400 + ".example",
        "https://a.example\n",
        "https://exämple.example",
        123,
        ["https://a.example"],
        {"origin": "https://a.example"},
    ],
)
def test_hostile_origins_are_refused(
    client: TestClient, services: Services, origin: object
) -> None:
    pid = publish_fake(services, "Nuit")
    assert post(client, beacon(pid, source="embed", origin=origin)) == 400
    assert count(services) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[]",
        b"null",
        json.dumps({"production": "x", "playback": "a" * 32}).encode(),  # no source
        json.dumps(beacon("x", source="radio")).encode(),
        json.dumps(beacon("x", playback="short")).encode(),
        json.dumps(beacon("x", playback="<b>" * 10)).encode(),
        json.dumps(beacon("x", playback="a" * 65)).encode(),
        json.dumps(beacon("x' OR 1=1 --")).encode(),
        json.dumps(beacon("x" * 300)).encode(),
        json.dumps(beacon(12)).encode(),
        json.dumps({**beacon("x"), "extra": 1}).encode(),
        # A play of this site names no other origin.
        json.dumps(beacon("x", origin=PARTNER)).encode(),
    ],
)
def test_malformed_beacons_are_refused(client: TestClient, services: Services, body: bytes) -> None:
    assert post(client, body) == 400
    assert count(services) == 0


def test_a_huge_body_is_refused_unread(client: TestClient, services: Services) -> None:
    pid = publish_fake(services, "Nuit")
    huge = json.dumps({**beacon(pid), "padding": "x" * 1_000_000}).encode()
    response = client.post("/api/v1/plays", content=huge, headers={"User-Agent": BROWSER})
    assert response.status_code == 413
    assert response.json()["status"] == 413

    def chunks() -> Iterator[bytes]:
        yield json.dumps(beacon(pid))[:-1].encode()
        yield b', "x": "' + b"y" * 5000 + b'"}'

    # Without a Content-Length, the stream is read no further than the limit.
    response = client.post("/api/v1/plays", content=chunks(), headers={"User-Agent": BROWSER})
    assert response.status_code == 413
    assert count(services) == 0


def test_hidden_productions_are_refused_alike(
    client: TestClient, other_client: TestClient, services: Services
) -> None:
    hidden = {
        "unknown": "abcdefghijk",
        "private": publish_fake(services, "Secret", visibility="private"),
        "processing": publish_fake(services, "Encore", status="processing"),
        "failed": publish_fake(services, "Raté", status="failed"),
        "unlisted by its id": publish_fake(services, "Lien", visibility="unlisted"),
    }
    draft = publish_fake(services, "Brouillon", visibility="private")
    with services.sessions.begin() as session:
        session.execute(
            update(Production).where(Production.id == draft).values(publish_as="public")
        )
        unlisted_slug = session.get(Production, hidden["unlisted by its id"]).slug  # type: ignore[union-attr]
    hidden["draft"] = draft
    # Another artist's private production, asked for by a signed-in artist; and its owner's own
    # preview counts no more.
    make_user(services, "nora@example.org", artists=["Nora Ilić"])
    make_user(services, "owner@example.org", artists=["Élodie Fauré"])
    with services.sessions.begin() as session:
        session.execute(
            update(Production)
            .where(Production.id == hidden["private"])
            .values(owner_id=make_user_id(session, "owner@example.org"))
        )
    login(client, "nora@example.org")
    login(other_client, "owner@example.org")
    answers = set()
    for what, address in hidden.items():
        for who in (client, other_client):
            response = who.post(
                "/api/v1/plays",
                content=json.dumps(beacon(address)),
                headers={"User-Agent": BROWSER},
            )
            assert response.status_code == 404, what
            answers.add(response.text)
    assert len(answers) == 1, "the answers tell hidden productions apart"
    assert count(services) == 0
    # An unlisted production named by its secret address counts, signed in (the cookie comes
    # along with the beacon, which carries no CSRF token) or not.
    assert post(client, beacon(unlisted_slug)) == 204
    assert count(services) == 1


def test_a_crawler_adds_no_play(client: TestClient, services: Services) -> None:
    pid = publish_fake(services, "Nuit")
    assert post(client, beacon(pid), **{"User-Agent": GOOGLEBOT}) == 204
    assert post(client, beacon(pid, "b" * 32), **{"User-Agent": ""}) == 204
    assert post(client, beacon(pid, "c" * 32), **{"User-Agent": "curl/8.5.0"}) == 204
    assert count(services) == 0


def test_the_crawler_list_costs_no_milliseconds() -> None:
    plays.is_crawler("warm up")  # compiles the list once
    agents = [f"{BROWSER} Build/{i}" for i in range(200)]
    started = time.thread_time()
    assert not any(plays.is_crawler(agent) for agent in agents)
    fresh = (time.thread_time() - started) / len(agents)
    started = time.thread_time()
    for _ in range(10):
        assert not any(plays.is_crawler(agent) for agent in agents)
    remembered = (time.thread_time() - started) / (10 * len(agents))
    # CPU time of this thread, which other processes on the machine do not inflate: about
    # 0.13 ms per new user agent, and 1 µs once seen; a 10 KB header is cut first.
    assert fresh < 0.001, f"{fresh * 1000:.3f} ms per new user agent"
    assert remembered < 0.00005
    started = time.thread_time()
    assert not plays.is_crawler(BROWSER + "x" * 10_000)
    assert time.thread_time() - started < 0.002
    assert plays.is_crawler(GOOGLEBOT)


def test_a_forged_origin_header_is_refused(client: TestClient, services: Services) -> None:
    pid = publish_fake(services, "Nuit")
    assert post(client, beacon(pid), Origin="https://evil.example") == 403
    assert post(client, beacon(pid), Origin="null") == 403
    assert count(services) == 0
    assert post(client, beacon(pid), Origin="http://testserver") == 204
    assert count(services) == 1


def test_plays_are_limited_per_address(
    client: TestClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "PLAYS_PER_HOUR", 3)
    pid = publish_fake(services, "Nuit")
    for i in range(3):
        assert post(client, beacon(pid, f"{i}" * 32)) == 204
    response = client.post(
        "/api/v1/plays", content=json.dumps(beacon(pid, "x" * 32)), headers={"User-Agent": BROWSER}
    )
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    # Guessing addresses is limited too: the limit comes before any lookup.
    assert post(client, beacon("abcdefghijk", "y" * 32)) == 429
    assert count(services) == 3
    # What the limit keeps names no address, nor a plain hash of one (reversed by hashing every
    # IPv4 address): a hash keyed with the site's secret.
    storage = client.app.state.play_limiter.storage  # type: ignore[attr-defined]
    kept = " ".join(map(str, getattr(storage, "storage", {}).keys()))
    address = "testclient"
    assert kept and address not in kept
    assert hashlib.sha256(address.encode()).hexdigest() not in kept


# --- the day's salt and the database -------------------------------------------------------------


@pytest.fixture
def any_services(any_database_url: str, tmp_path: Path) -> Iterator[Services]:
    opened = open_services(make_settings(tmp_path / "data", any_database_url))
    yield opened
    opened.close()


def test_the_salt_rotates_and_yesterdays_is_forgotten(any_services: Services) -> None:
    services = any_services
    pid = publish_fake(services, "Nuit")
    monday = datetime(2026, 12, 7, 23, 59, tzinfo=UTC)
    tuesday = monday + timedelta(minutes=2)
    listen = plays.Beacon(pid, "a" * 32, "site", None)
    again = plays.Beacon(pid, "b" * 32, "site", None)
    with services.sessions() as session:
        assert plays.record_play(
            session, pid, listen, address="192.0.2.1", user_agent=BROWSER, now=monday
        )
    with services.sessions() as session:
        assert plays.record_play(
            session, pid, again, address="192.0.2.1", user_agent=BROWSER, now=tuesday
        )
        salts = session.scalars(select(PlaySalt.day)).all()
    assert salts == [date(2026, 12, 8)], "yesterday's salt is kept"
    first, second = rows(services)
    assert (first.day, second.day) == (date(2026, 12, 7), date(2026, 12, 8))
    assert first.visitor != second.visitor, "the same visitor is the same hash the next day"
    # The beacon replayed the next day is still one play.
    with services.sessions() as session:
        assert not plays.record_play(
            session, pid, listen, address="192.0.2.1", user_agent=BROWSER, now=tuesday
        )
    assert count(services) == 2


def test_the_same_beacon_at_once_counts_once(any_services: Services) -> None:
    services = any_services
    pid = publish_fake(services, "Nuit")
    listen = plays.Beacon(pid, "a" * 32, "embed", PARTNER)
    threads = 8
    start = threading.Barrier(threads)
    counted: list[bool] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            with services.sessions() as session:
                start.wait()
                counted.append(
                    plays.record_play(session, pid, listen, address="192.0.2.1", user_agent=BROWSER)
                )
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=send) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert errors == []
    assert sorted(counted) == [False] * (threads - 1) + [True]
    assert count(services) == 1
    with services.sessions() as session:
        assert len(session.scalars(select(PlaySalt)).all()) == 1


def test_the_same_beacon_at_once_over_http_counts_once(any_services: Services) -> None:
    services = any_services
    pid = publish_fake(services, "Nuit")
    start = threading.Barrier(6)
    statuses: list[int] = []
    with new_client(services) as client:

        def send() -> None:
            start.wait()
            statuses.append(post(client, beacon(pid)))

        workers = [threading.Thread(target=send) for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=30)
    assert statuses == [204] * 6
    assert count(services) == 1


# --- the statistics ------------------------------------------------------------------------------


def add_plays(services: Services, pid: str, day: date, n: int, origin: str | None = None) -> None:
    source = "site" if origin is None else "embed"
    with services.sessions.begin() as session:
        for i in range(n):
            session.add(
                Play(
                    production_id=pid,
                    day=day,
                    visitor=f"{i:064d}",
                    dedupe=f"{pid}-{day}-{origin}-{i}".ljust(64, "-")[:64],
                    source=source,
                    origin=origin,
                )
            )


def test_stats_count_per_day_production_and_source(services: Services) -> None:
    today = date(2026, 12, 5)
    nuit, clip = publish_fake(services, "Nuit"), publish_fake(services, "Clip")
    add_plays(services, nuit, today, 3)
    add_plays(services, nuit, today - timedelta(days=2), 2, PARTNER)
    add_plays(services, clip, today - timedelta(days=6), 1, "https://blog.example")
    add_plays(services, clip, today - timedelta(days=7), 5)  # outside 7 days
    with services.sessions() as session:
        stats = play_stats.play_stats(session, today=today, days=7, partners={PARTNER: "Festival"})
    assert stats.total == 6
    assert len(stats.days) == 7 and stats.days[0] == (today - timedelta(days=6), 1)
    assert stats.days[-1] == (today, 3) and stats.busiest_day == 3
    assert [(p.title, p.plays) for p in stats.productions] == [("Nuit", 5), ("Clip", 1)]
    assert [(s.kind, s.name, s.plays) for s in stats.sources] == [
        ("site", None, 3),
        ("partner", "Festival", 2),
        ("other", None, 1),
    ]


def test_my_stats_show_only_my_productions(client: TestClient, services: Services) -> None:
    today = datetime.now(UTC).date()
    make_user(services, "nora@example.org", artists=["Nora Ilić"])
    make_user(services, "elodie@example.org", artists=["Élodie Fauré"])
    mine, theirs = publish_fake(services, "Mienne"), publish_fake(services, "Leur")
    with services.sessions.begin() as session:
        for pid, email in ((mine, "nora@example.org"), (theirs, "elodie@example.org")):
            session.execute(
                update(Production)
                .where(Production.id == pid)
                .values(owner_id=make_user_id(session, email))
            )
    add_plays(services, mine, today, 2, PARTNER)
    add_plays(services, theirs, today, 7)
    token = token_for(services, "nora@example.org")
    assert client.get("/api/v1/me/stats").status_code == 401
    response = client.get("/api/v1/me/stats?days=7", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    body = response.json()
    assert body["total"] == 2
    assert [p["id"] for p in body["productions"]] == [mine]
    assert body["productions"][0]["by_day"] == [{"day": today.isoformat(), "plays": 2}]
    assert body["sources"] == [{"kind": "other", "name": None, "plays": 2}]
    assert len(body["by_day"]) == 7
    for days in ("8", "0", "-7", "abc", "99999999999999999999"):
        bad = client.get(
            f"/api/v1/me/stats?days={days}", headers={"Authorization": f"Bearer {token}"}
        )
        assert bad.status_code == 400, days
    # The studio page says the same, and ignores another artist's production when asked for it.
    login(client, "nora@example.org")
    page = client.get(f"/studio/stats?days=30&production={theirs}")
    assert page.status_code == 200
    assert 'data-total="2"' in page.text and "Leur" not in page.text
    assert client.get("/studio/stats?days=31").status_code == 400
    assert client.get("/studio").text.count("/studio/stats") == 1


def test_admins_see_plays_per_partner(
    client: TestClient, other_client: TestClient, services: Services
) -> None:
    today = datetime.now(UTC).date()
    nuit = publish_fake(services, "Nuit")
    add_plays(services, nuit, today, 4, PARTNER)
    add_plays(services, nuit, today, 1, "http://127.0.0.1:9000")
    add_plays(services, nuit, today - timedelta(days=1), 2)
    # The partner, as an admin lists it (cite_live.partners): its origins name its plays.
    with services.sessions.begin() as session:
        session.add(Partner(name="Festival <b>", origins=[PARTNER, "https://www.festival.example"]))
    make_user(services, "admin@example.org", "admin")
    make_user(services, "nora@example.org", artists=["Nora Ilić"])
    login(client, "admin@example.org")
    login(other_client, "nora@example.org")
    page = client.get("/admin/stats?days=7")
    assert page.status_code == 200
    assert 'data-partner="Festival &lt;b&gt;"' in page.text and "Festival <b>" not in page.text
    assert 'data-total="7"' in page.text
    assert other_client.get("/admin/stats").status_code in (403, 404)
    assert "/admin/stats" in client.get("/admin").text


def test_the_maintenance_task_forgets_earlier_salts_on_a_day_without_plays(
    services: Services,
) -> None:
    with services.sessions.begin() as session:
        session.add_all(
            [
                PlaySalt(day=date(2026, 12, 6), salt="a" * 64),
                PlaySalt(day=date(2026, 12, 7), salt="b" * 64),
            ]
        )
    assert plays.forget_earlier_salts(services, datetime(2026, 12, 7, 0, 1, tzinfo=UTC)) == 1
    with services.sessions() as session:
        assert session.scalars(select(PlaySalt.day)).all() == [date(2026, 12, 7)]
    assert "play salts" in {task.name for task in maintenance.tasks(web=False)}


def test_with_a_site_address_a_beacon_from_another_allowed_host_counts(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_SITE_URL="https://live.example.org"
    )
    services = open_services(settings)
    try:
        pid = publish_fake(services, "Nuit")
        with new_client(services) as client:
            assert post(client, beacon(pid), Origin="https://live.example.org") == 204
            assert post(client, beacon(pid, "b" * 32), Origin="http://testserver") == 204
            assert post(client, beacon(pid, "c" * 32), Origin="https://evil.example") == 403
            body = beacon(pid, "d" * 32, source="embed", origin="https://live.example.org")
            assert post(client, body) == 204
        assert [(r.source, r.origin) for r in rows(services)] == [("site", None)] * 3
    finally:
        services.close()
