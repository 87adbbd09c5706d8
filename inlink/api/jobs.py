"""Jobs inside the server: crawls, ingests and rank runs while it serves.

DuckDB lets one process write the index file, and while `inlink serve` runs that process is
the server (DESIGN.md, "Storage"). So the CLI hands its work to the server
(`inlink.handoff`) and the server runs it here, in one thread, one job at a time, through the
same library calls the CLI makes (`ingest`, `crawl`, `run_rank`) on the server's own Store.
Readers keep answering meanwhile: every batch is one transaction, and the answer cache is
keyed on the store's generation, which each committed batch moves.

A job is cancelled between batches (an ingest at its next commit, a crawl at its next await,
a rank run only before it starts); what was committed stays, and the same command run again
resumes it from its manifest. Jobs live in the server's memory (the last `KEEP_FINISHED`
finished ones are listed); their data and resume points are in the index file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from inlink.errors import InlinkError, InvalidInput
from inlink.index.store import Store
from inlink.settings import Settings, parse_date

log = logging.getLogger("inlink.jobs")

KINDS = ("ingest", "crawl", "rank")
KEEP_FINISHED = 100          # finished jobs kept for GET /admin/jobs
MAX_QUEUED = 100             # jobs waiting at once; more are refused
MAX_FILES = 10_000           # files in one ingest job
MAX_SEEDS = 10_000           # seeds in one crawl job
MAX_RESOLVE = 100_000        # --resolve entries in one crawl job
_CRAWL_INTS = {"max_pages": (1, None), "concurrency": (1, 4096), "per_host": (1, 64)}
_SCOPES = ("host", "domain", "any")


class JobCancelled(InlinkError):
    """Raised inside a job's progress callback once its cancellation was asked for."""


class QueueFull(InlinkError):
    """Too many jobs are waiting."""


@dataclass(slots=True)
class Job:
    """What GET /admin/jobs/{id} shows. `params` is the request as validated."""

    id: str
    kind: str
    params: dict[str, Any]
    state: str = "queued"          # queued | running | done | failed | cancelled
    created_at: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    seconds: float | None = None   # how long it ran, once it ended
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False

    def view(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


# ---------------------------------------------------------------------------- validation

def parse_job(body: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(kind, params) from a POST /admin/jobs body; InvalidInput names the bad field.

    ingest: `files` (absolute paths on the server's machine), `workers`, `batch_size`.
    crawl: `seeds`, `as_of`, `max_pages`, `scope`, `concurrency`, `per_host`, `delay`,
    `resolve` ({host: [ip, port or null]}), `dns`. rank: `as_of`."""
    if not isinstance(body, Mapping):
        raise InvalidInput("body", "expected a JSON object")
    kind = body.get("kind")
    if kind not in KINDS:
        raise InvalidInput("kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {"kind", *_FIELDS[kind]}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], f"not a field of a {kind} job (fields: "
                                       f"{', '.join(sorted(allowed - {'kind'}))})")
    params: dict[str, Any] = _PARSERS[kind](body)
    return kind, params


def _ingest_params(body: Mapping[str, Any]) -> dict[str, Any]:
    files = body.get("files")
    if not isinstance(files, list) or not files or len(files) > MAX_FILES:
        raise InvalidInput("files", f"expected a list of 1 to {MAX_FILES} file paths")
    paths: list[str] = []
    for f in files:
        if not isinstance(f, str) or not f or "\x00" in f or not Path(f).is_absolute():
            raise InvalidInput("files", f"expected absolute paths, got {f!r}")
        if not Path(f).is_file():
            raise InvalidInput("files", f"{f} is not a readable file on the server's machine")
        paths.append(f)
    return {"files": paths, "workers": _int(body, "workers", 0, 1024),
            "batch_size": _int(body, "batch_size", 1, 100_000)}


def _crawl_params(body: Mapping[str, Any]) -> dict[str, Any]:
    seeds = body.get("seeds")
    if (not isinstance(seeds, list) or not seeds or len(seeds) > MAX_SEEDS
            or not all(isinstance(s, str) and s for s in seeds)):
        raise InvalidInput("seeds", f"expected a list of 1 to {MAX_SEEDS} URLs")
    params: dict[str, Any] = {"seeds": seeds, "as_of": _date(body, "as_of")}
    for name, (low, high) in _CRAWL_INTS.items():
        params[name] = _int(body, name, low, high)
    scope = body.get("scope", "domain")
    if scope not in _SCOPES:
        raise InvalidInput("scope", f"expected one of {', '.join(_SCOPES)}, got {scope!r}")
    params["scope"] = scope
    delay = body.get("delay")
    if delay is not None and (isinstance(delay, bool) or not isinstance(delay, int | float)
                              or not 0 <= delay <= 3600):
        raise InvalidInput("delay", f"expected seconds from 0 to 3600, got {delay!r}")
    params["delay"] = None if delay is None else float(delay)
    resolve = body.get("resolve") or {}
    if not isinstance(resolve, Mapping) or len(resolve) > MAX_RESOLVE:
        raise InvalidInput("resolve", "expected an object {host: [ip, port or null]}")
    pairs: dict[str, tuple[str, int | None]] = {}
    for host, target in resolve.items():
        if (not isinstance(host, str) or not isinstance(target, list) or len(target) != 2
                or not isinstance(target[0], str)
                or not (target[1] is None or (isinstance(target[1], int)
                                              and not isinstance(target[1], bool)
                                              and 0 < target[1] < 65536))):
            raise InvalidInput("resolve", f"bad entry {host!r}: expected [ip, port or null]")
        pairs[host] = (target[0], target[1])
    params["resolve"] = pairs
    dns = body.get("dns", True)
    if not isinstance(dns, bool):
        raise InvalidInput("dns", f"expected true or false, got {dns!r}")
    params["dns"] = dns
    return params


def _rank_params(body: Mapping[str, Any]) -> dict[str, Any]:
    return {"as_of": _date(body, "as_of")}


def _int(body: Mapping[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if (isinstance(value, bool) or not isinstance(value, int) or value < low
            or (high is not None and value > high)):
        bound = f"{low} to {high}" if high is not None else f"{low} or more"
        raise InvalidInput(name, f"expected a whole number from {bound}, got {value!r}")
    return value


def _date(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(name, f"expected YYYY-MM-DD, got {value!r}")
    return parse_date(value, name).isoformat()


_FIELDS = {"ingest": ("files", "workers", "batch_size"),
           "crawl": ("seeds", "as_of", "scope", "delay", "resolve", "dns", *_CRAWL_INTS),
           "rank": ("as_of",)}
_PARSERS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "ingest": _ingest_params, "crawl": _crawl_params, "rank": _rank_params}


# ---------------------------------------------------------------------------- the runner

class JobRunner:
    """One thread running the server's jobs in the order they came, one at a time."""

    def __init__(self, store: Store, settings: Settings,
                 after_write: Callable[[Store], None] | None = None) -> None:
        self.store = store
        self.settings = settings
        self.after_write = after_write   # e.g. re-materialize heavy targets' aggregates
        self._lock = threading.Condition()
        self._queue: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._finished: deque[str] = deque()
        self._running: Job | None = None
        self._crawl: tuple[asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="inlink-jobs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Cancel what waits and what runs, then wait for the running job to stop (its
        batch in flight commits whole or not at all)."""
        with self._lock:
            self._stopping = True
            for job in self._queue:
                self._end(job, "cancelled", error="the server stopped before it started")
            self._queue.clear()
            if self._running is not None:
                self._request_cancel(self._running)
            self._lock.notify_all()
        if self._thread.is_alive():
            if self._running is not None:
                log.info("waiting for job %s (%s) to stop", self._running.id,
                         self._running.kind)
            self._thread.join(timeout)

    def submit(self, kind: str, params: dict[str, Any]) -> Job:
        with self._lock:
            if self._stopping:
                raise QueueFull("the server is stopping")
            if len(self._queue) >= MAX_QUEUED:
                raise QueueFull(f"{MAX_QUEUED} jobs are already waiting")
            job = Job(uuid.uuid4().hex[:16], kind, params, created_at=_now())
            self._jobs[job.id] = job
            self._queue.append(job)
            self._lock.notify_all()
            return job

    def get(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else job.view()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [job.view() for job in reversed(self._jobs.values())]   # newest first

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state == "queued":
                self._queue.remove(job)
                self._end(job, "cancelled", error="cancelled before it started")
            elif job.state == "running":
                self._request_cancel(job)
            return job.view()

    # -- the thread

    def _request_cancel(self, job: Job) -> None:
        job.cancel_requested = True
        if self._crawl is not None:
            loop, task = self._crawl
            loop.call_soon_threadsafe(task.cancel)

    def _end(self, job: Job, state: str, *, result: dict[str, Any] | None = None,
             error: str | None = None) -> None:
        job.state, job.ended_at, job.result, job.error = state, _now(), result, error
        self._finished.append(job.id)
        while len(self._finished) > KEEP_FINISHED:
            self._jobs.pop(self._finished.popleft(), None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._lock.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state, job.started_at = "running", _now()
                self._running = job
            began = time.monotonic()
            state, result, error = "done", None, None
            try:
                result = _RUNS[job.kind](self, job)
            except (JobCancelled, asyncio.CancelledError):
                state, error = "cancelled", ("cancelled; what was committed is kept and the "
                                             "same command resumes it")
            except InlinkError as exc:
                state, error = "failed", str(exc)
            except Exception as exc:  # noqa: BLE001 - a job's failure must not end the server
                log.exception("job %s (%s) failed", job.id, job.kind)
                state, error = "failed", f"internal error: {type(exc).__name__}: {exc}"
            if state == "done" and self.after_write is not None:
                try:
                    self.after_write(self.store)
                except Exception:  # noqa: BLE001 - the job itself is done and committed
                    log.exception("refreshing aggregates after job %s failed", job.id)
            with self._lock:
                self._running = None
                self._crawl = None
                job.seconds = round(time.monotonic() - began, 3)
                self._end(job, state, result=result, error=error)

    def _check(self, job: Job) -> None:
        if job.cancel_requested:
            raise JobCancelled("cancelled")

    def _settings(self, as_of: str | None) -> Settings:
        if as_of is None:
            return self.settings
        return replace(self.settings, as_of=dt.date.fromisoformat(as_of))


def _run_ingest(runner: JobRunner, job: Job) -> dict[str, Any]:
    from inlink.index.ingest import BATCH_PAGES, IngestProgress, ingest

    def progress(p: IngestProgress) -> None:
        job.progress = {"file": p.path, "position": p.position, "size": p.size,
                        "records_ok": p.records_ok, "records_bad": p.records_bad,
                        "pages": p.pages}
        runner._check(job)

    runner._check(job)
    p = job.params
    summary = ingest(runner.store, p["files"], batch_size=p["batch_size"] or BATCH_PAGES,
                     workers=p["workers"], progress=progress,
                     compact_memory_limit=runner.settings.compact_memory_limit)
    return asdict(summary)


def _run_crawl(runner: JobRunner, job: Job) -> dict[str, Any]:
    from inlink.index.crawljob import CrawlProgress, crawl_async
    from inlink.sources.crawl import CrawlOptions

    p = job.params
    options = CrawlOptions.from_env(
        max_pages=p["max_pages"], scope=p["scope"], concurrency=p["concurrency"],
        per_host=p["per_host"], delay=p["delay"], resolve=p["resolve"], dns=p["dns"])

    def progress(c: CrawlProgress) -> None:
        job.progress = {"pages": c.pages, "pages_ok": c.pages_ok,
                        "pages_failed": c.pages_failed, "queued": c.queued, "hosts": c.hosts,
                        "committed": c.committed}

    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(crawl_async(runner.store, p["seeds"], options,
                                            runner._settings(p["as_of"]), progress))
        with runner._lock:
            runner._crawl = (loop, task)
            if job.cancel_requested:
                task.cancel()
        summary = loop.run_until_complete(task)
    finally:
        with runner._lock:
            runner._crawl = None
        # A cancelled crawl's batch in flight runs in the loop's executor: it commits whole
        # (or not at all) before the job is reported ended.
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
    result: dict[str, Any] = summary.to_dict()
    return result


def _run_rank(runner: JobRunner, job: Job) -> dict[str, Any]:
    from inlink.rank import run_rank

    runner._check(job)

    def progress(message: str) -> None:
        job.progress = {"step": message}

    summary = run_rank(runner.store, runner._settings(job.params["as_of"]), progress=progress)
    return asdict(summary)


_RUNS: dict[str, Callable[[JobRunner, Job], dict[str, Any]]] = {
    "ingest": _run_ingest, "crawl": _run_crawl, "rank": _run_rank}

__all__ = ["KINDS", "Job", "JobCancelled", "JobRunner", "QueueFull", "parse_job"]
