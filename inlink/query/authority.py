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
from inlink.rank.store import RankPoint, domain_rank_history, page_rank_history


def authority(store: Store, targets: Sequence[Target]) -> list[Authority]:
    """InLink Rank of each target page (for a host or domain: its best root page) and the
    Domain InLink Rank of its registrable domain; 0 for what the current run does not know."""
    _check_targets(targets)
    ctx = context(store)
    return [Authority(t, page, r, dr, r1, dr1)
            for t, (r, r1, dr, dr1, page) in zip(targets, _target_ranks(store, ctx, targets),
                                                 strict=True)]


Granularity = Literal["by_day", "by_week", "by_month"]


def _check_range(granularity: str, date_from: dt.date, date_to: dt.date) -> None:
    if granularity not in ("by_day", "by_week", "by_month"):
        raise InvalidInput("granularity", f"{granularity!r} is not by_day, by_week or by_month")
    if date_from > date_to:
        raise InvalidInput("date_from", f"{date_from} is after date_to {date_to}")


def page_authority_history(store: Store, target: Target, date_from: dt.date, date_to: dt.date,
                           granularity: Granularity = "by_day") -> list[RankPoint]:
    """InLink Rank of one page over time, oldest first (seed 001 /authority/page/history;
    weeks start Monday, months on the 1st; the latest run of a bucket stands for it).

    The seed asks for a full page URL but its own example passes a bare host: a host target
    means its root page (http or https, whichever the index ranks higher, as /authority
    does). A domain target is refused: it names no page.
    """
    _check_range(granularity, date_from, date_to)
    if target.mode is Mode.URL:
        assert target.key is not None
        return page_rank_history(store, target.key, date_from, date_to, granularity)
    if target.mode is not Mode.HOST:
        raise InvalidInput("target", "page history needs a page URL or a host (its root page)")
    ((*_, best),) = _target_ranks(store, context(store), [target])
    # the current run's best root page first; the other scheme if only older runs know it
    for page in dict.fromkeys((best, f"https://{target.value}/", f"http://{target.value}/")):
        if history := page_rank_history(store, page, date_from, date_to, granularity):
            return history
    return []


def domain_authority_history(store: Store, target: Target, date_from: dt.date,
                             date_to: dt.date, granularity: Granularity = "by_day"
                             ) -> list[RankPoint]:
    """Domain InLink Rank of the target's registrable domain over time, oldest first (the
    domain counterpart of the page history; inlink's /authority/domain/history)."""
    _check_range(granularity, date_from, date_to)
    return domain_rank_history(store, target.domain, date_from, date_to, granularity)
