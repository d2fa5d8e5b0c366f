"""What the site's pages cost a listener before play, and how long a slow phone waits for sound
(issue 13, "pages that open at once"), with an older commit's code and with this tree's;
figures go in BENCHMARKS.md.

    .venv/bin/python bench/pages.py [--old COMMIT] [--runs N] [--no-lighthouse] [--keep]

1. The demo catalogue (cite_live.demo: artists, venues, audio productions with their cover and
   waveform, videos) is made once by this tree's ``cite-live serve --demo`` in a fresh data dir
   (SQLite, local store); each server then serves a copy of it. The old code (``--old``,
   default: main) is extracted with ``git archive`` into the temp dir, with a copy of this
   tree's ``web/static/vendor`` (the same npm files); this tree is built first (scripts/build).
2. Both servers run as deployed (``harness.app_server``: ``cite-live serve``, no demo), side by
   side on 127.0.0.1. Debian's Chromium (headless, Playwright, a fresh context each time, so
   nothing is cached) opens the home page, the artist page of the audio production's first
   artist, the audio and the video production pages and the two embeds (``/embed/{id}``),
   on a desktop (1280x800, no throttling) and on a slow phone (375x812, 1.6 Mbps down,
   750 kbps up, 150 ms round trip, CPU 4x slower, through the DevTools protocol).
   - Before play: from navigation until the network has been quiet for 1 s after the load
     event, touching nothing: requests and bytes received (headers + body as sent, so
     compressed; ``request.sizes()``).
   - To sound (phone, production pages): from navigation, the play button is clicked as soon
     as it is visible (``[data-play-button]`` when the page has one, else media-chrome's
     ``media-play-button``; clicked again while the media stays paused, as a listener taps
     again) until the media's clock moves (``currentTime > 0``), read in the page
     (``performance.now()``, from the navigation's start).
3. Lighthouse (npm ``lighthouse``, its mobile defaults: simulated slow 4G, 4x CPU) performance
   score of each page, on each server, ``--runs`` times (median).

Medians of ``--runs`` runs (3). Results as JSON in bench/results/pages-*.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from alembic import command
from harness import ROOT, app_server, cpu_model, free_port, load_average, stop, wait_until_answering
from playwright.sync_api import Browser, Page, Request, sync_playwright
from playwright.sync_api import Error as PlaywrightError

from cite_live.db import alembic_config, make_engine
from cite_live.demo.seed import PRODUCTIONS
from cite_live.web.urls import Urls

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]
LIGHTHOUSE = ROOT / "node_modules/.bin/lighthouse"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}
# The slow phone: bytes per second for the DevTools protocol.
PHONE_NETWORK = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1_600_000 / 8,
    "uploadThroughput": 750_000 / 8,
}
PHONE_CPU_SLOWDOWN = 4
QUIET_MS = 1000
SEED_TIMEOUT = 600
SOUND_TIMEOUT_MS = 60_000
PLAY_SELECTORS = ("[data-play-button]", "media-play-button")
# The targets.
TARGETS = {
    "audio page bytes": 250_000,
    "audio page requests": 12,
    "audio sound ms": 3000,
    "video sound ms": 4000,
    "lighthouse": 95,
}


@dataclass
class Tally:
    requests: int = 0
    bytes: int = 0
    # By Chromium's resource type (document, script, stylesheet, image, fetch...): [n, bytes]
    kinds: dict[str, list[int]] = field(default_factory=dict)

    def add(self, request: Request) -> None:
        try:
            sizes = request.sizes()
            received = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        except PlaywrightError:  # cancelled: nothing received
            received = 0
        self.requests += 1
        self.bytes += received
        kind = self.kinds.setdefault(request.resource_type, [0, 0])
        kind[0] += 1
        kind[1] += received


# --- the catalogue and the servers -------------------------------------------------------------


def seed(data_dir: Path, database_url: str, log: Path) -> None:
    """The demo catalogue, made by this tree's ``cite-live serve --demo``; returns once every
    demo production is listed."""
    port = free_port()
    env = {
        **os.environ,
        "CITE_LIVE_DATA_DIR": str(data_dir),
        "CITE_LIVE_DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CITE_LIVE_CONFIG", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cite_live", "serve", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        urls = Urls(f"http://127.0.0.1:{port}")
        listing = urls.absolute(urls.api_productions(per_page=50))
        wait_until_answering(listing, process, log, 60)
        deadline = time.monotonic() + SEED_TIMEOUT
        while time.monotonic() < deadline:
            with urllib.request.urlopen(listing, timeout=10) as answer:  # noqa: S310 - loopback
                total = json.load(answer)["total"]
            if total >= len(PRODUCTIONS):
                return
            time.sleep(2)
        raise SystemExit(f"the demo catalogue was not made in time:\n{log.read_text()[-3000:]}")
    finally:
        stop(process)


def extract(commit: str, directory: Path) -> Path:
    """``commit``'s files (no git state), with this tree's npm files (git ignores them)."""
    directory.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive, check=True)
    shutil.copytree(ROOT / "web/static/vendor", directory / "web/static/vendor")
    return directory


def migrations_head(tree: Path) -> str:
    """The newest migration of the code in ``tree`` (the one no other revises)."""
    found = re.compile(r'^(down_revision|revision): [^=]+= "([^"]+)"', re.M)
    revisions, revised = set(), set()
    for script in (tree / "cite_live/migrations/versions").glob("*.py"):
        for name, value in found.findall(script.read_text()):
            (revisions if name == "revision" else revised).add(value)
    (head,) = revisions - revised
    return head


def schema_of(data_dir: Path, tree: Path) -> None:
    """Bring the catalogue in ``data_dir``, made by this tree, to the schema of the code in
    ``tree`` (an older commit's): this tree's migrations, downgraded to that code's newest."""
    engine = make_engine(f"sqlite:///{data_dir / 'cite-live.db'}")
    try:
        command.downgrade(alembic_config(engine), migrations_head(tree))
    finally:
        engine.dispose()


def targets(server: str) -> dict[str, str]:
    """The pages measured, by name, on ``server``."""
    with urllib.request.urlopen(server + Urls().api_productions(per_page=50)) as answer:  # noqa: S310
        items = json.load(answer)["items"]
    audio = next(item for item in items if item["kind"] == "audio" and item.get("poster_url"))
    video = next(item for item in items if item["kind"] == "video")
    urls = Urls()
    return {
        "home": server + urls.home(),
        "artist": server + urls.artist(audio["artists"][0]["slug"]),
        "audio page": server + urls.production(audio["slug"]),
        "video page": server + urls.production(video["slug"]),
        "audio embed": server + urls.embed(audio["id"]),
        "video embed": server + urls.embed(video["id"]),
    }


# --- the browser -------------------------------------------------------------------------------


def _context(browser: Browser, phone: bool) -> tuple[Any, Page]:
    context = browser.new_context(
        viewport=PHONE if phone else DESKTOP,  # type: ignore[arg-type]
        is_mobile=phone,
        has_touch=phone,
        device_scale_factor=2 if phone else 1,
    )
    page = context.new_page()
    if phone:
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", PHONE_NETWORK)
        cdp.send("Emulation.setCPUThrottlingRate", {"rate": PHONE_CPU_SLOWDOWN})
    return context, page


def before_play(browser: Browser, url: str, server: str, phone: bool) -> Tally:
    """Requests to ``server`` from navigation until the page has settled, nothing touched."""
    context, page = _context(browser, phone)
    try:
        requests: list[Request] = []
        context.on("request", lambda r: requests.append(r) if r.url.startswith(server) else None)
        page.goto(url, wait_until="load", timeout=120_000)
        page.wait_for_load_state("networkidle", timeout=120_000)
        page.wait_for_timeout(QUIET_MS)
        tally = Tally()
        for request in list(requests):
            tally.add(request)
        return tally
    finally:
        context.close()


SOUNDING = """() => {
  const media = document.querySelector("audio, video");
  return media && media.currentTime > 0 ? performance.now() : false;
}"""
PAUSED = """() => { const m = document.querySelector("audio, video"); return !m || m.paused; }"""


def to_sound(browser: Browser, url: str) -> float:
    """Milliseconds from navigation to the media's clock moving, on the slow phone."""
    context, page = _context(browser, phone=True)
    try:
        page.goto(url, wait_until="commit", timeout=120_000)
        either = ", ".join(f"{selector}:visible" for selector in PLAY_SELECTORS)
        page.wait_for_selector(either, timeout=SOUND_TIMEOUT_MS)
        deadline = time.monotonic() + SOUND_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            if page.evaluate(PAUSED):
                button = page.locator(f"{PLAY_SELECTORS[0]}:visible")
                if not button.count():
                    button = page.locator(f"{PLAY_SELECTORS[1]}:visible")
                button.first.click(timeout=SOUND_TIMEOUT_MS)
            try:
                handle = page.wait_for_function(SOUNDING, timeout=1000, polling=50)
                return float(handle.json_value())
            except PlaywrightError:
                continue
        raise SystemExit(f"no sound on {url} within {SOUND_TIMEOUT_MS / 1000:.0f} s")
    finally:
        context.close()


def lighthouse(url: str) -> float:
    """Lighthouse's mobile performance score (0-100) of ``url``."""
    result = subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            f"--chrome-path={CHROMIUM}",
            "--chrome-flags=--headless=new --no-sandbox --disable-gpu",
            "--only-categories=performance",
            "--output=json",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise SystemExit(f"lighthouse failed on {url}:\n{result.stderr[-2000:]}")
    report = json.loads(result.stdout)
    return float(report["categories"]["performance"]["score"]) * 100


# --- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="main", help="the old code (default: main)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-lighthouse", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = parser.parse_args(argv)
    subprocess.run([ROOT / "scripts/build"], check=True)
    tmp = Path(tempfile.mkdtemp(prefix="cite-live-pages-"))
    started = time.monotonic()
    commits = {
        "old": _git("rev-parse", "--short", args.old),
        "new": _git("rev-parse", "--short", "HEAD"),
    }
    results: dict[str, Any] = {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "load": load_average(),
            "chromium": _chromium_version(),
        },
        "commits": {**commits, "new_dirty": _dirty()},
        "runs": args.runs,
        "targets": TARGETS,
        "before_play": {},
        "to_sound": {},
        "lighthouse": {},
    }
    try:
        seeded = tmp / "data-seed"
        seed(seeded, f"sqlite:///{seeded / 'cite-live.db'}", tmp / "seed.log")
        print(f"# demo catalogue made in {time.monotonic() - started:.0f} s", flush=True)
        roots = {"old": extract(args.old, tmp / "old"), "new": ROOT}
        data = {}
        for name in roots:
            data[name] = tmp / f"data-{name}"
            shutil.copytree(seeded, data[name])
        schema_of(data["old"], roots["old"])
        with (
            app_server(data["old"], f"sqlite:///{data['old'] / 'cite-live.db'}",
                       tmp / "serve-old.log", root=roots["old"]) as old,
            app_server(data["new"], f"sqlite:///{data['new'] / 'cite-live.db'}",
                       tmp / "serve-new.log", root=roots["new"]) as new,
            sync_playwright() as playwright,
        ):  # fmt: skip
            servers = {"old": old.url, "new": new.url}
            pages = {name: targets(url) for name, url in servers.items()}
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
            try:
                for run in range(args.runs):
                    for name, server in servers.items():
                        for target, url in pages[name].items():
                            for profile in ("desktop", "phone"):
                                tally = before_play(browser, url, server, profile == "phone")
                                key = f"{name} | {target} | {profile}"
                                results["before_play"].setdefault(key, []).append(asdict(tally))
                                print(
                                    f"run {run + 1}, {key}: {tally.requests} requests, "
                                    f"{tally.bytes / 1000:,.0f} KB",
                                    flush=True,
                                )
                            if target.endswith("page"):
                                ms = to_sound(browser, url)
                                key = f"{name} | {target}"
                                results["to_sound"].setdefault(key, []).append(ms)
                                print(f"run {run + 1}, {key}: sound at {ms:,.0f} ms", flush=True)
            finally:
                browser.close()
            if not args.no_lighthouse:
                for run in range(args.runs):
                    for name in servers:
                        for target, url in pages[name].items():
                            score = lighthouse(url)
                            key = f"{name} | {target}"
                            results["lighthouse"].setdefault(key, []).append(score)
                            print(f"run {run + 1}, lighthouse {key}: {score:.0f}", flush=True)
        results["seconds"] = round(time.monotonic() - started)
        out = ROOT / "bench/results" / f"pages-{time.strftime('%Y%m%d-%H%M%S')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        report(results)
        print(f"# results in {out.relative_to(ROOT)}; finished in {results['seconds']} s")
    finally:
        if args.keep:
            print(f"# kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def _median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def report(results: dict[str, Any]) -> None:
    commits = results["commits"]
    print("\n## For BENCHMARKS.md\n")
    print(
        f"Medians of {results['runs']} runs; old {commits['old']}, new {commits['new']}. "
        "Requests to the site and KB received (headers + body as sent) before play.\n"
    )
    print("| page | profile | old requests | old KB | new requests | new KB |")
    print("|---|---|---:|---:|---:|---:|")
    keys = {tuple(key.split(" | ")[1:]) for key in results["before_play"]}
    for target, profile in sorted(keys, key=lambda k: (k[0], k[1])):
        cells = []
        for name in ("old", "new"):
            tallies = results["before_play"].get(f"{name} | {target} | {profile}", [])
            cells.append(f"{_median([t['requests'] for t in tallies]):.0f}")
            cells.append(f"{_median([t['bytes'] for t in tallies]) / 1000:,.0f}")
        print(f"| {target} | {profile} | " + " | ".join(cells) + " |")
    print("\n| navigation to sound, slow phone | old ms | new ms | each run (old; new) |")
    print("|---|---:|---:|---|")
    for target in ("audio page", "video page"):
        old = results["to_sound"].get(f"old | {target}", [])
        new = results["to_sound"].get(f"new | {target}", [])
        if old and new:
            each = ", ".join(f"{v:.0f}" for v in old) + "; " + ", ".join(f"{v:.0f}" for v in new)
            print(f"| {target} | {_median(old):,.0f} | {_median(new):,.0f} | {each} |")
    if results["lighthouse"]:
        print("\n| Lighthouse mobile performance | old | new | each run (old; new) |")
        print("|---|---:|---:|---|")
        names = sorted({key.split(" | ")[1] for key in results["lighthouse"]})
        for target in names:
            old = results["lighthouse"].get(f"old | {target}", [])
            new = results["lighthouse"].get(f"new | {target}", [])
            each = ", ".join(f"{v:.0f}" for v in old) + "; " + ", ".join(f"{v:.0f}" for v in new)
            print(f"| {target} | {_median(old):.0f} | {_median(new):.0f} | {each} |")
    print("\nBefore play on the new code, by resource type, phone, last run (requests / KB):\n")
    for key, tallies in sorted(results["before_play"].items()):
        if key.startswith("new") and key.endswith("phone"):
            kinds = tallies[-1]["kinds"]
            listed = ", ".join(
                f"{kind} {count} / {size / 1000:,.1f}"
                for kind, (count, size) in sorted(kinds.items())
            )
            print(f"- {key.split(' | ')[1]}: {listed}")


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


if __name__ == "__main__":
    sys.exit(main())
