"""Backlink listings of the crawled synthetic web: full sets, filters, ordering, grouping and
cursor paging, compared with the world's ground truth."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from conftest import Indexed
from test_world_aggregates import targets

from inlink.errors import InvalidInput
from inlink.query.backlinks import (
    KEY_FIELDS,
    ROW_FIELDS,
    count_backlinks_matching,
    find_backlinks,
    iter_backlinks,
)
from inlink.query.models import (
    ALL_KINDS,
    BacklinkQuery,
    Filter,
    GroupBy,
    Op,
    Order,
    Target,
    all_of,
    any_of,
)
from inlink.rank import page_rank

SECRET = b"test-secret"


@pytest.fixture(scope="module")
def ts(indexed: Indexed) -> list[Target]:
    return targets(indexed)


def ident(r: object) -> tuple[object, ...]:
    return (r.source_key, r.target_key, r.kind, r.anchor, r.image_url)  # type: ignore[attr-defined]


def test_listing_is_the_truth_in_every_mode(indexed: Indexed, ts: list[Target]) -> None:
    for t in ts:
        page = find_backlinks(indexed.store, BacklinkQuery(t, limit=100_000), secret=SECRET)
        want = {x.identity for x in indexed.truth.backlinks(t)}
        assert {ident(r) for r in page.rows} == want
        assert page.total == len(want) == len(page.rows)
        assert page.next_cursor is None
        # every kind, internal links included
        q = BacklinkQuery(t, limit=100_000, kinds=ALL_KINDS, include_internal=True)
        page = find_backlinks(indexed.store, q)
        assert {ident(r) for r in page.rows} == {
            x.identity for x in indexed.truth.backlinks(t, kinds=ALL_KINDS, internal=True)}


def test_lost_and_all_status(indexed: Indexed, ts: list[Target]) -> None:
    t = ts[0]
    ev = indexed.truth.events(t)
    live = {x.identity for x in indexed.truth.backlinks(t)}
    ever = {tl.identity for _, _, _, tl in ev}
    lost = find_backlinks(indexed.store, BacklinkQuery(t, status="lost", limit=100_000))
    assert {ident(r) for r in lost.rows} == ever - live
    assert all(r.lost_reason and r.lost_at for r in lost.rows)
    every = find_backlinks(indexed.store, BacklinkQuery(t, status="all", limit=100_000))
    assert {ident(r) for r in every.rows} == ever


def test_filters(indexed: Indexed, ts: list[Target]) -> None:
    t = ts[0]
    bl = indexed.truth.backlinks(t)
    some_domain = Counter(x.source_domain for x in bl).most_common(2)[1][0]
    cases = [
        (Filter("nofollow", Op.EQ, True), lambda x: x.nofollow),
        (Filter("dofollow", Op.EQ, "true"), lambda x: not x.nofollow),
        (Filter("source_domain", Op.NE, some_domain), lambda x: x.source_domain != some_domain),
        (Filter("source_domain", Op.IN, (some_domain, "nope.com")),
         lambda x: x.source_domain == some_domain),
        (Filter("kind", Op.NOT_IN, ["anchor"]), lambda x: x.kind != "anchor"),
        (Filter("anchor_text", Op.CONTAINS, "LOAN"), lambda x: "loan" in x.anchor_text.lower()),
        (Filter("anchor", Op.NOT_CONTAINS, "loan"), lambda x: "loan" not in x.anchor.lower()),
        (Filter("anchor", Op.LIKE, "%casino%"), lambda x: "casino" in x.anchor),
        (Filter("anchor", Op.ILIKE, "BEST%"), lambda x: x.anchor.lower().startswith("best")),
        (Filter("source_url", Op.STARTS, "http://www."),
         lambda x: x.source_key.startswith("http://www.")),
        (Filter("source_key", Op.ENDS, ".html"), lambda x: x.source_key.endswith(".html")),
        (Filter("source_host", Op.REGEX, r"^[a-m]"), lambda x: x.source_host[0] <= "m"),
        (Filter("from_home_page", Op.EQ, True),
         lambda x: x.source_key.count("/") == 3 and x.source_key.endswith("/")),
        (all_of(Filter("nofollow", Op.EQ, False),
                any_of(Filter("kind", Op.EQ, "image"), Filter("anchor", Op.CONTAINS, "loan"))),
         lambda x: not x.nofollow and (x.kind == "image" or "loan" in x.anchor.lower())),
    ]
    for flt, pred in cases:
        page = find_backlinks(indexed.store, BacklinkQuery(t, filters=flt, limit=100_000))
        want = {x.identity for x in bl if pred(x)}
        assert want, flt
        assert {ident(r) for r in page.rows} == want, flt
        assert count_backlinks_matching(indexed.store, BacklinkQuery(t, filters=flt)) == len(want)
    # rank filter: compare with the rank reader
    page = find_backlinks(indexed.store, BacklinkQuery(
        t, filters=Filter("source_inlink_rank", Op.GE, "1"), limit=100_000))
    assert page.rows
    for r in page.rows[:: max(1, len(page.rows) // 15)]:
        pa = page_rank(indexed.store, r.source_key)
        assert pa is not None and r.source_inlink_rank == pa.inlink_rank >= 1


@pytest.mark.parametrize("bad", [
    Filter("no_such_field", Op.EQ, 1),
    Filter("nofollow", Op.GT, True),
    Filter("links_count", Op.LIKE, "%"),
    Filter("first_seen", Op.GT, "yesterday"),
    Filter("kind", Op.IN, ()),
    all_of(*[Filter("nofollow", Op.EQ, True)] * 9),
    all_of(all_of(all_of(all_of(all_of(Filter("nofollow", Op.EQ, True)))))),
])
def test_bad_filters_are_rejected(indexed: Indexed, ts: list[Target], bad: object) -> None:
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, BacklinkQuery(ts[0], filters=bad))  # type: ignore[arg-type]


def test_ordering(indexed: Indexed, ts: list[Target]) -> None:
    t = ts[0]
    q = BacklinkQuery(t, order=(Order("source_domain_inlink_rank", True),
                                Order("anchor", False)), limit=100_000)
    rows = find_backlinks(indexed.store, q).rows
    keys = [(-r.source_domain_inlink_rank, r.anchor) for r in rows]
    assert keys == sorted(keys) and len(rows) == len(indexed.truth.backlinks(t))
    rows = find_backlinks(indexed.store, BacklinkQuery(
        t, order=(Order.parse("links_count,asc"), Order.parse("link_rank_1000 desc")),
        limit=50)).rows
    assert [r.links_count for r in rows] == sorted(r.links_count for r in rows)
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, BacklinkQuery(t, order=(Order("bogus"),)))
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, BacklinkQuery(t, order=(Order("anchor"),) * 4))


def test_grouping(indexed: Indexed, ts: list[Target]) -> None:
    t = ts[0]
    bl = indexed.truth.backlinks(t)
    per_domain = Counter(x.source_domain for x in bl)
    q = BacklinkQuery(t, group=GroupBy("source_domain", 2), limit=100_000)
    page = find_backlinks(indexed.store, q)
    got = Counter(r.source_domain for r in page.rows)
    assert got == {d: min(n, 2) for d, n in per_domain.items()}
    assert all(r.group_count == per_domain[r.source_domain] for r in page.rows)
    assert page.total == sum(min(n, 2) for n in per_domain.values())
    # one_per_anchor keeps the first row of each anchor in the query's order
    q = BacklinkQuery(t, group=GroupBy("anchor", 1), order=(Order("first_seen"),),
                      limit=100_000)
    rows = find_backlinks(indexed.store, q).rows
    assert sorted(r.anchor for r in rows) == sorted({x.anchor for x in bl})


def test_cursor_round_trip_equals_the_full_set(indexed: Indexed, ts: list[Target]) -> None:
    for t in ts[:4]:
        size = max(2, len(indexed.truth.backlinks(t)) // 6 + 1)
        for order in ((Order("first_seen"),), (Order("source_inlink_rank"), Order("anchor", False)),
                      (Order("source_domain", False),)):
            q = BacklinkQuery(t, order=order, limit=size)
            seen: list[tuple[object, ...]] = []
            page = find_backlinks(indexed.store, q, secret=SECRET)
            pages = 1
            while True:
                seen += [ident(r) for r in page.rows]
                if page.next_cursor is None:
                    break
                page = find_backlinks(indexed.store, dataclasses.replace(
                    q, cursor=page.next_cursor), secret=SECRET, with_total=False)
                pages += 1
            assert len(seen) == len(set(seen))
            assert set(seen) == {x.identity for x in indexed.truth.backlinks(t)}
            full = find_backlinks(indexed.store, dataclasses.replace(q, limit=100_000))
            assert [ident(r) for r in full.rows] == seen  # same order as one big page
            assert pages == max(1, -(-len(seen) // size))
    rows = list(iter_backlinks(indexed.store, BacklinkQuery(ts[0]), page_size=500,
                               secret=SECRET))
    assert len(rows) == len(indexed.truth.backlinks(ts[0]))


def test_cursor_rejections(indexed: Indexed, ts: list[Target]) -> None:
    q = BacklinkQuery(ts[0], limit=5)
    page = find_backlinks(indexed.store, q, secret=SECRET)
    assert page.next_cursor is not None
    c = page.next_cursor
    body, mac = c.split(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + mac
    for bad in (tampered, c + "x", "garbage", c.replace(".", "..")):
        with pytest.raises(InvalidInput) as exc:
            find_backlinks(indexed.store, dataclasses.replace(q, cursor=bad), secret=SECRET)
        assert exc.value.name == "cursor"
    # another secret, another target, another filter
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, dataclasses.replace(q, cursor=c), secret=b"other")
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, BacklinkQuery(ts[1], cursor=c), secret=SECRET)
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, dataclasses.replace(
            q, cursor=c, filters=Filter("nofollow", Op.EQ, True)), secret=SECRET)
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, dataclasses.replace(q, cursor=c, offset=5), secret=SECRET)
    # a changed limit is fine (seed 001 raw keeps paging with any limit)
    ok = find_backlinks(indexed.store, dataclasses.replace(q, cursor=c, limit=7), secret=SECRET)
    assert len(ok.rows) == 7
    # valid for at least 24 h, not forever
    import time

    later = time.time() + 25 * 3600
    find_backlinks(indexed.store, dataclasses.replace(q, cursor=c), secret=SECRET, now=later)
    with pytest.raises(InvalidInput):
        find_backlinks(indexed.store, dataclasses.replace(q, cursor=c), secret=SECRET,
                       now=time.time() + 60 * 86400)


def test_offset_and_limits(indexed: Indexed, ts: list[Target]) -> None:
    t = ts[0]
    full = find_backlinks(indexed.store, BacklinkQuery(t, limit=40)).rows
    part = find_backlinks(indexed.store, BacklinkQuery(t, limit=10, offset=30)).rows
    assert [r.link_id for r in part] == [r.link_id for r in full[30:40]]
    for bad in (dict(limit=0), dict(limit=100_001), dict(offset=-1), dict(offset=20_001)):
        with pytest.raises(InvalidInput):
            find_backlinks(indexed.store, BacklinkQuery(t, **bad))  # type: ignore[arg-type]


def test_fields_read_only_what_is_asked(indexed: Indexed, ts: list[Target]) -> None:
    store = indexed.store
    t = max(ts, key=lambda t: len(indexed.truth.backlinks(t)))
    full = find_backlinks(store, BacklinkQuery(t, limit=500), secret=SECRET)
    assert full.rows and any(r.source_title for r in full.rows)
    assert any(r.source_status == 200 for r in full.rows)
    assert any(r.source_inlink_rank for r in full.rows)
    for asked in (frozenset(), frozenset({"source_title"}),
                  frozenset({"anchor_text", "source_inlink_rank", "first_seen"}),
                  frozenset({"link_rank_1000", "source_language", "text_pre"})):
        got = find_backlinks(store, BacklinkQuery(t, limit=500, fields=asked), secret=SECRET)
        assert len(got.rows) == len(full.rows)
        for f, g in zip(full.rows, got.rows, strict=True):
            for name in ROW_FIELDS:
                want = getattr(f, name) if name in asked | KEY_FIELDS else None
                assert getattr(g, name) == want, name
    with pytest.raises(InvalidInput) as err:
        find_backlinks(store, BacklinkQuery(t, fields=frozenset({"source_titel"})))
    assert err.value.name == "fields"


def test_late_materialization_reads_the_same_pages(indexed: Indexed, ts: list[Target],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Listings of heavy targets run with DuckDB's late materialization: the same rows.
    (Pages over 50 rows: DuckDB's default already materializes late up to 50.)"""
    from inlink.query import heavy

    store = indexed.store
    big = sorted(ts, key=lambda t: -len(indexed.truth.backlinks(t)))[:4]
    assert len(indexed.truth.backlinks(big[0])) > 80
    queries = [BacklinkQuery(t, order=(Order(o, desc=d),), limit=80)
               for t in big for o, d in (("first_seen", True), ("anchor", False))]
    now = 1_800_000_000.0   # cursors carry their issue time: the same for both
    plain = [find_backlinks(store, q, secret=SECRET, with_total=False, now=now)
             for q in queries]
    monkeypatch.setattr(heavy, "is_heavy", lambda _store, _target: True)
    late = [find_backlinks(store, q, secret=SECRET, with_total=False, now=now)
            for q in queries]
    assert any(p.rows for p in plain)
    assert late == plain


def test_live_links_carry_their_source_pages_title(indexed: Indexed) -> None:
    store = indexed.store
    titled = store.query("SELECT count(*) FROM links WHERE live AND source_title <> ''")[0][0]
    assert titled > 100
    assert store.query("SELECT count(*) FROM links l JOIN pages p ON p.url_key = l.source_key "
                       "WHERE l.live AND l.source_title IS DISTINCT FROM p.title") == [(0,)]
