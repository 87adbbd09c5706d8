"""Rank runs on a real store: graph decisions, persistence, atomic switch, history, explain."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from rank_helpers import (
    BX,
    HUB,
    NEW,
    OLD,
    SMALL_WEB_EDGES,
    SMALL_WEB_NODES,
    A,
    C,
    Web,
    day,
    link,
    page,
    small_web,
)

from inlink.index.store import Store
from inlink.rank import (
    RankParams,
    backlink_rank,
    domain_rank,
    domain_rank_history,
    explain,
    list_runs,
    load_run,
    page_rank,
    page_rank_history,
    rank_distribution,
    run_rank,
)
from inlink.settings import Settings
from inlink.urls import normalize_url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "index.duckdb")
    yield s
    s.close()


def settings(d: int) -> Settings:
    return Settings(as_of=dt.date(2026, 3, d))


EXACT = RankParams(dtype="float64", tolerance=1e-12)


def test_page_scores_match_networkx_on_hand_made_web(store: Store) -> None:
    small_web(Web(store), day(1))
    summary = run_rank(store, settings(1), params=EXACT)
    g = nx.DiGraph()
    g.add_nodes_from(normalize_url(u) for u in SMALL_WEB_NODES)
    g.add_edges_from((normalize_url(s), normalize_url(t)) for s, t in SMALL_WEB_EDGES)
    want = nx.pagerank(g, alpha=0.85, tol=1e-13, max_iter=10_000)
    got = {k: page_rank(store, k) for k in want}
    assert summary.pages == len(want) and summary.page_edges == len(SMALL_WEB_EDGES)
    assert sum(abs(got[k].score - v) for k, v in want.items()) < 1e-6  # type: ignore[union-attr]


def test_domain_graph_weights_and_self_loops(store: Store) -> None:
    small_web(Web(store), day(1))
    run_rank(store, settings(1), params=EXACT)
    # hub.example links to a, b (two pages: one hub page -> weight 1), c, old.
    g = nx.DiGraph()
    g.add_nodes_from(["hub.example", "a.example", "b.example", "c.example", "old.example",
                      "new.example"])
    g.add_weighted_edges_from([("hub.example", "a.example", 1), ("hub.example", "b.example", 1),
                               ("hub.example", "c.example", 1), ("hub.example", "old.example", 1),
                               ("a.example", "b.example", 1), ("old.example", "new.example", 1)])
    want = nx.pagerank(g, alpha=0.85, tol=1e-13, max_iter=10_000)
    got = {d: domain_rank(store, d) for d in want}
    assert sum(abs(got[d].score - w) for d, w in want.items()) < 1e-6  # type: ignore[union-attr]


def test_ranks_floor_and_monotone(store: Store) -> None:
    small_web(Web(store), day(1))
    run_rank(store, settings(1))
    hub = page_rank(store, normalize_url(HUB))
    assert hub is not None and hub.inlink_rank == 0 and hub.rank_1000 == 0   # no in-links
    rows = store.query("SELECT score, inlink_rank, rank_1000, in_links FROM rank_pages "
                       "ORDER BY score")
    assert [r[1] for r in rows] == sorted(r[1] for r in rows)
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)
    assert all((r[1] == 0) == (r[3] == 0) for r in rows)
    assert max(r[1] for r in rows) == 100
    # the redirect passes everything old has on to new
    new, old = page_rank(store, normalize_url(NEW)), page_rank(store, normalize_url(OLD))
    assert new is not None and old is not None and new.score > old.score * 0.85 - 1e-12
    assert new.domain == "new.example" and new.domain_inlink_rank > 0


def test_backlink_rank(store: Store) -> None:
    small_web(Web(store), day(1))
    run_rank(store, settings(1))
    bl = backlink_rank(store, normalize_url(A))
    assert bl.passes and bl.rank >= 1 and bl.rank_1000 >= bl.rank
    assert backlink_rank(store, normalize_url(A), nofollow=True).rank_1000 == 0
    # a has one passing out-link (b/x; c is nofollow): it passes d * score to it
    a = page_rank(store, normalize_url(A))
    assert a is not None and bl.passed_score == pytest.approx(0.85 * a.score)


def test_distribution(store: Store) -> None:
    small_web(Web(store), day(1))
    run_rank(store, settings(1))
    hist = rank_distribution(store, "b.example")
    # referring domains of b.example: hub.example and a.example
    assert sum(n for _, n in hist) == 2
    assert rank_distribution(store, normalize_url(C), mode="url") != []


def test_atomic_switch_and_history(store: Store) -> None:
    web = Web(store)
    small_web(web, day(1))
    first = run_rank(store, settings(1))
    current = load_run(store)
    assert current is not None and current.run_id == first.run_id
    bx = normalize_url(BX)
    before = page_rank(store, bx)
    assert before is not None

    # day 2: three more pages link to b/x
    for i in range(3):
        web.add(page(f"https://fan{i}.example/", [link(BX)], day(2)))
    web.commit()

    seen: dict[str, object] = {}

    def look(run_id: int) -> None:
        # Another thread: its own cursor, outside the writer's transaction.
        def reader() -> None:
            cur = load_run(store)
            seen["current"] = cur.run_id if cur else None
            seen["held"] = page_rank(store, bx, run=first.run_id)
            seen["new_run_visible"] = load_run(store, run_id) is not None
        t = threading.Thread(target=reader)
        t.start()
        t.join()

    second = run_rank(store, settings(2), before_commit=look)
    assert seen["current"] == first.run_id                 # readers still on run 1
    assert seen["held"] == before
    assert seen["new_run_visible"] is False
    after = page_rank(store, bx)
    assert after is not None and after.run_id == second.run_id
    assert after.inlink_rank >= before.inlink_rank and after.score > before.score
    assert page_rank(store, bx, run=first.run_id) == before   # old runs kept

    hist = page_rank_history(store, bx, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert [(p.day, p.run_id) for p in hist] == [(dt.date(2026, 3, 1), first.run_id),
                                                 (dt.date(2026, 3, 2), second.run_id)]
    monthly = page_rank_history(store, bx, dt.date(2026, 3, 1), dt.date(2026, 3, 31),
                                "by_month")
    assert [(p.day, p.run_id) for p in monthly] == [(dt.date(2026, 3, 1), second.run_id)]
    dh = domain_rank_history(store, "www.b.example", dt.date(2026, 3, 2), dt.date(2026, 3, 2))
    assert [p.run_id for p in dh] == [second.run_id]


def test_retention(store: Store) -> None:
    small_web(Web(store), day(1))
    for d in (1, 2, 3):
        run_rank(store, settings(d), params=RankParams(keep_runs=2))
    runs = list_runs(store)
    assert [r.day.day for r in runs] == [2, 3]
    assert {r[0] for r in store.query("SELECT DISTINCT run_id FROM rank_pages")} == {
        r.run_id for r in runs}


def test_explain_page_and_domain(store: Store) -> None:
    web = Web(store)
    small_web(web, day(1))
    run_rank(store, settings(1), params=EXACT)
    e = explain(store, BX)
    assert e is not None and e.kind == "page"
    # b/x receives from hub (4 out-links) and a (1 out-link, a gets 1/4 of hub's): a is
    # the bigger contributor only if a's score/1 > hub's score/4
    hub, a = page_rank(store, normalize_url(HUB)), page_rank(store, normalize_url(A))
    assert hub is not None and a is not None
    expected = max([("hub", hub.score / 4), ("a", a.score / 1)], key=lambda t: t[1])[0]
    assert e.contributors[0].key == normalize_url(HUB if expected == "hub" else A)
    assert [c.key for c in e.contributors] != [] and e.contributor_count == 2
    assert e.shares_total == pytest.approx(1.0, abs=1e-9)
    assert all(0 < c.share <= 1 for c in e.contributors)
    assert e.previous_run_id is None

    # day 2: a big new referrer appears, a drops its link
    fans = [page(f"https://fan{i}.example/", [link("https://star.example/")], day(2))
            for i in range(6)]
    web.add(*fans, page("https://star.example/", [link(BX)], day(2)),
            page(A, [link(C, nofollow=True)], day(2))).commit()
    run_rank(store, settings(2), params=EXACT)
    e2 = explain(store, BX)
    assert e2 is not None and e2.previous_run_id is not None
    assert e2.contributors[0].key == normalize_url("https://star.example/")
    assert [c.key for c in e2.gained] == [normalize_url("https://star.example/")]
    assert [c.key for c in e2.lost] == [normalize_url(A)]
    assert e2.rank_delta == e2.rank - (e2.previous_rank or 0)
    assert e2.shares_total == pytest.approx(1.0, abs=1e-9)
    # the earlier run is still explained as it was
    e1 = explain(store, BX, run=e2.previous_run_id)
    assert e1 is not None and {c.key for c in e1.contributors} == {
        normalize_url(HUB), normalize_url(A)}

    d = explain(store, "b.example")
    assert d is not None and d.kind == "domain"
    assert d.contributors[0].key == "star.example" or d.contributors[0].key == "hub.example"
    assert d.shares_total <= 1.0 + 1e-9
    assert explain(store, "https://unknown.example/") is None


def test_no_runs_yet(store: Store) -> None:
    assert load_run(store) is None
    assert page_rank(store, normalize_url(A)) is None
    assert domain_rank(store, "a.example") is None
    assert page_rank_history(store, A, dt.date(2026, 1, 1), dt.date(2026, 12, 1)) == []
    assert explain(store, A) is None
    assert backlink_rank(store, A).rank == 0


def test_empty_store_run(store: Store) -> None:
    s = run_rank(store, settings(1))
    assert s.pages == 0 and s.domains == 0
    assert np.isfinite(s.seconds)
