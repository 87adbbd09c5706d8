"""Aggregates of heavy targets, materialized in the index (`target_aggregates`).

A target with a million backlinks takes the SQL aggregates about a second (summary) or a few
hundred milliseconds (anchors, referring domains) however the rows are laid out: the work is
in the aggregation, not the scan. So for every target — domain, host or URL — with at least
`HEAVY_ROWS` live backlinks, `refresh()` computes the answers of the aggregate endpoints once
and stores them with the index's data version (the last committed batch and the current rank
run). Readers use a stored answer only when its version is the index's version now; anything
else is computed live, so a stale row is never served. `refresh()` runs after each crawl,
ingest, bulk load and rank run (the CLI calls it), and a server refreshes a stale index in the
background at start.

Stored per heavy target: the summary (which also answers metrics and the counts), anchors,
referring IPs and indexed pages in both orders, and referring domains in each of their three
orders, each list cut at the API's largest `limit` (10,000).

Listings of a heavy target in the Data API's default order (`first_seen` newest first, then
`link_id`) are a top-N over all its rows and then a fetch of rows scattered over its range
(a 10,000-row `raw` page of a million-backlink target: ~100 ms + ~200 ms). So the live,
non-internal links of every heavy domain are also kept in that order in `heavy_links`, a
copy of their `links` rows numbered by `pos`: a page is the next rows of the copy, read in
order from the rows after the cursor's (`listing_start`). Hosts and URLs of a heavy domain
read its copy with their scope as a filter. Written with the aggregates, in the same
transaction and with the same version.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import orjson

from inlink.index.store import Store, run
from inlink.query.models import (
    BACKLINK_KINDS,
    CountItem,
    GroupRow,
    Mode,
    RefDomain,
    Summary,
    Target,
    resolve_target,
)
from inlink.query.sql import FIELDS, Ctx, context

#: Live backlinks from which a target's aggregates are materialized.
HEAVY_ROWS = 100_000
#: Longest list kept (the Data API's largest `limit`).
TOP = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS target_aggregates (
    version  VARCHAR NOT NULL,   -- data_version() when computed
    mode     VARCHAR NOT NULL,   -- domain | host | url
    value    VARCHAR NOT NULL,   -- the target's scope key
    name     VARCHAR NOT NULL,   -- summary | anchors:backlinks | refdomains:first_seen | ...
    computed_at TIMESTAMP NOT NULL,
    payload  VARCHAR NOT NULL    -- JSON
)
"""

#: The ordered copy: the `links` columns of heavy domains' live non-internal rows, with the
#: version, each row's place in (target_domain, first_seen DESC, link_id) order and its
#: RANK_FIELDS in the version's rank run (a page of 10,000 rows then looks up no ranks).
LISTING_TABLE = "heavy_links"
#: The Backlink rank fields, as the query layer computes them (sql.FIELDS).
RANK_FIELDS = ("source_inlink_rank", "source_rank_1000", "link_rank_1000",
               "source_domain_inlink_rank", "source_domain_rank_1000")

GROUP_LISTS = ("anchors", "ips", "pages")
GROUP_ORDERS = ("backlinks", "refdomains")
REFDOMAIN_ORDERS = ("first_seen", "domain_inlink_rank", "inlink_rank")

_SUMMARY_INTS = ("backlinks", "refdomains", "subnets", "ips", "nofollow_backlinks",
                 "dofollow_backlinks", "from_home_page_backlinks",
                 "dofollow_from_home_page_backlinks", "text_backlinks", "image_backlinks",
                 "redirect_backlinks", "edu_backlinks", "gov_backlinks", "dofollow_refdomains",
                 "from_home_page_refdomains", "edu_refdomains", "gov_refdomains", "anchors",
                 "dofollow_anchors", "pages_with_backlinks", "inlink_rank",
                 "domain_inlink_rank")
_SUMMARY_TOPS = ("top_anchors_by_backlinks", "top_anchors_by_refdomains",
                 "top_pages_by_backlinks", "top_pages_by_refdomains", "top_tlds",
                 "top_countries")


def _has_table(store: Store, name: str = "target_aggregates") -> bool:
    return bool(store.query("SELECT 1 FROM duckdb_tables() WHERE table_name = ? "
                            "AND NOT temporary", [name]))


def data_version(store: Store) -> str:
    """The index's data version: last committed batch and current rank run."""
    rows = store.query("SELECT coalesce(max(batch_id), 0) FROM batches")
    return f"{int(rows[0][0])}:{context(store).run_id or 0}"


# -- (de)serialization ---------------------------------------------------------------------

def _ts(v: dt.datetime | None) -> str | None:
    return None if v is None else v.isoformat()


def _dt(v: str | None) -> dt.datetime | None:
    return None if v is None else dt.datetime.fromisoformat(v)


def _dump_summary(s: Summary) -> bytes:
    return orjson.dumps({
        "ints": [getattr(s, f) for f in _SUMMARY_INTS],
        "tops": {f: [[c.value, c.backlinks, c.refdomains] for c in getattr(s, f)]
                 for f in _SUMMARY_TOPS}})


def _load_summary(data: dict[str, Any], target: Target) -> Summary:
    fields: dict[str, Any] = dict(zip(_SUMMARY_INTS, data["ints"], strict=True))
    for f in _SUMMARY_TOPS:
        fields[f] = [CountItem(str(v), int(b), int(r)) for v, b, r in data["tops"][f]]
    return Summary(target=target, **fields)


def _dump_groups(rows: Sequence[GroupRow]) -> bytes:
    return orjson.dumps([[r.value, r.backlinks, r.refdomains, r.nofollow_backlinks,
                          r.dofollow_backlinks, _ts(r.first_seen), _ts(r.last_seen)]
                         for r in rows])


def _load_groups(data: list[list[Any]]) -> list[GroupRow]:
    return [GroupRow(v, bl, rd, nf, df, _dt(fs), _dt(ls))  # type: ignore[arg-type]
            for v, bl, rd, nf, df, fs, ls in data]


def _dump_refdomains(rows: Sequence[RefDomain]) -> bytes:
    return orjson.dumps([[r.domain, r.backlinks, r.dofollow_backlinks, _ts(r.first_seen),
                          _ts(r.last_seen), r.domain_inlink_rank, r.inlink_rank]
                         for r in rows])


def _load_refdomains(data: list[list[Any]]) -> list[RefDomain]:
    return [RefDomain(d, bl, dbl, _dt(fs), _dt(ls), dr, ir)  # type: ignore[arg-type]
            for d, bl, dbl, fs, ls, dr, ir in data]


# -- reading -------------------------------------------------------------------------------

class _State:
    """Per store: the heavy targets of the current version, and decoded answers (LRU)."""

    def __init__(self) -> None:
        self.generation = -1
        self.version = ""
        self.keys: set[tuple[str, str]] = set()
        self.listing = False    # heavy_links holds every heavy domain at `version`
        self.decoded: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self.lock = threading.Lock()


_STATES: weakref.WeakKeyDictionary[Store, _State] = weakref.WeakKeyDictionary()
_DECODED_MAX = 64


def _state(store: Store) -> _State:
    st = _STATES.get(store)
    if st is None:
        st = _STATES.setdefault(store, _State())
    if st.generation != store.generation or store.read_only:
        generation = store.generation
        keys: set[tuple[str, str]] = set()
        listing = False
        version = ""
        if _has_table(store):
            version = data_version(store)
            keys = {(str(m), str(v)) for m, v in store.query(
                "SELECT DISTINCT mode, value FROM target_aggregates WHERE version = ?",
                [version])}
            # The copy is written with the aggregates: it holds every heavy domain when its
            # (one) version is the aggregates' version.
            listing = bool(keys) and _has_table(store, LISTING_TABLE) and bool(store.query(
                f"SELECT 1 FROM (SELECT version FROM {LISTING_TABLE} LIMIT 1) "
                "WHERE version = ?", [version]))
        with st.lock:
            st.generation, st.version, st.keys = generation, version, keys
            st.listing = listing
            st.decoded.clear()
    return st


def _get(store: Store, target: Target, name: str, decode: Callable[[Any], Any]) -> Any:
    """A stored answer for a target at the current version, or None (also inside bypass)."""
    if _bypassed():
        return None
    st = _state(store)
    key = (target.mode.value, target.value)
    if key not in st.keys:
        return None
    ck = (*key, name)
    with st.lock:
        if ck in st.decoded:
            st.decoded.move_to_end(ck)
            return st.decoded[ck]
    rows = store.query("SELECT payload FROM target_aggregates WHERE version = ? AND mode = ? "
                       "AND value = ? AND name = ?", [st.version, *key, name])
    if not rows:
        return None
    value = decode(orjson.loads(rows[0][0]))
    with st.lock:
        st.decoded[ck] = value
        while len(st.decoded) > _DECODED_MAX:
            st.decoded.popitem(last=False)
    return value


def is_heavy(store: Store, target: Target) -> bool:
    """True when the target's answers are stored at the current version: it has at least
    HEAVY_ROWS live backlinks (as of the last refresh)."""
    return (target.mode.value, target.value) in _state(store).keys


def listing_version(store: Store, target: Target, run_id: int | None) -> str | None:
    """The version to read `heavy_links` at for a listing of `target` with the ranks of
    `run_id`, or None when the copy does not hold the target at the index's version now
    (not heavy, stale, or bypassed) or holds another run's ranks (a cursor pins its run)."""
    if _bypassed():
        return None
    st = _state(store)
    if (st.listing and (target.mode.value, target.value) in st.keys
            and (Mode.DOMAIN.value, target.domain) in st.keys
            and st.version.rpartition(":")[2] == str(run_id or 0)):
        return st.version
    return None


def listing_start(store: Store, version: str, target: Target, first_seen: dt.datetime,
                  link_id: int) -> int | None:
    """The copy position of the row a cursor ended at, or None when that row is not in the
    copy (the cursor came from an earlier version and the link is gone)."""
    rows = store.query(
        f"SELECT pos FROM {LISTING_TABLE} WHERE version = ? AND target_domain = ? "
        "AND first_seen = ? AND link_id = ?", [version, target.domain, first_seen, link_id])
    return int(rows[0][0]) if rows else None


def summary(store: Store, target: Target) -> Summary | None:
    data = _get(store, target, "summary", lambda d: d)
    return None if data is None else _load_summary(data, target)


def group_rows(store: Store, target: Target, what: str, order_by: str, limit: int
               ) -> list[GroupRow] | None:
    rows = _get(store, target, f"{what}:{order_by}", _load_groups)
    return None if rows is None else rows[:limit]


def refdomains(store: Store, target: Target, order_by: str, limit: int
               ) -> list[RefDomain] | None:
    rows = _get(store, target, f"refdomains:{order_by}", _load_refdomains)
    return None if rows is None else rows[:limit]


# -- refreshing ----------------------------------------------------------------------------

def heavy_targets(store: Store, min_rows: int = HEAVY_ROWS) -> list[Target]:
    """Every domain, host and URL with at least `min_rows` live backlinks."""
    kinds = ", ".join(f"'{k}'" for k in sorted(BACKLINK_KINDS))
    base = f"FROM links WHERE live AND NOT internal AND kind IN ({kinds})"
    out: list[Target] = []
    for mode, col in ((Mode.DOMAIN, "target_domain"), (Mode.HOST, "target_host"),
                      (Mode.URL, "target_key")):
        for (value,) in store.query(f"SELECT {col} {base} GROUP BY 1 HAVING count(*) >= ? "
                                    "ORDER BY 1", [min_rows]):
            out.append(resolve_target(str(value), mode))
    return out


def refresh(store: Store, *, min_rows: int = HEAVY_ROWS,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Compute and store the aggregates of every heavy target for the current version; drop
    other versions' rows. Returns what it did (targets, seconds)."""
    from inlink.query import aggregates as agg
    from inlink.query import indexes

    began = time.perf_counter()
    indexes.ensure(store)
    store.write(lambda conn: run(conn, _SCHEMA))
    version = data_version(store)
    targets = heavy_targets(store, min_rows)
    say = progress or (lambda _m: None)
    rows: list[tuple[str, str, str, str, dt.datetime, str]] = []
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for t in targets:
        say(f"aggregates of {t.mode.value} {t.value}")

        def add(name: str, payload: bytes, t: Target = t) -> None:
            rows.append((version, t.mode.value, t.value, name, now, payload.decode()))

        with bypass():
            (s,) = agg.summarize(store, [t])
            add("summary", _dump_summary(s))
            lists: tuple[tuple[str, Callable[..., list[GroupRow]]], ...] = (
                ("anchors", agg.list_anchors), ("ips", agg.list_referring_ips),
                ("pages", agg.indexed_pages))
            for what, fn in lists:
                for order in GROUP_ORDERS:
                    add(f"{what}:{order}", _dump_groups(fn(store, t, order_by=order,
                                                           limit=TOP)))
            for order in REFDOMAIN_ORDERS:
                add(f"refdomains:{order}", _dump_refdomains(agg.list_refdomains(
                    store, t, order_by=order, limit=TOP)))  # type: ignore[arg-type]

    domains = sorted({t.domain for t in targets if t.mode is Mode.DOMAIN})
    say(f"ordered copy of {len(domains)} domains' links")

    def write(conn: duckdb.DuckDBPyConnection) -> None:
        run(conn, "DELETE FROM target_aggregates")
        for r in rows:
            run(conn, "INSERT INTO target_aggregates VALUES (?, ?, ?, ?, ?, ?)", list(r))
        _write_listing(conn, version, domains, context(store))

    store.write(write)
    copied = int(store.query(f"SELECT count(*) FROM {LISTING_TABLE}")[0][0])
    return {"version": version, "targets": len(targets), "answers": len(rows),
            "listing_rows": copied, "seconds": time.perf_counter() - began}


def _write_listing(conn: duckdb.DuckDBPyConnection, version: str, domains: list[str],
                   ctx: Ctx) -> None:
    """(Re)create heavy_links: the domains' live non-internal links with their ranks in
    `ctx`'s run, numbered and inserted in listing order (so a scan without ORDER BY returns
    them in it: DuckDB keeps insertion order, and readers check `pos`)."""
    run(conn, f"DROP TABLE IF EXISTS {LISTING_TABLE}")
    names = ", ".join("'" + d.replace("'", "''") + "'" for d in domains) or "NULL"
    quoted = "'" + version.replace("'", "''") + "'"
    ranks = ", ".join(f"{ctx.expr(FIELDS[name].sql)}::INTEGER AS {name}"
                      for name in RANK_FIELDS)
    run(conn, f"CREATE TABLE {LISTING_TABLE} AS SELECT {quoted} AS version, "
              "(row_number() OVER (ORDER BY l.target_domain, l.first_seen DESC, l.link_id) - 1)"
              f"::BIGINT AS pos, {ranks}, l.* FROM links l {ctx.joins({'rp', 'rd'})} "
              f"WHERE l.live AND NOT l.internal AND l.target_domain IN ({names}) ORDER BY pos")


def is_fresh(store: Store, min_rows: int = HEAVY_ROWS) -> bool:
    """True when the stored aggregates are of the current version, or none are due."""
    if _has_table(store) and store.query(
            "SELECT 1 FROM target_aggregates WHERE version = ? LIMIT 1", [data_version(store)]):
        return True
    return not heavy_targets(store, min_rows)


_LOCAL = threading.local()


@contextmanager
def bypass() -> Iterator[None]:
    """Inside: stored answers are not read, everything is computed live (refresh must not
    read what it is replacing; tests and benches compare with live answers)."""
    _LOCAL.bypass = getattr(_LOCAL, "bypass", 0) + 1
    try:
        yield
    finally:
        _LOCAL.bypass -= 1


def _bypassed() -> bool:
    return bool(getattr(_LOCAL, "bypass", 0))
