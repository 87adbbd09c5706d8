"""Bulk-load a synthetic world's export (`inlink.world.export`) into an empty index file.

Sits beside writer.py: it commits the rows the IndexWriter would hold after a daily crawl of
the world (`--as-of` each day, fetches at noon UTC), written by DuckDB SQL over the export's
Parquet files in one transaction instead of fetch by fetch. See docs/ingest.md.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq
from xxhash import xxh3_64_intdigest

from inlink.errors import InlinkError
from inlink.index.rows import native_hasher
from inlink.index.store import Store, run

Progress = Callable[[str], None]

#: Page facts the export cannot carry (it has no HTML or HTTP headers): NULL in `pages`.
#: `canonical` is filled only for not_canonical pages (self-canonicals are not exported).
#: Everything else in pages, fetches, links and link_events is filled.
PAGE_FACTS_NOT_CARRIED = ("error", "country", "content_type", "title", "language", "encoding",
                          "size", "internal_links", "external_links", "nofollow")
#: Fetch time within a day: the crawler's `--as-of DATE` pins fetches to noon UTC.
FETCH_TIME = dt.time(12, 0)
_HASH_BATCH = 100_000


@dataclass(frozen=True, slots=True)
class BulkSummary:
    """What a bulk load wrote (printed by the bench, returned to tests)."""

    export_dir: Path
    job: str
    through_day: int
    pages: int
    fetches: int
    links: int
    live_links: int
    events: int
    batches: int
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


# -- identity hashes: the only per-row step in Python --------------------------------------
#
# link_id and attr_hash are XXH3-64 (index.state) so that a later crawl or ingest into the
# bulk-loaded index diffs against the same ids. DuckDB has no XXH3, so the strings are built
# in SQL and hashed here on all cores: in C straight from the Arrow buffers
# (inlink/_linkpack.c with libxxhash), else with the xxhash package.

def ident_sql() -> str:
    # state.link_id: f"{source_key}\x1f{kind}\x1f{target_key}\x1f{anchor}\x1f{image_url or ''}"
    return ("concat(source_key, chr(31), kind, chr(31), target_key, chr(31), anchor, chr(31), "
            "coalesce(image_url, ''))")


def attr_sql() -> str:
    # state.link_attr_hash: None is formatted as the string 'None' by the f-string. A links
    # row's NULL target_url is its key (schema 4).
    return ("concat(coalesce(target_url, target_key), chr(31), "
            "nofollow::INTEGER, ugc::INTEGER, sponsored::INTEGER, "
            "chr(31), coalesce(alt, 'None'), chr(31), text_pre, chr(31), text_post, chr(31), "
            "coalesce(location, 'None'), chr(31), links_count, chr(31), "
            "coalesce(hreflang, 'None'))")


def hash64_many(texts: list[str]) -> npt.NDArray[np.int64]:
    """`state.hash64` of many strings at once (same bytes, same signed 64-bit ints)."""
    return np.array([xxh3_64_intdigest(t.encode("utf-8", "surrogatepass")) for t in texts],
                    dtype=np.uint64).view(np.int64)


def hash64_arrow(values: pa.Array) -> npt.NDArray[np.int64]:
    """hash64_many of an Arrow string array: in C from its buffers when inlink._linkpack has
    libxxhash (rows.native_hasher), else through Python strings."""
    mod = native_hasher()
    if mod is None or values.null_count or values.type not in (pa.string(), pa.large_string()):
        return hash64_many(values.to_pylist())
    _, offsets, data = values.buffers()
    width = 8 if values.type == pa.large_string() else 4
    return np.frombuffer(mod.hash_strings(offsets, data if data is not None else b"",
                                          values.offset, len(values), width), dtype="<i8")


def _hash_batch(ident: pa.Array, attrs: pa.Array) -> tuple[bytes, bytes]:
    return hash64_arrow(ident).tobytes(), hash64_arrow(attrs).tobytes()


def _hashed_batches(reader: pa.RecordBatchReader, workers: int) -> Iterator[pa.RecordBatch]:
    """Replace the `ident`/`attrs` columns of each batch by `link_id`/`attr_hash`."""
    def finish(batch: pa.RecordBatch, hashed: tuple[bytes, bytes]) -> pa.RecordBatch:
        lid = pa.array(np.frombuffer(hashed[0], dtype=np.int64))
        ah = pa.array(np.frombuffer(hashed[1], dtype=np.int64))
        keep = [n for n in batch.schema.names if n not in ("ident", "attrs")]
        return pa.RecordBatch.from_arrays([batch.column(n) for n in keep] + [lid, ah],
                                          names=[*keep, "link_id", "attr_hash"])

    if workers <= 1:
        for batch in reader:
            yield finish(batch, _hash_batch(batch.column("ident"), batch.column("attrs")))
        return
    # spawn, never fork: this process holds DuckDB (same rule as ingest's workers).
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        pending: list[tuple[pa.RecordBatch, cf.Future[tuple[bytes, bytes]]]] = []
        for batch in reader:
            pending.append((batch, pool.submit(_hash_batch, batch.column("ident"),
                                               batch.column("attrs"))))
            if len(pending) > 2 * workers:
                b, fut = pending.pop(0)
                yield finish(b, fut.result())
        for b, fut in pending:
            yield finish(b, fut.result())


# -- the load ---------------------------------------------------------------------------------

def _files(export_dir: Path) -> dict[str, str]:
    files = {name: export_dir / f"{name}.parquet" for name in ("hosts", "pages", "links",
                                                               "events")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise InlinkError(f"{export_dir} is not a world export (missing {', '.join(missing)}): "
                          "write one with `inlink world export OUT_DIR`")
    return {k: str(v.resolve()) for k, v in files.items()}


def _export_digest(files: dict[str, str]) -> str:
    """A cheap fingerprint of an export: hosts.parquet's bytes plus every file's size."""
    h = hashlib.sha256(Path(files["hosts"]).read_bytes())
    for name in sorted(files):
        h.update(f"{name}:{os.path.getsize(files[name])}".encode())
    return h.hexdigest()


def load_world_export(store: Store, export_dir: Path | str, *, through_day: int | None = None,
                      memory_limit: str | None = None, workers: int | None = None,
                      progress: Progress | None = None) -> BulkSummary:
    """Load a world export into an empty index as a daily crawl of days 1..through_day would.

    One transaction: a crash or error leaves the index as empty as it was. `memory_limit`
    (e.g. "4GB") raises DuckDB's cap for the load only; `workers` hashes identities in that
    many processes (None: all cores, 0/1: in this process).
    """
    began = time.perf_counter()
    say = progress or (lambda _msg: None)
    stages: dict[str, float] = {}
    src = Path(export_dir)
    files = _files(src)
    cur = store.cursor()
    days_row = cur.execute("SELECT max(day), min(date) - INTERVAL 1 DAY * (min(day) - 1), "
                           "count(*) FILTER (WHERE day = 1) FROM read_parquet(?)",
                           [files["pages"]]).fetchall()[0]
    max_day, day0, n_pages = int(days_row[0]), days_row[1], int(days_row[2])
    through = max_day if through_day is None else through_day
    if not 1 <= through <= max_day:
        raise InlinkError(f"through_day must be within 1..{max_day} for {src}, got {through}")
    start = day0.date() if isinstance(day0, dt.datetime) else day0
    if store.counts()["fetches"] or store.counts()["links"]:
        raise InlinkError(f"{store.path} already holds an index: bulk loading writes a new "
                          "one, so point it at a fresh file")
    # The export writes pages.parquet day-major, every page once a day in the same order, so
    # row (day - 1) * n_pages + i is page i on that day: fetch ids and evidence offsets.
    layout = cur.execute(
        "SELECT count(*) FROM (SELECT day, min(file_row_number) AS lo, max(file_row_number) "
        "AS hi, count(*) AS n FROM read_parquet(?, file_row_number = true) GROUP BY day) "
        "WHERE lo <> (day - 1) * ? OR hi <> day * ? - 1 OR n <> ?",
        [files["pages"], n_pages, n_pages, n_pages]).fetchall()[0][0]
    if layout:
        raise InlinkError(f"{files['pages']} is not laid out one day after another; "
                          "re-export it with this inlink version")

    work = Path(tempfile.mkdtemp(prefix=".bulk-", dir=store.path.parent))
    previous_limit = None
    try:
        if memory_limit:
            previous_limit = cur.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
            run(cur, "SET memory_limit = ?", [memory_limit])
        t = time.perf_counter()
        say("hashing link identities")
        prepared = work / "links.parquet"
        n_links = _prepare_links(cur, files, through, prepared,
                                 os.cpu_count() or 1 if workers is None else workers)
        stages["hash"] = time.perf_counter() - t
        job = f"import:world:{_export_digest(files)[:16]}"
        with store.transaction() as conn:
            summary = _load(conn, files, prepared, through, n_pages, start, job, str(src), say,
                            stages)
        t = time.perf_counter()
        say("checkpoint")
        run(cur, "CHECKPOINT")
        stages["checkpoint"] = time.perf_counter() - t
    finally:
        if previous_limit is not None:
            run(cur, "SET memory_limit = ?", [previous_limit])
        shutil.rmtree(work, ignore_errors=True)
    assert summary["links"] == n_links
    return BulkSummary(export_dir=src, job=job, through_day=through,
                       seconds=time.perf_counter() - began, stages=stages, **summary)


def _prepare_links(cur: duckdb.DuckDBPyConnection, files: dict[str, str], through: int,
                   out: Path, workers: int) -> int:
    """One row per link ever live by `through`: its first interval's attributes, its span
    (first day, last live day, intervals) and its hashes, written to `out` (Parquet)."""
    # The export has one row per (link, maximal live interval); a link's attributes are the
    # same in every interval, so the first interval stands for the link.
    sql = f"""
        WITH iv AS (
            SELECT link_id AS uid, first_day, least(last_day, $2) AS last_day
            FROM read_parquet($1) WHERE first_day <= $2),
        span AS (
            SELECT uid, min(first_day) AS f, max(last_day) AS l, count(*)::INTEGER AS n
            FROM iv GROUP BY uid)
        SELECT s.uid, s.f, s.l, s.n, x.source_key, x.source_url, x.target_key, x.target_url,
               x.kind, x.anchor, x.alt, x.image_url, x.nofollow, x.ugc, x.sponsored,
               x.text_pre, x.text_post, x.location, x.links_count, x.hreflang,
               {ident_sql()} AS ident, {attr_sql()} AS attrs
        FROM read_parquet($1) x JOIN span s ON x.link_id = s.uid AND x.first_day = s.f
    """
    reader = cur.sql(sql, params=[files["links"], through]).to_arrow_reader(_HASH_BATCH)
    n = 0
    writer: pq.ParquetWriter | None = None
    try:
        for batch in _hashed_batches(reader, workers):
            if writer is None:
                writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
            writer.write_batch(batch)
            n += batch.num_rows
    finally:
        reader.close()   # the connection refuses other work while a result is open
        if writer is not None:
            writer.close()
    if writer is None:
        raise InlinkError(f"{files['links']} has no link live by day {through}")
    dupes = cur.execute("SELECT count(*) - count(DISTINCT link_id) FROM read_parquet(?)",
                        [str(out)]).fetchall()[0][0]
    if dupes:
        raise InlinkError(f"{dupes} export links share an index identity (source, kind, "
                          "target, anchor, image); the export and index.state disagree")
    return n


def _at(day_expr: str) -> str:
    """SQL for the fetch time of a day number (noon UTC; `$at0` is day 1's)."""
    return f"($at0::TIMESTAMP + INTERVAL 1 DAY * (({day_expr}) - 1))"


_STATE = ("CASE p.outcome WHEN 'not_found' THEN 'page_not_found' "
          "WHEN 'dropped' THEN 'page_dropped' ELSE p.outcome END")
# No status when no response was read: a dropped page is not fetched, export status 0 is a
# reset, and a crawl_error below 500 is a body cut short. No IP without a connection.
_STATUS = ("CASE WHEN p.outcome = 'dropped' OR p.status = 0 OR "
           "(p.outcome = 'crawl_error' AND p.status < 500) THEN NULL ELSE p.status END")
_IP = "CASE WHEN p.outcome = 'dropped' OR p.status = 0 THEN NULL ELSE h.ip END"


def _load(conn: duckdb.DuckDBPyConnection, files: dict[str, str], prepared: Path,
          through: int, n_pages: int, start: dt.date, job: str, path: str, say: Progress,
          stages: dict[str, float]) -> dict[str, int]:
    """Everything inside the one write transaction."""
    params: dict[str, object] = {
        "through": through, "n": n_pages, "prepared": str(prepared),
        "at0": dt.datetime.combine(start, FETCH_TIME), **files}

    def stage(name: str, *statements: str) -> None:
        say(name)
        t = time.perf_counter()
        for sql in statements:
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            conn.execute(sql, used).fetchall()
        stages[name] = time.perf_counter() - t

    stage(
        "hosts and pages",
        "CREATE OR REPLACE TEMP TABLE bulk_hosts AS SELECT host, ip, subnet, domain "
        "FROM read_parquet($hosts)",
        # A page enters the index on the first day robots.txt lets the crawler fetch it and is
        # re-fetched every day after (as a known page: page_dropped while disallowed).
        "CREATE OR REPLACE TEMP TABLE bulk_pages AS SELECT url, "
        "min(file_row_number) FILTER (WHERE day = 1) AS idx, "
        "min(day) FILTER (WHERE robots_allowed) AS first_day "
        "FROM read_parquet($pages, file_row_number = true) WHERE day <= $through GROUP BY url",
        "CREATE OR REPLACE TEMP TABLE bulk_lost AS SELECT link_id AS uid, day, reason "
        "FROM read_parquet($events) WHERE event = 'lost' AND day <= $through")

    stage(
        "fetches",
        f"""INSERT INTO fetches
        SELECT p.file_row_number + 1, p.day, p.url, p.url, {_at('p.day')}, {_STATUS}, {_STATE},
               true, 'import', {_IP}, $pages, p.file_row_number, NULL
        FROM read_parquet($pages, file_row_number = true) p
        JOIN bulk_pages b USING (url) JOIN bulk_hosts h ON h.host = p.host
        WHERE p.day <= $through AND b.first_day IS NOT NULL AND p.day >= b.first_day
        ORDER BY p.file_row_number""")

    # Links, sorted like Store.compact() so no compaction is needed afterwards. A lost link
    # was last seen the day before it was lost (its page is fetched every day).
    stage(
        "links",
        f"""INSERT INTO links
        SELECT x.link_id, th.domain, th.host, x.target_key, nullif(x.target_url, x.target_key),
               x.source_key, nullif(x.source_url, x.source_key), sh.host, sh.domain, sh.ip,
               sh.subnet, NULL,
               sh.domain = th.domain, x.kind, x.anchor, x.alt, x.image_url,
               x.nofollow, x.ugc, x.sponsored, x.text_pre, x.text_post, x.location,
               x.links_count, x.hreflang, x.attr_hash, x.l = $through,
               {_at('x.f')}, {_at('x.l')},
               CASE WHEN x.l < $through THEN {_at('x.l + 1')} END,
               CASE WHEN x.l < $through THEN coalesce(lr.reason, 'link_removed') END,
               (x.f - 1) * $n + b.idx + 1, (x.l - 1) * $n + b.idx + 1, NULL, x.f
        FROM read_parquet($prepared) x
        JOIN bulk_pages b ON b.url = x.source_key
        JOIN bulk_hosts sh ON sh.host = split_part(x.source_key, '/', 3)
        JOIN bulk_hosts th ON th.host = split_part(x.target_key, '/', 3)
        LEFT JOIN bulk_lost lr ON lr.uid = x.uid AND lr.day = x.l + 1
        ORDER BY th.domain, th.host, x.target_key, x.source_key""")

    # Changes: each link's last 'lost' comes from its row (its first 'new' is the row itself),
    # the intervals in between (a link lost and back, maybe more than once) from the export's
    # interval rows.
    stage(
        "link_changes",
        f"""INSERT INTO link_changes
        WITH multi AS (SELECT uid, link_id, f, l FROM read_parquet($prepared) WHERE n > 1),
        extra AS (
            SELECT m.uid, m.link_id, i.first_day, least(i.last_day, $through) AS last_day,
                   m.f, m.l
            FROM read_parquet($links) i JOIN multi m ON m.uid = i.link_id
            WHERE i.first_day <= $through),
        ev AS (
            SELECT link_id, lost_at AS seen_at, 'lost' AS event, lost_reason AS reason
            FROM links WHERE lost_at IS NOT NULL
            UNION ALL
            SELECT e.link_id, {_at('e.first_day')}, 'new', NULL
            FROM extra e WHERE e.first_day > e.f
            UNION ALL
            SELECT e.link_id, {_at('e.last_day + 1')}, 'lost', coalesce(lr.reason, 'link_removed')
            FROM extra e LEFT JOIN bulk_lost lr ON lr.uid = e.uid AND lr.day = e.last_day + 1
            WHERE e.last_day < e.l)
        SELECT ev.seen_at::DATE, ev.seen_at, ev.link_id, ev.event, ev.reason, l.target_domain,
               l.target_host, l.target_key, l.source_key, l.source_domain, l.internal,
               datediff('day', $at0::DATE, ev.seen_at::DATE) + 1
        FROM ev JOIN links l USING (link_id)
        ORDER BY l.target_domain, ev.seen_at::DATE, l.target_key""")

    # Pages: the state of each page's latest fetch, with the links it keeps live.
    stage(
        "pages",
        f"""INSERT INTO pages
        WITH kept AS (
            SELECT source_key, list(link_id ORDER BY link_id) AS ids,
                   list(attr_hash ORDER BY link_id) AS hashes
            FROM links WHERE live GROUP BY source_key)
        SELECT p.url, p.url, p.host, h.domain, {_at('b.first_day')}, {_at('p.day')},
               p.file_row_number + 1, {_STATUS}, {_STATE}, NULL, {_IP}, NULL, NULL, NULL,
               NULL, NULL, NULL, NULL, NULL,
               CASE WHEN ({_STATUS}) BETWEEN 200 AND 299 THEN p.outcome = 'noindex' END,
               NULL, p.canonical_to,
               p.redirect_to, coalesce(k.ids, []), coalesce(k.hashes, [])
        FROM read_parquet($pages, file_row_number = true) p
        JOIN bulk_pages b USING (url) JOIN bulk_hosts h ON h.host = p.host
        LEFT JOIN kept k ON k.source_key = p.url
        WHERE p.day = $through AND b.first_day IS NOT NULL""")

    say("batches and manifest")
    counts = {int(row[0]): row[1:] for row in run(conn, """
        SELECT r.d, (SELECT count(*) FROM fetches WHERE batch_id = r.d),
               (SELECT count(*) FROM link_events WHERE batch_id = r.d AND event = 'new'),
               (SELECT count(*) FROM link_events WHERE batch_id = r.d AND event = 'lost')
        FROM range(1, ? + 1) r(d)""", [through])}
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for day in range(1, through + 1):
        f, new, lost = counts[day]
        run(conn, "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?)", [day, job, now, f, new, lost])
    totals = {
        "pages": int(run(conn, "SELECT count(*) FROM pages")[0][0]),
        "fetches": int(run(conn, "SELECT count(*) FROM fetches")[0][0]),
        "links": int(run(conn, "SELECT count(*) FROM links")[0][0]),
        "live_links": int(run(conn, "SELECT count(*) FROM links WHERE live")[0][0]),
        "events": int(run(conn, "SELECT count(*) FROM link_events")[0][0]),
        "batches": through,
    }
    run(conn, "DELETE FROM manifests WHERE job = ?", [job])
    run(conn, "INSERT INTO manifests VALUES (?, 'import', ?, ?, NULL, ?, ?, 0, true, ?, ?)",
        [job, path, job.rsplit(":", 1)[1], through, totals["fetches"], now,
         json.dumps({"through_day": through, "start": start.isoformat(), **totals})])
    for table in ("bulk_hosts", "bulk_pages", "bulk_lost"):
        run(conn, f"DROP TABLE {table}")
    return totals
