"""A tus upload over loopback against a raw write of the same bytes; figures go in BENCHMARKS.md.

    .venv/bin/python bench/upload.py [--size MIB] [--chunk MIB] [--runs N] [--dir DIR] [--keep]
                                     [--s3]

1. ``cite-live serve`` (one uvicorn process, as deployed, demo seeding off) starts on 127.0.0.1
   on a free port with its data dir in a temp dir, and an artist account gets an API token.
2. Runs alternate raw, tus, raw, tus...; the best of each counts:
   - raw: the same bytes written by this process to a file in the same uploads folder, with an
     fsync after every chunk, as the server does before it acknowledges one;
   - tus: POST /api/v1/uploads/ then one PATCH per chunk on one keep-alive connection (plain
     ``http.client``, so that the client costs the two cores as little as possible), timed from
     the first PATCH to the answer of the last, which includes the completion (a production,
     the file renamed into the local store, a job queued).
3. The server's peak resident memory is read from ``/proc/<pid>/status`` (VmHWM) at the end,
   with its resident memory before the first upload for comparison.

With ``--s3`` the store is a SeaweedFS server started for the run (``tests/s3server.py``), and
each tus run also reports how long after the last PATCH's answer the original is in the bucket
and the upload ``stored`` (the web process copying it there, or the bucket assembling parts).

Targets: tus at least 0.8 x raw; server peak RSS under 150 MB. The default is the issue's 2 GiB
in 8 MiB chunks; ``--size 256`` is a smoke test. Everything lives in a temp dir (under
``--dir``, by default the system's; it should be on the disk uploads land on in production)
that is removed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from harness import ROOT, app_server, cpu_model, load_average

from cite_live import accounts
from cite_live.services import open_services
from cite_live.settings import load_settings
from cite_live.web.urls import Urls

MIB = 1024 * 1024
TARGET_RATIO = 0.8
TARGET_RSS_MB = 150
EMAIL = "bench@example.org"


@dataclass(frozen=True)
class Run:
    name: str
    seconds: float
    size: int
    # The upload's id (tus runs), and seconds from the last answer to ``stored`` (--s3).
    upload_id: str = ""
    stored_after: float | None = None

    @property
    def mib_per_second(self) -> float:
        return self.size / MIB / self.seconds


# --- machine -----------------------------------------------------------------------------------


def filesystem_of(path: Path) -> str:
    """The type and device of the mount holding ``path`` (tmpfs would flatter both runs)."""
    best = ("", "?", "?")
    target = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, kind = line.split()[:3]
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[0]):
            best = (mount, kind, device)
    return f"{best[1]} on {best[2]}"


def memory_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the server --------------------------------------------------------------------------------


def make_token(data_dir: Path, database_url: str, env: dict[str, str]) -> str:
    settings = load_settings(
        {"CITE_LIVE_DATA_DIR": str(data_dir), "CITE_LIVE_DATABASE_URL": database_url, **env}
    )
    services = open_services(settings)
    try:
        with services.sessions.begin() as session:
            user = accounts.create_user(session, EMAIL, "artist", settings=settings)
            # A 2 GiB upload per run, several runs: far from the default quota of 50 GiB, but
            # the benchmark must not depend on it.
            user.quota_bytes = 1024**5
            session.flush()
            return accounts.create_token(session, user, "bench")
    finally:
        services.close()


# --- the runs ----------------------------------------------------------------------------------


def chunks(size: int, chunk: int, block: bytes) -> Iterator[memoryview]:
    view = memoryview(block)
    for start in range(0, size, chunk):
        yield view[: min(chunk, size - start)]


def raw_write(path: Path, size: int, chunk: int, block: bytes) -> Run:
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
    try:
        for part in chunks(size, chunk, block):
            os.write(fd, part)
            os.fsync(fd)
    finally:
        os.close(fd)
    seconds = time.perf_counter() - started
    path.unlink()
    return Run("raw write + fsync per chunk", seconds, size)


def tus_upload(url: str, token: str, size: int, chunk: int, block: bytes) -> Run:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=120)
    auth = {"Authorization": f"Bearer {token}", "Tus-Resumable": "1.0.0"}
    try:
        connection.request(
            "POST",
            Urls().api_uploads(),
            headers={**auth, "Upload-Length": str(size), "Upload-Metadata": "filename YS5tcDQ="},
        )
        created = connection.getresponse()
        created.read()
        if created.status != 201:
            raise SystemExit(f"POST answered {created.status}")
        path = urlsplit(created.getheader("Location") or "").path
        offset = 0
        started = time.perf_counter()
        for part in chunks(size, chunk, block):
            headers = {
                **auth,
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(len(part)),
            }
            connection.request("PATCH", path, body=part, headers=headers)
            answer = connection.getresponse()
            answer.read()
            if answer.status != 204:
                raise SystemExit(f"PATCH at {offset} answered {answer.status}")
            offset = int(answer.getheader("Upload-Offset") or -1)
        seconds = time.perf_counter() - started
    finally:
        connection.close()
    if offset != size:
        raise SystemExit(f"the upload ended at {offset} of {size}")
    return Run("tus upload, PATCH per chunk", seconds, size, path.rsplit("/", 1)[-1])


def wait_until_stored(database: Path, upload_id: str) -> float:
    """Seconds until the upload is ``stored`` (its original in the store, its job queued)."""
    started = time.perf_counter()
    while time.perf_counter() - started < 600:
        with contextlib.closing(sqlite3.connect(database)) as db:
            row = db.execute("SELECT state FROM uploads WHERE id = ?", (upload_id,)).fetchone()
        if row is not None and row[0] == "stored":
            return time.perf_counter() - started
        if row is not None and row[0] == "terminated":
            raise SystemExit(f"upload {upload_id} was terminated")
        time.sleep(0.02)
    raise SystemExit(f"upload {upload_id} was not stored in 600 s")


@contextlib.contextmanager
def s3_store(directory: Path, wanted: bool) -> Iterator[dict[str, str]]:
    """The environment of the store: none (the local folder), or a SeaweedFS started here."""
    if not wanted:
        yield {}
        return
    sys.path.insert(0, str(ROOT))
    from tests.s3server import S3Server

    with S3Server.start(directory) as server:
        # This process reads the credentials the standard AWS way too (make_token, cleanup).
        os.environ.update(server.env())
        yield {
            **server.env(),
            "CITE_LIVE_STORAGE_BACKEND": "s3",
            "CITE_LIVE_S3_ENDPOINT_URL": server.endpoint_url,
            "CITE_LIVE_S3_BUCKET": server.bucket,
            "CITE_LIVE_S3_PREFIX": "bench",
        }


def remove_originals(data_dir: Path, database_url: str, env: dict[str, str]) -> None:
    """The next runs need the room."""
    if not env:
        shutil.rmtree(data_dir / "media" / "originals", ignore_errors=True)
        return
    settings = load_settings(
        {"CITE_LIVE_DATA_DIR": str(data_dir), "CITE_LIVE_DATABASE_URL": database_url, **env}
    )
    services = open_services(settings, run_migrations=False)
    try:
        services.store.delete_prefix("originals/")
    finally:
        services.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=2048, help="MiB to upload (default 2048)")
    parser.add_argument("--chunk", type=int, default=8, help="MiB per PATCH (default 8)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each (default 2)")
    parser.add_argument("--dir", type=Path, help="where the temp dir goes (default: system's)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--s3", action="store_true", help="store in a SeaweedFS started here")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="cite-live-upload-", dir=args.dir))
    started = time.monotonic()
    try:
        with s3_store(tmp / "s3", args.s3) as env:
            measure(args, tmp, env)
        print(f"# finished in {time.monotonic() - started:.0f} s")
    finally:
        if args.keep:
            print(f"# kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def measure(args: argparse.Namespace, tmp: Path, env: dict[str, str]) -> None:
    size, chunk = args.size * MIB, args.chunk * MIB
    data_dir = tmp / "data"
    database = data_dir / "cite-live.db"
    database_url = f"sqlite:///{database}"
    token = make_token(data_dir, database_url, env)
    # Random bytes, so that nothing on the way (or under it) can compress them.
    block = os.urandom(chunk)
    print("## Machine")
    print(f"- CPU: {cpu_model()}, {os.cpu_count()} cores; load (1/5/15 min) {load_average()}")
    print(f"- Python {platform.python_version()}; uploads on {filesystem_of(tmp)}")
    store = "a SeaweedFS bucket" if env else "the local store"
    print(f"- {args.size} MiB in {args.chunk} MiB chunks, {args.runs} runs of each, into {store}")
    runs: dict[str, list[Run]] = {"raw": [], "tus": []}
    with app_server(data_dir, database_url, tmp / "serve.log", extra_env=env) as server:
        url, pid = server.url, server.pid
        rss_before = memory_mb(pid, "VmRSS")
        uploads_dir = data_dir / "uploads"
        uploads_dir.mkdir(parents=True, exist_ok=True)
        cpu_before = cpu_seconds(pid)
        for _ in range(args.runs):
            for name in ("raw", "tus"):
                if name == "raw":
                    run = raw_write(uploads_dir / "raw", size, chunk, block)
                else:
                    run = tus_upload(url, token, size, chunk, block)
                    stored = wait_until_stored(database, run.upload_id)
                    run = dataclasses.replace(run, stored_after=stored)
                    remove_originals(data_dir, database_url, env)
                runs[name].append(run)
                after = f", stored {run.stored_after:.2f} s later" if run.stored_after else ""
                print(
                    f"{run.name:>30}: {run.seconds:6.2f} s, {run.mib_per_second:7.1f} MiB/s"
                    f"{after}  (load {load_average()})",
                    flush=True,
                )
        server_cpu = cpu_seconds(pid) - cpu_before
        peak = memory_mb(pid, "VmHWM")
    report(runs, rss_before, peak, server_cpu, args)


def report(
    runs: dict[str, list[Run]],
    rss_before: float,
    peak: float,
    server_cpu: float,
    args: argparse.Namespace,
) -> None:
    best = {name: max(results, key=lambda r: r.mib_per_second) for name, results in runs.items()}
    ratio = best["tus"].mib_per_second / best["raw"].mib_per_second
    tus_seconds = sum(r.seconds for r in runs["tus"])
    print("\n## For BENCHMARKS.md\n")
    print(
        f"{args.size} MiB in {args.chunk} MiB chunks on loopback, one `cite-live serve` process; "
        f"best of {args.runs} runs each, alternating.\n"
    )
    print("| run | seconds | MiB/s | runs (MiB/s) |")
    print("|---|---:|---:|---|")
    for name in ("raw", "tus"):
        r = best[name]
        every = ", ".join(f"{x.mib_per_second:.0f}" for x in runs[name])
        print(f"| {r.name} | {r.seconds:.2f} | {r.mib_per_second:.1f} | {every} |")
    stored = [r.stored_after for r in runs["tus"] if r.stored_after is not None]
    if stored:
        print(f"\nStored after the last answer: {', '.join(f'{x:.2f}' for x in stored)} s.")
    verdict = "met" if ratio >= TARGET_RATIO else "**not met**"
    print(f"\ntus / raw: {ratio:.2f} (target ≥ {TARGET_RATIO}: {verdict}).")
    verdict = "met" if peak < TARGET_RSS_MB else "**not met**"
    print(
        f"Server peak RSS (VmHWM): {peak:.0f} MB, {rss_before:.0f} MB before the first upload "
        f"(target < {TARGET_RSS_MB} MB: {verdict}); server CPU {server_cpu:.1f} s for "
        f"{tus_seconds:.1f} s of uploads."
    )


if __name__ == "__main__":
    sys.exit(main())
