"""Apply batches of fetch records to the store: pages, link state and new/lost events.

Each batch is diffed in memory against the links its pages kept live last time, then written
in one transaction together with its manifest position, so a crash loses at most that batch
and a resumed job continues exactly where the committed data ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import duckdb
import pyarrow as pa

from inlink import urls
from inlink.extract import Link
from inlink.index.state import LINK_REMOVED, Outcome, PageState, classify, link_attr_hash, link_id
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


@dataclass(slots=True)
class _LinkRow:
    """The final state, after this batch, of a link the batch touched."""

    link_id: int
    source: FetchRecord
    link: Link | None                   # None: not seen in this batch, only its state changes
    attr_hash: int
    live: bool
    first_seen: dt.datetime
    last_seen: dt.datetime
    lost_at: dt.datetime | None
    lost_reason: str | None
    first_fetch_id: int
    last_fetch_id: int
    full_update: bool                   # attributes changed (or revived): rewrite every column


def _naive_utc(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


class IndexWriter:
    """Turns fetch records into committed index rows; one per job, used from one thread."""

    def __init__(self, store: Store, job: str = "default") -> None:
        self.store = store
        self.job = job

    def apply(self, records: Sequence[FetchRecord],
              manifest: ManifestUpdate | None = None) -> BatchStats:
        """Apply one batch atomically; returns what it changed."""
        with self.store.transaction() as conn:
            return self._apply(conn, records, manifest)

    # -- the batch, inside its transaction

    def _apply(self, conn: duckdb.DuckDBPyConnection, records: Sequence[FetchRecord],
               manifest: ManifestUpdate | None) -> BatchStats:
        stats = BatchStats(batch_id=self.store.next_id(conn, "batches", "batch_id"))
        next_fetch = self.store.next_id(conn, "fetches", "fetch_id")
        ordered = sorted(records, key=lambda r: _naive_utc(r.fetched_at))
        pages = self._load_pages(conn, {r.url_key for r in ordered})
        touched: dict[int, _LinkRow] = {}
        events: list[tuple[Any, ...]] = []
        lost_events: list[tuple[Any, ...]] = []
        fetch_rows: list[tuple[Any, ...]] = []
        page_rows: dict[str, tuple[Any, ...]] = {}

        for record in ordered:
            at = _naive_utc(record.fetched_at)
            fetch_id = next_fetch
            next_fetch += 1
            stats.fetches += 1
            outcome = classify(record)
            stats.states[outcome.state.value] = stats.states.get(outcome.state.value, 0) + 1
            previous = pages.get(record.url_key)
            applied = previous is None or at >= previous.last_crawl
            fetch_rows.append(_fetch_row(fetch_id, stats.batch_id, record, at, outcome, applied))
            if not applied:
                # An older capture than the one already applied (archives arrive out of order):
                # kept as a fetch for evidence, but history only moves forward.
                stats.stale += 1
                continue
            live = {link_id(record.url_key, link): link for link in outcome.live_links}
            old = previous.links if previous else {}
            reason = LINK_REMOVED if outcome.state is PageState.INDEXABLE else outcome.lost_reason
            hashes: dict[int, int] = {}
            for lid, link in live.items():
                attr = hashes[lid] = link_attr_hash(link)
                row = touched.get(lid)
                if lid not in old:
                    stats.new_links += 1
                    events.append(_event(at, lid, "new", None, record, link, stats.batch_id))
                if row is None:
                    touched[lid] = _LinkRow(lid, record, link, attr, True, at, at, None, None,
                                            fetch_id, fetch_id,
                                            full_update=lid not in old or old[lid] != attr)
                else:
                    row.source, row.link, row.live, row.last_seen = record, link, True, at
                    row.lost_at = row.lost_reason = None
                    row.full_update = row.full_update or row.attr_hash != attr or lid not in old
                    row.attr_hash, row.last_fetch_id = attr, fetch_id
            for lid in old.keys() - live.keys():
                stats.lost_links += 1
                row = touched.get(lid)
                if row is None:
                    # Lost without being in this batch's pages before: write only its state.
                    touched[lid] = row = _LinkRow(lid, record, None, old[lid], False,
                                                  at, previous.last_crawl if previous else at,
                                                  at, reason, fetch_id, fetch_id, False)
                else:
                    row.live, row.lost_at, row.lost_reason = False, at, reason
                    if previous:
                        row.last_seen = previous.last_crawl
                lost_events.append((at.date(), at, lid, reason, stats.batch_id))
            pages[record.url_key] = _PageRow(
                record.url_key, previous.first_crawl if previous else at, at, hashes)
            page_rows[record.url_key] = _page_row(record, at, fetch_id, outcome,
                                                  pages[record.url_key])

        self._write(conn, stats, touched, events, lost_events, fetch_rows, page_rows, manifest)
        return stats

    @staticmethod
    def _load_pages(conn: duckdb.DuckDBPyConnection, keys: set[str]) -> dict[str, _PageRow]:
        if not keys:
            return {}
        wanted = pa.table({"url_key": pa.array(sorted(keys), pa.string())})
        conn.register("wanted_pages", wanted)
        try:
            rows = run(conn,
                       "SELECT p.url_key, p.first_crawl, p.last_crawl, p.link_ids, p.link_hashes "
                       "FROM pages p JOIN wanted_pages w USING (url_key)")
        finally:
            conn.unregister("wanted_pages")
        return {key: _PageRow(key, first, last, dict(zip(ids or [], hashes or [], strict=True)))
                for key, first, last, ids, hashes in rows}

    def _write(self, conn: duckdb.DuckDBPyConnection, stats: BatchStats,
               touched: dict[int, _LinkRow], events: list[tuple[Any, ...]],
               lost_events: list[tuple[Any, ...]], fetch_rows: list[tuple[Any, ...]], page_rows: dict[str, tuple[Any, ...]],
               manifest: ManifestUpdate | None) -> None:
        if fetch_rows:
            _insert(conn, "fetches", _FETCH_COLUMNS, fetch_rows)
        if page_rows:
            keys = pa.table({"url_key": pa.array(list(page_rows), pa.string())})
            conn.register("batch_keys", keys)
            run(conn, "DELETE FROM pages WHERE url_key IN (SELECT url_key FROM batch_keys)")
            conn.unregister("batch_keys")
            _insert(conn, "pages", _PAGE_COLUMNS, list(page_rows.values()))
        if touched:
            self._write_links(conn, touched)
        if events:
            _insert(conn, "link_events", _EVENT_COLUMNS, events)
        if lost_events:
            # Lost links are known here only by id: their targets come from the stored rows.
            conn.register("lost_rows", _arrow(("day", "seen_at", "link_id", "reason", "batch_id"),
                                              lost_events))
            run(conn, 
                "INSERT INTO link_events SELECT e.day, e.seen_at, e.link_id, 'lost', e.reason, "
                "l.target_domain, l.target_host, l.target_key, l.source_key, l.source_domain, "
                "l.internal, e.batch_id FROM lost_rows e JOIN links l USING (link_id)")
            conn.unregister("lost_rows")
        run(conn, "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                     [stats.batch_id, self.job, dt.datetime.now(dt.UTC).replace(tzinfo=None),
                      stats.fetches, stats.new_links, stats.lost_links])
        if manifest is not None:
            _save_manifest(conn, manifest)

    @staticmethod
    def _write_links(conn: duckdb.DuckDBPyConnection, touched: dict[int, _LinkRow]) -> None:
        ids = pa.table({"link_id": pa.array(list(touched), pa.int64())})
        conn.register("touched_ids", ids)
        existing = {row[0] for row in run(
            conn, "SELECT l.link_id FROM links l JOIN touched_ids t USING (link_id)")}
        conn.unregister("touched_ids")

        inserts = [_link_row(r) for r in touched.values() if r.link_id not in existing]
        full = [_link_row(r) for r in touched.values()
                if r.link_id in existing and r.full_update and r.link is not None]
        light = [(r.link_id, r.live, r.last_seen, r.lost_at, r.lost_reason, r.last_fetch_id,
                  r.source.ip, _subnet(r.source.ip), r.source.country)
                 for r in touched.values()
                 if r.link_id in existing and not (r.full_update and r.link is not None)]
        if inserts:
            _insert(conn, "links", _LINK_COLUMNS, inserts)
        if full:
            table = _arrow(_LINK_COLUMNS, full)
            conn.register("full_rows", table)
            sets = ", ".join(f"{c} = f.{c}" for c in _LINK_COLUMNS
                             if c not in ("link_id", "first_seen", "first_fetch_id"))
            run(conn, f"UPDATE links SET {sets} FROM full_rows f "
                         "WHERE links.link_id = f.link_id")
            conn.unregister("full_rows")
        if light:
            table = _arrow(_LIGHT_COLUMNS, light)
            conn.register("light_rows", table)
            # A lost link keeps the source facts of the fetch it was last seen in.
            run(conn, 
                "UPDATE links SET live = s.live, last_seen = s.last_seen, lost_at = s.lost_at, "
                "lost_reason = s.lost_reason, "
                "last_fetch_id = CASE WHEN s.live THEN s.last_fetch_id ELSE links.last_fetch_id END, "
                "source_ip = CASE WHEN s.live THEN s.source_ip ELSE links.source_ip END, "
                "source_subnet = CASE WHEN s.live THEN s.source_subnet "
                "ELSE links.source_subnet END, "
                "source_country = CASE WHEN s.live THEN s.source_country "
                "ELSE links.source_country END "
                "FROM light_rows s WHERE links.link_id = s.link_id")
            conn.unregister("light_rows")


_FETCH_COLUMNS = ("fetch_id", "batch_id", "url_key", "url", "fetched_at", "status", "state",
                  "applied", "source", "ip", "evidence_path", "evidence_offset",
                  "evidence_digest")
_PAGE_COLUMNS = ("url_key", "url", "host", "domain", "first_crawl", "last_crawl", "fetch_id",
                 "status", "state", "error", "ip", "country", "content_type", "title",
                 "language", "encoding", "size", "internal_links", "external_links",
                 "noindex", "nofollow", "canonical", "redirect_to", "link_ids", "link_hashes")
_LINK_COLUMNS = ("link_id", "target_domain", "target_host", "target_key", "target_url",
                 "source_key", "source_url", "source_host", "source_domain", "source_ip",
                 "source_subnet", "source_country", "internal", "kind", "anchor", "alt",
                 "image_url", "nofollow", "ugc", "sponsored", "text_pre", "text_post",
                 "location", "links_count", "hreflang", "attr_hash", "live", "first_seen",
                 "last_seen", "lost_at", "lost_reason", "first_fetch_id", "last_fetch_id")
_LIGHT_COLUMNS = ("link_id", "live", "last_seen", "lost_at", "lost_reason", "last_fetch_id",
                  "source_ip", "source_subnet", "source_country")
_EVENT_COLUMNS = ("day", "seen_at", "link_id", "event", "reason", "target_domain", "target_host",
                  "target_key", "source_key", "source_domain", "internal", "batch_id")

_TYPES: dict[str, pa.DataType] = {
    "link_ids": pa.list_(pa.int64()), "link_hashes": pa.list_(pa.int64()),
    "first_crawl": pa.timestamp("us"), "last_crawl": pa.timestamp("us"),
    "fetched_at": pa.timestamp("us"), "first_seen": pa.timestamp("us"),
    "last_seen": pa.timestamp("us"), "lost_at": pa.timestamp("us"),
    "seen_at": pa.timestamp("us"),
    "day": pa.date32(),
}
_INT64 = {"fetch_id", "batch_id", "link_id", "attr_hash", "first_fetch_id", "last_fetch_id",
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
            rows: list[tuple[Any, ...]]) -> None:
    batch = _arrow(columns, rows)
    conn.register("insert_rows", batch)
    run(conn, f"INSERT INTO {table} ({', '.join(columns)}) "
                 f"SELECT {', '.join(columns)} FROM insert_rows")
    conn.unregister("insert_rows")


def _fetch_row(fetch_id: int, batch_id: int, record: FetchRecord, at: dt.datetime,
               outcome: Outcome, applied: bool) -> tuple[Any, ...]:
    ev = record.evidence
    return (fetch_id, batch_id, record.url_key, record.url, at, record.status,
            outcome.state.value, applied, record.source, record.ip,
            ev.path if ev else None, ev.offset if ev else None, ev.digest if ev else None)


def _page_row(record: FetchRecord, at: dt.datetime, fetch_id: int, outcome: Outcome,
              page: _PageRow) -> tuple[Any, ...]:
    host, domain = _host_and_domain(record.url_key)
    facts = record.extraction.facts if record.extraction else None
    return (
        record.url_key, record.url, host, domain, page.first_crawl, at,
        fetch_id, record.status, outcome.state.value, record.error, record.ip, record.country,
        record.content_type or (facts.content_type if facts else None),
        facts.title if facts else None, facts.language if facts else None,
        facts.encoding if facts else None, facts.size if facts else None,
        facts.internal_links if facts else None, facts.external_links if facts else None,
        facts.noindex if facts else None, facts.nofollow if facts else None,
        facts.canonical if facts else None, record.redirect_to,
        list(page.links.keys()), list(page.links.values()),
    )


@lru_cache(maxsize=1 << 16)
def _host_and_domain(key: str) -> tuple[str, str]:
    """(host, registrable domain) of an index key; keys repeat a lot within a crawl."""
    host = urls.key_host(key)
    return host, urls.registrable_domain(host)


@lru_cache(maxsize=1 << 14)
def _subnet(ip: str | None) -> str | None:
    return urls.subnet24(ip) if ip else None


def _link_row(row: _LinkRow) -> tuple[Any, ...]:
    record, link = row.source, row.link
    assert link is not None, "a link is inserted or rewritten only from a fetch that had it"
    source_host, source_domain = _host_and_domain(record.url_key)
    target_host, target_domain = _host_and_domain(link.target_key)
    return (
        row.link_id, target_domain, target_host, link.target_key, link.target_url,
        record.url_key, record.url, source_host, source_domain, record.ip,
        _subnet(record.ip), record.country,
        source_domain == target_domain, link.kind.value, link.anchor, link.alt, link.image_url,
        link.nofollow, link.ugc, link.sponsored, link.text_pre, link.text_post, link.location,
        link.links_count, link.hreflang, row.attr_hash, row.live, row.first_seen,
        row.last_seen, row.lost_at, row.lost_reason, row.first_fetch_id, row.last_fetch_id,
    )


def _event(at: dt.datetime, lid: int, event: str, reason: str | None, record: FetchRecord,
           link: Link, batch_id: int) -> tuple[Any, ...]:
    source_domain = _host_and_domain(record.url_key)[1]
    target_host, target_domain = _host_and_domain(link.target_key)
    return (at.date(), at, lid, event, reason, target_domain, target_host, link.target_key,
            record.url_key, source_domain, source_domain == target_domain, batch_id)


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
