"""The site on several machines, on loopback (tests/cluster.py, as scripts/cluster starts it):
nginx over two web processes, two workers, PostgreSQL, Redis and SeaweedFS.

One topology for the whole module (it takes some 15 s to start), each process with a disk of its
own, so that what one process does reaches the others only through the database, Redis and S3.
The module's tests do not depend on one another's outcome; the two that break something come
last: the readiness test stops the database for a moment, the last one stops a web process.
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from tusclient import client as tus_client

from cite_live.jobs import doorbell, table
from cite_live.models import Job
from cite_live.services import Services, open_services
from cite_live.settings import load_settings
from tests import hls_check
from tests.account_fixtures import login, make_user, token_for
from tests.cluster import Cluster, ClusterError, read_env_file, running, write_example
from tests.dbs import set_connections
from tests.test_jobs import job_row, production_row, register, versions
from tests.test_pages import publish
from tests.test_tus import upload_row, uploading
from tests.test_worker import crash, make_long_capture

pytestmark = [pytest.mark.cluster, pytest.mark.postgres, pytest.mark.s3]

# Short leases so that a dead worker's job moves on within seconds; production-cost password
# hashing would only slow the logins down.
SETTINGS = {
    "jobs": {"lease_seconds": 3, "sweep_seconds": 1, "max_attempts": 3},
    "auth": {"argon2_memory_kib": 1024, "argon2_time_cost": 1},
}
WAIT = 90.0


def test_the_operators_example_is_the_clusters_settings_with_other_addresses(
    tmp_path: Path,
) -> None:
    config, env_file, site = write_example(tmp_path)
    settings = load_settings({**read_env_file(env_file), "CITE_LIVE_DATA_DIR": str(tmp_path)})
    assert settings.storage.backend == "s3" and settings.jobs.broker == "redis"
    assert settings.site_url == "https://live.example.org"
    assert settings.storage.s3_public_base_url == "https://live.example.org/store"
    assert [str(n) for n in settings.trusted_proxies] == ["10.0.0.10/32"]
    assert len(settings.auth.secret_key) > 40
    assert "proxy_pass http://10.0.0.20:8333/cite-live/;" in site
    assert "server 10.0.0.11:8000;" in site and "server 10.0.0.12:8000;" in site
    # Only the environment names the database and credentials; storage.yaml never holds them.
    assert "PASSWORD" not in config.read_text() and "AWS_" not in config.read_text()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    try:
        with running(tmp_path_factory.mktemp("cluster"), settings=SETTINGS) as started:
            yield started
    except ClusterError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def site(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """The installation as one more process of it sees it (the tests' own, on a disk of its
    own); it sends jobs to the workers and runs none."""
    environ = cluster.env(tmp_path_factory.mktemp("tests-machine"))
    with pytest.MonkeyPatch.context() as patch:
        # The S3 client takes its credentials from the standard AWS variables.
        for name, value in cluster.s3.env().items():
            patch.setenv(name, value)
        services = open_services(load_settings(environ))
        queue = doorbell.JobQueue(services)
        services.queue = queue
        yield services
        queue.close()
        services.close()


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One rung (360p) for 12 s: seconds of work for each attempt, a few on a loaded machine.
    path = tmp_path_factory.mktemp("capture") / "capture-360p.mp4"
    return make_long_capture(path, seconds=12, size="640x360")


def wait_for(
    cluster: Cluster, site: Services, job_id: int, done: Callable[[Job], bool], what: str
) -> Job:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        job = job_row(site, job_id)
        if done(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never {what}:\n{cluster.logs()}")


def test_every_process_takes_its_settings_from_the_one_file(
    cluster: Cluster, site: Services
) -> None:
    make_user(site, "settings@example.org")
    first, second = cluster.web
    with httpx.Client(base_url=first) as browser:
        login(browser, "settings@example.org")
        # Signed on one web process, the session holds on the other: one secret key.
        browser.base_url = httpx.URL(second)
        assert browser.get("/account", follow_redirects=False).status_code == 200
    with site.sessions.begin() as session:
        production_id = publish(session, "Réglages partagés").id
    # Every process writes the site's public address, whichever address it was reached at.
    for url in [cluster.url, *cluster.web]:
        found = httpx.get(f"{url}/api/v1/productions/{production_id}").json()
        assert found["page_url"].startswith(cluster.url + "/"), url
        assert found["hls_url"].startswith(cluster.url + "/store/"), url


def test_the_bucket_is_read_only_through_the_site(cluster: Cluster) -> None:
    cluster.s3.client().put_object(Bucket=cluster.s3.bucket, Key="productions/x/a.m3u8", Body=b"#")
    store = f"{cluster.url}/store/productions/x/a.m3u8"
    assert httpx.get(store).content == b"#"
    for method in ("PUT", "DELETE", "POST"):
        assert httpx.request(method, store, content=b"forged").status_code == 403, method
    assert httpx.get(store).content == b"#"
    # Nor a listing of the bucket, nor of the server's buckets.
    for path in ("/store/", "/store/productions/", "/store/..%2F", "/store/%2E%2E/"):
        answer = httpx.get(cluster.url + path)
        assert "ListBucketResult" not in answer.text, path
        assert "ListAllMyBucketsResult" not in answer.text, path


def test_media_made_private_on_one_web_process_is_refused_through_the_site(
    cluster: Cluster, site: Services
) -> None:
    make_user(site, "curator@example.org", "admin")
    with site.sessions.begin() as session:
        production_id = publish(session, "Répétition fermée").id
    segment = f"productions/{production_id}/v1/seg_00001.m4s"
    site.store.put_bytes(segment, b"segment")
    site.store.put_bytes(f"originals/{production_id}/capture.mov", b"raw capture")
    assert httpx.get(f"{cluster.url}/store/{segment}").content == b"segment"

    with httpx.Client(base_url=cluster.web[0]) as admin:
        csrf = login(admin, "curator@example.org")
        unpublish = f"/admin/productions/{production_id}/unpublish"
        answer = admin.post(unpublish, data={"csrf_token": csrf}, follow_redirects=False)
        assert answer.status_code == 303, answer.text
    # The web process pushes the bucket's policy in the background; nginx asks anonymously.
    deadline = time.monotonic() + 20
    while (status := httpx.get(f"{cluster.url}/store/{segment}").status_code) != 403:
        assert time.monotonic() < deadline, (status, cluster.logs())
        time.sleep(0.1)
    # Originals are never the public's.
    original = f"{cluster.url}/store/originals/{production_id}/capture.mov"
    assert httpx.get(original).status_code == 403


def test_a_worker_killed_mid_transcode_leaves_the_job_to_the_other(
    cluster: Cluster, site: Services, capture: Path
) -> None:
    production_id, job_id = register(site, capture)
    table.enqueue(site, job_id)
    job = wait_for(cluster, site, job_id, lambda j: j.progress > 0, "made progress")
    assert job.state == "running" and job.worker is not None
    # worker is "host:pid:thread"
    pid = int(job.worker.split(":")[1])
    (victim,) = [w for w in cluster.workers if w.pid == pid]
    crash(victim.popen)

    job = wait_for(cluster, site, job_id, lambda j: j.state in ("done", "failed"), "finished")
    assert (job.state, job.attempts, job.error) == ("done", 2, None), cluster.logs()
    (survivor,) = [w for w in cluster.workers if w is not victim]
    assert f"job {job_id}: done" in survivor.log_text()
    assert len(versions(site, production_id)) == 1
    assert production_row(site, production_id).status == "ready"
    # Playable from the site's address, nginx in front of the web processes and of the bucket.
    found = httpx.get(f"{cluster.url}/api/v1/productions/{production_id}").json()
    assert found["status"] == "ready"
    assert found["hls_url"].startswith(cluster.url + "/store/")
    hls_check.check_hls_url(found["hls_url"])
    cluster.restart(victim.name)


def test_a_tus_upload_through_nginx_lands_its_chunks_on_both_web_processes(
    cluster: Cluster, site: Services, capture: Path
) -> None:
    make_user(site, "upload@example.org")
    client = tus_client.TusClient(
        f"{cluster.url}/api/v1/uploads/",
        headers={"Authorization": f"Bearer {token_for(site, 'upload@example.org')}"},
    )
    options = {"chunk_size": 256 * 1024, "metadata": {"filename": capture.name}}
    with uploading(client, capture, **options) as uploader:
        uploader.upload()
    path = httpx.URL(uploader.url).path
    served = {
        line.rsplit(" ", 1)[1] for line in cluster.access_log() if f'"PATCH {path}" 204 ' in line
    }
    assert served == {url.removeprefix("http://") for url in cluster.web}, served
    # The last PATCH is answered first; the original is completed in the bucket right after.
    deadline = time.monotonic() + WAIT
    while (upload := upload_row(site, uploader.url)).state != "stored":
        assert time.monotonic() < deadline, (upload.state, cluster.logs())
        time.sleep(0.05)
    assert upload.production_id is not None
    original = production_row(site, upload.production_id).original_key
    assert original is not None
    stored = site.store.read_bytes(original)
    assert hashlib.sha256(stored).digest() == hashlib.sha256(capture.read_bytes()).digest()


def test_a_production_made_private_on_one_web_process_is_gone_from_the_other_within_a_second(
    cluster: Cluster, site: Services
) -> None:
    make_user(site, "admin@example.org", "admin")
    with site.sessions.begin() as session:
        production = publish(session, "Bientôt privé")
        production_id, slug = production.id, production.slug
    first, second = cluster.web
    api = f"{second}/api/v1/productions/{production_id}"
    page = f"{second}/productions/{slug}"
    # Seen by an anonymous visitor on the second process: in its page cache from now on.
    assert httpx.get(api).status_code == 200
    assert httpx.get(page).status_code == 200

    with httpx.Client(base_url=first) as admin:
        csrf = login(admin, "admin@example.org")
        answer = admin.post(
            f"/admin/productions/{production_id}/unpublish",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
    changed = time.monotonic()
    while (statuses := (httpx.get(api).status_code, httpx.get(page).status_code)) != (404, 404):
        # page_cache_seconds is 10: without a shared invalidation it would still be served.
        assert time.monotonic() - changed < 1.0, statuses
        time.sleep(0.05)


def database_connections(cluster: Cluster, allowed: bool) -> None:
    """The cluster's database closed to new connections and its sessions ended (the database
    "stops" without stopping the server the other tests use), or opened again."""
    set_connections(cluster.database_url, allowed)


def readiness(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code
    except httpx.TransportError:
        return 0


def wait_for_readiness(cluster: Cluster, expected: int) -> None:
    deadline = time.monotonic() + 15
    for url in cluster.web:
        while (status := readiness(url)) != expected:
            assert time.monotonic() < deadline, f"{url}/readyz answers {status}"
            time.sleep(0.1)


def test_readiness_goes_false_while_the_database_is_stopped(cluster: Cluster) -> None:
    assert [readiness(url) for url in [cluster.url, *cluster.web]] == [200, 200, 200]
    database_connections(cluster, allowed=False)
    try:
        wait_for_readiness(cluster, 503)
        # nginx goes on answering: the site says it is down rather than hanging.
        assert readiness(cluster.url) == 503
    finally:
        database_connections(cluster, allowed=True)
    wait_for_readiness(cluster, 200)
    assert readiness(cluster.url) == 200


def test_the_site_answers_while_one_web_process_is_down(cluster: Cluster) -> None:
    # Last: the web process stays down.
    down = cluster.processes["web-1"]
    os.killpg(down.pid, signal.SIGKILL)
    down.popen.wait(timeout=10)
    # nginx tries the other when a connection is refused (GET is retried; a PATCH never is).
    for _ in range(6):
        assert httpx.get(f"{cluster.url}/api/v1/productions").status_code == 200
