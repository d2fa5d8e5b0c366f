"""The microcache in front of the site: what it keeps, for whom, and for how long."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from starlette.testclient import TestClient

from cite_live.app import create_app
from cite_live.catalogue import create_production
from cite_live.models import Production
from cite_live.services import Services


@pytest.fixture
def cached(services: Services) -> Iterator[TestClient]:
    settings = replace(services.settings, page_cache_seconds=0.5)
    with TestClient(create_app(settings, services)) as client:
        yield client


def retitle_directly(services: Services, production_id: str, title: str) -> None:
    with services.sessions.begin() as session:
        row = session.get(Production, production_id)
        assert row is not None
        row.title = title


def make(services: Services) -> str:
    with services.sessions.begin() as session:
        production = create_production(session, title="Avant", filename="x.mp4")
        production.status = "processing"
        return production.id


def test_a_repeat_is_served_from_the_cache_until_it_expires(
    cached: TestClient, services: Services
) -> None:
    production_id = make(services)
    url = f"/api/v1/productions/{production_id}"
    first = cached.get(url)
    assert (first.headers["x-cache"], first.json()["title"]) == ("miss", "Avant")
    retitle_directly(services, production_id, "Après")
    again = cached.get(url)
    assert (again.headers["x-cache"], again.json()["title"]) == ("hit", "Avant")
    assert int(again.headers["age"]) >= 0
    time.sleep(0.6)
    fresh = cached.get(url)
    assert (fresh.headers["x-cache"], fresh.json()["title"]) == ("miss", "Après")


def test_each_language_gets_its_own_copy(cached: TestClient) -> None:
    french = cached.get("/", headers={"Accept-Language": "fr"})
    english = cached.get("/", headers={"Accept-Language": "en"})
    assert english.headers["x-cache"] == "miss"
    assert french.headers["content-language"] != english.headers["content-language"]
    assert cached.get("/?lang=en").headers["content-language"] == "en"


def test_visitors_with_a_session_cookie_and_errors_are_never_cached(
    cached: TestClient, services: Services
) -> None:
    production_id = make(services)
    url = f"/api/v1/productions/{production_id}"
    cached.get(url)
    retitle_directly(services, production_id, "Après")
    personal = cached.get(url, headers={"Cookie": "session=abc; lang=fr"})
    assert "x-cache" not in personal.headers and personal.json()["title"] == "Après"
    assert cached.get("/api/v1/productions/nope").headers["x-cache"] == "miss"
    assert cached.get("/api/v1/productions/nope").headers["x-cache"] == "miss"


def test_zero_seconds_turns_it_off(services: Services) -> None:
    with TestClient(create_app(services.settings, services)) as client:
        assert services.settings.page_cache_seconds == 0
        assert "x-cache" not in client.get("/").headers
