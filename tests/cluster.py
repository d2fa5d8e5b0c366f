"""The whole topology of a site on several machines, on loopback: what scripts/cluster starts by
hand and tests/test_cluster.py tests on.

    with running(directory) as cluster:
        httpx.get(cluster.url + "/")          # nginx, in front of both web processes

PostgreSQL (a fresh database on the server the tests use), SeaweedFS as S3 (tests.s3server),
Redis (the tests' server, under a namespace of this run), `cite-live migrate` once, two
`cite-live serve` and two `cite-live worker`, and nginx with a round-robin upstream over the web
processes (:data:`NGINX_SITE`, the README's example). Every listener is bound to 127.0.0.1 on a
free port.

Every process reads its settings from the two files an operator would install on each machine:
``storage.yaml`` (:data:`CITE_LIVE_CONFIG`: storage, site address, trusted proxies, the shared
secret key, the broker) and ``cite-live.env`` (the database URL and the S3 credentials, which
storage.yaml never holds). Only ``CITE_LIVE_DATA_DIR`` differs between processes: each has a disk
of its own, as on separate machines, so nothing passes between them except through PostgreSQL,
Redis and S3.

Nothing outlives its owner: each process leads a process group of its own, receives SIGKILL
from the kernel when the process that started it dies (PR_SET_PDEATHSIG), and is stopped at
interpreter exit (atexit) and once ``max_lifetime`` seconds have passed (a watchdog thread).
The database and the Redis keys are removed on stop.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
import yaml

from tests import nginx
from tests.app_fixtures import free_port
from tests.dbs import REDIS_URL, postgres_admin_url, postgres_database
from tests.s3server import S3Server, die_with_parent

HOST = "127.0.0.1"
WEB_PROCESSES = 2
WORKERS = 2
# What nginx logs of each request: which web process answered it, among the rest.
LOG_FORMAT = (
    '$remote_addr [$time_iso8601] "$request_method $uri" $status $request_time $upstream_addr'
)

# The site's nginx configuration, inside `http { }` (`scripts/cluster --example` prints it as the
# README shows it): {web} lists the web processes' `server host:port;` lines, {listen} the
# server's listen (and TLS) lines; {store} and {bucket} name the S3 endpoint and bucket.
NGINX_SITE = """\
    log_format cite_live '{log_format}';

    upstream cite_live {{
        # Plain round robin: the web processes keep nothing of a visitor between requests.
{web}
        keepalive 16;
    }}

    server {{
{listen}
        access_log {access_log} cite_live;

        # Forms carry at most a 20 MiB cover or portrait (covers.MAX_BYTES).
        client_max_body_size 21m;
        proxy_connect_timeout 5s;
        proxy_read_timeout 60s;
        proxy_send_timeout 60s;

        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $http_host;
        # Believed only from the addresses in site.trusted_proxies.
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $http_host;

        location / {{
            proxy_pass http://cite_live;
        }}

        # tus uploads: each chunk streams through to a web process as it arrives, instead of
        # being written to nginx's disk first, and may be as large as the client makes it
        # (tuspy sends a whole file in one PATCH by default); the app checks every length
        # against the upload's and limits.max_bytes. A chunk may follow the previous one to
        # the other web process.
        location /api/v1/uploads {{
            proxy_pass http://cite_live;
            proxy_request_buffering off;
            client_max_body_size 0;
            client_body_timeout 120s;
            # The last chunk's answer comes once the file is in the store.
            proxy_read_timeout 300s;
        }}

        # The bucket's public objects (published HLS), under the site's own address:
        # s3.public_base_url points here. Read-only; private media are presigned URLs.
        location /store/ {{
            limit_except GET {{ deny all; }}
            proxy_pass {store}/{bucket}/;
            proxy_set_header Host $proxy_host;
            proxy_set_header X-Forwarded-For "";
            proxy_set_header X-Forwarded-Proto "";
            proxy_set_header X-Forwarded-Host "";
        }}
        # The bucket's root would list its keys, to whoever the bucket's policy lets list.
        location = /store/ {{
            return 404;
        }}
    }}
"""


class ClusterError(RuntimeError):
    """A component the cluster needs is missing or did not start; the message says which."""


@dataclass
class Process:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Cluster:
    directory: Path
    url: str
    web: list[str]
    config: Path
    env_file: Path
    database_url: str
    redis_namespace: str
    s3: S3Server
    front: nginx.Nginx | None = None
    processes: dict[str, Process] = field(default_factory=dict)
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)
    _watchdog: threading.Timer | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    # --- the processes ---------------------------------------------------------------------------

    def env(self, data_dir: Path) -> dict[str, str]:
        """The environment of a process of the site with its own ``data_dir``: this machine's
        environment without anything of ours (a developer's CITE_LIVE_* or AWS profile), plus
        the operator's env file."""
        environ = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("CITE_LIVE_", "AWS_"))
        }
        environ.update(read_env_file(self.env_file))
        environ["CITE_LIVE_DATA_DIR"] = str(data_dir)
        return environ

    def spawn(self, name: str, *arguments: str) -> Process:
        """`cite-live ARGUMENTS` as the process ``name``, with a data dir and a log of its own."""
        env = self.env(self.directory / "machines" / name)
        command = [sys.executable, "-m", "cite_live", *arguments]
        log = self.directory / "logs" / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                # Its own process group (so that a signal reaches the ffmpeg it runs too), and
                # SIGKILL when we die.
                preexec_fn=die_with_parent,
            )
        process = Process(name, command, env, log, popen)
        self.processes[name] = process
        return process

    def restart(self, name: str) -> Process:
        """The process ``name`` again, as it was started (after a crash, say)."""
        old = self.processes[name]
        if old.popen.poll() is None:
            raise ClusterError(f"{name} is still running")
        return self.spawn(name, *old.command[3:])

    @property
    def workers(self) -> list[Process]:
        return [p for name, p in self.processes.items() if name.startswith("worker")]

    def logs(self) -> str:
        """Every process's log, for an assertion's message."""
        parts = [f"--- {name}\n{p.log_text()}" for name, p in self.processes.items()]
        if self.front is not None:
            parts.append(f"--- nginx\n{self.front.error_log()}")
        return "\n".join(parts)

    def access_log(self) -> list[str]:
        return (self.directory / "nginx" / "access.log").read_text().splitlines()

    # --- start and stop --------------------------------------------------------------------------

    def start(self, timeout: float) -> None:
        """Migrate once, then the web processes and the workers, then nginx in front."""
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        migrate = self.spawn("migrate", "migrate")
        try:
            code = migrate.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            code = None
        if code != 0:
            raise ClusterError(f"cite-live migrate failed ({code}):\n{migrate.log_text()}")
        for n, url in enumerate(self.web, 1):
            self.spawn(f"web-{n}", "serve", "--host", HOST, "--port", url.rsplit(":", 1)[1])
        for n in range(1, WORKERS + 1):
            self.spawn(f"worker-{n}", "worker")
        deadline = time.monotonic() + timeout
        for n, url in enumerate(self.web, 1):
            self._wait_for(url, self.processes[f"web-{n}"], deadline)
        port = int(self.url.rsplit(":", 1)[1])
        site = NGINX_SITE.format(
            log_format=LOG_FORMAT,
            web="\n".join(f"        server {url.removeprefix('http://')};" for url in self.web),
            listen=f"        listen {HOST}:{port};",
            access_log=self.directory / "nginx" / "access.log",
            store=self.s3.endpoint_url,
            bucket=self.s3.bucket,
        )
        self.front = nginx.start(self.directory / "nginx", site, port, "/api/v1/productions")

    def _wait_for(self, url: str, process: Process, deadline: float) -> None:
        while True:
            if process.popen.poll() is not None:
                raise ClusterError(f"{process.name} exited:\n{process.log_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url + "/api/v1/productions", timeout=2).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise ClusterError(f"{process.name} did not answer:\n{process.log_text()}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop nginx, then every process (a worker gives its job back), then remove the
        database, the Redis keys and SeaweedFS."""
        if self._stopped:
            return
        self._stopped = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.front is not None:
            self.front.stop()
        running = [p for p in self.processes.values() if p.popen.poll() is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in running:
            try:
                process.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.popen.wait(timeout=5)
        self._stack.close()

    def kill(self) -> None:
        """The watchdog's way: SIGKILL to every process group, nothing else."""
        for process in self.processes.values():
            # Only a child not yet reaped: the pid of one reaped may be another's by now.
            if process.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
        if self.front is not None:
            self.front.process.kill()


def read_env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines, as systemd's EnvironmentFile and ``set -a; . FILE`` read them."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    pairs = (line.split("=", 1) for line in lines)
    return {name: value for name, value in (p for p in pairs if len(p) == 2)}


# What each section of the operator's storage.yaml is for, written above it.
CONFIG_COMMENTS = {
    "storage": "Originals and HLS in the bucket; no machine keeps media of its own.",
    "s3": "Players fetch published HLS from the site's address: nginx's /store/ is the bucket. "
    "Private media's signed links go to S3 itself, at an address browsers reach "
    "(browser_endpoint_url, when the site reaches S3 on a private one).",
    "site": "The address visitors use (nginx), and nginx's address, whose X-Forwarded-* are "
    "believed.",
    "auth": "One key for every web process: a session or private link one makes holds on all.",
    "jobs": "Transcodes go through Redis to the `cite-live worker` processes.",
}


def _write_config(
    cluster_dir: Path,
    s3: S3Server,
    site_url: str,
    extra: Mapping[str, Any],
    *,
    redis_url: str,
    proxy: str = HOST,
) -> Path:
    settings: dict[str, dict[str, Any]] = {
        "storage": {"backend": "s3"},
        "s3": {
            "bucket": s3.bucket,
            "endpoint_url": s3.endpoint_url,
            "region": s3.region,
            "addressing_style": "path",
            "public_base_url": f"{site_url}/store",
        },
        "site": {"url": site_url, "trusted_proxies": [proxy]},
        "auth": {"secret_key": secrets.token_urlsafe(48)},
        "jobs": {"broker": "redis", "url": redis_url},
    }
    for section, values in extra.items():
        settings.setdefault(section, {}).update(values)
    lines = ["# Read by every web process and worker (CITE_LIVE_CONFIG, in cite-live.env)."]
    for section, values in settings.items():
        if section in CONFIG_COMMENTS:
            wrapped = textwrap.wrap(CONFIG_COMMENTS[section], 94)
            lines.append("\n" + "\n".join(f"# {line}" for line in wrapped))
        dumped = yaml.safe_dump({section: values}, sort_keys=False, allow_unicode=True)
        lines.append(dumped.rstrip("\n"))
    path = cluster_dir / "storage.yaml"
    path.write_text("\n".join(lines) + "\n")
    # It holds the secret key.
    path.chmod(0o600)
    return path


def _write_env_file(
    cluster_dir: Path, config: Path, database_url: str, credentials: Mapping[str, str]
) -> Path:
    values = {"CITE_LIVE_CONFIG": str(config), "CITE_LIVE_DATABASE_URL": database_url}
    values.update(credentials)
    head = (
        "# The environment of every web process and worker (systemd's EnvironmentFile), besides\n"
        "# CITE_LIVE_DATA_DIR, a folder of each machine's own. The S3 credentials are read the\n"
        "# standard AWS way; storage.yaml never holds them.\n"
    )
    path = cluster_dir / "cite-live.env"
    path.write_text(head + "".join(f"{name}={value}\n" for name, value in values.items()))
    path.chmod(0o600)
    return path


def _redis_namespace(stack: ExitStack) -> str:
    client = redis.Redis.from_url(REDIS_URL)
    stack.callback(client.close)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        raise ClusterError(f"no Redis server answers at {REDIS_URL}: {exc}") from None
    namespace = f"cite-live-cluster-{secrets.token_hex(4)}"

    def empty() -> None:
        for key in client.scan_iter(f"{namespace}:*"):
            client.delete(key)

    stack.callback(empty)
    return namespace


@contextmanager
def running(
    directory: Path | None = None,
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    max_lifetime: float = 3600.0,
    timeout: float = 120.0,
) -> Iterator[Cluster]:
    """Start the cluster (``settings`` adds keys to its storage.yaml), yield it, always stop it
    and remove what it made."""
    if nginx.nginx_binary() is None:
        raise ClusterError("nginx is not installed (scripts/install installs nginx-light)")
    admin = postgres_admin_url()
    if admin is None:
        raise ClusterError("no PostgreSQL server answers (set CITE_LIVE_TEST_POSTGRES_URL)")
    with ExitStack() as stack:
        own = directory is None
        root = Path(tempfile.mkdtemp(prefix="cite-live-cluster-")) if own else directory
        assert root is not None
        if own:
            stack.callback(shutil.rmtree, root, ignore_errors=True)
        database_url = stack.enter_context(postgres_database(admin))
        namespace = _redis_namespace(stack)
        s3 = S3Server.start(root / "seaweedfs", max_lifetime=max_lifetime)
        stack.callback(s3.stop)
        url = f"http://{HOST}:{free_port()}"
        redis_url = f"{REDIS_URL}?namespace={namespace}"
        config = _write_config(root, s3, url, settings or {}, redis_url=redis_url)
        cluster = Cluster(
            directory=root,
            url=url,
            web=[f"http://{HOST}:{free_port()}" for _ in range(WEB_PROCESSES)],
            config=config,
            env_file=_write_env_file(root, config, database_url, s3.env()),
            database_url=database_url,
            redis_namespace=namespace,
            s3=s3,
            _stack=stack.pop_all(),
        )
    cluster._watchdog = threading.Timer(max_lifetime, cluster.kill)
    cluster._watchdog.daemon = True
    cluster._watchdog.start()
    atexit.register(cluster.stop)
    try:
        cluster.start(timeout)
        yield cluster
    finally:
        cluster.stop()
        atexit.unregister(cluster.stop)


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM as Ctrl-C: the clean stop runs (dropping the database, emptying Redis), which a
    # death by signal would skip.
    raise KeyboardInterrupt


def write_example(directory: Path) -> tuple[Path, Path, str]:
    """The settings files (storage.yaml, cite-live.env) and the nginx configuration of an
    installation on several machines, as the README shows them: what the cluster writes, with
    an operator's addresses in place of loopback's."""
    s3 = S3Server("http://10.0.0.20:8333", "cite-live", "", "", "us-east-1", directory)
    config = _write_config(
        directory,
        s3,
        "https://live.example.org",
        {"s3": {"browser_endpoint_url": "https://s3.live.example.org"}},
        redis_url="redis://10.0.0.30:6379/0",
        proxy="10.0.0.10",
    )
    credentials = {"AWS_ACCESS_KEY_ID": "AKIA…", "AWS_SECRET_ACCESS_KEY": "…"}
    database_url = "postgresql://cite_live:PASSWORD@10.0.0.40/cite_live"
    env = _write_env_file(directory, config, database_url, credentials)
    listen = (
        "        listen 443 ssl;\n"
        "        server_name live.example.org;\n"
        "        ssl_certificate /etc/ssl/live.example.org.pem;\n"
        "        ssl_certificate_key /etc/ssl/live.example.org.key;"
    )
    site = NGINX_SITE.format(
        log_format=LOG_FORMAT,
        web="        server 10.0.0.11:8000;\n        server 10.0.0.12:8000;",
        listen=listen,
        access_log="/var/log/nginx/cite-live.log",
        store=s3.endpoint_url,
        bucket=s3.bucket,
    )
    return config, env, site


def print_example() -> None:
    with tempfile.TemporaryDirectory() as folder:
        config, env, site = write_example(Path(folder))
        print(f"# /etc/cite-live/storage.yaml\n{config.read_text()}")
        text = env.read_text().replace(str(config), "/etc/cite-live/storage.yaml")
        print(f"# /etc/cite-live/cite-live.env\n{text}")
    print(f"# nginx, inside http {{ }} (/etc/nginx/conf.d/cite-live.conf)\n{site}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/cluster",
        description="Start the whole topology on loopback (PostgreSQL, SeaweedFS, Redis, "
        "two web processes, two workers, nginx) until Ctrl-C.",
    )
    parser.add_argument("--hours", type=float, default=8.0, help="stop after this long (8)")
    parser.add_argument(
        "--example",
        action="store_true",
        help="print the settings and nginx files as a real installation has them, and exit",
    )
    args = parser.parse_args(argv)
    if args.example:
        print_example()
        return 0
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with running(max_lifetime=args.hours * 3600) as cluster:
            print(f"site (nginx)     {cluster.url}")
            for n, url in enumerate(cluster.web, 1):
                print(f"web-{n}            {url}")
            print(f"S3 (SeaweedFS)   {cluster.s3.endpoint_url}/{cluster.s3.bucket}")
            print(f"database         {cluster.database_url}")
            print(f"redis namespace  {cluster.redis_namespace}")
            print(f"settings         {cluster.config}")
            print(f"environment      {cluster.env_file}")
            print(f"logs             {cluster.directory / 'logs'}")
            print(
                f"\nAn admin account: (set -a; . {cluster.env_file}; "
                "cite-live user add you@example.org --role admin)"
            )
            print("Ctrl-C stops everything and removes its data.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except ClusterError as exc:
        print(f"scripts/cluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
