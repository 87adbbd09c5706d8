"""The aggregates' small-target path (rows fetched and aggregated in Python) gives exactly the
answers of their SQL path, on every target of the crawled synthetic web."""

from __future__ import annotations

import pytest
from conftest import Indexed

from inlink.query import small
from inlink.query.aggregates import (
    count_ips,
    count_refdomains,
    count_subnets,
    indexed_pages,
    list_anchors,
    list_refdomains,
    list_referring_ips,
    metrics,
    summarize,
)
from inlink.query.models import Target, resolve_target


def _targets(ix: Indexed) -> list[Target]:
    domains = [str(r[0]) for r in ix.store.query(
        "SELECT DISTINCT target_domain FROM links WHERE live AND NOT internal ORDER BY 1")]
    # every host that is not its domain's only one (the others equal their domain target)
    hosts = [str(r[0]) for r in ix.store.query(
        "SELECT target_host FROM links WHERE live AND NOT internal GROUP BY 1 "
        "HAVING target_host <> any_value(target_domain) ORDER BY 1")]
    urls = [str(r[0]) for r in ix.store.query(
        "SELECT target_key FROM links WHERE live AND NOT internal GROUP BY 1 "
        "ORDER BY count(*) DESC, 1 LIMIT 20")]
    return ([resolve_target(d, "domain") for d in domains]
            + [resolve_target(h, "host") for h in hosts]
            + [resolve_target(u, "url") for u in urls]
            + [resolve_target("nobody-links-here.com", "domain")])


def _answers(ix: Indexed, ts: list[Target]) -> list[object]:
    out: list[object] = []
    for i in range(0, len(ts), 25):  # batches, as the batch endpoints send them
        batch = ts[i:i + 25]
        out += [summarize(ix.store, batch), metrics(ix.store, batch),
                count_refdomains(ix.store, batch), count_ips(ix.store, batch),
                count_subnets(ix.store, batch)]
    for t in ts:
        for order in ("backlinks", "refdomains"):
            out += [list_anchors(ix.store, t, order_by=order, limit=7),
                    list_referring_ips(ix.store, t, order_by=order, limit=50),
                    indexed_pages(ix.store, t, order_by=order, limit=10_000)]
        for rorder in ("first_seen", "domain_inlink_rank", "inlink_rank"):
            out.append(list_refdomains(ix.store, t, order_by=rorder,  # type: ignore[arg-type]
                                       limit=40))
    return out


def test_small_path_equals_sql_path(indexed: Indexed, monkeypatch: pytest.MonkeyPatch) -> None:
    ts = _targets(indexed)
    assert len(ts) > 100
    monkeypatch.setattr(small, "SMALL_ROWS", 10**9)   # everything through Python
    fast = _answers(indexed, ts)
    monkeypatch.setattr(small, "SMALL_ROWS", 0)       # everything through SQL
    slow = _answers(indexed, ts)
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        assert a == b
    # the default threshold picks a path per call, and agrees too
    monkeypatch.undo()
    assert _answers(indexed, ts) == slow


def test_keyed_reads_give_the_same_rows_either_way(indexed: Indexed,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Listings read source pages and ranks by literal key lists (ART index lookups) or, past
    MAX_LITERAL_KEYS, by a semi-join: the same rows either way."""
    from inlink.query import backlinks
    from inlink.query.backlinks import find_backlinks
    from inlink.query.models import BacklinkQuery

    t = _targets(indexed)[0]
    q = BacklinkQuery(t, limit=500)
    literal = find_backlinks(indexed.store, q, with_total=False).rows
    monkeypatch.setattr(backlinks, "MAX_LITERAL_KEYS", 3)
    joined = find_backlinks(indexed.store, q, with_total=False).rows
    assert len(literal) > 3 and literal == joined
    assert any(b.source_title for b in literal) and any(b.source_inlink_rank for b in literal)
