"""The polite async crawler: robots.txt, per-host politeness, redirect chains -> FetchRecords.

Builds on sources/fetcher.py, robots.py and frontier.py; index/crawljob.py feeds its output
(records plus frontier changes) to the IndexWriter. See docs/crawl.md.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inlink.errors import InvalidInput
from inlink.extract import DEFAULT_LIMITS, Extraction, ExtractLimits, extract
from inlink.sources.fetcher import DEFAULT_USER_AGENT, Fetcher, FetchLimits, Override, Response
from inlink.sources.frontier import Frontier, FrontierRow, Item, TrapLimits, split_key, trap_reason
from inlink.sources.geo import CountryLookup
from inlink.sources.record import FetchRecord
from inlink.sources.robots import RobotsCache, RobotsRules
from inlink.urls import resolve_url, try_normalize_url

SCOPES = ("host", "domain", "any")


@dataclass(frozen=True, slots=True)
class CrawlOptions:
    """Everything `inlink crawl` can be told; defaults are documented in docs/crawl.md."""

    max_pages: int | None = None          # page fetches (redirect hops count), None = no cap
    scope: str = "domain"                 # host | domain | any (of the seeds)
    concurrency: int = 128                # fetches in flight, all hosts together
    per_host: int = 2                     # fetches in flight per host
    delay: float = 1.0                    # seconds between request starts per host
    max_crawl_delay: float = 10.0         # robots.txt Crawl-delay is honoured up to this
    user_agent: str = DEFAULT_USER_AGENT
    resolve: Mapping[str, Override] = field(default_factory=dict)  # host -> (ip, port)
    dns: bool = True                      # False: hosts without an override fail
    timeout: float = 30.0                 # total deadline of one fetch
    connect_timeout: float = 10.0
    read_timeout: float = 10.0            # longest silence while reading
    max_bytes: int = 8 * 1024 * 1024      # body cap, after decompression
    max_headers: int = 100
    max_header_size: int = 8190
    max_redirects: int = 5                # hops of one redirect chain
    robots_ttl: float = 86400.0           # RFC 9309 §2.4: 24 hours
    robots_retry: float = 600.0           # unreachable robots.txt: ask again after this
    traps: TrapLimits = TrapLimits()
    follow_nofollow: bool = True          # discover pages through rel=nofollow links too
    recrawl_known: bool = True            # seed the frontier with the store's in-scope pages
    batch_size: int = 500                 # records per index transaction
    batch_seconds: float = 2.0            # ... or this old, whichever comes first
    extract_mode: str = "auto"            # auto | process | thread | inline (see extract_mode_for)
    extract_workers: int = 1
    extract_limits: ExtractLimits = DEFAULT_LIMITS
    country: bool = True                  # look up the country of each page's IP
    geoip_mmdb: Path | None = None        # a MaxMind .mmdb instead of geoip2fast's data
    job: str | None = None                # resume key; default derived from day + seeds

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise InvalidInput("--scope", f"expected one of {', '.join(SCOPES)}, "
                                          f"got {self.scope!r}")
        if self.concurrency < 1 or self.per_host < 1:
            raise InvalidInput("--concurrency", "concurrency and --per-host must be >= 1")
        if self.delay < 0 or self.max_crawl_delay < 0:
            raise InvalidInput("--delay", "delays must be >= 0 seconds")
        if self.max_pages is not None and self.max_pages < 0:
            raise InvalidInput("--max-pages", "must be >= 0")
        if self.extract_mode not in ("auto", "process", "thread", "inline"):
            raise InvalidInput("extract_mode", "expected auto, process, thread or inline")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> CrawlOptions:
        """Options from `INLINK_CRAWL_*` / `INLINK_GEOIP_MMDB`, then flags (not None) on top."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        numeric = {"INLINK_CRAWL_DELAY": ("delay", float),
                   "INLINK_CRAWL_CONCURRENCY": ("concurrency", int),
                   "INLINK_CRAWL_PER_HOST": ("per_host", int),
                   "INLINK_CRAWL_TIMEOUT": ("timeout", float)}
        for var, (name, kind) in numeric.items():
            if text := env.get(var):
                try:
                    values[name] = kind(text)
                except ValueError:
                    raise InvalidInput(var, f"expected a number, got {text!r}") from None
        if agent := env.get("INLINK_CRAWL_USER_AGENT"):
            values["user_agent"] = agent
        if mmdb := env.get("INLINK_GEOIP_MMDB"):
            values["geoip_mmdb"] = Path(mmdb)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def fetch_limits(self) -> FetchLimits:
        return FetchLimits(total_timeout=self.timeout, connect_timeout=self.connect_timeout,
                           read_timeout=self.read_timeout, max_bytes=self.max_bytes,
                           max_headers=self.max_headers, max_header_size=self.max_header_size)


# ----------------------------------------------------------------------- extraction off-loop

#: What extraction needs to know about one fetched page: (body, url, headers, status, limits,
#: url_key, fetched_at, ip, country, content_type); a plain tuple, cheap to pickle.
ExtractJob = tuple[bytes, str, list[tuple[str, str]], int, ExtractLimits, str, dt.datetime,
                   str | None, str | None, str | None]
#: Links to consider for the frontier: (target_url, target_key, nofollow).
Discovered = list[tuple[str, str, bool]]
#: One page's extraction: the Extraction (None when only its packed form was kept), the links
#: to discover, and an opaque packed form of its fetch record (FetchRecord.packed) or None.
Extracted = tuple[Extraction | None, Discovered, object | None]


def _extract_many(jobs: list[ExtractJob]) -> list[Extracted | str]:
    """The default extraction work: extract() each page; errors become strings."""
    out: list[Extracted | str] = []
    for body, url, headers, status, limits, *_ in jobs:
        try:
            ex = extract(body, url, headers, status=status, limits=limits)
        except Exception as exc:  # noqa: BLE001 - one bad page must not stop a crawl
            out.append(f"extract: {type(exc).__name__}: {exc}")
            continue
        out.append((ex, [(k.target_url, k.target_key, k.nofollow) for k in ex.links], None))
    return out


def _unchanged(raw: Any) -> list[Extracted | str]:
    result: list[Extracted | str] = raw
    return result


def extract_mode_for(mode: str, cpus: int | None = None) -> str:
    """`auto` -> `process` with 2 CPUs or more, else `thread`.

    The extraction worker also classifies and packs the page's link rows (index.rows), so a
    process takes that CPU off the crawl's event loop and the index writer: `inlink bench
    crawl` on 2 cores measured 1,262 pages/s with a process against 890 with a thread and
    904 inline (docs/benchmarks.md). On one CPU a process only adds pickling.
    """
    if mode != "auto":
        return mode
    return "process" if (cpus if cpus is not None else os.cpu_count() or 1) >= 2 else "thread"


def _worker_init() -> None:
    import inlink.extract  # noqa: F401  (warm the import before the first batch)


class ExtractPool:
    """Runs extraction off the event loop, in micro-batches (one executor call per ~32 pages).

    `work(jobs)` runs in the executor (a module-level function, so a process pool can pickle
    it) and `unpack(raw)` turns its result into one `Extracted | str` per job in this
    process: the index passes work that also classifies and packs the page's link rows
    (index.rows), so that work leaves the crawl's process and the writer's thread.
    """

    def __init__(self, mode: str = "auto", workers: int = 1,
                 limits: ExtractLimits = DEFAULT_LIMITS, batch: int = 32,
                 work: Callable[[list[ExtractJob]], Any] = _extract_many,
                 unpack: Callable[[Any], list[Extracted | str]] = _unchanged) -> None:
        self.mode = mode = extract_mode_for(mode)
        self.limits = limits
        self.batch = batch
        self.work = work
        self.unpack = unpack
        self._executor: Executor | None = None
        if mode == "process":
            # spawn: the parent holds DuckDB and aiohttp threads, which fork would copy.
            self._executor = ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_init)
        elif mode == "thread":
            self._executor = ThreadPoolExecutor(workers, thread_name_prefix="inlink-extract")
        self._queue: list[tuple[ExtractJob, asyncio.Future[Extracted | str]]] = []
        self._flush_handle: asyncio.Handle | None = None

    async def extract(self, job: ExtractJob) -> Extracted | str:
        """The extraction of one page, or an error string."""
        if self._executor is None:
            return self.unpack(self.work([job]))[0]
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Extracted | str] = loop.create_future()
        self._queue.append((job, future))
        if len(self._queue) >= self.batch:
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = loop.call_later(0.002, self._flush)
        return await future

    def _flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        queue, self._queue = self._queue, []
        if not queue:
            return
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        try:
            done = loop.run_in_executor(self._executor, self.work, [j for j, _ in queue])
        except Exception as exc:  # noqa: BLE001 - a broken pool fails its pages, not the crawl
            for _, future in queue:
                if not future.done():
                    future.set_result(f"extract: {type(exc).__name__}: {exc}")
            return

        def finish(result: asyncio.Future[Any]) -> None:
            exc = result.exception()
            outcomes: list[Extracted | str] = []
            if exc is None:
                try:
                    outcomes = self.unpack(result.result())
                except Exception as err:  # noqa: BLE001 - fails its pages, not the crawl
                    exc = err
            for index, (_, future) in enumerate(queue):
                if future.done():
                    continue
                if exc is not None:
                    future.set_result(f"extract: {type(exc).__name__}: {exc}")
                else:
                    future.set_result(outcomes[index])

        done.add_done_callback(finish)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


# ----------------------------------------------------------------------- the engine

@dataclass(frozen=True, slots=True)
class ChainEnd:
    """How a redirect chain starting at some URL ended."""

    status: int | None        # status of the last response (None: no response, or a loop)
    loop: bool                # looped or exceeded the hop limit
    hops: int                 # redirects from that URL to the end
    known: bool = True        # False: not followed to the end (the page budget ran out)


@dataclass(slots=True)
class Unit:
    """The result of processing one frontier item: records and frontier changes, kept together
    so they commit in the same batch."""

    records: list[FetchRecord] = field(default_factory=list)
    rows: list[FrontierRow] = field(default_factory=list)
    wire_bytes: int = 0       # bytes read from sockets (bodies are not kept past extraction)
    robots_blocked: int = 0


@dataclass(slots=True)
class _Hop:
    url: str
    key: str
    depth: int
    known: bool
    item_seq: int
    resp: Response | None = None
    robots: RobotsRules | None = None
    redirect_to: str | None = None


class Crawler:
    """Pulls items from a Frontier, fetches politely, emits Units; `await run()` until done."""

    def __init__(self, options: CrawlOptions, frontier: Frontier, fetcher: Fetcher,
                 extractor: ExtractPool, emit: Callable[[Unit], None],
                 fetched_at: Callable[[], dt.datetime],
                 geo: CountryLookup | None = None,
                 finals: dict[str, ChainEnd] | None = None,
                 known: set[str] | None = None, pages_done: int = 0,
                 throttle: Callable[[], Awaitable[None]] | None = None) -> None:
        self.throttle = throttle
        self.options = options
        self.frontier = frontier
        self.fetcher = fetcher
        self.extractor = extractor
        self.emit = emit
        self.fetched_at = fetched_at
        self.geo = geo
        self.robots = RobotsCache(self._fetch_robots, options.user_agent,
                                  ttl=options.robots_ttl, retry_after=options.robots_retry)
        self.agent = self.robots.agent
        self.finals: dict[str, ChainEnd] = finals if finals is not None else {}
        self.known = known if known is not None else set()
        self._inflight: dict[str, asyncio.Future[ChainEnd]] = {}
        self._head_of: dict[str, str] = {}
        self._waits: dict[str, str] = {}
        self._delay_set: set[str] = set()
        self.pages = pages_done
        self.active = 0
        self.stopped = False

    # -- driving

    async def run(self) -> None:
        """Crawl until the frontier is empty or max_pages is reached."""
        limit = asyncio.Semaphore(self.options.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        self._maybe_finish()
        while True:
            if self.throttle is not None:
                await self.throttle()
            await limit.acquire()
            item = await self.frontier.next()
            if item is None:
                limit.release()
                break
            if item.key in self.finals or item.key in self._inflight or self._full():
                # Taken already by a redirect chain, or the page budget is spent.
                self.frontier.release(item.host)
                limit.release()
                self._maybe_finish()
                continue
            self.active += 1
            self.pages += 1            # counted at dispatch so the budget holds under concurrency
            # Registered before the task runs, so a redirect chain reaching this URL meanwhile
            # joins it instead of fetching it a second time.
            chain: list[_Hop] = []
            self._start_hop(chain, item.url, item.key, item.depth, item.known, item.seq)
            task = asyncio.create_task(self._process(item, chain))
            tasks.add(task)

            def done(t: asyncio.Task[None]) -> None:
                tasks.discard(t)
                limit.release()
                self.active -= 1
                self._maybe_finish()

            task.add_done_callback(done)
        if tasks:
            await asyncio.gather(*tasks)
        for task in tasks:
            task.result()

    def _full(self) -> bool:
        return self.options.max_pages is not None and self.pages >= self.options.max_pages

    def _maybe_finish(self) -> None:
        if self._full() and not self.stopped:
            self.stopped = True
            self.frontier.drain()
        if self.active == 0 and (self.frontier.pending == 0 or self.stopped):
            self.frontier.close()

    # -- robots

    async def _fetch_robots(self, url: str) -> Response:
        return await self.fetcher.get(url, max_bytes=512 * 1024)

    async def _rules(self, host: str, origin: str) -> tuple[RobotsRules, bool]:
        """The origin's robots decision and whether this call fetched it."""
        cached = self.robots.cached(origin)
        if cached is not None:
            return cached, False
        before = self.robots.fetches
        rules = await self.robots.get(origin)
        if host not in self._delay_set:
            self._delay_set.add(host)
            delay = rules.crawl_delay(self.agent)
            if delay is not None:
                self.frontier.set_delay(host, min(max(delay, 0.0), self.options.max_crawl_delay))
        return rules, self.robots.fetches != before

    # -- one item: its fetch, the redirect chain it starts, extraction, discovery

    async def _process(self, item: Item, chain: list[_Hop]) -> None:
        unit = Unit()
        try:
            end = await self._walk(item, chain, unit)
            await self._finish(chain, end, unit)
        finally:
            for hop in chain:   # normally resolved by _finish; this covers errors
                future = self._inflight.pop(hop.key, None)
                if future is not None and not future.done():
                    future.set_result(ChainEnd(None, False, 0))
                self._head_of.pop(hop.key, None)
            if chain:
                self._waits.pop(chain[0].key, None)
        self.emit(unit)

    def _start_hop(self, chain: list[_Hop], url: str, key: str, depth: int, known: bool,
                   seq: int) -> None:
        chain.append(_Hop(url, key, depth, known, seq))
        self._inflight[key] = asyncio.get_running_loop().create_future()
        self._head_of[key] = chain[0].key

    async def _walk(self, item: Item, chain: list[_Hop], unit: Unit) -> ChainEnd:
        """Fetch the item and follow its redirects hop by hop (each hop is its own record)."""
        host, origin, holding = item.host, item.origin, True
        try:
            while True:
                hop = chain[-1]
                rules, fetched_now = await self._rules(host, origin)
                if not rules.allowed(hop.url, self.agent):
                    hop.robots = rules
                    unit.robots_blocked += 1
                    return ChainEnd(None, False, 0)
                if not holding:
                    await self.frontier.acquire(host)
                    holding = True
                elif fetched_now:
                    # robots.txt was a request to this host too: keep the spacing (RFC 9309 §2.4).
                    await self.frontier.respace(host)
                if len(chain) > 1:
                    if self._full():
                        return ChainEnd(None, False, 0, known=False)
                    self.pages += 1
                resp = await self.fetcher.get(hop.url)
                hop.resp = resp
                unit.wire_bytes += resp.wire_bytes
                self.frontier.release(host)
                holding = False
                if not resp.is_redirect:
                    return ChainEnd(resp.status, False, 0)
                location = resp.header("location") or ""
                target = resolve_url(location.strip(), hop.url)
                key = try_normalize_url(target) if target else None
                if target is None or key is None:
                    return ChainEnd(resp.status, False, 0)
                hop.redirect_to = target
                if any(h.key == key for h in chain) or len(chain) > self.options.max_redirects:
                    return ChainEnd(None, True, 0)       # loop, or more than 5 hops
                joined = await self._join(chain[0].key, key)
                if joined is not None:
                    return ChainEnd(joined.status, joined.loop, joined.hops + 1, joined.known)
                origin, host, path = split_key(key)
                if trap_reason(key, path, self.options.traps) is not None:
                    return ChainEnd(None, False, 0)
                self.frontier.claim(key)
                self._start_hop(chain, target, key, hop.depth + 1, key in self.known,
                                self.frontier.next_seq())
        finally:
            if holding:
                self.frontier.release(host)

    async def _join(self, head: str, key: str) -> ChainEnd | None:
        """The end of `key`'s chain if it is done or being fetched by another chain."""
        end = self.finals.get(key)
        if end is not None:
            return end
        future = self._inflight.get(key)
        if future is None:
            return None
        # Waiting on a chain that (transitively) waits on us would never end: that is a loop.
        probe: str | None = key
        while probe is not None:
            owner = self._head_of.get(probe)
            if owner is None:
                break
            if owner == head:
                return ChainEnd(None, True, 0)
            probe = self._waits.get(owner)
        self._waits[head] = key
        try:
            return await asyncio.shield(future)
        finally:
            self._waits.pop(head, None)

    async def _finish(self, chain: list[_Hop], end: ChainEnd, unit: Unit) -> None:
        """Records for every hop (the chain's end propagated), extraction, link discovery."""
        at = self.fetched_at()
        last = max((i for i, h in enumerate(chain) if h.resp is not None), default=-1)
        for index, hop in enumerate(chain):
            resp = hop.resp
            if resp is None:
                if hop.robots is not None:
                    self._robots_record(hop, at, unit)
                else:
                    unit.rows.append(FrontierRow(hop.key, hop.url, hop.depth, hop.item_seq,
                                                 hop.known, True))
                self._resolve(hop.key, ChainEnd(None, False, 0), store=False)
                continue
            # Redirects between this hop and the chain's end; past the limit it is a "loop".
            # A chain that ends without a status (network error, a hop robots.txt disallows
            # or that looks like a trap) is broken too: FetchRecord says so with redirect_loop.
            hops = last - index + end.hops
            loop = (end.loop or hops > self.options.max_redirects
                    or (end.known and end.status is None))
            mine = ChainEnd(None if loop else end.status, loop, hops, end.known)
            error, extraction, packed = resp.error, None, None
            country = (self.geo.country(resp.ip) if self.geo is not None and resp.ip
                       else None)
            if resp.status is not None and 200 <= resp.status < 300:
                result = await self.extractor.extract((
                    resp.body, hop.url, resp.headers, resp.status, self.extractor.limits,
                    hop.key, at, resp.ip, country, resp.content_type))
                if isinstance(result, str):
                    error = result
                else:
                    extraction, discovered, packed = result
                    self._discover(discovered, hop.depth + 1, unit)
            hop.resp = None     # the body is not needed any more
            unit.records.append(self._record(hop, resp, at, error, extraction, mine.status
                                             if hop.redirect_to is not None else None,
                                             hop.redirect_to is not None and loop, country,
                                             packed))
            unit.rows.append(FrontierRow(hop.key, hop.url, hop.depth, hop.item_seq, hop.known,
                                         True, mine.status, mine.loop, mine.hops))
            self._resolve(hop.key, mine, store=True)

    def _resolve(self, key: str, end: ChainEnd, *, store: bool) -> None:
        if store:
            self.finals[key] = end
        future = self._inflight.pop(key, None)
        if future is not None and not future.done():
            future.set_result(end)
        self._head_of.pop(key, None)

    def _record(self, hop: _Hop, resp: Response, at: dt.datetime, error: str | None,
                extraction: Extraction | None, final_status: int | None,
                loop: bool, country: str | None, packed: object | None) -> FetchRecord:
        return FetchRecord(url=hop.url, url_key=hop.key, fetched_at=at, status=resp.status,
                           error=error, ip=resp.ip, country=country,
                           content_type=resp.content_type, extraction=extraction,
                           redirect_to=hop.redirect_to, redirect_final_status=final_status,
                           redirect_loop=loop, packed=packed)

    def _robots_record(self, hop: _Hop, at: dt.datetime, unit: Unit) -> None:
        rules = hop.robots
        assert rules is not None
        unit.rows.append(FrontierRow(hop.key, hop.url, hop.depth, hop.item_seq, hop.known, True))
        if not hop.known:
            return  # never indexed: nothing to drop, no page to create
        # An unreachable robots.txt is a complete disallow (RFC 9309 §2.3.1.4): the page is
        # dropped like one robots.txt disallows (docs/world.md, the index truth rule).
        error = (f"robots.txt unreachable ({rules.error or rules.status}): complete disallow"
                 if rules.unreachable else "disallowed by robots.txt")
        unit.records.append(FetchRecord(hop.url, hop.key, at, None, error=error,
                                        robots_disallowed=True))

    def _discover(self, links: Discovered, depth: int, unit: Unit) -> None:
        follow_nofollow = self.options.follow_nofollow
        seen = self.frontier.seen
        for url, key, nofollow in links:
            if (nofollow and not follow_nofollow) or key in seen:
                continue
            item = self.frontier.admit(url, key, depth, known=key in self.known)
            if item is not None:
                unit.rows.append(FrontierRow(key, item.url, depth, item.seq, item.known, False))


def fetched_at_clock(as_of: dt.date | None) -> Callable[[], dt.datetime]:
    """`--as-of DATE` pins every fetch to noon UTC of that date; otherwise the real time."""
    if as_of is not None:
        pinned = dt.datetime.combine(as_of, dt.time(12, 0), dt.UTC)
        return lambda: pinned
    return lambda: dt.datetime.now(dt.UTC)


def admit_seeds(frontier: Frontier, seeds: Sequence[str], known: set[str]) -> list[FrontierRow]:
    """Admit start URLs (scope is built from them, so they are always in scope)."""
    rows: list[FrontierRow] = []
    for url in seeds:
        key = try_normalize_url(url)
        if key is None:
            raise InvalidInput("SEED", f"{url!r} is not an http(s) URL")
        item = frontier.admit(url, key, 0, known=key in known)
        if item is not None:
            rows.append(FrontierRow(key, url, 0, item.seq, item.known, False))
    return rows
