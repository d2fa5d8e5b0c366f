"""Playable while processing: what a running transcode publishes, as the store sees it.

The store here records every write. A check runs inside the transcode, at each growing master
playlist written, so what it finds was there while ffmpeg still ran.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import m3u8
import pytest
from sqlalchemy import select

from cite_live.jobs import preview
from cite_live.jobs.ingest import run_transcode, submit_file
from cite_live.models import Job, MediaVersion, Production
from cite_live.services import Services
from cite_live.storage import LIVE_PLAYLIST, LocalStore, StorageError

Media = Callable[[str], Path]


@dataclass
class Write:
    key: str
    text: str | None = None
    cache_control: str | None = None


class RecordingStore(LocalStore):
    """A local store that remembers its writes and calls ``on_live_master`` at each growing
    master playlist, just after writing it; with ``fail_after_preview`` it stops taking files
    once a growing playlist was written (the store going away mid-transcode)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writes: list[Write] = []
        self.on_live_master: Callable[[str], None] | None = None
        self.fail_after_preview = False

    def put_file(self, key: str, path: Path) -> None:
        if self.fail_after_preview and any(w.cache_control for w in self.writes):
            raise StorageError("the store went away")
        super().put_file(key, path)
        text = path.read_text("utf-8") if key.endswith(".m3u8") else None
        self.writes.append(Write(key, text))

    def put_bytes(self, key: str, data: bytes, *, cache_control: str | None = None) -> None:
        super().put_bytes(key, data, cache_control=cache_control)
        text = data.decode("utf-8") if key.endswith(".m3u8") else None
        self.writes.append(Write(key, text, cache_control))
        if key.endswith("/master.m3u8") and cache_control and self.on_live_master:
            self.on_live_master(key)


def decoded_seconds(store: LocalStore, prefix: str, playlist_key: str) -> float:
    """Seconds ffprobe decodes from a rendition's init segment and the segments its playlist
    lists, read from the store: what a player joining now could play of it."""
    listed = m3u8.M3U8(store.path_for(playlist_key).read_text("utf-8"), strict=True)
    folder = playlist_key.rsplit("/", 1)[0]
    init = listed.segment_map[0].uri
    data = b"".join(
        store.path_for(f"{folder}/{uri}").read_bytes()
        for uri in [init, *(segment.uri for segment in listed.segments)]
    )
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", "-"],
        input=data,
        capture_output=True,
        timeout=60,
        check=True,
    )
    return float(out.stdout.decode().strip())


def test_a_video_is_playable_while_it_is_processed_and_its_preview_becomes_the_version(
    services: Services, media: Media
) -> None:
    assert isinstance(services.store, LocalStore)
    store = services.store = RecordingStore(services.store.root)
    production_id, job_id = submit_file(services, media("video_1080p_h264_aac"))
    prefix = f"productions/{production_id}/j{job_id}/"
    seen: list[dict[str, object]] = []

    def while_running(master_key: str) -> None:
        master = m3u8.M3U8(store.path_for(master_key).read_text("utf-8"), strict=True)
        # Every rung from the start, and the shared audio rendition with its language.
        assert [p.uri for p in master.playlists] == [
            # The 2 Mb/s source gets no 720p rung: it would cost what its 1080p one does.
            f"{name}/index.m3u8"
            for name in ("v1080", "v480", "v360", "v240")
        ]
        assert [(m.type, m.uri, m.language) for m in master.media] == [
            ("AUDIO", "audio/index.m3u8", "fr")
        ]
        playable = {}
        for uri in [*(p.uri for p in master.playlists), "audio/index.m3u8"]:
            key = prefix + uri
            listed = m3u8.M3U8(store.path_for(key).read_text("utf-8"), strict=True)
            assert listed.playlist_type == "event" and not listed.is_endlist, uri
            playable[uri] = decoded_seconds(store, prefix, key)
            assert playable[uri] >= 5.9, (uri, playable[uri])
        with services.sessions() as session:
            production = session.get(Production, production_id)
            versions = session.scalars(
                select(MediaVersion).where(MediaVersion.production_id == production_id)
            ).all()
            assert production is not None
            seen.append(
                {
                    "status": production.status,
                    "current": production.current_version_id,
                    "versions": [(v.id, v.state, v.master_key) for v in versions],
                    "playable": playable,
                }
            )

    store.on_live_master = while_running
    run_transcode(services, job_id)

    assert seen, "the growing playlists were published while the transcode ran"
    assert all(s["status"] == "processing" and s["current"] is None for s in seen)
    # The first look happens just before its preview row is added; the later ones find it.
    assert seen[0]["versions"] == []
    previews = {v for s in seen[1:] for v in s["versions"]}  # type: ignore[attr-defined]
    with services.sessions() as session:
        production = session.get(Production, production_id)
        versions = session.scalars(
            select(MediaVersion).where(MediaVersion.production_id == production_id)
        ).all()
        assert production is not None and production.status == "ready"
        assert len(versions) == 1 and versions[0].state == "published"
        assert versions[0].id == production.current_version_id
        if previews:
            # The row that played while processing is the published one, at the same address.
            assert previews == {(versions[0].id, preview.PREVIEW, prefix + "master.m3u8")}
        assert versions[0].master_key == prefix + "master.m3u8"

    written: set[str] = set()
    finals = {w.key: w.text for w in store.writes if w.text is not None and not w.cache_control}
    for write in store.writes:
        if write.cache_control is not None:
            assert write.cache_control == LIVE_PLAYLIST
            if write.key.endswith("/index.m3u8"):
                listed = m3u8.M3U8(write.text or "", strict=True)
                folder = write.key.rsplit("/", 1)[0]
                # Only what is already in the store, and what the final playlist lists too
                # (but the last segment, which may be joined with a short tail at the end).
                uris = [s.uri for s in listed.segments]
                assert all(f"{folder}/{u}" in written for u in uris), write.key
                final = [s.uri for s in m3u8.loads(finals[write.key] or "").segments]
                assert uris[:-1] == final[: len(uris) - 1], write.key
            else:
                media_lists = [w.key for w in store.writes if w.key.endswith("/index.m3u8")]
                assert media_lists, "the master comes after the playlists it lists"
        written.add(write.key)
    # At the end: VOD playlists, and nothing in the store that no playlist or artwork names.
    final_master = m3u8.loads(store.path_for(prefix + "master.m3u8").read_text("utf-8"))
    assert final_master.iframe_playlists, "the final master is the measured one"
    keys = set(store.list(prefix))
    named = {prefix + "master.m3u8"}
    for uri in [*(p.uri for p in final_master.playlists), "audio/index.m3u8"]:
        listed = m3u8.M3U8(store.path_for(prefix + uri).read_text("utf-8"), strict=True)
        assert listed.playlist_type == "vod" and listed.is_endlist
        folder = prefix + uri.rsplit("/", 1)[0]
        named |= {prefix + uri, f"{folder}/{listed.segment_map[0].uri}"}
        named |= {f"{folder}/{s.uri}" for s in listed.segments}
    for iframes in final_master.iframe_playlists:
        named.add(prefix + iframes.uri)
    leftovers = {k for k in keys - named if not k.endswith((".jpg", ".vtt", ".json"))}
    assert leftovers == set()


def test_an_attempt_that_stops_after_its_preview_takes_the_preview_with_it(
    services: Services, media: Media
) -> None:
    assert isinstance(services.store, LocalStore)
    store = services.store = RecordingStore(services.store.root)
    store.fail_after_preview = True
    production_id, job_id = submit_file(services, media("video_1080p_h264_aac"))
    with pytest.raises(StorageError):
        run_transcode(services, job_id)
    assert any(w.cache_control for w in store.writes), "a preview was published first"
    with services.sessions() as session:
        job = session.get(Job, job_id)
        versions = session.scalars(
            select(MediaVersion).where(MediaVersion.production_id == production_id)
        ).all()
        assert job is not None and job.state == "queued"
        assert versions == []
    assert store.list(f"productions/{production_id}/") == []


def test_a_new_attempt_clears_what_a_killed_one_left_playable(
    services: Services, media: Media
) -> None:
    production_id, job_id = submit_file(services, media("wav_96k_mono"))
    prefix = f"productions/{production_id}/j{job_id}/"
    # What an attempt killed with SIGKILL leaves: a preview row and half a rendition.
    services.store.put_bytes(prefix + "a64/seg_00001.m4s", b"half", cache_control=LIVE_PLAYLIST)
    services.store.put_bytes(prefix + "master.m3u8", b"#EXTM3U\n", cache_control=LIVE_PLAYLIST)
    with services.sessions.begin() as session:
        session.add(
            MediaVersion(
                production_id=production_id,
                name=preview.version_name(job_id),
                state=preview.PREVIEW,
                prefix=prefix,
                master_key=prefix + "master.m3u8",
            )
        )
    run_transcode(services, job_id)
    with services.sessions() as session:
        versions = session.scalars(
            select(MediaVersion).where(MediaVersion.production_id == production_id)
        ).all()
        assert [(v.state, v.prefix) for v in versions] == [("published", prefix)]
    assert isinstance(services.store, LocalStore)
    # The segment the killed attempt left half-written is this attempt's own now.
    assert services.store.path_for(prefix + "a64/seg_00001.m4s").read_bytes() != b"half"
