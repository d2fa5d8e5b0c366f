"""Opening the services installs the process's listeners and filters; importing installs none."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.orm import Session

from cite_live import search
from cite_live.services import open_services
from tests.app_fixtures import make_settings
from tests.dbs import sqlite_url

ROOT = Path(__file__).resolve().parent.parent

# Imports every module of the package, then reports what importing changed in the process.
IMPORT_EVERYTHING = """
import importlib, json, logging, pkgutil
import xml.etree.ElementTree as ET
from sqlalchemy import event
from sqlalchemy.orm import Session
import cite_live

names = [m.name for m in pkgutil.walk_packages(cite_live.__path__, "cite_live.")]
for name in names:
    # Not the command line's entry point (it runs the command), nor Alembic's scripts.
    if name != "cite_live.__main__" and ".migrations" not in name:
        importlib.import_module(name)
from cite_live import search
from cite_live.web import feeds
print(json.dumps({
    "modules": len(names),
    "session_listener": event.contains(Session, "before_flush", search._before_flush),
    "uvicorn_filters": len(logging.getLogger("uvicorn.access").filters),
    "namespaces": sorted(
        prefix for uri, prefix in ET._namespace_map.items()
        if uri in (feeds.ATOM, feeds.ITUNES, feeds.MEDIA)
    ),
}))

# Then what the server and the app install, once however often they are made.
from cite_live import server
from cite_live.web.app import create_app
from cite_live.settings import load_settings

for _ in range(2):
    server.server_config(create_app(load_settings()), host="127.0.0.1", port=0)
print(json.dumps({
    "uvicorn_filters": [type(f).__name__ for f in logging.getLogger("uvicorn.access").filters],
    "namespaces": sorted(
        prefix for uri, prefix in ET._namespace_map.items()
        if uri in (feeds.ATOM, feeds.ITUNES, feeds.MEDIA)
    ),
}))
"""


def test_importing_the_package_installs_no_listener_or_filter(tmp_path: Path) -> None:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CITE_LIVE_DATA_DIR": str(tmp_path / "data"),
        "CITE_LIVE_DATABASE_URL": sqlite_url(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    imported, served = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert imported["modules"] > 30
    assert imported == {
        "modules": imported["modules"],
        "session_listener": False,
        "uvicorn_filters": 0,
        "namespaces": [],
    }
    # The server keeps media tokens out of its access log; the app's feeds name their
    # namespaces as readers expect.
    assert served == {
        "uvicorn_filters": ["RedactMediaTokens"],
        "namespaces": ["atom", "itunes", "media"],
    }


def test_open_services_keeps_search_text_on_its_own_sessions_only(tmp_path: Path) -> None:
    services = open_services(make_settings(tmp_path / "data", sqlite_url(tmp_path)))
    try:
        assert event.contains(services.sessions, "before_flush", search._before_flush)
        assert not event.contains(Session, "before_flush", search._before_flush)
        # Idempotent: a second install adds no second listener.
        search.install(services.sessions)
        event.remove(services.sessions, "before_flush", search._before_flush)
        assert not event.contains(services.sessions, "before_flush", search._before_flush)
    finally:
        services.close()
