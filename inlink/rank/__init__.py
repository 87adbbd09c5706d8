"""Authority: PageRank on the page and domain graphs -> InLink Rank (0-100), DataForSEO rank
(0-1000), rank history, explanations and spam scores. Sits between `index` and `query`.
"""

from __future__ import annotations

from inlink.rank.explain import Contributor, Explanation, explain
from inlink.rank.pagerank import Graph, PageRankResult, build_graph, pagerank
from inlink.rank.run import RankParams, RankSummary, run_rank
from inlink.rank.scale import link_scores, to_rank, to_ranks
from inlink.rank.spam import RISKY_TLDS, SIGNALS, SpamScore, SpamSignal, spam_score
from inlink.rank.store import (
    BACKLINK_RANK_SQL,
    BacklinkRank,
    DomainAuthority,
    PageAuthority,
    RankPoint,
    RankRun,
    backlink_rank,
    domain_rank,
    domain_rank_history,
    list_runs,
    load_run,
    page_rank,
    page_rank_history,
    prune_runs,
    rank_distribution,
)

__all__ = [
    "BACKLINK_RANK_SQL", "RISKY_TLDS", "SIGNALS", "BacklinkRank", "Contributor",
    "DomainAuthority", "Explanation", "Graph", "PageAuthority", "PageRankResult",
    "RankParams", "RankPoint", "RankRun", "RankSummary", "SpamScore", "SpamSignal",
    "backlink_rank", "build_graph", "domain_rank", "domain_rank_history", "explain",
    "link_scores", "list_runs", "load_run", "page_rank", "page_rank_history", "pagerank",
    "prune_runs", "rank_distribution", "run_rank", "spam_score", "to_rank", "to_ranks",
]
