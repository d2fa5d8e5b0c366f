"""The demo catalogue: made from generated media through the real pipeline, once, in the
background of `cite-live serve --demo`, and never without it."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from cite_live.catalogue import create_production
from cite_live.demo import media, seed
from cite_live.models import Artist, Credit, Production, Venue
from cite_live.search import artist_match, production_match
from cite_live.services import Services, open_services
from tests.app_fixtures import free_port, make_settings
from tests.dbs import sqlite_url

# Long enough for one HLS segment and a few setlist entries, short enough to encode in no time.
SHORT = 3.0


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Services, list[str]]]:
    """One demo catalogue for the module, seeded with short captures."""
    root = tmp_path_factory.mktemp("seeded")
    services = open_services(make_settings(root / "data", sqlite_url(root)))
    made = seed.seed_demo(services, seconds=SHORT)
    yield services, made
    services.close()


def load(services: Services) -> list[Production]:
    with services.sessions() as session:
        query = select(Production).options(
            selectinload(Production.credits).selectinload(Credit.artist),
            selectinload(Production.current_version),
            selectinload(Production.chapters),
            selectinload(Production.tags),
            selectinload(Production.venue),
        )
        return list(session.scalars(query))


def count(services: Services, model: type[Any]) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_seeding_an_empty_catalogue_publishes_real_audio_and_video(
    seeded: tuple[Services, list[str]],
) -> None:
    services, made = seeded
    productions = load(services)
    assert sorted(made) == sorted(p.id for p in productions)
    assert len(productions) == len(seed.PRODUCTIONS)
    assert {p.status for p in productions} == {"ready"}
    assert {p.kind for p in productions} == {"audio", "video"}
    for production in productions:
        version = production.current_version
        assert version is not None and version.master_key
        master = services.store.path_for(version.master_key)  # type: ignore[attr-defined]
        assert master.read_text().startswith("#EXTM3U")
        assert production.duration == pytest.approx(SHORT, abs=0.2)
        if production.kind == "audio":
            assert version.cover_key and version.waveform_key, production.title
        else:
            assert version.poster_key and version.storyboard_vtt_key, production.title
    # The generated captures were made in a temp dir that is gone.
    assert not list(services.settings.tmp_dir.glob("seed-*"))


def test_seeded_productions_carry_credits_venues_setlists_and_two_languages(
    seeded: tuple[Services, list[str]],
) -> None:
    services, _ = seeded
    productions = load(services)
    for production in productions:
        assert production.credits and all(c.role for c in production.credits), production.title
        assert production.venue is not None and production.venue.commune
        assert production.session_type and production.recorded_on and production.description
        assert production.tags
    assert len({p.session_type for p in productions}) >= 4
    live = next(p for p in productions if p.session_type == "live")
    assert live.kind == "video"
    assert [c.title for c in live.chapters] == [t for t, _ in seed.PRODUCTIONS[1].chapters]
    starts = [c.start for c in live.chapters]
    assert starts[0] == 0 and starts == sorted(starts) and starts[-1] < live.duration  # type: ignore[operator]
    assert any(p.title_en and p.description_en for p in productions)
    podcast = next(p for p in productions if p.session_type == "podcast")
    assert podcast.kind == "audio"
    assert {c.role for c in podcast.credits} == {"author", "guest"}

    with services.sessions() as session:
        artists = list(session.scalars(select(Artist)))
        assert len(artists) == len(seed.ARTISTS)
        assert all(a.bio and a.commune and a.disciplines for a in artists)
        assert any(a.featured for a in artists) and any(a.links for a in artists)
        assert {v.name for v in session.scalars(select(Venue))} >= {
            "Cité de la Musique — grande salle",
            "Cité de la Musique — studio A",
            "La Cartoucherie",
        }


def test_seeded_catalogue_is_found_by_accent_free_search(
    seeded: tuple[Services, list[str]],
) -> None:
    services, _ = seeded
    with services.sessions() as session:
        found = session.scalars(select(Artist.name).where(artist_match("elodie faure"))).all()
        assert found == ["Élodie Fauré"]
        titles = session.scalars(select(Production.title).where(production_match("electro")))
        assert "Noé Chabert Trio — live à la grande salle" in titles.all()


def test_seeding_again_does_nothing(seeded: tuple[Services, list[str]]) -> None:
    services, _ = seeded
    before = (count(services, Production), count(services, Artist), count(services, Venue))
    assert seed.seed_demo(services, seconds=SHORT) == []
    assert (count(services, Production), count(services, Artist), count(services, Venue)) == before


def test_a_catalogue_that_has_productions_is_left_alone(services: Services) -> None:
    with services.sessions.begin() as session:
        create_production(session, title="Déjà là", filename="deja-la.mp4")
    assert seed.seed_demo(services, seconds=SHORT) == []
    assert count(services, Production) == 1
    assert count(services, Artist) == 0


def test_one_failing_item_is_logged_and_the_others_are_still_made(
    services: Services, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    podcast = next(p for p in seed.PRODUCTIONS if p.media == "podcast")
    studio = seed.PRODUCTIONS[0]
    # As on a machine without espeak-ng: the podcast cannot be voiced.
    monkeypatch.setattr(media, "ESPEAK", "espeak-ng-is-not-installed")
    with caplog.at_level(logging.ERROR, logger="cite_live.demo"):
        made = seed.seed_demo(services, seconds=SHORT, productions=[podcast, studio])
    assert len(made) == 1
    assert [p.title for p in load(services)] == [studio.title]
    assert any(podcast.title in r.getMessage() for r in caplog.records)


def test_an_item_the_pipeline_refuses_leaves_nothing_behind(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path / "data", sqlite_url(tmp_path), CITE_LIVE_LIMITS_MAX_DURATION="1"
    )
    services = open_services(settings)
    try:
        assert seed.seed_demo(services, seconds=SHORT, productions=seed.PRODUCTIONS[:1]) == []
        assert count(services, Production) == 0
        assert services.store.list("") == []
    finally:
        services.close()


@pytest.mark.parametrize("item", seed.PRODUCTIONS, ids=lambda item: item.media)
def test_every_generated_input_is_held_to_the_file_protocol(item: seed.DemoProduction) -> None:
    out, speech = Path("out"), Path("voice.wav")
    commands = [
        seed.music_audio_command(item, SHORT, out, 1),
        seed.video_command(item, SHORT, out, 1),
        seed.podcast_command(item, SHORT, speech, out, 1),
    ]
    for command in commands:
        inputs = [i for i, arg in enumerate(command) if arg == "-i"]
        assert inputs
        for position in inputs:
            # Input options sit between the previous input (or the global options) and -i.
            options = command[max(i for i in [0, *inputs] if i < position) : position]
            assert options[options.index("-protocol_whitelist") + 1] == "file"


# --- the serve command -----------------------------------------------------------------------


def start_serve(
    data_dir: Path, log: Path, *, host: str = "127.0.0.1", demo: bool = False, **env: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`cite-live serve --host HOST` (with `--demo` when asked) on a free port, in a process
    group of its own; its URL."""
    port = free_port()
    environ = dict(os.environ)
    for name in ("CITE_LIVE_DATABASE_URL", "CITE_LIVE_CONFIG"):
        environ.pop(name, None)
    # Fresh answers while polling for the seeded productions.
    environ.update(
        {"CITE_LIVE_DATA_DIR": str(data_dir), "CITE_LIVE_SITE_PAGE_CACHE_SECONDS": "0", **env}
    )
    command = [sys.executable, "-m", "cite_live", "serve", "--host", host, "--port", str(port)]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, *(["--demo"] if demo else [])],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group, so that stopping it also stops the ffmpeg it runs.
            start_new_session=True,
        )
    return process, f"http://{host}:{port}"


def stop_serve(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def first_answer(url: str, process: subprocess.Popen[bytes], log: Path) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            response = httpx.get(f"{url}/api/v1/productions", timeout=5)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        assert response.status_code == 200
        data: dict[str, Any] = response.json()
        return data
    raise AssertionError(f"the server never answered:\n{log.read_text()}")


def test_serve_demo_answers_at_once_and_seeds_in_the_background(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    process, url = start_serve(tmp_path / "data", log, demo=True)
    try:
        # The server answers before the demo is ready: seeding does not hold start-up.
        assert first_answer(url, process, log)["total"] == 0
        deadline = time.monotonic() + 40
        items: list[dict[str, Any]] = []
        while not items and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            items = httpx.get(f"{url}/api/v1/productions", timeout=5).json()["items"]
            time.sleep(0.25)
        assert items, f"no demo production within 40 s:\n{log.read_text()}"
        first = items[0]
        assert first["status"] == "ready" and first["artists"]
        master = httpx.get(first["hls_url"], timeout=5)
        assert master.status_code == 200 and master.text.startswith("#EXTM3U")
    finally:
        stop_serve(process)


def test_serve_without_demo_leaves_an_empty_database_empty(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    data_dir = tmp_path / "data"
    # Nothing but the command: an operator's first start on a real, still empty catalogue.
    process, url = start_serve(data_dir, log)
    try:
        assert first_answer(url, process, log)["total"] == 0
        # Seeding writes its artists within moments of start-up; give it ample time to show.
        time.sleep(2)
    finally:
        stop_serve(process)
    services = open_services(make_settings(data_dir, sqlite_url(data_dir)))
    try:
        assert count(services, Artist) == 0 and count(services, Production) == 0
    finally:
        services.close()
    assert "demo" not in log.read_text()
