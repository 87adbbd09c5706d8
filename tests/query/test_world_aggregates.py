"""Summary, metrics, counts, anchors, referring domains/IPs, indexed pages and history of a
crawled synthetic web, compared with figures computed from the world's ground truth."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict

import pytest
from conftest import DAYS, TL, Indexed

from inlink.query.aggregates import (
    count_backlinks,
    count_ips,
    count_refdomains,
    count_subnets,
    indexed_pages,
    list_anchors,
    list_refdomains,
    list_referring_ips,
    metrics,
    refdomain_rank_distribution,
    summarize,
)
from inlink.query.authority import authority
from inlink.query.history import (
    history_counts,
    history_cumulative,
    list_history,
    refdomains_history,
    refdomains_history_counts,
)
from inlink.query.models import (
    ALL_KINDS,
    Filter,
    HistoryQuery,
    Mode,
    Op,
    Target,
    resolve_target,
)
from inlink.rank import domain_rank, page_rank


def targets(ix: Indexed) -> list[Target]:
    """A busy domain, a host of a domain with several hosts, the most linked URL, a small
    domain and a domain nobody links to."""
    live = [tl for tl in ix.truth._live[DAYS] if not tl.internal]
    by_domain = Counter(tl.target_domain for tl in live)
    top_domain = by_domain.most_common(1)[0][0]
    small = sorted(d for d, n in by_domain.items() if 2 <= n <= 5)[0]
    hosts = Counter(tl.target_host for tl in live if tl.target_host != tl.target_domain)
    host = hosts.most_common(1)[0][0]
    url = Counter(tl.target_key for tl in live).most_common(1)[0][0]
    return [resolve_target(top_domain, "domain"), resolve_target(host, Mode.HOST),
            resolve_target(url, "url"), resolve_target("https://x." + small + "/p", "domain"),
            resolve_target("nobody-links-here.com", "domain")]


@pytest.fixture(scope="module")
def ts(indexed: Indexed) -> list[Target]:
    return targets(indexed)


def test_metrics_and_counts_match_truth(indexed: Indexed, ts: list[Target]) -> None:
    got = metrics(indexed.store, ts)
    for t, m in zip(ts, got, strict=True):
        bl = indexed.truth.backlinks(t)
        assert m.target == t
        assert m.backlinks == len(bl)
        assert m.refdomains == len({x.source_domain for x in bl})
        assert m.ips == len({x.ip for x in bl})
        assert m.subnets == len({x.subnet for x in bl})
        assert m.nofollow_backlinks == sum(x.nofollow for x in bl)
        assert m.dofollow_backlinks == sum(not x.nofollow for x in bl)
        assert m.edu_backlinks == sum("edu" in x.source_domain.split(".")[1:] for x in bl)
        assert m.gov_backlinks == sum("gov" in x.source_domain.split(".")[1:] for x in bl)
    assert count_backlinks(indexed.store, ts) == [m.backlinks for m in got]
    assert count_refdomains(indexed.store, ts) == [m.refdomains for m in got]
    assert count_ips(indexed.store, ts) == [m.ips for m in got]
    assert count_subnets(indexed.store, ts) == [m.subnets for m in got]
    assert got[0].backlinks > 100 and got[-1].backlinks == 0


def _top(counter: dict[str, tuple[int, int]], by: int, k: int) -> list[tuple[str, int, int]]:
    rows = sorted(counter.items(), key=lambda kv: (-kv[1][by], kv[0]))[:k]
    return [(v, bl, rd) for v, (bl, rd) in rows]


def _counts(bl: list[TL], key: str) -> dict[str, tuple[int, int]]:
    n: Counter[str] = Counter()
    doms: dict[str, set[str]] = defaultdict(set)
    for x in bl:
        v = getattr(x, key)
        n[v] += 1
        doms[v].add(x.source_domain)
    return {v: (n[v], len(doms[v])) for v in n}


def test_summary_matches_truth_in_one_batch(indexed: Indexed, ts: list[Target]) -> None:
    sums = summarize(indexed.store, ts)
    for t, s in zip(ts, sums, strict=True):
        bl = indexed.truth.backlinks(t)
        home = [x for x in bl if x.source_key.count("/") == 3 and x.source_key.endswith("/")]
        assert s.backlinks == len(bl)
        assert s.from_home_page_backlinks == len(home)
        assert s.dofollow_from_home_page_backlinks == sum(not x.nofollow for x in home)
        assert s.from_home_page_refdomains == len({x.source_domain for x in home})
        assert s.text_backlinks == sum(x.kind == "anchor" for x in bl)
        assert s.image_backlinks == sum(x.kind == "image" for x in bl)
        assert s.redirect_backlinks == sum(x.kind in ("redirect", "meta") for x in bl)
        assert s.dofollow_refdomains == len({x.source_domain for x in bl if not x.nofollow})
        assert s.anchors == len({x.anchor_text for x in bl})
        assert s.dofollow_anchors == len({x.anchor_text for x in bl if not x.nofollow})
        assert s.pages_with_backlinks == len({x.target_key for x in bl})
        anchors = _counts(bl, "anchor_text")
        got = [(c.value, c.backlinks, c.refdomains) for c in s.top_anchors_by_backlinks]
        assert got == _top(anchors, 0, 10)
        got = [(c.value, c.backlinks, c.refdomains) for c in s.top_anchors_by_refdomains]
        assert got == _top(anchors, 1, 10)
        pages = _counts(bl, "target_key")
        assert [(c.value, c.backlinks, c.refdomains)
                for c in s.top_pages_by_backlinks] == _top(pages, 0, 5)
        assert [(c.value, c.backlinks, c.refdomains)
                for c in s.top_pages_by_refdomains] == _top(pages, 1, 5)
        tlds = {k.rpartition(".")[2]: v for k, v in _counts(bl, "source_host").items()}
        tld_counts: Counter[str] = Counter(x.source_host.rpartition(".")[2] for x in bl)
        assert [(c.value, c.backlinks) for c in s.top_tlds] == [
            (v, n) for v, n in sorted(tld_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
        assert tlds is not None
        assert s.top_countries == []  # loopback addresses have no country
        # ranks of the target come from the current rank run
        if t.mode is Mode.URL:
            assert t.key is not None
            pa = page_rank(indexed.store, t.key)
            assert s.inlink_rank == (pa.inlink_rank if pa else 0)
        da = domain_rank(indexed.store, t.domain)
        assert s.domain_inlink_rank == (da.inlink_rank if da else 0)
    assert sums[0].domain_inlink_rank > 0


def test_anchor_ip_page_and_refdomain_lists(indexed: Indexed, ts: list[Target]) -> None:
    for t in ts[:4]:
        bl = indexed.truth.backlinks(t)
        for fn, key in ((list_anchors, "anchor_text"), (list_referring_ips, "ip"),
                        (indexed_pages, "target_key")):
            for order, by in (("backlinks", 0), ("refdomains", 1)):
                rows = fn(indexed.store, t, order_by=order, limit=10_000)  # type: ignore[operator]
                want = _counts(bl, key)
                assert {r.value: (r.backlinks, r.refdomains) for r in rows} == want
                keys = [(-(r.backlinks, r.refdomains)[by], -(r.backlinks, r.refdomains)[1 - by],
                         r.value) for r in rows]
                assert keys == sorted(keys)
                for r in rows:
                    assert r.nofollow_backlinks + r.dofollow_backlinks == r.backlinks
        rds = list_refdomains(indexed.store, t, limit=10_000)
        want_rd = _counts(bl, "source_domain")
        assert {r.domain: r.backlinks for r in rds} == {k: v[0] for k, v in want_rd.items()}
        assert [r.first_seen for r in rds] == sorted((r.first_seen for r in rds), reverse=True)
        for r in rds:
            da = domain_rank(indexed.store, r.domain)
            assert r.domain_inlink_rank == (da.inlink_rank if da else 0)
            assert r.dofollow_backlinks == sum(not x.nofollow for x in bl
                                               if x.source_domain == r.domain)
        by_rank = list_refdomains(indexed.store, t, order_by="domain_inlink_rank", limit=3)
        assert [r.domain_inlink_rank for r in by_rank] == sorted(
            (r.domain_inlink_rank for r in rds), reverse=True)[:3]
    hist = refdomain_rank_distribution(indexed.store, ts[0])
    assert sum(n for _, n in hist) == len({x.source_domain for x in indexed.truth.backlinks(ts[0])})


def test_limits_are_applied(indexed: Indexed, ts: list[Target]) -> None:
    assert len(list_anchors(indexed.store, ts[0], limit=2)) == 2
    assert len(list_refdomains(indexed.store, ts[0], limit=2)) == 2


def _day(ix: Indexed, d: int) -> dt.date:
    return ix.world.date_of(d)


def test_history_lists_and_counts_match_truth(indexed: Indexed, ts: list[Target]) -> None:
    d1, dn = _day(indexed, 1), _day(indexed, DAYS)
    for t in ts[:4]:
        ev = indexed.truth.events(t)
        rows = list_history(indexed.store, HistoryQuery(t, d1, dn), limit=10_000)
        got = Counter((r.day, r.event, r.reason, (r.link.source_key, r.link.target_key,
                                                  r.link.kind, r.link.anchor,
                                                  r.link.image_url)) for r in rows)
        want = Counter((d, e, reason, tl.identity) for d, e, reason, tl in ev)
        assert got == want
        assert [r.day for r in rows] == sorted((r.day for r in rows), reverse=True)
        lost = list_history(indexed.store, HistoryQuery(t, _day(indexed, 2), dn, event="lost"),
                            limit=10_000)
        assert len(lost) == sum(1 for d, e, _, _ in ev if e == "lost" and d >= _day(indexed, 2))
        counts = history_counts(indexed.store, HistoryQuery(t, d1, dn))
        assert [(c.day, c.new, c.lost) for c in counts] == [
            (_day(indexed, d), sum(1 for x in ev if x[0] == _day(indexed, d) and x[1] == "new"),
             sum(1 for x in ev if x[0] == _day(indexed, d) and x[1] == "lost"))
            for d in range(1, DAYS + 1)]
        cum = history_cumulative(indexed.store, t, d1, dn)
        assert [c.backlinks for c in cum] == [len(indexed.truth.backlinks(t, d))
                                              for d in range(1, DAYS + 1)]


def test_history_by_reason_and_filters(indexed: Indexed, ts: list[Target]) -> None:
    t = ts[0]
    d1, dn = _day(indexed, 1), _day(indexed, DAYS)
    ev = indexed.truth.events(t)
    for reason in {r for _, e, r, _ in ev if e == "lost"}:
        q = HistoryQuery(t, d1, dn, event="lost", filters=None)
        rows = [r for r in list_history(indexed.store, q, limit=10_000) if r.reason == reason]
        assert len(rows) == sum(1 for _, e, r, _ in ev if r == reason)
    nofollow = HistoryQuery(t, d1, dn, filters=Filter("nofollow", Op.EQ, True))
    counts = history_counts(indexed.store, nofollow)
    assert sum(c.new for c in counts) == sum(1 for _, e, _, tl in ev if e == "new" and tl.nofollow)
    # every kind, e.g. canonical links too (DataForSEO item types)
    all_ev = indexed.truth.events(t, ALL_KINDS)
    rows = list_history(indexed.store, HistoryQuery(t, d1, dn, kinds=ALL_KINDS), limit=10_000)
    assert len(rows) == len(all_ev)


def test_refdomains_history_matches_truth(indexed: Indexed, ts: list[Target]) -> None:
    d1, dn = _day(indexed, 1), _day(indexed, DAYS)
    for t in ts[:4]:
        live = {0: set()} | {d: {x.source_domain for x in indexed.truth.backlinks(t, d)}
                             for d in range(1, DAYS + 1)}
        want = {(_day(indexed, d), "new", dom) for d in range(1, DAYS + 1)
                for dom in live[d] - live[d - 1]}
        want |= {(_day(indexed, d), "lost", dom) for d in range(1, DAYS + 1)
                 for dom in live[d - 1] - live[d]}
        rows = refdomains_history(indexed.store, t, d1, dn, limit=10_000)
        assert {(r.day, r.event, r.domain) for r in rows} == want
        assert len(rows) == len(want)
        for r in rows:
            assert r.backlinks == sum(1 for x in indexed.truth.backlinks(t)
                                      if x.source_domain == r.domain)
        counts = refdomains_history_counts(indexed.store, t, d1, dn)
        assert [(c.new, c.lost) for c in counts] == [
            (sum(1 for w in want if w[0] == _day(indexed, d) and w[1] == "new"),
             sum(1 for w in want if w[0] == _day(indexed, d) and w[1] == "lost"))
            for d in range(1, DAYS + 1)]
        only_new = refdomains_history(indexed.store, t, d1, dn, event="new", limit=10_000)
        assert {r.event for r in only_new} <= {"new"}


def test_authority_uses_the_current_run(indexed: Indexed, ts: list[Target]) -> None:
    got = authority(indexed.store, ts)
    url = ts[2]
    assert url.key is not None
    pa = page_rank(indexed.store, url.key)
    assert pa is not None and got[2].inlink_rank == pa.inlink_rank > 0
    assert got[2].domain_inlink_rank == pa.domain_inlink_rank
    assert got[-1].inlink_rank == 0 and got[-1].domain_inlink_rank == 0
