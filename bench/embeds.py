"""What a partner's page costs its visitors for an embedded player, before and after play, with
the code of the last release before partner sites (issue 12) and with this one; figures go in
BENCHMARKS.md.

    .venv/bin/python bench/embeds.py [--old COMMIT] [--runs N] [--beacons N] [--quick] [--keep]

1. Two captures are generated (bench/transcode.py's sources, cached in ``bench/.cache``): a 60 s
   1920x1080 30 fps H.264 + AAC video and a 5-minute stereo FLAC. The old code (``--old``,
   checked out with ``git worktree add --detach`` into the temp dir, with a copy of this tree's
   ``web/static/vendor``, the same npm packages) ingests both with its own ``cite-live ingest``
   into a fresh data dir (SQLite, local store). The pipeline (``transcoder/``, the ingest job)
   is the same at both commits; the new code serves a copy of that data dir, which it migrates
   at start as an upgrade would: both servers send the same bytes.
2. Both servers run as deployed (``harness.app_server``: ``cite-live serve``, no demo), side by
   side on 127.0.0.1. A partner's page (tests/partner_site.py, on ``localhost``, another site
   than the servers' ``127.0.0.1``) frames ``/embed/{id}`` at the size of the share panel's
   code (640x360 video, 640x166 audio), and the video at 1280x720 too, as a page giving it
   the width of its column would. Debian's Chromium (headless, Playwright, a fresh context
   each time, so nothing is cached) opens it at 1366x768 and every request to the player's
   server is counted with its bytes received (headers and body as sent, from
   ``request.sizes()``; Lighthouse's transfer size): (1) from navigation until 10 s after the
   page's load event, without touching anything; (2) from the click on the play button until
   the media's clock reads 10 s. The production's own page on the site is measured as (1)
   too. Media are playlists, init segments and segments; the rest is pages, scripts, styles,
   pictures, peaks, storyboard, API. Each run does every measure with the old server, then
   with the new; medians of ``--runs`` runs (3).
3. The plays beacon (new code only): ``--beacons`` (500) sequential ``POST /api/v1/plays`` with
   distinct playback ids, a browser's user agent and the site's Origin, as the player sends
   them from an embed; then as many from a crawler (not counted). The rate limit (120 an hour
   per address) is met by sending each batch of 100 from another loopback address
   (127.0.0.N), as many listeners would; the plays table is counted afterwards.

``--quick`` (a 10 s video, a 30 s audio, one run, 3 s windows, 100 beacons) is a smoke test;
its figures mean nothing. Everything lives in a temp dir removed at the end (``--keep`` keeps
it), the old code's worktree included.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import ROOT, app_server, cpu_model, load_average
from playwright.sync_api import Browser, Page, Request, ViewportSize, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from transcode import audio_source, video_source

from cite_live.player import EMBED_SIZES
from cite_live.web.urls import Urls
from tests.partner_site import PartnerSite

OLD_COMMIT = "5e5c1a8"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]
DESKTOP: ViewportSize = {"width": 1366, "height": 768}
# A partner's page giving the video the width of its column on that desktop.
WIDE = (1280, 720)
MEDIA = re.compile(r"\.(m3u8|m4s|mp4|m4a|aac|ts)$")
# A listener's browser, and a crawler the maintained list names.
BROWSER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
CRAWLER_AGENT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BEACONS_PER_ADDRESS = 100  # under the limit of 120 an hour per address
PLAY_TIMEOUT_MS = 90_000


@dataclass(frozen=True)
class Plan:
    runs: int
    idle_seconds: float
    played_seconds: float
    beacons: int
    video_seconds: int
    audio_seconds: int


FULL = Plan(
    runs=3, idle_seconds=10, played_seconds=10, beacons=500, video_seconds=60, audio_seconds=300
)
QUICK = Plan(
    runs=1, idle_seconds=3, played_seconds=3, beacons=100, video_seconds=10, audio_seconds=30
)


@dataclass
class Tally:
    """Requests to the player's server and the bytes they brought, media apart."""

    media_requests: int = 0
    media_bytes: int = 0
    other_requests: int = 0
    other_bytes: int = 0
    # The rest by Chromium's resource type (script, stylesheet, image, fetch...): [requests, bytes]
    kinds: dict[str, list[int]] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return self.media_requests + self.other_requests

    def add(self, request: Request) -> None:
        try:
            sizes = request.sizes()
            received = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        except PlaywrightError:  # cancelled (a rung given up, a page closed): nothing received
            received = 0
        if MEDIA.search(request.url.split("?")[0]):
            self.media_requests += 1
            self.media_bytes += received
        else:
            self.other_requests += 1
            self.other_bytes += received
            kind = self.kinds.setdefault(request.resource_type, [0, 0])
            kind[0] += 1
            kind[1] += received


@dataclass
class Visit:
    before_play: Tally
    after_play: Tally | None
    start_ms: float | None  # from the click to the media's clock moving


# --- media and servers -------------------------------------------------------------------------


def checkout(commit: str, directory: Path) -> Path:
    """``commit`` in a worktree of its own, with this tree's npm files (git ignores them)."""
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(directory), commit],
        check=True,
        capture_output=True,
    )
    shutil.copytree(ROOT / "web/static/vendor", directory / "web/static/vendor")
    return directory


def ingest(
    root: Path, data_dir: Path, database_url: str, source: Path, title: str
) -> dict[str, Any]:
    """``cite-live ingest`` of the code in ``root``: the production object it prints."""
    env = {
        **os.environ,
        "CITE_LIVE_DATA_DIR": str(data_dir),
        "CITE_LIVE_DATABASE_URL": database_url,
        "PYTHONPATH": str(root),
    }
    env.pop("CITE_LIVE_CONFIG", None)
    command = [sys.executable, "-m", "cite_live", "ingest", str(source), "--json"]
    command += ["--title", title, "--artist", "Élodie Fauré"]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"ingest of {source.name} failed:\n{result.stderr[-3000:]}")
    production: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    if production.get("status") != "ready":
        raise SystemExit(f"{source.name} is {production.get('status')}: {production}")
    return production


def media_bytes(data_dir: Path, production_id: str) -> int:
    """What the store holds of a production's HLS, for scale."""
    folder = data_dir / "media" / "productions" / production_id
    return sum(path.stat().st_size for path in folder.rglob("*") if MEDIA.search(path.name))


# --- the browser -------------------------------------------------------------------------------


def visit(
    browser: Browser,
    url: str,
    server: str,
    plan: Plan,
    play: Callable[[Page], float] | None,
) -> Visit:
    """Open ``url`` in a fresh context, wait ``idle_seconds`` after its load event; then, with
    ``play``, press play and wait for ``played_seconds`` of playback. Only requests to
    ``server`` count."""
    context = browser.new_context(viewport=DESKTOP)
    try:
        page = context.new_page()
        phases: dict[str, list[Request]] = {"before": [], "after": []}
        current = ["before"]
        context.on(
            "request",
            lambda request: (
                phases[current[0]].append(request) if request.url.startswith(server) else None
            ),
        )
        page.goto(url, wait_until="load")
        page.wait_for_timeout(plan.idle_seconds * 1000)
        before = list(phases["before"])
        current[0] = "after"
        start_ms = play(page) if play else None
        after = list(phases["after"])
        tallies = []
        for requests in (before, after):
            tally = Tally()
            for request in requests:
                tally.add(request)
            tallies.append(tally)
        return Visit(tallies[0], tallies[1] if play else None, start_ms)
    finally:
        context.close()


def embed_player(server: str, plan: Plan) -> Callable[[Page], float]:
    """Press the embed's play button; the milliseconds until its clock moves."""

    def play(page: Page) -> float:
        frame = next(frame for frame in page.frames if frame.url.startswith(server))
        clock = time.perf_counter()
        frame.locator("media-play-button").first.click()
        media = "document.querySelector('video, audio')"
        frame.wait_for_function(f"() => {media}.currentTime > 0", timeout=PLAY_TIMEOUT_MS)
        started = (time.perf_counter() - clock) * 1000
        frame.wait_for_function(
            f"() => {media}.currentTime >= {plan.played_seconds}", timeout=PLAY_TIMEOUT_MS
        )
        return started

    return play


# --- the beacon --------------------------------------------------------------------------------


def beacons(
    server: str, production_id: str, count: int, agent: str, partner: str, first_address: int
) -> tuple[list[float], int]:
    """``count`` beacons, one after another, BEACONS_PER_ADDRESS per loopback address from
    127.0.0.``first_address`` on: their latencies (ms), and the next free address."""
    host, port = server.removeprefix("http://").split(":")
    path = Urls().api_plays()
    headers = {
        "Content-Type": "text/plain;charset=UTF-8",
        "Origin": server,
        "User-Agent": agent,
    }
    latencies: list[float] = []
    address = first_address
    connection: http.client.HTTPConnection | None = None
    for index in range(count):
        if index % BEACONS_PER_ADDRESS == 0:
            if connection is not None:
                connection.close()
            connection = http.client.HTTPConnection(
                host, int(port), timeout=10, source_address=(f"127.0.0.{address}", 0)
            )
            address += 1
        assert connection is not None
        body = json.dumps(
            {
                "production": production_id,
                "playback": secrets.token_urlsafe(24),
                "source": "embed",
                "origin": partner,
            }
        )
        clock = time.perf_counter()
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append((time.perf_counter() - clock) * 1000)
        if response.status != 204:
            raise SystemExit(f"beacon {index} answered {response.status}")
    if connection is not None:
        connection.close()
    return latencies, address


def plays_counted(database: Path) -> int:
    with sqlite3.connect(database) as db:
        return int(db.execute("SELECT count(*) FROM plays").fetchone()[0])


def percentile(values: Sequence[float], quantile: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


# --- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default=OLD_COMMIT, help=f"the old code (default {OLD_COMMIT})")
    parser.add_argument("--runs", type=int)
    parser.add_argument("--beacons", type=int)
    parser.add_argument("--quick", action="store_true", help="a smoke test: short")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    plan = Plan(
        runs=args.runs or base.runs,
        idle_seconds=base.idle_seconds,
        played_seconds=base.played_seconds,
        beacons=args.beacons or base.beacons,
        video_seconds=base.video_seconds,
        audio_seconds=base.audio_seconds,
    )
    tmp = Path(tempfile.mkdtemp(prefix="cite-live-embeds-"))
    started = time.monotonic()
    old_root: Path | None = None
    try:
        cache = ROOT / "bench" / ".cache"
        video = video_source(cache, plan.video_seconds, "ffmpeg")
        audio = audio_source(cache, plan.audio_seconds, "ffmpeg")
        old_root = checkout(args.old, tmp / "old")
        new_commit = _git("rev-parse", "--short", "HEAD")
        old_commit = _git("rev-parse", "--short", args.old)
        old_data = tmp / "data-old"
        old_url = f"sqlite:///{old_data / 'cite-live.db'}"
        clock = time.monotonic()
        productions = {
            "video": ingest(old_root, old_data, old_url, video, "Concert"),
            "audio": ingest(old_root, old_data, old_url, audio, "Session"),
        }
        print(f"# ingested by {old_commit} in {time.monotonic() - clock:.0f} s", flush=True)
        new_data = tmp / "data-new"
        shutil.copytree(old_data, new_data)
        new_url = f"sqlite:///{new_data / 'cite-live.db'}"

        print("## Machine")
        print(f"- CPU: {cpu_model()}, {os.cpu_count()} cores; load (1/5/15 min) {load_average()}")
        print(f"- Python {platform.python_version()}; {_chromium_version()}")
        print(f"- old code {old_commit}, new code {new_commit} (+ uncommitted: {_dirty()})")
        for kind, production in productions.items():
            size = media_bytes(old_data, production["id"]) / 1e6
            print(f"- {kind}: {production['duration']:.0f} s, HLS in the store {size:.1f} MB")
        sys.stdout.flush()

        urls = Urls()
        results: dict[tuple[str, str], list[Visit]] = {}
        beacon_runs: dict[str, list[list[float]]] = {"browser": [], "crawler": []}
        counted = {"browser": 0, "crawler": 0}
        with (
            app_server(old_data, old_url, tmp / "serve-old.log", root=old_root) as old,
            app_server(new_data, new_url, tmp / "serve-new.log") as new,
            sync_playwright() as playwright,
        ):
            partner = PartnerSite()
            # Another site than the servers' (localhost, not 127.0.0.1), as a festival's is.
            partner_origin = partner.origin.replace("127.0.0.1", "localhost")
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                pages: dict[tuple[str, str], str] = {}
                for server_name, server in (("old", old.url), ("new", new.url)):
                    frames = [(kind, f"{kind} embed", EMBED_SIZES[kind]) for kind in productions]
                    frames.append(("video", "video embed, wide", WIDE))
                    for kind, target, (width, height) in frames:
                        src = server + urls.embed(productions[kind]["id"])
                        framing = partner.framing(src, height=height, width=width)
                        pages[server_name, target] = framing.replace(partner.origin, partner_origin)
                    for kind, production in productions.items():
                        pages[server_name, f"{kind} page"] = server + urls.production(
                            production["slug"]
                        )
                for run in range(plan.runs):
                    for (server_name, target), url in pages.items():
                        server = old.url if server_name == "old" else new.url
                        play = embed_player(server, plan) if "embed" in target else None
                        result = visit(browser, url, server, plan, play)
                        results.setdefault((server_name, target), []).append(result)
                        _print_visit(run, server_name, target, result)
            finally:
                browser.close()
                partner.close()

            print("## Beacons", flush=True)
            address = 2
            database = new_data / "cite-live.db"
            for run in range(plan.runs):
                for name, agent in (("browser", BROWSER_AGENT), ("crawler", CRAWLER_AGENT)):
                    before = plays_counted(database)
                    latencies, address = beacons(
                        new.url, productions["video"]["id"], plan.beacons, agent,
                        partner_origin, address,
                    )  # fmt: skip
                    beacon_runs[name].append(latencies)
                    counted[name] += plays_counted(database) - before
                    print(
                        f"run {run + 1}, {name}: p50 {percentile(latencies, 0.5):.2f} ms, "
                        f"p95 {percentile(latencies, 0.95):.2f} ms, "
                        f"max {max(latencies):.1f} ms (load {load_average()})",
                        flush=True,
                    )
        report(plan, results, beacon_runs, counted, (old_commit, new_commit))
        print(f"# finished in {time.monotonic() - started:.0f} s")
    finally:
        if old_root is not None:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_root)],
                check=False,
                capture_output=True,
            )
        if args.keep:
            print(f"# kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def _dirty() -> str:
    changed = _git("status", "--porcelain", "--untracked-files=no")
    return "yes" if changed else "none"


def _chromium_version() -> str:
    result = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.strip() or "Chromium"


def _kb(value: float) -> str:
    return f"{value / 1000:,.0f}" if value >= 10_000 else f"{value / 1000:,.1f}"


def _print_visit(run: int, server: str, target: str, result: Visit) -> None:
    parts = []
    for label, tally in (("before play", result.before_play), ("after", result.after_play)):
        if tally is None:
            continue
        parts.append(
            f"{label}: {tally.requests} requests, media {tally.media_requests} / "
            f"{_kb(tally.media_bytes)} KB, other {tally.other_requests} / "
            f"{_kb(tally.other_bytes)} KB"
        )
    if result.start_ms is not None:
        parts.append(f"started in {result.start_ms:.0f} ms")
    print(f"run {run + 1}, {server}, {target}: " + "; ".join(parts), flush=True)


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def _row(name: str, tallies: Sequence[Tally]) -> str:
    return (
        f"| {name} | {_median([t.requests for t in tallies]):.0f} "
        f"| {_median([t.media_requests for t in tallies]):.0f} "
        f"| {_kb(_median([t.media_bytes for t in tallies]))} "
        f"| {_median([t.other_requests for t in tallies]):.0f} "
        f"| {_kb(_median([t.other_bytes for t in tallies]))} |"
    )


def report(
    plan: Plan,
    results: dict[tuple[str, str], list[Visit]],
    beacon_runs: dict[str, list[list[float]]],
    counted: dict[str, int],
    commits: tuple[str, str],
) -> None:
    old_commit, new_commit = commits
    print("\n## For BENCHMARKS.md\n")
    print(
        f"Medians of {plan.runs} runs; requests to the player's server and KB received "
        f"(headers + body). Before play: {plan.idle_seconds:.0f} s after the load event; after "
        f"play: from the click until {plan.played_seconds:.0f} s of playback.\n"
    )
    print("| what | requests | media requests | media KB | other requests | other KB |")
    print("|---|---:|---:|---:|---:|---:|")
    targets = sorted({t for _, t in results}, key=lambda t: ("page" in t, t.startswith("audio")))
    for target in targets:
        for phase in ("before play", "after play"):
            for server, commit in (("old", old_commit), ("new", new_commit)):
                visits = results.get((server, target), [])
                tallies = [
                    tally
                    for v in visits
                    if (tally := v.before_play if phase == "before play" else v.after_play)
                ]
                if tallies:
                    print(_row(f"{target}, {phase}, {server} ({commit})", tallies))
    print("\nThe rest, by resource type, in the last run (requests / KB):\n")
    for target in targets:
        for server in ("old", "new"):
            visits = results.get((server, target), [])
            if visits:
                kinds = visits[-1].before_play.kinds
                listed = ", ".join(
                    f"{kind} {count} / {_kb(size)}" for kind, (count, size) in sorted(kinds.items())
                )
                print(f"- {target}, before play, {server}: {listed}")
    print()
    for target in targets:
        for server in ("old", "new"):
            starts = [v.start_ms for v in results.get((server, target), []) if v.start_ms]
            if starts:
                every = ", ".join(f"{s:.0f}" for s in starts)
                print(f"- {target}, {server}: click to playing {_median(starts):.0f} ms ({every})")
    print()
    for name, runs in beacon_runs.items():
        p50 = _median([percentile(r, 0.5) for r in runs])
        p95 = _median([percentile(r, 0.95) for r in runs])
        print(
            f"- beacons, {name}: {len(runs)} runs of {len(runs[0])}, p50 {p50:.2f} ms, "
            f"p95 {p95:.2f} ms (each run: "
            + "; ".join(f"{percentile(r, 0.5):.2f} / {percentile(r, 0.95):.2f}" for r in runs)
            + ")"
        )
    for name, runs in beacon_runs.items():
        sent = sum(len(r) for r in runs)
        print(f"- plays counted from the {name}'s beacons: {counted[name]} of {sent}")


if __name__ == "__main__":
    sys.exit(main())
