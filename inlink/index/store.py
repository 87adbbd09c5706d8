"""The Store owns the index's DuckDB file: one writer at a time, a cursor per reader thread.

Writes happen in whole transactions (a batch is visible entirely or not at all); a process
killed mid-batch leaves the file as of the last committed batch (DuckDB's write-ahead log).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pyarrow as pa

from inlink.errors import InlinkError
from inlink.index.gcpolicy import HeldSetting

SCHEMA_VERSION = "4"
#: Schema 2 keeps the source page's title on each link row (`links.source_title`): a backlink
#: listing needs no keyed read of `pages` per source page. Schema 3 keeps each link's first
#: appearance in its row (`first_seen`, `first_batch_id`) instead of an event row:
#: `link_changes` holds the later changes and the view `link_events` all of them, so a first
#: ingest writes each link once; its link ids and attribute hashes are XXH3-64 instead of
#: BLAKE2b-64 (docs/data-model.md). An older file is upgraded when it is first opened for
#: writing (`_UPGRADES`).
#: DuckDB buffer pool cap per process (`INLINK_MEMORY_LIMIT`); None leaves DuckDB's default.
DEFAULT_MEMORY_LIMIT = "1GB"
#: Write-ahead log size that triggers an automatic checkpoint (DuckDB's default is 16 MB).
#: A batch of a few hundred pages writes ~20 MB of WAL, so with the default every commit
#: checkpointed, recompressing the tables' last row groups each time: 3.5x slower writes
#: (docs/ingest.md). The WAL is replayed on the next open after a crash either way.
CHECKPOINT_THRESHOLD = "256MB"
#: Block size of a new index file (DuckDB's default is 256 KiB; an existing file keeps its
#: own). A small target's rows sit in one compressed segment per column, and DuckDB decodes
#: a segment's string dictionary to read any row of it: with 64 KiB blocks a 100-backlink
#: summary reads its rows in 3.6 ms instead of 6.8 ms on the 24M-link bench index, in a
#: file of the same size, with whole-table scans unchanged (docs/query.md, "Storage for
#: point reads").
BLOCK_SIZE = 65_536
#: Rows per row group of what this process writes (DuckDB's default is 122,880; row groups
#: of other sizes already in a file stay as they are). An append of at least a row group
#: is written straight to the file, compressed, when its transaction commits, while a
#: smaller one goes through the WAL and is compressed again at the checkpoint: the size
#: sets the smallest efficient ingest batch (ingest.BATCH_LINKS). Half the default halves
#: the batch, and with it the time the ingest's writer waits for the first one and the
#: memory two batches hold: the 3,000-page bench ingest took 2.86-2.93 s instead of
#: 3.20-3.51 s, at 478-502 MiB of RSS instead of 649-693, in a file 2% larger
#: (docs/ingest.md, "Batch size"). A quarter of the default (stop 15) lets a file's first
#: batch be half a full one and still go straight to the file: the writer starts half a
#: batch sooner (2.26 -> 2.10 s, twelve alternating pairs; docs/ingest.md).
#: Point reads lose nothing (docs/query.md, "Storage for point reads").
ROW_GROUP_SIZE = 30_720
#: The name the index file is attached under (`Store` connections `USE` it).
_CATALOG = "inlink_index"
#: On `query(..., late=True)`: top-N queries up to this many rows sort the ORDER BY keys
#: alone and then fetch the other columns of the rows they keep (DuckDB's late
#: materialization; its default is 50 rows). A 101-row backlink page of a 1M-backlink target
#: then reads in 30 ms instead of 49 ms; on a 100-row target the second pass costs ~1 ms
#: more, so listings ask for it on heavy targets only.
LATE_MATERIALIZATION_ROWS = 100_001
T = TypeVar("T")
log = logging.getLogger("inlink.index")


def run(conn: duckdb.DuckDBPyConnection, sql: str,
        params: list[object] | None = None) -> list[tuple[Any, ...]]:
    """Execute and fetch everything: DuckDB refuses other work on a connection (registering
    an Arrow table, say) while a result is still open, and DML returns a result too."""
    return conn.execute(sql, params or []).fetchall()


class StoreLocked(InlinkError):
    """Another process has the index file open for writing."""

    def __init__(self, path: Path, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"{path} is open in another process ({holder}). DuckDB allows one process to "
            "open it for writing: wait for that one to end, or stop it. (`inlink crawl`, "
            "`ingest` and `rank` hand their work to a running `inlink serve` of this index "
            "by themselves.)"
        )


class Store:
    """The index file. `write(fn)` runs fn(conn) in a transaction; `cursor()` is for readers."""

    def __init__(self, path: Path | str, *, read_only: bool = False,
                 memory_limit: str | None = DEFAULT_MEMORY_LIMIT) -> None:
        self.path = Path(path)
        self.read_only = read_only
        try:
            if not read_only:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = _attach(self.path, read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            if "lock" in message.lower():
                pid = re.search(r"PID (\d+)", message)
                raise StoreLocked(self.path, f"PID {pid.group(1)}" if pid else "unknown") from None
            raise InlinkError(f"cannot open index {self.path}: {message}") from None
        except duckdb.ResourceInUseException:
            # Another Store of this process has the file (DuckDB attaches a file once).
            raise StoreLocked(self.path, f"PID {os.getpid()}, this process") from None
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._vacuum = HeldSetting()      # vacuum_paused
        #: Committed write transactions of this Store so far. The process that writes owns
        #: the file, so an unchanged generation means unchanged data: readers key caches on it.
        self.generation = 0
        if memory_limit:
            # DuckDB's default buffer pool is 80% of RAM; a crawl or ingest next to a server
            # should not grow that far (it spills to disk past the limit instead).
            run(self._conn, "SET memory_limit = ?", [memory_limit])
        if not read_only:
            run(self._conn, "SET checkpoint_threshold = ?", [CHECKPOINT_THRESHOLD])
            self._ensure_schema()
        else:
            self._check_schema()

    # -- lifecycle

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_schema(self) -> None:
        sql = resources.files("inlink.index").joinpath("schema.sql").read_text(encoding="utf-8")
        # The views bind to the current tables: made after an older file's upgrade.
        views = [_schema_statement(start) for start in _VIEWS]
        for view in views:
            sql = sql.replace(view + ";", "")
        with self._write_lock:
            run(self._conn, "BEGIN")
            run(self._conn, sql)
            rows = run(self._conn, "SELECT value FROM meta WHERE key = 'schema_version'")
            if not rows:
                run(self._conn, "INSERT INTO meta VALUES ('schema_version', ?)",
                    [SCHEMA_VERSION])
            elif rows[0][0] in _UPGRADES:
                try:
                    # First: DuckDB cannot alter a column of a table this transaction has
                    # already updated (the 2 -> 3 step does).
                    _urls_nullable(self._conn)
                    for version in range(int(rows[0][0]), int(SCHEMA_VERSION)):
                        _UPGRADES[str(version)](self._conn)
                    run(self._conn, "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                        [SCHEMA_VERSION])
                except duckdb.Error as exc:
                    run(self._conn, "ROLLBACK")
                    self._conn.close()
                    raise InlinkError(f"{self.path}: upgrading the index to schema "
                                      f"{SCHEMA_VERSION} failed, nothing changed: {exc}") from None
            elif rows[0][0] != SCHEMA_VERSION:
                run(self._conn, "ROLLBACK")
                raise InlinkError(
                    f"{self.path} has index schema {rows[0][0]}, this inlink writes "
                    f"{SCHEMA_VERSION}: rebuild the index or use a matching inlink version")
            for view in views:
                run(self._conn, view)
            run(self._conn, "COMMIT")

    def _check_schema(self) -> None:
        """A read-only open of an older index says how to upgrade it (no half answers)."""
        try:
            rows = run(self._conn, "SELECT value FROM meta WHERE key = 'schema_version'")
        except duckdb.CatalogException:
            return   # not an index yet: the first query says so
        if rows and rows[0][0] != SCHEMA_VERSION:
            self._conn.close()
            raise InlinkError(
                f"{self.path} has index schema {rows[0][0]}, this inlink reads "
                f"{SCHEMA_VERSION}: open it once for writing (any inlink command that writes, "
                "or `inlink serve`) to upgrade it")

    # -- reading

    def cursor(self, *, late: bool = False) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared across threads);
        `late`: its second cursor, with late materialization up to LATE_MATERIALIZATION_ROWS."""
        name = "late_cursor" if late else "cursor"
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, name, None)
        if cur is None:
            cur = self._conn.cursor()
            run(cur, f"USE {_CATALOG}")
            if late:
                run(cur, f"SET late_materialization_max_rows = {LATE_MATERIALIZATION_ROWS}")
            setattr(self._local, name, cur)
        return cur

    def query(self, sql: str, params: list[object] | None = None, *,
              late: bool = False) -> list[tuple[Any, ...]]:
        """Run a read query on this thread's cursor (`late`: see `cursor`), fetch all rows."""
        return self.cursor(late=late).execute(sql, params or []).fetchall()

    async def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """Run fn(cursor) in a worker thread with that thread's own cursor."""
        return await asyncio.to_thread(lambda: fn(self.cursor()))

    # -- writing

    @contextmanager
    def transaction(self, *, data: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """The single writer: a transaction that commits whole or rolls back whole.

        `data=False` marks bookkeeping that no query reads (API credits, export tasks): it
        leaves `generation`, and so every cache keyed on it, as it was."""
        if self.read_only:
            raise InlinkError(f"{self.path} is open read-only")
        with self._write_lock:
            conn = self._conn
            run(conn, "BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                run(conn, "ROLLBACK")
                raise
            run(conn, "COMMIT")
            if data:
                self.generation += 1

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, data: bool = True) -> T:
        """Run fn(conn) inside one write transaction (`data`: see `transaction`)."""
        with self.transaction(data=data) as conn:
            return fn(conn)

    async def write_async(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        return await asyncio.to_thread(self.write, fn)

    def next_id(self, conn: duckdb.DuckDBPyConnection, table: str, column: str) -> int:
        """The next free integer id of a table (call inside the write transaction)."""
        if (table, column) not in _ID_COLUMNS:
            raise ValueError(f"{table}.{column} is not an id column")
        return int(run(conn, f"SELECT coalesce(max({column}), 0) + 1 FROM {table}")[0][0])

    # -- maintenance

    def compact(self, memory_limit: str | None = None) -> None:
        """Rewrite links and events in target order (pages in key order), so the rows a
        query needs sit together.

        DuckDB keeps min/max statistics per row group: once rows are sorted by target, a
        query for one target skips every row group that cannot hold it. `memory_limit`
        caps DuckDB's memory for the sort (it spills to disk past it), see memory_capped; a
        big table is sorted in key ranges so each pass fits (COMPACT_ROWS_PER_PASS).
        """
        # The sorted copies are written in passes, each ending in a partial row group:
        # merging those at the checkpoint would recompress the copy (vacuum_paused).
        with self.memory_capped(memory_limit), self.vacuum_paused():
            self._compact()

    @contextmanager
    def memory_capped(self, limit: str | None) -> Iterator[None]:
        """Lower DuckDB's memory limit (`SET memory_limit`) to `limit` while the block runs,
        when it is lower than the store's own; None leaves it as it is."""
        saved: str | None = None
        if limit:
            with self._write_lock:
                saved = str(run(self._conn, "SELECT current_setting('memory_limit')")[0][0])
                run(self._conn, "SET memory_limit = ?", [limit])
                if _bytes(saved) < _bytes(str(run(
                        self._conn, "SELECT current_setting('memory_limit')")[0][0])):
                    run(self._conn, "SET memory_limit = ?", [saved])
        try:
            yield
        finally:
            if saved is not None:
                with self._write_lock:
                    run(self._conn, "SET memory_limit = ?", [saved])

    def checkpoint(self) -> None:
        """Write everything committed into the file's tables and empty the WAL."""
        with self._write_lock:
            run(self._conn, "CHECKPOINT")

    @contextmanager
    def vacuum_paused(self) -> Iterator[None]:
        """Turn off DuckDB's row-group merging at checkpoints while the block runs.

        A batch's link rows fill whole row groups and leave a partial one (a page's links
        are never split between batches, so a batch cannot end on a row-group boundary).
        At a checkpoint DuckDB merges runs of row groups that fit in fewer, which
        decompresses and recompresses the full groups around each partial one: ~1.1 s
        after the 3,000-page bench ingest (whose batches spent 1.36 s inserting links), and
        16.7-26.1 s, at ~1.45 GiB of RSS, when a store closed after a 1 GB ingest. Bulk
        writes (an ingest, a compaction) pause it: the partial groups stay as they are
        until the next compaction rewrites the tables, which is the merging this index
        needs (docs/ingest.md, "Checkpoints"). Pauses nest and may overlap (jobs in a
        server): the setting comes back when the last one ends.
        """
        def pause() -> Callable[[], None]:
            with self._write_lock:
                try:
                    saved = int(run(self._conn,
                                    "SELECT current_setting('max_vacuum_tasks')")[0][0])
                    run(self._conn, "SET max_vacuum_tasks = 0")
                except duckdb.Error:  # a DuckDB without the setting merges as it always did
                    return lambda: None

            def resume() -> None:
                with self._write_lock:
                    run(self._conn, f"SET max_vacuum_tasks = {saved}")
            return resume

        with self._vacuum.held(pause):
            yield

    def _compact(self) -> None:
        with self.transaction() as conn:
            # A sorted copy under the schema's own definition (constraints included), then
            # swapped in: half the work of sorting into a temp table, deleting every row and
            # inserting them back. One transaction: readers see the old table or the new one.
            # Indexes on a table (the query layer's, inlink.query.indexes) go with DROP TABLE:
            # they are made again, from their own SQL, on the sorted copy.
            for table, order in _SORT_ORDER.items():
                indexes = [str(sql) for (sql,) in run(
                    conn, "SELECT sql FROM duckdb_indexes() WHERE table_name = ? "
                          "AND schema_name = 'main' AND sql IS NOT NULL", [table])]
                run(conn, _table_ddl(table, f"{table}__sorted"))
                key = order.split(",")[0].strip()
                for lo, hi in _key_ranges(conn, table, key):
                    terms = [f"{key} >= ?"] * (lo is not None) + [f"{key} < ?"] * (hi is not None)
                    run(conn, f"INSERT INTO {table}__sorted SELECT * FROM {table} "
                              f"WHERE {' AND '.join(terms) or 'true'} ORDER BY {order}",
                        [v for v in (lo, hi) if v is not None])
                run(conn, f"DROP TABLE {table}")
                run(conn, f"ALTER TABLE {table}__sorted RENAME TO {table}")
                for sql in indexes:
                    run(conn, sql)
        self.checkpoint()

    def counts(self) -> dict[str, int]:
        """Row counts of the main tables (for summaries and tests)."""
        out: dict[str, int] = {}
        for table in ("pages", "fetches", "links", "link_events", "batches"):
            (count,) = self.query(f"SELECT count(*) FROM {table}")[0]
            out[table] = int(str(count))
        return out


#: Rows one pass of a compaction sorts. A bigger table is sorted a range of its first sort key
#: at a time, the ranges in order: under the ingest's 512 MB cap one sort of 4.78M link rows
#: spills and took 37 s, four ranges of ~1.2M took 25.5 s (a sort that fits in memory costs
#: what a copy does, 14 s; more ranges cost more, as each pass decodes the unsorted rows).
COMPACT_ROWS_PER_PASS = 1_200_000
#: Rows sampled to place the ranges' bounds.
_RANGE_SAMPLE = 100_000


def _key_ranges(conn: duckdb.DuckDBPyConnection, table: str, key: str
                ) -> list[tuple[str | None, str | None]]:
    """[lo, hi) ranges of `key` (a NOT NULL column) that split the table into passes of
    about COMPACT_ROWS_PER_PASS rows; one unbounded range for a smaller table. The bounds
    are quantiles of a sample: a value's rows all fall in one range, whatever its count."""
    (rows,) = run(conn, f"SELECT count(*) FROM {table}")[0]
    passes = -(-int(rows) // COMPACT_ROWS_PER_PASS)
    if passes <= 1:
        return [(None, None)]
    cuts = run(conn, f"SELECT quantile_disc({key}, ?) FROM (SELECT {key} FROM {table} "
                     f"USING SAMPLE reservoir({_RANGE_SAMPLE} ROWS) REPEATABLE (1))",
               [[i / passes for i in range(1, passes)]])[0][0]
    bounds = sorted(set(cuts))
    return list(zip([None, *bounds], [*bounds, None], strict=True))


_SORT_ORDER = {
    # pages by key: listings join referring pages by source_key (zone maps skip the rest)
    "pages": "url_key",
    "links": "target_domain, target_host, target_key, source_key",
    "link_changes": "target_domain, day, target_key",
}


def _attach(path: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB instance with the index file attached as `inlink_index` and in use.

    ATTACH rather than connect(path): the row-group size is an option of ATTACH
    (ROW_GROUP_SIZE). Spills go where DuckDB puts them for a file it opened itself."""
    conn = duckdb.connect(":memory:", config={"default_block_size": str(BLOCK_SIZE),
                                              "temp_directory": f"{path}.tmp"})
    option = "READ_ONLY" if read_only else f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}"
    try:
        run(conn, f"ATTACH ? AS {_CATALOG} ({option})", [str(path)])
        run(conn, f"USE {_CATALOG}")
    except BaseException:
        conn.close()
        raise
    return conn


def _bytes(setting: str) -> float:
    """DuckDB's memory setting as shown ('953.6 MiB', '1.2 GiB') in bytes."""
    number, _, unit = setting.strip().partition(" ")
    scale = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
             "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
    return float(number) * scale.get(unit, 1)


def _upgrade_1_to_2(conn: duckdb.DuckDBPyConnection) -> None:
    """Schema 1 -> 2 inside the caller's transaction: links rewritten with `source_title`
    from the source page's current title (the title a lost link was last seen with is not
    known in schema 1), in compaction order."""
    log.warning("upgrading the index to schema 2: rewriting the links table with source "
                "page titles (a few minutes for tens of millions of links)")
    run(conn, _table_ddl("links", "links__v2"))
    run(conn, "INSERT INTO links__v2 SELECT l.*, p.title, NULL FROM links l "
              "LEFT JOIN pages p ON p.url_key = l.source_key "
              f"ORDER BY {', '.join('l.' + c.strip() for c in _SORT_ORDER['links'].split(','))}")
    run(conn, "DROP TABLE links")
    run(conn, "ALTER TABLE links__v2 RENAME TO links")


def _upgrade_2_to_3(conn: duckdb.DuckDBPyConnection) -> None:
    """Schema 2 -> 3 inside the caller's transaction: link ids and attribute hashes become
    XXH3 (state.hash64), each link's first 'new' event becomes its row's `first_batch_id`,
    the other events move to `link_changes`, and `link_events` becomes the view over both
    (schema.sql)."""
    log.warning("upgrading the index to schema 3: new link ids, and the links' first "
                "appearances out of the event log (a few minutes for tens of millions of "
                "links)")
    run(conn, "ALTER TABLE links ADD COLUMN IF NOT EXISTS first_batch_id BIGINT")
    _rehash_map(conn)
    # A link's first 'new' is the one at its first_seen (a link seen again has later ones).
    run(conn, "CREATE OR REPLACE TEMP TABLE first_new AS "
              "SELECT e.link_id, e.seen_at, min(e.batch_id) AS batch_id "
              "FROM link_events e JOIN links l ON l.link_id = e.link_id "
              "AND e.seen_at = l.first_seen WHERE e.event = 'new' GROUP BY 1, 2")
    run(conn, "INSERT INTO link_changes SELECT e.* REPLACE (coalesce(m.new_id, e.link_id) "
              "AS link_id) FROM link_events e "
              "ANTI JOIN first_new f ON f.link_id = e.link_id AND f.seen_at = e.seen_at "
              "AND e.event = 'new' LEFT JOIN link_rehash m ON m.old_id = e.link_id "
              f"ORDER BY {_SORT_ORDER['link_changes']}")
    run(conn, "DROP TABLE link_events")        # the caller makes the view (_VIEWS)
    # One pass over the links: new id and hash, and the batch of the first 'new'.
    run(conn, "UPDATE links SET link_id = m.new_id, attr_hash = m.new_hash, "
              "first_batch_id = f.batch_id FROM link_rehash m "
              "LEFT JOIN first_new f ON f.link_id = m.old_id WHERE links.link_id = m.old_id")
    # A page's live link ids and their hashes, pair by pair (the lists are sets).
    run(conn, "UPDATE pages SET link_ids = n.ids, link_hashes = n.hashes FROM ("
              "SELECT u.url_key, list(coalesce(m.new_id, u.old_id) ORDER BY u.old_id) AS ids, "
              "list(coalesce(m.new_hash, u.old_hash) ORDER BY u.old_id) AS hashes FROM ("
              "SELECT url_key, unnest(link_ids) AS old_id, unnest(link_hashes) AS old_hash "
              "FROM pages) u LEFT JOIN link_rehash m ON m.old_id = u.old_id GROUP BY 1) n "
              "WHERE pages.url_key = n.url_key")
    # The heavy targets' ordered copy holds link ids: made again by the next refresh.
    run(conn, "DROP TABLE IF EXISTS heavy_links")
    run(conn, "DROP TABLE link_rehash")
    run(conn, "DROP TABLE first_new")


def _rehash_map(conn: duckdb.DuckDBPyConnection, rows_per_pass: int = 500_000) -> None:
    """Temp table link_rehash (old_id, new_id, new_hash): every link's id and attribute hash
    recomputed with today's state.hash64 from the row's own columns (bulk.ident_sql and
    attr_sql), a range of rowids at a time so the texts never all sit in memory.

    A text the index stored with U+FFFD in place of a lone surrogate (rows._strings) hashes
    as stored, not as extracted: such a link is reported lost and new once, when its page is
    next fetched."""
    from inlink.index.bulk import attr_sql, hash64_arrow, ident_sql

    run(conn, "CREATE OR REPLACE TEMP TABLE link_rehash "
              "(old_id BIGINT, new_id BIGINT, new_hash BIGINT)")
    # (rows written earlier in this transaction, as by the schema 1 -> 2 upgrade, have rowids
    # from 2^62 up: the passes run from the lowest rowid to the highest)
    first, last = run(conn, "SELECT coalesce(min(rowid), 0), coalesce(max(rowid), -1) "
                            "FROM links")[0]
    for lo in range(int(first), int(last) + 1, rows_per_pass):
        texts: pa.Table = conn.sql(
            f"SELECT link_id, {ident_sql()} AS ident, {attr_sql()} AS attrs FROM links "
            f"WHERE rowid >= {lo} AND rowid < {lo + rows_per_pass}").to_arrow_table()
        # The old ids are copied: an Arrow array DuckDB exported and then reads back in an
        # INSERT stayed referenced until the transaction ended, and with it the whole
        # exported pass, texts included (~140 MB a pass: 6.9 GB of RSS over the 24.4M-link
        # bench index, which was most of the upgrade's peak).
        part = pa.table({
            "old_id": pa.array(texts.column("link_id").to_numpy().copy(), pa.int64()),
            "new_id": hash64_arrow(texts.column("ident").combine_chunks()),
            "new_hash": hash64_arrow(texts.column("attrs").combine_chunks())})
        conn.register("rehash_part", part)
        run(conn, "INSERT INTO link_rehash SELECT * FROM rehash_part")
        conn.unregister("rehash_part")


#: schema.sql's views, by the start of their statements.
_VIEWS = ("CREATE VIEW IF NOT EXISTS link_events",)


def _urls_nullable(conn: duckdb.DuckDBPyConnection) -> None:
    """Schema 3 -> 4: links.target_url and source_url may be NULL (= their key). The rows
    keep their URLs; readers take coalesce(url, key) either way. Instant: no rewrite.
    _ensure_schema runs it first for a file of any older schema."""
    for column in ("target_url", "source_url"):
        nullable = run(conn, "SELECT is_nullable FROM duckdb_columns() WHERE table_name = "
                             "'links' AND column_name = ? AND database_name = "
                             "current_database()", [column])
        if nullable and not nullable[0][0]:
            run(conn, f"ALTER TABLE links ALTER COLUMN {column} DROP NOT NULL")


_UPGRADES: dict[str, Callable[[duckdb.DuckDBPyConnection], None]] = {
    "1": _upgrade_1_to_2, "2": _upgrade_2_to_3, "3": _urls_nullable}


def _table_ddl(table: str, name: str) -> str:
    """schema.sql's CREATE TABLE statement for `table`, creating `name` instead."""
    body = _schema_statement(f"CREATE TABLE IF NOT EXISTS {table} (")
    return f"CREATE TABLE {name} ({body.split('(', 1)[1]}"


def _schema_statement(start: str) -> str:
    """The statement of schema.sql that begins with `start` (up to its `;`)."""
    sql = resources.files("inlink.index").joinpath("schema.sql").read_text(encoding="utf-8")
    found = re.search(rf"^{re.escape(start)}.*?;$", sql, re.S | re.M)
    if found is None:
        raise InlinkError(f"schema.sql has no statement {start!r}")
    return found.group(0).rstrip(";")


_ID_COLUMNS = frozenset({("fetches", "fetch_id"), ("batches", "batch_id")})
