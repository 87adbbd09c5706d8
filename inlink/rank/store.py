"""Rank runs in the index: write a run and switch `current` atomically; read ranks and history.

Tables are in inlink/index/rank_schema.sql. Readers pass `run=None` for the current run, or a
run id they hold, which stays readable until retention removes it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from inlink import urls
from inlink.index.store import Store, run
from inlink.rank.graph import passing_link


@dataclass(frozen=True, slots=True)
class RankRun:
    """One stored rank computation (a row of rank_runs)."""

    run_id: int
    day: dt.date
    max_batch_id: int
    damping: float
    page_floor: float
    page_top: float
    domain_floor: float
    domain_top: float
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PageAuthority:
    """A page's InLink Rank in one run, with its domain's Domain InLink Rank."""

    url_key: str
    domain: str
    run_id: int
    day: dt.date
    score: float
    inlink_rank: int              # 0-100
    rank_1000: int                # 0-1000
    domain_inlink_rank: int
    domain_rank_1000: int
    in_links: int


@dataclass(frozen=True, slots=True)
class DomainAuthority:
    domain: str
    run_id: int
    day: dt.date
    score: float
    inlink_rank: int
    rank_1000: int
    in_domains: int


@dataclass(frozen=True, slots=True)
class RankPoint:
    """A rank on one date (history endpoints)."""

    day: dt.date
    run_id: int
    inlink_rank: int
    rank_1000: int
    score: float


@dataclass(frozen=True, slots=True)
class BacklinkRank:
    """What one backlink passes: DataForSEO `rank` (0-1000) and the 0-100 equivalent."""

    source_key: str
    passes: bool
    rank: int
    rank_1000: int
    passed_score: float


def _any(value: object) -> Any:
    """A DuckDB cell as Any: `Store.query` types cells as object."""
    return value


_RUN_COLUMNS = ("run_id", "day", "max_batch_id", "damping", "page_floor", "page_top",
                "domain_floor", "domain_top", "params")


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the rank tables if missing (inside the caller's transaction)."""
    sql = resources.files("inlink.index").joinpath("rank_schema.sql").read_text("utf-8")
    run(conn, sql)


def _has_tables(cur: duckdb.DuckDBPyConnection) -> bool:
    return bool(run(cur, "SELECT 1 FROM duckdb_tables() WHERE table_name = 'rank_current' "
                         "AND NOT temporary"))


def _run_from_row(row: tuple[Any, ...]) -> RankRun:
    d = dict(zip(_RUN_COLUMNS, row, strict=True))
    d["params"] = json.loads(d["params"])
    return RankRun(**d)


def load_run(store: Store, run_id: int | None = None) -> RankRun | None:
    """The run with this id, or the current run; None when there is none."""
    cur = store.cursor()
    if not _has_tables(cur):
        return None
    cols = ", ".join(f"r.{c}" for c in _RUN_COLUMNS)
    if run_id is None:
        rows = run(cur, f"SELECT {cols} FROM rank_runs r JOIN rank_current c USING (run_id) "
                        "WHERE c.name = 'current'")
    else:
        rows = run(cur, f"SELECT {cols} FROM rank_runs r WHERE run_id = ?", [run_id])
    return _run_from_row(rows[0]) if rows else None


def list_runs(store: Store) -> list[RankRun]:
    """Every stored run, oldest first."""
    cur = store.cursor()
    if not _has_tables(cur):
        return []
    cols = ", ".join(_RUN_COLUMNS)
    return [_run_from_row(r) for r in run(cur, f"SELECT {cols} FROM rank_runs ORDER BY run_id")]


def previous_run(store: Store, run_id: int) -> RankRun | None:
    cur = store.cursor()
    rows = run(cur, "SELECT max(run_id) FROM rank_runs WHERE run_id < ?", [run_id])
    return load_run(store, int(rows[0][0])) if rows and rows[0][0] is not None else None


def _resolve(store: Store, run_id: int | None) -> RankRun | None:
    return load_run(store, run_id)


def page_rank(store: Store, url_key: str, run: int | None = None) -> PageAuthority | None:
    """InLink Rank of a page (normalized url_key) in a run (default: current); None if the
    run does not know the page."""
    r = _resolve(store, run)
    if r is None:
        return None
    rows = store.query(
        "SELECT p.url_key, p.domain, p.score, p.inlink_rank, p.rank_1000, "
        "coalesce(d.inlink_rank, 0), coalesce(d.rank_1000, 0), p.in_links "
        "FROM rank_pages p LEFT JOIN rank_domains d "
        "ON d.run_id = p.run_id AND d.domain = p.domain "
        "WHERE p.run_id = ? AND p.url_key = ?", [r.run_id, url_key])
    if not rows:
        return None
    k, dom, score, rank, r1000, drank, d1000, inl = (_any(v) for v in rows[0])
    return PageAuthority(str(k), str(dom), r.run_id, r.day, float(score), int(rank),
                         int(r1000), int(drank), int(d1000), int(inl))


def _domain_key(domain: str) -> str:
    host = domain.strip().lower().rstrip(".")
    if "://" in host:
        host = urls.host_of(host)
    return urls.registrable_domain(host)


def domain_rank(store: Store, domain: str, run: int | None = None) -> DomainAuthority | None:
    """Domain InLink Rank of a registrable domain (a host or URL is reduced to its domain)."""
    r = _resolve(store, run)
    if r is None:
        return None
    key = _domain_key(domain)
    rows = store.query("SELECT score, inlink_rank, rank_1000, in_domains FROM rank_domains "
                       "WHERE run_id = ? AND domain = ?", [r.run_id, key])
    if not rows:
        return None
    score, rank, r1000, ind = (_any(v) for v in rows[0])
    return DomainAuthority(key, r.run_id, r.day, float(score), int(rank), int(r1000), int(ind))


def _bucket(day: dt.date, granularity: str) -> dt.date:
    if granularity == "by_week":
        return day - dt.timedelta(days=day.weekday())
    if granularity == "by_month":
        return day.replace(day=1)
    return day


def _history(rows: list[tuple[Any, ...]], granularity: str) -> list[RankPoint]:
    # Rows come oldest first: the latest run of each bucket wins (seed 001: "the latest
    # value within an aggregated range").
    by_bucket: dict[dt.date, RankPoint] = {}
    for day, run_id, rank, r1000, score in rows:
        b = _bucket(day, granularity)
        by_bucket[b] = RankPoint(b, int(run_id), int(rank), int(r1000), float(score))
    return [by_bucket[b] for b in sorted(by_bucket)]


def page_rank_history(store: Store, url_key: str, date_from: dt.date, date_to: dt.date,
                      granularity: str = "by_day") -> list[RankPoint]:
    """The page's rank per day (or week/month: the latest run in it), oldest first."""
    if not _has_tables(store.cursor()):
        return []
    rows = store.query(
        "SELECT r.day, r.run_id, p.inlink_rank, p.rank_1000, p.score FROM rank_runs r "
        "JOIN rank_pages p USING (run_id) WHERE p.url_key = ? AND r.day BETWEEN ? AND ? "
        "ORDER BY r.day, r.run_id", [url_key, date_from, date_to])
    return _history(rows, granularity)


def domain_rank_history(store: Store, domain: str, date_from: dt.date, date_to: dt.date,
                        granularity: str = "by_day") -> list[RankPoint]:
    """The domain's Domain InLink Rank per day (or week/month), oldest first."""
    if not _has_tables(store.cursor()):
        return []
    rows = store.query(
        "SELECT r.day, r.run_id, d.inlink_rank, d.rank_1000, d.score FROM rank_runs r "
        "JOIN rank_domains d USING (run_id) WHERE d.domain = ? AND r.day BETWEEN ? AND ? "
        "ORDER BY r.day, r.run_id", [_domain_key(domain), date_from, date_to])
    return _history(rows, granularity)


_SCOPE = {"domain": "l.target_domain", "host": "l.target_host", "url": "l.target_key"}


def rank_distribution(store: Store, target: str, *, mode: str = "domain",
                      per: str = "domain", run: int | None = None) -> list[tuple[int, int]]:
    """(domain_inlink_rank, count) for the referrers of a target, ranks ascending.

    `mode` scopes the target (domain / host / url key); `per` counts distinct referring
    registrable domains or hosts (seed 001 `histogramMode`); a host counts with the rank of
    its registrable domain. Referrers unknown to the run count at rank 0.
    """
    r = _resolve(store, run)
    if r is None or mode not in _SCOPE or per not in ("domain", "host"):
        return []
    who = "l.source_domain" if per == "domain" else "l.source_host"
    rows = store.query(
        f"SELECT coalesce(d.inlink_rank, 0) AS rank, count(DISTINCT {who}) FROM links l "
        "LEFT JOIN rank_domains d ON d.run_id = ? AND d.domain = l.source_domain "
        f"WHERE l.live AND NOT l.internal AND {_SCOPE[mode]} = ? GROUP BY 1 ORDER BY 1",
        [r.run_id, target])
    return [(int(_any(a)), int(_any(b))) for a, b in rows]


def backlink_rank(store: Store, source_key: str, *, nofollow: bool = False,
                  ugc: bool = False, sponsored: bool = False, kind: str = "anchor",
                  run: int | None = None) -> BacklinkRank:
    """The rank one link from `source_key` passes (0 when it passes nothing)."""
    passes = not (nofollow or ugc or sponsored) and kind != "alternate"
    r = _resolve(store, run)
    if r is None or not passes:
        return BacklinkRank(source_key, passes, 0, 0, 0.0)
    rows = store.query("SELECT link_rank, link_rank_1000, score, out_links FROM rank_pages "
                       "WHERE run_id = ? AND url_key = ?", [r.run_id, source_key])
    if not rows:
        return BacklinkRank(source_key, passes, 0, 0, 0.0)
    lr, lr1000, score, out = (_any(v) for v in rows[0])
    passed = r.damping * float(score) / int(out) if out else 0.0
    return BacklinkRank(source_key, passes, int(lr), int(lr1000), passed)


#: For the query layer: join `rank_pages p` on the source page (and the current run) and
#: select this for a link row `l` to get its DataForSEO `rank`.
BACKLINK_RANK_SQL = (f"CASE WHEN ({passing_link('l.')}) "
                     "THEN coalesce(p.link_rank_1000, 0) ELSE 0 END")


def save_run(conn: duckdb.DuckDBPyConnection, row: dict[str, Any],
             pages: pa.Table, domains: pa.Table, spam: list[pa.Table],
             keep_runs: int | None) -> int:
    """Write one finished run and make it current; call inside one write transaction.

    Readers on other cursors keep seeing the old `current` until the transaction commits.
    """
    ensure_schema(conn)
    run_id = int(run(conn, "SELECT coalesce(max(run_id), 0) + 1 FROM rank_runs")[0][0])
    row = {**row, "run_id": run_id}
    names = list(row)
    run(conn, f"INSERT INTO rank_runs ({', '.join(names)}) VALUES "
              f"({', '.join('?' for _ in names)})", [row[n] for n in names])
    # Rows go in key order: runs append in run_id order, so (run_id, key) is sorted across
    # the table and DuckDB's zone maps turn a key lookup into a read of one row group.
    for table, data, key in [("rank_pages", pages, "url_key"),
                             ("rank_domains", domains, "domain"),
                             *[("rank_spam", t, "kind, target") for t in spam]]:
        data = data.append_column("run_id", pa.array(np.full(data.num_rows, run_id,
                                                             dtype=np.int64)))
        conn.register("rank_rows", data)
        cols = ", ".join(data.column_names)
        run(conn, f"INSERT INTO {table} ({cols}) SELECT {cols} FROM rank_rows ORDER BY {key}")
        conn.unregister("rank_rows")
    run(conn, "DELETE FROM rank_current WHERE name = 'current'")
    run(conn, "INSERT INTO rank_current VALUES ('current', ?)", [run_id])
    if keep_runs is not None:
        prune_runs(conn, keep_runs)
    return run_id


def prune_runs(conn: duckdb.DuckDBPyConnection, keep_runs: int) -> list[int]:
    """Delete all but the newest `keep_runs` runs (never the current one)."""
    rows = run(conn, "SELECT run_id FROM rank_runs WHERE run_id NOT IN (SELECT run_id FROM "
                     "rank_current) ORDER BY run_id DESC OFFSET ?", [max(keep_runs - 1, 0)])
    old = [int(r[0]) for r in rows]
    for table in ("rank_pages", "rank_domains", "rank_spam", "rank_runs"):
        if old:
            run(conn, f"DELETE FROM {table} WHERE run_id IN "
                      f"(SELECT unnest(?::BIGINT[]))", [old])
    return old
