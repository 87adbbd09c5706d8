"""Materialized aggregates of heavy targets: stored answers equal live ones, are used only at
the index's current data version, and a write makes them stale until the next refresh."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import Indexed

from inlink.index.store import Store, run
from inlink.query import backlinks, heavy
from inlink.query.aggregates import (
    count_backlinks,
    count_refdomains,
    indexed_pages,
    list_anchors,
    list_refdomains,
    list_referring_ips,
    metrics,
    summarize,
)
from inlink.query.backlinks import find_backlinks
from inlink.query.models import (
    ALL_KINDS,
    Backlink,
    BacklinkQuery,
    Filter,
    Op,
    Order,
    Target,
    resolve_target,
)
from inlink.query.sql import context

MIN_ROWS = 150  # heavy enough on the small test web
SECRET = b"test-secret"
NOW = 1_800_000_000.0   # cursors carry their issue time: the same on both paths


def _answers(store: Store, ts: list[Target]) -> list[object]:
    out: list[object] = [summarize(store, ts), metrics(store, ts),
                         count_backlinks(store, ts), count_refdomains(store, ts)]
    for t in ts:
        for order in ("backlinks", "refdomains"):
            out += [list_anchors(store, t, order_by=order, limit=9),
                    list_referring_ips(store, t, order_by=order, limit=10_000),
                    indexed_pages(store, t, order_by=order, limit=3)]
        for rorder in ("first_seen", "domain_inlink_rank", "inlink_rank"):
            out.append(list_refdomains(store, t, order_by=rorder, limit=25))  # type: ignore[arg-type]
    return out


@pytest.fixture()
def copy(indexed: Indexed, tmp_path: Path) -> Store:
    indexed.store.write(lambda conn: run(conn, "CHECKPOINT"))
    shutil.copyfile(indexed.path, tmp_path / "copy.duckdb")
    return Store(tmp_path / "copy.duckdb")


def test_stored_answers_equal_live_ones(copy: Store) -> None:
    ts = heavy.heavy_targets(copy, MIN_ROWS)
    modes = {t.mode.value for t in ts}
    assert len(ts) >= 5 and modes == {"domain", "host", "url"}
    light = resolve_target("nobody-links-here.com", "domain")
    with heavy.bypass():
        live = _answers(copy, [*ts, light])
    assert not heavy.is_fresh(copy, MIN_ROWS)
    done = heavy.refresh(copy, min_rows=MIN_ROWS)
    assert done["targets"] == len(ts) and heavy.is_fresh(copy, MIN_ROWS)
    assert all(heavy.summary(copy, t) is not None for t in ts)
    assert heavy.summary(copy, light) is None
    assert _answers(copy, [*ts, light]) == live


def test_a_write_makes_stored_answers_stale(copy: Store) -> None:
    heavy.refresh(copy, min_rows=MIN_ROWS)
    (t, *_) = heavy.heavy_targets(copy, MIN_ROWS)
    assert heavy.summary(copy, t) is not None
    # a new committed batch: the data version moves on, stored rows no longer apply
    copy.write(lambda conn: run(
        conn, "INSERT INTO batches SELECT max(batch_id) + 1, 'test', now(), 0, 0, 0 "
              "FROM batches"))
    assert heavy.summary(copy, t) is None and not heavy.is_fresh(copy, MIN_ROWS)
    heavy.refresh(copy, min_rows=MIN_ROWS)
    assert heavy.summary(copy, t) is not None


def _pages(store: Store, q: BacklinkQuery) -> list[list[Backlink]]:
    """Every page of a listing, following its cursors."""
    out: list[list[Backlink]] = []
    page = find_backlinks(store, q, secret=SECRET, with_total=False, now=NOW)
    while True:
        out.append(page.rows)
        if page.next_cursor is None:
            return out
        page = find_backlinks(store, replace(q, cursor=page.next_cursor), secret=SECRET,
                              with_total=False, now=NOW)


def _copy_reads(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The statements that read the ordered copy, recorded from here on."""
    seen: list[str] = []
    query = store.query

    def spy(sql: str, params: list[object] | None = None, **kw: bool) -> list[tuple[object, ...]]:
        if f"FROM {heavy.LISTING_TABLE}" in sql:
            seen.append(sql)
        return query(sql, params, **kw)

    monkeypatch.setattr(store, "query", spy)
    return seen


def test_ordered_copy_lists_what_the_links_table_lists(copy: Store,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    heavy.refresh(copy, min_rows=MIN_ROWS)
    ts = heavy.heavy_targets(copy, MIN_ROWS)
    assert {t.mode.value for t in ts} == {"domain", "host", "url"}
    dofollow = Filter("nofollow", Op.EQ, False)
    queries = [BacklinkQuery(t, limit=37, **kw)  # type: ignore[arg-type]
               for t in ts for kw in ({}, {"fields": frozenset({"anchor_text"})},
                                      {"filters": dofollow}, {"kinds": ALL_KINDS})]
    with heavy.bypass():
        live = [_pages(copy, q) for q in queries]
    reads = _copy_reads(copy, monkeypatch)
    assert [_pages(copy, q) for q in queries] == live
    assert sum(map(len, live)) > 3 * len(queries)        # several pages each
    assert len(reads) >= sum(map(len, live))             # every page read the copy
    # other orders, lost links and internal links are not in the copy: the links table
    reads.clear()
    for kw in ({"order": (Order("first_seen", desc=False),)}, {"status": "all"},
               {"include_internal": True}):
        find_backlinks(copy, BacklinkQuery(ts[0], **kw))  # type: ignore[arg-type]
    assert reads == []


def test_ordered_copy_pages_continue_any_cursor(copy: Store,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A cursor issued by the links table (before a refresh) continues on the copy; a
    cursor whose row the copy lacks, and a scan that came out unordered, still page right."""
    heavy.refresh(copy, min_rows=MIN_ROWS)
    t = max(heavy.heavy_targets(copy, MIN_ROWS), key=lambda t: (t.mode.value, t.value))
    q = BacklinkQuery(t, limit=50)
    with heavy.bypass():
        live = _pages(copy, q)
        first = find_backlinks(copy, q, secret=SECRET, with_total=False, now=NOW)
    assert len(live) >= 3 and first.next_cursor is not None
    second = find_backlinks(copy, replace(q, cursor=first.next_cursor), secret=SECRET,
                            with_total=False, now=NOW)
    assert second.rows == live[1]
    monkeypatch.setattr(heavy, "listing_start", lambda *_a: None)
    assert _pages(copy, q) == live
    monkeypatch.setattr(backlinks, "operator", SimpleNamespace(lt=lambda _a, _b: False))
    assert _pages(copy, q) == live


def test_a_write_makes_the_ordered_copy_stale(copy: Store) -> None:
    heavy.refresh(copy, min_rows=MIN_ROWS)
    t = heavy.heavy_targets(copy, MIN_ROWS)[0]
    run_id = context(copy).run_id
    assert run_id is not None
    assert heavy.listing_version(copy, t, run_id) is not None
    # the copy's ranks are the current run's: a cursor pinned to another run reads links
    assert heavy.listing_version(copy, t, run_id + 1) is None
    light = resolve_target("nobody-links-here.com", "domain")
    assert heavy.listing_version(copy, light, run_id) is None
    copy.write(lambda conn: run(
        conn, "INSERT INTO batches SELECT max(batch_id) + 1, 'test', now(), 0, 0, 0 "
              "FROM batches"))
    assert heavy.listing_version(copy, t, run_id) is None
    heavy.refresh(copy, min_rows=MIN_ROWS)
    assert heavy.listing_version(copy, t, run_id) is not None
    with heavy.bypass():
        assert heavy.listing_version(copy, t, run_id) is None
