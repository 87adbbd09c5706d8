"""The crawl frontier: scope, trap limits, per-host queues with politeness, and its table.

Breadth-first within a host, round-robin across hosts; sources/crawl.py pulls from it and
index/crawljob.py persists its changes in the index file so a crawl resumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import duckdb

from inlink.index.store import run
from inlink.urls import registrable_domain


class Scope(StrEnum):
    HOST = "host"        # only the seeds' hosts
    DOMAIN = "domain"    # the seeds' registrable domains and all their subdomains
    ANY = "any"          # every host a link leads to


@dataclass(frozen=True, slots=True)
class TrapLimits:
    """Limits that keep calendars, session URLs and infinite link spaces finite."""

    max_pages_per_host: int = 10_000   # URLs admitted per host
    max_url_length: int = 2_048        # characters of the normalized URL
    max_path_depth: int = 16           # path segments
    max_segment_repeats: int = 3       # occurrences of one path segment (/a/b/a/b/a/b/...)
    max_depth: int = 1_000_000         # link hops from a seed


def split_key(key: str) -> tuple[str, str, str]:
    """(origin "scheme://authority", host, path+query) of a normalized URL key."""
    start = key.index("://") + 3
    slash = key.find("/", start)
    authority = key[start:] if slash < 0 else key[start:slash]
    path = "/" if slash < 0 else key[slash:]
    if authority.startswith("["):
        host = authority[: authority.index("]") + 1]
    else:
        host = authority.partition(":")[0]
    return key[:start] + authority, host, path


def trap_reason(key: str, path: str, limits: TrapLimits) -> str | None:
    """Why a URL looks like a crawler trap, or None."""
    if len(key) > limits.max_url_length:
        return "url_too_long"
    segments = [s for s in path.split("?", 1)[0].split("/") if s]
    if len(segments) > limits.max_path_depth:
        return "path_too_deep"
    if segments:
        counts: dict[str, int] = {}
        for seg in segments:
            counts[seg] = counts.get(seg, 0) + 1
            if counts[seg] > limits.max_segment_repeats:
                return "repeating_path"
    return None


@dataclass(slots=True)
class Item:
    """One URL to fetch."""

    url: str
    key: str
    host: str
    origin: str
    depth: int
    seq: int                  # admission order: breadth-first within a host
    known: bool = False       # the store had this page before this crawl started

    def __lt__(self, other: Item) -> bool:
        return (self.depth, self.seq) < (other.depth, other.seq)


@dataclass(slots=True)
class HostSlot:
    """Per-host politeness (cf. scrapy's downloader Slot): concurrency and request spacing."""

    host: str
    concurrency: int
    delay: float
    queue: list[Item] = field(default_factory=list)   # heap by (depth, seq)
    active: int = 0
    next_time: float = 0.0                           # monotonic: earliest next request start
    admitted: int = 0
    scheduled: bool = False                          # in the ready ring or the timer heap
    max_seen_active: int = 0


class Frontier:
    """Admission (scope, dedup, traps) and scheduling (per-host politeness, round-robin).

    Workers call `await next()` to get an Item together with its host slot held, and
    `release(item.host)` when done; a redirect hop to another URL takes `acquire(host)`.
    """

    def __init__(self, *, scope: Scope, seeds: Iterable[str], per_host: int, delay: float,
                 traps: TrapLimits = TrapLimits(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.scope = scope
        self.traps = traps
        self.per_host = per_host
        self.default_delay = delay
        self.clock = clock
        self.seed_hosts: set[str] = set()
        self.seed_domains: set[str] = set()
        for key in seeds:
            _, host, _ = split_key(key)
            self.seed_hosts.add(host)
            self.seed_domains.add(registrable_domain(host))
        self.seen: set[str] = set()        # every key ever admitted or claimed
        self.slots: dict[str, HostSlot] = {}
        self._ready: deque[HostSlot] = deque()
        self._timers: list[tuple[float, int, HostSlot]] = []
        self._tick = 0
        self._seq = 0
        self._wake = asyncio.Event()
        self.pending = 0                    # items queued, not yet handed out
        self.rejected: dict[str, int] = {}
        self.closed = False

    # -- admission

    def in_scope(self, host: str) -> bool:
        if self.scope is Scope.ANY:
            return True
        if self.scope is Scope.HOST:
            return host in self.seed_hosts
        return registrable_domain(host) in self.seed_domains

    def check(self, key: str) -> tuple[str, str, str] | str:
        """(origin, host, path) when `key` may be admitted, else the reason it may not."""
        if key in self.seen:
            return "seen"
        origin, host, path = split_key(key)
        if not self.in_scope(host):
            return "out_of_scope"
        reason = trap_reason(key, path, self.traps)
        if reason is not None:
            return reason
        slot = self.slots.get(host)
        if slot is not None and slot.admitted >= self.traps.max_pages_per_host:
            return "host_page_limit"
        return origin, host, path

    def admit(self, url: str, key: str, depth: int, *, known: bool = False,
              check_scope: bool = True) -> Item | None:
        """Queue a URL unless it was seen, is out of scope or looks like a trap."""
        if depth > self.traps.max_depth:
            self._reject("too_deep")
            return None
        checked = self.check(key)
        if isinstance(checked, str):
            if checked == "out_of_scope" and not check_scope:
                origin, host, _ = split_key(key)
            else:
                if checked != "seen":
                    self._reject(checked)
                return None
        else:
            origin, host, _ = checked
        self._seq += 1
        item = Item(url, key, host, origin, depth, self._seq, known)
        self.seen.add(key)
        slot = self.slot(host)
        slot.admitted += 1
        heapq.heappush(slot.queue, item)
        self.pending += 1
        self._schedule(slot)
        return item

    def restore(self, item: Item, *, queued: bool) -> None:
        """Put back an item from the frontier table (resume); `queued` False = already done."""
        self._seq = max(self._seq, item.seq)
        self.seen.add(item.key)
        slot = self.slot(item.host)
        slot.admitted += 1
        if queued:
            heapq.heappush(slot.queue, item)
            self.pending += 1
            self._schedule(slot)

    def claim(self, key: str) -> bool:
        """Mark a URL as taken outside the queues (a redirect hop); False if already seen."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    # -- politeness

    def slot(self, host: str) -> HostSlot:
        slot = self.slots.get(host)
        if slot is None:
            slot = self.slots[host] = HostSlot(host, self.per_host, self.default_delay)
        return slot

    def set_delay(self, host: str, delay: float) -> None:
        """Change a host's spacing (robots.txt Crawl-delay); applies from the next request."""
        slot = self.slot(host)
        if delay != slot.delay:
            slot.next_time += delay - slot.delay
            slot.delay = delay

    def _schedule(self, slot: HostSlot) -> None:
        if slot.scheduled or not slot.queue or slot.active >= slot.concurrency:
            return
        slot.scheduled = True
        now = self.clock()
        if slot.next_time <= now:
            self._ready.append(slot)
        else:
            self._tick += 1
            heapq.heappush(self._timers, (slot.next_time, self._tick, slot))
        self._wake.set()

    def _take(self, slot: HostSlot) -> None:
        now = self.clock()
        slot.active += 1
        slot.max_seen_active = max(slot.max_seen_active, slot.active)
        slot.next_time = max(now, slot.next_time) + slot.delay

    async def next(self) -> Item | None:
        """The next URL whose host may be fetched now, its slot taken; None when finished."""
        while True:
            now = self.clock()
            while self._timers and self._timers[0][0] <= now:
                _, _, slot = heapq.heappop(self._timers)
                self._ready.append(slot)
            while self._ready:
                slot = self._ready.popleft()
                slot.scheduled = False
                if not slot.queue or slot.active >= slot.concurrency:
                    continue
                if slot.next_time > now:
                    self._schedule(slot)
                    continue
                item = heapq.heappop(slot.queue)
                self.pending -= 1
                self._take(slot)
                self._schedule(slot)     # round-robin: back of the ring (or its timer)
                return item
            if self.closed:
                return None
            self._wake.clear()
            timeout = self._timers[0][0] - now if self._timers else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def acquire(self, host: str) -> None:
        """Take a host's slot outside the queue order (redirect hops, robots.txt)."""
        slot = self.slot(host)
        while slot.active >= slot.concurrency or slot.next_time > self.clock():
            wait = max(slot.next_time - self.clock(), 0.0)
            await asyncio.sleep(wait if wait > 0 else 0.005)
        self._take(slot)

    async def respace(self, host: str) -> None:
        """Holding the slot, wait out the host's delay again (after a robots.txt request)."""
        slot = self.slot(host)
        wait = slot.next_time - self.clock()
        if wait > 0:
            await asyncio.sleep(wait)
        slot.next_time = max(self.clock(), slot.next_time) + slot.delay

    def release(self, host: str) -> None:
        slot = self.slots[host]
        slot.active -= 1
        self._schedule(slot)

    def close(self) -> None:
        """No more work will arrive: `next()` returns None once the queues are empty."""
        self.closed = True
        self._wake.set()

    def drain(self) -> None:
        """Drop every queued item (max pages reached)."""
        for slot in self.slots.values():
            self.pending -= len(slot.queue)
            slot.queue.clear()
        self._ready.clear()
        self._timers.clear()
        for slot in self.slots.values():
            slot.scheduled = False


# ----------------------------------------------------------------------- persistence

FRONTIER_SQL = """
CREATE TABLE IF NOT EXISTS crawl_frontier (
    job          VARCHAR NOT NULL,
    seq          BIGINT NOT NULL,    -- the batch that made this change (manifest position)
    url_key      VARCHAR NOT NULL,
    url          VARCHAR NOT NULL,
    depth        INTEGER NOT NULL,
    item_seq     BIGINT NOT NULL,    -- admission order
    known        BOOLEAN NOT NULL,
    done         BOOLEAN NOT NULL,   -- false: admitted (queued); true: finished
    final_status INTEGER,            -- end of the redirect chain this URL starts
    loop         BOOLEAN,
    hops         INTEGER
)
"""


@dataclass(frozen=True, slots=True)
class FrontierRow:
    url_key: str
    url: str
    depth: int
    item_seq: int
    known: bool
    done: bool
    final_status: int | None = None
    loop: bool | None = None
    hops: int | None = None


def ensure_frontier_table(conn: duckdb.DuckDBPyConnection) -> None:
    run(conn, FRONTIER_SQL)


def save_frontier_rows(conn: duckdb.DuckDBPyConnection, job: str, seq: int,
                       rows: list[FrontierRow]) -> None:
    """Append one batch's frontier changes (call inside a transaction)."""
    if not rows:
        return
    import pyarrow as pa

    table = pa.table({
        "job": pa.array([job] * len(rows), pa.string()),
        "seq": pa.array([seq] * len(rows), pa.int64()),
        "url_key": pa.array([r.url_key for r in rows], pa.string()),
        "url": pa.array([r.url for r in rows], pa.string()),
        "depth": pa.array([r.depth for r in rows], pa.int32()),
        "item_seq": pa.array([r.item_seq for r in rows], pa.int64()),
        "known": pa.array([r.known for r in rows], pa.bool_()),
        "done": pa.array([r.done for r in rows], pa.bool_()),
        "final_status": pa.array([r.final_status for r in rows], pa.int32()),
        "loop": pa.array([r.loop for r in rows], pa.bool_()),
        "hops": pa.array([r.hops for r in rows], pa.int32()),
    })
    conn.register("frontier_rows", table)
    try:
        run(conn, "INSERT INTO crawl_frontier SELECT * FROM frontier_rows")
    finally:
        conn.unregister("frontier_rows")


def load_frontier_rows(conn: duckdb.DuckDBPyConnection, job: str,
                       committed: int) -> list[FrontierRow]:
    """The frontier of a job as of its last committed batch; later changes are discarded."""
    run(conn, "DELETE FROM crawl_frontier WHERE job = ? AND seq > ?", [job, committed])
    rows: list[tuple[Any, ...]] = run(
        conn,
        "SELECT url_key, arg_max(url, seq), min(depth), min(item_seq), bool_or(known), "
        "bool_or(done), arg_max(final_status, done::INT * 1000000000 + seq), "
        "arg_max(loop, done::INT * 1000000000 + seq), arg_max(hops, done::INT * 1000000000 + seq) "
        "FROM crawl_frontier WHERE job = ? GROUP BY url_key ORDER BY min(item_seq)", [job])
    return [FrontierRow(k, u, d, s, bool(kn), bool(dn), fs, lp, hp)
            for k, u, d, s, kn, dn, fs, lp, hp in rows]


def clear_frontier(conn: duckdb.DuckDBPyConnection, job: str) -> None:
    run(conn, "DELETE FROM crawl_frontier WHERE job = ?", [job])
