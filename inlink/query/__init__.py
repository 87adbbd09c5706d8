"""The one query layer: every analytics question of the backlink APIs, answered once in
inlink's own vocabulary for the API dialects, the CLI and the dashboard (docs/query.md).
"""

from inlink.query.aggregates import (
    MAX_TARGETS,
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
from inlink.query.authority import authority, domain_authority_history, page_authority_history
from inlink.query.backlinks import (
    count_backlinks_matching,
    find_backlink_columns,
    find_backlinks,
    iter_backlinks,
)
from inlink.query.history import (
    history_counts,
    history_cumulative,
    list_history,
    refdomains_history,
    refdomains_history_counts,
)
from inlink.query.models import (
    ALL_KINDS,
    BACKLINK_KINDS,
    Authority,
    Backlink,
    BacklinkColumns,
    BacklinkPage,
    BacklinkQuery,
    CountItem,
    DayCount,
    DayTotal,
    Filter,
    FilterExpr,
    FilterGroup,
    GroupBy,
    GroupRow,
    HistoryQuery,
    HistoryRow,
    IndirectHop,
    Metrics,
    Mode,
    Op,
    Order,
    RefDomain,
    RefDomainChange,
    Summary,
    Target,
    all_of,
    any_of,
    resolve_target,
)
from inlink.query.sql import FIELDS, GROUP_FIELDS

__all__ = [
    "ALL_KINDS", "BACKLINK_KINDS", "FIELDS", "GROUP_FIELDS", "MAX_TARGETS", "Authority",
    "Backlink", "BacklinkColumns", "BacklinkPage", "BacklinkQuery", "CountItem", "DayCount",
    "DayTotal", "Filter",
    "FilterExpr", "FilterGroup", "GroupBy", "GroupRow", "HistoryQuery", "HistoryRow",
    "IndirectHop", "Metrics", "Mode", "Op", "Order", "RefDomain", "RefDomainChange", "Summary",
    "Target", "all_of", "any_of", "authority", "count_backlinks", "count_backlinks_matching",
    "count_ips", "count_refdomains", "count_subnets", "domain_authority_history",
    "find_backlink_columns", "find_backlinks", "history_counts",
    "history_cumulative", "indexed_pages", "iter_backlinks", "list_anchors", "list_history",
    "list_referring_ips", "list_refdomains", "metrics", "page_authority_history",
    "refdomain_rank_distribution", "refdomains_history", "refdomains_history_counts",
    "resolve_target", "summarize",
]
