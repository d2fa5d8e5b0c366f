"""The microcache in front of the site: what it keeps, for whom, and for how long."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from cite_live.catalogue import create_production
from cite_live.models import Job, Production
from cite_live.pagecache import FRESH_JITTER, PageCacheMiddleware
from cite_live.services import Services
from cite_live.web.app import create_app
from tests.test_api import publish_fake

FRESH = 0.5


@pytest.fixture
def cached(services: Services) -> Iterator[TestClient]:
    settings = replace(services.settings, page_cache_seconds=FRESH)
    with TestClient(create_app(settings, services)) as client:
        yield client


def retitle_elsewhere(services: Services, production_id: str, title: str) -> None:
    """A change made by another process: through the database, not this process's sessions."""
    with Session(services.engine) as session, session.begin():
        row = session.get(Production, production_id)
        assert row is not None
        row.title = title


def make(services: Services) -> str:
    with services.sessions.begin() as session:
        production = create_production(session, title="Avant", filename="x.mp4")
        # Ready and public: what an anonymous visitor may read (and the cache keep).
        production.status = "ready"
        return production.id


def test_a_repeat_is_served_fresh_then_stale_while_it_is_rendered_again(
    cached: TestClient, services: Services
) -> None:
    production_id = make(services)
    url = f"/api/v1/productions/{production_id}"
    first = cached.get(url)
    assert (first.headers["x-cache"], first.json()["title"]) == ("miss", "Avant")
    retitle_elsewhere(services, production_id, "Après")
    again = cached.get(url)
    assert (again.headers["x-cache"], again.json()["title"]) == ("hit", "Avant")
    assert int(again.headers["age"]) >= 0
    time.sleep(FRESH * (1 + FRESH_JITTER) + 0.1)
    stale = cached.get(url)
    assert (stale.headers["x-cache"], stale.json()["title"]) == ("stale", "Avant")
    # The refresh runs in the background; the next visitors get its result.
    deadline = time.monotonic() + 5
    while (fresh := cached.get(url)).json()["title"] != "Après":
        assert time.monotonic() < deadline, "the stale page was never refreshed"
        time.sleep(0.05)
    assert fresh.headers["x-cache"] == "hit"


def test_a_catalogue_change_committed_by_this_process_shows_at_once(
    cached: TestClient, services: Services
) -> None:
    production_id = make(services)
    url = f"/api/v1/productions/{production_id}"
    cached.get(url)
    with services.sessions.begin() as session:
        row = session.get(Production, production_id)
        assert row is not None
        row.title = "Après"
    now = cached.get(url)
    assert (now.headers["x-cache"], now.json()["title"]) == ("miss", "Après")


def test_job_progress_does_not_make_pages_obsolete(cached: TestClient, services: Services) -> None:
    production_id = make(services)
    with services.sessions.begin() as session:
        job = Job(type="transcode", production_id=production_id)
        session.add(job)
    url = f"/api/v1/productions/{production_id}"
    cached.get(url)
    with services.sessions.begin() as session:
        session.execute(update(Job).values(progress=0.5))
    assert cached.get(url).headers["x-cache"] == "hit"


def test_visitors_asking_at_once_for_a_new_page_share_one_render() -> None:
    renders = 0

    async def slow_page(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal renders
        renders += 1
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"page"})

    cache = PageCacheMiddleware(slow_page, seconds=5)

    async def visit() -> tuple[bytes, bytes]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}
        await cache(scope, receive, send)
        state = dict(sent[0]["headers"])[b"x-cache"]
        return state, sent[1]["body"]

    async def crowd() -> list[tuple[bytes, bytes]]:
        return await asyncio.gather(*(visit() for _ in range(20)))

    answers = asyncio.run(crowd())
    assert renders == 1
    assert sorted(answers) == [(b"hit", b"page")] * 19 + [(b"miss", b"page")]


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
    retitle_elsewhere(services, production_id, "Après")
    personal = cached.get(url, headers={"Cookie": "session=abc; lang=fr"})
    assert "x-cache" not in personal.headers and personal.json()["title"] == "Après"
    assert cached.get("/api/v1/productions/nope").headers["x-cache"] == "miss"
    assert cached.get("/api/v1/productions/nope").headers["x-cache"] == "miss"


def hide_elsewhere(services: Services, production_id: str) -> None:
    """A production made private by another process: through the database alone."""
    with Session(services.engine) as session, session.begin():
        row = session.get(Production, production_id)
        assert row is not None
        row.visibility = "private"


def test_a_refresh_that_gets_an_answer_it_would_not_keep_drops_the_page(
    cached: TestClient, services: Services
) -> None:
    production_id = make(services)
    url = f"/api/v1/productions/{production_id}"
    assert cached.get(url).headers["x-cache"] == "miss"
    hide_elsewhere(services, production_id)
    time.sleep(FRESH * (1 + FRESH_JITTER) + 0.1)
    # The first visitor after the page went stale still gets it, while it is rendered again...
    assert cached.get(url).headers["x-cache"] == "stale"
    # ... and that render's 404 takes it away: the next visitors get the 404, not the old page
    # for the rest of stale_seconds.
    deadline = time.monotonic() + 5
    while (answer := cached.get(url)).status_code == 200:
        assert answer.headers["x-cache"] == "stale"
        assert time.monotonic() < deadline, "the page that went away is still served"
        time.sleep(0.05)
    assert answer.status_code == 404
    assert cached.get(url).status_code == 404


def test_a_refresh_that_fails_keeps_serving_the_stale_page() -> None:
    """A database that stops answering (an error, 5xx) does not take the site's pages away."""
    answers = iter([(200, b"page"), (503, b"down")])

    async def flaky(scope: Scope, receive: Receive, send: Send) -> None:
        status, body = next(answers, (500, b"error"))
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body})

    cache = PageCacheMiddleware(flaky, seconds=0.01)

    async def visit() -> tuple[int, bytes]:
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b""}

        async def send(message: Message) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": "/", "query_string": b"", "headers": []}
        await cache(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]

    async def visits() -> list[tuple[int, bytes]]:
        first = await visit()
        await asyncio.sleep(0.05)
        second = await visit()
        while cache.refreshing:
            await asyncio.sleep(0.01)
        return [first, second, await visit()]

    assert asyncio.run(visits()) == [(200, b"page"), (200, b"page"), (200, b"page")]


def test_zero_seconds_turns_it_off(services: Services) -> None:
    with TestClient(create_app(services.settings, services)) as client:
        assert services.settings.page_cache_seconds == 0
        assert "x-cache" not in client.get("/").headers


# --- the Host header ----------------------------------------------------------------------------

# What the visitors of a cached site read absolute URLs from: the API's media and page URLs,
# the home's cards, a page's canonical link, OG tags and JSON-LD, feed ids and enclosures, and
# oEmbed's iframe.
CACHED_PAGES = (
    "/api/v1/productions",
    "/",
    "/productions/concert",
    "/feed.atom",
    "/podcast.rss",
    "/oembed?url=http://attacker.example/productions/concert",
)


@pytest.mark.parametrize("path", CACHED_PAGES)
def test_a_forged_host_is_refused_and_never_reaches_the_next_visitor(
    cached: TestClient, services: Services, path: str
) -> None:
    publish_fake(services, "Concert", download=True, picture=(320, 180))
    forged = cached.get(path, headers={"Host": "attacker.example"})
    visitor = cached.get(path)
    assert "attacker.example" not in visitor.text
    assert forged.status_code == 400
    if not path.startswith("/oembed"):
        assert visitor.status_code == 200
        assert "http://testserver/" in visitor.text


@pytest.mark.parametrize("path", CACHED_PAGES[:5])
def test_each_host_and_scheme_gets_its_own_copy(
    cached: TestClient, services: Services, path: str
) -> None:
    publish_fake(services, "Concert", download=True, picture=(320, 180))
    # localhost is one of the site's own names: answered, and kept apart.
    local = cached.get(path, headers={"Host": "localhost"})
    assert local.status_code == 200 and "http://localhost/" in local.text
    secure = cached.get(path.replace("/", "https://testserver/", 1))
    assert secure.status_code == 200 and "https://testserver/" in secure.text
    plain = cached.get(path)
    assert plain.headers["x-cache"] == "miss"
    assert "http://localhost/" not in plain.text and "https://testserver/" not in plain.text
