"""`inlink rank`: read both graphs, iterate PageRank, score spam, store the run as current.

The lead's CLI calls `run_rank(store, settings)`; everything it needs to know is in
`RankParams` and the returned `RankSummary`.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from inlink.index.store import Store
from inlink.rank import spam as spam_mod
from inlink.rank.graph import PASSING_KINDS, load_snapshot
from inlink.rank.pagerank import DAMPING, MAX_ITER, TOLERANCE, Graph, build_graph, pagerank
from inlink.rank.scale import POINTS, POINTS_1000, link_scores, to_ranks
from inlink.rank.store import save_run
from inlink.settings import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RankParams:
    """How a run is computed; stored with it (rank_runs.params)."""

    damping: float = DAMPING
    tolerance: float = TOLERANCE
    max_iter: int = MAX_ITER
    dtype: str = "float32"        # measured: float32 halves memory traffic, same ranks
    keep_runs: int | None = 60    # retention: newest runs kept (None: keep all)
    spam: bool = True


@dataclass(frozen=True, slots=True)
class RankSummary:
    """What a run did (printed by `inlink rank`, returned to tests)."""

    run_id: int
    day: dt.date
    pages: int
    page_edges: int
    page_iterations: int
    page_converged: bool
    domains: int
    domain_edges: int
    domain_iterations: int
    domain_converged: bool
    seconds: float
    pruned_runs: int


@dataclass(frozen=True, slots=True)
class _Ranked:
    graph: Graph
    scores: npt.NDArray[np.float64]
    floor: float
    top: float
    iterations: int
    l1: float
    converged: bool


def _rank(graph: Graph, params: RankParams) -> _Ranked:
    res = pagerank(graph, damping=params.damping, tol=params.tolerance,
                   max_iter=params.max_iter)
    scores = res.scores
    if graph.n == 0:
        return _Ranked(graph, scores, 0.0, 0.0, 0, 0.0, True)
    unlinked = graph.in_degree == 0
    # The floor is the score of a node nobody links to: teleport plus the dangling share.
    # Taken from such a node itself when there is one, so it ranks exactly 0.
    dangling_mass = float(scores[graph.dangling].sum())
    formula = ((1 - params.damping) + params.damping * dangling_mass) / graph.n
    floor = float(scores[unlinked].max()) if unlinked.any() else formula
    return _Ranked(graph, scores, floor, float(scores.max()), res.iterations, res.l1_change,
                   res.converged)


def _strings(keys: npt.NDArray[np.object_]) -> pa.Array:
    return pa.array(keys.tolist(), pa.string())


def run_rank(store: Store, settings: Settings, progress: Progress | None = None,
             params: RankParams | None = None, *,
             before_commit: Callable[[int], None] | None = None) -> RankSummary:
    """Compute page and domain ranks (and spam scores) and store them as the current run.

    `before_commit(run_id)` runs inside the write transaction, after everything was written
    (tests use it to look at the store from another reader meanwhile).
    """
    p = params or RankParams()
    say = progress or (lambda _msg: None)
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    began = time.perf_counter()
    dtype = np.float32 if p.dtype == "float32" else np.float64

    say("reading the link graph")
    snap = load_snapshot(store.cursor())
    n_pages, n_domains = len(snap.page_keys), len(snap.domain_keys)

    say(f"page graph: {n_pages} pages")
    page = _rank(build_graph(snap.page_src, snap.page_dst, n_pages, dtype=dtype), p)
    say(f"domain graph: {n_domains} domains")
    domain = _rank(build_graph(snap.domain_src, snap.domain_dst, n_domains,
                               snap.domain_weight, dtype=dtype, merge="sum"), p)

    link = link_scores(page.scores, page.graph.out_weight, page.floor, p.damping)
    domain_names = _strings(snap.domain_keys)
    pages = pa.table({
        "url_key": _strings(snap.page_keys),
        "domain": pa.DictionaryArray.from_arrays(
            pa.array(snap.page_domain, pa.int64()), domain_names).cast(pa.string()),
        "score": pa.array(page.scores),
        "inlink_rank": pa.array(to_ranks(page.scores, page.floor, page.top, POINTS)),
        "rank_1000": pa.array(to_ranks(page.scores, page.floor, page.top, POINTS_1000)),
        "link_rank": pa.array(to_ranks(link, page.floor, page.top, POINTS)),
        "link_rank_1000": pa.array(to_ranks(link, page.floor, page.top, POINTS_1000)),
        "in_links": pa.array(page.graph.in_degree.astype(np.int32)),
        "out_links": pa.array(page.graph.out_degree.astype(np.int32)),
    })
    domains = pa.table({
        "domain": domain_names,
        "score": pa.array(domain.scores),
        "inlink_rank": pa.array(to_ranks(domain.scores, domain.floor, domain.top, POINTS)),
        "rank_1000": pa.array(to_ranks(domain.scores, domain.floor, domain.top, POINTS_1000)),
        "in_domains": pa.array(domain.graph.in_degree.astype(np.int32)),
        "out_domains": pa.array(domain.graph.out_degree.astype(np.int32)),
        "out_weight": pa.array(domain.graph.out_weight),
    })
    spam_tables: list[pa.Table] = []
    if p.spam:
        say("spam signals")
        for kind, cols in spam_mod.compute_all(store.cursor()).items():
            spam_tables.append(_spam_table(kind, cols))

    say("writing the run")
    row: dict[str, Any] = {
        "day": settings.today(), "started_at": started, "max_batch_id": snap.max_batch_id,
        "damping": p.damping, "tolerance": p.tolerance,
        "params": json.dumps({**asdict(p), "passing_kinds": list(PASSING_KINDS),
                              "page_edges": "distinct (source, target) pairs, weight 1",
                              "domain_edges": "distinct linking pages",
                              "spam_model": spam_mod.SPAM_MODEL}),
        "pages": n_pages, "page_edges": page.graph.edges,
        "page_iterations": page.iterations, "page_l1": page.l1,
        "page_converged": page.converged, "page_floor": page.floor, "page_top": page.top,
        "domains": n_domains, "domain_edges": domain.graph.edges,
        "domain_iterations": domain.iterations, "domain_l1": domain.l1,
        "domain_converged": domain.converged, "domain_floor": domain.floor,
        "domain_top": domain.top,
    }
    with store.transaction() as conn:
        before = int(conn.execute("SELECT count(*) FROM duckdb_tables() "
                                  "WHERE table_name = 'rank_runs'").fetchall()[0][0])
        runs_before = (int(conn.execute("SELECT count(*) FROM rank_runs").fetchall()[0][0])
                       if before else 0)
        row["finished_at"] = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        row["duration_s"] = time.perf_counter() - began
        run_id = save_run(conn, row, pages, domains, spam_tables, p.keep_runs)
        runs_after = int(conn.execute("SELECT count(*) FROM rank_runs").fetchall()[0][0])
        if before_commit is not None:
            before_commit(run_id)
    say(f"run {run_id} is current")
    return RankSummary(
        run_id=run_id, day=row["day"], pages=n_pages, page_edges=page.graph.edges,
        page_iterations=page.iterations, page_converged=page.converged, domains=n_domains,
        domain_edges=domain.graph.edges, domain_iterations=domain.iterations,
        domain_converged=domain.converged, seconds=time.perf_counter() - began,
        pruned_runs=runs_before + 1 - runs_after)


def _spam_table(kind: str, cols: dict[str, Any]) -> pa.Table:
    data: dict[str, pa.Array] = {
        "kind": pa.array([kind] * len(cols["target"]), pa.string()),
        "target": _strings(np.asarray(cols["target"], dtype=object)),
        "score": pa.array(np.asarray(cols["score"], dtype=np.int16)),
        "referrers": pa.array(np.asarray(cols["referrers"], dtype=np.int32)),
    }
    for name in spam_mod.SIGNAL_NAMES:
        data[name] = pa.array(np.asarray(cols[name], dtype=np.float64))
    return pa.table(data)
