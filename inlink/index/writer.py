"""Apply batches of fetch records to the store: pages, link state and new/lost events.

Each batch is diffed in memory against the links its pages kept live last time, then written
in one transaction together with its manifest position, so a crash loses at most that batch
and a resumed job continues exactly where the committed data ends.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from inlink.index.rows import LINK_COLUMNS, PackedFetch, complete_links, to_packed
from inlink.index.store import Store, run
from inlink.sources.record import FetchRecord


@dataclass(frozen=True, slots=True)
class ManifestUpdate:
    """Where a job stands after this batch; committed in the batch's transaction."""

    job: str
    kind: str
    path: str
    position: int
    records_ok: int
    records_bad: int
    done: bool = False
    digest: str | None = None
    size: int | None = None
    state: str | None = None


@dataclass(slots=True)
class BatchStats:
    batch_id: int = 0
    fetches: int = 0
    stale: int = 0
    new_links: int = 0
    lost_links: int = 0
    states: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _PageRow:
    url_key: str
    first_crawl: dt.datetime
    last_crawl: dt.datetime
    links: dict[int, int]               # live link_id -> attr hash


# The state, after this batch, of a link the batch touched: a list indexed by these (a
# list, not a dataclass: the writer makes one per link written).
_ROW, _LIVE, _FIRST, _LAST, _LOST_AT, _REASON, _FIRST_FETCH, _LAST_FETCH, _FULL, _ATTR, \
    _WHERE = range(11)
# _ROW: the batch link row it was last live in (-1: only lost in this batch); _FULL: its
# attributes changed, or it came back: rewrite every column; _WHERE: whether the links table
# has it. A link id includes its source page, so a link of a page the index never had is
# ABSENT, one its page kept live last time is IN_TABLE, and only a link new to a known page's
# live set (never seen, or lost before and back) has to be looked up (MAYBE).
IN_TABLE, MAYBE, ABSENT = 0, 1, 2


class IndexWriter:
    """Turns fetch records into committed index rows; one per job, used from one thread."""

    def __init__(self, store: Store, job: str = "default") -> None:
        self.store = store
        self.job = job

    def apply(self, records: Sequence[FetchRecord],
              manifest: ManifestUpdate | None = None) -> BatchStats:
        """Apply one batch atomically; returns what it changed."""
        return self.apply_packed(to_packed(records), manifest)

    def apply_packed(self, fetches: Sequence[PackedFetch],
                     manifest: ManifestUpdate | None = None) -> BatchStats:
        """`apply` for fetches already classified and packed (index.rows)."""
        with self.store.transaction() as conn:
            return self._apply(conn, fetches, manifest)

    # -- the batch, inside its transaction

    def _apply(self, conn: duckdb.DuckDBPyConnection, fetches: Sequence[PackedFetch],
               manifest: ManifestUpdate | None) -> BatchStats:
        stats = BatchStats(batch_id=self.store.next_id(conn, "batches", "batch_id"))
        batch_id = stats.batch_id
        next_fetch = self.store.next_id(conn, "fetches", "fetch_id")
        ordered = sorted(fetches, key=lambda f: f.fetched_at)
        stored = self._load_pages(conn, {f.url_key for f in ordered})
        pages = dict(stored)
        touched: dict[int, list[Any]] = {}
        # Pages the index never had, fetched once so far in this batch: every link is new and
        # not in the table, so their rows are inserted as a block without per-link state.
        fresh: dict[str, tuple[PackedFetch, int, int]] = {}   # key -> (fetch, row, fetch_id)
        # `new` events: a link's first one is its links row (first_seen, first_batch_id);
        # a link seen again after being lost gets an event row: (batch link row, time, id).
        # A MAYBE link is a return only when the table has it (_write_links probes).
        returns: list[tuple[int, dt.datetime, int]] = []
        maybe_returns: list[tuple[int, dt.datetime, int]] = []
        lost_events: list[tuple[Any, ...]] = []
        fetch_rows: list[tuple[Any, ...]] = []
        page_rows: dict[str, tuple[Any, ...]] = {}
        states = stats.states
        base = 0
        bases: list[int] = []
        for f in ordered:
            bases.append(base)
            base += len(f.link_ids)

        for f, first_row in zip(ordered, bases, strict=True):
            at = f.fetched_at
            fetch_id = next_fetch
            next_fetch += 1
            states[f.state] = states.get(f.state, 0) + 1
            previous = pages.get(f.url_key)
            applied = previous is None or at >= previous.last_crawl
            fetch_rows.append((fetch_id, batch_id, f.url_key, f.url, at, f.status, f.state,
                               applied, f.source, f.ip, f.evidence_path, f.evidence_offset,
                               f.evidence_digest))
            if not applied:
                # An older capture than the one already applied (archives arrive out of order):
                # kept as a fetch for evidence, but history only moves forward.
                stats.stale += 1
                continue
            n = len(f.link_ids)
            # Repeats of an id on one page: the last one wins (as a dict would have it).
            hashes = dict(zip(f.link_ids, f.link_hashes, strict=True))
            if previous is None and len(hashes) == n:
                fresh[f.url_key] = (f, first_row, fetch_id)
                stats.new_links += n
                page = pages[f.url_key] = _PageRow(f.url_key, at, at, hashes)
                page_rows[f.url_key] = _page_row(f, fetch_id, page)
                continue
            if f.url_key in fresh:
                # Fetched again in this batch: its first fetch's links need their own state.
                f0, row0, fetch0 = fresh.pop(f.url_key)
                at0 = f0.fetched_at
                for lid, attr, row in zip(f0.link_ids, f0.link_hashes, itertools.count(row0),
                                          strict=False):
                    touched[lid] = [row, True, at0, at0, None, None, fetch0, fetch0, True, attr,
                                    ABSENT]
            live = dict(zip(f.link_ids, range(first_row, first_row + n), strict=True))
            old = previous.links if previous else {}
            known = stored[f.url_key].links if f.url_key in stored else None
            reason = f.lost_reason
            for lid, row in live.items():
                attr = hashes[lid]
                t = touched.get(lid)
                if lid not in old:
                    stats.new_links += 1
                    if t is None:
                        where = (ABSENT if known is None
                                 else MAYBE if lid not in known else IN_TABLE)
                        touched[lid] = [row, True, at, at, None, None, fetch_id, fetch_id, True,
                                        attr, where]
                        if where == IN_TABLE:
                            returns.append((row, at, lid))
                        elif where == MAYBE:
                            maybe_returns.append((row, at, lid))
                        continue
                    returns.append((row, at, lid))      # live earlier in this batch, lost
                elif t is None:
                    touched[lid] = [row, True, at, at, None, None, fetch_id, fetch_id,
                                    old[lid] != attr, attr, IN_TABLE]
                    continue
                t[_ROW], t[_LIVE], t[_LAST], t[_LOST_AT], t[_REASON] = row, True, at, None, None
                t[_FULL] = t[_FULL] or t[_ATTR] != attr or lid not in old
                t[_ATTR], t[_LAST_FETCH] = attr, fetch_id
            if old:
                last_crawl = previous.last_crawl if previous else at
                gone = old.keys() - live.keys()
                stats.lost_links += len(gone)
                for lid in gone:
                    t = touched.get(lid)
                    if t is None:
                        # Lost without being live in this batch before: only its state changes.
                        touched[lid] = [-1, False, at, last_crawl, at, reason, fetch_id, fetch_id,
                                        False, old[lid], IN_TABLE]
                    else:
                        t[_LIVE], t[_LOST_AT], t[_REASON], t[_LAST] = False, at, reason, last_crawl
                    lost_events.append((at.date(), at, lid, reason, batch_id))
            page = pages[f.url_key] = _PageRow(
                f.url_key, previous.first_crawl if previous else at, at, hashes)
            page_rows[f.url_key] = _page_row(f, fetch_id, page)
        stats.fetches = len(ordered)

        links = complete_links(ordered)
        self._write(conn, stats, links, touched, list(fresh.values()), returns, maybe_returns,
                    lost_events, fetch_rows, page_rows, set(stored), manifest)
        return stats

    @staticmethod
    def _load_pages(conn: duckdb.DuckDBPyConnection, keys: set[str]) -> dict[str, _PageRow]:
        if not keys:
            return {}
        wanted = pa.table({"url_key": pa.array(sorted(keys), pa.string())})
        conn.register("wanted_pages", wanted)
        try:
            # The keys first: a join that also projects the pages' link lists reads the lists
            # of every row it scans, found or not (36,000 pages: 14.8 ms for 500 new keys,
            # against 3.2-3.8 ms for the keys alone), and a first ingest finds none.
            if not run(conn, "SELECT 1 FROM pages p SEMI JOIN wanted_pages w USING (url_key) "
                             "LIMIT 1"):
                return {}
            rows = run(conn,
                       "SELECT p.url_key, p.first_crawl, p.last_crawl, p.link_ids, p.link_hashes "
                       "FROM pages p JOIN wanted_pages w USING (url_key)")
        finally:
            conn.unregister("wanted_pages")
        return {key: _PageRow(key, first, last, dict(zip(ids or [], hashes or [], strict=True)))
                for key, first, last, ids, hashes in rows}

    def _write(self, conn: duckdb.DuckDBPyConnection, stats: BatchStats, links: pa.Table,
               touched: dict[int, list[Any]], fresh: list[tuple[PackedFetch, int, int]],
               returns: list[tuple[int, dt.datetime, int]],
               maybe_returns: list[tuple[int, dt.datetime, int]],
               lost_events: list[tuple[Any, ...]], fetch_rows: list[tuple[Any, ...]],
               page_rows: dict[str, tuple[Any, ...]], stored: set[str],
               manifest: ManifestUpdate | None) -> None:
        if fetch_rows:
            _insert(conn, "fetches", _FETCH_COLUMNS, fetch_rows)
        if page_rows:
            replaced = [key for key in page_rows if key in stored]
            if replaced:
                conn.register("batch_keys", pa.table({"url_key": pa.array(replaced,
                                                                          pa.string())}))
                run(conn, "DELETE FROM pages WHERE url_key IN (SELECT url_key FROM batch_keys)")
                conn.unregister("batch_keys")
            _insert(conn, "pages", _PAGE_COLUMNS, list(page_rows.values()))
        existing: set[int] = set()
        if touched or fresh:
            existing = self._write_links(conn, links, touched, fresh, stats.batch_id)
        returns = returns + [r for r in maybe_returns if r[2] in existing]
        if returns:
            returns.sort()
            picked = links.select(_EVENT_FROM_LINK).take(
                pa.array([row for row, _, _ in returns], pa.int64()))
            n = len(returns)
            seen_at = pa.array([at for _, at, _ in returns], pa.timestamp("us"))
            events = pa.table({
                "day": pc.cast(seen_at, pa.date32()), "seen_at": seen_at,
                "link_id": picked.column("link_id"),
                "event": pa.repeat(pa.scalar("new", pa.string()), n),
                "reason": pa.nulls(n, pa.string()),
                **{name: picked.column(name) for name in _EVENT_FROM_LINK[1:]},
                "batch_id": pa.repeat(pa.scalar(stats.batch_id, pa.int64()), n),
            })
            _insert(conn, "link_changes", _EVENT_COLUMNS, events)
        if lost_events:
            # Lost links are known here only by id: their targets come from the stored rows.
            conn.register("lost_rows", _arrow(("day", "seen_at", "link_id", "reason", "batch_id"),
                                              lost_events))
            run(conn,
                "INSERT INTO link_changes SELECT e.day, e.seen_at, e.link_id, 'lost', e.reason, "
                "l.target_domain, l.target_host, l.target_key, l.source_key, l.source_domain, "
                "l.internal, e.batch_id FROM lost_rows e JOIN links l USING (link_id)")
            conn.unregister("lost_rows")
        run(conn, "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
            [stats.batch_id, self.job, dt.datetime.now(dt.UTC).replace(tzinfo=None),
             stats.fetches, stats.new_links, stats.lost_links])
        if manifest is not None:
            _save_manifest(conn, manifest)

    @staticmethod
    def _write_links(conn: duckdb.DuckDBPyConnection, links: pa.Table,
                     touched: dict[int, list[Any]],
                     fresh: list[tuple[PackedFetch, int, int]], batch_id: int) -> set[int]:
        """Insert and update the batch's link rows; returns the MAYBE links the table had."""
        # The table is probed only for the few links that may be in it (see _WHERE).
        probe = [lid for lid, t in touched.items() if t[_WHERE] == MAYBE]
        existing: set[int] = set()
        if probe:
            conn.register("probe_ids", pa.table({"link_id": pa.array(probe, pa.int64())}))
            existing = {row[0] for row in run(
                conn, "SELECT l.link_id FROM links l JOIN probe_ids t USING (link_id)")}
            conn.unregister("probe_ids")
        inserts = _History(batch_id)
        for f, row, fetch_id in fresh:
            inserts.add_block(row, len(f.link_ids), f.fetched_at, fetch_id)
        full = _History(batch_id)
        light: list[tuple[int, list[Any]]] = []
        for lid, t in touched.items():
            where = t[_WHERE]
            if where == ABSENT or (where == MAYBE and lid not in existing):
                inserts.add(t)
            elif t[_FULL] and t[_ROW] >= 0:
                full.add(t)
            else:
                light.append((lid, t))
        if inserts.rows:
            _insert(conn, "links", _LINK_COLUMNS, inserts.table(links))
        if full.rows:
            conn.register("full_rows", full.table(links))
            sets = ", ".join(f"{c} = f.{c}" for c in _LINK_COLUMNS
                             if c not in ("link_id", "first_seen", "first_fetch_id",
                                          "first_batch_id"))
            run(conn, f"UPDATE links SET {sets} FROM full_rows f "
                      "WHERE links.link_id = f.link_id")
            conn.unregister("full_rows")
        if light:
            rows = pa.array([t[_ROW] if t[_ROW] >= 0 else None for _, t in light], pa.int64())
            source = links.select(("source_ip", "source_subnet", "source_country",
                                   "source_title")).take(rows)
            table = pa.table({
                "link_id": pa.array([lid for lid, _ in light], pa.int64()),
                "live": pa.array([t[_LIVE] for _, t in light], pa.bool_()),
                "last_seen": pa.array([t[_LAST] for _, t in light], pa.timestamp("us")),
                "lost_at": pa.array([t[_LOST_AT] for _, t in light], pa.timestamp("us")),
                "lost_reason": pa.array([t[_REASON] for _, t in light], pa.string()),
                "last_fetch_id": pa.array([t[_LAST_FETCH] for _, t in light], pa.int64()),
                "source_ip": source.column("source_ip"),
                "source_subnet": source.column("source_subnet"),
                "source_country": source.column("source_country"),
                "source_title": source.column("source_title"),
            })
            conn.register("light_rows", table)
            # A lost link keeps the source facts of the fetch it was last seen in.
            run(conn,
                "UPDATE links SET live = s.live, last_seen = s.last_seen, lost_at = s.lost_at, "
                "lost_reason = s.lost_reason, "
                "last_fetch_id = CASE WHEN s.live THEN s.last_fetch_id "
                "ELSE links.last_fetch_id END, "
                "source_ip = CASE WHEN s.live THEN s.source_ip ELSE links.source_ip END, "
                "source_subnet = CASE WHEN s.live THEN s.source_subnet "
                "ELSE links.source_subnet END, "
                "source_country = CASE WHEN s.live THEN s.source_country "
                "ELSE links.source_country END, "
                "source_title = CASE WHEN s.live THEN s.source_title "
                "ELSE links.source_title END "
                "FROM light_rows s WHERE links.link_id = s.link_id")
            conn.unregister("light_rows")
        return existing


class _Runs:
    """A column built from runs of one value: a batch writes a page's new links with the
    same history (first seen when the page was fetched...), so the values are kept once per
    run and repeated by Arrow (`column`). Converting a Python datetime per link was most of
    the writer thread's Python time, held under the GIL the reader needs."""

    __slots__ = ("lengths", "values")

    def __init__(self) -> None:
        self.lengths: list[int] = []
        self.values: list[Any] = []

    def add(self, n: int, value: Any) -> None:
        """n more rows of `value` (a run of the previous value grows)."""
        if self.values and self.values[-1] == value and type(self.values[-1]) is type(value):
            self.lengths[-1] += n
        else:
            self.lengths.append(n)
            self.values.append(value)

    def column(self, kind: pa.DataType) -> pa.Array:
        """The rows of scalar values."""
        return self._rows([pa.array(self.values, kind)])[0]

    def columns(self, kinds: Sequence[pa.DataType]) -> list[pa.Array]:
        """The rows of tuple values, a column per field."""
        per_run = list(zip(*self.values, strict=True)) if self.values else [()] * len(kinds)
        return self._rows([pa.array(v, k) for v, k in zip(per_run, kinds, strict=True)])

    def _rows(self, per_run: list[pa.Array]) -> list[pa.Array]:
        if len(self.lengths) == sum(self.lengths):      # every run is one row
            return per_run
        index = pa.array(np.repeat(np.arange(len(self.lengths), dtype=np.int64), self.lengths))
        return [values.take(index) for values in per_run]


class _History:
    """The history columns of link rows to write (as runs), and the batch rows holding the
    rest."""

    _COLUMNS = (("live", pa.bool_()), ("first_seen", pa.timestamp("us")),
                ("last_seen", pa.timestamp("us")), ("lost_at", pa.timestamp("us")),
                ("lost_reason", pa.string()), ("first_fetch_id", pa.int64()),
                ("last_fetch_id", pa.int64()))

    def __init__(self, batch_id: int) -> None:
        self.batch_id = batch_id    # first_batch_id of the rows inserted
        self.rows: list[int] = []
        self.in_order = True        # rows == 0, 1, 2...
        self.runs = _Runs()         # runs of the history tuple, in _COLUMNS order

    def add(self, t: list[Any]) -> None:
        self.in_order = self.in_order and t[_ROW] == len(self.rows)
        self.rows.append(t[_ROW])
        self.runs.add(1, (t[_LIVE], t[_FIRST], t[_LAST], t[_LOST_AT], t[_REASON],
                          t[_FIRST_FETCH], t[_LAST_FETCH]))

    def add_block(self, row: int, n: int, at: dt.datetime, fetch_id: int) -> None:
        """n new live links in consecutive batch rows, all first seen at `at`."""
        self.in_order = self.in_order and row == len(self.rows)
        self.rows.extend(range(row, row + n))
        self.runs.add(n, (True, at, at, None, None, fetch_id, fetch_id))

    def table(self, links: pa.Table) -> pa.Table:
        """Full link rows: LINK_COLUMNS from the batch rows (the row a link was last live
        in, so its attr_hash too), the history from here."""
        # A batch of new pages inserts every row in order: no copy needed then.
        table = links if self.in_order and len(self.rows) == links.num_rows else links.take(
            pa.array(self.rows, pa.int64()))
        columns = self.runs.columns([kind for _, kind in self._COLUMNS])
        for (name, _), column in zip(self._COLUMNS, columns, strict=True):
            table = table.append_column(name, column)
        table = table.append_column("first_batch_id", pa.repeat(
            pa.scalar(self.batch_id, pa.int64()), table.num_rows))
        return table.select(list(_LINK_COLUMNS))


_FETCH_COLUMNS = ("fetch_id", "batch_id", "url_key", "url", "fetched_at", "status", "state",
                  "applied", "source", "ip", "evidence_path", "evidence_offset",
                  "evidence_digest")
_PAGE_COLUMNS = ("url_key", "url", "host", "domain", "first_crawl", "last_crawl", "fetch_id",
                 "status", "state", "error", "ip", "country", "content_type", "title",
                 "language", "encoding", "size", "internal_links", "external_links",
                 "noindex", "nofollow", "canonical", "redirect_to", "link_ids", "link_hashes")
_LINK_COLUMNS = (*LINK_COLUMNS, "live", "first_seen", "last_seen", "lost_at", "lost_reason",
                 "first_fetch_id", "last_fetch_id", "first_batch_id")
_EVENT_COLUMNS = ("day", "seen_at", "link_id", "event", "reason", "target_domain", "target_host",
                  "target_key", "source_key", "source_domain", "internal", "batch_id")
_EVENT_FROM_LINK = ("link_id", "target_domain", "target_host", "target_key", "source_key",
                    "source_domain", "internal")

_TYPES: dict[str, pa.DataType] = {
    "link_ids": pa.list_(pa.int64()), "link_hashes": pa.list_(pa.int64()),
    "first_crawl": pa.timestamp("us"), "last_crawl": pa.timestamp("us"),
    "fetched_at": pa.timestamp("us"), "first_seen": pa.timestamp("us"),
    "last_seen": pa.timestamp("us"), "lost_at": pa.timestamp("us"),
    "seen_at": pa.timestamp("us"),
    "day": pa.date32(),
}
_INT64 = {"fetch_id", "batch_id", "link_id", "attr_hash", "first_fetch_id", "last_fetch_id",
          "first_batch_id",
          "size", "evidence_offset"}
_INT32 = {"status", "internal_links", "external_links", "links_count"}
_BOOL = {"applied", "noindex", "nofollow", "internal", "ugc", "sponsored", "live"}


def _column_type(name: str) -> pa.DataType:
    if name in _TYPES:
        return _TYPES[name]
    if name in _INT64:
        return pa.int64()
    if name in _INT32:
        return pa.int32()
    if name in _BOOL:
        return pa.bool_()
    return pa.string()


def _arrow(columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> pa.Table:
    data = list(zip(*rows, strict=True))
    return pa.table({name: pa.array(list(values), _column_type(name))
                     for name, values in zip(columns, data, strict=True)})


def _insert(conn: duckdb.DuckDBPyConnection, table: str, columns: tuple[str, ...],
            rows: list[tuple[Any, ...]] | pa.Table) -> None:
    batch = rows if isinstance(rows, pa.Table) else _arrow(columns, rows)
    conn.register("insert_rows", batch)
    run(conn, f"INSERT INTO {table} ({', '.join(columns)}) "
              f"SELECT {', '.join(columns)} FROM insert_rows")
    conn.unregister("insert_rows")


def _page_row(f: PackedFetch, fetch_id: int, page: _PageRow) -> tuple[Any, ...]:
    facts = f.facts or _NO_FACTS
    return (f.url_key, f.url, f.host, f.domain, page.first_crawl, f.fetched_at, fetch_id,
            f.status, f.state, f.error, f.ip, f.country, f.content_type, *facts,
            f.redirect_to, list(page.links.keys()), list(page.links.values()))


_NO_FACTS = (None,) * 9


def _save_manifest(conn: duckdb.DuckDBPyConnection, m: ManifestUpdate) -> None:
    run(conn, "DELETE FROM manifests WHERE job = ?", [m.job])
    run(conn,
        "INSERT INTO manifests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [m.job, m.kind, m.path, m.digest, m.size, m.position, m.records_ok, m.records_bad,
         m.done, dt.datetime.now(dt.UTC).replace(tzinfo=None), m.state])


def load_manifest(store: Store, job: str) -> dict[str, Any] | None:
    """The committed progress of a job, or None when it never committed a batch."""
    cur = store.cursor()
    rows = cur.execute("SELECT * FROM manifests WHERE job = ?", [job]).fetchall()
    if not rows:
        return None
    row = rows[0]
    names = [d[0] for d in cur.description or []]
    return dict(zip(names, row, strict=True))
