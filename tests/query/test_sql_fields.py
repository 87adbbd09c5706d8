"""Field expressions that derive a value from another column agree with `inlink.urls`."""

from __future__ import annotations

import duckdb
import pytest

from inlink import urls
from inlink.query.sql import SOURCE_TLD_SQL

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
