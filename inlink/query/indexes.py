"""The ART indexes the query layer relies on for keyed reads.

Listings fetch a page of link rows, then their source pages and ranks by key
(`backlinks._load_rows`, `aggregates._target_ranks`); DuckDB answers a literal `IN` list from
an ART index in about a millisecond where a join would scan a million pages. The links table
itself has none: it is read by target through zone maps over its target sort (compact).

`ensure()` creates what is missing; a server calls it at start and the CLI after each write
job (index creation over a million pages takes about two seconds; afterwards DuckDB keeps the
indexes up to date on every write, a small cost to crawls and ingests).
"""

from __future__ import annotations

import duckdb

from inlink.index.store import Store, run

#: (index name, table, column)
INDEXES = (
    ("pages_url_key", "pages", "url_key"),
    ("rank_pages_url_key", "rank_pages", "url_key"),
    ("rank_domains_domain", "rank_domains", "domain"),
)


def missing(store: Store) -> list[tuple[str, str, str]]:
    """The indexes of INDEXES not there yet (on tables that exist)."""
    have_tables = {str(r[0]) for r in store.query(
        "SELECT table_name FROM duckdb_tables() WHERE NOT temporary")}
    have = {str(r[0]) for r in store.query("SELECT index_name FROM duckdb_indexes()")}
    return [ix for ix in INDEXES if ix[1] in have_tables and ix[0] not in have]


def ensure(store: Store) -> list[str]:
    """Create the missing indexes (one transaction); returns their names."""
    todo = missing(store)
    if not todo or store.read_only:
        return []

    def fn(conn: duckdb.DuckDBPyConnection) -> None:
        for name, table, column in todo:
            run(conn, f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({column})")

    store.write(fn)
    return [name for name, _, _ in todo]
