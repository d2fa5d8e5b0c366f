"""Plays in a real browser: listens on this site and in frames on two other origins arrive as
plays with their sources, a crawler's count for nothing, and the artist reads them in the
studio at desktop and phone width.

The module's catalogue is tests/test_browser.py's (a 12 s video: half of it, 6 s, is a play).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from cite_live import play_stats as play_stats_module
from cite_live.models import Play, Production
from cite_live.play_stats import play_stats
from tests.account_fixtures import PASSWORD, make_user
from tests.partner_site import partner_sites
from tests.test_browser import (
    ARTIFACTS,
    DESKTOP,
    Catalogue,
    browser,
    catalogue,
    new_page,
    screenshot,
    shared_context,
    wait_for_engine,
)

# The fixtures this module uses, imported from the player's tests.
__all__ = ["browser", "catalogue", "new_page", "shared_context"]

PHONE = {"width": 375, "height": 812}
# Headless Chromium says "HeadlessChrome", which the crawler list names (rightly: a page driven
# by a script): the listeners here say what a person's Chromium says.
LISTENER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
ARTIST = "chorale@example.org"
# Waits for the player to count a play: half the 12 s video, played at real speed, and a margin.
COUNTED_MS = 30_000

# Kept on the window: a promise returned to Playwright would be waited for there and then.
WAIT_FOR_PLAY = """(media) => {
    window.clPlayCounted = new Promise((resolve) => {
        media.addEventListener("cl-play-counted", (event) => resolve(event.detail.playback),
                               { once: true });
    });
}"""


def plays_of(catalogue: Catalogue) -> list[tuple[str, str | None]]:
    with catalogue.services.sessions() as session:
        rows = session.execute(select(Play.source, Play.origin).order_by(Play.id)).all()
    return [(source, origin) for source, origin in rows]


def count(catalogue: Catalogue) -> int:
    with catalogue.services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Play)) or 0


def wait_for_count(catalogue: Catalogue, expected: int, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while count(catalogue) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert count(catalogue) == expected


@pytest.fixture
def forget_plays(catalogue: Catalogue) -> Iterator[None]:
    with catalogue.services.sessions.begin() as session:
        session.execute(delete(Play))
    yield


@pytest.fixture
def partners() -> Iterator[Callable[[int, str], str]]:
    """Two partner sites, each on an origin of its own: ``partners(which, src)`` is the address
    of a new page of site ``which`` framing ``src``."""
    with partner_sites(2) as sites:
        yield lambda which, src: sites[which].framing(src)


def embed_frame(page: Any) -> Any:
    page.frame_locator("iframe").locator("[data-player][data-engine]").wait_for(state="attached")
    return next(f for f in page.frames if "/embed/" in f.url)


def start_counting(page_or_frame: Any) -> None:
    """Play the media (muted), watching for the player's next counted play."""
    handle = page_or_frame.locator("[data-player] video, [data-player] audio").element_handle()
    page_or_frame.evaluate(WAIT_FOR_PLAY, handle)
    page_or_frame.evaluate("(media) => { media.muted = true; return media.play(); }", handle)


def counted(page_or_frame: Any) -> str:
    """The playback id of the play the player counted (waiting for it)."""
    playback: str = page_or_frame.evaluate("() => window.clPlayCounted")
    return playback


def test_listens_on_two_partner_sites_and_this_one_are_four_plays_with_their_sources(
    catalogue: Catalogue,
    new_page: Callable[..., Any],
    partners: Callable[[int, str], str],
    forget_plays: None,
) -> None:
    embed = f"{catalogue.url}/embed/{catalogue.video_id}"
    framing = [partners(0, embed), partners(0, embed), partners(1, embed)]
    origins = ["/".join(url.split("/")[:3]) for url in framing]
    assert origins[0] == origins[1] != origins[2]
    listeners = []
    for url in framing:
        page = new_page(fresh=True, user_agent=LISTENER)
        page.goto(url)
        frame = embed_frame(page)
        start_counting(frame)
        listeners.append((page, frame))
    site = new_page(fresh=True, user_agent=LISTENER)
    site.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(site)
    start_counting(site)
    listeners.append((site, site))
    ids = {counted(where) for _, where in listeners}
    assert len(ids) == 4, "each playback session draws its own id"
    wait_for_count(catalogue, 4)
    assert sorted(plays_of(catalogue), key=str) == sorted(
        [("embed", origins[0]), ("embed", origins[0]), ("embed", origins[2]), ("site", None)],
        key=str,
    )
    # Classified when read: the first origin is a partner's, the other any other site.
    with catalogue.services.sessions() as session:
        stats = play_stats(
            session, today=datetime.now(UTC).date(), days=7, partners={origins[0]: "Festival"}
        )
    assert [(s.kind, s.name, s.plays) for s in stats.sources] == [
        ("site", None, 1),
        ("partner", "Festival", 2),
        ("other", None, 1),
    ]
    # Playing on, or pausing and playing again, is the same playback session: still 4.
    site.evaluate("() => document.querySelector('[data-player] video').play()")
    time.sleep(1.0)
    assert count(catalogue) == 4
    screenshot(listeners[2][0], "plays-partner-embed")


def test_a_crawler_playing_adds_no_play(
    catalogue: Catalogue, new_page: Callable[..., Any], forget_plays: None
) -> None:
    page = new_page(fresh=True, user_agent=GOOGLEBOT)
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(page)
    with page.expect_request(lambda r: r.url.endswith("/api/v1/plays"), timeout=COUNTED_MS):
        start_counting(page)
        counted(page)
    time.sleep(1.0)
    assert count(catalogue) == 0


def test_a_seek_does_not_count_as_heard(
    catalogue: Catalogue, new_page: Callable[..., Any], forget_plays: None
) -> None:
    page = new_page(fresh=True, user_agent=LISTENER)
    page.goto(f"{catalogue.url}/productions/{catalogue.video_slug}")
    wait_for_engine(page)
    start_counting(page)
    # Straight to the last seconds: 2 s heard, not 10.
    page.evaluate("() => { document.querySelector('[data-player] video').currentTime = 9.5; }")
    page.wait_for_function(
        "() => document.querySelector('[data-player] video').ended", timeout=COUNTED_MS
    )
    time.sleep(0.5)
    assert count(catalogue) == 0


@pytest.mark.parametrize(("viewport", "name"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_the_artist_reads_the_plays_in_the_studio(
    catalogue: Catalogue,
    new_page: Callable[..., Any],
    forget_plays: None,
    viewport: dict[str, int],
    name: str,
) -> None:
    services = catalogue.services
    with services.sessions() as session:
        known = session.scalar(select(func.count()).where(Production.owner_id.isnot(None)))
    if not known:
        owner = make_user(services, ARTIST, artists=["Chœur Diois"])
        with services.sessions.begin() as session:
            session.execute(update(Production).values(owner_id=owner))
    today = datetime.now(UTC).date()
    with services.sessions.begin() as session:
        for back, n, origin in ((0, 3, None), (1, 5, "https://festival.example"), (4, 2, None)):
            for i in range(n):
                session.add(
                    Play(
                        production_id=catalogue.video_id if i % 2 else catalogue.audio_id,
                        day=today - timedelta(days=back),
                        visitor=f"{back}-{i}".ljust(64, "0"),
                        dedupe=f"{back}-{i}-{name}".ljust(64, "0"),
                        source="site" if origin is None else "embed",
                        origin=origin,
                    )
                )
    page = new_page(viewport, fresh=True)
    page.goto(f"{catalogue.url}/login?next=/studio")
    page.fill("input[name=email]", ARTIST)
    page.fill("input[name=password]", PASSWORD)
    page.click("form.studio-form button[type=submit]")
    page.wait_for_url(f"{catalogue.url}/studio")
    page.click("a[href='/studio/stats']")
    page.wait_for_url(f"{catalogue.url}/studio/stats")
    assert page.locator("[data-total]").get_attribute("data-total") == "10"
    bars = page.locator(".stats-chart__bar")
    assert bars.count() == 30
    assert page.locator("[data-source='site'] td").first.inner_text() == "5"
    assert page.locator("[data-source='other'] td").first.inner_text() == "5"
    # Nothing runs past the screen's width, the chart included.
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    chart = page.locator(".stats-chart__svg").bounding_box()
    assert chart is not None and chart["width"] <= viewport["width"]
    screenshot(page, f"studio-stats-{name}")
    page.screenshot(path=str(ARTIFACTS / f"studio-stats-{name}-whole.png"), full_page=True)
    page.click("a[href='/studio/stats?days=7']")
    page.wait_for_url("**/studio/stats?days=7")
    assert page.locator(".stats-chart__bar").count() == 7
    page.locator("select[name=production]").select_option(catalogue.video_id)
    page.click(".stats-filter button[type=submit]")
    page.wait_for_url(f"**production={catalogue.video_id}**")
    assert page.locator("[data-total]").get_attribute("data-total") == "4"
    page.locator(".stats-chart__table summary").click()
    page.screenshot(path=str(ARTIFACTS / f"studio-stats-{name}-one-production.png"), full_page=True)
    assert page.js_errors == []


def test_the_admin_reads_the_plays_per_partner_site(
    catalogue: Catalogue,
    new_page: Callable[..., Any],
    forget_plays: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = catalogue.services
    monkeypatch.setattr(
        play_stats_module, "partner_names", lambda session: {"https://festival.example": "Festival"}
    )
    make_user(services, "admin-plays@example.org", "admin")
    today = datetime.now(UTC).date()
    with services.sessions.begin() as session:
        for i, origin in enumerate(["https://festival.example"] * 3 + ["https://blog.example"]):
            session.add(
                Play(
                    production_id=catalogue.video_id,
                    day=today - timedelta(days=i),
                    visitor=f"admin-{i}".ljust(64, "0"),
                    dedupe=f"admin-{i}".ljust(64, "0"),
                    source="embed",
                    origin=origin,
                )
            )
    page = new_page(PHONE, fresh=True)
    page.goto(f"{catalogue.url}/login?next=/admin")
    page.fill("input[name=email]", "admin-plays@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("form.studio-form button[type=submit]")
    page.wait_for_url(f"{catalogue.url}/admin")
    page.click("a[href='/admin/stats']")
    page.wait_for_url(f"{catalogue.url}/admin/stats")
    assert page.locator("[data-partner='Festival'] td").first.inner_text() == "3"
    assert page.locator("[data-source='other'] td").first.inner_text() == "1"
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    page.screenshot(path=str(ARTIFACTS / "admin-stats-phone.png"), full_page=True)
    assert page.js_errors == []
