"""Field expressions that derive a value from another column agree with `inlink.urls`."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inlink import urls
from inlink.query import small
from inlink.query.sql import ANCHOR_TEXT_SQL, HOME_PAGE_SQL, SOURCE_TLD_SQL, label_sql

HOSTS = ["example.com", "www.example.co.uk", "a.b.c.example.org", "localhost", "intranet",
         "192.168.1.20", "[2001:db8::1]", "xn--bcher-kva.example", "bücher.de",
         "example.com.", "blogspot.com", "foo.blogspot.com", "a.gov.au", "x.y.z.edu"]


@pytest.mark.parametrize("host", HOSTS)
def test_source_tld_is_read_from_the_domain(host: str) -> None:
    domain = urls.registrable_domain(host)
    con = duckdb.connect()
    try:
        got = con.execute(f"SELECT {SOURCE_TLD_SQL} FROM (SELECT ?::VARCHAR AS source_domain) l",
                          [domain]).fetchone()[0]
    finally:
        con.close()
    assert got == urls.tld(host)


_TEXT = st.text(alphabet=st.sampled_from(list("ab.:/[]0123456789 \n\u00e9-_wshtpeduvgo")),
                max_size=30)


@settings(max_examples=300, deadline=None)
@given(key=_TEXT | st.sampled_from(["http://a.example/", "https://a.example/x",
                                    "http://[::1]/", "https://a.b/\n", "http://a/b/"]),
       domain=_TEXT | st.sampled_from(["a.edu", "x.edu.au", "gov", "a.gov.uk", "1.2.3.4",
                                       "[::1]", "a.", ""]),
       kind=st.sampled_from(["anchor", "image", "meta"]), anchor=st.sampled_from(["", "x"]),
       alt=st.none() | st.sampled_from(["", "alt"]))
def test_small_path_derivations_equal_the_sql(key: str, domain: str, kind: str, anchor: str,
                                              alt: str | None) -> None:
    """small.derive's functions against the SQL expressions aggregates._BASE selects."""
    con = duckdb.connect()
    try:
        got = con.execute(
            f"SELECT {HOME_PAGE_SQL}, {label_sql('edu')}, {label_sql('gov')}, "
            f"{SOURCE_TLD_SQL}, {ANCHOR_TEXT_SQL} FROM (SELECT ?::VARCHAR AS source_key, "
            "?::VARCHAR AS source_domain, ?::VARCHAR AS source_host, ?::VARCHAR AS kind, "
            "?::VARCHAR AS anchor, ?::VARCHAR AS alt) l",
            [key, domain, domain, kind, anchor, alt]).fetchone()
    finally:
        con.close()
    assert got == (small.home_page(key), small.has_label(domain, "edu"),
                   small.has_label(domain, "gov"), small.source_tld(domain),
                   small.anchor_text(kind, anchor, alt))
    assert small.domain_facts(domain) == got[1:4]
