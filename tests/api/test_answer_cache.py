"""The API's exact answer cache: a repeated request is answered from memory and still charged;
a committed data write voids every entry; bookkeeping writes (credits) do not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from inlink.api.app import REMAINING_HEADER
from inlink.api.cache import AnswerCache
from inlink.index.store import run

if TYPE_CHECKING:
    from conftest import Api  # tests/api/conftest.py

V1 = "/v1/backlinks"


def test_repeats_are_served_from_the_cache_until_a_write(api: Api) -> None:
    cache: AnswerCache = api.client.app.state.cache  # type: ignore[attr-defined]
    top = str(api.store.query("SELECT target_host FROM links WHERE live AND NOT internal "
                              "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])
    key = api.new_key(1000)
    params = {"apikey": key, "target": top, "limit": 7}
    first = api.client.get(V1 + "/anchors", params=params)
    hits = cache.stats.hits
    again = api.client.get(V1 + "/anchors", params={**params, "output": "xml"})
    third = api.client.get(V1 + "/anchors", params=params)
    assert cache.stats.hits == hits + 2
    assert third.content == first.content and again.headers["content-type"].startswith(
        "application/xml")
    assert third.headers[REMAINING_HEADER] == "997"  # every call charged, hit or not
    # another key asks the same: same answer from the cache
    other = api.client.get(V1 + "/anchors", params={**params, "apikey": api.key})
    assert other.content == first.content and cache.stats.hits == hits + 3
    # credits written back: not a data change, the entry stays
    api.ledger.flush()
    api.client.get(V1 + "/anchors", params=params)
    assert cache.stats.hits == hits + 4
    # a committed data write (any batch, rank run, ...) voids it
    api.store.write(lambda conn: run(conn, "CHECKPOINT"))
    misses = cache.stats.misses
    api.client.get(V1 + "/anchors", params=params)
    assert cache.stats.misses == misses + 1


def test_cache_bounds_and_expiry() -> None:
    c = AnswerCache(max_bytes=1000, ttl=60)
    for i in range(20):
        c.put(("k", i), 1, {"i": i}, 100)
    assert c.stats.entries == 10 and c.stats.bytes == 1000
    assert c.get(("k", 0), 1) is None and c.get(("k", 19), 1) == {"i": 19}
    assert c.get(("k", 19), 2) is None          # another generation
    c.put(("big",), 1, {}, 500)                  # over an eighth of the cache: not kept
    assert c.get(("big",), 1) is None
    off = AnswerCache(max_bytes=0)
    off.put(("k",), 1, {}, 1)
    assert not off.enabled and off.get(("k",), 1) is None
    short = AnswerCache(ttl=-1.0)
    short.put(("k",), 1, {"a": 1}, 10)
    assert short.get(("k",), 1) is None          # expired
