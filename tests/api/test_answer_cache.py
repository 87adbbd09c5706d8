"""The API's exact answer cache: a repeated request is answered from memory and still charged;
a committed data write voids every entry; bookkeeping writes (credits) do not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

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


def test_metrics_count_requests_credits_and_cache(api: Api) -> None:
    key = api.new_key(100)
    top = str(api.store.query("SELECT target_host FROM links WHERE live AND NOT internal "
                              "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")[0][0])

    def sample(text: str, name: str, **labels: str) -> float:
        for family in text_string_to_metric_families(text):
            for smp in family.samples:
                if smp.name == name and all(smp.labels.get(k) == v for k, v in labels.items()):
                    return float(smp.value)
        return 0.0

    before = api.client.get("/metrics").text
    api.client.get(V1 + "/count", params={"apikey": key, "target": top})
    api.client.get(V1 + "/count", params={"apikey": key, "target": top, "limit": "x",
                                          "mode": "site"})
    after = api.client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    route = V1 + "/count"
    for status, n in (("200", 1), ("400", 1)):
        assert sample(after.text, "inlink_api_requests_total", route=route, method="GET",
                      status=status) == sample(before, "inlink_api_requests_total",
                                               route=route, method="GET", status=status) + n
    assert sample(after.text, "inlink_credits_charged_total", route=route) == \
        sample(before, "inlink_credits_charged_total", route=route) + 10
    assert sample(after.text, "inlink_answer_cache", what="misses") >= 1
    assert "inlink_api_request_seconds_bucket" in after.text
