"""PageRank by power iteration on a scipy.sparse CSR matrix: the numeric core of `inlink.rank`.

Pure numpy/scipy, no store: `build_graph` turns edge arrays into a column-stochastic transition
matrix, `pagerank` iterates it. `inlink.rank.graph` feeds it from the index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.floating]

DAMPING = 0.85
TOLERANCE = 1e-6
MAX_ITER = 200


@dataclass(frozen=True, slots=True)
class Graph:
    """A weighted digraph ready for iteration.

    `transition[t, s] = w(s, t) / out_weight[s]`, so one PageRank step is `transition @ x`.
    `out_degree` counts distinct out-neighbours and `in_degree` distinct in-neighbours, after
    self-loops were dropped and duplicates merged.
    """

    n: int
    transition: sp.csr_matrix
    out_weight: F64
    out_degree: I64
    in_degree: I64

    @property
    def edges(self) -> int:
        return int(self.transition.nnz)

    @property
    def dangling(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.out_weight == 0, dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class PageRankResult:
    """Scores (summing to 1) and how the iteration went."""

    scores: F64
    iterations: int
    l1_change: float        # L1 norm of the last step's change
    converged: bool
    seconds: float
    seconds_per_iteration: float


def build_graph(source: npt.ArrayLike, target: npt.ArrayLike, n: int,
                weight: npt.ArrayLike | None = None, *, dtype: type = np.float32,
                merge: str = "one") -> Graph:
    """Build the transition matrix of n nodes from parallel edge arrays (ids in [0, n)).

    Self-loops are dropped. Repeated (source, target) pairs merge: `merge="one"` keeps one
    edge of weight 1 (weights ignored), `merge="sum"` adds their weights.
    """
    if merge not in ("one", "sum"):
        raise ValueError(f"merge must be 'one' or 'sum', not {merge!r}")
    src = np.asarray(source)
    dst = np.asarray(target)
    keep = src != dst
    w = (np.ones(len(src), dtype=np.float64) if weight is None or merge == "one"
         else np.asarray(weight, dtype=np.float64))
    if weight is not None and merge == "sum":
        keep &= w > 0
    if not keep.all():
        src, dst, w = src[keep], dst[keep], w[keep]
    index_dtype = np.int32 if n < 2**31 - 1 and len(src) < 2**31 - 1 else np.int64
    # COO -> CSR is a counting sort in C and merges duplicates by summing (rows = targets,
    # so the CSR is already the transpose the iteration multiplies by).
    coo = sp.coo_matrix((w, (dst.astype(index_dtype, copy=False),
                             src.astype(index_dtype, copy=False))), shape=(n, n))
    transposed = coo.tocsr()
    cols = transposed.indices
    out_degree = np.bincount(cols, minlength=n).astype(np.int64)
    if merge == "one":
        transposed.data[:] = 1.0
        out_weight: F64 = out_degree.astype(np.float64)
    else:
        out_weight = np.bincount(cols, weights=transposed.data, minlength=n).astype(np.float64)
    in_degree = np.diff(transposed.indptr).astype(np.int64)
    data = (transposed.data / out_weight[cols]).astype(dtype)
    transition = sp.csr_matrix((data, cols, transposed.indptr), shape=(n, n))
    return Graph(n=n, transition=transition, out_weight=out_weight, out_degree=out_degree,
                 in_degree=in_degree)


def pagerank(graph: Graph, *, damping: float = DAMPING, tol: float = TOLERANCE,
             max_iter: int = MAX_ITER, start: npt.ArrayLike | None = None,
             progress: Callable[[int, float], None] | None = None) -> PageRankResult:
    """Power iteration with uniform teleport and dangling mass spread uniformly.

    Stops when the L1 norm of one step's change is below `tol` (networkx stops at
    `n * tol`, so this is stricter by a factor n). `start` warm-starts from earlier scores.
    """
    n = graph.n
    if n == 0:
        return PageRankResult(np.zeros(0), 0, 0.0, True, 0.0, 0.0)
    m = graph.transition
    dtype = m.dtype
    if start is None:
        x = np.full(n, 1.0 / n, dtype=dtype)
    else:
        x = np.asarray(start, dtype=np.float64)
        x = (x / x.sum()).astype(dtype)
    dangling = np.flatnonzero(graph.dangling)
    began = time.perf_counter()
    change = float("inf")
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - kept after the loop
        # Dangling nodes link to everyone: their mass and the teleport are one uniform term.
        lost = float(x[dangling].sum(dtype=np.float64)) if len(dangling) else 0.0
        y = m @ x
        y *= dtype.type(damping)
        y += dtype.type((damping * lost + 1.0 - damping) / n)
        change = float(np.abs(y - x).sum(dtype=np.float64))
        x = y
        if progress is not None:
            progress(iterations, change)
        if change < tol:
            break
    seconds = time.perf_counter() - began
    scores = x.astype(np.float64)
    # Renormalise: float32 rounding drifts the total by ~1e-7 over many iterations.
    scores /= scores.sum()
    return PageRankResult(scores=scores, iterations=iterations, l1_change=change,
                          converged=change < tol, seconds=seconds,
                          seconds_per_iteration=seconds / max(iterations, 1))
