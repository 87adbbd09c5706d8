"""`inlink ingest FILE...`: WARC/WAT files -> fetch records -> committed, resumable batches.

Reads with sources.warc, extracts in a process pool (file order kept), and applies batches
through IndexWriter together with the file's manifest position. See docs/ingest.md.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import hashlib
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from inlink.errors import ArchiveError
from inlink.extract import DEFAULT_LIMITS, ExtractLimits
from inlink.index.gcpolicy import HeldSetting, raise_young_threshold, young_gc_threshold
from inlink.index.rows import Packed, PackedFetch, pack_fetches, unpack_fetches
from inlink.index.store import Store
from inlink.index.writer import BatchStats, IndexWriter, ManifestUpdate, load_manifest
from inlink.sources.record import FetchRecord
from inlink.sources.warc import (
    DEFAULT_READ_LIMITS,
    Damage,
    ReadLimits,
    ReadStats,
    WarcItem,
    check_archive,
    iter_records,
    to_fetch_record,
)

#: Compact (re-sort links by target) after an ingest that added at least this many link rows
#: and at least COMPACT_GROWTH of the rows there were before.
COMPACT_MIN_ROWS = 50_000
COMPACT_GROWTH = 0.25
#: DuckDB's memory cap while compacting after an ingest (the sort spills to disk past it), so
#: the ingest process stays under 1 GiB even when the store's own limit is higher.
COMPACT_MEMORY_LIMIT = "512MB"
#: ... and while ingesting (it only caches blocks the ingest will not read again).
INGEST_MEMORY_LIMIT = "384MB"
#: A batch (one transaction) ends after this many fetch records or this many links, whichever
#: comes first. DuckDB's commit has a fixed cost, and an append of at least a row group
#: (Store.ROW_GROUP_SIZE, 30,720 rows) is written straight to the file, compressed, instead
#: of through the WAL; memory is bounded by two batches (one written while the next is read).
#: A file's first batch is half of that (still at least a row group): the writer, idle until
#: it has one, starts sooner.
BATCH_PAGES = 500
BATCH_LINKS = 62_500
DAMAGE_KEPT = 20            # damaged records listed (with offset and cause) per file
_CHUNK_RECORDS = 16         # records per task sent to a worker
_CHUNK_BYTES = 2 << 20      # ... or this many payload bytes, whichever comes first
# glibc: keep freed parser memory in the heap instead of returning it with mmap/munmap and
# trimming on every page (docs/ingest.md has the measurement).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_THRESHOLD = 32 << 20
_TRIM_THRESHOLD = 256 << 20
_DEFAULT_TRIM_THRESHOLD = 128 << 10     # glibc's


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """Handed to the progress callback after every committed batch."""

    path: str
    position: int
    size: int
    records_ok: int
    records_bad: int
    pages: int


@dataclass(slots=True)
class FileResult:
    """What happened to one file."""

    path: str
    status: str                    # ingested | resumed | already_done | duplicate | error
    job: str | None = None
    size: int = 0
    records_ok: int = 0            # records read and used in this run
    records_bad: int = 0           # damaged records in this run
    skipped: int = 0               # request / warcinfo / non-HTML-metadata ... records
    revisits_unresolved: int = 0
    pages: int = 0                 # fetch records applied
    links_new: int = 0
    links_lost: int = 0
    damage: list[Damage] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


@dataclass(slots=True)
class IngestSummary:
    files: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    compacted: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IngestSummary:
        """The summary back from `dataclasses.asdict` (a server job's JSON result)."""
        files = [FileResult(**{**f, "damage": [Damage(**x) for x in f.get("damage", [])]})
                 for f in d.get("files", [])]
        return cls(files=files, seconds=float(d.get("seconds", 0.0)),
                   compacted=bool(d.get("compacted", False)))

    @property
    def records_ok(self) -> int:
        return sum(f.records_ok for f in self.files)

    @property
    def records_bad(self) -> int:
        return sum(f.records_bad for f in self.files)

    @property
    def pages(self) -> int:
        return sum(f.pages for f in self.files)

    @property
    def links_new(self) -> int:
        return sum(f.links_new for f in self.files)

    @property
    def links_lost(self) -> int:
        return sum(f.links_lost for f in self.files)

    @property
    def errors(self) -> list[str]:
        return [f.error for f in self.files if f.error]

    def line(self) -> str:
        """One line for people: `files=2 records_ok=... records_bad=... pages=...`."""
        return (f"files={len(self.files)} records_ok={self.records_ok} "
                f"records_bad={self.records_bad} pages={self.pages} "
                f"links_new={self.links_new} links_lost={self.links_lost} "
                f"errors={len(self.errors)} seconds={self.seconds:.1f}")


# ---------------------------------------------------------------------------- worker side

Outcome = tuple[int, str, Any]   # (offset, "record" | "damage" | "skip", payload)


def process_chunk(chunk: list[WarcItem | Damage], path: str,
                  limits: ExtractLimits = DEFAULT_LIMITS) -> tuple[list[Outcome], Packed]:
    """Worker task: items -> fetch records, classified and packed into link columns
    (index.rows), in order; a record's payload is its index in the packed group, damage
    passes through."""
    out: list[Outcome] = []
    records: list[FetchRecord] = []
    for item in chunk:
        if isinstance(item, Damage):
            out.append((item.offset, "damage", item.cause))
            continue
        try:
            got = to_fetch_record(item, path, limits)
        except Exception as exc:  # noqa: BLE001 - one hostile record must not end the ingest
            out.append((item.offset, "damage", f"could not process record: {exc!r}"))
            continue
        if got is None:
            out.append((item.offset, "skip", None))
        elif isinstance(got, Damage):
            out.append((got.offset, "damage", got.cause))
        else:
            out.append((item.offset, "record", len(records)))
            records.append(got)
    return out, pack_fetches(records)


def _unpack_chunk(result: tuple[list[Outcome], Packed]) -> list[Outcome]:
    """Driver side: record payloads become PackedFetch values over the chunk's link rows."""
    outcomes, packed = result
    fetches = unpack_fetches(packed)
    return [(offset, what, fetches[payload] if what == "record" else payload)
            for offset, what, payload in outcomes]


def _libc_function(name: str) -> Any:
    """A C library function of this process (glibc's on Linux), or None.

    CDLL(None) opens the process's own symbols: unlike ctypes.util.find_library it runs no
    subprocess (ldconfig), whose fork of a large parent would count as a child of its size.
    """
    try:
        return getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None


def tune_malloc(trim_threshold: int = _TRIM_THRESHOLD) -> bool:
    """Raise glibc's mmap/trim thresholds for this process; False when not on glibc."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD) == 1
    return bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok)


_malloc = HeldSetting()


def malloc_tuned() -> contextlib.AbstractContextManager[None]:
    """glibc's thresholds raised (tune_malloc) while any ingest of this process runs.

    In the ingest's own process it spares DuckDB's and Arrow's buffers a page fault per
    reuse: the 3,000-page bench ingest took 2.25 s instead of 2.33 s (medians of ten
    alternating pairs, -0.11 CPU s; a later, noisier series: 2.45 against 2.49 s); the
    bare reference did not move with the same tuning (docs/ingest.md).
    A server runs ingests as jobs, so the last one to end lowers the trim threshold back to
    glibc's default and trims: the server does not keep the heap's free top. The mmap
    threshold stays at 32 MiB, the ceiling glibc's own dynamic threshold grows to."""

    def apply() -> Callable[[], None]:
        tune_malloc()
        return _untune_malloc

    return _malloc.held(apply)


def _untune_malloc() -> None:
    tune_malloc(_DEFAULT_TRIM_THRESHOLD)
    trim_malloc()


def tune_arrow_pool() -> bool:
    """Make jemalloc Arrow's default memory pool when pyarrow has it; False when not.

    Arrow's default pool (mimalloc) hands each batch's freed buffers back to the system and
    page-faults fresh ones for the next batch: ~0.25 s of the kernel zeroing pages in the
    3,000-page bench ingest. jemalloc keeps them for reuse (docs/ingest.md, "Parallelism
    and the write path"). The pool is the process's from then on; buffers made before keep
    their own pool."""
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:      # a pyarrow built without jemalloc
        return False
    pa.set_memory_pool(pool)
    return True


def trim_malloc() -> bool:
    """Return freed heap memory to the system (glibc malloc_trim); False when not on glibc."""
    malloc_trim = _libc_function("malloc_trim")
    return malloc_trim is not None and bool(malloc_trim(0))


def release_memory() -> None:
    """Return freed memory to the system: glibc's heap (trim_malloc) and Arrow's allocator.

    Arrow allocates the batches' buffers from its own pool (mimalloc or jemalloc), which keeps
    freed pages for reuse: after the 3,000-page bench ingest it held 171 MB of them (RSS 437
    MB, 266 MB after this). Called before the compaction, whose sort needs the memory
    (docs/ingest.md); not after each batch, where re-faulting the pages cost ~5%."""
    trim_malloc()
    pa.default_memory_pool().release_unused()


def _init_worker(malloc: bool) -> None:
    if malloc:
        tune_malloc()
        tune_arrow_pool()
    raise_young_threshold()  # the worker process does nothing else


# ---------------------------------------------------------------------------- driver side

def file_digest(path: Path) -> tuple[str, int]:
    """sha256 hex and size of a file, streamed."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _chunks(items: Iterable[WarcItem | Damage]) -> Iterator[list[WarcItem | Damage]]:
    chunk: list[WarcItem | Damage] = []
    size = 0
    for item in items:
        chunk.append(item)
        if isinstance(item, WarcItem):
            size += len(item.body)
        if len(chunk) >= _CHUNK_RECORDS or size >= _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


class _Pipeline:
    """Chunks in file order -> (pool or inline) -> outcomes in the same order."""

    def __init__(self, pool: cf.ProcessPoolExecutor | None, workers: int, path: str,
                 limits: ExtractLimits, batch_size: int) -> None:
        self.pool = pool
        # Enough chunks in flight to keep the workers busy while the driver waits for a
        # batch to be written (it is written in a thread, so this need not hold a batch).
        self.depth = min(max(2 * workers, batch_size // _CHUNK_RECORDS + 2), 4 * workers + 2)
        self.path = path
        self.limits = limits

    def run(self, chunks: Iterator[list[WarcItem | Damage]]) -> Iterator[Outcome]:
        if self.pool is None:
            for chunk in chunks:
                yield from _unpack_chunk(process_chunk(chunk, self.path, self.limits))
            return
        pending: deque[cf.Future[tuple[list[Outcome], Packed]]] = deque()
        try:
            for chunk in chunks:
                pending.append(self.pool.submit(process_chunk, chunk, self.path, self.limits))
                while len(pending) >= self.depth:
                    yield from _unpack_chunk(pending.popleft().result())
            while pending:
                yield from _unpack_chunk(pending.popleft().result())
        finally:
            for fut in pending:
                fut.cancel()


def _known_digests(store: Store, job: str, limit: int) -> dict[str, int]:
    """Payload digest -> earliest offset, for revisits after a resume point."""
    rows = store.query(
        "SELECT f.evidence_digest, min(f.evidence_offset) FROM fetches f "
        "JOIN batches b USING (batch_id) WHERE b.job = ? AND f.evidence_digest IS NOT NULL "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT ?", [job, limit])
    return {str(d): int(o) for d, o in rows}


def _size_seen(store: Store, size: int) -> bool:
    """Whether a committed ingest job is of a file of this size (it may be this file)."""
    return bool(store.query("SELECT 1 FROM manifests WHERE kind = 'ingest' AND size = ? "
                            "LIMIT 1", [size]))


def _ingest_file(store: Store, path: Path, hashing: cf.Future[tuple[str, int]], size: int,
                 *, fresh: bool, batch_size: int, batch_links_max: int,
                 pipeline: Callable[[str], _Pipeline], read_limits: ReadLimits,
                 progress: Callable[[IngestProgress], None] | None) -> FileResult:
    """`hashing` gives the file's sha256 (file_digest), maybe still being computed; `fresh`:
    no committed job is of a file this size, so none is this file's and the digest (its
    job name) is needed only by the first write, which waits for it in the writer's
    thread (see ingest)."""
    shown = str(path)
    job = None if fresh else f"ingest:{hashing.result()[0]}"
    result = FileResult(shown, "ingested", job=job, size=size)
    manifest = None if job is None else load_manifest(store, job)
    if manifest is not None and manifest["done"]:
        result.status = "already_done"
        return result
    start = int(manifest["position"]) if manifest else 0
    total_ok = int(manifest["records_ok"]) if manifest else 0
    total_bad = int(manifest["records_bad"]) if manifest else 0
    if start > 0:
        result.status = "resumed"
    evidence_path = str(path.resolve())
    known = (_known_digests(store, job, read_limits.revisit_memory)
             if job is not None and start > 0 else None)
    stats = ReadStats()
    items = iter_records(path, start_offset=start, limits=read_limits, known_digests=known,
                         stats=stats)
    writer = None if job is None else IndexWriter(store, job)
    batch: list[PackedFetch] = []
    batch_links = 0
    # One batch is written in a thread while the next is read and extracted (DuckDB works
    # without the GIL); batches still commit one after the other, in file order.
    writing: cf.Future[tuple[int, BatchStats]] | None = None
    write_thread = cf.ThreadPoolExecutor(1, thread_name_prefix="inlink-ingest-writer")

    def finish_write() -> None:
        nonlocal writing
        if writing is None:
            return
        position, applied = writing.result()
        writing = None
        if writer is not None:          # made by the first write (it names the job)
            result.job = writer.job
        result.pages += applied.fetches
        result.links_new += applied.new_links
        result.links_lost += applied.lost_links
        if progress is not None:
            progress(IngestProgress(shown, position, size, applied_ok, applied_bad,
                                    result.pages))

    def write(fetches: list[PackedFetch], position: int, records_ok: int, records_bad: int,
              done: bool) -> tuple[int, BatchStats]:
        # In the writer's thread: a new file's sha256 (its job's name) may still be being
        # computed, and it is the writer that waits for it while the reader goes on (a 1 GB
        # file's took ~0.6 s, more than its first batch).
        nonlocal writer
        digest = hashing.result()[0]
        if writer is None:
            writer = IndexWriter(store, f"ingest:{digest}")
        update = ManifestUpdate(job=writer.job, kind="ingest", path=evidence_path,
                                position=position, records_ok=records_ok,
                                records_bad=records_bad, done=done, digest=digest, size=size)
        return position, writer.apply_packed(fetches, update)

    applied_ok, applied_bad = total_ok, total_bad

    # The first batch is half size (at least a row group): the writer starts sooner.
    limits = (max(1, batch_size // 2), max(1, batch_links_max // 2))

    def commit(position: int, done: bool) -> None:
        nonlocal batch, batch_links, writing, applied_ok, applied_bad, limits
        limits = (batch_size, batch_links_max)
        finish_write()
        applied_ok, applied_bad = total_ok, total_bad
        writing = write_thread.submit(write, batch, position, total_ok, total_bad, done)
        batch, batch_links = [], 0

    try:
        # While a batch is written the workers keep extracting: the pipeline holds up to a
        # batch's worth of chunks in flight (see _Pipeline.depth).
        for offset, what, payload in pipeline(evidence_path).run(_chunks(items)):
            if len(batch) >= limits[0] or batch_links >= limits[1]:
                # Everything before `offset` is in the batch: that is where a resume starts.
                commit(offset, False)
            if what == "damage":
                total_bad += 1
                result.records_bad += 1
                if len(result.damage) < DAMAGE_KEPT:
                    result.damage.append(Damage(offset, str(payload)))
                continue
            total_ok += 1
            result.records_ok += 1
            if what == "record":
                batch.append(payload)
                batch_links += len(payload.link_ids)
        commit(size, True)
        finish_write()
    finally:
        # An error (or ^C) here: the batch being written still commits whole, or not at all,
        # before the caller goes on.
        if writing is not None:
            cf.wait([writing])
        write_thread.shutdown(wait=True)
    result.skipped = stats.skipped
    result.revisits_unresolved = stats.revisits_unresolved
    return result


def _link_rows(store: Store) -> int:
    return int(store.query("SELECT count(*) FROM links")[0][0])


def ingest(store: Store, paths: Sequence[Path | str], *, batch_size: int = BATCH_PAGES,
           batch_links: int = BATCH_LINKS,
           workers: int | None = None, progress: Callable[[IngestProgress], None] | None = None,
           read_limits: ReadLimits = DEFAULT_READ_LIMITS,
           extract_limits: ExtractLimits = DEFAULT_LIMITS,
           compact: bool | None = None, compact_memory_limit: str | None = COMPACT_MEMORY_LIMIT,
           malloc_tuning: bool = True) -> IngestSummary:
    """Ingest WARC/WAT files (gzipped or not) into the index; resumable, never fatal on damage.

    Each file is a job `ingest:<sha256>`: a file already ingested is a no-op, an interrupted
    one resumes at its committed position. `workers` processes extract pages (None: cores - 2;
    0: in this process). A file that is not a WARC at all is reported in the summary
    (its FileResult.error) and the other files are still ingested. `compact` None applies the
    growth rule (COMPACT_MIN_ROWS / COMPACT_GROWTH), True/False force it;
    `compact_memory_limit` caps DuckDB while it sorts (None: the store's own limit).
    `malloc_tuning` makes jemalloc Arrow's pool (tune_arrow_pool) and raises glibc's
    thresholds: in worker processes for good (tune_malloc), in this one while it ingests
    (malloc_tuned).
    """
    started = time.perf_counter()
    summary = IngestSummary()
    # The driver reads and writes (its writer thread, and DuckDB's own threads, need about a
    # core); workers extract and pack. On 2 shared cores extracting in the driver measured
    # faster and cheaper than one worker (docs/ingest.md).
    n_workers = max(0, (os.cpu_count() or 1) - 2) if workers is None else max(0, workers)
    if malloc_tuning:
        tune_arrow_pool()
    pool: cf.ProcessPoolExecutor | None = None
    tuned = malloc_tuned() if malloc_tuning else contextlib.nullcontext()
    links_before = _link_rows(store)
    seen: dict[str, str] = {}
    hasher = cf.ThreadPoolExecutor(1, thread_name_prefix="inlink-ingest-digest")

    def pipeline(path: str) -> _Pipeline:
        nonlocal pool
        if n_workers > 0 and pool is None:
            # spawn, not fork: the parent holds DuckDB's threads and file lock.
            pool = cf.ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context(
                "spawn"), initializer=_init_worker, initargs=(malloc_tuning,))
        return _Pipeline(pool, n_workers, path, extract_limits, batch_size)

    try:
        # DuckDB caches the table blocks it writes up to its memory limit; an ingest does not
        # read them again, so a lower cap keeps the process's memory flat (docs/ingest.md).
        # Row groups are not merged at checkpoints while batches are written: the
        # compaction is this index's merge (Store.vacuum_paused).
        with (store.memory_capped(INGEST_MEMORY_LIMIT), young_gc_threshold(),
              store.vacuum_paused(), tuned):
            for raw in paths:
                path = Path(raw)
                t0 = time.perf_counter()
                try:
                    check_archive(path)
                    size = path.stat().st_size
                    # A file no committed job has the size of is new to the index: its
                    # sha256 (the job's name) is computed in a thread while its first batch
                    # is read, on the core the writer leaves idle until then. Any other
                    # file is hashed first: it may be done, or resume where it stopped.
                    fresh = not _size_seen(store, size)
                    if fresh:
                        hashing = hasher.submit(file_digest, path)
                    else:
                        hashing = cf.Future()
                        hashing.set_result(file_digest(path))
                except ArchiveError as exc:
                    summary.files.append(FileResult(str(path), "error", error=str(exc)))
                    continue
                except OSError as exc:
                    err = ArchiveError(str(path), None, f"cannot read the file: {exc}")
                    summary.files.append(FileResult(str(path), "error", error=str(err)))
                    continue
                # (a fresh file cannot repeat an earlier one: that one committed its size)
                if not fresh and hashing.result()[0] in seen:
                    summary.files.append(FileResult(
                        str(path), "duplicate", job=f"ingest:{hashing.result()[0]}",
                        size=size, error=None))
                    continue
                result = _ingest_file(store, path, hashing, size, fresh=fresh,
                                      batch_size=batch_size, batch_links_max=batch_links,
                                      pipeline=pipeline, read_limits=read_limits,
                                      progress=progress)
                seen[hashing.result()[0]] = str(path)
                result.seconds = time.perf_counter() - t0
                summary.files.append(result)
            # What the batches left in the WAL (pages, the partial row groups) goes into the
            # file now, unmerged, and is counted in the ingest's time.
            store.checkpoint()
    finally:
        hasher.shutdown(wait=True, cancel_futures=True)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
    grown = _link_rows(store) - links_before
    rule = grown >= COMPACT_MIN_ROWS and grown >= COMPACT_GROWTH * links_before
    if compact or (compact is None and rule):
        # The batches' freed memory goes back to the system before the sort needs its own.
        release_memory()
        store.compact(memory_limit=compact_memory_limit)
        summary.compacted = True
    summary.seconds = time.perf_counter() - started
    return summary

