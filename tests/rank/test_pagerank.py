"""PageRank core: agreement with networkx.pagerank, graph building rules, rank scaling."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from inlink.rank.pagerank import build_graph, pagerank
from inlink.rank.scale import POINTS, POINTS_1000, link_scores, to_rank, to_ranks


def random_edges(seed: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Power-law targets, uniform sources; includes self-loops, multi-edges, dangling nodes."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m)
    dst = np.minimum((rng.pareto(1.2, m) * 3).astype(np.int64), n - 1)
    dangling = rng.choice(n, size=n // 5, replace=False)
    keep = ~np.isin(src, dangling)
    src, dst = src[keep], dst[keep]
    # explicit duplicates and self-loops
    return (np.concatenate([src, src[:20], np.arange(5)]),
            np.concatenate([dst, dst[:20], np.arange(5)]))


def nx_reference(src: np.ndarray, dst: np.ndarray, n: int,
                 weight: np.ndarray | None = None) -> np.ndarray:
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    for i, (s, t) in enumerate(zip(src.tolist(), dst.tolist(), strict=True)):
        if s == t:
            continue   # our decision: self-loops pass nothing
        if weight is None:
            g.add_edge(s, t)           # DiGraph: duplicates collapse, as ours do
        else:
            w = g.get_edge_data(s, t, {"weight": 0.0})["weight"]
            g.add_edge(s, t, weight=w + float(weight[i]))
    pr = nx.pagerank(g, alpha=0.85, tol=1e-13, max_iter=10_000)
    return np.array([pr[i] for i in range(n)])


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_networkx_on_random_graphs(seed: int, dtype: type) -> None:
    n = 300
    src, dst = random_edges(seed, n, 1500)
    res = pagerank(build_graph(src, dst, n, dtype=dtype), tol=1e-9 if dtype is np.float64
                   else 1e-7)
    want = nx_reference(src, dst, n)
    assert res.converged
    assert np.abs(res.scores - want).sum() < 1e-6
    assert res.scores.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [7, 8])
def test_weighted_matches_networkx(seed: int) -> None:
    n = 120
    src, dst = random_edges(seed, n, 600)
    w = np.random.default_rng(seed).integers(1, 5, len(src)).astype(np.float64)
    res = pagerank(build_graph(src, dst, n, w, dtype=np.float64, merge="sum"), tol=1e-10)
    assert np.abs(res.scores - nx_reference(src, dst, n, w)).sum() < 1e-6


def test_default_tolerance_is_close_to_networkx() -> None:
    n = 2000
    src, dst = random_edges(11, n, 12_000)
    res = pagerank(build_graph(src, dst, n))          # float32, tol 1e-6 (defaults)
    assert np.abs(res.scores - nx_reference(src, dst, n)).sum() < 1e-5


def test_graph_rules() -> None:
    # 0->1 twice, 0->0 (self-loop), 2 dangling
    g = build_graph([0, 0, 0, 1], [1, 1, 0, 2], 3)
    assert g.edges == 2
    assert g.out_degree.tolist() == [1, 1, 0]
    assert g.in_degree.tolist() == [0, 1, 1]
    assert g.dangling.tolist() == [False, False, True]
    assert pagerank(g, max_iter=1, tol=0).iterations == 1


def test_empty_and_edgeless() -> None:
    assert pagerank(build_graph([], [], 0)).scores.shape == (0,)
    res = pagerank(build_graph([], [], 4))
    assert np.allclose(res.scores, 0.25)


def test_warm_start_converges_faster() -> None:
    n = 500
    src, dst = random_edges(3, n, 3000)
    g = build_graph(src, dst, n, dtype=np.float64)
    cold = pagerank(g, tol=1e-9)
    warm = pagerank(g, tol=1e-9, start=cold.scores)
    assert warm.iterations < cold.iterations


# -- scaling

def test_scale_worked_example() -> None:
    floor, top = 1e-4, 1e-1            # ln(top/floor) = ln(1000)
    assert to_rank(floor, floor, top) == 0
    assert to_rank(top, floor, top) == 100
    assert to_rank(math.sqrt(floor * top), floor, top) == 50   # geometric mean -> middle
    assert to_rank(1.0001e-4, floor, top) == 1                 # any in-link: at least 1
    assert to_rank(math.sqrt(floor * top), floor, top, POINTS_1000) == 500


def test_everyone_at_floor_is_zero() -> None:
    assert to_ranks([0.25] * 4, 0.25, 0.25).tolist() == [0, 0, 0, 0]


scores = st.lists(st.floats(min_value=1e-9, max_value=1.0), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(scores, st.sampled_from([POINTS, POINTS_1000]))
def test_scale_is_monotone_bounded(values: list[float], points: int) -> None:
    s = np.sort(np.asarray(values))
    floor, top = float(s[0]), float(s[-1])
    r = to_ranks(s, floor, top, points)
    assert (np.diff(r.astype(int)) >= 0).all()
    assert r.min() >= 0 and r.max() <= points
    assert r[0] == 0                                       # the floor maps to 0
    assert (r[s > floor] >= 1).all()
    if top > floor:
        assert r[-1] == points


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e-2), st.floats(min_value=1e-6, max_value=1.0),
       st.integers(min_value=1, max_value=1000))
def test_link_rank_is_at_most_the_source_rank(source: float, floor: float,
                                              out: int) -> None:
    top = max(source, floor) * 10
    passed = link_scores([source], [float(out)], floor, 0.85)[0]
    assert passed >= floor
    # a page with one link from s ranks no higher than s itself when s >= its floor share
    if source >= floor:
        assert to_rank(passed, floor, top) <= to_rank(source + floor, floor, top)


# -- same parameters as networkx, and the float32 path

def test_same_stopping_rule_as_networkx_within_1e6() -> None:
    """With networkx told to stop on the same L1 change (its `tol` is per node), the float32
    default lands within 1e-6 L1 of it, not just of the exact fixed point."""
    n = 5000
    src, dst = random_edges(13, n, 40_000)
    g = nx.DiGraph()
    g.add_nodes_from(range(n))
    g.add_edges_from((s, t) for s, t in zip(src.tolist(), dst.tolist(), strict=True) if s != t)
    pr = nx.pagerank(g, alpha=0.85, tol=1e-6 / n, max_iter=1000)
    want = np.array([pr[i] for i in range(n)])
    res = pagerank(build_graph(src, dst, n))             # float32, tol 1e-6
    assert res.converged and res.l1_change < 1e-6
    assert np.abs(res.scores - want).sum() < 1e-6
    exact = pagerank(build_graph(src, dst, n, dtype=np.float64), tol=1e-6)
    # float32 rounding stays far below the tolerance (difference form, float64 sums)
    assert np.abs(res.scores - exact.scores).sum() < 2e-7
    assert res.iterations == exact.iterations


def test_change_is_the_l1_step_of_plain_power_iteration() -> None:
    """The reported change is ‖x_k − x_(k−1)‖₁ of textbook power iteration."""
    n = 400
    src, dst = random_edges(5, n, 2500)
    graph = build_graph(src, dst, n, dtype=np.float64)
    changes: list[float] = []
    pagerank(graph, tol=0, max_iter=12, progress=lambda _i, c: changes.append(c))
    m = graph.transition.toarray()
    dangling = graph.dangling
    x = np.full(n, 1.0 / n)
    for k in range(12):
        y = 0.85 * m @ x + (0.85 * x[dangling].sum() + 0.15) / n
        assert changes[k] == pytest.approx(np.abs(y - x).sum(), rel=1e-9, abs=1e-15)
        x = y


def test_warm_start_is_not_mutated() -> None:
    n = 200
    src, dst = random_edges(4, n, 900)
    g = build_graph(src, dst, n)
    start = np.full(n, 2.0)
    pagerank(g, start=start)
    assert (start == 2.0).all()


def test_weighted_build_drops_zero_weights_and_int64_ids() -> None:
    g = build_graph(np.array([0, 0, 1, 2], dtype=np.int64), np.array([1, 2, 2, 0]), 3,
                    [2.0, 0.0, 1.0, 3.0], merge="sum")
    assert g.edges == 3
    assert g.out_weight.tolist() == [2.0, 1.0, 3.0]
    dense = g.transition.toarray()
    assert dense[1, 0] == pytest.approx(1.0) and dense[2, 0] == 0.0


@pytest.mark.parametrize("merge", ["one", "sum"])
def test_build_matches_a_plain_scipy_build_in_any_edge_order(merge: str) -> None:
    n = 300
    src, dst = random_edges(9, n, 3000)
    rng = np.random.default_rng(9)
    order = rng.permutation(len(src))
    w = rng.integers(1, 4, len(src)).astype(np.float64)
    g = build_graph(src[order], dst[order], n, w[order], dtype=np.float64, merge=merge)
    keep = src != dst
    ones = np.ones(int(keep.sum()))
    adj = sp.csc_matrix((ones if merge == "one" else w[keep], (dst[keep], src[keep])),
                        shape=(n, n))
    if merge == "one":
        adj.data[:] = 1.0
    out = np.asarray(adj.sum(axis=0)).ravel()
    want = adj.multiply(1.0 / np.where(out > 0, out, 1.0)[None, :]).toarray()
    assert g.transition.has_sorted_indices
    assert np.allclose(g.transition.toarray(), want)
    assert g.out_weight.tolist() == out.tolist()
    assert g.in_degree.tolist() == np.diff(adj.tocsr().indptr).tolist()
