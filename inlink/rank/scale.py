"""Map PageRank scores to InLink Rank (0-100) and the DataForSEO rank (0-1000).

    rank(s) = 0                                                   if s <= floor
            = clamp(ceil(points * ln(s / floor) / ln(top / floor)), 1, points)   otherwise

`floor` is the score of a node nobody links to, `top` the highest score of the run.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

POINTS = 100
POINTS_1000 = 1000


def to_ranks(scores: npt.ArrayLike, floor: float, top: float,
             points: int = POINTS) -> npt.NDArray[np.int16]:
    """Vectorised rank of each score; a non-decreasing function of the score alone."""
    s = np.asarray(scores, dtype=np.float64)
    out = np.zeros(s.shape, dtype=np.int16)
    if not (floor > 0 and top > floor):
        return out        # nothing passes rank in this run: everybody is at the floor
    above = s > floor
    # log-scale: one rank point is the same *ratio* of score everywhere on the scale
    x = np.log(s[above] / floor) / np.log(top / floor)
    out[above] = np.clip(np.ceil(points * x - 1e-9), 1, points).astype(np.int16)
    return out


def to_rank(score: float, floor: float, top: float, points: int = POINTS) -> int:
    """Rank of one score (see `to_ranks`)."""
    return int(to_ranks(np.asarray([score]), floor, top, points)[0])


def link_scores(source_scores: npt.ArrayLike, out_weight: npt.ArrayLike, floor: float,
                damping: float, weight: npt.ArrayLike | float = 1.0) -> npt.NDArray[np.float64]:
    """The score a target would have if this link were its only in-link.

    A link passes `damping * source_score * weight / out_weight`; on top of the floor
    that is the score of a page with this one backlink, which `to_ranks` then maps.
    """
    s = np.asarray(source_scores, dtype=np.float64)
    w = np.asarray(out_weight, dtype=np.float64)
    passed = np.divide(damping * s * np.asarray(weight, dtype=np.float64), w,
                       out=np.zeros(np.broadcast(s, w).shape), where=w > 0)
    return floor + passed
