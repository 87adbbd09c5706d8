"""Authority of targets (seed 001 /authority, /authority/page, /authority/domain and the
page history): thin wrappers over inlink.rank that speak in resolved targets.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from inlink.errors import InvalidInput
from inlink.index.store import Store
from inlink.query.aggregates import _check_targets, _target_ranks
from inlink.query.models import Authority, Mode, Target
from inlink.query.sql import context
from inlink.rank.store import RankPoint, page_rank_history


def authority(store: Store, targets: Sequence[Target]) -> list[Authority]:
    """InLink Rank of each target page (for a host or domain: its best root page) and the
    Domain InLink Rank of its registrable domain; 0 for what the current run does not know."""
    _check_targets(targets)
    ctx = context(store)
    return [Authority(t, page, r, dr, r1, dr1)
            for t, (r, r1, dr, dr1, page) in zip(targets, _target_ranks(store, ctx, targets),
                                                 strict=True)]


Granularity = Literal["by_day", "by_week", "by_month"]


def page_authority_history(store: Store, target: Target, date_from: dt.date, date_to: dt.date,
                           granularity: Granularity = "by_day") -> list[RankPoint]:
    """InLink Rank of one page over time, oldest first (seed 001 /authority/page/history:
    "only full page URL is supported"; weeks start Monday, months on the 1st)."""
    if target.mode is not Mode.URL or target.key is None:
        raise InvalidInput("target", "page history needs a full page URL (mode url)")
    if granularity not in ("by_day", "by_week", "by_month"):
        raise InvalidInput("granularity", f"{granularity!r} is not by_day, by_week or by_month")
    if date_from > date_to:
        raise InvalidInput("date_from", f"{date_from} is after date_to {date_to}")
    return page_rank_history(store, target.key, date_from, date_to, granularity)
