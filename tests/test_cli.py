"""`cite-live ingest` as outside tools run it: a real process, real ffmpeg."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from cite_live.cli import SHARED_KEY_NEEDED, add_user
from cite_live.models import Production
from cite_live.services import Services

Media = Callable[[str], Path]


def run_cli(
    data_dir: Path, *args: str, site_url: str = "http://cite.example"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CITE_LIVE_DATA_DIR": str(data_dir),
        "CITE_LIVE_SITE_URL": site_url,
    }
    env.pop("CITE_LIVE_DATABASE_URL", None)
    env.pop("CITE_LIVE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "cite_live", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def productions(data_dir: Path) -> list[Production]:
    engine = create_engine(f"sqlite:///{data_dir / 'cite-live.db'}")
    try:
        with Session(engine) as session:
            return list(session.scalars(select(Production)))
    finally:
        engine.dispose()


def stored_files(data_dir: Path) -> list[Path]:
    root = data_dir / "media"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_ingest_json_prints_one_object_per_file_with_tags_filling_title_and_artists(
    tmp_path: Path, media: Media
) -> None:
    result = run_cli(tmp_path, "ingest", str(media("mp3_id3v24_apic")), "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    production = json.loads(lines[0])
    assert production["status"] == "ready"
    assert production["kind"] == "audio"
    assert production["title"] and production["title"] != "mp3 id3v24 apic"
    assert production["artists"], "the artists come from the ID3 tags"
    assert production["hls_url"].startswith("http://cite.example/media/productions/")
    assert production["hls_url"].endswith("/master.m3u8")
    relative = production["hls_url"].removeprefix("http://cite.example/media/")
    assert (tmp_path / "media" / relative).is_file()


def test_flags_override_tags(tmp_path: Path, media: Media) -> None:
    result = run_cli(
        tmp_path,
        "ingest",
        str(media("flac_24bit_picture")),
        "--title",
        "Répétition du jeudi",
        "--artist",
        "Élodie Fauré",
        "--artist",
        "Trio Isère",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    production = json.loads(result.stdout)
    assert production["title"] == "Répétition du jeudi"
    assert production["slug"] == "repetition-du-jeudi"
    assert [a["slug"] for a in production["artists"]] == ["elodie-faure", "trio-isere"]


def test_a_refused_file_is_reported_in_one_line_and_leaves_nothing(
    tmp_path: Path, media: Media
) -> None:
    good = media("ogg_vorbis")
    result = run_cli(
        tmp_path,
        "ingest",
        str(media("playlist_as_mp4")),
        str(good),
        str(tmp_path / "missing.wav"),
        "--json",
    )
    assert result.returncode != 0
    complaints = [line for line in result.stderr.splitlines() if line.startswith("cite-live:")]
    assert len(complaints) == 2, result.stderr
    assert "playlist" in complaints[0].lower()
    assert "missing.wav: no such file." in complaints[1]
    # The good file still went through, and only it is in the catalogue and the store.
    printed = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [p["status"] for p in printed] == ["ready"]
    rows = productions(tmp_path)
    assert [(p.id, p.status) for p in rows] == [(printed[0]["id"], "ready")]
    assert all(printed[0]["id"] in str(p) for p in stored_files(tmp_path))
    assert not any("originals" in str(p) and "playlist" in str(p) for p in stored_files(tmp_path))


def test_only_refused_files_exit_non_zero_with_nothing_stored(tmp_path: Path, media: Media) -> None:
    result = run_cli(tmp_path, "ingest", str(media("zip")), str(media("still_image")))
    assert result.returncode == 1
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 2
    assert productions(tmp_path) == []
    assert stored_files(tmp_path) == []


def test_without_site_url_printed_links_name_the_default_address(services: Services) -> None:
    assert services.settings.site_url == ""
    link = add_user(services, "nora@example.org", "artist", [], None)
    assert link.startswith("http://127.0.0.1:8000/invite/")


def test_user_add_prints_the_invitation_link_on_the_sites_address(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "user",
        "add",
        "nora@example.org",
        "--role",
        "artist",
        site_url="https://cite.example:8443",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://cite.example:8443/invite/")
    assert result.stderr == ""


def test_user_add_without_site_url_says_the_link_must_be_set(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "user", "add", "nora@example.org", "--role", "artist", site_url="")
    assert result.returncode == 0, result.stderr
    # The link is still printed (a one-machine trial on the default address works), with a
    # warning that names the setting to give it the real address.
    assert result.stdout.startswith("http://127.0.0.1:8000/invite/")
    assert "site.url is not set" in result.stderr
    assert "CITE_LIVE_SITE_URL" in result.stderr


def test_a_web_process_with_separate_workers_needs_a_shared_key(tmp_path: Path) -> None:
    env = {**os.environ, "CITE_LIVE_JOBS_BROKER": "redis", "CITE_LIVE_JOBS_URL": "redis://x"}
    env.pop("CITE_LIVE_AUTH_SECRET_KEY", None)
    env["CITE_LIVE_DATA_DIR"] = str(tmp_path / "data")
    refused = subprocess.run(
        [sys.executable, "-m", "cite_live", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1] == f"cite-live: {SHARED_KEY_NEEDED}"
    # Refused before anything was made: no key generated into the data dir, no database.
    assert not (tmp_path / "data" / "secret_key").exists()
    assert not (tmp_path / "data" / "cite-live.db").exists()
