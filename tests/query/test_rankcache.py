"""The in-memory copy of the current rank run equals the rank tables it was loaded from."""

from __future__ import annotations

import duckdb
from conftest import Indexed
from hypothesis import given, settings
from hypothesis import strategies as st

from inlink.query import rankcache
from inlink.query.sql import context


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_key_hash_is_duckdb_md5_number_upper(key: str) -> None:
    con = duckdb.connect()
    try:
        assert rankcache.key_hash(key) == con.execute("SELECT md5_number_upper(?)",
                                                      [key]).fetchone()[0]
    finally:
        con.close()


def test_page_and_domain_ranks_equal_the_run_tables(indexed: Indexed) -> None:
    store = indexed.store
    run_id = context(store).run_id
    assert run_id is not None
    pages = {k: (int(a), int(b), int(c)) for k, a, b, c in store.query(
        "SELECT url_key, inlink_rank, rank_1000, link_rank_1000 FROM rank_pages "
        "WHERE run_id = ?", [run_id])}
    domains = {d: (int(a), int(b)) for d, a, b in store.query(
        "SELECT domain, inlink_rank, rank_1000 FROM rank_domains WHERE run_id = ?", [run_id])}
    assert pages and domains
    unknown = ["https://nowhere.invalid/", "http://xn--e1afmkfd.invalid/ü"]
    got = rankcache.page_ranks(store, run_id, [*sorted(pages), *unknown])
    assert got == pages
    assert rankcache.domain_ranks(store, run_id, [*sorted(domains), "nowhere.invalid"]) \
        == domains
    assert rankcache.page_ranks(store, run_id, []) == {}


def test_home_ranks_equal_the_sql_of_list_refdomains(indexed: Indexed) -> None:
    from inlink.query.aggregates import home_rank_sql

    store = indexed.store
    ctx = context(store)
    assert ctx.run_id is not None
    domains = sorted({str(d) for (d,) in store.query("SELECT DISTINCT source_domain FROM links")}
                     | {"nowhere.invalid"})
    want = {str(d): int(r) for d, r in store.query(
        f"{home_rank_sql(ctx, '(SELECT unnest(?::VARCHAR[]) AS dom)')}", [domains])}
    assert len(want) > 50
    assert rankcache.home_ranks(store, ctx.run_id, domains) == want
