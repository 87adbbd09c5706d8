"""A crawl job: seeds -> polite crawler -> batches committed to the index, resumable.

Ties sources/crawl.py to the IndexWriter; the CLI's `inlink crawl` calls `crawl()`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from inlink.index.gcpolicy import young_gc_threshold
from inlink.index.rows import extract_and_pack, unpack_extracted
from inlink.index.store import Store, run
from inlink.index.writer import IndexWriter, ManifestUpdate
from inlink.settings import Settings
from inlink.sources.crawl import (
    ChainEnd,
    Crawler,
    CrawlOptions,
    ExtractPool,
    Unit,
    admit_seeds,
    fetched_at_clock,
)
from inlink.sources.fetcher import Fetcher
from inlink.sources.frontier import (
    Frontier,
    FrontierRow,
    Item,
    Scope,
    clear_frontier,
    ensure_frontier_table,
    load_frontier_rows,
    save_frontier_rows,
    split_key,
)
from inlink.sources.geo import CountryLookup
from inlink.urls import try_normalize_url

# A batch smaller than this share of `batch_size` is written only when `batch_seconds` old: each
# transaction has a fixed cost (~0.1 s, measured in bench/crawl_bench.py), so tiny batches
# would cost more than they save.
MIN_BATCH_SHARE = 0.25

__all__ = ["CrawlOptions", "CrawlProgress", "CrawlSummary", "crawl", "crawl_async", "job_name"]


@dataclass(slots=True)
class CrawlProgress:
    """A snapshot for progress bars: `progress(p)` is called a few times per second."""

    pages: int = 0                 # fetch records produced (pages and redirect hops)
    pages_ok: int = 0
    pages_failed: int = 0
    robots_disallowed: int = 0
    queued: int = 0                # URLs waiting in the frontier
    hosts: int = 0
    bytes: int = 0
    committed: int = 0             # records in committed batches
    seconds: float = 0.0


@dataclass(slots=True)
class CrawlSummary:
    """What a crawl did; `pages_failed` is keyed by reason (http_4xx, http_5xx, timeout, ...)."""

    job: str
    resumed: bool = False
    pages_ok: int = 0
    pages_failed: dict[str, int] = field(default_factory=dict)
    robots_disallowed: int = 0
    redirects: int = 0
    bytes: int = 0
    seconds: float = 0.0
    pages_per_second: float = 0.0
    batches: int = 0
    new_links: int = 0
    lost_links: int = 0
    hosts: int = 0
    rejected: dict[str, int] = field(default_factory=dict)   # URLs not admitted, by reason
    max_active_per_host: int = 0

    @property
    def pages(self) -> int:
        return self.pages_ok + sum(self.pages_failed.values())

    def line(self) -> str:
        failed = sum(self.pages_failed.values())
        return (f"pages_ok={self.pages_ok} pages_failed={failed} "
                f"robots_disallowed={self.robots_disallowed} bytes={self.bytes} "
                f"seconds={self.seconds:.1f} pages/s={self.pages_per_second:.0f}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def job_name(seeds: Sequence[str], options: CrawlOptions, settings: Settings) -> str:
    """The resume key: the same command on the same day continues the same job."""
    if options.job:
        return options.job
    keys = sorted({try_normalize_url(s) or s for s in seeds})
    digest = hashlib.sha256("\n".join([options.scope, *keys]).encode()).hexdigest()[:12]
    return f"crawl:{settings.today().isoformat()}:{digest}"


def crawl(store: Store, seeds: Sequence[str], options: CrawlOptions, settings: Settings,
          progress: Callable[[CrawlProgress], None] | None = None) -> CrawlSummary:
    """Crawl from `seeds` into the store and return a summary (blocking)."""
    return asyncio.run(crawl_async(store, seeds, options, settings, progress))


async def crawl_async(store: Store, seeds: Sequence[str], options: CrawlOptions,
                      settings: Settings,
                      progress: Callable[[CrawlProgress], None] | None = None) -> CrawlSummary:
    """`crawl` for callers that already run an event loop (the server's job runner)."""
    job = _Job(store, list(seeds), options, settings, progress)
    with young_gc_threshold():
        return await job.run()


class _Job:
    def __init__(self, store: Store, seeds: list[str], options: CrawlOptions,
                 settings: Settings, progress: Callable[[CrawlProgress], None] | None) -> None:
        self.store = store
        self.seeds = seeds
        self.options = options
        self.settings = settings
        self.progress_fn = progress
        self.name = job_name(seeds, options, settings)
        self.summary = CrawlSummary(self.name)
        self.progress = CrawlProgress()
        self.writer = IndexWriter(store, self.name)
        self.seq = 0
        self.records_ok = 0
        self.records_bad = 0
        self._units: list[Unit] = []
        self._pending_records = 0
        self._min_batch = max(1, int(options.batch_size * MIN_BATCH_SHARE))
        self._flush_task: asyncio.Task[None] | None = None
        self._last_flush = time.monotonic()
        self._last_progress = 0.0
        self._started = time.monotonic()
        self.frontier: Frontier | None = None
        self._initial_rows: list[FrontierRow] = []

    # -- setup: fresh or resumed

    def _prepare(self, conn: duckdb.DuckDBPyConnection) -> tuple[Frontier, dict[str, ChainEnd],
                                                              set[str], int]:
        ensure_frontier_table(conn)
        seed_keys = [k for k in (try_normalize_url(s) for s in self.seeds) if k is not None]
        frontier = Frontier(scope=Scope(self.options.scope), seeds=seed_keys,
                            per_host=self.options.per_host, delay=self.options.delay,
                            traps=self.options.traps)
        manifest = _manifest(conn, self.name)
        finals: dict[str, ChainEnd] = {}
        if manifest is not None and not manifest["done"]:
            self.summary.resumed = True
            self.seq = int(manifest["position"])
            self.records_ok = int(manifest["records_ok"])
            self.records_bad = int(manifest["records_bad"])
            rows = load_frontier_rows(conn, self.name, self.seq)
            known = {r.url_key for r in rows if r.known}
            pages = 0
            for row in rows:
                origin, host, _ = split_key(row.url_key)
                frontier.restore(Item(row.url, row.url_key, host, origin, row.depth,
                                      row.item_seq, row.known), queued=not row.done)
                if row.done and row.hops is not None:
                    pages += 1
                    finals[row.url_key] = ChainEnd(row.final_status, bool(row.loop), row.hops)
            return frontier, finals, known, pages
        clear_frontier(conn, self.name)
        known_pages = self._known_pages(conn, frontier)
        rows = admit_seeds(frontier, self.seeds, set(known_pages))
        if self.options.recrawl_known:
            # Re-fetch every page the index already has in scope: that is how lost links are
            # found. Sorted so the order (and so the crawl) does not depend on the store.
            for key in sorted(known_pages):
                item = frontier.admit(known_pages[key], key, 0, known=True)
                if item is not None:
                    rows.append(FrontierRow(key, item.url, 0, item.seq, True, False))
        self._initial_rows = rows
        return frontier, finals, set(known_pages), 0

    def _known_pages(self, conn: duckdb.DuckDBPyConnection, frontier: Frontier) -> dict[str, str]:
        scope = Scope(self.options.scope)
        if scope is Scope.ANY:
            rows = run(conn, "SELECT url_key, url FROM pages")
        elif scope is Scope.HOST:
            rows = run(conn, "SELECT url_key, url FROM pages WHERE list_contains(?, host)",
                       [sorted(frontier.seed_hosts)])
        else:
            rows = run(conn, "SELECT url_key, url FROM pages WHERE list_contains(?, domain)",
                       [sorted(frontier.seed_domains)])
        return {str(k): str(u) for k, u in rows}

    # -- the run

    async def run(self) -> CrawlSummary:
        self._initial_rows = []
        geo = CountryLookup(self.options.geoip_mmdb) if self.options.country else None
        frontier, finals, known, pages = await asyncio.to_thread(self.store.write, self._prepare)
        self.frontier = frontier
        # Extraction workers also classify and pack each page's link rows (index.rows): that
        # work then runs beside the crawl instead of in the writer's thread.
        extractor = ExtractPool(self.options.extract_mode, self.options.extract_workers,
                                self.options.extract_limits, work=extract_and_pack,
                                unpack=unpack_extracted)
        if self._initial_rows:
            self._units.append(Unit(rows=self._initial_rows))
        try:
            async with Fetcher(user_agent=self.options.user_agent,
                               limits=self.options.fetch_limits(),
                               overrides=self.options.resolve, dns=self.options.dns,
                               concurrency=self.options.concurrency) as fetcher:
                crawler = Crawler(self.options, frontier, fetcher, extractor, self._emit,
                                  fetched_at_clock(self.settings.as_of), geo=geo,
                                  finals=finals, known=known, pages_done=pages,
                                  throttle=self._throttle)
                await crawler.run()
            if self._flush_task is not None:
                await self._flush_task
            await asyncio.to_thread(self._flush, self._take_units(), True)
        finally:
            extractor.close()
            if geo is not None:
                geo.close()
        s = self.summary
        s.seconds = time.monotonic() - self._started
        s.pages_per_second = s.pages / s.seconds if s.seconds > 0 else 0.0
        s.hosts = len(frontier.slots)
        s.rejected = dict(frontier.rejected)
        s.max_active_per_host = max((x.max_seen_active for x in frontier.slots.values()),
                                    default=0)
        self._report(force=True)
        return s

    # -- units in, batches out

    def _emit(self, unit: Unit) -> None:
        s, p = self.summary, self.progress
        for record in unit.records:
            if record.robots_disallowed:
                continue
            if record.status is not None and record.status < 400:
                s.pages_ok += 1
                if record.redirect_to is not None:
                    s.redirects += 1
            else:
                reason = _failure(record.status, record.error)
                s.pages_failed[reason] = s.pages_failed.get(reason, 0) + 1
        s.robots_disallowed += unit.robots_blocked
        s.bytes += unit.wire_bytes
        p.pages, p.pages_ok = s.pages, s.pages_ok
        p.pages_failed = p.pages - s.pages_ok
        p.robots_disallowed, p.bytes = s.robots_disallowed, s.bytes
        self._units.append(unit)
        self._pending_records += len(unit.records)
        idle = self._flush_task is None
        # An idle writer takes a smaller batch at once: it keeps writing while the crawl goes
        # on, so less is left to write when the crawl ends.
        due = (self._pending_records >= self.options.batch_size
               or (idle and self._pending_records >= self._min_batch)
               or time.monotonic() - self._last_flush >= self.options.batch_seconds)
        if due and idle:
            units = self._take_units()
            self._flush_task = asyncio.get_running_loop().create_task(self._flush_async(units))
        self._report()

    async def _throttle(self) -> None:
        """Backpressure: do not run more than two batches ahead of the writer."""
        while (self._flush_task is not None
               and self._pending_records >= 2 * self.options.batch_size):
            await asyncio.shield(self._flush_task)

    def _take_units(self) -> list[Unit]:
        units, self._units = self._units, []
        self._pending_records = 0
        self._last_flush = time.monotonic()
        return units

    async def _flush_async(self, units: list[Unit]) -> None:
        try:
            await asyncio.to_thread(self._flush, units, False)
        finally:
            self._flush_task = None

    def _flush(self, units: list[Unit], done: bool) -> None:
        """One batch: frontier changes, then records + manifest in one transaction.

        The frontier rows carry the batch number; on resume rows newer than the manifest's
        position are discarded, so a crash between the two transactions loses nothing.
        """
        records = [r for u in units for r in u.records]
        rows = [r for u in units for r in u.rows]
        if not records and not rows and not done:
            return
        self.seq += 1
        seq = self.seq
        self.store.write(lambda conn: save_frontier_rows(conn, self.name, seq, rows))
        ok = sum(1 for r in records if r.status is not None and r.status < 400)
        self.records_ok += ok
        self.records_bad += len(records) - ok
        state = json.dumps({"seeds": self.seeds[:100], "scope": self.options.scope,
                            "as_of": self.settings.as_of.isoformat()
                            if self.settings.as_of else None, "batch": seq})
        stats = self.writer.apply(records, ManifestUpdate(
            self.name, "crawl", " ".join(self.seeds)[:1000], seq, self.records_ok,
            self.records_bad, done, state=state))
        self.summary.batches += 1
        self.summary.new_links += stats.new_links
        self.summary.lost_links += stats.lost_links
        self.progress.committed += len(records)

    def _report(self, force: bool = False) -> None:
        if self.progress_fn is None:
            return
        now = time.monotonic()
        if not force and now - self._last_progress < 0.25:
            return
        self._last_progress = now
        p = self.progress
        if self.frontier is not None:
            p.queued, p.hosts = self.frontier.pending, len(self.frontier.slots)
        p.seconds = now - self._started
        self.progress_fn(p)


def _manifest(conn: duckdb.DuckDBPyConnection, job: str) -> dict[str, Any] | None:
    cur = conn.execute("SELECT position, records_ok, records_bad, done FROM manifests "
                       "WHERE job = ?", [job])
    row = cur.fetchone()
    cur.fetchall()
    if row is None:
        return None
    return {"position": row[0], "records_ok": row[1], "records_bad": row[2], "done": row[3]}


def _failure(status: int | None, error: str | None) -> str:
    if status is not None:
        return "http_4xx" if status < 500 else "http_5xx"
    if error is None:
        return "other"
    head = error.split(":", 1)[0].strip().replace(" ", "_")
    return head or "other"

