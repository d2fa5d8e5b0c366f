"""Segmented transcoding: a long video cut into chunks that any worker encodes, published in
order as they come, then assembled into one version.

One ffmpeg on one machine makes a one-hour concert wait for most of an hour. A video that
``transcoder.segmented.chunked`` says is long enough is cut on segment boundaries
(``plan_chunks``); each chunk is a job of its own (type ``chunk``, see ``table.queue_chunks``)
with its own lease, so any worker claims it, and a chunk whose worker dies is the only work done
again. Chunk jobs have no production: only their transcode (``parent_id``) knows it.

The transcode's worker (the parent) hands the chunks to the workers, then:

- runs the shared pass beside them (the audio rendition of the whole file, loudness, poster
  and storyboard: ``Transcoder.encode_shared``), in a thread;
- claims and encodes chunks itself while any is queued, so one worker alone finishes the job;
- publishes what is done in order (chunk 0, then 1…): growing EVENT playlists and, once every
  rendition has begun, the preview (``preview``);
- picks up a chunk whose worker stopped answering without waiting for the sweeper;
- once every chunk is done, assembles the VOD playlists from the chunks' facts and publishes
  them; ``ingest`` then flips the version as for a transcode in one pass.

Each chunk worker uploads its segments as they are finished and records their facts in its
row (``output``), where the parent reads them: segments never travel through the parent.
A new attempt of the transcode keeps the chunks done before, so its segments stay in the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from cite_live.i18n import N_
from cite_live.jobs import scratch, table
from cite_live.jobs.leases import Lease, LeaseLost, holder_name
from cite_live.jobs.preview import Preview
from cite_live.models import Job, Production, utcnow
from cite_live.services import Services
from cite_live.storage import media_key, version_prefix
from transcoder import InputRefused, MediaInfo, TranscodeError, TranscodeFailed, Transcoder, boxes
from transcoder.chunks import Chunk, chunked, plan_chunks
from transcoder.commands import INIT_SEGMENT
from transcoder.ladder import AUDIO_FOLDER
from transcoder.live import LiveOutput, SegmentFacts, media_playlist, preview_master
from transcoder.pipeline import TranscodeResult
from transcoder.segmented import ChunkOutput, SharedOutput

log = logging.getLogger("cite_live.segmented")

CHUNK = "chunk"
# How often the parent looks at its chunks while none is left for it to encode.
LOOK_SECONDS = 0.5
# Sentences for the artist, kept in the jobs table and translated where they are shown.
CHUNK_FAILED = N_("A part of this file could not be converted.")
STOPPED = N_("The processing of this file was stopped.")

__all__ = ["CHUNK", "Segmented", "applies", "run_chunk"]


def applies(services: Services, info: MediaInfo, transcoder: Transcoder) -> bool:
    """Whether the file ``info`` describes is transcoded in chunks (``jobs.chunk_seconds``)."""
    return services.settings.jobs.chunk_seconds > 0 and chunked(info, transcoder.settings)


# --- a chunk, wherever it runs ---------------------------------------------------------------


def _facts(output: ChunkOutput) -> dict[str, list[SegmentFacts]]:
    return {name: list(part.segments) for name, part in output.rungs.items()}


class _ChunkPublisher:
    """Uploads a chunk's segments as they are finished and records their facts in its row."""

    def __init__(
        self, services: Services, job_id: int, holder: str, lease: Lease, prefix: str, out: Path
    ) -> None:
        self.services = services
        self.job_id = job_id
        self.holder = holder
        self.lease = lease
        self.prefix = prefix
        self.out = out
        self.inits: set[str] = set()
        self.codecs: dict[str, str] = {}
        self.segments: dict[str, list[list[Any]]] = {}
        self.after: Callable[[], None] | None = None

    def resume(self, output: dict[str, Any] | None) -> None:
        """Start from what an earlier attempt of the chunk recorded: published segments stay
        listed (re-encoded ones replace them under the same names), so no playlist shrinks."""
        if output:
            self.codecs = dict(output.get("codecs", {}))
            self.segments = {k: list(v) for k, v in output.get("segments", {}).items()}

    def _upload(self, relative: str) -> None:
        self.services.store.put_file(media_key(self.prefix, relative), self.out / relative)

    def _init(self, rung: str) -> None:
        if rung in self.inits:
            return
        init = self.out / rung / INIT_SEGMENT
        entry = boxes.sample_entry(init)
        if entry is None:
            raise TranscodeFailed("The converted stream is incomplete.")
        self._upload(f"{rung}/{INIT_SEGMENT}")
        self.codecs[rung] = entry.codec
        self.inits.add(rung)

    def _record(self, output: dict[str, Any], *, done: bool = False) -> None:
        if not table.record_output(self.services, self.job_id, self.holder, output, done=done):
            raise LeaseLost(self.job_id)

    def __call__(self, new: dict[str, list[SegmentFacts]]) -> None:
        self.lease.check()
        for rung, segments in new.items():
            self._init(rung)
            listed = self.segments.setdefault(rung, [])
            known = {entry[0]: number for number, entry in enumerate(listed)}
            for segment in segments:
                self._upload(f"{rung}/{segment.uri}")
                if segment.uri in known:
                    listed[known[segment.uri]] = segment.to_json()
                else:
                    listed.append(segment.to_json())
        self._record({"codecs": self.codecs, "segments": self.segments})
        if self.after is not None:
            self.after()

    def finish(self, output: ChunkOutput) -> None:
        """Upload what the chunk's final output lists and was not reported (a short tail
        joined at the end), then mark the chunk done with its final facts."""
        self.lease.check()
        reported = {
            (rung, entry[0]) for rung, entries in self.segments.items() for entry in entries
        }
        final = _facts(output)
        for rung, segments in final.items():
            self._init(rung)
            for segment in segments:
                if (rung, segment.uri) not in reported:
                    self._upload(f"{rung}/{segment.uri}")
        self._record(
            {
                "codecs": self.codecs,
                # Everything ever published, so that the parent can remove what the final
                # playlists no longer list.
                "published": sorted({f"{rung}/{uri}" for rung, uri in reported}),
                "segments": {k: [s.to_json() for s in v] for k, v in final.items()},
                "final": output.to_json(),
            },
            done=True,
        )


def _encode(
    services: Services,
    job_id: int,
    holder: str,
    lease: Lease,
    prefix: str,
    transcoder: Transcoder,
    source: Path,
    info: MediaInfo,
    task: dict[str, Any],
    earlier: dict[str, Any] | None,
    work: Path,
    after: Callable[[], None] | None = None,
) -> None:
    out = work / "chunk"
    out.mkdir(exist_ok=True)
    publisher = _ChunkPublisher(services, job_id, holder, lease, prefix, out)
    publisher.resume(earlier)
    publisher.after = after
    output = transcoder.encode_chunk(
        source, info, Chunk.from_json(task), out, on_segments=publisher
    )
    publisher.finish(output)


@dataclass
class _ChunkJob:
    task: dict[str, Any]
    output: dict[str, Any] | None
    prefix: str
    source_key: str


def _load_chunk(services: Services, job_id: int) -> _ChunkJob | None:
    with services.sessions() as session:
        job = session.get(Job, job_id)
        parent = session.get(Job, job.parent_id) if job and job.parent_id else None
        production = (
            session.get(Production, parent.production_id)
            if parent and parent.production_id
            else None
        )
        if job is None or job.task is None or parent is None or production is None:
            return None
        source_key = parent.original_key or production.original_key
        if source_key is None:
            return None
        prefix = version_prefix(production.id, f"j{parent.id}")
        return _ChunkJob(job.task, job.output, prefix, source_key)


def run_chunk(services: Services, job_id: int) -> None:
    """Claim the chunk job ``job_id`` and encode it; return quietly when it is taken or gone.

    A chunk the transcoder refuses fails (its transcode then fails with it); the store being
    unreachable or anything unexpected puts it back in the queue while attempts remain.
    """
    holder = holder_name()
    if not table.claim(services, job_id, holder):
        return
    loaded = _load_chunk(services, job_id)
    if loaded is None:
        _fail_chunk(services, job_id, CHUNK_FAILED, holder)
        return
    lease = Lease(services, job_id, holder)
    started = time.monotonic()
    # How the attempt ended, for the metrics (as ingest's transcodes).
    outcome = "interrupted"
    try:
        with lease, scratch.for_job(services.settings.tmp_dir, job_id, holder) as work:
            report = table.progress_reporter(services, job_id, holder)
            with services.store.available_locally(loaded.source_key, work) as source:
                transcoder = services.transcoder(report, tmp_dir=work)
                info = transcoder.probe(source)
                _encode(
                    services,
                    job_id,
                    holder,
                    lease,
                    loaded.prefix,
                    transcoder,
                    source,
                    info,
                    loaded.task,
                    loaded.output,
                    work,
                )
        outcome = "done"
    except LeaseLost:
        outcome = "lease_lost"
        log.warning("chunk job %d: lease lost; another worker runs it now", job_id)
    except (InputRefused, TranscodeError) as exc:
        outcome = "failed"
        _fail_chunk(services, job_id, exc.message, holder)
        raise
    except Exception:
        outcome = "error"
        if not table.requeue(services, job_id, CHUNK_FAILED, holder=holder):
            _fail_chunk(services, job_id, CHUNK_FAILED, holder)
        raise
    finally:
        services.metrics.job_seconds.labels(CHUNK, outcome).observe(time.monotonic() - started)


def _fail_chunk(services: Services, job_id: int, message: str, holder: str) -> None:
    with services.sessions.begin() as session:
        if table.fail(session, job_id, message, holder=holder) is not None:
            services.metrics.job_failures.labels(CHUNK).inc()


# --- the transcode's side ------------------------------------------------------------------


@dataclass
class _Shared:
    """The shared pass, run in a thread beside the chunks; what it published so far."""

    output: SharedOutput | None = None
    error: BaseException | None = None
    codec: str | None = None
    audio: list[SegmentFacts] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


class _Stopped(Exception):
    """The transcode stopped while its shared pass ran."""


@dataclass
class _Row:
    id: int
    chunk: int
    state: str
    progress: float
    output: dict[str, Any] | None
    error: str | None
    lease_until: datetime | None


class Segmented:
    """One attempt of a segmented transcode, run by the worker holding the transcode's lease."""

    def __init__(
        self,
        services: Services,
        job_id: int,
        holder: str,
        lease: Lease,
        source: Path,
        info: MediaInfo,
        work: Path,
        prefix: str,
        language: str | None,
        preview: Preview,
        progress: Callable[[float], None],
    ) -> None:
        self.services = services
        self.job_id = job_id
        self.holder = holder
        self.lease = lease
        self.source = source
        self.info = info
        self.work = work
        self.prefix = prefix
        self.language = language
        self.preview = preview
        self.progress = progress
        self.transcoder = services.transcoder(tmp_dir=work)
        self.planned = self.transcoder.planned_video(info)
        self.shared = _Shared()
        self.published: dict[str, int] = {}
        # Publishing happens on this thread (chunks) and on the shared pass's (sound).
        self.publishing = threading.Lock()

    # -- the loop --

    def run(self) -> tuple[TranscodeResult, list[str]]:
        """Encode and publish every chunk; return the assembled result (its files are
        published already) and the keys published on the way that it no longer lists."""
        chunks = plan_chunks(self.info, self.transcoder.settings)
        with self.services.sessions.begin() as session:
            queued = table.queue_chunks(session, self.job_id, [c.to_json() for c in chunks])
        for chunk_id in queued:
            table.enqueue(self.services, chunk_id)
        thread = threading.Thread(target=self._shared_pass, name=f"shared-j{self.job_id}")
        thread.start()
        try:
            rows = self._until_done(thread)
        finally:
            self.shared.stop.set()
            thread.join()
        if self.shared.error is not None:
            raise self.shared.error
        return self._assemble(rows)

    def _until_done(self, thread: threading.Thread) -> list[_Row]:
        while True:
            self.lease.check()
            if self.shared.error is not None:
                raise self.shared.error
            rows = self._rows()
            failed = next((row for row in rows if row.state == "failed"), None)
            if failed is not None:
                raise TranscodeFailed(failed.error or CHUNK_FAILED)
            self._publish(rows)
            self._report(rows)
            if all(row.state == "done" for row in rows) and not thread.is_alive():
                return rows
            waiting = next((row for row in rows if row.state == "queued"), None)
            if waiting is not None and table.claim(self.services, waiting.id, self.holder):
                self._encode_here(waiting)
                continue
            self._take_back_stopped(rows)
            time.sleep(LOOK_SECONDS)

    def _rows(self) -> list[_Row]:
        with self.services.sessions() as session:
            return [
                _Row(
                    job.id,
                    job.chunk or 0,
                    job.state,
                    job.progress,
                    job.output,
                    job.error,
                    job.lease_until,
                )
                for job in table.chunks_of(session, self.job_id)
            ]

    def _encode_here(self, row: _Row) -> None:
        """Encode a chunk this worker claimed, publishing as it goes."""
        holder = self.holder
        lease = Lease(self.services, row.id, holder)
        try:
            with lease, scratch.for_job(self.services.settings.tmp_dir, row.id, holder) as work:
                report = table.progress_reporter(self.services, row.id, holder)
                transcoder = self.services.transcoder(report, tmp_dir=work)
                _encode(
                    self.services,
                    row.id,
                    holder,
                    lease,
                    self.prefix,
                    transcoder,
                    self.source,
                    self.info,
                    self._task(row.id),
                    row.output,
                    work,
                    after=lambda: self._publish(self._rows()),
                )
        except LeaseLost:
            log.warning("chunk job %d: lease lost; another worker runs it now", row.id)
        except (InputRefused, TranscodeError) as exc:
            with self.services.sessions.begin() as session:
                table.fail(session, row.id, exc.message, holder=holder)
            raise
        except Exception:
            # The store, or anything unexpected: the chunk goes back for whoever comes next.
            if not table.requeue(self.services, row.id, CHUNK_FAILED, holder=holder):
                with self.services.sessions.begin() as session:
                    table.fail(session, row.id, CHUNK_FAILED, holder=holder)
            raise

    def _task(self, chunk_id: int) -> dict[str, Any]:
        with self.services.sessions() as session:
            job = session.get(Job, chunk_id)
            assert job is not None and job.task is not None
            return job.task

    def _take_back_stopped(self, rows: Sequence[_Row]) -> None:
        """A chunk whose worker stopped renewing goes back to the queue now, not at the next
        sweep: this worker is waiting for it."""
        now = utcnow()
        for row in rows:
            expired = row.lease_until is not None and row.lease_until < now
            if row.state == "running" and expired:
                requeued = table.requeue(self.services, row.id, CHUNK_FAILED, expired_by=now)
                if requeued:
                    log.warning("chunk job %d: its worker stopped answering; queued again", row.id)

    def _report(self, rows: Sequence[_Row]) -> None:
        if rows:
            done = sum(1.0 if row.state == "done" else row.progress for row in rows)
            self.progress(0.95 * done / len(rows))

    # -- the shared pass --

    def _shared_pass(self) -> None:
        shared = self.shared

        def stopping(fraction: float) -> None:
            # Raised from ffmpeg's progress, this stops it (the transcode ended elsewhere).
            if shared.stop.is_set():
                raise _Stopped

        transcoder = self.services.transcoder(stopping, tmp_dir=self.work)
        out = self.work / "shared"
        out.mkdir(exist_ok=True)

        def on_segments(new: dict[str, list[SegmentFacts]]) -> None:
            if shared.stop.is_set():
                raise _Stopped
            for rung, segments in new.items():
                if shared.codec is None:
                    entry = boxes.sample_entry(out / rung / INIT_SEGMENT)
                    if entry is None:
                        raise TranscodeFailed("The converted stream is incomplete.")
                    self._put(out, f"{rung}/{INIT_SEGMENT}")
                    shared.codec = entry.codec
                for segment in segments:
                    self._put(out, f"{rung}/{segment.uri}")
                with shared.lock:
                    shared.audio += segments
            # The sound may be what the preview was waiting for.
            self._publish(self._rows())

        try:
            shared.output = transcoder.encode_shared(
                self.source, self.info, out, on_segments=on_segments
            )
        except _Stopped:
            pass
        except BaseException as exc:
            shared.error = exc

    def _put(self, folder: Path, relative: str) -> None:
        self.services.store.put_file(media_key(self.prefix, relative), folder / relative)

    # -- publishing --

    def _publish(self, rows: Sequence[_Row]) -> None:
        """Growing playlists of what is done in order, from chunk 0 on, and the master once
        every rendition has begun. Never fewer segments than published before."""
        with self.publishing:
            self._publish_locked(rows)

    def _publish_locked(self, rows: Sequence[_Row]) -> None:
        video = [plan.name for plan in self.planned if plan.kind == "video"]
        segments: dict[str, list[SegmentFacts]] = {name: [] for name in video}
        codecs: dict[str, str] = {}
        for row in sorted(rows, key=lambda row: row.chunk):
            output = row.output or {}
            codecs.update(output.get("codecs", {}))
            for name in video:
                entries = output.get("segments", {}).get(name, [])
                segments[name] += [SegmentFacts.from_json(entry) for entry in entries]
            if row.state != "done":
                break
        if any(plan.name == AUDIO_FOLDER for plan in self.planned):
            with self.shared.lock:
                segments[AUDIO_FOLDER] = list(self.shared.audio)
            if self.shared.codec:
                codecs[AUDIO_FOLDER] = self.shared.codec
        counts = {name: len(listed) for name, listed in segments.items()}
        if not all(counts.values()) or set(codecs) != set(counts):
            return
        if counts == self.published or any(
            counts[name] < self.published.get(name, 0) for name in counts
        ):
            return
        playlists = {
            f"{name}/index.m3u8": media_playlist(
                listed,
                map_uri=INIT_SEGMENT,
                ended=False,
                target_duration=self.transcoder.settings.segment_seconds,
            )
            for name, listed in segments.items()
        }
        playlists["master.m3u8"] = preview_master(self.planned, codecs, self.language)
        self.lease.check()
        self.preview(LiveOutput([], playlists))
        self.published = counts

    # -- the end --

    def _assemble(self, rows: Sequence[_Row]) -> tuple[TranscodeResult, list[str]]:
        assert self.shared.output is not None
        outputs = [ChunkOutput.from_json((row.output or {})["final"]) for row in rows]
        out = self.work / "final"
        out.mkdir(exist_ok=True)
        result = self.transcoder.assemble(
            self.info, outputs, self.shared.output, out, language=self.language
        )
        shared_dir = self.work / "shared"
        self.lease.check()
        shared = self.shared.output
        for relative in (shared.poster, shared.storyboard_image, shared.storyboard_vtt):
            if relative is not None:
                self._put(shared_dir, relative)
        playlists = sorted(result.files, key=lambda path: ("/" not in path, path))
        for relative in playlists:
            self._put(out, relative)
        listed = {
            f"{name}/{segment.uri}" for name, facts in _listed(outputs).items() for segment in facts
        }
        published = {path for row in rows for path in (row.output or {}).get("published", [])}
        leftovers = [media_key(self.prefix, path) for path in sorted(published - listed)]
        return result, leftovers


def _listed(outputs: Sequence[ChunkOutput]) -> dict[str, list[SegmentFacts]]:
    listed: dict[str, list[SegmentFacts]] = {}
    for output in outputs:
        for name, facts in _facts(output).items():
            listed.setdefault(name, []).extend(facts)
    return listed


def stop(session: Any, job_id: int, message: str = STOPPED) -> None:
    """The transcode ``job_id`` is over (failed): its chunks that are not done stop."""
    table.stop_chunks(session, job_id, message)


def has_chunks(services: Services, job_id: int) -> bool:
    """Whether the transcode ``job_id`` was cut into chunks by an earlier attempt."""
    with services.sessions() as session:
        return session.scalars(select(Job.id).where(Job.parent_id == job_id)).first() is not None
