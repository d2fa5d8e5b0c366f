"""What the benchmarks share: the machine they describe and `cite-live serve` run as deployed.

The scripts beside this one import it as ``harness`` (Python puts a script's own folder first
on its path).
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cite_live.web.urls import Urls

ROOT = Path(__file__).resolve().parent.parent


def cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.lower().startswith(("model name", "hardware", "cpu model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Until ``url`` answers anything but a 5xx; SystemExit with the end of ``log`` when the
    process exits first or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process's group (it was started in a session of its own), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@dataclass(frozen=True)
class AppServer:
    url: str
    pid: int


@contextmanager
def app_server(
    data_dir: Path,
    database_url: str,
    log: Path,
    extra_env: dict[str, str] | None = None,
    root: Path = ROOT,
) -> Iterator[AppServer]:
    """`cite-live serve` exactly as deployed (no demo), on 127.0.0.1 on a free port; the code
    of ``root``, a checkout of this repository (another commit's, to compare with it)."""
    port = free_port()
    env = {
        **os.environ,
        "CITE_LIVE_DATA_DIR": str(data_dir),
        "CITE_LIVE_DATABASE_URL": database_url,
        "PYTHONPATH": str(root),
        **(extra_env or {}),
    }
    env.pop("CITE_LIVE_CONFIG", None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cite_live", "serve", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        urls = Urls(url)
        wait_until_answering(urls.absolute(urls.api_productions(per_page=1)), process, log, 60)
        yield AppServer(url, process.pid)
    finally:
        stop(process)
