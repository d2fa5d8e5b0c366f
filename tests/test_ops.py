"""/healthz, /readyz and /metrics: what a load balancer and Prometheus see, the database down
included, and who may read the metrics."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cite_live.health import Readiness
from cite_live.services import Services, open_services
from cite_live.settings import Settings
from tests.app_fixtures import free_port, make_settings, new_client, serving
from tests.dbs import set_connections, sqlite_url
from tests.test_jobs import register

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(exposition: str) -> Samples:
    """Every sample of a scrape, parsed by Prometheus' own client: (name, labels) → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


@pytest.fixture
def cached_postgres(postgres_url: str, tmp_path: Path) -> Iterator[tuple[Services, str]]:
    """Services on a PostgreSQL database of their own, pages cached for a minute."""
    settings = make_settings(
        tmp_path / "data", postgres_url, CITE_LIVE_SITE_PAGE_CACHE_SECONDS="60"
    )
    services = open_services(settings)
    try:
        yield services, postgres_url
    finally:
        services.close()


def test_with_the_database_down_readyz_says_so_while_cached_pages_still_answer(
    cached_postgres: tuple[Services, str],
) -> None:
    services, url = cached_postgres
    with new_client(services) as client:
        assert client.get("/").status_code == 200  # now in the page cache
        assert client.get("/readyz").json() == {
            "status": "ready",
            "checks": {"database": "ok", "store": "ok", "broker": "ok"},
        }
        set_connections(url, allowed=False)
        try:
            assert client.get("/").status_code == 200  # from the cache
            assert client.get("/artists").status_code == 500
            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {
                "status": "unavailable",
                "checks": {"database": "failed", "store": "ok", "broker": "ok"},
            }
            assert ready.headers["cache-control"] == "no-store"
            # Asked again: never an answer kept from before.
            assert client.get("/readyz").status_code == 503
            alive = client.get("/healthz", headers={"Cookie": "cite_live_session=x"})
            assert (alive.status_code, alive.text) == (200, "ok")
            assert alive.headers["cache-control"] == "no-store"
        finally:
            set_connections(url, allowed=True)
        # Connections killed meanwhile are replaced (pool_pre_ping): ready again.
        assert client.get("/readyz").status_code == 200


def test_readyz_names_a_store_and_a_broker_that_do_not_answer(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_bytes(b"")
    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_LOCAL_PATH=str(tmp_path / "not-a-folder" / "media"),
        CITE_LIVE_JOBS_BROKER="redis",
        CITE_LIVE_JOBS_URL=f"redis://127.0.0.1:{free_port()}/0",
    )
    services = open_services(settings)
    try:
        with new_client(services) as client:
            ready = client.get("/readyz")
    finally:
        services.close()
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"database": "ok", "store": "failed", "broker": "failed"}
    # What failed says no more: the reasons (hosts, paths) are in the log.
    assert "not-a-folder" not in ready.text and "127.0.0.1" not in ready.text


def test_readyz_asks_redis_when_it_is_the_broker(tmp_path: Path, redis_namespace: str) -> None:
    from tests.dbs import REDIS_URL

    settings = make_settings(
        tmp_path / "data",
        sqlite_url(tmp_path),
        CITE_LIVE_JOBS_BROKER="redis",
        CITE_LIVE_JOBS_URL=f"{REDIS_URL}?namespace={redis_namespace}",
    )
    services = open_services(settings)
    try:
        with new_client(services) as client:
            assert client.get("/readyz").json()["checks"]["broker"] == "ok"
    finally:
        services.close()


def metrics_settings(tmp_path: Path, **env: str) -> Settings:
    return make_settings(tmp_path / "data", sqlite_url(tmp_path), **env)


def test_metrics_count_requests_by_route_and_read_the_queue_from_the_table(
    tmp_path: Path,
) -> None:
    services = open_services(metrics_settings(tmp_path))
    capture = tmp_path / "song.opus"
    capture.write_bytes(b"not decoded: the job only waits in the queue")
    try:
        register(services, capture)
        with serving(services) as url:
            for slug in ("a", "b", "c", "d%20e", "f/../g"):
                httpx.get(f"{url}/artists/{slug}")
            httpx.get(f"{url}/no/such/page")
            scrape = httpx.get(f"{url}/metrics")
    finally:
        services.close()
    assert scrape.status_code == 200
    assert scrape.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(scrape.text)
    # Five artist paths, one series: the route's template, never the path asked.
    route = (("method", "GET"), ("route", "/artists/{slug}"), ("status", "404"))
    assert found[("cite_live_http_requests_total", route)] == 5
    unmatched = (("method", "GET"), ("route", "(unmatched)"), ("status", "404"))
    assert found[("cite_live_http_requests_total", unmatched)] >= 1
    assert not any("/artists/a" in str(labels) for _name, labels in found)
    assert found[("cite_live_job_queue_depth", ())] == 1
    assert found[("cite_live_jobs", (("state", "queued"), ("type", "transcode")))] == 1
    assert found[("cite_live_job_oldest_queued_seconds", ())] >= 0


def test_metrics_are_refused_to_outside_addresses_however_they_dress_up(tmp_path: Path) -> None:
    # The in-process client's address is "testclient": not ours.
    services = open_services(metrics_settings(tmp_path))
    try:
        with new_client(services) as client:
            assert client.get("/metrics").status_code == 403
        with serving(services) as url:
            assert httpx.get(f"{url}/metrics").status_code == 200
            # A proxy this site does not trust forwards for someone: refused, whoever it is.
            for forged in ("127.0.0.1", "::1", "10.0.0.1"):
                headers = {"X-Forwarded-For": forged}
                assert httpx.get(f"{url}/metrics", headers=headers).status_code == 403
            forwarded = {"Forwarded": "for=1.2.3.4"}
            assert httpx.get(f"{url}/metrics", headers=forwarded).status_code == 403
            assert httpx.get(f"{url}/metrics", headers={"Host": "evil.example"}).status_code == 400
    finally:
        services.close()

    # Behind a trusted proxy on this machine: the forwarded client counts.
    services = open_services(
        metrics_settings(
            tmp_path / "proxied",
            CITE_LIVE_SITE_TRUSTED_PROXIES="127.0.0.1",
            CITE_LIVE_SITE_METRICS_ALLOW="10.0.0.0/8",
        )
    )
    try:
        with serving(services) as url:

            def status(forwarded_for: str) -> int:
                headers = {"X-Forwarded-For": forwarded_for}
                return httpx.get(f"{url}/metrics", headers=headers).status_code

            assert status("10.1.2.3") == 200
            # A visitor starting the list itself: the proxy adds their real address last.
            assert status("10.1.2.3, 203.0.113.9") == 403
            assert status("203.0.113.9") == 403
            # The proxy itself is no longer in the allowed list.
            assert httpx.get(f"{url}/metrics").status_code == 403
    finally:
        services.close()


def test_health_answers_ahead_of_the_page_cache_for_any_language(tmp_path: Path) -> None:
    services = open_services(metrics_settings(tmp_path, CITE_LIVE_SITE_PAGE_CACHE_SECONDS="60"))
    try:
        with new_client(services) as client:
            for path in ("/healthz", "/readyz"):
                answer = client.get(path, headers={"Accept-Language": "fr"})
                assert answer.status_code == 200
                assert "content-language" not in answer.headers
                assert client.post(path).status_code == 405
    finally:
        services.close()


def test_a_check_that_hangs_times_out_and_is_not_started_again_meanwhile(
    services: Services,
) -> None:
    release = threading.Event()
    started: list[int] = []

    class Stuck(Readiness):
        def _database(self) -> None:
            started.append(1)
            release.wait(60)

    readiness = Stuck(services, timeout=0.2)
    try:
        for _ in range(3):
            assert asyncio.run(readiness.run()) == {
                "database": "timeout",
                "store": "ok",
                "broker": "ok",
            }
        # Probes kept coming; one thread waits on the database, not three.
        assert len(started) == 1
    finally:
        release.set()
    readiness.timeout = 30
    assert asyncio.run(readiness.run())["database"] == "ok"
