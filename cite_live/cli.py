"""The `cite-live` command: serve the site, ingest captures."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from cite_live.api import production_json
from cite_live.catalogue import get_production
from cite_live.ingest import delete_production, run_transcode, submit_file
from cite_live.services import Services, open_services
from cite_live.settings import SettingsError, load_settings
from cite_live.storage import StorageError
from transcoder import TranscodeError

log = logging.getLogger("cite_live")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cite-live", description="Cité Live Web: captures in, adaptive HLS out."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and serve the site")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to bind (default 8000)")

    commands.add_parser("migrate", help="bring the database schema up to date")

    ingest = commands.add_parser("ingest", help="register and transcode local capture files")
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument(
        "--artist",
        action="append",
        default=[],
        metavar="NAME",
        help="credit this artist (repeatable); default: the artists in the file's tags",
    )
    ingest.add_argument("--title", help="title; default: the file's title tag, then its name")
    ingest.add_argument(
        "--json", action="store_true", help="print one production object per line on stdout"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command == "serve" else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cite-live: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        import os

        import uvicorn

        from cite_live.app import create_app
        from cite_live.seed import BackgroundSeed, seeding_enabled

        # Opened here rather than in the app's lifespan so that the demo seeding shares them.
        services = open_services(settings)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(settings, services), host=args.host, port=args.port, proxy_headers=True
            )
        )
        seeding = None
        if seeding_enabled(os.environ):
            seeding = BackgroundSeed(services, ready=lambda: server.started).start()
        try:
            server.run()
        finally:
            if seeding is not None:
                seeding.stop()
            services.close()
        return 0
    services = open_services(settings)
    try:
        if args.command == "migrate":
            return 0
        return ingest(services, args.files, args.artist, args.title, as_json=args.json)
    finally:
        services.close()


def ingest(
    services: Services,
    files: Sequence[Path],
    artists: Sequence[str],
    title: str | None,
    *,
    as_json: bool,
) -> int:
    """Transcode each file in turn; a refused file is reported and the others go on."""
    failures = 0
    for path in files:
        reason = _check_readable(path)
        if reason:
            print(f"cite-live: {path}: {reason}", file=sys.stderr)
            failures += 1
            continue
        try:
            production_id = _ingest_one(services, path, artists, title)
        except (TranscodeError, StorageError) as exc:
            message = exc.message if isinstance(exc, TranscodeError) else str(exc)
            print(f"cite-live: {path}: {message}", file=sys.stderr)
            failures += 1
            continue
        with services.sessions() as session:
            production = get_production(session, production_id)
            assert production is not None
            data = production_json(production, services.store, services.settings.site_url)
        if as_json:
            print(json.dumps(data, ensure_ascii=False), flush=True)
        else:
            print(f"{data['title']}: {data['page_url']}", file=sys.stderr)
    return 1 if failures else 0


def _check_readable(path: Path) -> str | None:
    if not path.exists():
        return "no such file."
    if not path.is_file():
        return "not a regular file."
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        return f"cannot be read ({exc.strerror})."
    return None


def _ingest_one(services: Services, path: Path, artists: Sequence[str], title: str | None) -> str:
    production_id, job_id = submit_file(services, path, title=title, artists=artists)
    bar = tqdm(
        total=100,
        desc=path.name[:40],
        unit="%",
        file=sys.stderr,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        disable=None,  # no bar when stderr is not a terminal
    )

    def progress(fraction: float) -> None:
        bar.update(max(0.0, round(fraction * 100, 1) - bar.n))

    try:
        run_transcode(services, job_id, progress)
    except (TranscodeError, StorageError):
        # From the command line the operator keeps the file: leave nothing of it behind.
        delete_production(services, production_id)
        raise
    finally:
        bar.close()
    return production_id
