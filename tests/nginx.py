"""A real nginx in front of test servers: Debian's nginx-light, which scripts/install installs.

    with running(prefix, SERVER_BLOCK, probe_url) as front:
        httpx.get(front.url + "/")

The caller writes what goes inside ``http { }`` (its ``server`` blocks, upstreams, log formats);
this module adds what every test instance needs around it: one process in the foreground, its
pid, logs and temporary files under ``prefix``. Like the S3 server, nginx cannot outlive the
process that started it (PR_SET_PDEATHSIG), and it leaves the terminal's process group.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.s3server import die_with_parent

MAIN_CONF = """\
daemon off;
# One process: it stops with a signal to its pid and cannot leave workers behind.
master_process off;
{user}
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    sendfile on;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    default_type application/octet-stream;
{http}
}}
"""


class NginxMissing(RuntimeError):
    pass


def nginx_binary() -> str | None:
    """Debian puts nginx in /usr/sbin, which an unprivileged PATH may not list."""
    found = shutil.which("nginx")
    if found is None and Path("/usr/sbin/nginx").exists():
        found = "/usr/sbin/nginx"
    return found


@dataclass
class Nginx:
    url: str
    prefix: Path
    process: subprocess.Popen[bytes]

    def error_log(self) -> str:
        log = self.prefix / "error.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(prefix: Path, http: str, port: int, probe: str = "/", timeout: float = 10) -> Nginx:
    """nginx with ``http`` inside its ``http { }`` block, once ``probe`` answers on ``port``."""
    binary = nginx_binary()
    if binary is None:
        raise NginxMissing("nginx is not installed (scripts/install installs nginx-light)")
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(
        MAIN_CONF.format(
            # As root, nginx would otherwise read files as nobody, who cannot enter the tests'
            # temporary folders.
            user="user root;" if os.geteuid() == 0 else "",
            prefix=prefix,
            http=http,
        )
    )
    # stderr only says something when nginx cannot start; error_log holds the rest.
    with (prefix / "stderr.log").open("wb") as stderr:
        process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=die_with_parent,
        )
    front = Nginx(f"http://127.0.0.1:{port}", prefix, process)
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(front.url + probe, timeout=1)
            return front
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                front.stop()
                problem = (prefix / "stderr.log").read_text() + front.error_log()
                raise RuntimeError(f"nginx did not start:\n{problem}") from None
            time.sleep(0.05)


@contextmanager
def running(prefix: Path, http: str, port: int, probe: str = "/") -> Iterator[Nginx]:
    """`with running(...) as front:` — start, yield, always stop."""
    front = start(prefix, http, port, probe)
    try:
        yield front
    finally:
        front.stop()
