"""Serve a large catalogue under load: pages, API and media against nginx; figures go in
BENCHMARKS.md.

    .venv/bin/python bench/serve.py [--quick] [--productions N] [--artists N] [--clients N]
                                    [--seconds S] [--database-url URL] [--keep]
                                    [--search-only [--before CHECKOUT]]

``--search-only`` times first visits of searches by kind of query (a common word, a rare
one, three letters, two letters, no result, two words) and nothing else; with ``--before``,
first with another checkout's code (e.g. main's) on the schema it knows, then with this one's
after migrating (the time to build the search indexes is printed).

1. Two real HLS sets are made by the real pipeline (`submit_file` + `run_transcode`) from
   generated captures: a 720p video whose picture carries noise, so that its segments weigh what
   a real capture's do (about 1-2 MB), and a stereo audio.
2. 10,000 productions and 1,000 artists (with venues, tags, credits, setlists) are written
   straight into a fresh database, each production pointing at one of those two sets: nothing
   else is transcoded. Credits follow a long tail, as in life: a few artists are on hundreds
   of productions. ``search_text`` is what the site's own indexer makes (a sample is checked).
   The rows go into the schema before the search indexes (``UNINDEXED``), which are then
   built in one go by migrating: kept row by row during the seed, they made it slower.
3. ``cite-live serve`` (one uvicorn process, demo seeding off) starts on 127.0.0.1 on a free
   port, and wrk (Debian package, installed with apt-get when missing) drives it with 50
   connections over two threads, keep-alive, for each of: the home page, artist pages,
   production pages, searches and the API list, each cycling through a few hundred URLs.
   First, one client visits every URL of the set once, in turn: the time of these first
   visits is what a page costs to render (the site's page cache has none of them yet), and
   it is reported on its own. Then each loaded run lasts ``--seconds`` after a short warm-up
   (wrk is bounded by time: its threads can stop at a count, but its clock and request rate
   run to the end of the duration); pages go stale after ``site.page_cache_seconds`` during
   it and are rendered again in the background, as in production. One client alone then
   measures what a single request costs in that steady state. A page that does not answer
   200 yet is reported and skipped.
4. One segment of about 1-1.5 MB is fetched from the app's ``/media/`` route and from an
   nginx (Debian's nginx-light, installed when missing) serving the same folder: our own
   process, generated config, one worker like the app's one process, bound to 127.0.0.1 on a
   free port, ``daemon off``, stopped at the end. Like the app, which logs every request,
   that nginx writes its access log (Debian's default); a second one, with the log off, is
   measured too. Runs alternate app, nginx, quiet nginx, twice; the best of each counts. Then
   twice more through the deployment the README describes: nginx in front of a second
   `cite-live serve` with ``local.accel_redirect`` set, the app checking each request and
   nginx sending the file.

Targets: p99 under 50 ms for every page; segment throughput at least 0.5 x nginx's (either
nginx).
``--quick`` (300 productions, 60 artists, a few seconds per run) is a smoke test; its figures
mean nothing. Everything lives in a temp dir removed at the end (``--keep`` keeps it).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from harness import (
    ROOT,
    app_server,
    cpu_model,
    free_port,
    load_average,
    stop,
    wait_until_answering,
)
from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from cite_live import search
from cite_live.catalogue import slugify
from cite_live.db import alembic_config, make_engine, migrate
from cite_live.demo.media import ffmpeg, lavfi, tones
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.models import (
    Artist,
    Chapter,
    Credit,
    MediaVersion,
    Production,
    Tag,
    Venue,
    new_public_id,
    production_tags,
)
from cite_live.services import Services, open_services
from cite_live.settings import load_settings
from cite_live.storage import LocalStore
from cite_live.vocabulary import LICENCES, SESSION_TYPES
from cite_live.web.urls import MEDIA_PREFIX, Urls

TARGET_P99_MS = 50.0
TARGET_MEDIA_RATIO = 0.5
SEGMENT_BYTES = 1_500_000
WRK_THREADS = 2
# nginx with its access log off: it then does less per request than the app, which logs each.
QUIET_NGINX = "nginx, no access log"
SBIN = "/usr/sbin:/sbin"


@dataclass(frozen=True)
class Plan:
    productions: int
    artists: int
    clients: int
    seconds: int
    warmup_seconds: int
    media_seconds: int
    source_seconds: int
    source_size: str


FULL = Plan(10_000, 1_000, 50, 20, 3, 10, 12, "1280x720")
QUICK = Plan(300, 60, 50, 4, 1, 3, 6, "854x480")


# --- machine and tools ---------------------------------------------------------------------


def _which(binary: str) -> str | None:
    return shutil.which(binary, path=f"{os.environ.get('PATH', '')}:{SBIN}")


def ensure_tool(binary: str, package: str) -> str:
    """The path of ``binary``, installing its Debian package first when it is missing."""
    found = _which(binary)
    if found:
        return found
    print(f"# {binary} is missing: apt-get install {package}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(command, env=env, check=False).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(command, env=env, check=True)
    found = _which(binary)
    if not found:
        raise SystemExit(f"{binary} is still missing after installing {package}")
    return found


def _version(argv: Sequence[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip().splitlines()[0]


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --- two real HLS sets -----------------------------------------------------------------------


def make_sources(directory: Path, plan: Plan) -> tuple[Path, Path]:
    """A noisy video (real-sized segments once encoded) and a plain stereo audio capture."""
    seconds = plan.source_seconds
    video = directory / "bench-capture.mp4"
    ffmpeg(
        *lavfi(f"testsrc2=s={plan.source_size}:r=30:d={seconds},noise=alls=24:allf=t+u"),
        *tones(seconds),
        *["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p"],
        *["-c:a", "aac", "-b:a", "160k", "-shortest", str(video)],
    )
    audio = directory / "bench-session.flac"
    ffmpeg(*tones(seconds), "-c:a", "flac", str(audio))
    return video, audio


def real_versions(services: Services, directory: Path, plan: Plan) -> dict[str, dict[str, Any]]:
    """Transcode the two sources; return their media versions' columns, by kind."""
    versions: dict[str, dict[str, Any]] = {}
    for source in make_sources(directory, plan):
        production_id, job_id = submit_file(services, source, title=source.stem)
        run_transcode(services, job_id)
        with services.sessions() as session:
            production = session.get(Production, production_id)
            assert production is not None and production.current_version is not None
            version = production.current_version
            versions[production.kind] = {
                column: getattr(version, column)
                for column in (
                    "prefix",
                    "master_key",
                    "poster_key",
                    "cover_key",
                    "waveform_key",
                    "storyboard_image_key",
                    "storyboard_vtt_key",
                    "download_key",
                    "ladder",
                    "loudness_lufs",
                    "duration",
                )
            }
    return versions


def pick_segment(store: LocalStore, prefix: str) -> str:
    """The key of the video segment closest to SEGMENT_BYTES."""
    segments = [key for key in store.list(prefix) if key.endswith(".m4s")]
    return min(segments, key=lambda key: abs(store.path_for(key).stat().st_size - SEGMENT_BYTES))


# --- a large catalogue, written straight into the database ------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "Élodie Noé Zoé Maëlle Théo Léa Chloé Hugo Jérôme Inès Anaïs Joël Gaëlle Loïc Hélène Côme "
    "Benoît Agnès Clément Mélanie Raphaël Séverine Timothée Aurélien Françoise Grégoire Léonie "
    "Amélie Mathéo Solène Adèle Jules Manon Louis Camille Sacha Lucie Nathan Emma Arthur"
)
LAST = _words(
    "Fauré Chabert Giraud Brun Lacroix Muñoz Rousset Morel Faure Girard Bonnet Chevalier "
    "Fournier Mercier Lefèvre Garnier Perrin Roche Besson Michaud Clément Vidal Barbier Robin "
    "Lemaître Gauthier Dupré Rivière Bérard Reynaud Pellegrin Jacquemart Drevet Bouvier Escoffier "
    "Tardy Vernet Chaix Arnaud Sauvageon"
)
ENSEMBLES = _words("Quatuor Trio Ensemble Collectif Orchestre Chœur Fanfare Duo Compagnie")
COMMUNES = (
    "Romans-sur-Isère",
    "Bourg-de-Péage",
    "Mours-Saint-Eusèbe",
    "Chatuzange-le-Goubet",
    "Génissieux",
    "Peyrins",
    "Saint-Paul-lès-Romans",
    "Granges-lès-Beaumont",
    "Clérieux",
    "Valence",
    "Bourg-lès-Valence",
    "Saint-Donat-sur-l'Herbasse",
    "Triors",
    "Geyssans",
)
DISCIPLINES = _words(
    "piano violon alto violoncelle batterie guitare basse chant électro jazz rap chanson "
    "réalisation vidéo radio synthétiseurs composition prise-de-son musique-de-chambre"
)
WORDS = _words(
    "Nocturne Suite Chant Danse Impromptu Session Prélude Ballade Rêverie Échos Lumières "
    "Carnet Fugue Variations Esquisse Printemps Hiver Rivière Jacquemart Isère Vercors Drôme "
    "Cité Cartoucherie Électro Fanfare Berceuse Marche Toccata Cantate"
)
TAGS = (
    "jazz",
    "électro",
    "musique de chambre",
    "chanson",
    "rap",
    "podcast",
    "live",
    "clip",
    "création",
    "répétition",
    "piano",
    "cordes",
    "voix",
    "jeune public",
    "patrimoine",
    "cinéma d'animation",
    "résidence",
    "fanfare",
    "improvisation",
)
ROLES = ("performer", "composer", "director", "engineer", "arranger", "producer", "guest")


@dataclass
class Sample:
    """The URLs of each kind of page that the load runs cycle through."""

    artists: list[str] = field(default_factory=list)
    productions: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


def _artist_names(rng: random.Random, count: int) -> list[str]:
    names: list[str] = []
    slugs: set[str] = set()
    while len(names) < count:
        if rng.random() < 0.15:
            name = f"{rng.choice(ENSEMBLES)} {rng.choice(WORDS)} {rng.choice(LAST)}"
        else:
            name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        if len(names) % 7 == 0:
            name = f"{name}-{rng.choice(LAST)}"
        slug = slugify(name)
        if slug not in slugs:
            slugs.add(slug)
            names.append(name)
    return names


SEED_CHUNK = 20_000
# The last revision before the search indexes (0018_search_indexes): the seed writes there.
UNINDEXED = "0017_job_chunks"


def _production_rows(
    rng: random.Random,
    versions: dict[str, dict[str, Any]],
    venues: Sequence[Venue],
    tags: Sequence[Tag],
    artist_ids: Sequence[int],
    weights: Sequence[float],
    names: dict[int, str],
    ids: set[str],
    first_index: int,
    count: int,
) -> dict[Any, list[dict[str, Any]]]:
    """``count`` productions with their versions, credits, tags and chapters, as rows, each
    production's ``search_text`` written as the site's indexer writes it."""
    now = datetime.now(UTC)
    rows: dict[Any, list[dict[str, Any]]] = {
        Production: [],
        MediaVersion: [],
        Credit: [],
        production_tags: [],
        Chapter: [],
    }
    for index in range(first_index, first_index + count):
        production_id = new_public_id()
        while production_id in ids:
            production_id = new_public_id()
        ids.add(production_id)
        kind = "audio" if rng.random() < 0.45 else "video"
        title = " ".join(rng.sample(WORDS, rng.randint(1, 3))) + f" nº {index + 1}"
        english = rng.random() < 0.25
        ready = rng.random() >= 0.01
        visibility = "unlisted" if rng.random() < 0.03 else "public"
        published = now - timedelta(seconds=rng.uniform(0, 3 * 365 * 86400))
        venue = rng.choice(venues)
        production = {
            "id": production_id,
            "slug": slugify(title),
            "title": title,
            "title_en": f"{title} (English)" if english else None,
            "title_is_placeholder": False,
            "kind": kind,
            "status": "ready" if ready else "processing",
            "duration": rng.uniform(60, 3600),
            "description": " ".join(rng.choices(WORDS, k=rng.randint(5, 60))),
            "description_en": "An English description." if english else None,
            "recorded_on": date(2020, 1, 1) + timedelta(days=rng.randint(0, 2000)),
            "venue_id": venue.id,
            "session_type": rng.choice(SESSION_TYPES),
            "licence": rng.choice(LICENCES),
            "visibility": visibility,
            "original_filename": "capture.mp4",
            "created_at": published,
            "updated_at": published,
            "published_at": published if ready else None,
        }
        rows[Production].append(production)
        if ready:
            rows[MediaVersion].append(
                {
                    **versions[kind],
                    "production_id": production_id,
                    "name": "bench",
                    "state": "published",
                    "created_at": published,
                }
            )
        credited = list(
            dict.fromkeys(rng.choices(artist_ids, cum_weights=weights, k=rng.randint(1, 3)))
        )
        for position, artist_id in enumerate(credited):
            role = "performer" if position == 0 else rng.choice(ROLES)
            rows[Credit].append(
                {
                    "production_id": production_id,
                    "artist_id": artist_id,
                    "role": role,
                    "position": position,
                }
            )
        chosen = sorted(rng.sample(list(tags), rng.randint(1, 3)), key=lambda t: t.id)
        rows[production_tags] += [{"production_id": production_id, "tag_id": t.id} for t in chosen]
        chapters: list[str] = []
        if rng.random() < 0.1:
            for number in range(rng.randint(3, 8)):
                chapters.append(f"{rng.choice(WORDS)} {number + 1}")
                rows[Chapter].append(
                    {
                        "production_id": production_id,
                        "title": chapters[-1],
                        "start": number * 180.0,
                    }
                )
        # What cite_live.search.production_text makes of the same production.
        parts = [
            title,
            production["title_en"],
            *(names[artist_id] for artist_id in credited),
            venue.name,
            venue.commune,
            *(t.name for t in chosen),
            *chapters,
            production["description"],
            production["description_en"],
        ]
        production["search_text"] = search.normalize(" ".join(p for p in parts if p))
    return rows


def _check_search_text(session: Session, rng: random.Random) -> None:
    """The text the seed wrote is the one the site's indexer makes, for a sample."""
    ids = session.scalars(select(Production.id).order_by(Production.id).limit(2000)).all()
    for production_id in rng.sample(list(ids), min(50, len(ids))):
        production = session.get(Production, production_id)
        assert production is not None
        expected = search.production_text(session, production)
        if production.search_text != expected:
            raise SystemExit(f"seeded text {production.search_text!r}, indexer's {expected!r}")


def seed_catalogue(
    services: Services,
    versions: dict[str, dict[str, Any]],
    plan: Plan,
    rng: random.Random,
) -> Sample:
    """Write the artists, venues, tags and productions of the benchmark in one transaction."""
    now = datetime.now(UTC)
    sample = Sample()
    with services.sessions.begin() as session:
        venues = [
            Venue(name=f"{place} — {room}", slug=slugify(f"{place} {room}"), commune=commune)
            for place, commune in (
                ("Cité de la Musique", "Romans-sur-Isère"),
                ("La Cartoucherie", "Bourg-lès-Valence"),
                ("Salle des fêtes", "Peyrins"),
            )
            for room in ("grande salle", "studio A", "studio B", "scène extérieure")
        ]
        tags = [Tag(name=name, slug=slugify(name)) for name in TAGS]
        session.add_all([*venues, *tags])
        session.flush()

        first_artist = (session.scalar(select(func.max(Artist.id))) or 0) + 1
        artist_rows: list[dict[str, Any]] = []
        for offset, name in enumerate(_artist_names(rng, plan.artists)):
            disciplines = rng.sample(DISCIPLINES, rng.randint(1, 3))
            row: dict[str, Any] = {
                "id": first_artist + offset,
                "name": name,
                "slug": slugify(name),
                "bio": f"{name} joue et enregistre à la Cité. " * rng.randint(1, 6),
                "commune": rng.choice(COMMUNES),
                "disciplines": disciplines,
                "links": [{"label": "Site", "url": f"https://{slugify(name)}.example"}],
                "featured": offset % 40 == 0,
                "created_at": now - timedelta(days=rng.uniform(0, 1000)),
            }
            row["search_text"] = search.artist_text(Artist(**row))
            artist_rows.append(row)
        session.execute(insert(Artist), artist_rows)
        artist_ids = [row["id"] for row in artist_rows]
        # A long tail: the artist of rank r is credited in proportion to 1 / (r + 10).
        weights = list(itertools.accumulate(1 / (rank + 10) for rank in range(len(artist_ids))))

        names = {row["id"]: row["name"] for row in artist_rows}
        ids: set[str] = set()
        written = 0
        while written < plan.productions:
            count = min(SEED_CHUNK, plan.productions - written)
            rows = _production_rows(
                rng, versions, venues, tags, artist_ids, weights, names, ids, written, count
            )
            for table, values in rows.items():
                if values:
                    session.execute(insert(table), values)
            for row in rows[Production]:
                listed = row["published_at"] and row["visibility"] == "public"
                if listed and len(sample.productions) < 500:
                    sample.productions.append(row["slug"])
            written += count
            if written % 100_000 == 0:
                print(f"# {written:,} productions written", flush=True)
        # Each ready production plays its version: one statement, not a million.
        session.execute(
            update(Production)
            .where(Production.status == "ready")
            .values(
                current_version_id=select(MediaVersion.id)
                .where(MediaVersion.production_id == Production.id)
                .scalar_subquery()
            )
        )
        # The site's own indexer would load every production; the seed wrote the same text,
        # which a sample checks.
        _check_search_text(session, rng)

    sample.artists = [row["slug"] for row in rng.sample(artist_rows, min(300, len(artist_rows)))]
    queries = {search.normalize(row["name"]).split()[-1] for row in artist_rows[:40]}
    queries |= {search.normalize(word) for word in rng.sample(WORDS, 12)}
    queries |= {"romans", "electro", "faure", "cite musique", "nocturne live"}
    sample.queries = sorted(queries)
    return sample


def analyze(services: Services) -> None:
    """Give PostgreSQL's planner statistics of what the seed wrote, as autovacuum would have
    in a database that grew over time (SQLite's are taken as ``cite-live serve`` starts).
    Without them, on a server whose autovacuum is off or has not come round yet, it guessed
    and a first search of a common word took over 30 s at a million productions (ANALYZE:
    under 2 s)."""
    if services.engine.dialect.name != "postgresql":
        return
    clock = time.monotonic()
    with services.engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
    print(f"# statistics taken (ANALYZE) in {time.monotonic() - clock:.1f} s", flush=True)


# --- servers ----------------------------------------------------------------------------------


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    {access_log}
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    types {{ video/iso.segment m4s; application/vnd.apple.mpegurl m3u8; video/mp4 mp4; }}
    default_type application/octet-stream;
{server}
}}
"""
# nginx serving the store's folder itself, at the app's media addresses.
NGINX_MEDIA = """\
    server {{
        listen 127.0.0.1:{port};
        location {media} {{
            alias {root}/;
            add_header Access-Control-Allow-Origin "*";
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
    }}"""
# The deployment the README describes: nginx in front of the app, the app checking each media
# request and answering X-Accel-Redirect, nginx sending the file from its internal location.
NGINX_FRONT = """\
    upstream app {{ server 127.0.0.1:{app_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
        }}
        location /_media/ {{
            internal;
            alias {root}/;
            add_header Access-Control-Allow-Origin "*" always;
        }}
    }}"""


@contextmanager
def nginx_server(
    nginx: str,
    root: Path,
    prefix: Path,
    app_url: str | None = None,
    *,
    access_log: bool = True,
) -> Iterator[str]:
    """Our own nginx serving ``root`` under /media/, or in front of the app at ``app_url``
    sending what it allows; never the system's service. Like the app, it writes a line per
    request to its access log (in the ``combined`` format, as Debian's configuration has it),
    unless ``access_log`` is false."""
    prefix.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = prefix / "nginx.conf"
    if app_url is None:
        server = NGINX_MEDIA.format(port=port, root=root, media=MEDIA_PREFIX)
    else:
        server = NGINX_FRONT.format(port=port, root=root, app_port=app_url.rsplit(":", 1)[1])
    log_line = f"access_log {prefix}/access.log;" if access_log else "access_log off;"
    conf.write_text(NGINX_CONF.format(prefix=prefix, server=server, access_log=log_line))
    log = prefix / "error.log"
    with (prefix / "stdout.log").open("wb") as out:
        process = subprocess.Popen(
            [nginx, "-e", str(log), "-p", str(prefix), "-c", str(conf)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answering(f"{url}/", process, prefix / "stdout.log", 20)
        yield url
    finally:
        stop(process)


# --- load ------------------------------------------------------------------------------------

WRK_SCRIPT = """\
local paths = {PATHS}
local index = 0
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", threads * 7919)
end

function init(args)
  index = offset or 0
end

function request()
  index = index + 1
  return wrk.format("GET", paths[(index % #paths) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_JSON %d %d %d %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    bytes: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    load: str

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes / self.seconds / 1e6 if self.seconds else 0.0


def run_wrk(
    wrk: str,
    base: str,
    paths: Sequence[str],
    *,
    name: str,
    clients: int,
    seconds: int,
    script_dir: Path,
) -> Result:
    """One wrk run of ``seconds`` cycling through ``paths``."""
    threads = min(WRK_THREADS, clients)
    lua_paths = "{" + ", ".join(json.dumps(path) for path in paths) + "}"
    script = script_dir / f"{slugify(name)}.lua"
    script.write_text(WRK_SCRIPT.replace("{PATHS}", lua_paths))
    load = load_average()
    command = [
        wrk,
        f"-t{threads}",
        f"-c{clients}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        base,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("WRK_JSON "))
    numbers = [int(value) for value in line.split()[1:]]
    total, duration, size, connect, read, write, status, timeout = numbers[:8]
    p50, p90, p99, worst = (value / 1000 for value in numbers[8:])
    # wrk hangs up on the requests still queued in the server, which goes on working through
    # them: let it drain, or the next run would measure this one's backlog.
    time.sleep(min(10.0, worst / 1000 + 1))
    return Result(
        name=name,
        requests=total,
        seconds=duration / 1e6,
        bytes=size,
        errors=connect + read + write + status + timeout,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=worst,
        load=load,
    )


@dataclass
class FirstVisits:
    """One visit to each URL of a set, one at a time, before the site has cached any of them."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def first_visits(base: str, paths: Sequence[str]) -> FirstVisits:
    times: list[float] = []
    for path in paths:
        clock = time.perf_counter()
        status, _ = http_get(base + path, timeout=30)
        times.append((time.perf_counter() - clock) * 1000)
        if status != 200:
            raise SystemExit(f"{path} answers {status}")
    times.sort()

    def at(quantile: float) -> float:
        return times[min(len(times) - 1, int(quantile * len(times)))]

    return FirstVisits(len(times), at(0.5), at(0.99), times[-1])


def page_sets(sample: Sample) -> list[tuple[str, list[str]]]:
    urls = Urls()
    return [
        ("home", [urls.home()]),
        ("artist page", [urls.artist(slug) for slug in sample.artists]),
        ("production page", [urls.production(slug) for slug in sample.productions]),
        ("search", [urls.search(q=q) for q in sample.queries]),
        ("API list", [urls.api_productions(page=page) for page in range(1, 51)]),
    ]


def _print_result(result: Result) -> None:
    print(
        f"{result.name:>18}: {result.requests:6d} requests in {result.seconds:5.1f} s = "
        f"{result.rate:7.1f}/s, p50 {result.p50_ms:6.1f} ms, p90 {result.p90_ms:6.1f} ms, "
        f"p99 {result.p99_ms:6.1f} ms, max {result.max_ms:6.1f} ms, "
        f"{result.megabytes_per_second:7.1f} MB/s, errors {result.errors}, load {result.load}",
        flush=True,
    )


# --- search alone ----------------------------------------------------------------------------

# Letter pairs that no word of the seed holds, and words it never uses.
RARE_PAIRS = ("qz", "wq", "zx", "kq", "xj", "qj", "vq", "jz", "wz", "zj")
ABSENT = ("xylophone", "zorglub", "quetzal", "wombat", "yak", "kazoo", "fjord", "gnou", "ukulele")


def search_queries(plan: Plan, rng: random.Random) -> dict[str, list[str]]:
    """Queries by kind: a word most productions hold (the seed's descriptions draw from a few
    dozen words), a number only a few titles hold ("nº 48213"), three letters, two letters
    (common, then a pair no text holds), a word no text holds, two words."""
    words = sorted({search.normalize(word) for word in WORDS})
    digits = max(2, len(str(plan.productions)) - 1)
    rare = {str(rng.randrange(10 ** (digits - 1), 10**digits)) for _ in range(20)}
    return {
        "common word": words[:20],
        "rare word (a number in a few titles)": sorted(rare),
        "3 letters": sorted({word[:3] for word in words})[:20],
        "2 letters, common": sorted({word[:2] for word in words})[:20],
        "2 letters, in no text": list(RARE_PAIRS),
        "no result": list(ABSENT),
        "two words": [f"{a} {b}" for a, b in zip(words[:10], words[-10:], strict=True)],
    }


def search_visits(
    data_dir: Path, database_url: str, log: Path, queries: dict[str, list[str]], root: Path
) -> dict[str, FirstVisits]:
    """First visits of every query's search page, by kind, served by the code of ``root``."""
    urls = Urls()
    results: dict[str, FirstVisits] = {}
    with app_server(data_dir, database_url, log, root=root) as app:
        for kind, qs in queries.items():
            results[kind] = first_visits(app.url, [urls.search(q=q) for q in qs])
            cold = results[kind]
            print(
                f"{kind:>38}: {cold.count} queries, p50 {cold.p50_ms:.1f} ms, "
                f"p99 {cold.p99_ms:.1f} ms, max {cold.max_ms:.1f} ms",
                flush=True,
            )
    return results


def search_only(
    plan: Plan, data_dir: Path, database_url: str, tmp: Path, before: Path | None
) -> None:
    """First-visit searches only (no load, no media): with the code of ``before`` on the
    schema the seed wrote (before the search indexes), then with this checkout's, after
    migrating."""
    queries = search_queries(plan, random.Random(7))
    engine = make_engine(database_url)
    try:
        old: dict[str, FirstVisits] = {}
        if before is not None:
            print(f"## Search, {before}'s code, load {load_average()}", flush=True)
            old = search_visits(data_dir, database_url, tmp / "before.log", queries, before)
        clock = time.monotonic()
        migrate(engine)
        print(f"# migrated (search indexes built) in {time.monotonic() - clock:.1f} s", flush=True)
    finally:
        engine.dispose()
    print(f"## Search, this checkout, load {load_average()}", flush=True)
    new = search_visits(data_dir, database_url, tmp / "after.log", queries, ROOT)
    print(
        f"\n## For BENCHMARKS.md\n\n{plan.productions:,} productions, first visits, one at a time"
    )
    print("\n| query | queries | before p50 / p99 ms | after p50 / p99 ms | p99 < 50 ms |")
    print("|---|---:|---|---|---|")
    for kind, after in new.items():
        was = old.get(kind)
        then = f"{was.p50_ms:.1f} / {was.p99_ms:.1f}" if was else "–"
        verdict = "yes" if after.p99_ms < TARGET_P99_MS else "**no**"
        print(
            f"| {kind} | {after.count} | {then} | {after.p50_ms:.1f} / {after.p99_ms:.1f} "
            f"| {verdict} |"
        )


# --- main ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: small and short")
    parser.add_argument("--productions", type=int)
    parser.add_argument("--artists", type=int)
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seconds", type=int, help="length of each loaded run")
    parser.add_argument(
        "--database-url", help="an empty database (default: SQLite in the temp dir)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument(
        "--search-only", action="store_true", help="first-visit searches only, by kind of query"
    )
    parser.add_argument(
        "--before", type=Path, help="with --search-only: measure this checkout's code first"
    )
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(
        productions=args.productions or base.productions,
        artists=args.artists or base.artists,
        clients=args.clients or base.clients,
        seconds=args.seconds or base.seconds,
        warmup_seconds=base.warmup_seconds,
        media_seconds=base.media_seconds,
        source_seconds=base.source_seconds,
        source_size=base.source_size,
    )
    # Searches alone need neither wrk nor nginx.
    wrk = "" if args.search_only else ensure_tool("wrk", "wrk")
    nginx = "" if args.search_only else ensure_tool("nginx", "nginx-light")

    tmp = Path(tempfile.mkdtemp(prefix="cite-live-bench-"))
    # nginx's worker runs as an unprivileged user and must read the store.
    tmp.chmod(0o755)
    started = time.monotonic()
    try:
        data_dir = tmp / "data"
        database_url = args.database_url or f"sqlite:///{data_dir / 'cite-live.db'}"
        settings = load_settings(
            {"CITE_LIVE_DATA_DIR": str(data_dir), "CITE_LIVE_DATABASE_URL": database_url}
        )
        services = open_services(settings)
        try:
            store = services.store
            assert isinstance(store, LocalStore), "the benchmark serves the local store"
            clock = time.monotonic()
            versions = real_versions(services, tmp, plan)
            print(f"# two HLS sets transcoded in {time.monotonic() - clock:.1f} s", flush=True)
            # The seed writes into the schema before the search indexes: kept by triggers
            # (SQLite's FTS5) or a GIN index (pg_trgm), they are updated row by row as rows come
            # in, when one build over the whole table at the end costs far less.
            command.downgrade(alembic_config(services.engine), UNINDEXED)
            clock = time.monotonic()
            sample = seed_catalogue(services, versions, plan, random.Random(20261126))
            print(
                f"# {plan.productions} productions, {plan.artists} artists written in "
                f"{time.monotonic() - clock:.1f} s",
                flush=True,
            )
            analyze(services)
            if not args.search_only:
                # search_only migrates itself, after measuring --before's code on this schema.
                clock = time.monotonic()
                migrate(services.engine)
                print(f"# search indexes built in {time.monotonic() - clock:.1f} s", flush=True)
            segment = pick_segment(store, versions["video"]["prefix"])
            segment_path = store.path_for(segment)
            segment_url = Urls().media(segment)
            media_root = store.root
        finally:
            services.close()

        if args.search_only:
            print(f"- CPU: {cpu_model()}, {os.cpu_count()} cores; load {load_average()}")
            print(f"- Python {platform.python_version()}; database {database_url.split(':')[0]}")
            search_only(plan, data_dir, database_url, tmp, args.before)
            return 0

        print("## Machine")
        print(f"- CPU: {cpu_model()}, {os.cpu_count()} cores; load (1/5/15 min) {load_average()}")
        print(f"- Python {platform.python_version()}, {_version([wrk, '--version'])}")
        print(f"- {_version([nginx, '-v'])}; database {database_url.split(':', 1)[0]}")
        print(
            f"- {plan.productions} productions, {plan.artists} artists; {plan.clients} connections,"
            f" {WRK_THREADS} wrk threads; runs of {plan.seconds} s after a "
            f"{plan.warmup_seconds} s warm-up, then {max(2, plan.seconds // 4)} s with one client",
            flush=True,
        )

        pages: list[tuple[Result, Result, FirstVisits]] = []
        skipped: list[str] = []
        media: dict[str, list[Result]] = {"app": [], "nginx": [], QUIET_NGINX: []}
        script_dir = tmp / "wrk"
        script_dir.mkdir()
        with app_server(data_dir, database_url, tmp / "serve.log") as app:
            app_url = app.url
            print("## Pages", flush=True)
            for name, paths in page_sets(sample):
                status, _ = http_get(app_url + paths[0], timeout=30)
                if status != 200:
                    skipped.append(f"{name} ({paths[0]} answers {status})")
                    print(f"{name:>18}: skipped, {paths[0]} answers {status}", flush=True)
                    continue
                cold = first_visits(app_url, paths)
                print(
                    f"{name + ', first visits':>18}: {cold.count} URLs one at a time, "
                    f"p50 {cold.p50_ms:.1f} ms, p99 {cold.p99_ms:.1f} ms, max {cold.max_ms:.1f} ms",
                    flush=True,
                )
                # Warm-up, the loaded run, then one client alone: its latency is the time one
                # request costs the server, which the loaded latencies are multiples of.
                runs = (
                    (plan.clients, plan.warmup_seconds),
                    (plan.clients, plan.seconds),
                    (1, max(2, plan.seconds // 4)),
                )
                results = [
                    run_wrk(
                        wrk,
                        app_url,
                        paths,
                        name=name if clients > 1 else f"{name}, 1 client",
                        clients=clients,
                        seconds=seconds,
                        script_dir=script_dir,
                    )
                    for clients, seconds in runs
                ]
                for result in results[1:]:
                    _print_result(result)
                pages.append((results[1], results[2], cold))

            print(f"## Media: {segment} ({segment_path.stat().st_size:,} bytes)", flush=True)
            with (
                nginx_server(nginx, media_root, tmp / "nginx") as nginx_url,
                nginx_server(nginx, media_root, tmp / "nginx-quiet", access_log=False) as quiet_url,
            ):
                expected = hashlib.sha256(segment_path.read_bytes()).hexdigest()
                servers = (("app", app_url), ("nginx", nginx_url), (QUIET_NGINX, quiet_url))
                for name, url in servers:
                    status, body = http_get(url + segment_url)
                    if status != 200 or hashlib.sha256(body).hexdigest() != expected:
                        raise SystemExit(f"{name} does not serve the segment ({status})")
                for _ in range(2):
                    for name, url in servers:
                        result = run_wrk(
                            wrk,
                            url,
                            [segment_url],
                            name=f"segment, {name}",
                            clients=plan.clients,
                            seconds=plan.media_seconds,
                            script_dir=script_dir,
                        )
                        _print_result(result)
                        media[name].append(result)
        # The same segment through nginx in front of an app that answers X-Accel-Redirect.
        front_env = {"CITE_LIVE_LOCAL_ACCEL_REDIRECT": "/_media/"}
        with (
            app_server(data_dir, database_url, tmp / "serve-front.log", front_env) as front_app,
            nginx_server(nginx, media_root, tmp / "nginx-front", front_app.url) as front_url,
        ):
            status, body = http_get(front_url + segment_url)
            if status != 200 or hashlib.sha256(body).hexdigest() != expected:
                raise SystemExit(f"nginx in front of the app does not serve the segment ({status})")
            media["app behind nginx"] = []
            for _ in range(2):
                result = run_wrk(
                    wrk,
                    front_url,
                    [segment_url],
                    name="segment, app behind nginx",
                    clients=plan.clients,
                    seconds=plan.media_seconds,
                    script_dir=script_dir,
                )
                _print_result(result)
                media["app behind nginx"].append(result)
        report(plan, pages, skipped, media, segment_path.stat().st_size)
        print(f"# finished in {time.monotonic() - started:.0f} s")
    finally:
        if args.keep:
            print(f"# kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def report(
    plan: Plan,
    pages: list[tuple[Result, Result, FirstVisits]],
    skipped: list[str],
    media: dict[str, list[Result]],
    segment_size: int,
) -> None:
    print("\n## For BENCHMARKS.md\n")
    print(
        f"{plan.productions:,} productions, {plan.artists:,} artists, {plan.clients} concurrent "
        "connections on loopback (wrk, keep-alive), one `cite-live serve` process.\n"
    )
    print(
        "| page | requests | req/s | p50 ms | p90 ms | p99 ms | errors | p99 < 50 ms "
        "| 1 client: p50 ms | first visits: URLs, p50 / p99 ms | load |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|---|---|")
    for r, alone, cold in pages:
        verdict = "yes" if r.p99_ms < TARGET_P99_MS and not r.errors else "**no**"
        print(
            f"| {r.name} | {r.requests} | {r.rate:.0f} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.errors} | {verdict} | {alone.p50_ms:.1f} | "
            f"{cold.count}, {cold.p50_ms:.1f} / {cold.p99_ms:.1f} | {r.load} |"
        )
    for note in skipped:
        print(f"| {note} | – | – | – | – | – | – | not measured | – | – | |")
    best = {name: max(runs, key=lambda r: r.megabytes_per_second) for name, runs in media.items()}
    print(f"\nSegment of {segment_size / 1e6:.2f} MB, best of {len(media['app'])} runs each:\n")
    print("| server | req/s | MB/s | p50 ms | p99 ms | errors | load |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, r in best.items():
        print(
            f"| {name} | {r.rate:.0f} | {r.megabytes_per_second:.0f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.errors} | {r.load} |"
        )
    spread = statistics.pstdev(r.megabytes_per_second for r in media["app"])
    print(f"\nApp runs spread ±{spread:.0f} MB/s.")
    for baseline in ("nginx", QUIET_NGINX):
        ratio = best["app"].megabytes_per_second / best[baseline].megabytes_per_second
        verdict = "met" if ratio >= TARGET_MEDIA_RATIO else "**not met**"
        print(
            f"App / {baseline} segment throughput: {ratio:.2f} (target ≥ {TARGET_MEDIA_RATIO}: "
            f"{verdict})."
        )
    if "app behind nginx" in best:
        front = best["app behind nginx"].megabytes_per_second / best["nginx"].megabytes_per_second
        print(
            f"App behind nginx (local.accel_redirect, the app checks, nginx sends) / nginx: "
            f"{front:.2f}."
        )
    missed = [r.name for r, _, _ in pages if r.p99_ms >= TARGET_P99_MS or r.errors]
    print(
        "Pages: p99 < 50 ms "
        + (
            "met for every page measured."
            if not missed
            else f"**not met** for {', '.join(missed)}."
        )
    )


if __name__ == "__main__":
    sys.exit(main())
