"""The `cite-live` command: serve the site, ingest captures."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from cite_live import accounts
from cite_live.accounts import AccountError
from cite_live.catalogue import artist_by_name, get_production
from cite_live.i18n import DEFAULT_LANGUAGE, LANGUAGES
from cite_live.jobs import doorbell as jobs
from cite_live.jobs.ingest import delete_production, run_transcode, submit_file
from cite_live.mail import send_letter
from cite_live.presenter import production_json
from cite_live.services import Services, open_services
from cite_live.settings import UNSET_SITE_URL, SettingsError, load_settings
from cite_live.storage import StorageError
from cite_live.vocabulary import ROLES
from cite_live.web.urls import Urls
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
    serve.add_argument(
        "--demo",
        action="store_true",
        help="seed a demo catalogue, in the background, when the database has no production",
    )

    commands.add_parser("migrate", help="bring the database schema up to date")
    worker = commands.add_parser(
        "worker", help="run background jobs from the redis or rabbitmq broker (jobs.broker)"
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve this process's Prometheus metrics at http://HOST:PORT/metrics (default: none)",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address the metrics are served at (default 127.0.0.1: this machine only)",
    )

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
    _add_account_commands(commands)
    return parser


# Several web processes sign cookies and private media links that every other one must accept.
SHARED_KEY_NEEDED = (
    "auth.secret_key must be set, the same in every web process, when jobs run on a broker: a "
    "key generated into one machine's data dir would sign cookies and media links that the "
    "other processes refuse."
)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.command in ("serve", "worker") else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"cite-live: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        import gc
        import signal

        import uvicorn

        from cite_live.broadcast import redis_of
        from cite_live.demo.seed import BackgroundSeed
        from cite_live.server import server_config
        from cite_live.site import allowed_hosts, bound_to
        from cite_live.web.app import create_app

        if settings.jobs.broker != "embedded" and not settings.auth.secret_key:
            print(f"cite-live: {SHARED_KEY_NEEDED}", file=sys.stderr)
            return 2
        settings = bound_to(settings, args.host)
        log.info(
            "Answering requests for %s; absolute URLs start with %s.",
            ", ".join(sorted(allowed_hosts(settings))),
            settings.site_url or "the address each request arrives at",
        )
        if redis_of(settings) is None and not settings.database_url.startswith("sqlite"):
            # A shared database says several web processes may be running: without a Redis
            # each counts sign-ins and keeps pages and visibilities to itself.
            log.warning(
                "jobs.url names no Redis: this web process keeps its sign-in counts, page cache "
                "and media visibilities to itself. Run only one, or set jobs.broker: redis and "
                "jobs.url so that several share them."
            )
        # Opened here rather than in the app's lifespan so that the demo seeding shares them.
        services = open_services(settings)
        try:
            # Embedded: worker threads here. Otherwise `cite-live worker` runs the jobs.
            queue = jobs.open_queue(
                services, workers=settings.jobs.broker == "embedded", sweep_uploads=True
            )
        except jobs.JobsError as exc:
            services.close()
            print(f"cite-live: {exc}", file=sys.stderr)
            return 2
        server = uvicorn.Server(
            server_config(create_app(settings, services), host=args.host, port=args.port)
        )
        seeding = None
        # Only when asked: on a real, still empty catalogue, invented artists would be a lie.
        if args.demo:
            seeding = BackgroundSeed(services, ready=lambda: server.started).start()
        # uvicorn stops on SIGTERM/SIGINT, then raises the signal again for the handler it
        # found: with a handler that does nothing, the clean-up below runs instead of dying.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, frame: None)
        # What exists by now (modules, mappers, templates, translations: some 137,000 objects)
        # lives as long as the process. Out of the collector's sight, it no longer makes each
        # full collection a pause of 40-50 ms for everyone, the pages' slowest 1 % before
        # this (BENCHMARKS.md).
        gc.collect()
        gc.freeze()
        try:
            server.run()
        finally:
            if seeding is not None:
                seeding.stop()
            queue.close()
            services.close()
        return 0
    if args.command == "worker":
        try:
            metrics = None if args.metrics_port is None else (args.metrics_host, args.metrics_port)
            return jobs.run_worker(settings, metrics=metrics)
        except jobs.JobsError as exc:
            print(f"cite-live: {exc}", file=sys.stderr)
            return 2
    services = open_services(settings)
    try:
        if args.command == "migrate":
            return 0
        if args.command in ("user", "token"):
            return account_command(services, args)
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
            data = production_json(production, services.store, Urls(services.settings.stable_url))
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


# --- accounts: `user add`, `token create` -------------------------------------------------------


def _add_account_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = commands.add_parser("user", help="manage accounts")
    user_commands = user.add_subparsers(dest="action", required=True)
    add = user_commands.add_parser(
        "add", help="create an account; prints its invitation link unless --password-stdin"
    )
    add.add_argument("email", metavar="EMAIL")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--artist",
        action="append",
        default=[],
        metavar="NAME",
        help="the artist profile this account speaks for (repeatable; made when missing)",
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add.add_argument(
        "--lang",
        choices=LANGUAGES,
        default=DEFAULT_LANGUAGE,
        help=f"language of the invitation message (default {DEFAULT_LANGUAGE})",
    )

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="action", required=True)
    create = token_commands.add_parser("create", help="print a new API token for EMAIL")
    create.add_argument("email", metavar="EMAIL")
    create.add_argument("--name", default="", help="what the token is for")


def account_command(services: Services, args: argparse.Namespace) -> int:
    """`user add` and `token create`: exit 1 with one sentence on stderr when refused."""
    try:
        if args.command == "user":
            password = _read_password() if args.password_stdin else None
            print(add_user(services, args.email, args.role, args.artist, password, args.lang))
            if password is None and not services.settings.site_url:
                print(NO_SITE_URL, file=sys.stderr)
        else:
            # Only the token on stdout: outside tools capture it.
            print(create_token(services, args.email, args.name))
    except AccountError as exc:
        print(f"cite-live: {exc.explain('en')}", file=sys.stderr)
        return 1
    return 0


def _read_password() -> str:
    password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise AccountError("No password was given on standard input.")
    return password


NO_SITE_URL = (
    f"cite-live: site.url is not set, so this link assumes the site answers at {UNSET_SITE_URL}; "
    "where people open it at another address, set site.url in storage.yaml (or "
    "CITE_LIVE_SITE_URL) to that address, and give them this link on it."
)


def add_user(
    services: Services,
    email: str,
    role: str,
    artists: Sequence[str],
    password: str | None,
    lang: str = DEFAULT_LANGUAGE,
) -> str:
    """Create the account; what to print: its invitation link (also sent to it in a message in
    ``lang``), or that it can sign in."""
    with services.sessions.begin() as session:
        artist_ids = [artist_by_name(session, name).id for name in artists if name.strip()]
        user = accounts.create_user(
            session,
            email,
            role,
            password=password,
            artist_ids=artist_ids,
            settings=services.settings,
        )
        urls = Urls(services.settings.stable_url)
        if password is not None:
            return f"{user.email} can sign in at {urls.absolute(urls.login())}"
        secret = accounts.create_invitation(session, user)
        address, link = user.email, urls.absolute(urls.invite(secret))
    # Once the account is kept: a mail server that fails loses nothing, the link is printed.
    letter = accounts.invitation_letter(address, link, lang)
    if send_letter(services.mailer, services.settings, letter) and services.mailer.delivers:
        print(f"cite-live: the invitation was sent to {address}.", file=sys.stderr)
    elif services.mailer.delivers:
        print(
            f"cite-live: the invitation could not be sent to {address} (see above); "
            "give them this link yourself.",
            file=sys.stderr,
        )
    return link


def create_token(services: Services, email: str, name: str) -> str:
    with services.sessions.begin() as session:
        user = accounts.find_user(session, email)
        if user is None:
            raise AccountError(f"There is no account for {email}.")
        if user.disabled:
            raise AccountError(f"The account {user.email} is disabled.")
        return accounts.create_token(session, user, name or "cite-live token create")
