"""Materialized aggregates of heavy targets: stored answers equal live ones, are used only at
the index's current data version, and a write makes them stale until the next refresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Indexed

from inlink.index.store import Store, run
from inlink.query import heavy
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
from inlink.query.models import Target, resolve_target

MIN_ROWS = 150  # heavy enough on the small test web


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
